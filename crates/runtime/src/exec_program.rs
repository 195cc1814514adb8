//! Which host program a `kubectl exec` command runs, in local mode where a container
//! is a host program: a pure decision, like `image::resolve`. The image's own tools
//! come first (agnhost is weft itself, busybox's commands are its applets), then the
//! host's programs, then busybox's applets for tools the host lacks (ping, nslookup),
//! so that the usual debugging commands work in any pod.

use crate::image::{image_name, Host};
use std::path::PathBuf;

#[derive(Debug, PartialEq)]
pub struct ExecProgram {
    pub path: PathBuf,
    pub args: Vec<String>,
}

/// `applet(name)`: whether the host's busybox has that applet.
pub fn resolve(image: &str, command: &[String], host: &dyn Host, applet: &dyn Fn(&str) -> bool) -> Result<ExecProgram, String> {
    let Some(first) = command.first() else { return Err("you must specify at least 1 command".into()) };
    let rest = command[1..].to_vec();
    let base = first.rsplit('/').next().unwrap_or(first).to_string();
    let busybox = |host: &dyn Host| host.which("busybox").filter(|_| applet(&base)).map(|bb| ExecProgram { path: bb, args: std::iter::once(base.clone()).chain(rest.clone()).collect() });
    match image_name(image) {
        "agnhost" if first == "/agnhost" || first == "agnhost" => return Ok(ExecProgram { path: host.weft(), args: std::iter::once("agnhost".to_string()).chain(rest).collect() }),
        "busybox" => {
            if let Some(p) = busybox(host) {
                return Ok(p);
            }
        }
        _ => {}
    }
    if let Some(path) = host.which(first) {
        return Ok(ExecProgram { path, args: rest });
    }
    busybox(host).ok_or_else(|| format!("exec: {first:?}: executable file not found in $PATH"))
}

/// The applets of the host's busybox, listed once.
pub fn host_applets() -> &'static [String] {
    static APPLETS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    APPLETS.get_or_init(|| {
        let Some(bb) = crate::image::RealHost.which("busybox") else { return vec![] };
        std::process::Command::new(bb).arg("--list").output().map(|o| String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect()).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    struct Fake(&'static [&'static str]);
    impl Host for Fake {
        fn which(&self, program: &str) -> Option<PathBuf> {
            let name = program.rsplit('/').next().unwrap();
            self.0.contains(&name).then(|| Path::new("/usr/bin").join(name))
        }
        fn weft(&self) -> PathBuf {
            PathBuf::from("/opt/weft")
        }
    }

    fn cmd(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    fn applets(name: &str) -> bool {
        ["sh", "wget", "ping", "nslookup"].contains(&name)
    }

    #[test]
    fn busybox_pods_run_busybox_applets_even_when_the_host_has_the_tool() {
        let host = Fake(&["busybox", "wget", "sh"]);
        let p = resolve("busybox:1.36", &cmd(&["wget", "-qO-", "10.244.1.2"]), &host, &applets).unwrap();
        assert_eq!(p, ExecProgram { path: "/usr/bin/busybox".into(), args: cmd(&["wget", "-qO-", "10.244.1.2"]) });
        assert_eq!(resolve("busybox", &cmd(&["/bin/sh", "-c", "x"]), &host, &applets).unwrap().args, cmd(&["sh", "-c", "x"]));
    }

    #[test]
    fn other_pods_run_host_programs_and_fall_back_to_applets() {
        let host = Fake(&["busybox", "curl"]);
        assert_eq!(resolve("nginx", &cmd(&["curl", "x"]), &host, &applets).unwrap(), ExecProgram { path: "/usr/bin/curl".into(), args: cmd(&["x"]) });
        assert_eq!(resolve("nginx", &cmd(&["ping", "-c1", "x"]), &host, &applets).unwrap().path, PathBuf::from("/usr/bin/busybox"));
    }

    #[test]
    fn agnhost_runs_as_weft_and_unknown_programs_say_so_as_runc_does() {
        let host = Fake(&[]);
        let p = resolve("registry.k8s.io/e2e-test-images/agnhost:2.52", &cmd(&["/agnhost", "connect", "1.2.3.4:80"]), &host, &applets).unwrap();
        assert_eq!(p, ExecProgram { path: "/opt/weft".into(), args: cmd(&["agnhost", "connect", "1.2.3.4:80"]) });
        assert_eq!(resolve("nginx", &cmd(&["bash"]), &host, &applets).unwrap_err(), "exec: \"bash\": executable file not found in $PATH");
        assert!(resolve("nginx", &[], &host, &applets).is_err());
    }
}

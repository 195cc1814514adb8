//! What runs for a container in local mode, where there is no image registry: a pure
//! decision from the container spec (and which host programs exist) to a host program
//! and its arguments, or a Waiting reason that tells the user what to do. Never a fake.

use k8s_openapi::api::core::v1::Container;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub enum Launch {
    Run(Program),
    /// The container cannot run here; stays Waiting with this reason and message.
    Waiting { reason: String, message: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub path: PathBuf,
    pub args: Vec<String>,
    /// Files the program needs, written into the container's own directory first.
    pub files: Vec<(PathBuf, String)>,
}

/// The last path segment of the image's repository, without tag or digest:
/// `registry.k8s.io/e2e-test-images/agnhost:2.52` → `agnhost`.
pub fn image_name(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    last.split(':').next().unwrap_or(last)
}

/// Where the host's programs are looked up; a trait so the decision is testable.
pub trait Host {
    fn which(&self, program: &str) -> Option<PathBuf>;
    /// weft's own executable (agnhost is built in).
    fn weft(&self) -> PathBuf;
}

/// The real host: `$PATH` plus the usual sbin directories (nginx lives in /usr/sbin).
pub struct RealHost;

impl Host for RealHost {
    fn which(&self, program: &str) -> Option<PathBuf> {
        if program.contains('/') {
            let p = PathBuf::from(program);
            return p.is_file().then_some(p);
        }
        let path = std::env::var("PATH").unwrap_or_default();
        let found = path
            .split(':')
            .chain(["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"])
            .map(|d| Path::new(d).join(program))
            .find(|p| p.is_file());
        found
    }
    fn weft(&self) -> PathBuf {
        std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"))
    }
}

const SUPPORTED: &str = "weft's local mode runs host programs, not images: give the container a `command` (a program installed on this host), or use one of the images weft knows: registry.k8s.io/e2e-test-images/agnhost (built in), registry.k8s.io/pause, nginx, busybox, httpd (their host programs installed)";

/// Decides what runs. `dir` is the container's own directory (config files go there).
pub fn resolve(c: &Container, host: &dyn Host, dir: &Path) -> Launch {
    let image = c.image.as_deref().unwrap_or_default();
    let name = image_name(image);
    let command = c.command.clone().unwrap_or_default();
    let args = c.args.clone().unwrap_or_default();
    match name {
        "agnhost" => agnhost(host, command, args),
        "pause" if command.is_empty() => Launch::Run(Program { path: host.weft(), args: vec!["agnhost".into(), "pause".into()], files: vec![] }),
        "busybox" => busybox(host, command, args),
        _ if !command.is_empty() => host_command(host, image, command, args),
        "nginx" => nginx(host, args, dir),
        "httpd" => httpd(host, dir),
        _ => Launch::Waiting { reason: "ImageNotSupported".into(), message: format!("image {image:?} has no `command`; {SUPPORTED}") },
    }
}

fn missing(image: &str, program: &str, package: &str) -> Launch {
    Launch::Waiting {
        reason: "HostProgramMissing".into(),
        message: format!("image {image:?} runs the host's `{program}`, which is not installed: install it (e.g. `apt-get install {package}`) and the pod starts"),
    }
}

fn agnhost(host: &dyn Host, command: Vec<String>, args: Vec<String>) -> Launch {
    // The image's entrypoint is /agnhost; a command naming it is the same thing.
    let mut all: Vec<String> = command.into_iter().chain(args).collect();
    if all.first().is_some_and(|a| a == "/agnhost" || a == "agnhost") {
        all.remove(0);
    } else if all.first().is_some_and(|a| a.starts_with('/') || a == "sh") {
        // A shell or other program inside the agnhost image: run the host's.
        return host_command(host, "agnhost", all, vec![]);
    }
    Launch::Run(Program { path: host.weft(), args: std::iter::once("agnhost".to_string()).chain(all).collect(), files: vec![] })
}

fn busybox(host: &dyn Host, command: Vec<String>, args: Vec<String>) -> Launch {
    let Some(bb) = host.which("busybox") else { return missing("busybox", "busybox", "busybox") };
    // The image's default command is `sh`; its programs are busybox applets.
    let mut all: Vec<String> = command.into_iter().chain(args).collect();
    if all.is_empty() {
        all.push("sh".into());
    }
    let applet = all[0].rsplit('/').next().unwrap_or(&all[0]).to_string();
    all[0] = applet;
    Launch::Run(Program { path: bb, args: all, files: vec![] })
}

fn host_command(host: &dyn Host, image: &str, command: Vec<String>, args: Vec<String>) -> Launch {
    match host.which(&command[0]) {
        Some(path) => Launch::Run(Program { path, args: command[1..].iter().cloned().chain(args).collect(), files: vec![] }),
        None => Launch::Waiting {
            reason: "HostProgramMissing".into(),
            message: format!("the command {:?} of image {image:?} is not a program on this host (weft's local mode runs host programs): install it or change `command`", command[0]),
        },
    }
}

/// nginx as the image runs it: in the foreground, the welcome page on port 80.
fn nginx(host: &dyn Host, args: Vec<String>, dir: &Path) -> Launch {
    let Some(path) = host.which("nginx") else { return missing("nginx", "nginx", "nginx") };
    let d = dir.display();
    let conf = format!(
        "user root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log stderr notice;\ndaemon off;\nevents {{ worker_connections 1024; }}\nhttp {{\n  access_log /dev/stdout;\n  client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n  default_type text/html;\n  server {{\n    listen 80;\n    listen [::]:80;\n    server_name localhost;\n    location / {{ root {d}/html; index index.html; }}\n  }}\n}}\n"
    );
    let mut argv = vec!["-c".to_string(), format!("{d}/nginx.conf"), "-p".to_string(), format!("{d}/")];
    // `args` such as ["nginx", "-g", "..."] repeat the image's default command.
    let extra: Vec<String> = args.into_iter().skip_while(|a| a == "nginx").filter(|a| a != "daemon off;").collect();
    if !extra.is_empty() && extra != ["-g"] {
        argv.extend(extra.into_iter().filter(|a| a != "-g"));
    }
    Launch::Run(Program {
        path,
        args: argv,
        files: vec![
            (dir.join("nginx.conf"), conf),
            (dir.join("html/index.html"), WELCOME.to_string()),
            (dir.join("tmp/.keep"), String::new()),
        ],
    })
}

/// httpd's image serves "It works!" on port 80; busybox's httpd does the same job.
fn httpd(host: &dyn Host, dir: &Path) -> Launch {
    let Some(bb) = host.which("busybox") else { return missing("httpd", "busybox", "busybox") };
    let root = dir.join("htdocs");
    Launch::Run(Program {
        path: bb,
        args: vec!["httpd".into(), "-f".into(), "-p".into(), "80".into(), "-h".into(), root.display().to_string()],
        files: vec![(root.join("index.html"), "<html><body><h1>It works!</h1></body></html>\n".into())],
    })
}

const WELCOME: &str = "<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n<body>\n<h1>Welcome to nginx!</h1>\n<p>If you see this page, the nginx web server is successfully installed and working.</p>\n<p><em>Thank you for using nginx.</em></p>\n</body>\n</html>\n";

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeHost(Vec<&'static str>);
    impl Host for FakeHost {
        fn which(&self, p: &str) -> Option<PathBuf> {
            self.0.contains(&p).then(|| PathBuf::from(format!("/usr/bin/{p}")))
        }
        fn weft(&self) -> PathBuf {
            PathBuf::from("/weft")
        }
    }

    fn container(image: &str, command: &[&str], args: &[&str]) -> Container {
        Container {
            name: "c".into(),
            image: Some(image.into()),
            command: (!command.is_empty()).then(|| command.iter().map(|s| s.to_string()).collect()),
            args: (!args.is_empty()).then(|| args.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    fn run(l: Launch) -> Program {
        match l {
            Launch::Run(p) => p,
            w => panic!("expected a program, got {w:?}"),
        }
    }

    #[test]
    fn image_names_drop_registry_tag_and_digest() {
        assert_eq!(image_name("registry.k8s.io/e2e-test-images/agnhost:2.52"), "agnhost");
        assert_eq!(image_name("nginx"), "nginx");
        assert_eq!(image_name("docker.io/library/busybox:1.36@sha256:abc"), "busybox");
        assert_eq!(image_name("localhost:5000/x/httpd"), "httpd");
    }

    #[test]
    fn agnhost_runs_weft_with_the_subcommand() {
        let h = FakeHost(vec![]);
        let p = run(resolve(&container("registry.k8s.io/e2e-test-images/agnhost:2.52", &[], &["netexec", "--http-port=8080"]), &h, Path::new("/d")));
        assert_eq!(p.path, PathBuf::from("/weft"));
        assert_eq!(p.args, ["agnhost", "netexec", "--http-port=8080"]);
        let p = run(resolve(&container("registry.k8s.io/e2e-test-images/agnhost:2.52", &["/agnhost", "serve-hostname"], &[]), &h, Path::new("/d")));
        assert_eq!(p.args, ["agnhost", "serve-hostname"]);
    }

    #[test]
    fn a_command_runs_the_host_program() {
        let p = run(resolve(&container("debian", &["sleep", "3600"], &[]), &FakeHost(vec!["sleep"]), Path::new("/d")));
        assert_eq!((p.path, p.args), (PathBuf::from("/usr/bin/sleep"), vec!["3600".to_string()]));
    }

    #[test]
    fn busybox_commands_are_busybox_applets() {
        let p = run(resolve(&container("busybox:1.36", &["/bin/sh", "-c", "sleep 1"], &[]), &FakeHost(vec!["busybox"]), Path::new("/d")));
        assert_eq!(p.path, PathBuf::from("/usr/bin/busybox"));
        assert_eq!(p.args, ["sh", "-c", "sleep 1"]);
        let p = run(resolve(&container("busybox", &[], &[]), &FakeHost(vec!["busybox"]), Path::new("/d")));
        assert_eq!(p.args, ["sh"]);
    }

    #[test]
    fn nginx_serves_the_welcome_page_on_port_80_in_the_foreground() {
        let p = run(resolve(&container("nginx:1.27", &[], &[]), &FakeHost(vec!["nginx"]), Path::new("/pods/u/c")));
        assert_eq!(p.args[..2], ["-c".to_string(), "/pods/u/c/nginx.conf".to_string()]);
        let conf = &p.files[0].1;
        assert!(conf.contains("listen 80;") && conf.contains("daemon off;"), "{conf}");
        assert!(p.files[1].1.contains("Welcome to nginx!"));
    }

    #[test]
    fn missing_programs_and_unknown_images_wait_with_what_to_do() {
        let Launch::Waiting { reason, message } = resolve(&container("nginx", &[], &[]), &FakeHost(vec![]), Path::new("/d")) else { panic!() };
        assert_eq!(reason, "HostProgramMissing");
        assert!(message.contains("apt-get install nginx"), "{message}");
        let Launch::Waiting { reason, message } = resolve(&container("redis:7", &[], &[]), &FakeHost(vec![]), Path::new("/d")) else { panic!() };
        assert_eq!(reason, "ImageNotSupported");
        assert!(message.contains("command"), "{message}");
        let Launch::Waiting { reason, .. } = resolve(&container("redis:7", &["redis-server"], &[]), &FakeHost(vec![]), Path::new("/d")) else { panic!() };
        assert_eq!(reason, "HostProgramMissing");
    }
}

//! A container as a host process inside its pod: the pod's network namespace, a mount
//! namespace of its own where the pod's resolv.conf and hosts are bind-mounted over
//! the host's (the host's files are never touched), a UTS namespace with the pod's
//! hostname, its volumes (see `mount_plan`), and a session of its own so that signals
//! reach everything it started.

use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub struct Spawn<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    /// The container's volume mounts and working directory, done after the binds of
    /// resolv.conf and hosts (see `mount_plan`).
    pub mounts: &'a std::sync::Arc<crate::mount_exec::Prepared>,
    /// The pod's network namespace (the node's for hostNetwork pods).
    pub netns: BorrowedFd<'a>,
    pub hostname: &'a str,
    /// Files to bind over /etc/resolv.conf and /etc/hosts inside the pod.
    pub resolv_conf: &'a Path,
    pub hosts: &'a Path,
    /// stdout and stderr go here (the container's log, through its log shim).
    pub log: &'a Path,
}

fn cstring(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{} has a NUL byte", p.display())))
}

/// Starts the process. Everything the child does between fork and exec is a plain
/// syscall on values prepared here (no allocation after fork).
pub fn spawn(s: &Spawn<'_>) -> std::io::Result<tokio::process::Child> {
    let log = crate::container_log::open(s.log)?;
    let mut cmd = tokio::process::Command::new(s.program);
    cmd.args(s.args).env_clear().envs(s.env.iter().map(|(k, v)| (k, v))).stdin(std::process::Stdio::null()).stdout(log.stdout).stderr(log.stderr).kill_on_drop(false);
    let netns: OwnedFd = s.netns.try_clone_to_owned()?;
    let resolv_src = cstring(s.resolv_conf)?;
    let hosts_src = cstring(s.hosts)?;
    let resolv_dst = CString::new("/etc/resolv.conf").unwrap();
    let hosts_dst = CString::new("/etc/hosts").unwrap();
    let root = CString::new("/").unwrap();
    let hostname = s.hostname.to_string();
    let mounts = s.mounts.clone();
    // SAFETY: the closure only makes syscalls on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            setns(netns.as_fd(), CloneFlags::CLONE_NEWNET)?;
            unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC)?;
            // Private first, so that the binds below never propagate to the host.
            mount(None::<&std::ffi::CStr>, root.as_c_str(), None::<&std::ffi::CStr>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&std::ffi::CStr>)?;
            mount(Some(resolv_src.as_c_str()), resolv_dst.as_c_str(), None::<&std::ffi::CStr>, MsFlags::MS_BIND, None::<&std::ffi::CStr>)?;
            mount(Some(hosts_src.as_c_str()), hosts_dst.as_c_str(), None::<&std::ffi::CStr>, MsFlags::MS_BIND, None::<&std::ffi::CStr>)?;
            mounts.run_in_child()?;
            nix::unistd::sethostname(&hostname)?;
            nix::unistd::setsid()?;
            Ok(())
        });
    }
    cmd.spawn()
}

/// Kills a process group left from an earlier run of weft (recorded in a pid file).
pub fn kill_leftover(pidfile: &Path) {
    if let Some(pid) = std::fs::read_to_string(pidfile).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = std::fs::remove_file(pidfile);
}

/// Where a container's files live: `<pod dir>/<container name>/`.
pub fn container_dir(pod_dir: &Path, container: &str) -> PathBuf {
    pod_dir.join("containers").join(container)
}

/// A command that runs inside a running container's namespaces (network, mount, UTS,
/// IPC), with the container's environment and working directory: what `kubectl exec`
/// and exec probes need. It sees the pod's network, resolv.conf, hosts and hostname.
/// The caller sets stdio and spawns it. `pid` is the container's main process.
pub fn command_in(pid: u32, program: &str, args: &[String]) -> std::io::Result<tokio::process::Command> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let open = |ns: &str| -> std::io::Result<OwnedFd> { Ok(std::fs::File::open(proc_dir.join("ns").join(ns))?.into()) };
    let (ipc, uts, net, mnt) = (open("ipc")?, open("uts")?, open("net")?, open("mnt")?);
    let environ = std::fs::read(proc_dir.join("environ"))?;
    // The container's root and working directory as fds: a container whose volumes
    // needed a root of its own (see `mount_plan`) is chrooted, and its paths mean
    // something only from there.
    let root: OwnedFd = std::fs::File::open(proc_dir.join("root"))?.into();
    let cwd: OwnedFd = std::fs::File::open(proc_dir.join("cwd"))?.into();
    let dot = CString::new(".").unwrap();
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).env_clear().kill_on_drop(true);
    for kv in environ.split(|b| *b == 0).filter(|kv| !kv.is_empty()) {
        let kv = String::from_utf8_lossy(kv);
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    // SAFETY: the closure only makes syscalls on fds opened before the fork.
    unsafe {
        cmd.pre_exec(move || {
            setns(ipc.as_fd(), CloneFlags::CLONE_NEWIPC)?;
            setns(uts.as_fd(), CloneFlags::CLONE_NEWUTS)?;
            setns(net.as_fd(), CloneFlags::CLONE_NEWNET)?;
            // Last: the mount namespace changes what paths mean, the fds above do not care.
            setns(mnt.as_fd(), CloneFlags::CLONE_NEWNS)?;
            nix::unistd::fchdir(&root)?;
            nix::unistd::chroot(dot.as_c_str())?;
            nix::unistd::fchdir(&cwd)?;
            Ok(())
        });
    }
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn command_in_sees_the_target_process_environment() {
        if !nix::unistd::Uid::effective().is_root() {
            return; // setns needs CAP_SYS_ADMIN; the privileged tests cover it under CI
        }
        let mut target = tokio::process::Command::new("sleep").arg("30").env("WEFT_PROBE_VAR", "seen").kill_on_drop(true).spawn().unwrap();
        let pid = target.id().unwrap();
        // Until `sleep` has replaced the forked child, /proc shows the parent's environment.
        for _ in 0..200 {
            if std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default().starts_with(b"sleep") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let out = super::command_in(pid, "sh", &["-c".into(), "echo $WEFT_PROBE_VAR".into()]).unwrap().output().await.unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "seen");
        target.kill().await.unwrap();
    }
}

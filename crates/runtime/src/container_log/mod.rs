//! Container logs, as CRI runtimes keep them: each container instance's stdout and
//! stderr go through pipes to a log shim ([`shim`]) that writes CRI records
//! ([`cri`]) to `<container dir>/log`; when the container starts again, the last
//! instance's log becomes `previous.log` (what `kubectl logs --previous` shows).
//! [`read`] turns a log file back into what `kubectl logs` prints.

pub mod cri;
pub mod read;
pub mod shim;

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The log of the container instance before the current one, next to `log`.
pub fn previous_of(log: &Path) -> PathBuf {
    log.with_file_name("previous.log")
}

/// The write ends for a new container instance's stdout and stderr.
pub struct Outputs {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// Starts a new log at `log` for a container instance about to start: the old one
/// becomes the previous log, a new file appears already locked by its shim, and the
/// shim is running. The caller gives the returned pipe ends to the container.
pub fn open(log: &Path) -> io::Result<Outputs> {
    let named = |e: io::Error, what: &str| io::Error::new(e.kind(), format!("{what} {}: {e}", log.display()));
    if log.exists() {
        std::fs::rename(log, previous_of(log)).map_err(|e| named(e, "rotating the container log"))?;
    }
    // Locked before it has its name, so that no reader ever sees a writerless new log.
    let fresh = log.with_file_name("log.new");
    let _ = std::fs::remove_file(&fresh);
    let file = std::fs::OpenOptions::new().append(true).create_new(true).open(&fresh).map_err(|e| named(e, "creating the container log"))?;
    lock(&file, libc::LOCK_EX).map_err(|e| named(e, "locking the container log"))?;
    std::fs::rename(&fresh, log).map_err(|e| named(e, "naming the container log"))?;
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    spawn_shim(log, out_r, err_r, file).map_err(|e| named(e, "starting the log shim (weft log-shim) for"))?;
    Ok(Outputs { stdout: out_w, stderr: err_w })
}

/// Whether a writer (a live shim) still holds the log open by `file`.
pub fn has_writer(file: &File) -> bool {
    match lock(file, libc::LOCK_SH | libc::LOCK_NB) {
        Ok(()) => {
            let _ = lock(file, libc::LOCK_UN);
            false
        }
        Err(_) => true,
    }
}

fn lock(file: &File, op: libc::c_int) -> io::Result<()> {
    // SAFETY: flock on an fd that `file` keeps open for the duration of the call.
    if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Runs `weft log-shim` (this executable) with the pipes' read ends on fds 0 and 3
/// and the log on fd 1, in a session of its own so that no terminal signal reaches it.
fn spawn_shim(log: &Path, stdout: OwnedFd, stderr: OwnedFd, file: File) -> io::Result<()> {
    // The running executable itself, even if its file was replaced since it started.
    let mut cmd = tokio::process::Command::new("/proc/self/exe");
    cmd.arg0("weft").arg("log-shim").arg(log).env_clear().stdin(stdout).stdout(file).stderr(std::process::Stdio::null()).kill_on_drop(false);
    let err_fd = stderr.as_raw_fd();
    // SAFETY: only dup2/fcntl/setsid between fork and exec; `stderr` outlives the spawn.
    unsafe {
        cmd.pre_exec(move || {
            if err_fd == shim::STDERR_FD {
                if libc::fcntl(err_fd, libc::F_SETFD, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(err_fd, shim::STDERR_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            nix::unistd::setsid()?;
            Ok(())
        });
    }
    // Dropping the child leaves it to tokio, which reaps it when it exits.
    let _child = cmd.spawn()?;
    drop(stderr);
    Ok(())
}

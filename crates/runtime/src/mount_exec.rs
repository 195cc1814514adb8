//! Carries out a [`mount_plan::Plan`] in a container's process, between fork and exec,
//! inside its private mount namespace. Everything is prepared before the fork (C
//! strings, the report pipe): the child only makes syscalls. When an op fails, the
//! child writes the op's index to the report pipe so the error can name it.

use crate::mount_plan::{Op, Plan};
use nix::errno::Errno;
use nix::fcntl::{OFlag, AT_FDCWD};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

enum COp {
    Bind { src: CString, dst: CString, optional: bool },
    ReadOnly { dst: CString },
    Tmpfs { dst: CString },
    Mkdir { path: CString },
    Touch { path: CString },
    Symlink { target: CString, path: CString },
    Chroot { root: CString },
}

/// The plan, ready for the child, plus the working directory to enter last.
pub struct Prepared {
    ops: Vec<COp>,
    described: Vec<String>,
    cwd: Option<CString>,
    report: (OwnedFd, OwnedFd),
    root_slash: CString,
    dot: CString,
    tmpfs: CString,
    mode: CString,
}

fn c(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{} has a NUL byte", p.display())))
}

impl Prepared {
    /// `cwd` is where the process starts (its `workingDir`, or weft's own directory):
    /// entered after the mounts, so that it is the container's view of that path.
    pub fn new(plan: &Plan, cwd: &Path) -> std::io::Result<Prepared> {
        let mut ops = Vec::new();
        let mut described = Vec::new();
        for op in &plan.ops {
            described.push(describe(op));
            ops.push(match op {
                Op::Bind { src, dst, optional } => COp::Bind { src: c(src)?, dst: c(dst)?, optional: *optional },
                Op::ReadOnly { dst } => COp::ReadOnly { dst: c(dst)? },
                Op::Tmpfs { dst } => COp::Tmpfs { dst: c(dst)? },
                Op::Mkdir { path } => COp::Mkdir { path: c(path)? },
                Op::Touch { path } => COp::Touch { path: c(path)? },
                Op::Symlink { target, path } => COp::Symlink { target: c(target)?, path: c(path)? },
                Op::Chroot { root } => COp::Chroot { root: c(root)? },
            });
        }
        let report = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        Ok(Prepared {
            ops,
            described,
            cwd: Some(c(cwd)?),
            report,
            root_slash: CString::new("/").unwrap(),
            dot: CString::new(".").unwrap(),
            tmpfs: CString::new("tmpfs").unwrap(),
            mode: CString::new("mode=0755").unwrap(),
        })
    }

    /// In the child: every op, then the working directory. Syscalls only.
    pub fn run_in_child(&self) -> std::io::Result<()> {
        let none: Option<&CStr> = None;
        for (i, op) in self.ops.iter().enumerate() {
            let r: nix::Result<()> = match op {
                COp::Bind { src, dst, optional } => match mount(Some(src.as_c_str()), dst.as_c_str(), none, MsFlags::MS_BIND | MsFlags::MS_REC, none) {
                    Err(_) if *optional => Ok(()),
                    r => r,
                },
                COp::ReadOnly { dst } => mount(none, dst.as_c_str(), none, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, none),
                COp::Tmpfs { dst } => mount(Some(self.tmpfs.as_c_str()), dst.as_c_str(), Some(self.tmpfs.as_c_str()), MsFlags::empty(), Some(self.mode.as_c_str())),
                COp::Mkdir { path } => match nix::unistd::mkdir(path.as_c_str(), Mode::from_bits_truncate(0o755)) {
                    Err(Errno::EEXIST) => Ok(()),
                    r => r,
                },
                COp::Touch { path } => nix::fcntl::open(path.as_c_str(), OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::from_bits_truncate(0o644)).map(drop),
                COp::Symlink { target, path } => nix::unistd::symlinkat(target.as_c_str(), AT_FDCWD, path.as_c_str()),
                COp::Chroot { root } => nix::unistd::chdir(root.as_c_str()).and_then(|_| nix::unistd::chroot(self.dot.as_c_str())).and_then(|_| nix::unistd::chdir(self.root_slash.as_c_str())),
            };
            if let Err(e) = r {
                let _ = nix::unistd::write(self.report.1.as_fd(), &(i as u32).to_ne_bytes());
                return Err(e.into());
            }
        }
        if let Some(cwd) = &self.cwd {
            if let Err(e) = nix::unistd::chdir(cwd.as_c_str()) {
                let _ = nix::unistd::write(self.report.1.as_fd(), &u32::MAX.to_ne_bytes());
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// After a failed spawn: which op failed, in words (None if it was not ours).
    pub fn failed_op(&self) -> Option<String> {
        let mut buf = [0u8; 4];
        let n = nix::unistd::read(self.report.0.as_fd(), &mut buf).ok()?;
        if n != 4 {
            return None;
        }
        let i = u32::from_ne_bytes(buf);
        if i == u32::MAX {
            return Some(format!("entering the working directory {:?}", self.cwd.as_ref().map(|c| c.to_string_lossy().to_string()).unwrap_or_default()));
        }
        self.described.get(i as usize).cloned()
    }
}

fn describe(op: &Op) -> String {
    match op {
        Op::Bind { src, dst, .. } => format!("bind-mounting {} at {}", src.display(), dst.display()),
        Op::ReadOnly { dst } => format!("making {} read-only", dst.display()),
        Op::Tmpfs { dst } => format!("mounting a tmpfs at {}", dst.display()),
        Op::Mkdir { path } => format!("making the directory {}", path.display()),
        Op::Touch { path } => format!("making the mount point {}", path.display()),
        Op::Symlink { target, path } => format!("making the symlink {} -> {}", path.display(), target.display()),
        Op::Chroot { root } => format!("entering the container's root {}", root.display()),
    }
}

//! Network namespaces without global names, and running code inside one.
//!
//! A namespace made here lives as long as a bind mount of its nsfs file onto a
//! plain file under the caller's state dir (not /var/run/netns), so weft
//! instances and parallel tests never share a name space of names.
//! Code never switches the caller's thread: [`run_in`] spawns a fresh thread,
//! setns()es it, runs the closure and joins.

use crate::error::{Error, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// statfs f_type of nsfs, the filesystem behind /proc/*/ns/* files.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// An open network namespace. Holding it keeps the namespace alive.
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    path: Option<PathBuf>,
}

impl Netns {
    /// Makes a new network namespace and keeps it alive by bind-mounting it onto
    /// `path` (created as an empty file; its directory must exist).
    pub fn create(path: &Path) -> Result<Netns> {
        let object = || format!("netns {}", path.display());
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(_) => {}
            Err(e) => return Err(Error::new("create", object(), e)),
        }
        let target = path.to_path_buf();
        // unshare() moves the calling thread, so do it on a throwaway thread.
        let made = std::thread::spawn(move || -> io::Result<()> {
            unshare(CloneFlags::CLONE_NEWNET)?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("netns thread panicked")));
        if let Err(e) = made {
            let _ = std::fs::remove_file(path);
            return Err(Error::new("create", object(), e));
        }
        Netns::open(path)
    }

    /// Opens an existing namespace file: a bind mount made by [`Netns::create`],
    /// `/proc/<pid>/ns/net`, or any other nsfs file for a network namespace.
    pub fn open(path: &Path) -> Result<Netns> {
        let object = || format!("netns {}", path.display());
        let file = File::open(path).map_err(|e| Error::new("open", object(), e))?;
        let fs = nix::sys::statfs::fstatfs(&file).map_err(|e| Error::new("open", object(), e.into()))?;
        if fs.filesystem_type().0 as i64 != NSFS_MAGIC {
            return Err(Error::invalid(
                "open",
                object(),
                "not a network namespace (expected a bind mount of /proc/<pid>/ns/net)",
            ));
        }
        Ok(Netns {
            fd: file.into(),
            path: Some(path.to_path_buf()),
        })
    }

    /// Unmounts and unlinks a namespace made by [`Netns::create`]. The namespace
    /// itself dies once nothing else (processes, open handles) holds it.
    /// Removing something already gone succeeds.
    pub fn remove(path: &Path) -> Result<()> {
        let object = || format!("netns {}", path.display());
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(Error::new("unmount", object(), e.into())),
        }
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::new("remove", object(), e)),
        }
    }

    /// The namespace of the calling thread.
    pub fn current() -> Result<Netns> {
        let file = File::open("/proc/thread-self/ns/net")
            .map_err(|e| Error::new("open", "netns of the current thread", e))?;
        Ok(Netns {
            fd: file.into(),
            path: None,
        })
    }

    /// The file this namespace was opened from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether two handles refer to the same namespace (same nsfs inode).
    pub fn same_as(&self, other: &Netns) -> Result<bool> {
        let a = nix::sys::stat::fstat(&self.fd).map_err(|e| Error::new("stat", self.describe(), e.into()))?;
        let b = nix::sys::stat::fstat(&other.fd).map_err(|e| Error::new("stat", other.describe(), e.into()))?;
        Ok(a.st_dev == b.st_dev && a.st_ino == b.st_ino)
    }

    pub(crate) fn describe(&self) -> String {
        match &self.path {
            Some(p) => format!("netns {}", p.display()),
            None => "netns (current thread)".to_string(),
        }
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Runs `f` on a fresh thread that has joined `ns`, and waits for it. The
/// closure may borrow from the caller. A panic in `f` is re-raised here.
pub fn run_in<T, F>(ns: &Netns, f: F) -> Result<T>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let outcome = std::thread::scope(|s| {
        s.spawn(|| {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|e| Error::new("enter", ns.describe(), e.into()))?;
            Ok(f())
        })
        .join()
    });
    match outcome {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Like [`run_in`] for async code: the future runs on a current-thread tokio
/// runtime on the namespaced thread (sockets it opens belong to `ns`).
pub fn run_in_async<T, F, Fut>(ns: &Netns, f: F) -> Result<T>
where
    T: Send,
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = T>,
{
    run_in(ns, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::new("start a runtime in", ns.describe(), e))?;
        Ok(rt.block_on(f()))
    })?
}

//! Runs a privileged test inside a network namespace and a mount namespace of its
//! own, so every link, address, route, netns bind mount and sysctl it makes dies
//! with it and nothing leaks onto the host.
//!
//! ```no_run
//! weft_testns::run("bridge_is_created", |ns| {
//!     // Here the thread is alone in a fresh netns (loopback up) and a private
//!     // mount namespace; `ns.dir()` is a temp dir removed afterwards.
//!     // Child processes spawned from this thread inherit both namespaces.
//! });
//! ```
//!
//! Privileges: the body needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN). When they
//! are missing the test is skipped with a message, unless `CI=true`, where a
//! privileged test that cannot run must fail instead.

use std::future::Future;
use std::path::{Path, PathBuf};

mod loopback;

/// What the test body gets: a scratch directory that outlives the namespaces
/// (it is removed after the namespaced thread has exited, so bind mounts on
/// files inside it are already gone).
pub struct TestNs {
    dir: PathBuf,
}

impl TestNs {
    /// A temp directory for the test's state (netns files, IPAM data, ...).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Runs `body` on a fresh thread that has unshared its network and mount
/// namespaces. Returns `None` when the test was skipped (not root, CI unset).
/// A panic in `body` fails the test as usual.
pub fn run<T, F>(name: &str, body: F) -> Option<T>
where
    T: Send,
    F: FnOnce(&TestNs) -> T + Send,
{
    if let Err(why) = privileged() {
        return skip(name, &why);
    }
    let dir = tempfile::Builder::new()
        .prefix(&format!("weft-test-{name}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("{name}: cannot create a temp dir: {e}"));
    let ns = TestNs {
        dir: dir.path().to_path_buf(),
    };
    let outcome = std::thread::scope(|s| {
        s.spawn(|| {
            enter_private_namespaces().map(|()| body(&ns))
        })
        .join()
    });
    // The namespaced thread has exited: its mounts are gone, so the dir can go.
    drop(dir);
    match outcome {
        Ok(Ok(value)) => Some(value),
        Ok(Err(why)) => skip(name, &why),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Like [`run`], for an async body: it runs on a multi-thread tokio runtime
/// built inside the namespaced thread (so its workers share the namespaces).
pub fn run_async<T, F, Fut>(name: &str, body: F) -> Option<T>
where
    T: Send,
    F: FnOnce(TestNs) -> Fut + Send,
    Fut: Future<Output = T>,
{
    run(name, |ns| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let owned = TestNs {
            dir: ns.dir.clone(),
        };
        let value = rt.block_on(body(owned));
        // Wait for worker threads so nothing lingers in the namespaces.
        rt.shutdown_timeout(std::time::Duration::from_secs(5));
        value
    })
}

/// Whether privileged tests can run here; `Err` says why not.
pub fn privileged() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("not running as root".into());
    }
    Ok(())
}

/// Whether `CI=true` is set, in which case skipping is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

fn skip<T>(name: &str, why: &str) -> Option<T> {
    if in_ci() {
        panic!("{name}: privileged test cannot run under CI=true: {why}");
    }
    eprintln!("skipping privileged test {name}: {why} (run as root; CI=true turns this into a failure)");
    None
}

fn enter_private_namespaces() -> Result<(), String> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("unshare(CLONE_NEWNET|CLONE_NEWNS) failed: {e}"))?;
    // Private propagation, so bind mounts made by the test never reach the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("making mounts private failed: {e}"))?;
    loopback::up().map_err(|e| format!("bringing loopback up failed: {e}"))?;
    Ok(())
}

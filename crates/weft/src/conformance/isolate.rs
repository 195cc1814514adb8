//! The runner's own network and mount namespaces: everything the cluster makes
//! (nodes, pods, links, rules, the namespaces' bind mounts) lives in them and dies
//! with the runner, so nothing can reach or stay on the host.

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// Moves this process into new network and mount namespaces (mounts made private, so
/// none propagates back) and brings their loopback up. Call it while the process has
/// one thread: a mount namespace cannot be unshared by a thread that shares its
/// filesystem state.
pub fn enter() -> Result<()> {
    unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNET|CLONE_NEWNS) (the conformance runner needs root)")?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>).context("making / a private mount tree")?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let h = weft_kernel::Handle::current()?;
        let lo = h.link("lo").await?;
        h.set_link_up(lo.index).await?;
        Ok::<_, anyhow::Error>(())
    })
    .context("bringing up the runner's loopback")
}

//! `weft down`: stop the instance on a state dir and leave nothing behind.

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::time::{Duration, Instant};

/// Whether `pid` is a live process. A zombie (exited, not yet reaped by its parent,
/// as when a test harness started weft) counts as gone.
pub fn alive(pid: i32) -> bool {
    if kill(Pid::from_raw(pid), None).is_err() {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the parenthesised command name: "pid (comm) S ...".
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

pub fn run(state_dir: &Path, purge: bool) -> Result<()> {
    let pidfile = state_dir.join("weft.pid");
    match std::fs::read_to_string(&pidfile).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
        Some(pid) if alive(pid) => {
            kill(Pid::from_raw(pid), Signal::SIGTERM).with_context(|| format!("signalling weft (pid {pid})"))?;
            let deadline = Instant::now() + Duration::from_secs(15);
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if alive(pid) {
                eprintln!("weft (pid {pid}) did not stop within 15s; killing it");
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                while alive(pid) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            println!("stopped weft (pid {pid})");
        }
        _ => println!("no weft is running on {}", state_dir.display()),
    }
    let _ = std::fs::remove_file(&pidfile);
    // Everything weft made in the kernel lives in the namespaces under DIR/netns
    // (nodes, the underlay, the host side's veth peer) and DIR/nodes/*/pods/*/netns.
    weft_runtime::stop_containers(&state_dir.join("nodes"));
    weft_runtime::remove_sandboxes(&state_dir.join("nodes"));
    crate::nodes::Topology::teardown(&state_dir.join("netns"))?;
    // The host side's veth goes with the underlay namespace, but the kernel reaps a
    // namespace asynchronously: delete it now, so `down` returns with it gone.
    crate::nodes::remove_host_link(state_dir)?;
    if purge && state_dir.exists() {
        std::fs::remove_dir_all(state_dir).with_context(|| format!("removing {}", state_dir.display()))?;
        println!("removed {}", state_dir.display());
    }
    Ok(())
}

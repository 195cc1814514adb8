//! Network sysctls, written through /proc/sys from a thread inside the target
//! netns: /proc/sys/net resolves against the netns of the thread that opens
//! the file (verified by `sysctl_is_per_netns` in tests/netns.rs), so opening
//! it on a [`run_in`] thread reaches that namespace and no other.

use crate::error::{Error, Result};
use crate::netns::{run_in, Netns};
use std::path::PathBuf;

fn path_of(key: &str) -> Result<PathBuf> {
    // Slash-separated so interface names with dots (eth0.100) stay unambiguous.
    if key.is_empty()
        || key.starts_with('/')
        || key.split('/').any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(Error::invalid(
            "use",
            format!("sysctl {key:?}"),
            "expected a path under /proc/sys like net/ipv4/ip_forward",
        ));
    }
    Ok(PathBuf::from("/proc/sys").join(key))
}

/// Writes `value` to /proc/sys/`key` in `ns` (the calling thread's netns if `None`).
pub fn write(ns: Option<&Netns>, key: &str, value: &str) -> Result<()> {
    let path = path_of(key)?;
    let op = || std::fs::write(&path, value);
    let done = match ns {
        Some(ns) => run_in(ns, op)?,
        None => op(),
    };
    done.map_err(|e| Error::new("write", format!("sysctl {key}={value}"), e))
}

/// Reads /proc/sys/`key` in `ns`, trimmed.
pub fn read(ns: Option<&Netns>, key: &str) -> Result<String> {
    let path = path_of(key)?;
    let op = || std::fs::read_to_string(&path);
    let got = match ns {
        Some(ns) => run_in(ns, op)?,
        None => op(),
    };
    got.map(|s| s.trim().to_string())
        .map_err(|e| Error::new("read", format!("sysctl {key}"), e))
}

/// Routes IPv4 between interfaces (the node forwards pod traffic).
pub fn enable_ip_forward(ns: Option<&Netns>) -> Result<()> {
    write(ns, "net/ipv4/ip_forward", "1")
}

/// Routes IPv6 between interfaces.
pub fn enable_ipv6_forwarding(ns: Option<&Netns>) -> Result<()> {
    write(ns, "net/ipv6/conf/all/forwarding", "1")
}

/// Turns duplicate address detection off (`on == false`) for one interface,
/// so its IPv6 addresses (link-local included) are usable at once.
pub fn set_accept_dad(ns: Option<&Netns>, ifname: &str, on: bool) -> Result<()> {
    write(ns, &format!("net/ipv6/conf/{ifname}/accept_dad"), if on { "1" } else { "0" })
}

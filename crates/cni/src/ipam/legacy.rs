//! Stores written by older versions: a file per reserved IP, an index file per
//! attachment and the round-robin position per family.
//!
//! ```text
//! ips/<ip>                   "<container id>\n<ifname>\n"
//! attachments/<cid>:<ifname>  one IP per line
//! last.v4, last.v6            the last address handed out
//! ```
//! [`import`] reads them (under the store lock) into the log's state; the
//! caller writes the log, then [`remove`]s them. A crash in between imports
//! the same again next time, which changes nothing.

use super::store::State;
use crate::request::Attachment;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::Path;

fn read_optional(path: &Path) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The old store's state merged into the current log's, or `None` when
/// there is no old store in `dir`.
pub(crate) fn import(dir: &Path) -> io::Result<Option<State>> {
    let ips_dir = dir.join("ips");
    if !ips_dir.is_dir() {
        return Ok(None);
    }
    let mut state = State::default();
    // Every reservation counts, with or without an index file pointing at it,
    // so an address someone holds is never handed out twice.
    for entry in fs::read_dir(&ips_dir)? {
        let entry = entry?;
        let Ok(ip) = entry.file_name().to_string_lossy().parse::<IpAddr>() else { continue };
        let Some(text) = read_optional(&entry.path())? else { continue };
        let mut lines = text.lines().map(str::trim);
        let (Some(cid), Some(ifname)) = (lines.next(), lines.next()) else { continue };
        let a = Attachment { container_id: cid.to_string(), ifname: ifname.to_string() };
        state.attachments.entry(a).or_default().push(ip);
    }
    // The index files give each attachment's order (IPv4 first, as allocated).
    for (a, ips) in state.attachments.iter_mut() {
        let index = dir.join("attachments").join(format!("{}:{}", a.container_id, a.ifname));
        if let Some(text) = read_optional(&index)? {
            let order: Vec<IpAddr> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            ips.sort_by_key(|ip| order.iter().position(|o| o == ip).unwrap_or(usize::MAX));
        }
    }
    for (key, v6) in [("last.v4", false), ("last.v6", true)] {
        if let Some(ip) = read_optional(&dir.join(key))?.and_then(|s| s.trim().parse::<IpAddr>().ok()) {
            if ip.is_ipv6() == v6 {
                if v6 { state.last_v6 = Some(ip) } else { state.last_v4 = Some(ip) }
            }
        }
    }
    // A log next to the old files (a crash after it was written) holds the same.
    Ok(Some(state))
}

/// Deletes the old store's files (after its state is in the log).
pub(crate) fn remove(dir: &Path) -> io::Result<()> {
    for sub in ["ips", "attachments"] {
        match fs::remove_dir_all(dir.join(sub)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    for f in ["last.v4", "last.v6"] {
        match fs::remove_file(dir.join(f)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::*;

    #[test]
    fn an_old_store_is_imported_whole_and_its_files_removed() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        fs::create_dir_all(dir.join("ips")).unwrap();
        fs::create_dir_all(dir.join("attachments")).unwrap();
        fs::write(dir.join("ips/10.1.0.2"), "a\neth0\n").unwrap();
        fs::write(dir.join("ips/fd00::2"), "a\neth0\n").unwrap();
        fs::write(dir.join("attachments/a:eth0"), "10.1.0.2\nfd00::2\n").unwrap();
        // A reservation no index points at (a crash between the two writes).
        fs::write(dir.join("ips/10.1.0.3"), "b\neth0\n").unwrap();
        fs::write(dir.join("last.v4"), "10.1.0.3").unwrap();
        fs::write(dir.join("last.v6"), "fd00::2").unwrap();

        let s = Store::lock(dir).unwrap();
        let a = Attachment { container_id: "a".into(), ifname: "eth0".into() };
        let b = Attachment { container_id: "b".into(), ifname: "eth0".into() };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(s.allocation(&a), Some(vec![ip("10.1.0.2"), ip("fd00::2")]));
        assert_eq!(s.owner(ip("10.1.0.3")), Some(&b));
        assert_eq!((s.last_reserved(false), s.last_reserved(true)), (Some(ip("10.1.0.3")), Some(ip("fd00::2"))));
        for old in ["ips", "attachments", "last.v4", "last.v6"] {
            assert!(!dir.join(old).exists(), "{old} is gone");
        }
        drop(s);
        assert_eq!(Store::lock(dir).unwrap().allocation(&a), Some(vec![ip("10.1.0.2"), ip("fd00::2")]));
    }
}

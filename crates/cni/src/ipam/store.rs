//! The on-disk allocation store of one network, shared by every weft-cni
//! process on the node and by the in-process runtime.
//!
//! ```text
//! <data_dir>/<network>/lock         flock(LOCK_EX) held for every operation
//! <data_dir>/<network>/allocations  a log, one record per line:
//!     + <container id>:<ifname> <ip>[,<ip>...]   the attachment holds these IPs
//!     - <container id>:<ifname>                  it gave them back
//!     ^ <ip>                                     last address handed out (compaction keeps it)
//! ```
//! Opening the store reads the whole log (a few KB for a node's pods) into
//! memory; a change appends one line with one write(2). So an ADD neither
//! creates nor renames a file: on a busy filesystem every new inode and rename
//! is a journal update, and every ADD on the node queues behind the lock while
//! one of them waits on it. The log is rewritten compacted (temp file + rename)
//! once it holds many more records than live attachments.
//!
//! A record is written whole by one append, or (power loss) not at all or
//! torn: a torn last line is skipped and the next record starts on a line of
//! its own. ':' separates the key because neither a container id nor an
//! interface name may contain it. Stores of older versions (a file per IP
//! under `ips/`) are imported on first use; see [`super::legacy`].

use super::legacy;
use crate::request::Attachment;
use nix::fcntl::{Flock, FlockArg};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::Path;

const LOG: &str = "allocations";

/// Rewrite the log once it has this many records more than live attachments.
const COMPACT_SLACK: usize = 256;

/// What the log says, replayed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) attachments: BTreeMap<Attachment, Vec<IpAddr>>,
    pub(crate) last_v4: Option<IpAddr>,
    pub(crate) last_v6: Option<IpAddr>,
}

impl State {
    fn note_last(&mut self, ip: IpAddr) {
        if ip.is_ipv6() {
            self.last_v6 = Some(ip);
        } else {
            self.last_v4 = Some(ip);
        }
    }

    /// Applies one log line; `false` if it is not a record (a torn write).
    fn apply(&mut self, line: &str) -> bool {
        let mut f = line.split(' ');
        match (f.next(), f.next(), f.next(), f.next()) {
            (Some("+"), Some(key), Some(ips), None) => {
                let (Some(a), Ok(ips)) = (parse_key(key), ips.split(',').map(str::parse).collect::<Result<Vec<IpAddr>, _>>()) else {
                    return false;
                };
                ips.iter().for_each(|ip| self.note_last(*ip));
                self.attachments.insert(a, ips);
                true
            }
            (Some("-"), Some(key), None, None) => parse_key(key).map(|a| self.attachments.remove(&a)).is_some(),
            (Some("^"), Some(ip), None, None) => ip.parse().map(|ip| self.note_last(ip)).is_ok(),
            _ => false,
        }
    }

    /// The log that recreates this state, in as few records as possible.
    pub(crate) fn compacted(&self) -> String {
        let mut out: String = self.attachments.iter().map(|(a, ips)| add_record(a, ips)).collect();
        // After the "+" records, which move "last" too.
        out.extend(self.last_v4.iter().chain(&self.last_v6).map(|ip| format!("^ {ip}\n")));
        out
    }
}

fn parse_key(key: &str) -> Option<Attachment> {
    let (cid, ifname) = key.split_once(':')?;
    (!cid.is_empty() && !ifname.is_empty()).then(|| Attachment {
        container_id: cid.to_string(),
        ifname: ifname.to_string(),
    })
}

fn add_record(a: &Attachment, ips: &[IpAddr]) -> String {
    let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
    format!("+ {}:{} {}\n", a.container_id, a.ifname, ips.join(","))
}

/// Replaces `path` with `body` atomically (temp file + rename).
pub(crate) fn write_atomically(path: &Path, body: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, body)?;
    fs::rename(&tmp, path)
}

/// An open, locked store. The lock is released on drop.
pub struct Store {
    state: State,
    log: File,
    /// The log's last line is torn (no newline): start the next record anew.
    torn_tail: bool,
    /// Reverse index of `state.attachments`.
    owners: HashMap<IpAddr, Attachment>,
    _lock: Flock<File>,
}

impl Store {
    /// Opens (creating as needed) and locks the store in `dir`; blocks while
    /// another process holds the lock.
    pub fn lock(dir: &Path) -> io::Result<Store> {
        fs::create_dir_all(dir)?;
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        let lock = Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))?;
        let path = dir.join(LOG);
        if let Some(state) = legacy::import(dir)? {
            write_atomically(&path, &state.compacted())?;
            legacy::remove(dir)?;
        }
        let mut log = OpenOptions::new().create(true).read(true).append(true).open(&path)?;
        let mut text = String::new();
        log.read_to_string(&mut text)?;
        let mut state = State::default();
        let records = text.lines().filter(|l| state.apply(l)).count();
        let torn_tail = !text.is_empty() && !text.ends_with('\n');
        let mut store = Store {
            owners: HashMap::new(),
            state,
            log,
            torn_tail,
            _lock: lock,
        };
        store.reindex();
        if records > store.state.attachments.len() * 2 + COMPACT_SLACK {
            write_atomically(&path, &store.state.compacted())?;
            store.log = OpenOptions::new().read(true).append(true).open(&path)?;
            store.torn_tail = false;
        }
        Ok(store)
    }

    fn reindex(&mut self) {
        self.owners = self
            .state
            .attachments
            .iter()
            .flat_map(|(a, ips)| ips.iter().map(move |ip| (*ip, a.clone())))
            .collect();
    }

    fn append(&mut self, record: &str) -> io::Result<()> {
        let line = if self.torn_tail { format!("\n{record}") } else { record.to_string() };
        self.log.write_all(line.as_bytes())?;
        self.torn_tail = false;
        Ok(())
    }

    /// The IPs recorded for an attachment, if it has any.
    pub fn allocation(&self, a: &Attachment) -> Option<Vec<IpAddr>> {
        self.state.attachments.get(a).cloned()
    }

    pub fn is_taken(&self, ip: IpAddr) -> bool {
        self.owners.contains_key(&ip)
    }

    /// Who holds `ip`, if anyone.
    pub fn owner(&self, ip: IpAddr) -> Option<&Attachment> {
        self.owners.get(&ip)
    }

    /// Records that `a` holds `ips` (none of them taken; `a` holds nothing).
    pub fn add(&mut self, a: &Attachment, ips: &[IpAddr]) -> io::Result<()> {
        self.append(&add_record(a, ips))?;
        for ip in ips {
            self.state.note_last(*ip);
            self.owners.insert(*ip, a.clone());
        }
        self.state.attachments.insert(a.clone(), ips.to_vec());
        Ok(())
    }

    /// Frees an attachment's IPs and forgets it. Returns what was freed;
    /// nothing if it had nothing.
    pub fn release(&mut self, a: &Attachment) -> io::Result<Vec<IpAddr>> {
        if !self.state.attachments.contains_key(a) {
            return Ok(Vec::new());
        }
        self.append(&format!("- {}:{}\n", a.container_id, a.ifname))?;
        let ips = self.state.attachments.remove(a).unwrap_or_default();
        for ip in &ips {
            self.owners.remove(ip);
        }
        Ok(ips)
    }

    /// The last address of a family handed out (round-robin starts after it).
    pub fn last_reserved(&self, v6: bool) -> Option<IpAddr> {
        if v6 { self.state.last_v6 } else { self.state.last_v4 }
    }

    /// Every attachment holding addresses.
    pub fn attachments(&self) -> Vec<Attachment> {
        self.state.attachments.keys().cloned().collect()
    }

    /// Every reserved IP.
    pub fn reserved(&self) -> Vec<IpAddr> {
        self.owners.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn att(c: &str) -> Attachment {
        Attachment { container_id: c.into(), ifname: "eth0".into() }
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn changes_survive_reopening_and_a_torn_last_record_is_skipped() {
        let d = tempfile::tempdir().unwrap();
        {
            let mut s = Store::lock(d.path()).unwrap();
            s.add(&att("a"), &[ip("10.1.0.2"), ip("fd00::2")]).unwrap();
            s.add(&att("b"), &[ip("10.1.0.3")]).unwrap();
            assert_eq!(s.release(&att("a")).unwrap(), vec![ip("10.1.0.2"), ip("fd00::2")]);
            assert_eq!(s.release(&att("a")).unwrap(), Vec::<IpAddr>::new());
        }
        // A crash mid-append leaves half a record.
        let mut f = OpenOptions::new().append(true).open(d.path().join(LOG)).unwrap();
        f.write_all(b"+ c:eth0 10.1.0.").unwrap();
        let mut s = Store::lock(d.path()).unwrap();
        assert_eq!(s.attachments(), vec![att("b")]);
        assert_eq!(s.owner(ip("10.1.0.3")), Some(&att("b")));
        assert!(!s.is_taken(ip("10.1.0.2")));
        assert_eq!((s.last_reserved(false), s.last_reserved(true)), (Some(ip("10.1.0.3")), Some(ip("fd00::2"))));
        s.add(&att("d"), &[ip("10.1.0.4")]).unwrap();
        drop(s);
        let s = Store::lock(d.path()).unwrap();
        assert_eq!(s.allocation(&att("d")), Some(vec![ip("10.1.0.4")]), "the next record starts on its own line");
    }

    #[test]
    fn a_long_log_is_compacted_keeping_holders_and_the_round_robin_position() {
        let d = tempfile::tempdir().unwrap();
        {
            let mut s = Store::lock(d.path()).unwrap();
            for _ in 0..COMPACT_SLACK {
                s.add(&att("churn"), &[ip("10.1.0.9")]).unwrap();
                s.release(&att("churn")).unwrap();
            }
            s.add(&att("keep"), &[ip("10.1.0.7")]).unwrap();
            s.add(&att("gone"), &[ip("10.1.0.8"), ip("fd00::8")]).unwrap();
            s.release(&att("gone")).unwrap();
        }
        let before = Store::lock(d.path()).unwrap().state.clone();
        let lines = fs::read_to_string(d.path().join(LOG)).unwrap().lines().count();
        assert!(lines <= 5, "compacted to {lines} lines");
        let after = Store::lock(d.path()).unwrap();
        assert_eq!(after.state, before);
        assert_eq!(after.attachments(), vec![att("keep")]);
        assert_eq!((after.last_reserved(false), after.last_reserved(true)), (Some(ip("10.1.0.8")), Some(ip("fd00::8"))));
    }
}

//! The on-disk allocation store of one network, shared by every weft-cni
//! process on the node and by the in-process runtime.
//!
//! ```text
//! <data_dir>/<network>/lock                      flock(LOCK_EX) held for every operation
//! <data_dir>/<network>/ips/<ip>                  "<container id>\n<ifname>\n": the reservation
//! <data_dir>/<network>/attachments/<cid>:<ifname> one allocated IP per line
//! <data_dir>/<network>/last.v4, last.v6           last address handed out (round-robin)
//! ```
//! The IP file is the claim (created with O_EXCL); the attachment file is an
//! index so ADD/DEL/CHECK find an attachment's IPs without reading every
//! reservation. ':' separates the key because neither a container id nor an
//! interface name may contain it.

use crate::request::Attachment;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// An open, locked store. The lock is released on drop.
pub struct Store {
    dir: PathBuf,
    _lock: Flock<File>,
}

fn family_key(v6: bool) -> &'static str {
    if v6 { "last.v6" } else { "last.v4" }
}

impl Store {
    /// Opens (creating as needed) and locks the store in `dir`; blocks while
    /// another process holds the lock.
    pub fn lock(dir: &Path) -> io::Result<Store> {
        fs::create_dir_all(dir.join("ips"))?;
        fs::create_dir_all(dir.join("attachments"))?;
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        let lock = Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))?;
        Ok(Store {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    fn ip_path(&self, ip: IpAddr) -> PathBuf {
        self.dir.join("ips").join(ip.to_string())
    }

    fn attachment_path(&self, a: &Attachment) -> PathBuf {
        self.dir
            .join("attachments")
            .join(format!("{}:{}", a.container_id, a.ifname))
    }

    /// The IPs recorded for an attachment, if it has any.
    pub fn allocation(&self, a: &Attachment) -> io::Result<Option<Vec<IpAddr>>> {
        match fs::read_to_string(self.attachment_path(a)) {
            Ok(s) => Ok(Some(s.lines().filter_map(|l| l.trim().parse().ok()).collect())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn is_taken(&self, ip: IpAddr) -> bool {
        self.ip_path(ip).exists()
    }

    /// Claims `ip` for `a`; `false` if someone holds it already.
    pub fn reserve(&self, ip: IpAddr, a: &Attachment) -> io::Result<bool> {
        match OpenOptions::new().write(true).create_new(true).open(self.ip_path(ip)) {
            Ok(mut f) => {
                write!(f, "{}\n{}\n", a.container_id, a.ifname)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Who holds `ip`, if anyone (and the file is readable).
    pub fn owner(&self, ip: IpAddr) -> Option<Attachment> {
        let s = fs::read_to_string(self.ip_path(ip)).ok()?;
        let mut lines = s.lines();
        Some(Attachment {
            container_id: lines.next()?.trim().to_string(),
            ifname: lines.next()?.trim().to_string(),
        })
    }

    pub fn unreserve(&self, ip: IpAddr) -> io::Result<()> {
        match fs::remove_file(self.ip_path(ip)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Writes the attachment's index file atomically (temp file + rename).
    pub fn record(&self, a: &Attachment, ips: &[IpAddr]) -> io::Result<()> {
        let path = self.attachment_path(a);
        let tmp = path.with_extension("tmp");
        let body: String = ips.iter().map(|ip| format!("{ip}\n")).collect();
        fs::write(&tmp, body)?;
        fs::rename(&tmp, &path)
    }

    /// Frees an attachment's IPs (only those it still owns) and forgets it.
    /// Returns what was freed; nothing if it had nothing.
    pub fn release(&self, a: &Attachment) -> io::Result<Vec<IpAddr>> {
        let Some(ips) = self.allocation(a)? else {
            return Ok(Vec::new());
        };
        let mut freed = Vec::new();
        for ip in ips {
            if self.owner(ip).as_ref() == Some(a) {
                self.unreserve(ip)?;
                freed.push(ip);
            }
        }
        match fs::remove_file(self.attachment_path(a)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        Ok(freed)
    }

    pub fn last_reserved(&self, v6: bool) -> Option<IpAddr> {
        fs::read_to_string(self.dir.join(family_key(v6)))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn set_last_reserved(&self, ip: IpAddr) -> io::Result<()> {
        fs::write(self.dir.join(family_key(ip.is_ipv6())), ip.to_string())
    }

    /// Every attachment with an index file.
    pub fn attachments(&self) -> io::Result<Vec<Attachment>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.dir.join("attachments"))? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some((cid, ifname)) = name.split_once(':') {
                if !ifname.ends_with(".tmp") {
                    out.push(Attachment {
                        container_id: cid.to_string(),
                        ifname: ifname.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Every reserved IP.
    pub fn reserved(&self) -> io::Result<Vec<IpAddr>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.dir.join("ips"))? {
            if let Ok(ip) = entry?.file_name().to_string_lossy().parse() {
                out.push(ip);
            }
        }
        Ok(out)
    }
}

//! The node's policy flow recorder: listens on the NFLOG group the policy enforcer
//! logs its decisions to (in the node's netns), turns each logged packet into a
//! [`FlowRecord`] judged by the live policy model, drops repeats of one attempt
//! (retransmitted SYNs), and appends JSON lines to `<state_dir>/flows/<node>.jsonl`
//! (`weft observe` reads them). The file is bounded: at [`ROTATE_AT`] it moves to
//! `<node>.jsonl.1`, replacing the previous one.

use anyhow::Context;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};
use weft_kernel::nflog::{LoggedPacket, Nflog};
use weft_kernel::Netns;
use weft_policy::flow::{Deduper, FlowKey, FlowRecord};
use weft_policy::plan::{FlowMark, FLOW_LOG_GROUP};
use weft_policy::Cluster;

/// Size at which the flow file is rotated.
pub const ROTATE_AT: u64 = 16 << 20;
/// Bytes of each logged packet copied to us: IPv6 with extension headers and ports.
const COPY_RANGE: u32 = 128;
/// Logged packets queued between the socket thread and the writer.
const QUEUE: usize = 4096;

/// The flow file of `node` under a node's state dir.
pub fn flow_file(state_dir: &Path, node: &str) -> PathBuf {
    state_dir.join("flows").join(format!("{node}.jsonl"))
}

/// Records flows until the future is dropped (or the nflog socket fails).
pub async fn run(netns: Netns, node: String, model: Arc<RwLock<Cluster>>, out: PathBuf) -> anyhow::Result<()> {
    let log = Nflog::open(Some(&netns), FLOW_LOG_GROUP, COPY_RANGE).with_context(|| format!("node {node}: recording policy flows"))?;
    let mut packets = log.into_channel(QUEUE);
    let mut file = FlowFile::open(&out, ROTATE_AT)?;
    let mut recorder = Recorder { node, dedup: Deduper::new() };
    tracing::info!(node = %recorder.node, file = %out.display(), "recording policy flows");
    while let Some(p) = packets.recv().await {
        let p = p.with_context(|| format!("node {}: receiving logged packets", recorder.node))?;
        let record = {
            let cluster = model.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            recorder.record(&cluster, &p, Instant::now(), SystemTime::now())
        };
        let Some(record) = record else { continue };
        if let Err(e) = file.append(&record) {
            tracing::warn!(node = %recorder.node, file = %out.display(), error = %format!("{e:#}"), "cannot write a flow record");
        }
    }
    Ok(())
}

struct Recorder {
    node: String,
    dedup: Deduper,
}

impl Recorder {
    /// The record of one logged packet, or None for a repeat or a packet that is not
    /// a policy decision.
    fn record(&mut self, cluster: &Cluster, p: &LoggedPacket, now: Instant, wall: SystemTime) -> Option<FlowRecord> {
        let Some(mark) = p.prefix.as_deref().and_then(FlowMark::from_prefix) else {
            tracing::debug!(prefix = ?p.prefix, "a logged packet that is not a policy decision");
            return None;
        };
        let Some(h) = p.headers else {
            tracing::debug!(?mark, "a logged packet too short for its addresses");
            return None;
        };
        let key = FlowKey { src: h.src, dst: h.dst, protocol: h.protocol, src_port: h.ports.map(|p| p.0), dst_port: h.ports.map(|p| p.1) };
        if !self.dedup.admit(key, mark, now) {
            return None;
        }
        Some(FlowRecord::judge(cluster, &self.node, mark, p.timestamp.unwrap_or(wall), &key))
    }
}

/// An append-only JSON lines file that rotates to `<path>.1` at a size.
pub struct FlowFile {
    path: PathBuf,
    file: File,
    size: u64,
    limit: u64,
}

impl FlowFile {
    /// Opens (creating it and its directory) the file at `path` for appending.
    pub fn open(path: &Path, limit: u64) -> anyhow::Result<FlowFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating the flow directory {}", dir.display()))?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("opening the flow file {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(FlowFile { path: path.to_path_buf(), file, size, limit })
    }

    /// Appends one record as one line (one write, so readers never see half a line
    /// of it), rotating first if the line would take the file past its limit.
    pub fn append(&mut self, record: &FlowRecord) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.limit {
            self.rotate()?;
        }
        self.file.write_all(&line).with_context(|| format!("appending to {}", self.path.display()))?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> anyhow::Result<()> {
        let old = rotated(&self.path);
        std::fs::rename(&self.path, &old).with_context(|| format!("rotating {} to {}", self.path.display(), old.display()))?;
        self.file = OpenOptions::new().create(true).append(true).open(&self.path).with_context(|| format!("opening the flow file {}", self.path.display()))?;
        self.size = 0;
        Ok(())
    }
}

/// Where a rotated flow file goes: `<node>.jsonl.1`.
pub fn rotated(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".1");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use std::time::{Duration, UNIX_EPOCH};
    use weft_kernel::nflog::PacketHeaders;

    fn record(i: u16) -> FlowRecord {
        let key = FlowKey { src: "10.0.0.1".parse().unwrap(), dst: "10.0.0.2".parse().unwrap(), protocol: 6, src_port: Some(i), dst_port: Some(80) };
        FlowRecord::new("node-1", FlowMark::EgressDenied, UNIX_EPOCH, &key, None)
    }

    fn lines(p: &Path) -> Vec<FlowRecord> {
        std::fs::read_to_string(p).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn the_flow_file_is_made_with_its_directory_and_holds_one_record_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = flow_file(dir.path(), "node-1");
        let mut f = FlowFile::open(&path, ROTATE_AT).unwrap();
        f.append(&record(1)).unwrap();
        f.append(&record(2)).unwrap();
        assert_eq!(lines(&path), vec![record(1), record(2)]);
        // Reopening appends.
        FlowFile::open(&path, ROTATE_AT).unwrap().append(&record(3)).unwrap();
        assert_eq!(lines(&path).len(), 3);
    }

    #[test]
    fn the_flow_file_rotates_at_its_limit_and_keeps_one_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flows/n.jsonl");
        let one = serde_json::to_vec(&record(1)).unwrap().len() as u64 + 1;
        // Room for three lines per file.
        let mut f = FlowFile::open(&path, one * 3).unwrap();
        for i in 1..=8 {
            f.append(&record(i)).unwrap();
        }
        let ports = |p: &Path| lines(p).iter().map(|r| r.src_port.unwrap()).collect::<Vec<_>>();
        assert_eq!(ports(&path), vec![7, 8]);
        assert_eq!(ports(&rotated(&path)), vec![4, 5, 6]);
        assert!(std::fs::metadata(&path).unwrap().len() <= one * 3);
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 2, "one old file is kept, no more");
    }

    /// An ICMP echo between two outside addresses, logged with `prefix`.
    fn logged(prefix: Option<&str>) -> LoggedPacket {
        LoggedPacket {
            group: FLOW_LOG_GROUP,
            prefix: prefix.map(str::to_string),
            hw_protocol: 0x0800,
            hook: 3,
            mark: None,
            timestamp: Some(UNIX_EPOCH + Duration::from_secs(5)),
            indev: None,
            outdev: None,
            headers: Some(PacketHeaders { src: IpAddr::from([192, 0, 2, 1]), dst: IpAddr::from([192, 0, 2, 2]), protocol: 1, ports: None }),
        }
    }

    #[test]
    fn only_policy_decisions_are_recorded_and_a_repeat_once() {
        let c = Cluster::default();
        let mut r = Recorder { node: "node-1".into(), dedup: Deduper::new() };
        let t0 = Instant::now();
        // Not ours: another prefix, no prefix.
        assert!(r.record(&c, &logged(Some("something else")), t0, UNIX_EPOCH).is_none());
        assert!(r.record(&c, &logged(None), t0, UNIX_EPOCH).is_none());
        let mut no_headers = logged(Some(FlowMark::IngressDenied.prefix()));
        no_headers.headers = None;
        assert!(r.record(&c, &no_headers, t0, UNIX_EPOCH).is_none());
        let first = r.record(&c, &logged(Some(FlowMark::IngressDenied.prefix())), t0, UNIX_EPOCH).expect("a record");
        assert_eq!(first.time, "1970-01-01T00:00:05.000Z", "the kernel's timestamp wins over the wall clock");
        assert_eq!((first.node.as_str(), first.protocol.as_str()), ("node-1", "ICMP"));
        assert!(r.record(&c, &logged(Some(FlowMark::IngressDenied.prefix())), t0 + Duration::from_secs(1), UNIX_EPOCH).is_none());
    }
}

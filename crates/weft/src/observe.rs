//! `weft observe`: the policy verdict flow records of every node of an instance
//! (`<state_dir>/nodes/<node>/flows/<node>.jsonl`, and its rotated `.1`), merged by
//! time, filtered by namespace, pod and verdict, printed as text lines or as the JSON
//! lines they are stored as. `--follow` keeps reading what the nodes append, across
//! rotations and nodes that appear later.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use weft_policy::flow::{FlowRecord, FlowVerdict};

/// How often `--follow` looks for new records.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

#[derive(clap::Args, Debug)]
pub struct ObserveArgs {
    #[arg(long, env = "WEFT_STATE_DIR", default_value_os_t = crate::default_state_dir())]
    pub state_dir: PathBuf,
    /// Only flows from or to pods in this namespace (and, with a bare --pod name, its namespace).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Only flows from or to this pod: `namespace/name`, or `name` (in --namespace, else `default`).
    #[arg(long)]
    pub pod: Option<String>,
    /// Only `allowed` or `denied` flows.
    #[arg(long, value_parser = ["allowed", "denied"])]
    pub verdict: Option<String>,
    /// Keep printing flows as they are recorded.
    #[arg(short, long)]
    pub follow: bool,
    /// `text` (one line per flow) or `json` (the JSON lines as stored: the export).
    #[arg(short, long, default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
}

/// What a record must match to be printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    namespace: Option<String>,
    /// `namespace/name`.
    pod: Option<String>,
    verdict: Option<FlowVerdict>,
}

impl Filter {
    pub fn new(namespace: Option<&str>, pod: Option<&str>, verdict: Option<&str>) -> Result<Filter> {
        let pod = match pod {
            None => None,
            Some(p) => Some(match p.split_once('/') {
                Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                    if let Some(want) = namespace.filter(|n| *n != ns) {
                        bail!("--pod {p} is in namespace {ns}, but --namespace is {want}");
                    }
                    p.to_string()
                }
                Some(_) => bail!("--pod {p:?}: expected namespace/name or name"),
                None => format!("{}/{p}", namespace.unwrap_or("default")),
            }),
        };
        let verdict = match verdict {
            None => None,
            Some(v) => Some(FlowVerdict::parse(v).with_context(|| format!("--verdict {v:?}: expected allowed or denied"))?),
        };
        Ok(Filter { namespace: namespace.map(str::to_string), pod, verdict })
    }

    pub fn matches(&self, r: &FlowRecord) -> bool {
        let ends = [r.src_pod.as_deref(), r.dst_pod.as_deref()];
        if let Some(v) = self.verdict {
            if r.verdict != v {
                return false;
            }
        }
        if let Some(ns) = &self.namespace {
            if !ends.iter().flatten().any(|p| p.split_once('/').is_some_and(|(n, _)| n == ns)) {
                return false;
            }
        }
        if let Some(pod) = &self.pod {
            if !ends.iter().flatten().any(|p| p == pod) {
                return false;
            }
        }
        true
    }
}

/// A stored line and the record it holds.
#[derive(Clone, Debug)]
struct Line {
    raw: String,
    record: FlowRecord,
}

/// Every node's current flow file (`<nodes>/<node>/flows/*.jsonl`), by path.
fn flow_files(state_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for node in std::fs::read_dir(state_dir.join("nodes")).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(node.path().join("flows")).into_iter().flatten().flatten() {
            let p = f.path();
            if p.extension().is_some_and(|e| e == "jsonl") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn rotated(path: &Path) -> PathBuf {
    weft_runtime::flow_log::rotated(path)
}

/// Parses complete lines; a line that does not parse is reported and skipped.
fn parse_lines(text: &str, from: &Path) -> Vec<Line> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match serde_json::from_str::<FlowRecord>(l) {
            Ok(record) => Some(Line { raw: l.to_string(), record }),
            Err(e) => {
                tracing::warn!(file = %from.display(), error = %e, "skipping a line that is not a flow record");
                None
            }
        })
        .collect()
}

/// Follows one flow file from where it was read: reads what is appended, and on
/// rotation drains the old file through its open handle before taking the new one.
struct Tail {
    path: PathBuf,
    file: Option<(File, u64)>,
    /// Bytes after the last newline (a line being written).
    partial: Vec<u8>,
}

impl Tail {
    fn new(path: PathBuf) -> Tail {
        Tail { path, file: None, partial: Vec::new() }
    }

    fn drain(&mut self, out: &mut Vec<Line>) {
        let Some((f, _)) = self.file.as_mut() else { return };
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return;
        }
        self.partial.extend_from_slice(&buf);
        if let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') {
            let complete: Vec<u8> = self.partial.drain(..=end).collect();
            out.extend(parse_lines(&String::from_utf8_lossy(&complete), &self.path));
        }
    }

    /// New complete lines since the last call.
    fn poll(&mut self) -> Vec<Line> {
        let mut out = Vec::new();
        self.drain(&mut out);
        let current = std::fs::metadata(&self.path).ok().map(|m| m.ino());
        let ours = self.file.as_ref().map(|(_, ino)| *ino);
        if current.is_some() && current != ours {
            // Rotated (or first seen): what the old file still held is in `out`.
            self.partial.clear();
            self.file = File::open(&self.path).ok().and_then(|f| {
                let ino = f.metadata().ok()?.ino();
                Some((f, ino))
            });
            self.drain(&mut out);
        } else if let Some((f, _)) = self.file.as_mut() {
            // Truncated in place: start over.
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if f.stream_position().is_ok_and(|pos| pos > len) {
                let _ = f.seek(SeekFrom::Start(0));
                self.partial.clear();
            }
        }
        out
    }
}

fn print(out: &mut impl Write, lines: &mut [Line], filter: &Filter, json: bool) -> std::io::Result<()> {
    // Stable: lines of one node with the same time keep their order.
    lines.sort_by(|a, b| a.record.time.cmp(&b.record.time));
    for l in lines.iter().filter(|l| filter.matches(&l.record)) {
        if json {
            writeln!(out, "{}", l.raw)?;
        } else {
            writeln!(out, "{}", l.record.text())?;
        }
    }
    out.flush()
}

pub fn run(args: ObserveArgs) -> Result<()> {
    let filter = Filter::new(args.namespace.as_deref(), args.pod.as_deref(), args.verdict.as_deref())?;
    if !args.state_dir.join("nodes").is_dir() {
        bail!("no nodes under {} (is this the state dir of `weft up`? set --state-dir or WEFT_STATE_DIR)", args.state_dir.display());
    }
    let json = args.output == "json";
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut tails: BTreeMap<PathBuf, Tail> = BTreeMap::new();
    let mut lines = Vec::new();
    for path in flow_files(&args.state_dir) {
        if let Ok(text) = std::fs::read_to_string(rotated(&path)) {
            lines.extend(parse_lines(&text, &rotated(&path)));
        }
        let mut t = Tail::new(path.clone());
        lines.extend(t.poll());
        tails.insert(path, t);
    }
    if print(&mut out, &mut lines, &filter, json).is_err() {
        // The reader went away (a closed pipe): nothing more to do.
        return Ok(());
    }
    if !args.follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(FOLLOW_POLL);
        for path in flow_files(&args.state_dir) {
            tails.entry(path.clone()).or_insert_with(|| Tail::new(path));
        }
        let mut lines: Vec<Line> = tails.values_mut().flat_map(|t| t.poll()).collect();
        if print(&mut out, &mut lines, &filter, json).is_err() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn rec(time: &str, verdict: FlowVerdict, src: Option<&str>, dst: Option<&str>) -> FlowRecord {
        FlowRecord {
            time: time.into(),
            node: "node-1".into(),
            direction: weft_policy::flow::Direction::Ingress,
            verdict,
            protocol: "TCP".into(),
            src_ip: IpAddr::from([10, 244, 1, 2]),
            src_pod: src.map(str::to_string),
            src_port: Some(40000),
            dst_ip: IpAddr::from([10, 244, 2, 3]),
            dst_pod: dst.map(str::to_string),
            dst_port: Some(80),
            policies: vec![],
        }
    }

    #[test]
    fn a_bare_pod_name_is_in_the_given_namespace_or_default() {
        assert_eq!(Filter::new(None, Some("web"), None).unwrap().pod.as_deref(), Some("default/web"));
        assert_eq!(Filter::new(Some("x"), Some("web"), None).unwrap().pod.as_deref(), Some("x/web"));
        assert_eq!(Filter::new(Some("x"), Some("x/web"), None).unwrap().pod.as_deref(), Some("x/web"));
        let e = Filter::new(Some("y"), Some("x/web"), None).unwrap_err().to_string();
        assert!(e.contains("--pod x/web is in namespace x, but --namespace is y"), "{e}");
        assert!(Filter::new(None, Some("a/b/c"), None).unwrap_err().to_string().contains("--pod \"a/b/c\""));
        assert!(Filter::new(None, None, Some("maybe")).unwrap_err().to_string().contains("--verdict \"maybe\""));
    }

    #[test]
    fn filters_match_either_end_and_the_verdict() {
        let r = rec("t", FlowVerdict::Denied, Some("x/a"), Some("y/b"));
        let m = |ns: Option<&str>, pod: Option<&str>, v: Option<&str>| Filter::new(ns, pod, v).unwrap().matches(&r);
        assert!(m(None, None, None));
        assert!(m(Some("x"), None, None) && m(Some("y"), None, None) && !m(Some("z"), None, None));
        assert!(m(None, Some("x/a"), None) && m(None, Some("y/b"), None) && !m(None, Some("x/b"), None));
        assert!(m(Some("y"), Some("b"), Some("denied")));
        assert!(!m(None, None, Some("allowed")));
        // A namespace never matches an outside address.
        let outside = rec("t", FlowVerdict::Denied, None, Some("y/b"));
        assert!(!Filter::new(Some("x"), None, None).unwrap().matches(&outside));
        // A namespace is not a prefix match.
        assert!(!Filter::new(Some("x-"), None, None).unwrap().matches(&r) && !Filter::new(Some(""), None, None).unwrap().matches(&r));
    }

    fn write_node(state: &Path, node: &str, records: &[FlowRecord]) -> PathBuf {
        let path = weft_runtime::flow_log::flow_file(&state.join("nodes").join(node), node);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text: String = records.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect();
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn every_nodes_records_are_merged_by_time_with_the_rotated_file_first() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_node(dir.path(), "node-1", &[rec("2026-01-01T00:00:03.000Z", FlowVerdict::Allowed, None, None)]);
        std::fs::write(rotated(&a), serde_json::to_string(&rec("2026-01-01T00:00:01.000Z", FlowVerdict::Denied, None, None)).unwrap() + "\nnot json\n").unwrap();
        write_node(dir.path(), "node-2", &[rec("2026-01-01T00:00:02.000Z", FlowVerdict::Denied, None, None)]);
        assert_eq!(flow_files(dir.path()).len(), 2);
        let mut lines = Vec::new();
        for p in flow_files(dir.path()) {
            lines.extend(parse_lines(&std::fs::read_to_string(rotated(&p)).unwrap_or_default(), &p));
            lines.extend(Tail::new(p).poll());
        }
        let mut out = Vec::new();
        print(&mut out, &mut lines, &Filter::default(), false).unwrap();
        let text = String::from_utf8(out).unwrap();
        let times: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
        assert_eq!(times, vec!["2026-01-01T00:00:01.000Z", "2026-01-01T00:00:02.000Z", "2026-01-01T00:00:03.000Z"]);
        let mut out = Vec::new();
        print(&mut out, &mut lines, &Filter::new(None, None, Some("denied")).unwrap(), true).unwrap();
        let json: Vec<FlowRecord> = String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(json.len(), 2);
        assert!(json.iter().all(|r| r.verdict == FlowVerdict::Denied));
    }

    #[test]
    fn following_reads_appended_lines_once_waits_for_half_lines_and_survives_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_node(dir.path(), "node-1", &[rec("1", FlowVerdict::Allowed, None, None)]);
        let mut t = Tail::new(path.clone());
        assert_eq!(t.poll().len(), 1);
        assert!(t.poll().is_empty());
        let line = |time: &str| serde_json::to_string(&rec(time, FlowVerdict::Denied, None, None)).unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        let two = line("2");
        write!(f, "{}", &two[..10]).unwrap();
        assert!(t.poll().is_empty(), "half a line waits");
        writeln!(f, "{}", &two[10..]).unwrap();
        assert_eq!(t.poll().iter().map(|l| l.record.time.clone()).collect::<Vec<_>>(), vec!["2"]);
        // The recorder rotates: one more line in the old file, then a new file.
        writeln!(f, "{}", line("3")).unwrap();
        std::fs::rename(&path, rotated(&path)).unwrap();
        std::fs::write(&path, line("4") + "\n").unwrap();
        let times: Vec<String> = t.poll().into_iter().map(|l| l.record.time).collect();
        assert_eq!(times, vec!["3", "4"]);
        assert!(t.poll().is_empty());
    }
}

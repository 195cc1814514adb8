//! The log shim: a small process per container (`weft log-shim`) that holds the read
//! ends of the container's stdout and stderr pipes and appends each line to the log
//! file as a CRI record, stamped with the time it was read.
//!
//! Why a process of its own rather than a task inside weft: the container's output
//! must keep flowing while weft is down (crashed, killed, restarting). A pipe whose
//! reader is gone kills the writer with SIGPIPE, and a pipe nobody drains blocks the
//! writer once its 64 KiB buffer is full; the shim lives as long as the container's
//! pipes do, so neither happens, and weft only ever reads the file. It exits when the
//! container (and everything it started that holds its stdout/stderr) has exited.
//!
//! File descriptors, set up by [`super::open`]: 0 is the stdout pipe, 3 the stderr
//! pipe, 1 the log file, whose exclusive `flock` tells readers that a writer is alive.

use super::cri::{self, Stream};
use chrono::{DateTime, Utc};
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Mutex;

/// The longest content of one record: longer lines are split into partial records,
/// as containerd does.
pub const MAX_LINE: usize = 16 * 1024;

/// The fd the stderr pipe arrives on.
pub const STDERR_FD: i32 = 3;

/// Splits a byte stream into records: full lines, and partial ones for lines longer
/// than `max`. Pure, so the splitting is tested without pipes.
pub struct Lines {
    buf: Vec<u8>,
    max: usize,
}

impl Lines {
    pub fn new(max: usize) -> Lines {
        Lines { buf: Vec::new(), max }
    }

    /// Adds bytes; returns the records now complete, as (partial, content).
    pub fn push(&mut self, data: &[u8]) -> Vec<(bool, Vec<u8>)> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            let window = &self.buf[..self.buf.len().min(self.max + 1)];
            if let Some(nl) = window.iter().position(|b| *b == b'\n') {
                out.push((false, self.buf[..nl].to_vec()));
                self.buf.drain(..=nl);
            } else if self.buf.len() > self.max {
                out.push((true, self.buf[..self.max].to_vec()));
                self.buf.drain(..self.max);
            } else {
                return out;
            }
        }
    }

    /// At end of stream: what is left, as a full line (containerd does the same).
    pub fn finish(&mut self) -> Option<(bool, Vec<u8>)> {
        (!self.buf.is_empty()).then(|| (false, std::mem::take(&mut self.buf)))
    }
}

/// Copies one stream into `out` as records until end of stream.
pub fn pump(mut input: impl Read, stream: Stream, out: &Mutex<impl Write>, clock: impl Fn() -> DateTime<Utc>) -> io::Result<()> {
    let mut lines = Lines::new(MAX_LINE);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let records = lines.push(&buf[..n]);
        if !records.is_empty() {
            let now = clock();
            let mut w = out.lock().unwrap_or_else(|p| p.into_inner());
            for (partial, content) in records {
                w.write_all(&cri::encode(now, stream, partial, &content))?;
            }
        }
    }
    if let Some((partial, content)) = lines.finish() {
        out.lock().unwrap_or_else(|p| p.into_inner()).write_all(&cri::encode(clock(), stream, partial, &content))?;
    }
    Ok(())
}

/// The shim process's body; returns its exit code.
pub fn main() -> i32 {
    // SAFETY: F_GETFD only reads the flags of a descriptor number.
    if [0, 1, STDERR_FD].iter().any(|fd| unsafe { libc::fcntl(*fd, libc::F_GETFD) } < 0) {
        eprintln!("weft log-shim: fds 0, 1 and {STDERR_FD} must be open (weft starts log shims itself, one per container)");
        return 2;
    }
    // SAFETY: the parent set up exactly these fds for this process (see `super::open`)
    // and nothing else in this process owns them.
    let (stdout, stderr, log) = unsafe { (OwnedFd::from_raw_fd(0), OwnedFd::from_raw_fd(STDERR_FD), OwnedFd::from_raw_fd(1)) };
    let log = Mutex::new(std::fs::File::from(log));
    let result = std::thread::scope(|s| {
        let log = &log;
        let err = s.spawn(move || pump(std::fs::File::from(stderr), Stream::Stderr, log, Utc::now));
        let out = pump(std::fs::File::from(stdout), Stream::Stdout, log, Utc::now);
        let err = err.join().unwrap_or_else(|_| Err(io::Error::other("stderr pump panicked")));
        out.and(err)
    });
    match result {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn lines_split_on_newlines_and_long_lines_become_partial_records() {
        let mut l = Lines::new(4);
        assert_eq!(l.push(b"ab"), vec![]);
        assert_eq!(l.push(b"c\nd"), vec![(false, b"abc".to_vec())]);
        assert_eq!(l.push(b"efghij\n\n"), vec![(true, b"defg".to_vec()), (false, b"hij".to_vec()), (false, b"".to_vec())]);
        // Exactly `max` bytes then the newline: one full record.
        assert_eq!(l.push(b"wxyz\n"), vec![(false, b"wxyz".to_vec())]);
        // `max` bytes and no newline yet: wait for the next byte to decide.
        assert_eq!(l.push(b"tail"), vec![]);
        assert_eq!(l.push(b"x"), vec![(true, b"tail".to_vec())]);
        assert_eq!(l.finish(), Some((false, b"x".to_vec())));
        assert_eq!(l.finish(), None);
    }

    #[test]
    fn pump_writes_stamped_records_and_the_unterminated_rest() {
        let out = Mutex::new(Vec::new());
        let t = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        pump(&b"one\ntwo"[..], Stream::Stderr, &out, || t).unwrap();
        let text = String::from_utf8(out.into_inner().unwrap()).unwrap();
        assert_eq!(text, "2024-01-02T03:04:05.000000000Z stderr F one\n2024-01-02T03:04:05.000000000Z stderr F two\n");
    }
}

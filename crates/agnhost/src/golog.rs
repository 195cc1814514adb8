//! Lines in the format of Go's standard `log` package (`2006/01/02 15:04:05
//! message` on stderr), so a pod's log reads as upstream agnhost's does, with
//! or without a tracing subscriber in the process.

use std::io::Write;

pub fn line(msg: std::fmt::Arguments<'_>) {
    let now = chrono::Local::now().format("%Y/%m/%d %H:%M:%S");
    let mut text = format!("{now} {msg}");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    // One write per line, so concurrent tasks never interleave within a line.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `golog!("Started HTTP server on port {}", port)`, like Go's log.Printf.
macro_rules! golog {
    ($($arg:tt)*) => { $crate::golog::line(format_args!($($arg)*)) };
}
pub(crate) use golog;

//! One error type that names the object an operation was on and what to do.

use std::io;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, coarsely, so callers can branch (e.g. treat `NotFound`
/// as success when deleting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Exists,
    Permission,
    Busy,
    Invalid,
    Other,
}

/// "cannot <op> <object>: <cause>; <hint>", e.g.
/// "cannot create link weft0 (bridge): File exists (os error 17); it already exists: delete it or pick another name".
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {object}: {source}{}{}", detail_suffix(.detail), hint_suffix(.kind))]
pub struct Error {
    op: &'static str,
    object: String,
    kind: ErrorKind,
    #[source]
    source: io::Error,
    /// The kernel's own words (netlink extended ack), when it gave some.
    detail: Option<String>,
}

fn detail_suffix(detail: &Option<String>) -> String {
    match detail {
        Some(d) => format!(" ({d})"),
        None => String::new(),
    }
}

fn hint_suffix(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "; it does not exist (was it deleted, or is this the wrong netns?)",
        ErrorKind::Exists => "; it already exists: delete it or pick another name",
        ErrorKind::Permission => "; this needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)",
        ErrorKind::Busy => "; it is in use: retry, or remove what uses it first",
        ErrorKind::Invalid | ErrorKind::Other => "",
    }
}

impl Error {
    pub fn new(op: &'static str, object: impl Into<String>, source: io::Error) -> Self {
        let kind = kind_of(&source);
        Error {
            op,
            object: object.into(),
            kind,
            source,
            detail: None,
        }
    }

    /// Adds the kernel's explanation (extended ack) to the message.
    /// Appends to the explanation (the kernel's extended ack, or context).
    pub fn with_detail(mut self, detail: Option<String>) -> Self {
        if let Some(d) = detail.filter(|d| !d.is_empty()) {
            self.detail = Some(match self.detail.take() {
                Some(old) => format!("{old}; {d}"),
                None => d,
            });
        }
        self
    }

    /// The object the failed operation was on, e.g. "set inet weft/services".
    pub fn object(&self) -> &str {
        &self.object
    }

    pub(crate) fn from_nl(op: &'static str, object: impl Into<String>, e: rtnetlink::Error) -> Self {
        let io = match e {
            rtnetlink::Error::NetlinkError(msg) => msg.to_io(),
            other => io::Error::other(other.to_string()),
        };
        Error::new(op, object, io)
    }

    pub(crate) fn invalid(op: &'static str, object: impl Into<String>, why: impl Into<String>) -> Self {
        Error {
            op,
            object: object.into(),
            kind: ErrorKind::Invalid,
            source: io::Error::new(io::ErrorKind::InvalidInput, why.into()),
            detail: None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    pub fn is_exists(&self) -> bool {
        self.kind == ErrorKind::Exists
    }

    /// The raw errno, when the kernel gave one.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

fn kind_of(e: &io::Error) -> ErrorKind {
    use nix::libc;
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENODEV | libc::ESRCH | libc::EADDRNOTAVAIL | libc::ENXIO) => {
            ErrorKind::NotFound
        }
        Some(libc::EEXIST) => ErrorKind::Exists,
        Some(libc::EPERM | libc::EACCES) => ErrorKind::Permission,
        Some(libc::EBUSY | libc::ERESTART) => ErrorKind::Busy,
        Some(libc::EINVAL | libc::ERANGE | libc::EOPNOTSUPP) => ErrorKind::Invalid,
        _ => match e.kind() {
            io::ErrorKind::NotFound => ErrorKind::NotFound,
            io::ErrorKind::AlreadyExists => ErrorKind::Exists,
            io::ErrorKind::PermissionDenied => ErrorKind::Permission,
            io::ErrorKind::InvalidInput => ErrorKind::Invalid,
            _ => ErrorKind::Other,
        },
    }
}

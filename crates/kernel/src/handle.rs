//! An rtnetlink connection bound to one network namespace.
//!
//! A netlink socket belongs to the netns of the thread that opened it, for its
//! whole life. So [`Handle::open`] opens the socket on a short-lived thread
//! inside the target netns and then drives it from the caller's tokio runtime:
//! one process can hold handles into many namespaces at once.

use crate::error::{Error, Result};
use crate::netns::{run_in, Netns};
use netlink_sys::{AsyncSocket, TokioSocket};
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockProtocol, SockType};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::sync::Arc;

/// Cheap to clone; the connection task stops when the last clone is dropped.
#[derive(Clone)]
pub struct Handle {
    nl: rtnetlink::Handle,
    _conn: Arc<ConnTask>,
}

/// netlink-proto's connection future never ends on its own while its
/// unsolicited-message channel is open, so tie its life to the handles.
struct ConnTask(tokio::task::JoinHandle<()>);

impl Drop for ConnTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Handle {
    /// A connection in the calling thread's netns. Needs a tokio runtime.
    pub fn current() -> Result<Handle> {
        Handle::from_fd(route_socket().map_err(|e| Error::new("open", "rtnetlink socket", e))?)
    }

    /// A connection inside `ns`. Needs a tokio runtime (the caller's).
    pub fn open(ns: &Netns) -> Result<Handle> {
        let fd = run_in(ns, route_socket)?
            .map_err(|e| Error::new("open", format!("rtnetlink socket in {}", ns.describe()), e))?;
        Handle::from_fd(fd)
    }

    /// Like [`Handle::open`], also running `f` on the same short-lived thread
    /// inside `ns` (e.g. a sysctl write), to pay for one thread, not two.
    pub fn open_with<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> Result<(Handle, T)> {
        let (fd, out) = run_in(ns, || (route_socket(), f()))?;
        let fd = fd.map_err(|e| Error::new("open", format!("rtnetlink socket in {}", ns.describe()), e))?;
        Ok((Handle::from_fd(fd)?, out))
    }

    fn from_fd(fd: OwnedFd) -> Result<Handle> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::invalid(
                "open",
                "rtnetlink socket",
                "no tokio runtime: call from async code",
            ));
        }
        // SAFETY: `fd` is a freshly created, owned netlink socket; ownership
        // moves into the TokioSocket, which closes it on drop.
        let mut sock = unsafe { TokioSocket::from_raw_fd(fd.into_raw_fd()) };
        // Extended acks carry the kernel's reason string with an error.
        let _ = sock.socket_mut().set_ext_ack(true);
        let (conn, nl, _unsolicited) = rtnetlink::from_socket(sock);
        let task = tokio::spawn(conn);
        Ok(Handle {
            nl,
            _conn: Arc::new(ConnTask(task)),
        })
    }

    pub(crate) fn nl(&self) -> &rtnetlink::Handle {
        &self.nl
    }
}

fn route_socket() -> std::io::Result<OwnedFd> {
    Ok(socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?)
}

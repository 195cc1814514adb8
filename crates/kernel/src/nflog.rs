//! nfnetlink_log: the packets that nftables `log group N` rules copy to userspace
//! (NFNL_SUBSYS_ULOG over NETLINK_NETFILTER), with their log prefix and 5-tuple.
//!
//! ```no_run
//! # fn main() -> weft_kernel::Result<()> {
//! let mut log = weft_kernel::nflog::Nflog::open(None, 7, 128)?;
//! for p in log.recv(Some(std::time::Duration::from_secs(1)))? {
//!     println!("{:?} {:?}", p.prefix, p.headers);
//! }
//! # Ok(()) }
//! ```

mod parse;
mod socket;

pub use parse::{parse_datagram, parse_headers, parse_packet, LoggedPacket, PacketHeaders, ParseError};
pub use socket::Nflog;

//! weft-kernel: the only code in weft that talks to the kernel.
//!
//! - [`Netns`]: network namespaces without global names (bind-mounted under the
//!   caller's state dir), and [`run_in`]/[`run_in_async`] to run code inside one
//!   on a fresh thread, so callers never switch their own threads.
//! - [`Handle`]: an rtnetlink connection bound to one netns, with links, veths,
//!   bridges, vxlan, addresses, routes, neighbours and FDB entries.
//! - [`sysctl`]: /proc/sys writes made from a thread inside the target netns.
//! - [`nft`]: nf_tables rulesets (typed, atomic batches, read-back) and
//!   conntrack entries, over nfnetlink.
//! - [`nflog`]: packets logged by `log group` rules (nfnetlink_log).
//!
//! Everything goes through netlink or /proc/sys; nothing shells out.

mod addr;
mod bridge;
mod error;
mod gso;
mod handle;
mod link;
mod neigh;
mod netns;
pub mod nflog;
pub mod nft;
mod route;
pub mod sysctl;
mod veth;
mod vxlan;

pub use addr::Address;
pub use error::{Error, ErrorKind, Result};
pub use gso::BIG_TCP_SIZE;
pub use handle::Handle;
pub use link::{Link, Mac};
pub use neigh::{FdbEntry, Neighbour};
pub use netns::{run_in, run_in_async, Netns};
pub use route::{Route, MAIN_TABLE};
pub use veth::VethSpec;
pub use vxlan::{VxlanInfo, VxlanSpec};

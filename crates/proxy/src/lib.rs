//! weft's service proxy, kube-proxy's job done on nftables.
//!
//! Compile, then apply. The pure half lives here:
//! - [`service`]: a Service's ports as the proxy sees them (one [`ServicePort`] per port and
//!   family: ClusterIP, NodePort, external and load-balancer IPs, traffic policies, affinity);
//! - [`endpoints`]: EndpointSlices folded into per-port endpoint lists (named target ports
//!   resolved per slice, duplicates across slices merged);
//! - [`categorize`]: which endpoints Cluster and Local traffic policy may use (ready, else
//!   serving-and-terminating), as upstream;
//! - [`plan`]: one service port's rules: the map elements that capture its addresses and the
//!   chains that balance, masquerade and DNAT, in a small typed rule language that the
//!   applier renders into nf_tables expressions.
//!
//! Each service port compiles on its own, so a change to one service recompiles and
//! re-applies that service only: the cost of an update does not grow with the cluster.

pub mod apply;
pub mod categorize;
pub mod diff;
pub mod endpoints;
mod heap;
pub mod layout;
pub mod metrics;
pub mod parallel;
pub mod plan;
pub mod registry;
pub mod render;
pub mod service;
pub mod state;

pub use endpoints::Endpoint;
pub use heap::trim_heap;
pub use plan::{compile, NodeContext, Rule, ServiceRules, Verdict};
pub use service::{Family, Proto, ServicePort, ServicePortName};
pub use state::{Change, ProxyState};

//! NetworkPolicy for weft.
//!
//! - [`model`]: the cluster as policy sees it (namespaces, pods, policies), kept live
//!   from watch events; the semantics of conformance/netpol/README.md section 2.
//! - [`evaluate`]: the verdict for one connection, with the policies and rules that
//!   decide it on each side (what `weft explain` and the flow records print).
//! - [`plan`]: the per-node plan the enforcer is compiled to: which local pods are
//!   isolated in each direction, and the allowed (peer, protocol, port) tuples of each
//!   group of pods that share them. Pure data.
//! - [`compile`]: model -> plan for one node.
//! - [`corpus`]: the netpol-conformance-corpus/v1 format (conformance/netpol/cases.yaml),
//!   its IP templates, and its replay through the model.
//! - [`flow`]: policy verdict flow records (what the enforcer logged, and why).
//! - [`render`]: a node's plan as nftables objects (pure); [`apply`]: the enforcer
//!   that makes the node's table match it, incrementally and without gaps.

pub mod apply;
pub mod compile;
pub mod corpus;
pub mod evaluate;
pub mod explain;
pub mod flow;
pub mod model;
pub mod plan;
pub mod render;

pub use evaluate::{Query, RuleRef, Side, Verdict};
pub use model::{Cluster, NamedPort, PodInfo, PodKey, Protocol};
pub use plan::{AllowSet, GroupId, IpRange, NodePlan, PortAllow};

//! `weft explain`: the verdict for one connection in words, from the same model the
//! enforcer is compiled from.
//!
//! INTERFACE SKELETON (see model.rs).

use crate::evaluate::Query;
use crate::model::Cluster;

/// A human report: source and destination, protocol/port, the verdict, and for each
/// direction the policy and rule that decide it (or that the pod is not isolated).
pub fn explain(_cluster: &Cluster, _q: &Query) -> String {
    todo!("model implementation")
}

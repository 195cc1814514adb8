//! Label and field selectors, as `?labelSelector=` / `?fieldSelector=` and as
//! `LabelSelector` objects in specs.

mod field;
mod label;

pub use field::{FieldRequirement, FieldSelector};
pub use label::{LabelSelector, Operator, Requirement};

//! Label and field selectors, as `?labelSelector=` / `?fieldSelector=` and as
//! `LabelSelector` objects in specs.

mod field;
mod label;

pub use field::{value_string as field_value_string, FieldRequirement, FieldSelector};
pub use label::{LabelSelector, Operator, Requirement};

//! weft's object model: everything about Kubernetes objects that needs no I/O.
//!
//! Objects travel as `serde_json::Value` so that built-in kinds and custom resources
//! share one path; each concern (defaulting, validation, patching, table printing,
//! selectors) lives in its own module and is dispatched by [`GroupKind`].

pub mod error;
pub mod gk;
pub mod meta;
pub mod resources;
pub mod selector;
pub mod patch;
pub mod table;
pub mod validate;
pub mod defaults;

pub use error::{ApiError, FieldError, FieldErrorType};
pub use gk::GroupKind;

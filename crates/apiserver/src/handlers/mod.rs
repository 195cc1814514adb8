//! The REST verbs.

pub mod delete;
pub mod read;
pub mod watch;
pub mod write;

//! CNI errors: the spec's well-known codes plus weft's own (100+), and the
//! error JSON the spec prescribes.

use serde_json::{json, Value};

/// Error codes. 1-99 are the spec's well-known codes; 100+ are weft's.
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Unsupported field in the network configuration (message names key and value).
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist: the runtime need not clean up.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid or missing environment variables (message names them).
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure, e.g. reading stdin or the IPAM store.
    pub const IO: u32 = 5;
    /// Failed to decode content (bad JSON).
    pub const DECODE: u32 = 6;
    /// Invalid network configuration.
    pub const INVALID_CONFIG: u32 = 7;
    /// Transient condition: retry later.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot serve ADDs.
    pub const NOT_AVAILABLE: u32 = 50;
    /// STATUS: not available, and existing pods may have limited connectivity.
    pub const LIMITED_CONNECTIVITY: u32 = 51;
    /// ADD for an attachment (container id + ifname) that already exists.
    pub const ALREADY_ATTACHED: u32 = 100;
    /// CHECK found the attachment damaged or missing something.
    pub const CHECK_FAILED: u32 = 101;
    /// No free address left in a subnet.
    pub const POOL_EXHAUSTED: u32 = 102;
    /// A kernel (netlink, netns, sysctl) operation failed.
    pub const KERNEL: u32 = 103;
}

/// An error as the CNI spec shapes it: a code, a short message, details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}{}", if .details.is_empty() { String::new() } else { format!(": {}", .details) })]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    pub fn invalid_config(msg: impl Into<String>) -> Self {
        CniError::new(code::INVALID_CONFIG, msg)
    }

    /// The error JSON for stdout, stamped with the version in use.
    pub fn to_json(&self, cni_version: &str) -> Value {
        let mut v = json!({
            "cniVersion": cni_version,
            "code": self.code,
            "msg": self.msg,
        });
        if !self.details.is_empty() {
            v["details"] = Value::String(self.details.clone());
        }
        v
    }
}

impl From<weft_kernel::Error> for CniError {
    fn from(e: weft_kernel::Error) -> Self {
        CniError::new(code::KERNEL, e.to_string())
    }
}

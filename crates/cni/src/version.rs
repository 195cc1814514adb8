//! CNI spec versions: which ones weft-cni speaks and what each allows.

use crate::error::{code, CniError};
use std::fmt;

/// The spec versions weft-cni supports, oldest first. 0.1.0 and 0.2.0 used a
/// different result shape (ip4/ip6) that no current runtime asks for.
pub const SUPPORTED: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The newest supported version, used when the request names none we can read.
pub const LATEST: &str = "1.1.0";

/// A supported spec version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V0_3_0,
    V0_3_1,
    V0_4_0,
    V1_0_0,
    V1_1_0,
}

impl Version {
    /// Parses a `cniVersion`; anything unsupported is error code 1, naming
    /// what weft-cni does support. An absent version means 0.1.0 (as libcni
    /// reads it), which is unsupported.
    pub fn negotiate(requested: Option<&str>) -> Result<Version, CniError> {
        let v = requested.unwrap_or("0.1.0");
        Ok(match v {
            "0.3.0" => Version::V0_3_0,
            "0.3.1" => Version::V0_3_1,
            "0.4.0" => Version::V0_4_0,
            "1.0.0" => Version::V1_0_0,
            "1.1.0" => Version::V1_1_0,
            _ => {
                return Err(CniError::new(
                    code::INCOMPATIBLE_VERSION,
                    format!("incompatible CNI version {v:?}"),
                )
                .with_details(format!("weft-cni supports {}", SUPPORTED.join(", "))))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V0_3_0 => "0.3.0",
            Version::V0_3_1 => "0.3.1",
            Version::V0_4_0 => "0.4.0",
            Version::V1_0_0 => "1.0.0",
            Version::V1_1_0 => "1.1.0",
        }
    }

    /// CHECK arrived in 0.4.0.
    pub fn has_check(self) -> bool {
        self >= Version::V0_4_0
    }

    /// GC and STATUS arrived in 1.1.0.
    pub fn has_gc_and_status(self) -> bool {
        self >= Version::V1_1_0
    }

    /// Results before 1.0.0 carry `"version": "4"|"6"` in each `ips` entry.
    pub fn ips_have_version(self) -> bool {
        self < Version::V1_0_0
    }

    /// 1.1.0 added `mtu` (and more) to interfaces and route attributes.
    pub fn has_interface_mtu(self) -> bool {
        self >= Version::V1_1_0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_version_negotiates_to_itself() {
        for v in SUPPORTED {
            assert_eq!(Version::negotiate(Some(v)).unwrap().as_str(), v);
        }
    }

    #[test]
    fn unsupported_or_missing_version_is_error_code_1_listing_supported() {
        for v in [Some("0.2.0"), Some("2.0.0"), Some("1.0"), Some(""), None] {
            let e = Version::negotiate(v).unwrap_err();
            assert_eq!(e.code, code::INCOMPATIBLE_VERSION, "{v:?}");
            assert!(e.details.contains("1.1.0"), "{e}");
        }
    }

    #[test]
    fn feature_gates_follow_the_spec_history() {
        let v = |s| Version::negotiate(Some(s)).unwrap();
        assert!(!v("0.3.1").has_check() && v("0.4.0").has_check());
        assert!(!v("1.0.0").has_gc_and_status() && v("1.1.0").has_gc_and_status());
        assert!(v("0.4.0").ips_have_version() && !v("1.0.0").ips_have_version());
    }
}

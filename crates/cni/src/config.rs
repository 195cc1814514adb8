//! The network configuration (JSON on stdin, or built in Rust by the local
//! runtime), parsed and validated without touching the system.

use crate::error::{code, CniError};
use crate::request::Attachment;
use crate::result::Dns;
use crate::version::Version;
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::PathBuf;

pub const DEFAULT_BRIDGE: &str = "weft0";
/// For a config that gives none: a 1500-byte underlay minus the 50 bytes VXLAN over
/// IPv4 adds, which fits either backend there. weft's own node agent always sets the
/// MTU from its backend and underlay (`Backend::pod_mtu`): 1500 for `direct`.
pub const DEFAULT_MTU: u32 = 1450;
pub const DEFAULT_DATA_DIR: &str = "/var/lib/weft/cni";

/// A weft network, as in the CNI network configuration:
///
/// ```json
/// {
///   "cniVersion": "1.1.0",          // required; 0.3.0, 0.3.1, 0.4.0, 1.0.0 or 1.1.0
///   "name": "weft",                 // required; [A-Za-z0-9][A-Za-z0-9_.-]*
///   "type": "weft-cni",             // required; "weft-cni" (or "weft")
///   "bridge": "weft0",              // node bridge name (default "weft0", <= 15 chars)
///   "mtu": 1450,                    // MTU of pod eth0, host veth and bridge; default
///                                   // 1450 = 1500 underlay - 50 VXLAN overhead
///   "hairpin": true,                // hairpin mode on the pod's bridge port (default true)
///   "gsoMaxSize": 262144,           // BIG TCP: GSO/GRO size limit of pod eth0, host veth
///                                   // and bridge, 65536..=524280 (default: the kernel's
///                                   // 64 KiB). Only where every device on the pods'
///                                   // paths, the node's uplink included, allows as much,
///                                   // and never with an overlay: a smaller device makes
///                                   // the kernel cut segments up in software.
///   "ipam": {
///     "type": "weft",               // optional; weft-cni's IPAM is built in
///     "subnets": ["10.244.1.0/24", "fd00:10:244:1::/64"],  // the node's pod CIDR(s):
///                                   // one per family, both for dual-stack
///     "dataDir": "/var/lib/weft/cni" // where allocations persist (default shown)
///   },
///   "dns": { "nameservers": ["10.96.0.10"], "domain": "cluster.local",
///            "search": ["default.svc.cluster.local"], "options": ["ndots:5"] }  // optional, echoed in results
/// }
/// ```
///
/// The spec's `args`, `runtimeConfig`, `capabilities` are accepted and
/// ignored; `prevResult` and the GC attachment lists are read per command.
/// Any other field is rejected (error 2, naming it), so typos never pass
/// silently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    pub cni_version: Version,
    pub name: String,
    pub bridge: String,
    pub mtu: u32,
    pub hairpin: bool,
    /// BIG TCP: the GSO/GRO size limit of the pod's links and the bridge.
    pub gso_max_size: Option<u32>,
    pub ipam: IpamConfig,
    pub dns: Dns,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpamConfig {
    /// At most one subnet per family; the gateway is the first address.
    pub subnets: Vec<IpNet>,
    /// Allocations live in `<data_dir>/<network name>/`.
    pub data_dir: PathBuf,
}

impl NetConfig {
    /// A config with defaults, for in-process callers.
    pub fn new(name: &str, subnets: Vec<IpNet>, data_dir: PathBuf) -> Result<NetConfig, CniError> {
        let c = NetConfig {
            cni_version: Version::V1_1_0,
            name: name.to_string(),
            bridge: DEFAULT_BRIDGE.to_string(),
            mtu: DEFAULT_MTU,
            hairpin: true,
            gso_max_size: None,
            ipam: IpamConfig { subnets, data_dir },
            dns: Dns::default(),
        };
        c.validate()?;
        Ok(c)
    }

    /// Checks what JSON types cannot: names, MTU, subnets.
    pub fn validate(&self) -> Result<(), CniError> {
        if !valid_name(&self.name) {
            return Err(CniError::invalid_config(format!(
                "invalid network name {:?}: must start with a letter or digit, then letters, digits, '_', '.' or '-'",
                self.name
            )));
        }
        if let Err(why) = crate::request::check_ifname(&self.bridge) {
            return Err(CniError::invalid_config(format!("invalid bridge name {:?}: {why}", self.bridge)));
        }
        let has_v6 = self.ipam.subnets.iter().any(|s| matches!(s, IpNet::V6(_)));
        let min_mtu = if has_v6 { 1280 } else { 576 };
        if !(min_mtu..=65535).contains(&self.mtu) {
            return Err(CniError::invalid_config(format!(
                "invalid mtu {}: must be {min_mtu}..=65535{}",
                self.mtu,
                if has_v6 { " (IPv6 needs at least 1280)" } else { "" }
            )));
        }
        if let Some(g) = self.gso_max_size {
            if !(65536..=524280).contains(&g) {
                return Err(CniError::invalid_config(format!(
                    "invalid gsoMaxSize {g}: must be 65536..=524280 (the kernel's GSO limits), or left out"
                )));
            }
        }
        let subnets = &self.ipam.subnets;
        if subnets.is_empty() || subnets.len() > 2 {
            return Err(CniError::invalid_config(format!(
                "ipam.subnets must list one or two subnets (one per family), got {}",
                subnets.len()
            )));
        }
        if subnets.len() == 2 && subnets[0].addr().is_ipv4() == subnets[1].addr().is_ipv4() {
            return Err(CniError::invalid_config(format!(
                "ipam.subnets {} and {} are the same family: give at most one IPv4 and one IPv6 subnet",
                subnets[0], subnets[1]
            )));
        }
        for s in subnets {
            if s.trunc() != *s {
                return Err(CniError::invalid_config(format!(
                    "ipam.subnets entry {s} has host bits set: did you mean {}?",
                    s.trunc()
                )));
            }
            let max = if s.addr().is_ipv4() { 30 } else { 126 };
            if s.prefix_len() > max {
                return Err(CniError::invalid_config(format!(
                    "ipam.subnets entry {s} is too small: needs a /{max} or larger for a gateway and pods"
                )));
            }
        }
        if self.ipam.data_dir.as_os_str().is_empty() || !self.ipam.data_dir.is_absolute() {
            return Err(CniError::invalid_config(format!(
                "ipam.dataDir {:?} must be an absolute path",
                self.ipam.data_dir
            )));
        }
        Ok(())
    }

    /// Where this network's allocations live.
    pub fn store_dir(&self) -> PathBuf {
        self.ipam.data_dir.join(&self.name)
    }
}

/// Everything one invocation's stdin carries.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub net: NetConfig,
    /// The previous plugin's (ADD) or previous ADD's (CHECK/DEL) result, raw.
    pub prev_result: Option<Value>,
    /// GC: attachments that are still valid (under either spelling).
    pub valid_attachments: Option<Vec<Attachment>>,
}

/// Top-level fields weft-cni understands: the spec's and its own.
const KNOWN_FIELDS: [&str; 15] = [
    "cniVersion",
    "name",
    "type",
    "bridge",
    "mtu",
    "hairpin",
    "gsoMaxSize",
    "ipam",
    "dns",
    "args",
    "runtimeConfig",
    "capabilities",
    "prevResult",
    "cni.dev/valid-attachments",
    "cni.dev/attachments",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIpam {
    #[serde(rename = "type")]
    kind: Option<String>,
    subnets: Vec<IpNet>,
    #[serde(rename = "dataDir")]
    data_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
struct RawAttachment {
    #[serde(rename = "containerID")]
    container_id: String,
    ifname: String,
}

/// Parses stdin. Errors: 6 bad JSON, 1 unsupported version, 2 unknown
/// field, 7 invalid values.
pub fn parse(bytes: &[u8]) -> Result<Parsed, CniError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        CniError::new(code::DECODE, "cannot decode the network configuration").with_details(e.to_string())
    })?;
    let Value::Object(obj) = value else {
        return Err(CniError::new(code::DECODE, "the network configuration must be a JSON object"));
    };
    let version = Version::negotiate(obj.get("cniVersion").and_then(Value::as_str))?;
    for (k, v) in &obj {
        if !KNOWN_FIELDS.contains(&k.as_str()) {
            return Err(CniError::new(
                code::UNSUPPORTED_FIELD,
                format!("unsupported field {k:?} = {v} in the network configuration"),
            ));
        }
    }
    let name = string_field(&obj, "name")?.ok_or_else(|| CniError::invalid_config("missing field \"name\""))?;
    match string_field(&obj, "type")?.as_deref() {
        Some("weft-cni" | "weft") => {}
        Some(other) => {
            return Err(CniError::invalid_config(format!(
                "field \"type\" is {other:?}: this plugin is \"weft-cni\""
            )))
        }
        None => return Err(CniError::invalid_config("missing field \"type\"")),
    }
    let bridge = string_field(&obj, "bridge")?.unwrap_or_else(|| DEFAULT_BRIDGE.to_string());
    let mtu = match obj.get("mtu") {
        None | Some(Value::Null) => DEFAULT_MTU,
        Some(v) => v
            .as_u64()
            .and_then(|m| u32::try_from(m).ok())
            .ok_or_else(|| CniError::invalid_config(format!("field \"mtu\" must be a positive integer, got {v}")))?,
    };
    let hairpin = match obj.get("hairpin") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(CniError::invalid_config(format!("field \"hairpin\" must be true or false, got {v}"))),
    };
    let gso_max_size = match obj.get("gsoMaxSize") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().and_then(|m| u32::try_from(m).ok()).ok_or_else(|| {
            CniError::invalid_config(format!("field \"gsoMaxSize\" must be a positive integer, got {v}"))
        })?),
    };
    let ipam: RawIpam = match obj.get("ipam") {
        None => return Err(CniError::invalid_config("missing field \"ipam\" (with \"subnets\")")),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| CniError::invalid_config(format!("invalid field \"ipam\": {e}")))?,
    };
    if let Some(kind) = ipam.kind.as_deref() {
        if kind != "weft" {
            return Err(CniError::new(
                code::UNSUPPORTED_FIELD,
                format!("unsupported field \"ipam.type\" = {kind:?}: weft-cni's IPAM is built in (use \"weft\" or omit it)"),
            ));
        }
    }
    let dns: Dns = match obj.get("dns") {
        None | Some(Value::Null) => Dns::default(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| CniError::invalid_config(format!("invalid field \"dns\": {e}")))?,
    };
    let net = NetConfig {
        cni_version: version,
        name,
        bridge,
        mtu,
        hairpin,
        gso_max_size,
        ipam: IpamConfig {
            subnets: ipam.subnets,
            data_dir: ipam.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        },
        dns,
    };
    net.validate()?;

    let prev_result = obj.get("prevResult").filter(|v| !v.is_null()).cloned();
    // Spec 1.1.0 first named the list "cni.dev/attachments"; libcni now sends
    // both spellings with the same value. Accept either.
    let list = obj
        .get("cni.dev/valid-attachments")
        .or_else(|| obj.get("cni.dev/attachments"))
        .filter(|v| !v.is_null());
    let valid_attachments = match list {
        None => None,
        Some(v) => {
            let raw: Vec<RawAttachment> = serde_json::from_value(v.clone()).map_err(|e| {
                CniError::invalid_config(format!("invalid \"cni.dev/valid-attachments\": {e}"))
            })?;
            Some(
                raw.into_iter()
                    .map(|a| Attachment {
                        container_id: a.container_id,
                        ifname: a.ifname,
                    })
                    .collect(),
            )
        }
    };
    Ok(Parsed {
        net,
        prev_result,
        valid_attachments,
    })
}

fn string_field(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, CniError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(CniError::invalid_config(format!("field {key:?} must be a string, got {v}"))),
    }
}

/// Network names and container ids share the spec's character rules.
pub(crate) fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Parsed, CniError> {
        parse(s.as_bytes())
    }

    const GOOD: &str = r#"{"cniVersion":"1.1.0","name":"weft","type":"weft-cni",
        "ipam":{"subnets":["10.244.1.0/24","fd00:10:244:1::/64"],"dataDir":"/tmp/x"}}"#;

    #[test]
    fn minimal_config_gets_defaults() {
        let p = parse_str(GOOD).unwrap();
        assert_eq!(p.net.bridge, "weft0");
        assert_eq!(p.net.mtu, 1450);
        assert!(p.net.hairpin);
        assert_eq!(p.net.gso_max_size, None);
        assert_eq!(p.net.ipam.subnets.len(), 2);
        assert_eq!(p.net.store_dir(), PathBuf::from("/tmp/x/weft"));
        assert!(p.prev_result.is_none() && p.valid_attachments.is_none());
    }

    #[test]
    fn bad_json_is_decode_error_6() {
        assert_eq!(parse_str("{nope").unwrap_err().code, code::DECODE);
        assert_eq!(parse_str("[1]").unwrap_err().code, code::DECODE);
    }

    #[test]
    fn unknown_field_is_error_2_naming_key_and_value() {
        let e = parse_str(&GOOD.replace("\"name\"", "\"bridgee\":\"x\",\"name\"")).unwrap_err();
        assert_eq!(e.code, code::UNSUPPORTED_FIELD);
        assert!(e.msg.contains("bridgee") && e.msg.contains("\"x\""), "{e}");
        let e = parse_str(&GOOD.replace("\"subnets\"", "\"type\":\"host-local\",\"subnets\"")).unwrap_err();
        assert_eq!(e.code, code::UNSUPPORTED_FIELD);
        assert!(e.msg.contains("host-local"), "{e}");
    }

    #[test]
    fn version_is_checked_before_fields() {
        let e = parse_str(&GOOD.replace("1.1.0", "9.9.9").replace("\"name\"", "\"zzz\":1,\"name\"")).unwrap_err();
        assert_eq!(e.code, code::INCOMPATIBLE_VERSION);
    }

    #[test]
    fn invalid_values_are_error_7_with_a_reason() {
        let cases = [
            (GOOD.replace("\"weft\",\"type\"", "\"-bad\",\"type\""), "network name"),
            (GOOD.replace("weft-cni", "bridge"), "type"),
            (GOOD.replace("\"ipam\"", "\"mtu\":100,\"ipam\""), "mtu"),
            (GOOD.replace("\"ipam\"", "\"mtu\":\"big\",\"ipam\""), "mtu"),
            (GOOD.replace("\"ipam\"", "\"gsoMaxSize\":1000,\"ipam\""), "gsoMaxSize"),
            (GOOD.replace("\"ipam\"", "\"gsoMaxSize\":1048576,\"ipam\""), "gsoMaxSize"),
            (GOOD.replace("\"ipam\"", "\"gsoMaxSize\":true,\"ipam\""), "gsoMaxSize"),
            (GOOD.replace("\"ipam\"", "\"bridge\":\"a-very-long-bridge-name\",\"ipam\""), "bridge"),
            (GOOD.replace("10.244.1.0/24", "10.244.1.5/24"), "host bits"),
            (GOOD.replace("10.244.1.0/24", "10.244.1.0/31"), "too small"),
            (GOOD.replace("fd00:10:244:1::/64", "10.9.0.0/24"), "same family"),
            (GOOD.replace("\"10.244.1.0/24\",\"fd00:10:244:1::/64\"", ""), "one or two"),
            (GOOD.replace("/tmp/x", "relative"), "absolute"),
            (GOOD.replace("\"name\":\"weft\",", ""), "name"),
            (r#"{"cniVersion":"1.1.0","name":"weft","type":"weft-cni"}"#.to_string(), "ipam"),
        ];
        for (json, needle) in cases {
            let Err(e) = parse_str(&json) else { panic!("accepted: {json}") };
            assert_eq!(e.code, code::INVALID_CONFIG, "{json}: {e}");
            assert!(e.msg.contains(needle), "{json}: {e} lacks {needle}");
        }
    }

    #[test]
    fn gso_max_size_is_read() {
        let p = parse_str(&GOOD.replace("\"ipam\"", "\"gsoMaxSize\":262144,\"ipam\"")).unwrap();
        assert_eq!(p.net.gso_max_size, Some(262144));
    }

    #[test]
    fn gc_list_is_read_under_both_names() {
        for key in ["cni.dev/valid-attachments", "cni.dev/attachments"] {
            let json = GOOD.replace(
                "\"ipam\"",
                &format!("\"{key}\":[{{\"containerID\":\"c1\",\"ifname\":\"eth0\"}}],\"ipam\""),
            );
            let p = parse_str(&json).unwrap();
            assert_eq!(
                p.valid_attachments.unwrap(),
                vec![Attachment { container_id: "c1".into(), ifname: "eth0".into() }]
            );
        }
    }

    #[test]
    fn dns_and_spec_fields_are_accepted() {
        let json = GOOD.replace(
            "\"ipam\"",
            r#""dns":{"nameservers":["10.96.0.10"],"search":["svc.cluster.local"]},"args":{"x":1},"runtimeConfig":{},"capabilities":{},"ipam""#,
        );
        let p = parse_str(&json).unwrap();
        assert_eq!(p.net.dns.nameservers, vec!["10.96.0.10".to_string()]);
    }
}

//! Name and value formats shared by every kind, with kube-apiserver's wording.
//!
//! Two layers:
//! - `is_*` checks return the messages upstream's `k8s.io/apimachinery/pkg/util/validation`
//!   returns (empty = valid), for callers that build their own `FieldError`s;
//! - `validate_*` helpers wrap them into `FieldError::invalid(path, value, msg)`, one per
//!   message, which is what almost every call site wants.
//!
//! Field paths are plain strings in kube-apiserver's format (`spec.ports[0].name`); build
//! them with [`child`], [`index`] and [`key`].

use crate::FieldError;
use serde_json::{json, Map, Value};
use std::net::IpAddr;

pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
pub const DNS1035_LABEL_MAX_LENGTH: usize = 63;
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
pub const IANA_SVC_NAME_MAX_LENGTH: usize = 15;
/// Total size of all annotation keys and values on one object.
pub const TOTAL_ANNOTATION_SIZE_LIMIT_BYTES: usize = 256 * 1024;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const WILDCARD_DNS1123_SUBDOMAIN_FMT: &str = "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const WILDCARD_DNS1123_SUBDOMAIN_ERR: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const ENV_VAR_NAME_FMT: &str = "[-._a-zA-Z][-._a-zA-Z0-9]*";
const ENV_VAR_NAME_ERR: &str = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit";
const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_MAP_KEY_ERR: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
const PERCENT_FMT: &str = "[0-9]+%";
const PERCENT_ERR: &str = "a valid percent string must be a numeric string followed by an ending '%'";
const HTTP_HEADER_NAME_FMT: &str = "[-A-Za-z0-9]+";
const HTTP_HEADER_NAME_ERR: &str = "a valid HTTP header must consist of alphanumeric characters or '-'";
const C_IDENTIFIER_FMT: &str = "[A-Za-z_][A-Za-z0-9_]*";
const C_IDENTIFIER_ERR: &str = "a valid C identifier must start with alphabetic character or '_', followed by a string of alphanumeric characters or '_'";

/// The regular expression upstream matches quantities against, quoted in its error.
pub const QUANTITY_FMT: &str = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$";

// ---------------------------------------------------------------------------
// Field paths

/// `parent.name`, or `name` when `parent` is empty.
pub fn child(parent: &str, name: &str) -> String {
    if parent.is_empty() { name.to_string() } else { format!("{parent}.{name}") }
}
/// `parent[i]`.
pub fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}
/// `parent[key]`, as upstream prints map keys (`resources.limits[cpu]`).
pub fn key(parent: &str, k: &str) -> String {
    format!("{parent}[{k}]")
}

// ---------------------------------------------------------------------------
// Message builders, worded as upstream's.

/// `must be no more than 63 characters`.
pub fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}
/// `must be between 1 and 65535, inclusive`.
pub fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}
pub const EMPTY_ERROR: &str = "must be non-empty";
pub const IS_NEGATIVE_ERROR: &str = "must be greater than or equal to 0";
pub const IS_NOT_POSITIVE_ERROR: &str = "must be greater than zero";
pub const FIELD_IMMUTABLE_ERROR: &str = "field is immutable";

/// A regular-expression mismatch described with examples, as upstream's `RegexError`.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut s = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push_str(&format!("'{e}', "));
    }
    s.push_str(&format!("regex used for validation is '{fmt}')"));
    s
}

// ---------------------------------------------------------------------------
// Matchers: the upstream regular expressions, by hand (no regex crate in weft-api).

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

/// One or more DNS-1123 labels joined by dots.
fn matches_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(matches_dns1123_label)
}

/// `[a-z]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1035_label(s: &str) -> bool {
    matches_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn matches_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

// ---------------------------------------------------------------------------
// Format checks returning upstream's messages (empty = valid).

/// A DNS-1123 label (at most 63 lowercase alphanumerics or '-'), e.g. a container name.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(DNS1123_LABEL_ERR, DNS1123_LABEL_FMT, &["my-name", "123-abc"]));
        }
    }
    errs
}

/// A DNS-1123 subdomain (at most 253 characters), the name format of most kinds.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(DNS1123_SUBDOMAIN_ERR, DNS1123_SUBDOMAIN_FMT, &["example.com"]));
    }
    errs
}

/// A DNS-1035 label (must start with a letter), the name format of Services.
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1035_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1035_LABEL_MAX_LENGTH));
    }
    if !matches_dns1035_label(value) {
        errs.push(regex_error(DNS1035_LABEL_ERR, DNS1035_LABEL_FMT, &["my-name", "abc-123"]));
    }
    errs
}

/// `*.` followed by a DNS-1123 subdomain (Ingress hosts).
pub fn is_wildcard_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    let ok = value.strip_prefix("*.").map(matches_dns1123_subdomain).unwrap_or(false);
    if !ok {
        errs.push(regex_error(WILDCARD_DNS1123_SUBDOMAIN_ERR, WILDCARD_DNS1123_SUBDOMAIN_FMT, &["*.example.com"]));
    }
    errs
}

/// A qualified name: `name` or `prefix/name` with a DNS-1123 subdomain prefix (label keys,
/// annotation keys, finalizers).
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {EMPTY_ERROR}"));
            } else {
                for msg in is_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {msg}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {EMPTY_ERROR}"));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX_LENGTH)));
    }
    if !matches_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
        ));
    }
    errs
}

/// A label value: empty, or at most 63 characters of a qualified name's name part.
pub fn is_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !value.is_empty() && !matches_qualified_name_part(value) {
        errs.push(regex_error(LABEL_VALUE_ERR, LABEL_VALUE_FMT, &["MyValue", "my_value", "12345"]));
    }
    errs
}

/// A port number, 1-65535.
pub fn is_valid_port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) { Vec::new() } else { vec![inclusive_range_error(1, 65535)] }
}

/// A number in `lo..=hi`.
pub fn is_in_range(value: i64, lo: i64, hi: i64) -> Vec<String> {
    if (lo..=hi).contains(&value) { Vec::new() } else { vec![inclusive_range_error(lo, hi)] }
}

/// An IANA service name (RFC 6335): a container port's or a Service port's `name` that
/// other objects refer to (`targetPort: http`).
pub fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > IANA_SVC_NAME_MAX_LENGTH {
        errs.push(max_len_error(IANA_SVC_NAME_MAX_LENGTH));
    }
    if port.is_empty() || !port.bytes().all(|c| is_lower_alnum(c) || c == b'-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string());
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// `.`, `..` and `..`-prefixed names are refused where a name becomes a path.
fn has_chdir_prefix(value: &str) -> Vec<String> {
    if value == "." {
        vec!["must not be '.'".to_string()]
    } else if value == ".." {
        vec!["must not be '..'".to_string()]
    } else if value.starts_with("..") {
        vec!["must not start with '..'".to_string()]
    } else {
        Vec::new()
    }
}

/// An environment variable name (`env[].name`, `envFrom[].prefix` + keys).
pub fn is_env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let b = value.as_bytes();
    let ok = !b.is_empty()
        && !b[0].is_ascii_digit()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'));
    if !ok {
        errs.push(regex_error(ENV_VAR_NAME_ERR, ENV_VAR_NAME_FMT, &["my.env-name", "MY_ENV.NAME", "MyEnvName1"]));
    }
    errs.extend(has_chdir_prefix(value));
    errs
}

/// A key of a ConfigMap's or Secret's `data`.
pub fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    let ok = !value.is_empty() && value.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'));
    if !ok {
        errs.push(regex_error(CONFIG_MAP_KEY_ERR, CONFIG_MAP_KEY_FMT, &["key.name", "KEY_NAME", "key-name"]));
    }
    errs.extend(has_chdir_prefix(value));
    errs
}

/// A C identifier (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn is_c_identifier(value: &str) -> Vec<String> {
    let b = value.as_bytes();
    let ok = !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_');
    if ok { Vec::new() } else { vec![regex_error(C_IDENTIFIER_ERR, C_IDENTIFIER_FMT, &["my_name", "MY_NAME", "MyName"])] }
}

/// A percentage such as `25%`.
pub fn is_valid_percent(value: &str) -> Vec<String> {
    let ok = value
        .strip_suffix('%')
        .map(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
        .unwrap_or(false);
    if ok { Vec::new() } else { vec![regex_error(PERCENT_ERR, PERCENT_FMT, &["1%", "93%"])] }
}

/// An HTTP header name (probes' `httpHeaders[].name`).
pub fn is_http_header_name(value: &str) -> Vec<String> {
    let ok = !value.is_empty() && value.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-');
    if ok { Vec::new() } else { vec![regex_error(HTTP_HEADER_NAME_ERR, HTTP_HEADER_NAME_FMT, &["X-Header-Name"])] }
}

// ---------------------------------------------------------------------------
// IP addresses and CIDRs.

/// Parses an IP address as kube-apiserver does for existing fields: IPv4 octets with
/// leading zeros are accepted and read as decimal (`010.0.0.1` is 10.0.0.1).
pub fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    // Legacy Go parser: decimal octets, leading zeros allowed.
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        octets[i] = p.parse::<u16>().ok().filter(|v| *v <= 255)? as u8;
    }
    Some(IpAddr::from(octets))
}

/// Parses a CIDR (`10.0.0.0/24`, `2001:db8::/64`); host bits may be set, as upstream allows.
pub fn parse_cidr_sloppy(s: &str) -> Option<ipnet::IpNet> {
    let (addr, bits) = s.split_once('/')?;
    let ip = parse_ip_sloppy(addr)?;
    if bits.is_empty() || !bits.bytes().all(|c| c.is_ascii_digit()) || (bits.len() > 1 && bits.starts_with('0')) {
        return None;
    }
    let len: u8 = bits.parse().ok()?;
    ipnet::IpNet::new(ip, len).ok()
}

/// `must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`.
pub fn validate_ip(path: &str, value: &str) -> Vec<FieldError> {
    match parse_ip_sloppy(value) {
        Some(_) => Vec::new(),
        None => vec![FieldError::invalid(path, json!(value), "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")],
    }
}

pub fn validate_ipv4(path: &str, value: &str) -> Vec<FieldError> {
    match parse_ip_sloppy(value) {
        Some(IpAddr::V4(_)) => Vec::new(),
        _ => vec![FieldError::invalid(path, json!(value), "must be a valid IPv4 address")],
    }
}

pub fn validate_ipv6(path: &str, value: &str) -> Vec<FieldError> {
    match parse_ip_sloppy(value) {
        Some(IpAddr::V6(_)) => Vec::new(),
        _ => vec![FieldError::invalid(path, json!(value), "must be a valid IPv6 address")],
    }
}

/// `must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`.
pub fn validate_cidr(path: &str, value: &str) -> Vec<FieldError> {
    match parse_cidr_sloppy(value) {
        Some(_) => Vec::new(),
        None => vec![FieldError::invalid(path, json!(value), "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")],
    }
}

// ---------------------------------------------------------------------------
// Quantities (`500m`, `128Mi`, `1e3`).

/// A parsed resource quantity. `value` is in base units (cores, bytes); precise enough to
/// compare requests with limits and to check signs.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Quantity {
    pub value: f64,
}

/// Parses a quantity as `resource.ParseQuantity` does; the error is the decoder's message.
pub fn parse_quantity(s: &str) -> Result<Quantity, String> {
    let bad = || format!("quantities must match the regular expression '{QUANTITY_FMT}'");
    let s = s.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let num_end = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '+' || *c == '-'))))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(num_end);
    let digits = num.trim_start_matches(['+', '-']);
    if digits.is_empty() || digits == "." || digits.matches('.').count() > 1 {
        return Err(bad());
    }
    let mantissa: f64 = num.parse().map_err(|_| bad())?;
    let multiplier = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        other => {
            let exp = other.strip_prefix(['e', 'E']).ok_or_else(bad)?;
            let digits = exp.trim_start_matches(['+', '-']);
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) || exp.len() - digits.len() > 1 {
                return Err(bad());
            }
            let e: i32 = exp.parse().map_err(|_| bad())?;
            10f64.powi(e)
        }
    };
    Ok(Quantity { value: mantissa * multiplier })
}

/// A quantity given as a JSON string or number.
pub fn quantity_of(v: &Value) -> Result<Quantity, String> {
    match v {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => Ok(Quantity { value: n.as_f64().unwrap_or(0.0) }),
        _ => Err(format!("quantities must match the regular expression '{QUANTITY_FMT}'")),
    }
}

/// A quantity that must parse and be >= 0 (container requests and limits).
pub fn validate_nonnegative_quantity(path: &str, v: &Value) -> Vec<FieldError> {
    match quantity_of(v) {
        Err(msg) => vec![FieldError::invalid(path, v.clone(), msg)],
        Ok(q) if q.value < 0.0 => vec![FieldError::invalid(path, v.clone(), IS_NEGATIVE_ERROR)],
        Ok(_) => Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// FieldError wrappers: one `Invalid` per message, at `path`, with the value.

fn each(path: &str, value: &str, msgs: Vec<String>) -> Vec<FieldError> {
    msgs.into_iter().map(|m| FieldError::invalid(path, json!(value), m)).collect()
}

pub fn validate_dns1123_label(path: &str, value: &str) -> Vec<FieldError> {
    each(path, value, is_dns1123_label(value))
}
pub fn validate_dns1123_subdomain(path: &str, value: &str) -> Vec<FieldError> {
    each(path, value, is_dns1123_subdomain(value))
}
pub fn validate_dns1035_label(path: &str, value: &str) -> Vec<FieldError> {
    each(path, value, is_dns1035_label(value))
}
pub fn validate_qualified_name(path: &str, value: &str) -> Vec<FieldError> {
    each(path, value, is_qualified_name(value))
}
pub fn validate_label_value(path: &str, value: &str) -> Vec<FieldError> {
    each(path, value, is_label_value(value))
}
pub fn validate_port_name(path: &str, value: &str) -> Vec<FieldError> {
    each(path, value, is_valid_port_name(value))
}
pub fn validate_env_var_name(path: &str, value: &str) -> Vec<FieldError> {
    each(path, value, is_env_var_name(value))
}
pub fn validate_config_map_key(path: &str, value: &str) -> Vec<FieldError> {
    each(path, value, is_config_map_key(value))
}

/// A port number field (1-65535): `Invalid value: 0: must be between 1 and 65535, inclusive`.
pub fn validate_port_num(path: &str, port: i64) -> Vec<FieldError> {
    is_valid_port_num(port).into_iter().map(|m| FieldError::invalid(path, json!(port), m)).collect()
}

/// An int-or-string port (`targetPort`, probes' `port`): a number 1-65535 or an IANA
/// service name. A missing port counts as 0, as upstream's zero IntOrString does.
pub fn validate_port_num_or_name(path: &str, port: &Value) -> Vec<FieldError> {
    match port {
        Value::String(s) => validate_port_name(path, s),
        Value::Number(n) => validate_port_num(path, n.as_i64().unwrap_or(0)),
        Value::Null => validate_port_num(path, 0),
        other => vec![FieldError::invalid(path, other.clone(), "must be an integer or a port name")],
    }
}

/// An integer field that must be >= 0.
pub fn validate_nonnegative(path: &str, value: i64) -> Vec<FieldError> {
    if value < 0 { vec![FieldError::invalid(path, json!(value), IS_NEGATIVE_ERROR)] } else { Vec::new() }
}

/// `field is immutable` when `new != old`.
pub fn validate_immutable(path: &str, new: &Value, old: &Value) -> Vec<FieldError> {
    if new == old { Vec::new() } else { vec![FieldError::invalid(path, new.clone(), FIELD_IMMUTABLE_ERROR)] }
}

/// A label map (`metadata.labels`, a Service's `spec.selector`, a selector's `matchLabels`):
/// keys are qualified names, values label values. Errors are reported at `path` itself, with
/// the bad key or value, as upstream does.
pub fn validate_labels(path: &str, labels: &Map<String, Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels {
        errs.extend(validate_qualified_name(path, k));
        match v {
            Value::String(s) => errs.extend(validate_label_value(path, s)),
            Value::Null => {}
            other => errs.push(FieldError::invalid(path, other.clone(), "must be a string")),
        }
    }
    errs
}

/// A `metav1.LabelSelector` (`matchLabels` and `matchExpressions`), as in Deployments and
/// NetworkPolicies. `sel` that is null or missing is valid (callers check "required").
pub fn validate_label_selector(path: &str, sel: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(sel) = sel.filter(|s| !s.is_null()) else { return errs };
    if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
        errs.extend(validate_labels(&child(path, "matchLabels"), ml));
    }
    let exprs = sel.get("matchExpressions").and_then(Value::as_array).cloned().unwrap_or_default();
    for (i, expr) in exprs.iter().enumerate() {
        let p = index(&child(path, "matchExpressions"), i);
        let values = expr.get("values").and_then(Value::as_array).cloned().unwrap_or_default();
        let op = expr.get("operator").and_then(Value::as_str).unwrap_or("");
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        child(&p, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        child(&p, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(child(&p, "operator"), json!(op), "not a valid selector operator")),
        }
        let k = expr.get("key").and_then(Value::as_str).unwrap_or("");
        errs.extend(validate_qualified_name(&child(&p, "key"), k));
        for (j, v) in values.iter().enumerate() {
            if let Some(s) = v.as_str() {
                errs.extend(validate_label_value(&index(&child(&p, "values"), j), s));
            }
        }
    }
    errs
}

/// An int-or-string that is either a non-negative integer or a percentage (`maxSurge`,
/// `maxUnavailable`, PodDisruptionBudget fields).
pub fn validate_positive_int_or_percent(path: &str, v: &Value) -> Vec<FieldError> {
    match v {
        Value::Number(n) => validate_nonnegative(path, n.as_i64().unwrap_or(-1)),
        Value::String(s) => {
            let mut errs: Vec<FieldError> = is_valid_percent(s)
                .into_iter()
                .map(|m| FieldError::invalid(path, json!(s), m))
                .collect();
            if errs.is_empty() && int_or_percent_value(v).unwrap_or(0) < 0 {
                errs.push(FieldError::invalid(path, v.clone(), IS_NEGATIVE_ERROR));
            }
            errs
        }
        Value::Null => Vec::new(),
        other => vec![FieldError::invalid(path, other.clone(), "must be an integer or percentage (e.g '5%')")],
    }
}

/// The number in an int-or-percent (`25%` -> 25, `3` -> 3).
pub fn int_or_percent_value(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.strip_suffix('%').unwrap_or(s).parse().ok(),
        _ => None,
    }
}

/// True for a percentage int-or-string.
pub fn is_percent(v: &Value) -> bool {
    v.as_str().map(|s| s.ends_with('%')).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns1123_label_accepts_lowercase_alnum_and_inner_dashes() {
        for ok in ["a", "nginx", "my-name", "123-abc", "0"] {
            assert!(is_dns1123_label(ok).is_empty(), "{ok}");
        }
    }

    #[test]
    fn dns1123_label_rejects_with_upstream_message() {
        assert_eq!(
            is_dns1123_label("Foo_"),
            vec!["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]
        );
        assert_eq!(is_dns1123_label("a.b"), vec!["must not contain dots"]);
        assert_eq!(is_dns1123_label(&"a".repeat(64)), vec!["must be no more than 63 characters"]);
        assert_eq!(is_dns1123_label("-a").len(), 1);
        assert_eq!(is_dns1123_label("").len(), 1);
    }

    #[test]
    fn dns1123_subdomain_message_matches_kubectl_output() {
        assert!(is_dns1123_subdomain("example.com").is_empty());
        assert!(is_dns1123_subdomain("nginx-deployment-7fb96c846b").is_empty());
        assert_eq!(
            is_dns1123_subdomain("Foo_"),
            vec!["a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]
        );
        assert_eq!(is_dns1123_subdomain("a..b").len(), 1);
        assert_eq!(is_dns1123_subdomain(".a").len(), 1);
        assert_eq!(is_dns1123_subdomain(&"a".repeat(254))[0], "must be no more than 253 characters");
    }

    #[test]
    fn dns1035_label_requires_leading_letter() {
        assert!(is_dns1035_label("my-svc").is_empty());
        assert_eq!(
            is_dns1035_label("1svc"),
            vec!["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]
        );
    }

    #[test]
    fn qualified_names_allow_prefix_and_mixed_case() {
        for ok in ["app", "app.kubernetes.io/name", "MyName", "my.name", "123-abc", "a_b"] {
            assert!(is_qualified_name(ok).is_empty(), "{ok}");
        }
    }

    #[test]
    fn qualified_name_errors_name_the_part() {
        assert_eq!(is_qualified_name("/a"), vec!["prefix part must be non-empty"]);
        assert_eq!(is_qualified_name("a/"), vec![
            "name part must be non-empty".to_string(),
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_string(),
        ]);
        assert!(is_qualified_name("Example.com/a")[0].starts_with("prefix part a lowercase RFC 1123 subdomain"));
        assert!(is_qualified_name("a/b/c")[0].starts_with("a qualified name must consist of"));
        assert_eq!(is_qualified_name(&"a".repeat(64)), vec!["name part must be no more than 63 characters"]);
    }

    #[test]
    fn label_values_may_be_empty_but_not_malformed() {
        assert!(is_label_value("").is_empty());
        assert!(is_label_value("v1.2_3-x").is_empty());
        assert_eq!(
            is_label_value("bad value"),
            vec!["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]
        );
    }

    #[test]
    fn port_numbers_and_iana_names() {
        assert!(is_valid_port_num(80).is_empty());
        assert_eq!(is_valid_port_num(0), vec!["must be between 1 and 65535, inclusive"]);
        assert_eq!(is_valid_port_num(65536).len(), 1);
        assert!(is_valid_port_name("http").is_empty());
        assert!(is_valid_port_name("http-metrics").is_empty());
        assert_eq!(is_valid_port_name("8080"), vec!["must contain at least one letter (a-z)"]);
        assert_eq!(is_valid_port_name("a--b"), vec!["must not contain consecutive hyphens"]);
        assert_eq!(is_valid_port_name("-ab"), vec!["must not begin or end with a hyphen"]);
        assert_eq!(is_valid_port_name("HTTP"), vec![
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            "must contain at least one letter (a-z)",
        ]);
        assert_eq!(is_valid_port_name("averyveryverylongname"), vec!["must be no more than 15 characters"]);
    }

    #[test]
    fn env_var_names_refuse_leading_digit() {
        assert!(is_env_var_name("MY_ENV.NAME").is_empty());
        assert!(is_env_var_name("my-env").is_empty());
        assert_eq!(is_env_var_name("1ABC").len(), 1);
        assert_eq!(is_env_var_name("A=B").len(), 1);
        assert_eq!(is_env_var_name(".."), vec!["must not be '..'"]);
    }

    #[test]
    fn config_map_keys_and_percent_and_headers() {
        assert!(is_config_map_key("app.properties").is_empty());
        assert_eq!(is_config_map_key("a/b").len(), 1);
        assert!(is_valid_percent("25%").is_empty());
        assert_eq!(is_valid_percent("25"), vec!["a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"]);
        assert!(is_http_header_name("X-Custom-Header").is_empty());
        assert_eq!(is_http_header_name("X Bad").len(), 1);
        assert!(is_c_identifier("_abc1").is_empty());
        assert_eq!(is_c_identifier("1abc").len(), 1);
    }

    #[test]
    fn ip_and_cidr_parsing_accepts_legacy_leading_zeros() {
        assert_eq!(parse_ip_sloppy("10.0.0.1"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(parse_ip_sloppy("010.000.000.001"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(parse_ip_sloppy("2001:db8::1"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(parse_ip_sloppy("10.0.0.256"), None);
        assert_eq!(parse_ip_sloppy("abc"), None);
        assert!(parse_cidr_sloppy("10.0.0.0/8").is_some());
        assert!(parse_cidr_sloppy("10.1.2.3/8").is_some());
        assert!(parse_cidr_sloppy("2001:db8::/64").is_some());
        assert!(parse_cidr_sloppy("10.0.0.0/33").is_none());
        assert!(parse_cidr_sloppy("10.0.0.0").is_none());
        assert_eq!(
            validate_ip("spec.clusterIP", "nope")[0].to_string(),
            "spec.clusterIP: Invalid value: \"nope\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
        );
        assert_eq!(validate_cidr("spec.cidr", "1.2.3.4/99").len(), 1);
        assert_eq!(validate_ipv4("x", "::1").len(), 1);
        assert!(validate_ipv6("x", "::1").is_empty());
    }

    #[test]
    fn quantities_parse_with_suffixes_and_exponents() {
        assert_eq!(parse_quantity("500m").unwrap().value, 0.5);
        assert_eq!(parse_quantity("128Mi").unwrap().value, 128.0 * 1024.0 * 1024.0);
        assert_eq!(parse_quantity("1G").unwrap().value, 1e9);
        assert_eq!(parse_quantity("1e3").unwrap().value, 1000.0);
        assert_eq!(parse_quantity("-1").unwrap().value, -1.0);
        assert_eq!(parse_quantity(".5").unwrap().value, 0.5);
        assert!(parse_quantity("abc").is_err());
        assert!(parse_quantity("1Qi").is_err());
        assert!(parse_quantity("1..2").is_err());
        assert_eq!(
            validate_nonnegative_quantity("spec.containers[0].resources.requests[cpu]", &json!("-1"))[0].to_string(),
            "spec.containers[0].resources.requests[cpu]: Invalid value: \"-1\": must be greater than or equal to 0"
        );
        assert!(validate_nonnegative_quantity("x", &json!(2)).is_empty());
    }

    #[test]
    fn labels_report_bad_keys_and_values_at_the_map_path() {
        let labels = json!({"app": "web", "bad key": "v", "k": "bad value"});
        let errs = validate_labels("metadata.labels", labels.as_object().unwrap());
        assert_eq!(errs.len(), 2);
        assert!(errs.iter().all(|e| e.field == "metadata.labels"));
        assert_eq!(errs[0].value, Some(json!("bad key")));
        assert_eq!(errs[1].value, Some(json!("bad value")));
    }

    #[test]
    fn label_selector_checks_operators_and_values() {
        let sel = json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": []},
                {"key": "env", "operator": "Exists", "values": ["x"]},
                {"key": "x", "operator": "Near"},
            ]
        });
        let errs: Vec<String> = validate_label_selector("spec.selector", Some(&sel)).iter().map(|e| e.to_string()).collect();
        assert_eq!(errs, vec![
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
            "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            "spec.selector.matchExpressions[2].operator: Invalid value: \"Near\": not a valid selector operator",
        ]);
    }

    #[test]
    fn int_or_percent_accepts_both_forms() {
        assert!(validate_positive_int_or_percent("p", &json!("25%")).is_empty());
        assert!(validate_positive_int_or_percent("p", &json!(3)).is_empty());
        assert_eq!(validate_positive_int_or_percent("p", &json!(-1))[0].detail, IS_NEGATIVE_ERROR);
        assert_eq!(validate_positive_int_or_percent("p", &json!("25")).len(), 1);
        assert_eq!(int_or_percent_value(&json!("25%")), Some(25));
        assert!(is_percent(&json!("0%")));
    }

    #[test]
    fn paths_format_like_field_paths() {
        assert_eq!(child("", "metadata"), "metadata");
        assert_eq!(child("spec", "ports"), "spec.ports");
        assert_eq!(index("spec.ports", 2), "spec.ports[2]");
        assert_eq!(key("resources.limits", "cpu"), "resources.limits[cpu]");
    }
}

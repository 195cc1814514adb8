//! Address and name formats of the network kinds that the shared `validate::names`
//! module does not (yet) provide: routable endpoint IPs, FQDN endpoint addresses and
//! domain-prefixed controller names. Candidates to fold into `names`.

use super::super::names::{is_dns1123_label, is_dns1123_subdomain, parse_ip_sloppy};
use crate::FieldError;
use serde_json::Value;
use std::net::IpAddr;

const HTTP_PATH_FMT: &str = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+";

pub const PORT_RANGE_MSG: &str = "must be between 1 and 65535, inclusive";

pub fn valid_port_num(n: i64) -> bool {
    (1..=65535).contains(&n)
}

/// `Invalid` for each message of a string format check.
pub fn invalid_each(path: &str, v: &str, msgs: Vec<String>) -> Vec<FieldError> {
    msgs.into_iter().map(|m| FieldError::invalid(path, Value::from(v), m)).collect()
}

/// Rejects addresses no Service or endpoint may point at: unspecified, loopback and
/// link-local (node-centric, e.g. metadata services).
pub fn non_special_ip(path: &str, s: &str) -> Vec<FieldError> {
    let Some(ip) = parse_ip_sloppy(s) else {
        return vec![FieldError::invalid(path, Value::from(s), "must be a valid IP address")];
    };
    let ip = ip.to_canonical();
    let mut errs = Vec::new();
    let bad = |msg: String| FieldError::invalid(path, Value::from(s), msg);
    if ip.is_unspecified() {
        errs.push(bad(format!("may not be unspecified ({s})")));
    }
    if ip.is_loopback() {
        errs.push(bad("may not be in the loopback range (127.0.0.0/8, ::1/128)".into()));
    }
    let (link_local, link_local_multicast) = match ip {
        IpAddr::V4(v4) => (v4.is_link_local(), v4.octets()[..3] == [224, 0, 0]),
        IpAddr::V6(v6) => {
            let s0 = v6.segments()[0];
            (s0 & 0xffc0 == 0xfe80, s0 & 0xff0f == 0xff02)
        }
    };
    if link_local {
        errs.push(bad("may not be in the link-local range (169.254.0.0/16, fe80::/10)".into()));
    }
    if link_local_multicast {
        errs.push(bad("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)".into()));
    }
    errs
}

/// A `host/path` name such as an IngressClass controller (`example.com/ingress-nginx`).
pub fn domain_prefixed_path(path: &str, v: &str) -> Vec<FieldError> {
    if v.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let Some((host, rest)) = v.split_once('/').filter(|(h, p)| !h.is_empty() && !p.is_empty()) else {
        return vec![FieldError::invalid(path, Value::from(v), "must be a domain-prefixed path (such as \"acme.io/foo\")")];
    };
    let mut errs = invalid_each(path, host, is_dns1123_subdomain(host));
    let path_ok = rest.bytes().all(|c| c.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&c));
    if !path_ok {
        errs.push(FieldError::invalid(path, Value::from(rest), format!("Invalid path (regex used for validation is '{HTTP_PATH_FMT}')")));
    }
    errs
}

/// A fully qualified domain name with at least two labels, as EndpointSlice FQDN addresses.
pub fn fully_qualified_domain_name(path: &str, v: &str) -> Vec<FieldError> {
    if v.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let name = v.strip_suffix('.').unwrap_or(v);
    let errs = is_dns1123_subdomain(name);
    if !errs.is_empty() {
        return vec![FieldError::invalid(path, Value::from(name), errs.join(","))];
    }
    if name.split('.').count() < 2 {
        return vec![FieldError::invalid(path, Value::from(name), "should be a domain with at least two segments separated by dots")];
    }
    for label in name.split('.') {
        let errs = is_dns1123_label(label);
        if !errs.is_empty() {
            return vec![FieldError::invalid(path, Value::from(label), errs.join(","))];
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_ips_are_rejected_with_each_reason() {
        assert_eq!(non_special_ip("ip", "127.0.0.1")[0].detail, "may not be in the loopback range (127.0.0.0/8, ::1/128)");
        assert_eq!(non_special_ip("ip", "::ffff:127.0.0.1").len(), 1);
        assert_eq!(non_special_ip("ip", "169.254.169.254").len(), 1);
        assert_eq!(non_special_ip("ip", "224.0.0.1").len(), 1);
        assert_eq!(non_special_ip("ip", "ff02::1").len(), 1);
        assert_eq!(non_special_ip("ip", "fe80::1").len(), 1);
        assert_eq!(non_special_ip("ip", "0.0.0.0")[0].detail, "may not be unspecified (0.0.0.0)");
        assert!(non_special_ip("ip", "10.1.2.3").is_empty());
        assert!(non_special_ip("ip", "2001:db8::1").is_empty());
    }

    #[test]
    fn domain_prefixed_paths_need_a_host_and_a_path() {
        assert!(domain_prefixed_path("c", "k8s.io/ingress-nginx").is_empty());
        assert_eq!(domain_prefixed_path("c", "")[0].to_string(), "c: Required value");
        assert_eq!(
            domain_prefixed_path("c", "nginx")[0].to_string(),
            "c: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")"
        );
        assert_eq!(domain_prefixed_path("c", "Acme.io/foo").len(), 1);
        assert_eq!(domain_prefixed_path("c", "acme.io/a b").len(), 1);
    }

    #[test]
    fn fqdns_need_two_labels() {
        assert!(fully_qualified_domain_name("a", "db.example.com.").is_empty());
        assert_eq!(fully_qualified_domain_name("a", "").len(), 1);
        assert_eq!(fully_qualified_domain_name("a", "localhost").len(), 1);
    }
}

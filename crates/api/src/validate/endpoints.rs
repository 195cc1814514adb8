//! Endpoints (core/v1) and EndpointSlice (discovery.k8s.io/v1) validation, as
//! kube-apiserver's `ValidateEndpoints` and `ValidateEndpointSlice` do it.

use super::service::fields::{int_of, list_of, map_of, str_of};
use super::names;
use super::service::formats::{self, invalid_each, PORT_RANGE_MSG};
use crate::{FieldError, FieldErrorType};
use serde_json::{json, Value};
use std::collections::HashSet;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
/// `IP` was dropped as an address type but slices stored with it may still be updated.
const ADDRESS_TYPES_ON_UPDATE: &[&str] = &["FQDN", "IP", "IPv4", "IPv6"];
const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 100;
const MAX_TOPOLOGY_LABELS: usize = 16;
const MAX_ZONE_HINTS: usize = 8;

pub fn validate_endpoints(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, subset) in list_of(obj, "subsets").iter().enumerate() {
        let path = format!("subsets[{i}]");
        let ready = list_of(subset, "addresses");
        let not_ready = list_of(subset, "notReadyAddresses");
        // Ports may be empty (headless services), addresses may not.
        if ready.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(path.clone(), "must specify `addresses` or `notReadyAddresses`"));
        }
        for (j, addr) in ready.iter().enumerate() {
            errs.extend(validate_endpoint_address(addr, &format!("{path}.addresses[{j}]")));
        }
        for (j, addr) in not_ready.iter().enumerate() {
            errs.extend(validate_endpoint_address(addr, &format!("{path}.notReadyAddresses[{j}]")));
        }
        let ports = list_of(subset, "ports");
        for (k, port) in ports.iter().enumerate() {
            errs.extend(validate_endpoint_port(port, ports.len() > 1, &format!("{path}.ports[{k}]")));
        }
    }
    errs
}

fn validate_endpoint_address(addr: &Value, path: &str) -> Vec<FieldError> {
    let ip = str_of(addr, "ip");
    let ip_path = format!("{path}.ip");
    let mut errs = names::validate_ip(&ip_path, ip);
    let hostname = str_of(addr, "hostname");
    if !hostname.is_empty() {
        errs.extend(invalid_each(&format!("{path}.hostname"), hostname, names::is_dns1123_label(hostname)));
    }
    if let Some(node) = addr.get("nodeName").and_then(Value::as_str) {
        errs.extend(invalid_each(&format!("{path}.nodeName"), node, names::is_dns1123_subdomain(node)));
    }
    errs.extend(formats::non_special_ip(&ip_path, ip));
    errs
}

fn validate_endpoint_port(port: &Value, require_name: bool, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = str_of(port, "name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else if !name.is_empty() {
        errs.extend(invalid_each(&format!("{path}.name"), name, names::is_dns1123_label(name)));
    }
    errs.extend(port_number(port, path));
    errs.extend(protocol(port, path));
    errs.extend(app_protocol(port, path));
    errs
}

fn port_number(port: &Value, path: &str) -> Vec<FieldError> {
    if int_of(port, "port").map(formats::valid_port_num).unwrap_or(false) {
        return Vec::new();
    }
    vec![FieldError::invalid(format!("{path}.port"), port.get("port").cloned().unwrap_or(json!(0)), PORT_RANGE_MSG)]
}

fn protocol(port: &Value, path: &str) -> Vec<FieldError> {
    let p = str_of(port, "protocol");
    if p.is_empty() {
        vec![FieldError::required(format!("{path}.protocol"), "")]
    } else if !PROTOCOLS.contains(&p) {
        vec![FieldError::not_supported(format!("{path}.protocol"), json!(p), PROTOCOLS)]
    } else {
        Vec::new()
    }
}

fn app_protocol(port: &Value, path: &str) -> Vec<FieldError> {
    match port.get("appProtocol").and_then(Value::as_str) {
        Some(app) => invalid_each(&format!("{path}.appProtocol"), app, names::is_qualified_name(app)),
        None => Vec::new(),
    }
}

fn too_many(path: impl Into<String>, actual: usize, max: usize) -> FieldError {
    FieldError {
        kind: FieldErrorType::TooMany,
        field: path.into(),
        value: Some(json!(actual)),
        detail: format!("must have at most {max} items"),
    }
}

pub fn validate_endpoint_slice(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let address_type = str_of(obj, "addressType");
    let allowed = if old.is_some() { ADDRESS_TYPES_ON_UPDATE } else { ADDRESS_TYPES };
    if address_type.is_empty() {
        errs.push(FieldError::required("addressType", ""));
    } else if !allowed.contains(&address_type) {
        errs.push(FieldError::not_supported("addressType", json!(address_type), allowed));
    }
    errs.extend(validate_slice_endpoints(list_of(obj, "endpoints"), address_type));
    errs.extend(validate_slice_ports(list_of(obj, "ports")));
    if let Some(old) = old {
        if str_of(old, "addressType") != address_type {
            errs.push(FieldError::invalid("addressType", json!(address_type), "field is immutable"));
        }
    }
    errs
}

fn validate_slice_endpoints(endpoints: &[Value], address_type: &str) -> Vec<FieldError> {
    if endpoints.len() > MAX_ENDPOINTS {
        return vec![too_many("endpoints", endpoints.len(), MAX_ENDPOINTS)];
    }
    let mut errs = Vec::new();
    for (i, ep) in endpoints.iter().enumerate() {
        let path = format!("endpoints[{i}]");
        let addr_path = format!("{path}.addresses");
        let addresses = list_of(ep, "addresses");
        if addresses.is_empty() {
            errs.push(FieldError::required(addr_path.clone(), "must contain at least 1 address"));
        } else if addresses.len() > MAX_ADDRESSES {
            errs.push(too_many(addr_path.clone(), addresses.len(), MAX_ADDRESSES));
        }
        for (j, a) in addresses.iter().enumerate() {
            let a = a.as_str().unwrap_or("");
            let p = format!("{addr_path}[{j}]");
            // Unknown address types fall through unvalidated, as upstream.
            match address_type {
                "IP" => errs.extend(names::validate_ip(&p, a)),
                "IPv4" | "IPv6" => {
                    let want_v6 = address_type == "IPv6";
                    if names::parse_ip_sloppy(a).map(|ip| ip.to_canonical().is_ipv6() != want_v6).unwrap_or(true) {
                        errs.push(FieldError::invalid(p.clone(), json!(a), format!("must be a valid {address_type} address")));
                    }
                    errs.extend(formats::non_special_ip(&p, a));
                }
                "FQDN" => errs.extend(formats::fully_qualified_domain_name(&p, a)),
                _ => {}
            }
        }

        // The v1 field is `deprecatedTopology`; upstream reports it under its internal name.
        if let Some(topology) = map_of(ep, "deprecatedTopology") {
            let p = format!("{path}.topology");
            if topology.len() > MAX_TOPOLOGY_LABELS {
                errs.push(too_many(p.clone(), topology.len(), MAX_TOPOLOGY_LABELS));
            }
            errs.extend(names::validate_labels(&p, topology));
        }
        if let Some(host) = ep.get("hostname").and_then(Value::as_str) {
            errs.extend(invalid_each(&format!("{path}.hostname"), host, names::is_dns1123_label(host)));
        }
        if let Some(node) = ep.get("nodeName").and_then(Value::as_str) {
            errs.extend(invalid_each(&format!("{path}.nodeName"), node, names::is_dns1123_subdomain(node)));
        }
        if let Some(conditions) = ep.get("conditions").and_then(Value::as_object) {
            for (k, v) in conditions {
                if !v.is_null() && !v.is_boolean() {
                    errs.push(FieldError::invalid(format!("{path}.conditions.{k}"), v.clone(), "must be a boolean"));
                }
            }
        }
        if let Some(hints) = ep.get("hints").filter(|h| !h.is_null()) {
            errs.extend(validate_hints(hints, &format!("{path}.hints")));
        }
    }
    errs
}

fn validate_hints(hints: &Value, path: &str) -> Vec<FieldError> {
    let zones_path = format!("{path}.forZones");
    let zones = list_of(hints, "forZones");
    if zones.len() > MAX_ZONE_HINTS {
        return vec![too_many(zones_path, zones.len(), MAX_ZONE_HINTS)];
    }
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    for (i, zone) in zones.iter().enumerate() {
        let p = format!("{zones_path}[{i}].name");
        let name = str_of(zone, "name");
        if !seen.insert(name) {
            errs.push(FieldError::duplicate(p.clone(), json!(name)));
        }
        errs.extend(invalid_each(&p, name, names::is_label_value(name)));
    }
    errs
}

fn validate_slice_ports(ports: &[Value]) -> Vec<FieldError> {
    if ports.len() > MAX_PORTS {
        return vec![too_many("ports", ports.len(), MAX_PORTS)];
    }
    let mut errs = Vec::new();
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let path = format!("ports[{i}]");
        let name = str_of(port, "name");
        if !name.is_empty() {
            errs.extend(invalid_each(&format!("{path}.name"), name, names::is_dns1123_label(name)));
        }
        // Unnamed ports collide with each other too: a slice has at most one.
        if !names.insert(name) {
            errs.push(FieldError::duplicate(format!("{path}.name"), json!(name)));
        }
        if port.get("protocol").map(Value::is_null).unwrap_or(true) {
            errs.push(FieldError::required(format!("{path}.protocol"), ""));
        } else {
            let p = str_of(port, "protocol");
            if !PROTOCOLS.contains(&p) {
                errs.push(FieldError::not_supported(format!("{path}.protocol"), json!(p), PROTOCOLS));
            }
        }
        errs.extend(app_protocol(port, &path));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::apply_defaults;
    use crate::GroupKind;

    fn endpoints_errors(mut obj: Value) -> Vec<String> {
        apply_defaults(&GroupKind::new("", "Endpoints"), &mut obj);
        validate_endpoints(&obj, None).iter().map(|e| e.to_string()).collect()
    }

    fn slice_errors(mut obj: Value) -> Vec<String> {
        apply_defaults(&GroupKind::new("discovery.k8s.io", "EndpointSlice"), &mut obj);
        validate_endpoint_slice(&obj, None).iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn endpoints_for_a_service_validate_clean() {
        let ep = json!({"metadata": {"name": "my-service"}, "subsets": [{
            "addresses": [{"ip": "10.244.1.5", "nodeName": "node-1", "targetRef": {"kind": "Pod", "name": "web-0"}}],
            "notReadyAddresses": [{"ip": "10.244.2.7"}],
            "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}]}]});
        assert_eq!(endpoints_errors(ep), Vec::<String>::new());
    }

    #[test]
    fn endpoints_subset_needs_an_address() {
        assert_eq!(
            endpoints_errors(json!({"subsets": [{"ports": [{"port": 80}]}]})),
            vec!["subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"]
        );
    }

    #[test]
    fn endpoints_reject_loopback_link_local_and_bad_ips() {
        let errs = endpoints_errors(json!({"subsets": [{"addresses": [{"ip": "127.0.0.1"}, {"ip": "169.254.1.1"}, {"ip": "nope"}]}]}));
        assert_eq!(
            errs,
            vec![
                "subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                "subsets[0].addresses[1].ip: Invalid value: \"169.254.1.1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)",
                "subsets[0].addresses[2].ip: Invalid value: \"nope\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                "subsets[0].addresses[2].ip: Invalid value: \"nope\": must be a valid IP address",
            ]
        );
    }

    #[test]
    fn endpoints_ports_need_names_when_several() {
        let errs = endpoints_errors(json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}, {"name": "b", "port": 0}]}]}));
        assert_eq!(
            errs,
            vec![
                "subsets[0].ports[0].name: Required value",
                "subsets[0].ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            ]
        );
    }

    #[test]
    fn endpoints_ports_default_to_tcp() {
        let mut ep = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]});
        apply_defaults(&GroupKind::new("", "Endpoints"), &mut ep);
        assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
    }

    #[test]
    fn endpoint_slice_for_a_service_validates_clean() {
        let slice = json!({"metadata": {"name": "my-service-abc12", "labels": {"kubernetes.io/service-name": "my-service"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": true, "serving": true, "terminating": false},
                "nodeName": "node-1", "zone": "us-east-1a", "hints": {"forZones": [{"name": "us-east-1a"}]}}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]});
        assert_eq!(slice_errors(slice), Vec::<String>::new());
    }

    #[test]
    fn endpoint_slice_ports_default_name_and_protocol() {
        let mut slice = json!({"addressType": "IPv4", "ports": [{"port": 80}]});
        apply_defaults(&GroupKind::new("discovery.k8s.io", "EndpointSlice"), &mut slice);
        assert_eq!(slice["ports"][0], json!({"port": 80, "name": "", "protocol": "TCP"}));
    }

    #[test]
    fn endpoint_slice_address_type_is_required_and_enumerated() {
        assert_eq!(slice_errors(json!({})), vec!["addressType: Required value"]);
        assert_eq!(
            slice_errors(json!({"addressType": "IP"})),
            vec!["addressType: Unsupported value: \"IP\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""]
        );
    }

    #[test]
    fn endpoint_slice_addresses_must_match_the_address_type() {
        let errs = slice_errors(json!({"addressType": "IPv6", "endpoints": [{"addresses": ["10.0.0.1", "fd00::1"]}, {"addresses": []}]}));
        assert_eq!(
            errs,
            vec![
                "endpoints[0].addresses[0]: Invalid value: \"10.0.0.1\": must be a valid IPv6 address",
                "endpoints[1].addresses: Required value: must contain at least 1 address",
            ]
        );
        let errs = slice_errors(json!({"addressType": "FQDN", "endpoints": [{"addresses": ["db.example.com", "localhost"]}]}));
        assert_eq!(errs, vec!["endpoints[0].addresses[1]: Invalid value: \"localhost\": should be a domain with at least two segments separated by dots"]);
    }

    #[test]
    fn endpoint_slice_holds_at_most_a_thousand_endpoints() {
        let eps: Vec<Value> = (0..1001).map(|i| json!({"addresses": [format!("10.0.{}.{}", i / 250, i % 250 + 1)]})).collect();
        let errs = slice_errors(json!({"addressType": "IPv4", "endpoints": eps}));
        assert_eq!(errs, vec!["endpoints: Too many: 1001: must have at most 1000 items"]);
    }

    #[test]
    fn endpoint_slice_port_names_are_unique() {
        let errs = slice_errors(json!({"addressType": "IPv4", "ports": [{"port": 80}, {"port": 81}, {"name": "A", "port": 82, "protocol": "HTTP"}]}));
        assert_eq!(errs[0], "ports[1].name: Duplicate value: \"\"");
        assert!(errs[1].starts_with("ports[2].name: Invalid value: \"A\""));
        assert_eq!(errs[2], "ports[2].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"");
    }

    #[test]
    fn endpoint_slice_zone_hints_are_unique_label_values() {
        let errs = slice_errors(json!({"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"],
            "hints": {"forZones": [{"name": "a"}, {"name": "a"}]}}]}));
        assert_eq!(errs, vec!["endpoints[0].hints.forZones[1].name: Duplicate value: \"a\""]);
    }

    #[test]
    fn endpoint_slice_address_type_is_immutable() {
        let old = json!({"addressType": "IPv4"});
        let new = json!({"addressType": "IPv6"});
        let errs: Vec<String> = validate_endpoint_slice(&new, Some(&old)).iter().map(|e| e.to_string()).collect();
        assert_eq!(errs, vec!["addressType: Invalid value: \"IPv6\": field is immutable"]);
    }
}

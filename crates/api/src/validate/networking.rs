//! networking.k8s.io validation: NetworkPolicy, Ingress and IngressClass, as
//! kube-apiserver's `pkg/apis/networking/validation` does it.

use super::names;
use super::service::fields::{list_of, str_of};
use super::service::formats::{self, invalid_each, PORT_RANGE_MSG};
use crate::FieldError;
use serde_json::{json, Value};

const POLICY_PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
const POLICY_TYPES: &[&str] = &["Ingress", "Egress"];
const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];
const INVALID_PATH_SEQUENCES: &[&str] = &["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: &[&str] = &["/..", "/."];
const PARAMETER_SCOPES: &[&str] = &["Cluster", "Namespace"];
const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
const MAX_CONTROLLER_LEN: usize = 250;

// ---------------------------------------------------------------------------
// NetworkPolicy

pub fn validate_network_policy(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let mut errs = names::validate_label_selector("spec.podSelector", spec.get("podSelector"));

    for (dir, peers_key) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in list_of(spec, dir).iter().enumerate() {
            let rule_path = format!("spec.{dir}[{i}]");
            for (j, port) in list_of(rule, "ports").iter().enumerate() {
                errs.extend(validate_policy_port(port, &format!("{rule_path}.ports[{j}]")));
            }
            for (j, peer) in list_of(rule, peers_key).iter().enumerate() {
                errs.extend(validate_policy_peer(peer, &format!("{rule_path}.{peers_key}[{j}]")));
            }
        }
    }

    let types = list_of(spec, "policyTypes");
    if types.len() > POLICY_TYPES.len() {
        errs.push(FieldError::invalid("spec.policyTypes", json!(types), "may not specify more than two policyTypes"));
        return errs;
    }
    for (i, t) in types.iter().enumerate() {
        if !t.as_str().map(|t| POLICY_TYPES.contains(&t)).unwrap_or(false) {
            errs.push(FieldError::not_supported(format!("spec.policyTypes[{i}]"), t.clone(), POLICY_TYPES));
        }
    }
    errs
}

fn validate_policy_port(port: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(p) = port.get("protocol").filter(|v| !v.is_null()) {
        if !p.as_str().map(|p| POLICY_PROTOCOLS.contains(&p)).unwrap_or(false) {
            errs.push(FieldError::not_supported(format!("{path}.protocol"), p.clone(), POLICY_PROTOCOLS));
        }
    }
    let end_port = port.get("endPort").filter(|v| !v.is_null());
    let end_path = format!("{path}.endPort");
    match port.get("port").filter(|v| !v.is_null()) {
        Some(Value::String(name)) => {
            if let Some(end) = end_port {
                errs.push(FieldError::invalid(end_path, end.clone(), "may not be specified when `port` is non-numeric"));
            }
            errs.extend(invalid_each(&format!("{path}.port"), name, names::is_valid_port_name(name)));
        }
        Some(number) => {
            let n = super::service::fields::int(Some(number));
            if !n.map(formats::valid_port_num).unwrap_or(false) {
                errs.push(FieldError::invalid(format!("{path}.port"), number.clone(), PORT_RANGE_MSG));
            }
            if let Some(end) = end_port {
                let e = super::service::fields::int(Some(end));
                if let (Some(e), Some(n)) = (e, n) {
                    if e < n {
                        errs.push(FieldError::invalid(end_path.clone(), end.clone(), "must be greater than or equal to `port`"));
                    }
                }
                if !e.map(formats::valid_port_num).unwrap_or(false) {
                    errs.push(FieldError::invalid(end_path, end.clone(), PORT_RANGE_MSG));
                }
            }
        }
        None => {
            if let Some(end) = end_port {
                errs.push(FieldError::invalid(end_path, end.clone(), "may not be specified when `port` is not specified"));
            }
        }
    }
    errs
}

fn validate_policy_peer(peer: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut count = 0;
    for sel in ["podSelector", "namespaceSelector"] {
        if let Some(s) = peer.get(sel).filter(|v| !v.is_null()) {
            count += 1;
            errs.extend(names::validate_label_selector(&format!("{path}.{sel}"), Some(s)));
        }
    }
    let ip_block = peer.get("ipBlock").filter(|v| !v.is_null());
    if let Some(b) = ip_block {
        count += 1;
        errs.extend(validate_ip_block(b, &format!("{path}.ipBlock")));
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a peer"));
    } else if count > 1 && ip_block.is_some() {
        errs.push(FieldError::forbidden(path, "may not specify both ipBlock and another peer"));
    }
    errs
}

/// `cidr` and each `except`, which must lie strictly inside `cidr`.
fn validate_ip_block(block: &Value, path: &str) -> Vec<FieldError> {
    let cidr = str_of(block, "cidr");
    let cidr_path = format!("{path}.cidr");
    if cidr.is_empty() {
        return vec![FieldError::required(cidr_path, "")];
    }
    let mut errs = names::validate_cidr(&cidr_path, cidr);
    let Some(net) = names::parse_cidr_sloppy(cidr) else { return errs };
    for (i, except) in list_of(block, "except").iter().enumerate() {
        let except = except.as_str().unwrap_or("");
        let p = format!("{path}.except[{i}]");
        let bad = names::validate_cidr(&p, except);
        if !bad.is_empty() {
            errs.extend(bad);
            continue;
        }
        let Some(ex) = names::parse_cidr_sloppy(except) else { continue };
        if !net.trunc().contains(&ex.network()) || net.prefix_len() >= ex.prefix_len() {
            errs.push(FieldError::invalid(p, json!(except), "must be a strict subset of `cidr`"));
        }
    }
    errs
}

// ---------------------------------------------------------------------------
// Ingress

pub fn validate_ingress(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    // Stored objects that predate a rule keep validating (upstream's ratcheting options).
    let old_spec = old.and_then(|o| o.get("spec"));
    let allow_invalid_secret_name = old_spec
        .map(|s| list_of(s, "tls").iter().any(|t| !tls_secret_name_messages(str_of(t, "secretName")).is_empty()))
        .unwrap_or(false);
    let allow_invalid_wildcard_rule = old_spec
        .map(|s| {
            list_of(s, "rules")
                .iter()
                .any(|r| str_of(r, "host").contains('*') && !validate_rule_value(r, "").is_empty())
        })
        .unwrap_or(false);

    let mut errs = Vec::new();
    let rules = list_of(spec, "rules");
    let default_backend = spec.get("defaultBackend").filter(|v| !v.is_null());
    if rules.is_empty() && default_backend.is_none() {
        errs.push(FieldError::invalid(
            "spec",
            spec.get("rules").cloned().unwrap_or(Value::Null),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = default_backend {
        errs.extend(validate_backend(b, "spec.defaultBackend"));
    }
    for (i, rule) in rules.iter().enumerate() {
        let path = format!("spec.rules[{i}]");
        let host = str_of(rule, "host");
        let mut wildcard = false;
        if !host.is_empty() {
            let host_path = format!("{path}.host");
            if names::parse_ip_sloppy(host).is_some() {
                errs.push(FieldError::invalid(host_path.clone(), json!(host), "must be a DNS name, not an IP address"));
            }
            if host.contains('*') {
                wildcard = true;
                errs.extend(invalid_each(&host_path, host, names::is_wildcard_dns1123_subdomain(host)));
            } else {
                errs.extend(invalid_each(&host_path, host, names::is_dns1123_subdomain(host)));
            }
        }
        if !wildcard || !allow_invalid_wildcard_rule {
            errs.extend(validate_rule_value(rule, &path));
        }
    }
    for (i, tls) in list_of(spec, "tls").iter().enumerate() {
        let path = format!("spec.tls[{i}]");
        for (j, host) in list_of(tls, "hosts").iter().enumerate() {
            let host = host.as_str().unwrap_or("");
            let msgs = if host.contains('*') {
                names::is_wildcard_dns1123_subdomain(host)
            } else {
                names::is_dns1123_subdomain(host)
            };
            errs.extend(invalid_each(&format!("{path}.hosts[{j}]"), host, msgs));
        }
        if !allow_invalid_secret_name {
            let secret = str_of(tls, "secretName");
            errs.extend(invalid_each(&format!("{path}.secretName"), secret, tls_secret_name_messages(secret)));
        }
    }
    if let Some(class) = spec.get("ingressClassName").and_then(Value::as_str) {
        errs.extend(invalid_each("spec.ingressClassName", class, names::is_dns1123_subdomain(class)));
    }

    if old.is_none() {
        let annotation = obj.pointer("/metadata/annotations").and_then(|a| a.get(INGRESS_CLASS_ANNOTATION)).and_then(Value::as_str);
        let class = spec.get("ingressClassName").and_then(Value::as_str);
        if let (Some(a), Some(c)) = (annotation, class) {
            if a != c {
                // Upstream names this path without `metadata.`.
                errs.push(FieldError::invalid(
                    format!("annotations.{INGRESS_CLASS_ANNOTATION}"),
                    json!(a),
                    "must match `ingressClassName` when both are specified",
                ));
            }
        }
    }
    errs
}

fn tls_secret_name_messages(name: &str) -> Vec<String> {
    if name.is_empty() {
        Vec::new()
    } else {
        names::is_dns1123_subdomain(name)
    }
}

fn validate_rule_value(rule: &Value, path: &str) -> Vec<FieldError> {
    let Some(http) = rule.get("http").filter(|v| !v.is_null()) else { return Vec::new() };
    let mut errs = Vec::new();
    let paths = list_of(http, "paths");
    let paths_path = format!("{path}.http.paths");
    if paths.is_empty() {
        errs.push(FieldError::required(paths_path.clone(), ""));
    }
    for (i, p) in paths.iter().enumerate() {
        errs.extend(validate_http_path(p, &format!("{paths_path}[{i}]")));
    }
    errs
}

fn validate_http_path(p: &Value, path: &str) -> Vec<FieldError> {
    let Some(path_type) = p.get("pathType").filter(|v| !v.is_null()) else {
        return vec![FieldError::required(format!("{path}.pathType"), "pathType must be specified")];
    };
    let mut errs = Vec::new();
    let value = str_of(p, "path");
    let value_path = format!("{path}.path");
    let not_absolute = || FieldError::invalid(value_path.clone(), json!(value), "must be an absolute path");
    match path_type.as_str().unwrap_or("") {
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errs.push(not_absolute());
            }
            for seq in INVALID_PATH_SEQUENCES.iter().filter(|s| value.contains(**s)) {
                errs.push(FieldError::invalid(value_path.clone(), json!(value), format!("must not contain '{seq}'")));
            }
            for suffix in INVALID_PATH_SUFFIXES.iter().filter(|s| value.ends_with(**s)) {
                errs.push(FieldError::invalid(value_path.clone(), json!(value), format!("cannot end with '{suffix}'")));
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errs.push(not_absolute());
            }
        }
        _ => errs.push(FieldError::not_supported(format!("{path}.pathType"), path_type.clone(), PATH_TYPES)),
    }
    errs.extend(validate_backend(p.get("backend").unwrap_or(&Value::Null), &format!("{path}.backend")));
    errs
}

/// Exactly one of `service` (with a port name or number) and `resource`.
fn validate_backend(backend: &Value, path: &str) -> Vec<FieldError> {
    let service = backend.get("service").filter(|v| !v.is_null());
    let resource = backend.get("resource").filter(|v| !v.is_null());
    match (service, resource) {
        (Some(_), Some(_)) => vec![FieldError::invalid(path, json!(""), "cannot set both resource and service backends")],
        (None, Some(r)) => validate_typed_reference(r, &format!("{path}.resource")),
        (Some(s), None) => {
            let mut errs = Vec::new();
            let name = str_of(s, "name");
            if name.is_empty() {
                errs.push(FieldError::required(format!("{path}.service.name"), ""));
            } else {
                errs.extend(invalid_each(&format!("{path}.service.name"), name, names::is_dns1035_label(name)));
            }
            let null = Value::Null;
            let port = s.get("port").unwrap_or(&null);
            let port_name = str_of(port, "name");
            let number = super::service::fields::int_of(port, "number").unwrap_or(0);
            match (!port_name.is_empty(), number != 0) {
                (true, true) => errs.push(FieldError::invalid(path, json!(""), "cannot set both port name & port number")),
                (true, false) => {
                    errs.extend(invalid_each(&format!("{path}.service.port.name"), port_name, names::is_valid_port_name(port_name)))
                }
                (false, true) => errs.extend(names::validate_port_num(&format!("{path}.service.port.number"), number)),
                (false, false) => errs.push(FieldError::required(path, "port name or number is required")),
            }
            errs
        }
        (None, None) => vec![FieldError::invalid(path, json!(""), "resource or service backend is required")],
    }
}

/// A name that must be usable as one URL path segment.
fn path_segment_messages(name: &str) -> Vec<String> {
    let mut msgs = Vec::new();
    if name == "." || name == ".." {
        msgs.push(format!("may not be '{name}'"));
    }
    for bad in ["/", "%"] {
        if name.contains(bad) {
            msgs.push(format!("may not contain '{bad}'"));
        }
    }
    msgs
}

/// `apiGroup`/`kind`/`name` of a backend resource or IngressClass parameters.
fn validate_typed_reference(r: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(group) = r.get("apiGroup").and_then(Value::as_str) {
        errs.extend(invalid_each(&format!("{path}.apiGroup"), group, names::is_dns1123_subdomain(group)));
    }
    for field in ["kind", "name"] {
        let v = str_of(r, field);
        if v.is_empty() {
            errs.push(FieldError::required(format!("{path}.{field}"), ""));
        } else {
            errs.extend(invalid_each(&format!("{path}.{field}"), v, path_segment_messages(v)));
        }
    }
    errs
}

// ---------------------------------------------------------------------------
// IngressClass

pub fn validate_ingress_class(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let mut errs = Vec::new();
    let controller = str_of(spec, "controller");
    if let Some(old) = old {
        let old_controller = old.pointer("/spec/controller").and_then(Value::as_str).unwrap_or("");
        if old_controller != controller {
            errs.push(FieldError::invalid("spec.controller", json!(controller), names::FIELD_IMMUTABLE_ERROR));
        }
    }
    if controller.is_empty() {
        errs.push(FieldError::required("spec.controller", ""));
    } else {
        if controller.len() > MAX_CONTROLLER_LEN {
            errs.push(FieldError::too_long("spec.controller", MAX_CONTROLLER_LEN));
        }
        errs.extend(formats::domain_prefixed_path("spec.controller", controller));
    }
    if let Some(params) = spec.get("parameters").filter(|v| !v.is_null()) {
        errs.extend(validate_class_parameters(params, "spec.parameters"));
    }
    errs
}

fn validate_class_parameters(params: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = validate_typed_reference(params, path);
    let Some(scope) = params.get("scope").filter(|v| !v.is_null()) else {
        errs.push(FieldError::required(format!("{path}.scope"), ""));
        return errs;
    };
    let namespace = params.get("namespace").filter(|v| !v.is_null());
    let ns_path = format!("{path}.namespace");
    match scope.as_str().unwrap_or("") {
        "Namespace" => match namespace {
            None => errs.push(FieldError::required(ns_path, "`parameters.scope` is set to 'Namespace'")),
            Some(ns) => {
                let ns = ns.as_str().unwrap_or("");
                errs.extend(invalid_each(&ns_path, ns, names::is_dns1123_label(ns)));
            }
        },
        "Cluster" => {
            if namespace.is_some() {
                errs.push(FieldError::forbidden(ns_path, "`parameters.scope` is set to 'Cluster'"));
            }
        }
        _ => errs.push(FieldError::not_supported(format!("{path}.scope"), scope.clone(), PARAMETER_SCOPES)),
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::apply_defaults;
    use crate::GroupKind;

    fn policy_errors(mut np: Value) -> Vec<String> {
        apply_defaults(&GroupKind::new("networking.k8s.io", "NetworkPolicy"), &mut np);
        validate_network_policy(&np, None).iter().map(|e| e.to_string()).collect()
    }

    fn ingress_errors(mut ing: Value) -> Vec<String> {
        apply_defaults(&GroupKind::new("networking.k8s.io", "Ingress"), &mut ing);
        validate_ingress(&ing, None).iter().map(|e| e.to_string()).collect()
    }

    fn class_errors(ic: Value) -> Vec<String> {
        validate_ingress_class(&ic, None).iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn default_deny_policy_validates_clean() {
        let np = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "default-deny"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}});
        assert_eq!(policy_errors(np), Vec::<String>::new());
    }

    #[test]
    fn allow_http_from_anywhere_policy_validates_clean() {
        let np = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "allow-http"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 80}]}]}});
        let mut defaulted = np.clone();
        apply_defaults(&GroupKind::new("networking.k8s.io", "NetworkPolicy"), &mut defaulted);
        assert_eq!(defaulted["spec"]["policyTypes"], json!(["Ingress"]));
        assert_eq!(policy_errors(np), Vec::<String>::new());
    }

    #[test]
    fn policy_types_are_ingress_or_egress() {
        assert_eq!(
            policy_errors(json!({"spec": {"podSelector": {}, "policyTypes": ["Inbound"]}})),
            vec!["spec.policyTypes[0]: Unsupported value: \"Inbound\": supported values: \"Ingress\", \"Egress\""]
        );
        let errs = policy_errors(json!({"spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress", "Ingress"]}}));
        assert_eq!(errs, vec!["spec.policyTypes: Invalid value: [\"Ingress\",\"Egress\",\"Ingress\"]: may not specify more than two policyTypes"]);
    }

    #[test]
    fn end_port_needs_a_numeric_port_not_above_it() {
        let errs = policy_errors(json!({"spec": {"podSelector": {}, "egress": [{"ports": [
            {"port": 32000, "endPort": 31000}, {"port": "http", "endPort": 90}, {"endPort": 90}, {"port": 80, "protocol": "ICMP"}]}]}}));
        assert_eq!(
            errs,
            vec![
                "spec.egress[0].ports[0].endPort: Invalid value: 31000: must be greater than or equal to `port`",
                "spec.egress[0].ports[1].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
                "spec.egress[0].ports[2].endPort: Invalid value: 90: may not be specified when `port` is not specified",
                "spec.egress[0].ports[3].protocol: Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
            ]
        );
        assert!(policy_errors(json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 32000, "endPort": 32768}]}]}})).is_empty());
    }

    #[test]
    fn ip_block_excepts_must_be_strictly_inside_the_cidr() {
        let errs = policy_errors(json!({"spec": {"podSelector": {}, "ingress": [{"from": [
            {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16", "192.168.0.0/16", "10.0.0.0/8", "nope"]}}]}]}}));
        assert_eq!(
            errs,
            vec![
                "spec.ingress[0].from[0].ipBlock.except[1]: Invalid value: \"192.168.0.0/16\": must be a strict subset of `cidr`",
                "spec.ingress[0].from[0].ipBlock.except[2]: Invalid value: \"10.0.0.0/8\": must be a strict subset of `cidr`",
                "spec.ingress[0].from[0].ipBlock.except[3]: Invalid value: \"nope\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ]
        );
        assert_eq!(
            policy_errors(json!({"spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": ""}}]}]}})),
            vec!["spec.ingress[0].from[0].ipBlock.cidr: Required value"]
        );
    }

    #[test]
    fn peers_need_one_kind_and_ip_block_stands_alone() {
        let errs = policy_errors(json!({"spec": {"podSelector": {}, "ingress": [{"from": [
            {}, {"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}, {"podSelector": {}, "namespaceSelector": {"matchLabels": {"team": "a"}}}]}]}}));
        assert_eq!(
            errs,
            vec![
                "spec.ingress[0].from[0]: Required value: must specify a peer",
                "spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer",
            ]
        );
    }

    #[test]
    fn pod_selector_expressions_are_validated() {
        let errs = policy_errors(json!({"spec": {"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}}}));
        assert_eq!(errs, vec!["spec.podSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"]);
    }

    fn shop_ingress() -> Value {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "shop"},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "shop.techcorp.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "frontend-service", "port": {"number": 80}}}},
                {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "api-service", "port": {"name": "http"}}}}]}}],
                "tls": [{"hosts": ["shop.techcorp.com"], "secretName": "shop-tls"}]}})
    }

    #[test]
    fn ingress_with_host_and_two_prefix_paths_validates_clean() {
        assert_eq!(ingress_errors(shop_ingress()), Vec::<String>::new());
    }

    #[test]
    fn ingress_needs_rules_or_a_default_backend() {
        assert_eq!(ingress_errors(json!({"spec": {}})), vec!["spec: Invalid value: null: either `defaultBackend` or `rules` must be specified"]);
        assert!(ingress_errors(json!({"spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}})).is_empty());
    }

    #[test]
    fn ingress_paths_need_a_type_and_an_absolute_path() {
        let mut ing = shop_ingress();
        ing["spec"]["rules"][0]["http"]["paths"] = json!([
            {"path": "/a", "backend": {"service": {"name": "s", "port": {"number": 80}}}},
            {"path": "api", "pathType": "Exact", "backend": {"service": {"name": "s", "port": {"number": 80}}}},
            {"path": "/a//b", "pathType": "Prefix", "backend": {"service": {"name": "s", "port": {"number": 80}}}},
            {"path": "/a", "pathType": "Regex", "backend": {"service": {"name": "s", "port": {"number": 80}}}},
        ]);
        assert_eq!(
            ingress_errors(ing),
            vec![
                "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
                "spec.rules[0].http.paths[1].path: Invalid value: \"api\": must be an absolute path",
                "spec.rules[0].http.paths[2].path: Invalid value: \"/a//b\": must not contain '//'",
                "spec.rules[0].http.paths[3].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"",
            ]
        );
    }

    #[test]
    fn ingress_http_rule_needs_paths() {
        let mut ing = shop_ingress();
        ing["spec"]["rules"][0]["http"] = json!({"paths": []});
        assert_eq!(ingress_errors(ing), vec!["spec.rules[0].http.paths: Required value"]);
    }

    #[test]
    fn ingress_backend_is_exactly_one_service_or_resource() {
        let mut ing = shop_ingress();
        ing["spec"]["rules"][0]["http"]["paths"] = json!([
            {"path": "/a", "pathType": "Prefix", "backend": {}},
            {"path": "/b", "pathType": "Prefix", "backend": {"service": {"name": "s", "port": {"number": 80}},
                "resource": {"kind": "Bucket", "name": "b"}}},
            {"path": "/c", "pathType": "Prefix", "backend": {"service": {"name": "s", "port": {}}}},
            {"path": "/d", "pathType": "Prefix", "backend": {"service": {"name": "s", "port": {"name": "http", "number": 80}}}},
            {"path": "/e", "pathType": "Prefix", "backend": {"resource": {"apiGroup": "k8s.example.com", "kind": "StorageBucket", "name": "static"}}},
        ]);
        assert_eq!(
            ingress_errors(ing),
            vec![
                "spec.rules[0].http.paths[0].backend: Invalid value: \"\": resource or service backend is required",
                "spec.rules[0].http.paths[1].backend: Invalid value: \"\": cannot set both resource and service backends",
                "spec.rules[0].http.paths[2].backend: Required value: port name or number is required",
                "spec.rules[0].http.paths[3].backend: Invalid value: \"\": cannot set both port name & port number",
            ]
        );
    }

    #[test]
    fn ingress_hosts_are_dns_names_with_optional_wildcard() {
        let mut ing = shop_ingress();
        ing["spec"]["rules"][0]["host"] = json!("*.techcorp.com");
        assert!(ingress_errors(ing.clone()).is_empty());
        ing["spec"]["rules"][0]["host"] = json!("10.0.0.1");
        assert_eq!(ingress_errors(ing.clone()), vec!["spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address"]);
        ing["spec"]["rules"][0]["host"] = json!("shop.*.com");
        assert_eq!(ingress_errors(ing).len(), 1);
    }

    #[test]
    fn ingress_class_annotation_must_match_class_name() {
        let mut ing = shop_ingress();
        ing["metadata"]["annotations"] = json!({"kubernetes.io/ingress.class": "traefik"});
        assert_eq!(
            ingress_errors(ing),
            vec!["annotations.kubernetes.io/ingress.class: Invalid value: \"traefik\": must match `ingressClassName` when both are specified"]
        );
    }

    #[test]
    fn ingress_class_needs_a_domain_prefixed_controller() {
        assert!(class_errors(json!({"spec": {"controller": "k8s.io/ingress-nginx"}})).is_empty());
        assert_eq!(class_errors(json!({"spec": {}})), vec!["spec.controller: Required value"]);
        assert_eq!(
            class_errors(json!({"spec": {"controller": "nginx"}})),
            vec!["spec.controller: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")"]
        );
    }

    #[test]
    fn ingress_class_parameters_scope_rules() {
        let errs = class_errors(json!({"spec": {"controller": "example.com/lb", "parameters": {
            "apiGroup": "k8s.example.com", "kind": "LBConfig", "name": "cfg", "scope": "Namespace"}}}));
        assert_eq!(errs, vec!["spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'"]);
        let errs = class_errors(json!({"spec": {"controller": "example.com/lb", "parameters": {
            "kind": "LBConfig", "name": "cfg", "scope": "Cluster", "namespace": "x"}}}));
        assert_eq!(errs, vec!["spec.parameters.namespace: Forbidden: `parameters.scope` is set to 'Cluster'"]);
    }

    #[test]
    fn ingress_class_controller_is_immutable() {
        let old = json!({"spec": {"controller": "example.com/a"}});
        let new = json!({"spec": {"controller": "example.com/b"}});
        let errs: Vec<String> = validate_ingress_class(&new, Some(&old)).iter().map(|e| e.to_string()).collect();
        assert_eq!(errs, vec!["spec.controller: Invalid value: \"example.com/b\": field is immutable"]);
    }
}

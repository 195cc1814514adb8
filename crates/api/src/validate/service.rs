//! Service validation as kube-apiserver does it (`ValidateService`, `ValidateServiceUpdate`).
//!
//! Runs after defaulting. ClusterIPs, node ports and the health-check node port are
//! filled by the allocator, which may run after this, so "missing" allocated values are
//! never an error here; a changed one is.

pub(crate) mod fields;
pub(crate) mod formats;

use crate::FieldError;
use fields::{int_of, is_set, list_of, map_of, str_of, strings_of};
use super::names;
use formats::{invalid_each, PORT_RANGE_MSG};
use serde_json::{json, Value};
use std::collections::HashSet;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const AFFINITIES: &[&str] = &["ClientIP", "None"];
const TRAFFIC_POLICIES: &[&str] = &["Cluster", "Local"];
const IP_FAMILIES: &[&str] = &["IPv4", "IPv6"];
const IP_FAMILY_POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];
const MAX_AFFINITY_SECONDS: i64 = 86400;
const SOURCE_RANGES_ANNOTATION: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";

/// The parts of a Service spec that several rules look at.
struct Svc<'a> {
    spec: &'a Value,
    typ: &'a str,
    cluster_ip: &'a str,
    /// `clusterIPs` as the registry normalises it before validating: a lone `clusterIP`
    /// stands for `[clusterIP]`.
    cluster_ips: Vec<&'a str>,
    ip_families: Vec<&'a str>,
}

impl<'a> Svc<'a> {
    fn new(obj: &'a Value) -> Self {
        static NULL: Value = Value::Null;
        let spec = obj.get("spec").unwrap_or(&NULL);
        let cluster_ip = str_of(spec, "clusterIP");
        let mut cluster_ips = strings_of(spec, "clusterIPs");
        if cluster_ips.is_empty() && !cluster_ip.is_empty() {
            cluster_ips.push(cluster_ip);
        }
        Svc { spec, typ: str_of(spec, "type"), cluster_ip, cluster_ips, ip_families: strings_of(spec, "ipFamilies") }
    }
    fn headless(&self) -> bool {
        self.cluster_ips.len() == 1 && self.cluster_ips[0] == "None"
    }
    fn externally_accessible(&self) -> bool {
        self.typ == "LoadBalancer" || self.typ == "NodePort" || (self.typ == "ClusterIP" && !list_of(self.spec, "externalIPs").is_empty())
    }
    fn needs_health_check(&self) -> bool {
        self.typ == "LoadBalancer" && str_of(self.spec, "externalTrafficPolicy") == "Local"
    }
    fn ports(&self) -> &'a [Value] {
        list_of(self.spec, "ports")
    }
    fn cluster_ips_json(&self) -> Value {
        json!(self.cluster_ips)
    }
}

pub fn validate_service(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let svc = Svc::new(obj);
    let mut errs = Vec::new();
    if let Some(old) = old {
        errs.extend(validate_update(&Svc::new(old), &svc));
    }
    errs.extend(validate_spec(obj, &svc));
    errs
}

fn validate_spec(obj: &Value, svc: &Svc) -> Vec<FieldError> {
    let spec = svc.spec;
    let mut errs = Vec::new();
    let ports = svc.ports();

    if ports.is_empty() && !svc.headless() && svc.typ != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    match svc.typ {
        "LoadBalancer" | "NodePort" if svc.headless() => errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            json!("None"),
            format!("may not be set to 'None' for {} services", svc.typ),
        )),
        "ExternalName" => errs.extend(validate_external_name(svc)),
        _ => {}
    }

    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        errs.extend(validate_port(port, ports.len() > 1, &mut names, &format!("spec.ports[{i}]")));
    }

    if let Some(sel) = map_of(spec, "selector") {
        errs.extend(names::validate_labels("spec.selector", sel));
    }

    errs.extend(validate_session_affinity(spec));
    errs.extend(validate_cluster_ips(svc));

    for (i, ip) in strings_of(spec, "externalIPs").into_iter().enumerate() {
        let path = format!("spec.externalIPs[{i}]");
        let bad = names::validate_ip(&path, ip);
        if bad.is_empty() {
            errs.extend(formats::non_special_ip(&path, ip));
        } else {
            errs.extend(bad);
        }
    }

    if svc.typ.is_empty() {
        errs.push(FieldError::required("spec.type", ""));
    } else if !TYPES.contains(&svc.typ) {
        errs.push(FieldError::not_supported("spec.type", json!(svc.typ), TYPES));
    }

    if svc.typ == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if int_of(port, "nodePort").unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(format!("spec.ports[{i}].nodePort"), "may not be used when `type` is 'ClusterIP'"));
            }
        }
    }
    errs.extend(duplicate_ports(ports));
    errs.extend(validate_source_ranges(obj, svc));

    let allocate = is_set(spec, "allocateLoadBalancerNodePorts");
    if allocate && svc.typ != "LoadBalancer" {
        errs.push(FieldError::forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"));
    }
    if svc.typ == "LoadBalancer" && !allocate {
        // Upstream names this field without its `spec.` parent.
        errs.push(FieldError::required("allocateLoadBalancerNodePorts", ""));
    }

    let lb_class = spec.get("loadBalancerClass").filter(|v| !v.is_null());
    match (svc.typ == "LoadBalancer", lb_class) {
        (true, Some(class)) => {
            let c = class.as_str().unwrap_or("");
            errs.extend(invalid_each("spec.loadBalancerClass", c, names::is_qualified_name(c)));
        }
        (false, Some(_)) => errs.push(FieldError::forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'")),
        _ => {}
    }

    errs.extend(validate_traffic_policies(svc));
    errs
}

fn validate_external_name(svc: &Svc) -> Vec<FieldError> {
    let spec = svc.spec;
    let mut errs = Vec::new();
    if !svc.cluster_ips.is_empty() {
        errs.push(FieldError::forbidden("spec.clusterIPs", "may not be set for ExternalName services"));
    }
    if !svc.ip_families.is_empty() {
        errs.push(FieldError::forbidden("spec.ipFamilies", "may not be set for ExternalName services"));
    }
    if is_set(spec, "ipFamilyPolicy") {
        errs.push(FieldError::forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"));
    }
    // A CNAME may carry a trailing dot to mark it fully qualified.
    let name = str_of(spec, "externalName");
    let cname = name.strip_suffix('.').unwrap_or(name);
    if cname.is_empty() {
        errs.push(FieldError::required("spec.externalName", ""));
    } else {
        errs.extend(invalid_each("spec.externalName", cname, names::is_dns1123_subdomain(cname)));
    }
    errs
}

fn validate_port(port: &Value, require_name: bool, names: &mut HashSet<String>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = str_of(port, "name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else if !name.is_empty() {
        errs.extend(invalid_each(&format!("{path}.name"), name, names::is_dns1123_label(name)));
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(format!("{path}.name"), json!(name)));
        }
    }

    let number = port.get("port").cloned().unwrap_or(json!(0));
    if !int_of(port, "port").map(formats::valid_port_num).unwrap_or(false) {
        errs.push(FieldError::invalid(format!("{path}.port"), number, PORT_RANGE_MSG));
    }

    let protocol = str_of(port, "protocol");
    if protocol.is_empty() {
        errs.push(FieldError::required(format!("{path}.protocol"), ""));
    } else if !PROTOCOLS.contains(&protocol) {
        errs.push(FieldError::not_supported(format!("{path}.protocol"), json!(protocol), PROTOCOLS));
    }

    errs.extend(port_num_or_name(&format!("{path}.targetPort"), port.get("targetPort").unwrap_or(&json!(0))));

    if let Some(app) = port.get("appProtocol").and_then(Value::as_str) {
        errs.extend(invalid_each(&format!("{path}.appProtocol"), app, names::is_qualified_name(app)));
    }

    // The node-port range itself is the allocator's to enforce; only the number is checked here.
    if let Some(np) = port.get("nodePort").filter(|v| !v.is_null()) {
        let ok = fields::int(Some(np)).map(|n| n == 0 || formats::valid_port_num(n)).unwrap_or(false);
        if !ok {
            errs.push(FieldError::invalid(format!("{path}.nodePort"), np.clone(), PORT_RANGE_MSG));
        }
    }
    errs
}

/// An `IntOrString` port: a number in 1..65535 or an IANA port name.
pub(crate) fn port_num_or_name(path: &str, v: &Value) -> Vec<FieldError> {
    match v {
        Value::String(s) => invalid_each(path, s, names::is_valid_port_name(s)),
        other => match fields::int(Some(other)) {
            Some(n) if formats::valid_port_num(n) => Vec::new(),
            _ => vec![FieldError::invalid(path, other.clone(), PORT_RANGE_MSG)],
        },
    }
}

fn duplicate_ports(ports: &[Value]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut node_ports = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let np = int_of(port, "nodePort").unwrap_or(0);
        if np != 0 && !node_ports.insert((str_of(port, "protocol"), np)) {
            errs.push(FieldError::duplicate(format!("spec.ports[{i}].nodePort"), json!(np)));
        }
    }
    let mut seen = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let key = (str_of(port, "protocol"), int_of(port, "port").unwrap_or(0));
        if !seen.insert(key) {
            errs.push(FieldError::duplicate(format!("spec.ports[{i}]"), json!({"port": key.1, "protocol": key.0})));
        }
    }
    errs
}

fn validate_session_affinity(spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let affinity = str_of(spec, "sessionAffinity");
    if affinity.is_empty() {
        errs.push(FieldError::required("spec.sessionAffinity", ""));
    } else if !AFFINITIES.contains(&affinity) {
        errs.push(FieldError::not_supported("spec.sessionAffinity", json!(affinity), AFFINITIES));
    }
    let config = spec.get("sessionAffinityConfig").filter(|v| !v.is_null());
    match affinity {
        "ClientIP" => {
            let why = "when session affinity type is ClientIP";
            let base = "spec.sessionAffinityConfig";
            let Some(config) = config else {
                errs.push(FieldError::required(base, why));
                return errs;
            };
            let Some(client_ip) = config.get("clientIP").filter(|v| !v.is_null()) else {
                errs.push(FieldError::required(format!("{base}.clientIP"), why));
                return errs;
            };
            let path = format!("{base}.clientIP.timeoutSeconds");
            match client_ip.get("timeoutSeconds").filter(|v| !v.is_null()) {
                None => errs.push(FieldError::required(path, why)),
                Some(t) => {
                    if !fields::int(Some(t)).map(|n| n > 0 && n <= MAX_AFFINITY_SECONDS).unwrap_or(false) {
                        errs.push(FieldError::invalid(
                            path,
                            t.clone(),
                            format!("must be greater than 0 and less than {MAX_AFFINITY_SECONDS}"),
                        ));
                    }
                }
            }
        }
        "None" if config.is_some() => {
            errs.push(FieldError::forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"));
        }
        _ => {}
    }
    errs
}

/// `clusterIP`, `clusterIPs`, `ipFamilies` and `ipFamilyPolicy`, and how they agree.
fn validate_cluster_ips(svc: &Svc) -> Vec<FieldError> {
    if svc.typ == "ExternalName" {
        return Vec::new();
    }
    let spec = svc.spec;
    let mut errs = Vec::new();
    let ips = &svc.cluster_ips;
    if !svc.cluster_ip.is_empty() && ips[0] != svc.cluster_ip {
        errs.push(FieldError::invalid("spec.clusterIPs", svc.cluster_ips_json(), "first value must match `clusterIP`"));
    } else if svc.cluster_ip.is_empty() && !ips.is_empty() {
        errs.push(FieldError::invalid("spec.clusterIPs", svc.cluster_ips_json(), "must be empty when `clusterIP` is not specified"));
    }

    let mut seen = HashSet::new();
    for (i, fam) in svc.ip_families.iter().enumerate() {
        let path = format!("spec.ipFamilies[{i}]");
        if !IP_FAMILIES.contains(fam) {
            errs.push(FieldError::not_supported(path.clone(), json!(fam), IP_FAMILIES));
        }
        if !seen.insert(*fam) {
            errs.push(FieldError::duplicate(path, json!(fam)));
        }
    }
    if let Some(policy) = spec.get("ipFamilyPolicy").filter(|v| !v.is_null()) {
        if !policy.as_str().map(|p| IP_FAMILY_POLICIES.contains(&p)).unwrap_or(false) {
            errs.push(FieldError::not_supported("spec.ipFamilyPolicy", policy.clone(), IP_FAMILY_POLICIES));
        }
    }

    let mut has_invalid = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && *ip == "None" {
            if ips.len() > 1 {
                has_invalid = true;
                errs.push(FieldError::invalid("spec.clusterIPs", svc.cluster_ips_json(), "'None' must be the first and only value"));
            }
            continue;
        }
        let bad = names::validate_ip(&format!("spec.clusterIPs[{i}]"), ip);
        has_invalid |= !bad.is_empty();
        errs.extend(bad);
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid("spec.clusterIPs", svc.cluster_ips_json(), "may only hold up to 2 values"));
    }
    // Family checks on addresses that did not parse would only repeat the error.
    if has_invalid {
        return errs;
    }
    let is_v6 = |ip: &str| names::parse_ip_sloppy(ip).map(|a| a.is_ipv6()).unwrap_or(false);
    if ips.len() > 1 {
        let v6 = ips.iter().filter(|ip| is_v6(ip)).count();
        if !(ips.len() == 2 && v6 == 1) {
            errs.push(FieldError::invalid("spec.clusterIPs", svc.cluster_ips_json(), "may specify no more than one IP for each IP family"));
        }
    }
    if !svc.headless() {
        for (i, (ip, fam)) in ips.iter().zip(svc.ip_families.iter()).enumerate() {
            let want_v6 = match *fam {
                "IPv4" => false,
                "IPv6" => true,
                _ => continue,
            };
            if is_v6(ip) != want_v6 {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    json!(ip),
                    format!("expected an {} value as indicated by `ipFamilies[{i}]`", fam),
                ));
            }
        }
    }
    errs
}

fn validate_source_ranges(obj: &Value, svc: &Svc) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ranges = strings_of(svc.spec, "loadBalancerSourceRanges");
    let annotation = obj.pointer("/metadata/annotations").and_then(|a| a.get(SOURCE_RANGES_ANNOTATION)).and_then(Value::as_str);
    if !ranges.is_empty() {
        // Upstream spells this path with a capital L.
        let path = "spec.LoadBalancerSourceRanges";
        if svc.typ != "LoadBalancer" {
            errs.push(FieldError::forbidden(path, "may only be used when `type` is 'LoadBalancer'"));
        }
        // Values may be space-padded, a leftover of the annotation they replaced.
        for (i, r) in ranges.iter().enumerate() {
            errs.extend(names::validate_cidr(&format!("{path}[{i}]"), r.trim()));
        }
    } else if let Some(val) = annotation {
        let path = format!("metadata.annotations[{SOURCE_RANGES_ANNOTATION}]");
        if svc.typ != "LoadBalancer" {
            errs.push(FieldError::forbidden(path.clone(), "may only be used when `type` is 'LoadBalancer'"));
        }
        let val = val.trim();
        if !val.is_empty() {
            for r in val.split(',') {
                errs.extend(names::validate_cidr(&path, r.trim()));
            }
        }
    }
    errs
}

fn validate_traffic_policies(svc: &Svc) -> Vec<FieldError> {
    let spec = svc.spec;
    let mut errs = Vec::new();
    let etp = str_of(spec, "externalTrafficPolicy");
    if !svc.externally_accessible() {
        if !etp.is_empty() {
            errs.push(FieldError::invalid("spec.externalTrafficPolicy", json!(etp), "may only be set for externally-accessible services"));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required("spec.externalTrafficPolicy", ""));
    } else if !TRAFFIC_POLICIES.contains(&etp) {
        errs.push(FieldError::not_supported("spec.externalTrafficPolicy", json!(etp), TRAFFIC_POLICIES));
    }

    let hc = spec.get("healthCheckNodePort").filter(|v| !v.is_null());
    let hc_num = fields::int(hc).unwrap_or(0);
    if !svc.needs_health_check() {
        if hc_num != 0 {
            errs.push(FieldError::invalid(
                "spec.healthCheckNodePort",
                json!(hc_num),
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if let Some(v) = hc.filter(|_| hc_num != 0 || fields::int(hc).is_none()) {
        // Zero means "allocate one for me"; the allocator fills it in.
        if !fields::int(Some(v)).map(formats::valid_port_num).unwrap_or(false) {
            errs.push(FieldError::invalid("spec.healthCheckNodePort", v.clone(), PORT_RANGE_MSG));
        }
    }

    match spec.get("internalTrafficPolicy").filter(|v| !v.is_null()) {
        None if matches!(svc.typ, "ClusterIP" | "NodePort" | "LoadBalancer") => {
            errs.push(FieldError::required("spec.internalTrafficPolicy", ""));
        }
        Some(itp) if !itp.as_str().map(|p| TRAFFIC_POLICIES.contains(&p)).unwrap_or(false) => {
            errs.push(FieldError::not_supported("spec.internalTrafficPolicy", itp.clone(), TRAFFIC_POLICIES));
        }
        _ => {}
    }

    if let Some(td) = spec.get("trafficDistribution").filter(|v| !v.is_null()) {
        if td.as_str() != Some("PreferClose") {
            errs.push(FieldError::not_supported("spec.trafficDistribution", td.clone(), &["PreferClose"]));
        }
    }
    errs
}

/// What may not change on update: allocated cluster IPs and families (except to, from or
/// on ExternalName, or between headless states), the load balancer class, and the
/// health-check node port while one is needed.
fn validate_update(old: &Svc, new: &Svc) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let external_name = old.typ == "ExternalName" || new.typ == "ExternalName";
    // An update that leaves allocated values out keeps the old ones (the registry copies
    // them over), so only a different value is a change.
    let new_ips = if new.cluster_ips.is_empty() { &old.cluster_ips } else { &new.cluster_ips };
    let new_ips_json = json!(new_ips);
    if !external_name && !(old.headless() && new.headless()) {
        let policy_single = str_of(new.spec, "ipFamilyPolicy") == "SingleStack";
        let old_ips = &old.cluster_ips;
        if old_ips.len() == new_ips.len() {
            for (i, ip) in old_ips.iter().enumerate() {
                if *ip != new_ips[i] {
                    errs.push(FieldError::invalid(format!("spec.clusterIPs[{i}]"), new_ips_json.clone(), "may not change once set"));
                }
            }
        } else if old_ips.len() > new_ips.len() {
            if !new_ips.is_empty() && new_ips[0] != old_ips[0] {
                errs.push(FieldError::invalid("spec.clusterIPs[0]", new_ips_json.clone(), "may not change once set"));
            }
            if new_ips.len() == 1 && !policy_single {
                errs.push(FieldError::invalid(
                    "spec.ipFamilyPolicy",
                    new.spec.get("ipFamilyPolicy").cloned().unwrap_or(Value::Null),
                    "must be set to 'SingleStack' when releasing the secondary clusterIP",
                ));
            }
        } else if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
            errs.push(FieldError::invalid("spec.clusterIPs[0]", new_ips_json.clone(), "may not change once set"));
        }
    }

    if !external_name && old.headless() == new.headless() && !new.headless() {
        let new_fams = if new.ip_families.is_empty() { &old.ip_families } else { &new.ip_families };
        let old_fams = &old.ip_families;
        let fams_json = json!(new_fams);
        let policy_single = str_of(new.spec, "ipFamilyPolicy") == "SingleStack";
        if old_fams.len() == new_fams.len() {
            if old_fams.iter().zip(new_fams.iter()).any(|(a, b)| a != b) {
                errs.push(FieldError::invalid("spec.ipFamilies[0]", fams_json, "may not change once set"));
            }
        } else if old_fams.len() > new_fams.len() {
            if !new_fams.is_empty() && new_fams[0] != old_fams[0] {
                errs.push(FieldError::invalid("spec.ipFamilies[0]", new_ips_json.clone(), "may not change once set"));
            }
            if new_fams.len() == 1 && !policy_single {
                errs.push(FieldError::invalid(
                    "spec.ipFamilyPolicy",
                    new.spec.get("ipFamilyPolicy").cloned().unwrap_or(Value::Null),
                    "must be set to 'SingleStack' when releasing the secondary ipFamily",
                ));
            }
        } else if !old_fams.is_empty() && new_fams[0] != old_fams[0] {
            errs.push(FieldError::invalid("spec.ipFamilies[0]", new_ips_json.clone(), "may not change once set"));
        }
    }

    if old.typ == "LoadBalancer" && new.typ == "LoadBalancer" {
        let class = |s: &Svc| s.spec.get("loadBalancerClass").filter(|v| !v.is_null()).cloned();
        if class(old) != class(new) {
            errs.push(FieldError::invalid("spec.loadBalancerClass", class(new).unwrap_or(Value::Null), "may not change once set"));
        }
    }

    if old.needs_health_check() && new.needs_health_check() {
        let hc = |s: &Svc| int_of(s.spec, "healthCheckNodePort").unwrap_or(0);
        if hc(new) != 0 && hc(new) != hc(old) {
            errs.push(FieldError::forbidden("spec.healthCheckNodePort", "field is immutable"));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::apply_defaults;
    use crate::GroupKind;

    fn defaulted(mut svc: Value) -> Value {
        apply_defaults(&GroupKind::new("", "Service"), &mut svc);
        svc
    }

    fn errors(svc: Value) -> Vec<String> {
        validate_service(&defaulted(svc), None).iter().map(|e| e.to_string()).collect()
    }

    fn update_errors(old: Value, new: Value) -> Vec<String> {
        validate_service(&defaulted(new), Some(&defaulted(old))).iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn cluster_ip_service_with_selector_defaults_and_validates_clean() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "my-service"},
            "spec": {"type": "ClusterIP", "selector": {"app": "MyApp"}, "ports": [{"port": 80, "targetPort": 8080}]}});
        assert_eq!(errors(svc), Vec::<String>::new());
    }

    #[test]
    fn load_balancer_service_defaults_and_validates_clean() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "frontend-service"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "frontend"}, "ports": [{"port": 80, "targetPort": 3000}]}});
        assert_eq!(errors(svc), Vec::<String>::new());
    }

    #[test]
    fn ports_are_required_unless_headless_or_external_name() {
        assert_eq!(errors(json!({"spec": {"selector": {"app": "a"}}})), vec!["spec.ports: Required value"]);
        assert!(errors(json!({"spec": {"clusterIP": "None", "selector": {"app": "a"}}})).is_empty());
        assert!(errors(json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}})).is_empty());
    }

    #[test]
    fn port_zero_is_out_of_range() {
        assert_eq!(
            errors(json!({"spec": {"ports": [{"port": 0, "targetPort": 80}]}})),
            vec!["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"]
        );
    }

    #[test]
    fn multiple_ports_need_unique_dns_label_names() {
        let errs = errors(json!({"spec": {"ports": [
            {"port": 80}, {"name": "Web", "port": 81}, {"name": "b", "port": 82}, {"name": "b", "port": 83, "protocol": "UDP"}]}}));
        assert_eq!(errs[0], "spec.ports[0].name: Required value");
        assert!(errs[1].starts_with("spec.ports[1].name: Invalid value: \"Web\": a lowercase RFC 1123 label"));
        assert_eq!(errs[2], "spec.ports[3].name: Duplicate value: \"b\"");
        assert_eq!(errs.len(), 3);
    }

    #[test]
    fn protocol_must_be_tcp_udp_or_sctp() {
        assert_eq!(
            errors(json!({"spec": {"ports": [{"port": 53, "protocol": "ICMP"}]}})),
            vec!["spec.ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\""]
        );
    }

    #[test]
    fn target_port_is_a_number_or_iana_name() {
        assert!(errors(json!({"spec": {"ports": [{"port": 80, "targetPort": "http"}]}})).is_empty());
        assert_eq!(
            errors(json!({"spec": {"ports": [{"port": 80, "targetPort": 70000}]}})),
            vec!["spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive"]
        );
        assert_eq!(
            errors(json!({"spec": {"ports": [{"port": 80, "targetPort": "HTTP"}]}})),
            vec![
                "spec.ports[0].targetPort: Invalid value: \"HTTP\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                "spec.ports[0].targetPort: Invalid value: \"HTTP\": must contain at least one letter (a-z)",
            ]
        );
    }

    #[test]
    fn node_port_is_forbidden_for_cluster_ip_type() {
        assert_eq!(
            errors(json!({"spec": {"ports": [{"port": 80, "nodePort": 30080}]}})),
            vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
        );
        assert!(errors(json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}})).is_empty());
    }

    #[test]
    fn duplicate_port_and_protocol_pairs_are_rejected() {
        let errs = errors(json!({"spec": {"type": "NodePort", "ports": [
            {"name": "a", "port": 80, "nodePort": 30001}, {"name": "b", "port": 80, "nodePort": 30001}]}}));
        assert_eq!(
            errs,
            vec![
                "spec.ports[1].nodePort: Duplicate value: 30001",
                "spec.ports[1]: Duplicate value: {\"port\":80,\"protocol\":\"TCP\"}",
            ]
        );
        assert!(errors(json!({"spec": {"ports": [{"name": "a", "port": 53}, {"name": "b", "port": 53, "protocol": "UDP"}]}})).is_empty());
    }

    #[test]
    fn cluster_ip_must_be_none_or_an_ip() {
        assert_eq!(
            errors(json!({"spec": {"clusterIP": "10.0.0.300", "ports": [{"port": 80}]}})),
            vec!["spec.clusterIPs[0]: Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
        );
        assert_eq!(
            errors(json!({"spec": {"clusterIP": "10.0.0.10", "clusterIPs": ["10.0.0.11"], "ports": [{"port": 80}]}})),
            vec!["spec.clusterIPs: Invalid value: [\"10.0.0.11\"]: first value must match `clusterIP`"]
        );
        assert!(errors(json!({"spec": {"clusterIP": "10.0.0.10", "clusterIPs": ["10.0.0.10", "fd00::10"],
            "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]}})).is_empty());
    }

    #[test]
    fn cluster_ips_hold_one_address_per_family() {
        let errs = errors(json!({"spec": {"clusterIP": "10.0.0.10", "clusterIPs": ["10.0.0.10", "10.0.0.11"], "ports": [{"port": 80}]}}));
        assert_eq!(errs, vec!["spec.clusterIPs: Invalid value: [\"10.0.0.10\",\"10.0.0.11\"]: may specify no more than one IP for each IP family"]);
    }

    #[test]
    fn ip_families_must_match_cluster_ips() {
        let errs = errors(json!({"spec": {"clusterIP": "10.0.0.10", "ipFamilies": ["IPv6"], "ports": [{"port": 80}]}}));
        assert_eq!(errs, vec!["spec.clusterIPs[0]: Invalid value: \"10.0.0.10\": expected an IPv6 value as indicated by `ipFamilies[0]`"]);
        let errs = errors(json!({"spec": {"ipFamilies": ["IPv5"], "ipFamilyPolicy": "Sometimes", "ports": [{"port": 80}]}}));
        assert_eq!(
            errs,
            vec![
                "spec.ipFamilies[0]: Unsupported value: \"IPv5\": supported values: \"IPv4\", \"IPv6\"",
                "spec.ipFamilyPolicy: Unsupported value: \"Sometimes\": supported values: \"PreferDualStack\", \"RequireDualStack\", \"SingleStack\"",
            ]
        );
    }

    #[test]
    fn headless_load_balancer_is_rejected() {
        let errs = errors(json!({"spec": {"type": "LoadBalancer", "clusterIP": "None", "ports": [{"port": 80}]}}));
        assert_eq!(errs, vec!["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for LoadBalancer services"]);
    }

    #[test]
    fn external_name_requires_a_dns_name_and_no_cluster_ip() {
        assert_eq!(errors(json!({"spec": {"type": "ExternalName"}})), vec!["spec.externalName: Required value"]);
        assert!(errors(json!({"spec": {"type": "ExternalName", "externalName": "db.example.com."}})).is_empty());
        let errs = errors(json!({"spec": {"type": "ExternalName", "externalName": "Bad_Name", "clusterIP": "10.0.0.1"}}));
        assert_eq!(errs[0], "spec.clusterIPs: Forbidden: may not be set for ExternalName services");
        assert!(errs[1].starts_with("spec.externalName: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"));
    }

    #[test]
    fn unknown_type_lists_supported_types() {
        assert_eq!(
            errors(json!({"spec": {"type": "Magic", "ports": [{"port": 80}]}})),
            vec!["spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""]
        );
    }

    #[test]
    fn client_ip_affinity_timeout_is_bounded_by_a_day() {
        let svc = defaulted(json!({"spec": {"sessionAffinity": "ClientIP", "ports": [{"port": 80}]}}));
        assert_eq!(svc["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"], 10800);
        assert!(validate_service(&svc, None).is_empty());
        assert_eq!(
            errors(json!({"spec": {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 86401}},
                "ports": [{"port": 80}]}})),
            vec!["spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: must be greater than 0 and less than 86400"]
        );
        assert_eq!(
            errors(json!({"spec": {"sessionAffinity": "Sticky", "ports": [{"port": 80}]}})),
            vec!["spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\""]
        );
    }

    #[test]
    fn external_traffic_policy_only_for_externally_accessible_services() {
        assert_eq!(
            errors(json!({"spec": {"externalTrafficPolicy": "Local", "ports": [{"port": 80}]}})),
            vec!["spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services"]
        );
        assert!(errors(json!({"spec": {"type": "NodePort", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}})).is_empty());
        assert_eq!(
            errors(json!({"spec": {"type": "NodePort", "externalTrafficPolicy": "Global", "ports": [{"port": 80}]}})),
            vec!["spec.externalTrafficPolicy: Unsupported value: \"Global\": supported values: \"Cluster\", \"Local\""]
        );
    }

    #[test]
    fn health_check_node_port_needs_local_load_balancer() {
        assert_eq!(
            errors(json!({"spec": {"type": "NodePort", "healthCheckNodePort": 32000, "ports": [{"port": 80}]}})),
            vec!["spec.healthCheckNodePort: Invalid value: 32000: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"]
        );
        assert!(errors(json!({"spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000,
            "ports": [{"port": 80}]}})).is_empty());
    }

    #[test]
    fn internal_traffic_policy_values() {
        assert_eq!(
            errors(json!({"spec": {"internalTrafficPolicy": "Node", "ports": [{"port": 80}]}})),
            vec!["spec.internalTrafficPolicy: Unsupported value: \"Node\": supported values: \"Cluster\", \"Local\""]
        );
    }

    #[test]
    fn source_ranges_must_be_cidrs_on_load_balancers() {
        let errs = errors(json!({"spec": {"loadBalancerSourceRanges": ["10.0.0.0/8", "bogus"], "ports": [{"port": 80}]}}));
        assert_eq!(
            errs,
            vec![
                "spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'",
                "spec.LoadBalancerSourceRanges[1]: Invalid value: \"bogus\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ]
        );
        assert!(errors(json!({"spec": {"type": "LoadBalancer", "loadBalancerSourceRanges": [" 10.0.0.0/8 "], "ports": [{"port": 80}]}})).is_empty());
    }

    #[test]
    fn external_ips_must_be_routable_addresses() {
        let errs = errors(json!({"spec": {"externalIPs": ["1.2.3.4", "127.0.0.1", "x"], "ports": [{"port": 80}]}}));
        assert_eq!(
            errs,
            vec![
                "spec.externalIPs[1]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                "spec.externalIPs[2]: Invalid value: \"x\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ]
        );
    }

    #[test]
    fn selector_labels_must_be_valid() {
        let errs = errors(json!({"spec": {"selector": {"app": "my app"}, "ports": [{"port": 80}]}}));
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("spec.selector: Invalid value: \"my app\": a valid label must be an empty string"));
    }

    #[test]
    fn cluster_ip_may_not_change_once_set() {
        let old = json!({"spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": [{"port": 80}]}});
        let new = json!({"spec": {"clusterIP": "10.96.0.11", "clusterIPs": ["10.96.0.11"], "ports": [{"port": 80}]}});
        assert_eq!(update_errors(old, new), vec!["spec.clusterIPs[0]: Invalid value: [\"10.96.0.11\"]: may not change once set"]);
    }

    #[test]
    fn update_without_cluster_ip_keeps_the_allocated_one() {
        let old = json!({"spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": [{"port": 80}]}});
        let new = json!({"spec": {"ports": [{"port": 8080}]}});
        assert!(update_errors(old, new).is_empty());
    }

    #[test]
    fn changing_to_or_from_external_name_may_drop_the_cluster_ip() {
        let old = json!({"spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}});
        let new = json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        assert!(update_errors(old.clone(), new.clone()).is_empty());
        let back = json!({"spec": {"clusterIP": "10.96.0.20", "ports": [{"port": 80}]}});
        assert!(update_errors(new, back).is_empty());
    }

    #[test]
    fn releasing_the_secondary_cluster_ip_requires_single_stack() {
        let old = json!({"spec": {"clusterIP": "10.0.0.10", "clusterIPs": ["10.0.0.10", "fd00::10"],
            "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]}});
        let new = json!({"spec": {"clusterIP": "10.0.0.10", "clusterIPs": ["10.0.0.10"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]}});
        assert_eq!(
            update_errors(old, new),
            vec![
                "spec.ipFamilyPolicy: Invalid value: \"PreferDualStack\": must be set to 'SingleStack' when releasing the secondary clusterIP",
                "spec.ipFamilyPolicy: Invalid value: \"PreferDualStack\": must be set to 'SingleStack' when releasing the secondary ipFamily",
            ]
        );
    }

    #[test]
    fn load_balancer_class_may_not_change() {
        let old = json!({"spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/a", "ports": [{"port": 80}]}});
        let new = json!({"spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/b", "ports": [{"port": 80}]}});
        assert_eq!(update_errors(old, new), vec!["spec.loadBalancerClass: Invalid value: \"example.com/b\": may not change once set"]);
    }
}

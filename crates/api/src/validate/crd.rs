//! CustomResourceDefinition (apiextensions.k8s.io/v1) validation, as the apiextensions
//! apiserver does it. Objects arrive in v1 layout; error paths use upstream's internal
//! field names (`spec.conversion.webhookClientConfig`, `additionalPrinterColumns[0].JSONPath`)
//! because those are what kube-apiserver prints.

mod schema;

use super::names;
use super::service::fields::{list_of, str_of, strings_of};
use super::service::formats::invalid_each;
use crate::FieldError;
use serde_json::{json, Value};
use std::collections::HashSet;

const SCOPES: &[&str] = &["Cluster", "Namespaced"];
const CONVERSION_STRATEGIES: &[&str] = &["None", "Webhook"];
const COLUMN_TYPES: &str = "boolean,date,integer,number,string";
const COLUMN_FORMATS: &str = "byte,date,date-time,double,float,int32,int64,password";
const REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];
const APPROVAL_ANNOTATION: &str = "api-approved.kubernetes.io";
const APPROVAL_REASON: &str =
    "protected groups must have approval annotation \"api-approved.kubernetes.io\", see https://github.com/kubernetes/enhancements/pull/1111";

pub fn validate_crd(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let old_spec = old.and_then(|o| o.get("spec"));
    let mut errs = Vec::new();

    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let plural = spec.pointer("/names/plural").and_then(Value::as_str).unwrap_or("");
    let group = str_of(spec, "group");
    if old.is_none() && name != format!("{plural}.{group}") {
        errs.push(FieldError::invalid("metadata.name", json!(name), "must be spec.names.plural+\".\"+spec.group"));
    }

    // Stored objects keep validating under the rules they were written with.
    let require_schemas = old_spec.map(all_versions_have_schemas).unwrap_or(true);
    errs.extend(validate_spec(spec, require_schemas));

    if let Some(old_spec) = old_spec {
        errs.extend(validate_spec_update(spec, old_spec, is_established(old.unwrap_or(&null))));
    }
    if let Some(accepted) = obj.pointer("/status/acceptedNames").filter(|v| v.is_object()) {
        errs.extend(validate_names(accepted, "status.acceptedNames"));
    }
    errs.extend(validate_stored_versions(obj, spec));
    errs.extend(validate_api_approval(obj, old));

    let old_preserves = old_spec.and_then(|s| s.get("preserveUnknownFields")).and_then(Value::as_bool).unwrap_or(false);
    if !old_preserves && spec.get("preserveUnknownFields").and_then(Value::as_bool) == Some(true) {
        errs.push(FieldError::invalid(
            "spec.preserveUnknownFields",
            json!(true),
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
        ));
    }
    errs
}

fn version_schema(v: &Value) -> Option<&Value> {
    v.pointer("/schema/openAPIV3Schema").filter(|s| !s.is_null())
}

fn all_versions_have_schemas(spec: &Value) -> bool {
    list_of(spec, "versions").iter().all(|v| version_schema(v).is_some())
}

fn is_established(crd: &Value) -> bool {
    list_of(crd.get("status").unwrap_or(&Value::Null), "conditions")
        .iter()
        .any(|c| str_of(c, "type") == "Established" && str_of(c, "status") == "True")
}

fn validate_spec(spec: &Value, require_schemas: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let group = str_of(spec, "group");
    if group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else if !names::is_dns1123_subdomain(group).is_empty() {
        errs.push(FieldError::invalid("spec.group", json!(group), names::is_dns1123_subdomain(group).join(",")));
    } else if group.split('.').count() < 2 {
        errs.push(FieldError::invalid("spec.group", json!(group), "should be a domain with at least one dot"));
    }

    let scope = str_of(spec, "scope");
    if scope.is_empty() {
        errs.push(FieldError::required("spec.scope", ""));
    } else if !SCOPES.contains(&scope) {
        errs.push(FieldError::not_supported("spec.scope", json!(scope), SCOPES));
    }

    let preserve_unknown = spec.get("preserveUnknownFields").and_then(Value::as_bool).unwrap_or(false);
    let versions = list_of(spec, "versions");
    for (i, v) in versions.iter().enumerate() {
        if version_schema(v).is_none() {
            let path = format!("spec.versions[{i}].schema.openAPIV3Schema");
            if require_schemas {
                errs.push(FieldError::required(path, "schemas are required"));
            } else if !preserve_unknown && v.get("served").and_then(Value::as_bool).unwrap_or(false) {
                errs.push(FieldError::required(path, "because otherwise all fields are pruned"));
            }
        }
    }

    let mut seen = HashSet::new();
    let mut unique = true;
    let mut storage = 0;
    for (i, v) in versions.iter().enumerate() {
        let path = format!("spec.versions[{i}]");
        let name = str_of(v, "name");
        if v.get("storage").and_then(Value::as_bool).unwrap_or(false) {
            storage += 1;
        }
        unique &= seen.insert(name);
        let msgs = names::is_dns1035_label(name);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(format!("{path}.name"), json!(name), msgs.join(",")));
        }
        errs.extend(validate_version(v, &path, !preserve_unknown));
    }
    if !unique {
        errs.push(FieldError::invalid("spec.versions", json!(versions), "must contain unique version names"));
    }
    if storage != 1 {
        errs.push(FieldError::invalid("spec.versions", json!(versions), "must have exactly one version marked as storage version"));
    }

    let null = Value::Null;
    let names_obj = spec.get("names").unwrap_or(&null);
    for field in ["plural", "singular", "kind", "listKind"] {
        if str_of(names_obj, field).is_empty() {
            errs.push(FieldError::required(format!("spec.names.{field}"), ""));
        }
    }
    errs.extend(validate_names(names_obj, "spec.names"));
    errs.extend(validate_conversion(spec, preserve_unknown));
    errs
}

fn validate_version(v: &Value, path: &str, structural: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let deprecated = v.get("deprecated").and_then(Value::as_bool).unwrap_or(false);
    if let Some(w) = v.get("deprecationWarning").filter(|w| !w.is_null()) {
        let text = w.as_str().unwrap_or("");
        let warn_path = format!("{path}.deprecationWarning");
        if !deprecated {
            errs.push(FieldError::invalid(warn_path.clone(), w.clone(), "can only be set for deprecated versions"));
        }
        if text.len() > 256 {
            errs.push(FieldError::invalid(warn_path.clone(), w.clone(), "must be <= 256 characters long"));
        }
        if text.is_empty() {
            errs.push(FieldError::invalid(warn_path.clone(), w.clone(), "must not be an empty string"));
        }
        if let Some((i, _)) = text.char_indices().find(|(_, c)| c.is_control()) {
            errs.push(FieldError::invalid(
                warn_path,
                w.clone(),
                format!("must only contain printable UTF-8 characters; control character found at index {i}"),
            ));
        }
    }
    if let Some(s) = version_schema(v) {
        errs.extend(schema::validate(s, &format!("{path}.schema.openAPIV3Schema"), structural));
    }
    for (i, col) in list_of(v, "additionalPrinterColumns").iter().enumerate() {
        errs.extend(validate_printer_column(col, &format!("{path}.additionalPrinterColumns[{i}]")));
    }
    errs
}

fn validate_printer_column(col: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if str_of(col, "name").is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    }
    let typ = str_of(col, "type");
    let types_msg = format!("must be one of {COLUMN_TYPES}");
    if typ.is_empty() {
        errs.push(FieldError::required(format!("{path}.type"), types_msg));
    } else if !COLUMN_TYPES.split(',').any(|t| t == typ) {
        errs.push(FieldError::invalid(format!("{path}.type"), json!(typ), types_msg));
    }
    let format = str_of(col, "format");
    if !format.is_empty() && !COLUMN_FORMATS.split(',').any(|f| f == format) {
        errs.push(FieldError::invalid(format!("{path}.format"), json!(format), format!("must be one of {COLUMN_FORMATS}")));
    }
    let json_path = str_of(col, "jsonPath");
    let jp = format!("{path}.JSONPath");
    if json_path.is_empty() {
        errs.push(FieldError::required(jp, ""));
    } else if !json_path.starts_with('.') {
        errs.push(FieldError::invalid(jp, json!(json_path), "must be a simple json path starting with ."));
    }
    errs
}

fn validate_names(n: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for field in ["plural", "singular"] {
        let v = str_of(n, field);
        let msgs = names::is_dns1035_label(v);
        if !v.is_empty() && !msgs.is_empty() {
            errs.push(FieldError::invalid(format!("{path}.{field}"), json!(v), msgs.join(",")));
        }
    }
    for field in ["kind", "listKind"] {
        let v = str_of(n, field);
        let msgs = names::is_dns1035_label(&v.to_lowercase());
        if !v.is_empty() && !msgs.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.{field}"),
                json!(v),
                format!("may have mixed case, but should otherwise match: {}", msgs.join(",")),
            ));
        }
    }
    for (i, short) in strings_of(n, "shortNames").into_iter().enumerate() {
        let msgs = names::is_dns1035_label(short);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(format!("{path}.shortNames[{i}]"), json!(short), msgs.join(",")));
        }
    }
    let kind = str_of(n, "kind");
    if !kind.is_empty() && kind == str_of(n, "listKind") {
        errs.push(FieldError::invalid(format!("{path}.listKind"), json!(kind), "kind and listKind may not be the same"));
    }
    for (i, c) in strings_of(n, "categories").into_iter().enumerate() {
        let msgs = names::is_dns1035_label(c);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(format!("{path}.categories[{i}]"), json!(c), msgs.join(",")));
        }
    }
    errs
}

fn validate_conversion(spec: &Value, preserve_unknown: bool) -> Vec<FieldError> {
    let Some(conv) = spec.get("conversion").filter(|c| !c.is_null()) else { return Vec::new() };
    let mut errs = Vec::new();
    let strategy = str_of(conv, "strategy");
    if strategy != "None" && preserve_unknown {
        errs.push(FieldError::invalid("spec.conversion.strategy", json!(strategy), "must be None if spec.preserveUnknownFields is true"));
    }
    if strategy.is_empty() {
        errs.push(FieldError::required("spec.conversion.strategy", ""));
    } else if !CONVERSION_STRATEGIES.contains(&strategy) {
        errs.push(FieldError::not_supported("spec.conversion.strategy", json!(strategy), CONVERSION_STRATEGIES));
    }
    let webhook = conv.get("webhook").filter(|w| !w.is_null());
    let client_config = webhook.and_then(|w| w.get("clientConfig")).filter(|c| !c.is_null());
    let review_versions = webhook.map(|w| strings_of(w, "conversionReviewVersions")).unwrap_or_default();
    let cc_path = "spec.conversion.webhookClientConfig";
    let rv_path = "spec.conversion.conversionReviewVersions";
    if strategy == "Webhook" {
        match client_config {
            None => errs.push(FieldError::required(cc_path, "required when strategy is set to Webhook")),
            Some(cc) => {
                let url = cc.get("url").filter(|u| !u.is_null());
                let service = cc.get("service").filter(|s| !s.is_null());
                match (url, service) {
                    (Some(_), Some(_)) | (None, None) => {
                        errs.push(FieldError::required(cc_path, "exactly one of url or service is required"))
                    }
                    (Some(u), None) => errs.extend(validate_webhook_url(u.as_str().unwrap_or(""), &format!("{cc_path}.url"))),
                    (None, Some(s)) => errs.extend(validate_webhook_service(s, &format!("{cc_path}.service"))),
                }
            }
        }
        if review_versions.is_empty() {
            errs.push(FieldError::required(rv_path, ""));
        } else {
            let mut seen = HashSet::new();
            for (i, v) in review_versions.iter().enumerate() {
                let p = format!("{rv_path}[{i}]");
                if !seen.insert(*v) {
                    errs.push(FieldError::invalid(p, json!(v), "duplicate version"));
                    continue;
                }
                errs.extend(invalid_each(&p, v, names::is_dns1035_label(v)));
            }
            if !review_versions.iter().any(|v| REVIEW_VERSIONS.contains(v)) {
                errs.push(FieldError::invalid(rv_path, json!(review_versions), "must include at least one of v1, v1beta1"));
            }
        }
    } else {
        if client_config.is_some() {
            errs.push(FieldError::forbidden(cc_path, "should not be set when strategy is not set to Webhook"));
        }
        if !review_versions.is_empty() {
            errs.push(FieldError::forbidden(rv_path, "should not be set when strategy is not set to Webhook"));
        }
    }
    errs
}

/// A conversion webhook URL: https, with a host, and no user info, query or fragment.
fn validate_webhook_url(url: &str, path: &str) -> Vec<FieldError> {
    let Some(rest) = url.strip_prefix("https://") else {
        return vec![FieldError::invalid(path, json!(url), "'https' is the only allowed URL scheme")];
    };
    let mut errs = Vec::new();
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() {
        errs.push(FieldError::invalid(path, json!(url), "host must be specified"));
    }
    if host.contains('@') {
        errs.push(FieldError::invalid(path, json!(url), "user information is not permitted in the URL"));
    }
    if rest.contains('#') {
        errs.push(FieldError::invalid(path, json!(url), "fragments are not permitted in the URL"));
    }
    if rest.contains('?') {
        errs.push(FieldError::invalid(path, json!(url), "query parameters are not permitted in the URL"));
    }
    errs
}

fn validate_webhook_service(s: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for field in ["name", "namespace"] {
        if str_of(s, field).is_empty() {
            errs.push(FieldError::required(format!("{path}.{field}"), format!("service {field} is required")));
        }
    }
    if let Some(port) = s.get("port").and_then(Value::as_i64) {
        if !(1..=65535).contains(&port) {
            errs.push(FieldError::invalid(format!("{path}.port"), json!(port), "port is not valid: must be between 1 and 65535, inclusive"));
        }
    }
    errs
}

fn validate_spec_update(spec: &Value, old_spec: &Value, established: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let at = |s: &Value, p: &str| s.pointer(p).cloned().unwrap_or(json!(""));
    if established {
        errs.extend(names::validate_immutable("spec.scope", &at(spec, "/scope"), &at(old_spec, "/scope")));
        errs.extend(names::validate_immutable("spec.names.kind", &at(spec, "/names/kind"), &at(old_spec, "/names/kind")));
    }
    errs.extend(names::validate_immutable("spec.group", &at(spec, "/group"), &at(old_spec, "/group")));
    errs.extend(names::validate_immutable("spec.names.plural", &at(spec, "/names/plural"), &at(old_spec, "/names/plural")));
    errs
}

fn validate_stored_versions(obj: &Value, spec: &Value) -> Vec<FieldError> {
    let path = "status.storedVersions";
    let stored = obj.pointer("/status/storedVersions").and_then(Value::as_array).cloned().unwrap_or_default();
    if stored.is_empty() {
        return vec![FieldError::invalid(path, json!(stored), "must have at least one stored version")];
    }
    let stored: Vec<&str> = stored.iter().map(|v| v.as_str().unwrap_or("")).collect();
    let mut errs = Vec::new();
    let versions = list_of(spec, "versions");
    for v in versions {
        let name = str_of(v, "name");
        if v.get("storage").and_then(Value::as_bool).unwrap_or(false) && !stored.contains(&name) {
            errs.push(FieldError::invalid(path, json!(stored), format!("must have the storage version {name}")));
        }
    }
    for (i, s) in stored.iter().enumerate() {
        if !versions.iter().any(|v| str_of(v, "name") == *s) {
            errs.push(FieldError::invalid(
                format!("{path}[{i}]"),
                json!(s),
                format!("missing from spec.versions; {s} was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in {s} and removes {s} from status.storedVersions"),
            ));
        }
    }
    errs
}

#[derive(PartialEq)]
enum Approval {
    NotProtected,
    Missing,
    Invalid,
    Approved,
}

fn approval(crd: &Value) -> Approval {
    let group = crd.pointer("/spec/group").and_then(Value::as_str).unwrap_or("");
    let protected = ["k8s.io", "kubernetes.io"].iter().any(|d| group == *d || group.ends_with(&format!(".{d}")));
    if !protected {
        return Approval::NotProtected;
    }
    match crd.pointer("/metadata/annotations").and_then(|a| a.get(APPROVAL_ANNOTATION)).and_then(Value::as_str) {
        None => Approval::Missing,
        Some(v) if v.starts_with("unapproved") => Approval::Approved,
        Some(v) if (v.starts_with("https://") || v.starts_with("http://")) && v.split("://").nth(1).map(|r| !r.is_empty()).unwrap_or(false) => {
            Approval::Approved
        }
        Some(_) => Approval::Invalid,
    }
}

/// Groups under k8s.io and kubernetes.io belong to the Kubernetes project and need an
/// approval annotation; an update that keeps the old state is allowed.
fn validate_api_approval(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let state = approval(obj);
    if old.map(|o| approval(o) == state).unwrap_or(false) {
        return Vec::new();
    }
    let path = names::key("metadata.annotations", APPROVAL_ANNOTATION);
    match state {
        Approval::Missing => vec![FieldError::required(path, APPROVAL_REASON)],
        Approval::Invalid => {
            let v = obj.pointer("/metadata/annotations").and_then(|a| a.get(APPROVAL_ANNOTATION)).cloned().unwrap_or(Value::Null);
            vec![FieldError::invalid(path, v, APPROVAL_REASON)]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::apply_defaults;
    use crate::GroupKind;

    fn crontab() -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "crontabs.stable.example.com"},
            "spec": {"group": "stable.example.com", "scope": "Namespaced",
                "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {
                        "cronSpec": {"type": "string"}, "image": {"type": "string"}, "replicas": {"type": "integer"}}}}}},
                    "additionalPrinterColumns": [{"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"}]}]}})
    }

    fn errors(mut crd: Value) -> Vec<String> {
        apply_defaults(&GroupKind::new("apiextensions.k8s.io", "CustomResourceDefinition"), &mut crd);
        validate_crd(&crd, None).iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn crontab_crd_from_the_docs_defaults_and_validates_clean() {
        let mut crd = crontab();
        apply_defaults(&GroupKind::new("apiextensions.k8s.io", "CustomResourceDefinition"), &mut crd);
        assert_eq!(crd["spec"]["names"]["listKind"], "CronTabList");
        assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
        assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
        assert_eq!(errors(crontab()), Vec::<String>::new());
    }

    #[test]
    fn name_must_be_plural_dot_group() {
        let mut crd = crontab();
        crd["metadata"]["name"] = json!("crontab.stable.example.com");
        assert_eq!(errors(crd), vec!["metadata.name: Invalid value: \"crontab.stable.example.com\": must be spec.names.plural+\".\"+spec.group"]);
    }

    #[test]
    fn group_needs_a_dot() {
        let mut crd = crontab();
        crd["spec"]["group"] = json!("example");
        crd["metadata"]["name"] = json!("crontabs.example");
        assert_eq!(errors(crd), vec!["spec.group: Invalid value: \"example\": should be a domain with at least one dot"]);
    }

    #[test]
    fn every_version_needs_a_schema_and_one_is_stored() {
        let mut crd = crontab();
        crd["spec"]["versions"] = json!([{"name": "v1", "served": true, "storage": false}, {"name": "v1", "served": true, "storage": false}]);
        let errs = errors(crd);
        assert_eq!(errs[0], "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required");
        assert_eq!(errs[1], "spec.versions[1].schema.openAPIV3Schema: Required value: schemas are required");
        assert!(errs[2].starts_with("spec.versions: Invalid value: ") && errs[2].ends_with("must contain unique version names"));
        assert!(errs[3].ends_with("must have exactly one version marked as storage version"));
        assert_eq!(errs[4], "status.storedVersions: Invalid value: []: must have at least one stored version");
    }

    #[test]
    fn scope_is_namespaced_or_cluster() {
        let mut crd = crontab();
        crd["spec"]["scope"] = json!("Global");
        assert_eq!(errors(crd), vec!["spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\""]);
    }

    #[test]
    fn names_must_be_dns_labels_and_kinds_distinct() {
        let mut crd = crontab();
        crd["spec"]["names"] = json!({"plural": "crontabs", "singular": "Cron_Tab", "kind": "CronTab", "listKind": "CronTab"});
        let errs = errors(crd);
        assert!(errs[0].starts_with("spec.names.singular: Invalid value: \"Cron_Tab\": a DNS-1035 label"));
        assert_eq!(errs[1], "spec.names.listKind: Invalid value: \"CronTab\": kind and listKind may not be the same");
    }

    #[test]
    fn printer_column_types_are_enumerated() {
        let mut crd = crontab();
        crd["spec"]["versions"][0]["additionalPrinterColumns"] = json!([{"name": "Age", "type": "time", "jsonPath": "metadata.creationTimestamp"}]);
        assert_eq!(
            errors(crd),
            vec![
                "spec.versions[0].additionalPrinterColumns[0].type: Invalid value: \"time\": must be one of boolean,date,integer,number,string",
                "spec.versions[0].additionalPrinterColumns[0].JSONPath: Invalid value: \"metadata.creationTimestamp\": must be a simple json path starting with .",
            ]
        );
    }

    #[test]
    fn schema_must_be_structural() {
        let mut crd = crontab();
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = json!({"properties": {"x": {"type": "string"}}});
        assert_eq!(
            errors(crd),
            vec!["spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"]
        );
    }

    #[test]
    fn webhook_conversion_needs_a_client_and_review_versions() {
        let mut crd = crontab();
        crd["spec"]["conversion"] = json!({"strategy": "Webhook", "webhook": {"clientConfig": {}}});
        assert_eq!(
            errors(crd),
            vec![
                "spec.conversion.webhookClientConfig: Required value: exactly one of url or service is required",
                "spec.conversion.conversionReviewVersions: Required value",
            ]
        );
    }

    #[test]
    fn protected_groups_need_api_approval() {
        let mut crd = crontab();
        crd["spec"]["group"] = json!("gateway.networking.k8s.io");
        crd["metadata"]["name"] = json!("crontabs.gateway.networking.k8s.io");
        assert_eq!(errors(crd.clone()), vec![format!("metadata.annotations[api-approved.kubernetes.io]: Required value: {APPROVAL_REASON}")]);
        crd["metadata"]["annotations"] = json!({"api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/1"});
        assert!(errors(crd).is_empty());
    }

    #[test]
    fn preserve_unknown_fields_may_not_be_turned_on() {
        let mut crd = crontab();
        crd["spec"]["preserveUnknownFields"] = json!(true);
        assert_eq!(
            errors(crd),
            vec!["spec.preserveUnknownFields: Invalid value: true: cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"]
        );
    }

    #[test]
    fn group_and_plural_are_immutable_and_kind_once_established() {
        let mut old = crontab();
        apply_defaults(&GroupKind::new("apiextensions.k8s.io", "CustomResourceDefinition"), &mut old);
        old["status"]["conditions"] = json!([{"type": "Established", "status": "True"}]);
        let mut new = old.clone();
        new["spec"]["names"]["kind"] = json!("CronJobTab");
        new["spec"]["names"]["listKind"] = json!("CronJobTabList");
        new["spec"]["group"] = json!("other.example.com");
        let errs: Vec<String> = validate_crd(&new, Some(&old)).iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errs,
            vec![
                "spec.names.kind: Invalid value: \"CronJobTab\": field is immutable",
                "spec.group: Invalid value: \"other.example.com\": field is immutable",
            ]
        );
    }
}

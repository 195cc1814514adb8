//! Deployments and ReplicaSets (apps/v1), as kube-apiserver's apps validation checks them.

use super::names::{
    int_or_percent_value, is_percent, validate_immutable, validate_label_selector, validate_nonnegative,
    validate_positive_int_or_percent,
};
use super::pod::validate_pod_template;
use crate::selector::LabelSelector;
use crate::FieldError;
use serde_json::{json, Value};

pub fn validate_deployment(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let mut errs = validate_replicas_selector_template(spec);
    if let Some(strategy) = spec.get("strategy") {
        errs.extend(validate_strategy(strategy, "spec.strategy"));
    }
    let min_ready = int(spec, "minReadySeconds").unwrap_or(0);
    errs.extend(validate_nonnegative("spec.minReadySeconds", min_ready));
    if let Some(r) = int(spec, "revisionHistoryLimit") {
        errs.extend(validate_nonnegative("spec.revisionHistoryLimit", r));
    }
    if let Some(p) = int(spec, "progressDeadlineSeconds") {
        errs.extend(validate_nonnegative("spec.progressDeadlineSeconds", p));
        if p <= min_ready {
            errs.push(FieldError::invalid("spec.progressDeadlineSeconds", json!(p), "must be greater than minReadySeconds"));
        }
    }
    if let Some(old) = old {
        errs.extend(validate_selector_unchanged(spec, old));
    }
    errs
}

pub fn validate_replica_set(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let mut errs = validate_nonnegative("spec.replicas", int(spec, "replicas").unwrap_or(0));
    errs.extend(validate_nonnegative("spec.minReadySeconds", int(spec, "minReadySeconds").unwrap_or(0)));
    errs.extend(validate_selector_and_template(spec));
    if let Some(old) = old {
        errs.extend(validate_selector_unchanged(spec, old));
    }
    errs
}

fn int(v: &Value, field: &str) -> Option<i64> {
    v.get(field).and_then(Value::as_i64)
}

fn validate_replicas_selector_template(spec: &Value) -> Vec<FieldError> {
    let mut errs = validate_nonnegative("spec.replicas", int(spec, "replicas").unwrap_or(0));
    errs.extend(validate_selector_and_template(spec));
    errs
}

/// The selector is required and non-empty, the template's labels must match it, and the
/// template must be a valid pod template whose pods restart `Always`.
fn validate_selector_and_template(spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let selector = spec.get("selector").filter(|s| !s.is_null());
    match selector {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(sel) => {
            errs.extend(validate_label_selector("spec.selector", Some(sel)));
            let n = sel.get("matchLabels").and_then(Value::as_object).map(|m| m.len()).unwrap_or(0)
                + sel.get("matchExpressions").and_then(Value::as_array).map(|a| a.len()).unwrap_or(0);
            if n == 0 {
                // Upstream words this the same for ReplicaSets.
                errs.push(FieldError::invalid("spec.selector", sel.clone(), "empty selector is invalid for deployment"));
            }
        }
    }
    match LabelSelector::from_object(selector) {
        Err(_) => errs.push(FieldError::invalid(
            "spec.selector",
            selector.cloned().unwrap_or(Value::Null),
            "invalid label selector",
        )),
        Ok(sel) => errs.extend(validate_template_for_replica_set(spec.get("template"), &sel, "spec.template")),
    }
    errs
}

fn validate_template_for_replica_set(template: Option<&Value>, selector: &LabelSelector, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(template) = template.filter(|t| !t.is_null()) else {
        // A missing template is an empty one upstream: no labels, no containers.
        return validate_template_for_replica_set(Some(&json!({})), selector, path);
    };
    let labels = template.pointer("/metadata/labels");
    if !selector.is_empty() && !selector.matches(labels.and_then(Value::as_object)) {
        errs.push(FieldError::invalid(
            format!("{path}.metadata.labels"),
            labels.cloned().unwrap_or(json!({})),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_pod_template(template, path));
    let restart = template.pointer("/spec/restartPolicy").and_then(Value::as_str).unwrap_or("");
    if restart != "Always" {
        errs.push(FieldError::not_supported(format!("{path}.spec.restartPolicy"), json!(restart), &["Always"]));
    }
    if template.pointer("/spec/activeDeadlineSeconds").map(|v| !v.is_null()).unwrap_or(false) {
        errs.push(FieldError::forbidden(
            format!("{path}.spec.activeDeadlineSeconds"),
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        ));
    }
    errs
}

fn validate_strategy(strategy: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let rolling = strategy.get("rollingUpdate").filter(|v| !v.is_null());
    match strategy.get("type").and_then(Value::as_str).unwrap_or("") {
        "Recreate" => {
            if rolling.is_some() {
                errs.push(FieldError::forbidden(
                    format!("{path}.rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match rolling {
            None => errs.push(FieldError::required(
                format!("{path}.rollingUpdate"),
                "this should be defaulted and never be nil",
            )),
            Some(ru) => errs.extend(validate_rolling_update(ru, &format!("{path}.rollingUpdate"))),
        },
        _ => errs.push(FieldError::not_supported(path, strategy.clone(), &["Recreate", "RollingUpdate"])),
    }
    errs
}

fn validate_rolling_update(ru: &Value, path: &str) -> Vec<FieldError> {
    let null = Value::Null;
    let unavailable = ru.get("maxUnavailable").unwrap_or(&null);
    let surge = ru.get("maxSurge").unwrap_or(&null);
    let ua_path = format!("{path}.maxUnavailable");
    let mut errs = validate_positive_int_or_percent(&ua_path, unavailable);
    errs.extend(validate_positive_int_or_percent(&format!("{path}.maxSurge"), surge));
    if int_or_percent_value(unavailable).unwrap_or(0) == 0 && int_or_percent_value(surge).unwrap_or(0) == 0 {
        errs.push(FieldError::invalid(&ua_path, unavailable.clone(), "may not be 0 when `maxSurge` is 0"));
    }
    if is_percent(unavailable) && int_or_percent_value(unavailable).unwrap_or(0) > 100 {
        errs.push(FieldError::invalid(&ua_path, unavailable.clone(), "must not be greater than 100%"));
    }
    errs
}

/// apps/v1 selectors cannot change: the controller would orphan the pods it owns.
fn validate_selector_unchanged(spec: &Value, old: &Value) -> Vec<FieldError> {
    let null = Value::Null;
    let new_sel = spec.get("selector").unwrap_or(&null);
    let old_sel = old.pointer("/spec/selector").unwrap_or(&null);
    validate_immutable("spec.selector", new_sel, old_sel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::apply_defaults;
    use crate::GroupKind;

    fn nginx_deployment() -> Value {
        // The Deployment from the Kubernetes docs ("Creating a Deployment").
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "nginx-deployment", "namespace": "default", "labels": {"app": "nginx"}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {
                    "metadata": {"labels": {"app": "nginx"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]}
                }
            }
        })
    }

    fn defaulted(mut d: Value, kind: &str) -> Value {
        apply_defaults(&GroupKind::new("apps", kind), &mut d);
        d
    }

    fn msgs(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn docs_nginx_deployment_defaults_and_validates_clean() {
        let d = defaulted(nginx_deployment(), "Deployment");
        let all = crate::validate::validate(&GroupKind::new("apps", "Deployment"), &d, None);
        assert_eq!(msgs(&all), Vec::<String>::new());
    }

    #[test]
    fn missing_selector_is_required_and_does_not_match_template() {
        let mut d = nginx_deployment();
        d["spec"].as_object_mut().unwrap().remove("selector");
        let d = defaulted(d, "Deployment");
        assert_eq!(msgs(&validate_deployment(&d, None)), vec![
            "spec.selector: Required value",
            "spec.template.metadata.labels: Invalid value: {\"app\":\"nginx\"}: `selector` does not match template `labels`",
        ]);
    }

    #[test]
    fn selector_not_matching_template_labels_is_named() {
        let mut d = nginx_deployment();
        d["spec"]["selector"]["matchLabels"]["app"] = json!("web");
        let errs = validate_deployment(&defaulted(d, "Deployment"), None);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.template.metadata.labels");
        assert_eq!(errs[0].detail, "`selector` does not match template `labels`");
    }

    #[test]
    fn empty_selector_is_invalid() {
        let mut d = nginx_deployment();
        d["spec"]["selector"] = json!({});
        let errs = validate_deployment(&defaulted(d, "Deployment"), None);
        assert_eq!(msgs(&errs), vec!["spec.selector: Invalid value: {}: empty selector is invalid for deployment"]);
    }

    #[test]
    fn bad_selector_operator_skips_template_checks() {
        let mut d = nginx_deployment();
        d["spec"]["selector"] = json!({"matchExpressions": [{"key": "app", "operator": "Maybe", "values": ["x"]}]});
        let errs = validate_deployment(&defaulted(d, "Deployment"), None);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.selector.matchExpressions[0].operator", "spec.selector"]);
        assert_eq!(errs[1].detail, "invalid label selector");
    }

    #[test]
    fn negative_replicas_and_history_are_invalid() {
        let mut d = nginx_deployment();
        d["spec"]["replicas"] = json!(-1);
        d["spec"]["revisionHistoryLimit"] = json!(-2);
        let errs = msgs(&validate_deployment(&defaulted(d, "Deployment"), None));
        assert_eq!(errs, vec![
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            "spec.revisionHistoryLimit: Invalid value: -2: must be greater than or equal to 0",
        ]);
    }

    #[test]
    fn max_surge_and_max_unavailable_may_not_both_be_zero() {
        let mut d = nginx_deployment();
        d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}});
        let errs = msgs(&validate_deployment(&defaulted(d, "Deployment"), None));
        assert_eq!(errs, vec!["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0%\": may not be 0 when `maxSurge` is 0"]);
    }

    #[test]
    fn max_unavailable_over_100_percent_and_bad_percent_strings() {
        let mut d = nginx_deployment();
        d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "1", "maxUnavailable": "150%"}});
        let errs = validate_deployment(&defaulted(d, "Deployment"), None);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].field, "spec.strategy.rollingUpdate.maxSurge");
        assert!(errs[0].detail.starts_with("a valid percent string must be"));
        assert_eq!(errs[1].detail, "must not be greater than 100%");
    }

    #[test]
    fn recreate_strategy_forbids_rolling_update_and_unknown_type_is_unsupported() {
        let mut d = nginx_deployment();
        d["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}});
        assert_eq!(
            msgs(&validate_deployment(&defaulted(d.clone(), "Deployment"), None)),
            vec!["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"]
        );
        d["spec"]["strategy"] = json!({"type": "BlueGreen"});
        let errs = validate_deployment(&defaulted(d, "Deployment"), None);
        assert_eq!(errs[0].field, "spec.strategy");
        assert_eq!(errs[0].detail, "supported values: \"Recreate\", \"RollingUpdate\"");
    }

    #[test]
    fn progress_deadline_must_exceed_min_ready_seconds() {
        let mut d = nginx_deployment();
        d["spec"]["minReadySeconds"] = json!(600);
        assert_eq!(
            msgs(&validate_deployment(&defaulted(d, "Deployment"), None)),
            vec!["spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"]
        );
    }

    #[test]
    fn template_is_validated_as_a_pod_spec_under_its_path() {
        let mut d = nginx_deployment();
        d["spec"]["template"]["spec"]["containers"][0].as_object_mut().unwrap().remove("image");
        d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        d["spec"]["template"]["metadata"]["labels"]["bad key!"] = json!("x");
        let errs = msgs(&validate_deployment(&defaulted(d, "Deployment"), None));
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(errs[0].starts_with("spec.template.labels: Invalid value: \"bad key!\""));
        assert_eq!(errs[1], "spec.template.spec.containers[0].image: Required value");
        assert_eq!(errs[2], "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"");
    }

    #[test]
    fn selector_is_immutable_but_replicas_and_image_may_change() {
        let old = defaulted(nginx_deployment(), "Deployment");
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(5);
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.16.1");
        assert!(validate_deployment(&new, Some(&old)).is_empty());
        new["spec"]["selector"]["matchLabels"] = json!({"app": "nginx", "tier": "web"});
        new["spec"]["template"]["metadata"]["labels"]["tier"] = json!("web");
        assert_eq!(
            msgs(&validate_deployment(&new, Some(&old))),
            vec!["spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"nginx\",\"tier\":\"web\"}}: field is immutable"]
        );
    }

    #[test]
    fn replica_set_from_docs_validates_and_checks_selector() {
        let rs = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "frontend", "namespace": "default", "labels": {"app": "guestbook", "tier": "frontend"}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"tier": "frontend"}},
                "template": {"metadata": {"labels": {"tier": "frontend"}},
                    "spec": {"containers": [{"name": "php-redis", "image": "us-docker.pkg.dev/google-samples/containers/gke/gb-frontend:v5"}]}}
            }
        });
        let rs = defaulted(rs, "ReplicaSet");
        assert_eq!(msgs(&crate::validate::validate(&GroupKind::new("apps", "ReplicaSet"), &rs, None)), Vec::<String>::new());
        let mut bad = rs.clone();
        bad["spec"]["template"]["metadata"]["labels"]["tier"] = json!("backend");
        bad["spec"]["replicas"] = json!(-3);
        let errs = msgs(&validate_replica_set(&bad, None));
        assert_eq!(errs[0], "spec.replicas: Invalid value: -3: must be greater than or equal to 0");
        assert!(errs[1].starts_with("spec.template.metadata.labels: Invalid value:"));
        let mut changed = rs.clone();
        changed["spec"]["selector"]["matchLabels"]["tier"] = json!("fe");
        changed["spec"]["template"]["metadata"]["labels"]["tier"] = json!("fe");
        assert_eq!(validate_replica_set(&changed, Some(&rs))[0].field, "spec.selector");
    }
}

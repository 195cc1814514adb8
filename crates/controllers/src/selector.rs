//! Label selectors over typed objects: a Service's map selector and the
//! `LabelSelector` of workloads (matchLabels plus matchExpressions).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// A Service selector: every pair must be present. The empty map selects everything.
pub fn matches_map(selector: &BTreeMap<String, String>, labels: Option<&BTreeMap<String, String>>) -> bool {
    selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// A workload selector. The empty selector matches everything, as in
/// `metav1.LabelSelectorAsSelector`; an unknown operator matches nothing.
pub fn matches(selector: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    if let Some(ml) = &selector.match_labels {
        if !matches_map(ml, labels) {
            return false;
        }
    }
    selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.and_then(|l| l.get(&e.key));
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    })
}

/// True for `{}` (or no selector): a workload with it would select every pod.
pub fn is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector.match_expressions.as_ref().is_none_or(|m| m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn selector_cases() {
        let web = labels(&[("app", "web"), ("tier", "front")]);
        let cases: Vec<(&str, LabelSelector, Option<&BTreeMap<String, String>>, bool)> = vec![
            ("empty selects all", LabelSelector::default(), Some(&web), true),
            ("empty selects unlabelled", LabelSelector::default(), None, true),
            (
                "matchLabels subset",
                LabelSelector { match_labels: Some(labels(&[("app", "web")])), ..Default::default() },
                Some(&web),
                true,
            ),
            (
                "matchLabels mismatch",
                LabelSelector { match_labels: Some(labels(&[("app", "db")])), ..Default::default() },
                Some(&web),
                false,
            ),
            ("In", LabelSelector { match_expressions: Some(vec![expr("tier", "In", &["front", "x"])]), ..Default::default() }, Some(&web), true),
            ("NotIn absent key", LabelSelector { match_expressions: Some(vec![expr("env", "NotIn", &["prod"])]), ..Default::default() }, Some(&web), true),
            ("NotIn present", LabelSelector { match_expressions: Some(vec![expr("tier", "NotIn", &["front"])]), ..Default::default() }, Some(&web), false),
            ("Exists", LabelSelector { match_expressions: Some(vec![expr("app", "Exists", &[])]), ..Default::default() }, Some(&web), true),
            ("DoesNotExist", LabelSelector { match_expressions: Some(vec![expr("app", "DoesNotExist", &[])]), ..Default::default() }, Some(&web), false),
            ("unknown operator", LabelSelector { match_expressions: Some(vec![expr("app", "Near", &[])]), ..Default::default() }, Some(&web), false),
        ];
        for (name, sel, l, want) in cases {
            assert_eq!(matches(&sel, l), want, "{name}");
        }
    }
}

use kube::ResourceExt;

/// The Services whose selectors match the pods in `change` (before or after it).
pub(crate) fn services_of_pods(ctx: &crate::Ctx, change: &crate::informer::Change<k8s_openapi::api::core::v1::Pod>) -> Vec<crate::informer::Key> {
    let mut keys = Vec::new();
    for pod in change.objects() {
        let ns = pod.namespace().unwrap_or_default();
        for svc in ctx.services.in_namespace(&ns) {
            if let Some(sel) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) {
                if crate::selector::matches_map(sel, pod.metadata.labels.as_ref()) {
                    keys.push(crate::informer::Key::of(&*svc));
                }
            }
        }
    }
    keys
}

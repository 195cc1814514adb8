//! Label selectors as NetworkPolicy uses them: `matchLabels` and `matchExpressions`,
//! ANDed. `{}` matches everything; `NotIn` and `DoesNotExist` match objects that lack
//! the key. Validated once when the policy is applied, so matching cannot fail.

use super::Labels;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    pub match_labels: Vec<(String, String)>,
    pub requirements: Vec<Requirement>,
}

impl Selector {
    /// `{}`: every object.
    pub fn everything() -> Selector {
        Selector::default()
    }

    pub fn is_everything(&self) -> bool {
        self.match_labels.is_empty() && self.requirements.is_empty()
    }

    /// Validates and normalizes; `path` names the selector's field in errors.
    pub fn parse(sel: &LabelSelector, path: &str) -> Result<Selector, String> {
        let match_labels = sel.match_labels.iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut requirements = Vec::new();
        for (i, e) in sel.match_expressions.iter().flatten().enumerate() {
            let values = e.values.clone().unwrap_or_default();
            let at = format!("{path}.matchExpressions[{i}]");
            let req = match e.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => {
                    return Err(format!("{at}.values: must be non-empty for operator {}", e.operator));
                }
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(format!("{at}.values: must be empty for operator {}", e.operator));
                }
                "In" => Requirement::In(e.key.clone(), values),
                "NotIn" => Requirement::NotIn(e.key.clone(), values),
                "Exists" => Requirement::Exists(e.key.clone()),
                "DoesNotExist" => Requirement::DoesNotExist(e.key.clone()),
                other => {
                    return Err(format!("{at}.operator: unknown operator {other:?} (want In, NotIn, Exists or DoesNotExist)"));
                }
            };
            if e.key.is_empty() {
                return Err(format!("{at}.key: must not be empty"));
            }
            requirements.push(req);
        }
        Ok(Selector { match_labels, requirements })
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.requirements.iter().all(|r| match r {
                Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
                Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
                Requirement::Exists(k) => labels.contains_key(k),
                Requirement::DoesNotExist(k) => !labels.contains_key(k),
            })
    }

    /// A label every matching object must carry, to look candidates up in an index.
    pub fn required_label(&self) -> Option<(&str, &str)> {
        if let Some((k, v)) = self.match_labels.first() {
            return Some((k, v));
        }
        self.requirements.iter().find_map(|r| match r {
            Requirement::In(k, vs) if vs.len() == 1 => Some((k.as_str(), vs[0].as_str())),
            _ => None,
        })
    }
}

/// kubectl's spelling: `app=web,tier in (a,b),!legacy`; `{}` for everything.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_everything() {
            return f.write_str("{}");
        }
        let mut parts: Vec<String> = self.match_labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.extend(self.requirements.iter().map(|r| match r {
            Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
            Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
            Requirement::Exists(k) => k.clone(),
            Requirement::DoesNotExist(k) => format!("!{k}"),
        }));
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: if values.is_empty() { None } else { Some(values.iter().map(|v| v.to_string()).collect()) },
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn selector_matching_table() {
        let web = labels(&[("app", "web"), ("tier", "front")]);
        let none = Labels::new();
        let ml = LabelSelector { match_labels: Some([("app".to_string(), "web".to_string())].into()), ..Default::default() };
        let cases: Vec<(&str, LabelSelector, &Labels, bool)> = vec![
            ("empty matches labelled", LabelSelector::default(), &web, true),
            ("empty matches unlabelled", LabelSelector::default(), &none, true),
            ("matchLabels equal", ml.clone(), &web, true),
            ("matchLabels missing key", ml, &none, false),
            ("In present", expr("tier", "In", &["front", "back"]), &web, true),
            ("In other value", expr("tier", "In", &["back"]), &web, false),
            ("In missing key", expr("tier", "In", &["front"]), &none, false),
            ("NotIn missing key matches", expr("env", "NotIn", &["prod"]), &web, true),
            ("NotIn listed value", expr("tier", "NotIn", &["front"]), &web, false),
            ("NotIn other value", expr("tier", "NotIn", &["back"]), &web, true),
            ("Exists", expr("app", "Exists", &[]), &web, true),
            ("Exists missing", expr("app", "Exists", &[]), &none, false),
            ("DoesNotExist missing key matches", expr("app", "DoesNotExist", &[]), &none, true),
            ("DoesNotExist present", expr("app", "DoesNotExist", &[]), &web, false),
        ];
        for (name, sel, l, want) in cases {
            let s = Selector::parse(&sel, "spec.podSelector").unwrap();
            assert_eq!(s.matches(l), want, "{name}: {s}");
        }
    }

    #[test]
    fn invalid_selectors_name_the_field() {
        let err = Selector::parse(&expr("app", "Near", &[]), "spec.podSelector").unwrap_err();
        assert!(err.starts_with("spec.podSelector.matchExpressions[0].operator"), "{err}");
        let err = Selector::parse(&expr("app", "In", &[]), "spec.podSelector").unwrap_err();
        assert!(err.starts_with("spec.podSelector.matchExpressions[0].values"), "{err}");
        let err = Selector::parse(&expr("app", "Exists", &["x"]), "x").unwrap_err();
        assert!(err.contains("must be empty"), "{err}");
    }

    #[test]
    fn display_is_kubectl_like() {
        let s = Selector::parse(&expr("tier", "NotIn", &["a", "b"]), "p").unwrap();
        assert_eq!(s.to_string(), "tier notin (a,b)");
        assert_eq!(Selector::everything().to_string(), "{}");
    }
}

use serde_json::{Map, Value};

#[derive(Clone, Debug, PartialEq)]
pub enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Requirement {
    pub key: String,
    pub op: Operator,
    pub values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let v = labels.and_then(|l| l.get(&self.key)).and_then(Value::as_str);
        match self.op {
            Operator::Equals | Operator::In => v.map(|v| self.values.iter().any(|x| x == v)).unwrap_or(false),
            Operator::NotEquals | Operator::NotIn => v.map(|v| !self.values.iter().any(|x| x == v)).unwrap_or(true),
            Operator::Exists => v.is_some(),
            Operator::DoesNotExist => v.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(v), Some(bound)) = (v.and_then(|v| v.parse::<i64>().ok()), self.values.first().and_then(|b| b.parse::<i64>().ok())) else {
                    return false;
                };
                if self.op == Operator::GreaterThan { v > bound } else { v < bound }
            }
        }
    }
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
    /// A `LabelSelector` object that matches nothing (kube's `labels.Nothing()`).
    pub nothing: bool,
}

impl LabelSelector {
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty() && !self.nothing
    }

    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Parses the string form: `app=web,tier!=db,env in (a,b),!legacy,track`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        let chars: Vec<char> = s.chars().collect();
        let mut i = 0;
        let skip_ws = |i: &mut usize| {
            while *i < chars.len() && chars[*i].is_whitespace() {
                *i += 1;
            }
        };
        loop {
            skip_ws(&mut i);
            if i >= chars.len() {
                break;
            }
            let negated = chars[i] == '!';
            if negated {
                i += 1;
                skip_ws(&mut i);
            }
            let start = i;
            while i < chars.len() && !matches!(chars[i], '=' | '!' | ',' | '(' | ')' | '<' | '>') && !chars[i].is_whitespace() {
                i += 1;
            }
            let key: String = chars[start..i].iter().collect();
            if key.is_empty() {
                return Err(format!("unable to parse requirement: found '{}', expected: identifier", chars.get(i).copied().unwrap_or(' ')));
            }
            validate_key(&key)?;
            skip_ws(&mut i);
            if negated {
                requirements.push(Requirement { key, op: Operator::DoesNotExist, values: vec![] });
            } else if i >= chars.len() || chars[i] == ',' {
                requirements.push(Requirement { key, op: Operator::Exists, values: vec![] });
            } else {
                let rest: String = chars[i..].iter().collect();
                let (op, adv) = if rest.starts_with("==") {
                    (Operator::Equals, 2)
                } else if rest.starts_with("!=") {
                    (Operator::NotEquals, 2)
                } else if rest.starts_with('=') {
                    (Operator::Equals, 1)
                } else if rest.starts_with('>') {
                    (Operator::GreaterThan, 1)
                } else if rest.starts_with('<') {
                    (Operator::LessThan, 1)
                } else if rest.starts_with("notin") && rest[5..].trim_start().starts_with('(') {
                    (Operator::NotIn, 5)
                } else if rest.starts_with("in") && rest[2..].trim_start().starts_with('(') {
                    (Operator::In, 2)
                } else {
                    return Err(format!("unable to parse requirement: found '{rest}', expected: in, notin, =, ==, !=, gt, lt"));
                };
                i += adv;
                skip_ws(&mut i);
                let mut values = Vec::new();
                if matches!(op, Operator::In | Operator::NotIn) {
                    if i >= chars.len() || chars[i] != '(' {
                        return Err("unable to parse requirement: expected '('".into());
                    }
                    i += 1;
                    let close = chars[i..].iter().position(|c| *c == ')').ok_or("unable to parse requirement: missing ')'")?;
                    let inner: String = chars[i..i + close].iter().collect();
                    for v in inner.split(',') {
                        let v = v.trim();
                        validate_value(v)?;
                        values.push(v.to_string());
                    }
                    i += close + 1;
                } else {
                    let start = i;
                    while i < chars.len() && chars[i] != ',' && !chars[i].is_whitespace() {
                        i += 1;
                    }
                    let v: String = chars[start..i].iter().collect();
                    validate_value(&v)?;
                    if matches!(op, Operator::GreaterThan | Operator::LessThan) && v.parse::<i64>().is_err() {
                        return Err(format!("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {v}"));
                    }
                    values.push(v);
                }
                requirements.push(Requirement { key, op, values });
            }
            skip_ws(&mut i);
            if i < chars.len() {
                if chars[i] != ',' {
                    return Err(format!("found '{}', expected: ',' or 'end of string'", chars[i]));
                }
                i += 1;
            }
        }
        Ok(LabelSelector { requirements, nothing: false })
    }

    /// Builds a selector from a `metav1.LabelSelector` object
    /// (`{matchLabels: {...}, matchExpressions: [...]}`). A missing selector (None) matches
    /// nothing, as for Services without selectors; an empty object matches everything.
    pub fn from_object(sel: Option<&Value>) -> Result<Self, String> {
        let Some(sel) = sel.filter(|v| !v.is_null()) else {
            return Ok(LabelSelector { requirements: vec![], nothing: true });
        };
        let mut requirements = Vec::new();
        if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in ml {
                requirements.push(Requirement { key: k.clone(), op: Operator::Equals, values: vec![v.as_str().unwrap_or("").to_string()] });
            }
        }
        if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e.get("key").and_then(Value::as_str).unwrap_or("").to_string();
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                    .unwrap_or_default();
                let op = match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                    "In" => Operator::In,
                    "NotIn" => Operator::NotIn,
                    "Exists" => Operator::Exists,
                    "DoesNotExist" => Operator::DoesNotExist,
                    other => return Err(format!("{other:?} is not a valid label selector operator")),
                };
                requirements.push(Requirement { key, op, values });
            }
        }
        Ok(LabelSelector { requirements, nothing: false })
    }

    /// A selector from a plain map (`Service.spec.selector`, `ReplicationController`):
    /// an empty or missing map selects nothing.
    pub fn from_map(map: Option<&Value>) -> Self {
        match map.and_then(Value::as_object) {
            Some(m) if !m.is_empty() => LabelSelector {
                requirements: m
                    .iter()
                    .map(|(k, v)| Requirement { key: k.clone(), op: Operator::Equals, values: vec![v.as_str().unwrap_or("").to_string()] })
                    .collect(),
                nothing: false,
            },
            _ => LabelSelector { requirements: vec![], nothing: true },
        }
    }
}

impl std::fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| match r.op {
                Operator::Equals => format!("{}={}", r.key, r.values.join(",")),
                Operator::NotEquals => format!("{}!={}", r.key, r.values.join(",")),
                Operator::In => format!("{} in ({})", r.key, r.values.join(",")),
                Operator::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                Operator::Exists => r.key.clone(),
                Operator::DoesNotExist => format!("!{}", r.key),
                Operator::GreaterThan => format!("{}>{}", r.key, r.values.join(",")),
                Operator::LessThan => format!("{}<{}", r.key, r.values.join(",")),
            })
            .collect();
        write!(f, "{}", parts.join(","))
    }
}

fn validate_key(k: &str) -> Result<(), String> {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    let ok_name = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_prefix = prefix.is_none_or(|p| !p.is_empty() && p.len() <= 253 && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.')));
    if ok_name && ok_prefix {
        Ok(())
    } else {
        Err(format!("invalid label key {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"))
    }
}

fn validate_value(v: &str) -> Result<(), String> {
    let ok = v.is_empty()
        || (v.len() <= 63
            && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && v.chars().last().is_some_and(|c| c.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid label value: {v:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn parses_every_operator() {
        let s = LabelSelector::parse("app=web, tier!=db,env in (a, b),!legacy,track,x notin (1),n>3").unwrap();
        assert_eq!(s.requirements.len(), 7);
        let l = labels(json!({"app": "web", "tier": "fe", "env": "b", "track": "1", "n": "4"}));
        assert!(s.matches(Some(&l)));
        let l2 = labels(json!({"app": "web", "tier": "db", "env": "b", "track": "1", "n": "4"}));
        assert!(!s.matches(Some(&l2)));
    }

    #[test]
    fn empty_matches_everything_and_missing_object_nothing() {
        assert!(LabelSelector::parse("").unwrap().matches(None));
        assert!(!LabelSelector::from_object(None).unwrap().matches(None));
        assert!(LabelSelector::from_object(Some(&json!({}))).unwrap().matches(None));
        assert!(!LabelSelector::from_map(Some(&json!({}))).matches(None));
    }

    #[test]
    fn rejects_garbage() {
        assert!(LabelSelector::parse("a=b=c").is_err());
        assert!(LabelSelector::parse("a in b").is_err());
        assert!(LabelSelector::parse("=x").is_err());
    }

    #[test]
    fn match_expressions() {
        let s = LabelSelector::from_object(Some(&json!({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "NotIn", "values": ["x"]}]}))).unwrap();
        assert!(s.matches(Some(&labels(json!({"a": "1"})))));
        assert!(!s.matches(Some(&labels(json!({"a": "1", "b": "x"})))));
    }
}

//! Sets of field paths, as structured-merge-diff keeps them for server-side apply, and their
//! `FieldsV1` encoding in `metadata.managedFields` (`f:spec`, `k:{"port":80,"protocol":"TCP"}`,
//! `v:"a"`, `i:0`, `.` for "this node itself").

use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// A scalar used to identify a list item, ordered as structured-merge-diff orders values.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar(pub Value);

impl Eq for Scalar {}

impl Ord for Scalar {
    fn cmp(&self, other: &Self) -> Ordering {
        fn rank(v: &Value) -> u8 {
            match v {
                Value::Null => 0,
                Value::Bool(_) => 1,
                Value::Number(_) => 2,
                Value::String(_) => 3,
                Value::Array(_) => 4,
                Value::Object(_) => 5,
            }
        }
        match (&self.0, &other.0) {
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Number(a), Value::Number(b)) => {
                a.as_f64().unwrap_or(0.0).partial_cmp(&b.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal)
            }
            (Value::String(a), Value::String(b)) => a.cmp(b),
            (a, b) if rank(a) == rank(b) => a.to_string().cmp(&b.to_string()),
            (a, b) => rank(a).cmp(&rank(b)),
        }
    }
}

impl PartialOrd for Scalar {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One step of a field path. Variant order is the serialisation order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathElement {
    Field(String),
    /// An item of a `map` list, by its key fields sorted by name.
    Key(Vec<(String, Scalar)>),
    /// An item of a `set` list.
    Value(Scalar),
    /// An item of a list with no keys (only when an item lacks its keys).
    Index(usize),
}

impl PathElement {
    /// The `FieldsV1` key: `f:name`, `k:{...}`, `v:...`, `i:0`.
    pub fn fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(f) => format!("f:{f}"),
            PathElement::Key(keys) => {
                let m: Map<String, Value> = keys.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect();
                format!("k:{}", Value::Object(m))
            }
            PathElement::Value(v) => format!("v:{}", v.0),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    fn parse(key: &str) -> Option<PathElement> {
        let (kind, rest) = key.split_at_checked(2)?;
        match kind {
            "f:" => Some(PathElement::Field(rest.to_string())),
            "k:" => match serde_json::from_str::<Value>(rest).ok()? {
                Value::Object(m) => {
                    let mut keys: Vec<(String, Scalar)> = m.into_iter().map(|(k, v)| (k, Scalar(v))).collect();
                    keys.sort_by(|a, b| a.0.cmp(&b.0));
                    Some(PathElement::Key(keys))
                }
                _ => None,
            },
            "v:" => serde_json::from_str(rest).ok().map(|v| PathElement::Value(Scalar(v))),
            "i:" => rest.parse().ok().map(PathElement::Index),
            _ => None,
        }
    }
}

impl std::fmt::Display for PathElement {
    /// As structured-merge-diff prints paths in conflict messages: `.spec`, `[name="app"]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathElement::Field(n) => write!(f, ".{n}"),
            PathElement::Key(keys) => {
                let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={}", v.0)).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", v.0),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

pub type Path = Vec<PathElement>;

pub fn path_string(p: &[PathElement]) -> String {
    p.iter().map(|e| e.to_string()).collect()
}

/// A set of paths; a path's ancestors are not implied members.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet(pub BTreeSet<Path>);

impl FieldSet {
    pub fn new() -> Self {
        FieldSet::default()
    }
    pub fn insert(&mut self, p: Path) {
        if !p.is_empty() {
            self.0.insert(p);
        }
    }
    pub fn contains(&self, p: &[PathElement]) -> bool {
        self.0.contains(p)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.union(&other.0).cloned().collect())
    }
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.difference(&other.0).cloned().collect())
    }
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.intersection(&other.0).cloned().collect())
    }
    /// Drops `prefix` and everything below it.
    pub fn remove_subtree(&mut self, prefix: &[PathElement]) {
        self.0.retain(|p| !p.starts_with(prefix));
    }
    /// Whether `p` or anything below it is a member.
    pub fn has_at_or_below(&self, p: &[PathElement]) -> bool {
        self.0.range(p.to_vec()..).next().is_some_and(|q| q.starts_with(p))
    }

    pub fn to_fields_v1(&self) -> Value {
        #[derive(Default)]
        struct Node {
            member: bool,
            children: BTreeMap<PathElement, Node>,
        }
        fn render(n: &Node) -> Value {
            let mut m = Map::new();
            if n.member && !n.children.is_empty() {
                m.insert(".".into(), Value::Object(Map::new()));
            }
            for (pe, child) in &n.children {
                m.insert(pe.fields_v1_key(), render(child));
            }
            Value::Object(m)
        }
        let mut root = Node::default();
        for p in &self.0 {
            let mut n = &mut root;
            for pe in p {
                n = n.children.entry(pe.clone()).or_default();
            }
            n.member = true;
        }
        render(&root)
    }

    /// Parses `fieldsV1`; `None` when it is malformed.
    pub fn from_fields_v1(v: &Value) -> Option<FieldSet> {
        fn walk(v: &Value, path: &mut Path, out: &mut FieldSet) -> Option<()> {
            let m = v.as_object()?;
            if m.is_empty() {
                out.insert(path.clone());
            }
            for (k, child) in m {
                if k == "." {
                    out.insert(path.clone());
                    continue;
                }
                path.push(PathElement::parse(k)?);
                walk(child, path, out)?;
                path.pop();
            }
            Some(())
        }
        let mut out = FieldSet::new();
        walk(v, &mut Vec::new(), &mut out)?;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(n: &str) -> PathElement {
        PathElement::Field(n.into())
    }

    #[test]
    fn fields_v1_round_trips_with_dot_for_owned_parents() {
        let fv1 = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:targetPort": {}}},
                       "f:selector": {}, "f:finalizers": {"v:\"a\"": {}}}
        });
        let set = FieldSet::from_fields_v1(&fv1).unwrap();
        assert!(set.contains(&[f("metadata"), f("labels")]));
        assert!(!set.contains(&[f("metadata")]));
        assert_eq!(set.to_fields_v1(), json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:finalizers": {"v:\"a\"": {}}, "f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:targetPort": {}}},
                       "f:selector": {}}
        }));
    }

    #[test]
    fn keyed_items_order_numerically() {
        let k = |p: i64| PathElement::Key(vec![("port".into(), Scalar(json!(p)))]);
        assert!(k(80) < k(443));
    }

    #[test]
    fn paths_print_as_in_conflict_messages() {
        let p = vec![f("spec"), f("containers"), PathElement::Key(vec![("name".into(), Scalar(json!("app")))]), f("image")];
        assert_eq!(path_string(&p), ".spec.containers[name=\"app\"].image");
    }

    #[test]
    fn malformed_fields_v1_is_rejected() {
        assert!(FieldSet::from_fields_v1(&json!({"x:y": {}})).is_none());
    }

    #[test]
    fn has_at_or_below_sees_descendants() {
        let mut s = FieldSet::new();
        s.insert(vec![f("spec"), f("a"), f("b")]);
        assert!(s.has_at_or_below(&[f("spec"), f("a")]));
        assert!(!s.has_at_or_below(&[f("spec"), f("ab")]));
    }
}

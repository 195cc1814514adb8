//! The part of kubectl's JSONPath that CRD printer columns use: fields (`.a.b`, `['a.b']`,
//! `a\.b`), indexes and slices (`[0]`, `[-1]`, `[1:3]`), wildcards (`[*]`, `.*`), recursive
//! descent (`..name`) and filters (`[?(@.type=="Ready")]`). Missing keys select nothing.

use serde_json::Value;
use std::cmp::Ordering;

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct JsonPath {
    steps: Vec<Step>,
}

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Field(String),
    /// Every member of an object or element of an array.
    Wildcard,
    /// The node itself and all its descendants; the next step then applies to each.
    Descend,
    Index(i64),
    Slice {
        start: Option<i64>,
        end: Option<i64>,
        step: Option<i64>,
    },
    Filter(Filter),
}

#[derive(Clone, Debug, PartialEq)]
struct Filter {
    left: Operand,
    /// `None` tests that the left side exists.
    cmp: Option<(Op, Operand)>,
}

#[derive(Clone, Debug, PartialEq)]
enum Operand {
    /// A path relative to the element under test (`@.status`).
    Current(Vec<Step>),
    Literal(Value),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl JsonPath {
    /// Parses a path such as `.status.conditions[?(@.type=="Ready")].status`; surrounding
    /// braces (`{.spec}`) and a leading `$` are accepted.
    pub(crate) fn parse(text: &str) -> Result<JsonPath, String> {
        let mut s = text.trim();
        if let Some(inner) = s.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            s = inner.trim();
        }
        s = s.strip_prefix('$').unwrap_or(s);
        let mut p = Parser {
            chars: s.chars().collect(),
            pos: 0,
        };
        let steps = p.steps(false)?;
        if p.pos != p.chars.len() {
            return Err(format!(
                "unexpected {:?} at offset {} of {text:?}",
                p.chars[p.pos], p.pos
            ));
        }
        Ok(JsonPath { steps })
    }

    /// Every value the path selects, in document order.
    pub(crate) fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        apply(&self.steps, vec![root])
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_str(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        if self.chars.len() >= self.pos + n
            && self.chars[self.pos..self.pos + n]
                .iter()
                .copied()
                .eq(s.chars())
        {
            self.pos += n;
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Steps until the end, or (inside a filter) until an operator or `)`.
    fn steps(&mut self, in_filter: bool) -> Result<Vec<Step>, String> {
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                None => break,
                Some('.') => {
                    self.pos += 1;
                    if self.eat('.') {
                        steps.push(Step::Descend);
                    }
                    if self.eat('*') {
                        steps.push(Step::Wildcard);
                        continue;
                    }
                    let name = self.field_name();
                    if name.is_empty() {
                        // A bare `.` (or `..` before `[`) names the current node.
                        if !matches!(self.peek(), None | Some('[') | Some(')') | Some(' ')) {
                            return Err(format!("empty field name at offset {}", self.pos));
                        }
                    } else {
                        steps.push(Step::Field(name));
                    }
                }
                Some('[') => {
                    self.pos += 1;
                    steps.push(self.bracket()?);
                }
                Some(_) if in_filter => break,
                Some(c) => return Err(format!("unexpected {c:?} at offset {}", self.pos)),
            }
        }
        Ok(steps)
    }

    /// A dotted field name; `\` escapes the next character (for `kubernetes\.io/name`).
    fn field_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            match c {
                '\\' if self.pos + 1 < self.chars.len() => {
                    name.push(self.chars[self.pos + 1]);
                    self.pos += 2;
                }
                '.' | '[' | ']' | '(' | ')' | '=' | '!' | '<' | '>' | ' ' | ',' => break,
                c => {
                    name.push(c);
                    self.pos += 1;
                }
            }
        }
        name
    }

    /// The inside of `[...]`, after the `[`.
    fn bracket(&mut self) -> Result<Step, String> {
        self.skip_spaces();
        let step = if self.eat('*') {
            Step::Wildcard
        } else if self.eat_str("?(") {
            let f = self.filter()?;
            if !self.eat(')') {
                return Err(format!("filter not closed at offset {}", self.pos));
            }
            Step::Filter(f)
        } else if matches!(self.peek(), Some('\'') | Some('"')) {
            Step::Field(self.quoted()?)
        } else {
            self.index_or_slice()?
        };
        self.skip_spaces();
        if !self.eat(']') {
            return Err(format!("expected ']' at offset {}", self.pos));
        }
        Ok(step)
    }

    fn quoted(&mut self) -> Result<String, String> {
        let quote = self.peek().ok_or("expected a quote")?;
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err("unterminated string".into()),
                Some('\\') if self.pos + 1 < self.chars.len() => {
                    s.push(self.chars[self.pos + 1]);
                    self.pos += 2;
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn int(&mut self) -> Result<Option<i64>, String> {
        self.skip_spaces();
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        self.skip_spaces();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|_| format!("bad index {text:?}"))
    }

    fn index_or_slice(&mut self) -> Result<Step, String> {
        let start = self.int()?;
        if !self.eat(':') {
            return start
                .map(Step::Index)
                .ok_or_else(|| format!("expected an index at offset {}", self.pos));
        }
        let end = self.int()?;
        let step = if self.eat(':') { self.int()? } else { None };
        Ok(Step::Slice { start, end, step })
    }

    fn filter(&mut self) -> Result<Filter, String> {
        self.skip_spaces();
        let left = self.operand()?;
        self.skip_spaces();
        let op = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find(|(text, _)| self.eat_str(text))
        .map(|(_, op)| op);
        let cmp = match op {
            None => None,
            Some(op) => {
                self.skip_spaces();
                let right = self.operand()?;
                self.skip_spaces();
                Some((op, right))
            }
        };
        Ok(Filter { left, cmp })
    }

    fn operand(&mut self) -> Result<Operand, String> {
        match self.peek() {
            Some('@') => {
                self.pos += 1;
                Ok(Operand::Current(self.steps(true)?))
            }
            Some('\'') | Some('"') => Ok(Operand::Literal(Value::String(self.quoted()?))),
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.' | '_')
                }) {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                match text.as_str() {
                    "true" => Ok(Operand::Literal(Value::Bool(true))),
                    "false" => Ok(Operand::Literal(Value::Bool(false))),
                    "nil" | "null" => Ok(Operand::Literal(Value::Null)),
                    t => serde_json::from_str::<serde_json::Number>(t)
                        .map(|n| Operand::Literal(Value::Number(n)))
                        .map_err(|_| format!("unrecognized filter operand {t:?}")),
                }
            }
        }
    }
}

fn apply<'a>(steps: &[Step], mut nodes: Vec<&'a Value>) -> Vec<&'a Value> {
    for step in steps {
        let mut next = Vec::new();
        for node in nodes {
            select(step, node, &mut next);
        }
        nodes = next;
    }
    nodes
}

fn select<'a>(step: &Step, node: &'a Value, out: &mut Vec<&'a Value>) {
    match step {
        Step::Field(name) => out.extend(node.get(name.as_str())),
        Step::Wildcard => match node {
            Value::Array(items) => out.extend(items.iter()),
            Value::Object(map) => out.extend(map.values()),
            _ => {}
        },
        Step::Descend => descend(node, out),
        Step::Index(i) => {
            if let Value::Array(items) = node {
                let len = items.len() as i64;
                let i = if *i < 0 { len + i } else { *i };
                if (0..len).contains(&i) {
                    out.push(&items[i as usize]);
                }
            }
        }
        Step::Slice { start, end, step } => {
            if let Value::Array(items) = node {
                let len = items.len() as i64;
                let clamp = |v: i64| if v < 0 { (len + v).max(0) } else { v.min(len) };
                let from = clamp(start.unwrap_or(0));
                let to = clamp(end.unwrap_or(len));
                let by = step.unwrap_or(1).max(1) as usize;
                if from < to {
                    out.extend(items[from as usize..to as usize].iter().step_by(by));
                }
            }
        }
        Step::Filter(f) => {
            let items: Vec<&Value> = match node {
                Value::Array(items) => items.iter().collect(),
                Value::Object(map) => map.values().collect(),
                _ => Vec::new(),
            };
            out.extend(items.into_iter().filter(|item| f.matches(item)));
        }
    }
}

fn descend<'a>(node: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(node);
    match node {
        Value::Array(items) => items.iter().for_each(|v| descend(v, out)),
        Value::Object(map) => map.values().for_each(|v| descend(v, out)),
        _ => {}
    }
}

impl Filter {
    fn matches(&self, item: &Value) -> bool {
        let left = self.left.resolve(item);
        let Some((op, right)) = &self.cmp else {
            return left.is_some();
        };
        let (Some(l), Some(r)) = (left, right.resolve(item)) else {
            return false;
        };
        match compare(l, r) {
            Some(ord) => match op {
                Op::Eq => ord == Ordering::Equal,
                Op::Ne => ord != Ordering::Equal,
                Op::Lt => ord == Ordering::Less,
                Op::Le => ord != Ordering::Greater,
                Op::Gt => ord == Ordering::Greater,
                Op::Ge => ord != Ordering::Less,
            },
            // Values of different types are never equal, and never ordered.
            None => *op == Op::Ne,
        }
    }
}

impl Operand {
    fn resolve<'a>(&'a self, item: &'a Value) -> Option<&'a Value> {
        match self {
            Operand::Current(steps) => apply(steps, vec![item]).into_iter().next(),
            Operand::Literal(v) => Some(v),
        }
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn find(path: &str, v: &Value) -> Vec<Value> {
        JsonPath::parse(path)
            .unwrap()
            .find(v)
            .into_iter()
            .cloned()
            .collect()
    }

    fn widget() -> Value {
        json!({
            "metadata": {"name": "w", "labels": {"app.kubernetes.io/name": "shop"}, "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"replicas": 3, "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]},
            "status": {"conditions": [
                {"type": "Progressing", "status": "True", "observedGeneration": 2},
                {"type": "Ready", "status": "False", "reason": "Waiting", "observedGeneration": 3}]}
        })
    }

    #[test]
    fn dotted_fields_select_nested_values() {
        assert_eq!(find(".spec.replicas", &widget()), [json!(3)]);
        assert_eq!(
            find("{.metadata.creationTimestamp}", &widget()),
            [json!("2024-05-01T11:00:00Z")]
        );
        assert_eq!(find("$.metadata.name", &widget()), [json!("w")]);
    }

    #[test]
    fn missing_keys_select_nothing() {
        assert!(find(".spec.missing.deeper", &widget()).is_empty());
        assert!(find(".spec.replicas.x", &widget()).is_empty());
        assert!(find(".spec.ports[5]", &widget()).is_empty());
    }

    #[test]
    fn equality_filter_picks_the_matching_condition() {
        assert_eq!(
            find(
                r#".status.conditions[?(@.type=="Ready")].status"#,
                &widget()
            ),
            [json!("False")]
        );
        assert_eq!(
            find(
                ".status.conditions[?(@.type == 'Progressing')].status",
                &widget()
            ),
            [json!("True")]
        );
        assert!(find(
            r#".status.conditions[?(@.type=="Missing")].status"#,
            &widget()
        )
        .is_empty());
    }

    #[test]
    fn filters_compare_numbers_and_test_existence() {
        assert_eq!(
            find(
                ".status.conditions[?(@.observedGeneration > 2)].type",
                &widget()
            ),
            [json!("Ready")]
        );
        assert_eq!(
            find(".status.conditions[?(@.reason)].type", &widget()),
            [json!("Ready")]
        );
        assert_eq!(
            find(r#".status.conditions[?(@.type!="Ready")].type"#, &widget()),
            [json!("Progressing")]
        );
    }

    #[test]
    fn indexes_slices_and_wildcards_select_array_elements() {
        assert_eq!(find(".spec.ports[0].port", &widget()), [json!(80)]);
        assert_eq!(find(".spec.ports[-1].name", &widget()), [json!("https")]);
        assert_eq!(
            find(".spec.ports[*].port", &widget()),
            [json!(80), json!(443)]
        );
        assert_eq!(find(".spec.ports[0:1].name", &widget()), [json!("http")]);
        assert_eq!(
            find(".spec.ports.*.name", &widget()),
            [json!("http"), json!("https")]
        );
    }

    #[test]
    fn escaped_dots_and_quoted_keys_name_label_keys() {
        assert_eq!(
            find(r".metadata.labels.app\.kubernetes\.io/name", &widget()),
            [json!("shop")]
        );
        assert_eq!(
            find(".metadata.labels['app.kubernetes.io/name']", &widget()),
            [json!("shop")]
        );
    }

    #[test]
    fn recursive_descent_finds_fields_at_any_depth() {
        assert_eq!(find("..port", &widget()), [json!(80), json!(443)]);
    }

    #[test]
    fn malformed_paths_are_rejected() {
        assert!(JsonPath::parse(".spec[").is_err());
        assert!(JsonPath::parse(".spec.ports[?(@.port == )]").is_err());
        assert!(JsonPath::parse("spec").is_err());
        assert!(JsonPath::parse(".status.conditions[?(@.type==\"Ready\")").is_err());
    }
}

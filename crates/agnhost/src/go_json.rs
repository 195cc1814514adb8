//! JSON exactly as Go's encoding/json writes agnhost's maps: keys sorted, and
//! `<`, `>`, `&`, U+2028 and U+2029 escaped (Go's HTML-safe default), so
//! `/shell` and `/dial` bodies match upstream byte for byte.

use std::collections::BTreeMap;
use std::fmt::Write;

pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A `map[string]string`.
pub fn object_of_strings(map: &BTreeMap<&str, String>) -> String {
    let fields: Vec<String> = map.iter().map(|(k, v)| format!("{}:{}", string(k), string(v))).collect();
    format!("{{{}}}", fields.join(","))
}

/// A `map[string][]string`.
pub fn object_of_lists(map: &BTreeMap<String, Vec<String>>) -> String {
    let fields: Vec<String> = map
        .iter()
        .map(|(k, vs)| {
            let items: Vec<String> = vs.iter().map(|v| string(v)).collect();
            format!("{}:[{}]", string(k), items.join(","))
        })
        .collect();
    format!("{{{}}}", fields.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        assert_eq!(string("a<b>&\"\\\n\u{1}"), r#""a\u003cb\u003e\u0026\"\\\n\u0001""#);
    }

    #[test]
    fn maps_are_sorted_by_key() {
        let mut m = BTreeMap::new();
        m.insert("output", "x".to_string());
        m.insert("error", "exit status 1".to_string());
        assert_eq!(object_of_strings(&m), r#"{"error":"exit status 1","output":"x"}"#);
        let mut l = BTreeMap::new();
        l.insert("responses".to_string(), vec!["a".to_string(), "b".to_string()]);
        assert_eq!(object_of_lists(&l), r#"{"responses":["a","b"]}"#);
        assert_eq!(object_of_lists(&BTreeMap::new()), "{}");
    }
}

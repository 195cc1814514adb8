//! Secret defaults: type `Opaque`, and `stringData` folded into `data` as kube-apiserver's
//! v1 conversion does (a `stringData` key wins over the same `data` key), so validation
//! and storage only ever see `data`.

use serde_json::{json, Value};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn default_secret(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else { return };
    if o.get("type").and_then(Value::as_str).unwrap_or("").is_empty() {
        o.insert("type".into(), json!("Opaque"));
    }
    let Some(Value::Object(string_data)) = o.remove("stringData") else { return };
    if string_data.is_empty() {
        return;
    }
    if !o.get("data").map(Value::is_object).unwrap_or(false) {
        o.insert("data".into(), json!({}));
    }
    let data = o.get_mut("data").and_then(Value::as_object_mut).expect("data is an object");
    for (k, v) in string_data {
        data.insert(k, json!(encode(v.as_str().unwrap_or("").as_bytes())));
    }
}

/// Standard padded base64.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_with_padding() {
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"a"), "YQ==");
        assert_eq!(encode(b"ab"), "YWI=");
        assert_eq!(encode(b"abc"), "YWJj");
        assert_eq!(encode(b"hello world"), "aGVsbG8gd29ybGQ=");
    }

    #[test]
    fn explicit_secret_type_is_kept() {
        let mut s = json!({"type": "kubernetes.io/tls"});
        default_secret(&mut s);
        assert_eq!(s["type"], "kubernetes.io/tls");
    }
}

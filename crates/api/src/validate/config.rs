//! ConfigMap, Secret and ServiceAccount validation, as kube-apiserver's `ValidateConfigMap`,
//! `ValidateSecret` (and their updates) and `ValidateServiceAccount` do it.

mod base64;

use super::names;
use super::service::formats::invalid_each;
use crate::FieldError;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// ConfigMaps and Secrets share one size limit: 1 MiB of data.
const MAX_SIZE: usize = 1024 * 1024;
const SERVICE_ACCOUNT_NAME_KEY: &str = "kubernetes.io/service-account.name";
const REDACTED: &str = "<secret contents redacted>";
const IMMUTABLE_MSG: &str = "field is immutable when `immutable` is set";

fn map_or_empty<'a>(obj: &'a Value, key: &str, empty: &'a Map<String, Value>) -> &'a Map<String, Value> {
    obj.get(key).and_then(Value::as_object).unwrap_or(empty)
}

fn is_immutable(obj: &Value) -> bool {
    obj.get("immutable").and_then(Value::as_bool).unwrap_or(false)
}

/// A base64 `binaryData`/Secret `data` value, decoded; a bad one is an error at `path`.
fn decoded(path: &str, v: &Value, errs: &mut Vec<FieldError>, redact: bool) -> Vec<u8> {
    let s = v.as_str().unwrap_or("");
    match base64::decode(s) {
        Ok(b) => b,
        Err(i) => {
            let shown = if redact { json!(REDACTED) } else { json!(s) };
            errs.push(FieldError::invalid(path, shown, format!("illegal base64 data at input byte {i}")));
            Vec::new()
        }
    }
}

pub fn validate_config_map(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let empty = Map::new();
    let data = map_or_empty(obj, "data", &empty);
    let binary = map_or_empty(obj, "binaryData", &empty);
    let mut errs = Vec::new();

    if let Some(old) = old.filter(|o| is_immutable(o)) {
        if !is_immutable(obj) {
            errs.push(FieldError::forbidden("immutable", IMMUTABLE_MSG));
        }
        if map_or_empty(old, "data", &empty) != data {
            errs.push(FieldError::forbidden("data", IMMUTABLE_MSG));
        }
        if map_or_empty(old, "binaryData", &empty) != binary {
            errs.push(FieldError::forbidden("binaryData", IMMUTABLE_MSG));
        }
    }

    let mut total = 0;
    for (k, v) in data {
        let path = names::key("data", k);
        errs.extend(invalid_each(&path, k, names::is_config_map_key(k)));
        if binary.contains_key(k) {
            errs.push(FieldError::invalid(path, json!(k), "duplicate of key present in binaryData"));
        }
        total += v.as_str().map(str::len).unwrap_or(0);
    }
    for (k, v) in binary {
        let path = names::key("binaryData", k);
        errs.extend(invalid_each(&path, k, names::is_config_map_key(k)));
        total += decoded(&path, v, &mut errs, false).len();
    }
    if total > MAX_SIZE {
        // The whole object is too big, which upstream reports at the empty path.
        errs.push(FieldError::too_long("", MAX_SIZE));
    }
    errs
}

pub fn validate_secret(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let empty = Map::new();
    let data = map_or_empty(obj, "data", &empty);
    let typ = obj.get("type").and_then(Value::as_str).unwrap_or("");
    let mut errs = Vec::new();

    if let Some(old) = old {
        let old_type = old.get("type").and_then(Value::as_str).unwrap_or("");
        errs.extend(names::validate_immutable("type", &json!(typ), &json!(old_type)));
        if is_immutable(old) {
            if !is_immutable(obj) {
                errs.push(FieldError::forbidden("immutable", IMMUTABLE_MSG));
            }
            if map_or_empty(old, "data", &empty) != data {
                errs.push(FieldError::forbidden("data", IMMUTABLE_MSG));
            }
        }
    }

    let mut total = 0;
    let mut payloads: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for (k, v) in data {
        let path = names::key("data", k);
        errs.extend(invalid_each(&path, k, names::is_config_map_key(k)));
        let bytes = decoded(&path, v, &mut errs, true);
        total += bytes.len();
        payloads.insert(k, bytes);
    }
    if total > MAX_SIZE {
        errs.push(FieldError::too_long("data", MAX_SIZE));
    }

    let required = |k: &str| FieldError::required(names::key("data", k), "");
    match typ {
        "kubernetes.io/service-account-token" => {
            let name = obj
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(SERVICE_ACCOUNT_NAME_KEY))
                .and_then(Value::as_str)
                .unwrap_or("");
            if name.is_empty() {
                errs.push(FieldError::required(names::key("metadata.annotations", SERVICE_ACCOUNT_NAME_KEY), ""));
            }
        }
        "kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson" => {
            let k = if typ == "kubernetes.io/dockercfg" { ".dockercfg" } else { ".dockerconfigjson" };
            match payloads.get(k) {
                None => errs.push(required(k)),
                Some(bytes) => {
                    if let Some(msg) = json_object_error(bytes) {
                        errs.push(FieldError::invalid(names::key("data", k), json!(REDACTED), msg));
                    }
                }
            }
        }
        "kubernetes.io/basic-auth" => {
            // Either may be empty, but one of the keys must be there.
            if !data.contains_key("username") && !data.contains_key("password") {
                errs.push(required("username"));
                errs.push(required("password"));
            }
        }
        "kubernetes.io/ssh-auth" => {
            if payloads.get("ssh-privatekey").map(Vec::is_empty).unwrap_or(true) {
                errs.push(required("ssh-privatekey"));
            }
        }
        "kubernetes.io/tls" => {
            for k in ["tls.crt", "tls.key"] {
                if !data.contains_key(k) {
                    errs.push(required(k));
                }
            }
        }
        // Opaque, bootstrap tokens and custom types carry no key rules.
        _ => {}
    }
    errs
}

/// Docker config payloads must decode as a JSON object; the error is worded as Go's
/// `encoding/json` words it where the two agree.
fn json_object_error(bytes: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(_)) => None,
        Ok(Value::Null) => None,
        Ok(other) => {
            let kind = match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "bool",
            };
            Some(format!("json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"))
        }
        Err(e) if e.is_eof() => Some("unexpected end of JSON input".to_string()),
        Err(e) => Some(e.to_string()),
    }
}

/// ServiceAccounts have nothing beyond metadata to validate (upstream checks only
/// `metadata`, which the shared metadata validation covers).
pub fn validate_service_account(_obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::apply_defaults;
    use crate::GroupKind;

    fn cm_errors(cm: Value, old: Option<Value>) -> Vec<String> {
        validate_config_map(&cm, old.as_ref()).iter().map(|e| e.to_string()).collect()
    }

    fn secret_errors(mut s: Value, old: Option<Value>) -> Vec<String> {
        apply_defaults(&GroupKind::new("", "Secret"), &mut s);
        validate_secret(&s, old.as_ref()).iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn config_map_with_file_like_keys_validates_clean() {
        let cm = json!({"metadata": {"name": "app-config"}, "data": {"app.properties": "a=b", "LOG_LEVEL": "info", "nginx-conf": "x"},
            "binaryData": {"logo.png": "iVBORw0KGgo="}});
        assert_eq!(cm_errors(cm, None), Vec::<String>::new());
    }

    #[test]
    fn config_map_keys_must_be_file_names() {
        let errs = cm_errors(json!({"data": {"a b": "x", "..": "y"}}), None);
        assert!(errs[0].starts_with("data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters"));
        assert_eq!(errs[1], "data[..]: Invalid value: \"..\": must not be '..'");
    }

    #[test]
    fn config_map_key_may_not_be_in_data_and_binary_data() {
        let errs = cm_errors(json!({"data": {"k": "x"}, "binaryData": {"k": "eA=="}}), None);
        assert_eq!(errs, vec!["data[k]: Invalid value: \"k\": duplicate of key present in binaryData"]);
    }

    #[test]
    fn config_map_over_one_mebibyte_is_too_long() {
        let big = "x".repeat(MAX_SIZE + 1);
        assert_eq!(cm_errors(json!({"data": {"big": big}}), None), vec![": Too long: must have at most 1048576 bytes"]);
    }

    #[test]
    fn immutable_config_map_data_may_not_change() {
        let old = json!({"immutable": true, "data": {"a": "1"}});
        let new = json!({"data": {"a": "2"}});
        assert_eq!(
            cm_errors(new, Some(old)),
            vec![
                "immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set",
            ]
        );
    }

    #[test]
    fn opaque_secret_defaults_and_validates_clean() {
        let mut s = json!({"metadata": {"name": "db"}, "data": {"password": "c2VjcmV0"}});
        apply_defaults(&GroupKind::new("", "Secret"), &mut s);
        assert_eq!(s["type"], "Opaque");
        assert!(validate_secret(&s, None).is_empty());
    }

    #[test]
    fn secret_string_data_is_folded_into_data() {
        let mut s = json!({"stringData": {"username": "admin"}, "data": {"username": "b2xk", "x": "eA=="}});
        apply_defaults(&GroupKind::new("", "Secret"), &mut s);
        assert_eq!(s["data"], json!({"username": "YWRtaW4=", "x": "eA=="}));
        assert!(s.get("stringData").is_none());
    }

    #[test]
    fn tls_secret_needs_cert_and_key() {
        assert_eq!(
            secret_errors(json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}), None),
            vec!["data[tls.key]: Required value"]
        );
        assert!(secret_errors(json!({"type": "kubernetes.io/tls", "stringData": {"tls.crt": "c", "tls.key": "k"}}), None).is_empty());
    }

    #[test]
    fn docker_config_json_secret_needs_a_json_object() {
        assert_eq!(
            secret_errors(json!({"type": "kubernetes.io/dockerconfigjson", "data": {}}), None),
            vec!["data[.dockerconfigjson]: Required value"]
        );
        assert_eq!(
            secret_errors(json!({"type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "[1]"}}), None),
            vec!["data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": json: cannot unmarshal array into Go value of type map[string]interface {}"]
        );
        assert!(secret_errors(json!({"type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": "{\"auths\":{}}"}}), None).is_empty());
    }

    #[test]
    fn service_account_token_secret_names_its_account() {
        assert_eq!(
            secret_errors(json!({"type": "kubernetes.io/service-account-token"}), None),
            vec!["metadata.annotations[kubernetes.io/service-account.name]: Required value"]
        );
    }

    #[test]
    fn basic_auth_and_ssh_auth_need_their_keys() {
        assert_eq!(
            secret_errors(json!({"type": "kubernetes.io/basic-auth"}), None),
            vec!["data[username]: Required value", "data[password]: Required value"]
        );
        assert_eq!(secret_errors(json!({"type": "kubernetes.io/ssh-auth", "data": {"ssh-privatekey": ""}}), None), vec!["data[ssh-privatekey]: Required value"]);
    }

    #[test]
    fn secret_type_is_immutable() {
        let old = json!({"type": "Opaque"});
        let errs = secret_errors(json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}), Some(old));
        assert_eq!(errs, vec!["type: Invalid value: \"kubernetes.io/tls\": field is immutable"]);
    }

    #[test]
    fn secret_data_must_be_base64() {
        assert_eq!(
            secret_errors(json!({"data": {"k": "not base64!"}}), None),
            vec!["data[k]: Invalid value: \"<secret contents redacted>\": illegal base64 data at input byte 8"]
        );
    }
}

//! Configuration kinds: ConfigMap, Secret, ServiceAccount.

use super::age::age;
use super::{age_column, len_at, name_column, str_at, Column};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::BTreeSet;

pub(super) fn config_map_columns() -> Vec<Column> {
    vec![
        name_column(),
        Column::new("Data", "string", "The number of keys, text and binary."),
        age_column(),
    ]
}

pub(super) fn config_map_row(cm: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let keys = len_at(cm, "/data") + len_at(cm, "/binaryData");
    vec![
        json!(crate::meta::name(cm)),
        json!(keys),
        json!(age(cm, now)),
    ]
}

pub(super) fn secret_columns() -> Vec<Column> {
    vec![
        name_column(),
        Column::new(
            "Type",
            "string",
            "What the secret holds, e.g. Opaque or kubernetes.io/tls.",
        ),
        Column::new("Data", "string", "The number of keys."),
        age_column(),
    ]
}

pub(super) fn secret_row(secret: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // kube folds write-only stringData into data before storing; count the union so an
    // object stored as written prints the same.
    let keys: BTreeSet<&String> = ["data", "stringData"]
        .iter()
        .filter_map(|f| secret.get(*f).and_then(Value::as_object))
        .flat_map(|m| m.keys())
        .collect();
    let ty = match str_at(secret, "/type") {
        "" => "Opaque",
        t => t,
    };
    vec![
        json!(crate::meta::name(secret)),
        json!(ty),
        json!(keys.len()),
        json!(age(secret, now)),
    ]
}

pub(super) fn service_account_columns() -> Vec<Column> {
    vec![
        name_column(),
        Column::new(
            "Secrets",
            "string",
            "The number of secrets listed on the account.",
        ),
        age_column(),
    ]
}

pub(super) fn service_account_row(sa: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(crate::meta::name(sa)),
        json!(len_at(sa, "/secrets")),
        json!(age(sa, now)),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ago, now};
    use super::*;

    #[test]
    fn config_map_counts_text_and_binary_keys() {
        let cm = json!({"metadata": {"name": "kube-root-ca.crt", "creationTimestamp": ago(9 * 86400)},
                        "data": {"ca.crt": "-----BEGIN CERTIFICATE-----"}, "binaryData": {"logo.png": "iVBORw0K"}});
        assert_eq!(
            config_map_row(&cm, now()),
            vec![json!("kube-root-ca.crt"), json!(2), json!("9d")]
        );
        assert_eq!(
            config_map_row(&json!({"metadata": {"name": "empty"}}), now())[1],
            json!(0)
        );
    }

    #[test]
    fn tls_secret_shows_type_and_key_count() {
        let s = json!({"metadata": {"name": "shop-tls", "creationTimestamp": ago(3 * 86400)},
                       "type": "kubernetes.io/tls", "data": {"tls.crt": "Y3J0", "tls.key": "a2V5"}});
        assert_eq!(
            secret_row(&s, now()),
            vec![
                json!("shop-tls"),
                json!("kubernetes.io/tls"),
                json!(2),
                json!("3d")
            ]
        );
    }

    #[test]
    fn secret_counts_string_data_keys_once() {
        let s = json!({"metadata": {"name": "db"}, "data": {"user": "YWRtaW4="}, "stringData": {"user": "admin", "pass": "x"}});
        let c = secret_row(&s, now());
        assert_eq!(c[1], json!("Opaque"));
        assert_eq!(c[2], json!(2));
    }

    #[test]
    fn service_account_counts_listed_secrets() {
        let sa = json!({"metadata": {"name": "default", "creationTimestamp": ago(61)}, "secrets": [{"name": "default-token"}]});
        assert_eq!(
            service_account_row(&sa, now()),
            vec![json!("default"), json!(1), json!("61s")]
        );
        assert_eq!(
            service_account_row(&json!({"metadata": {"name": "builder"}}), now())[1],
            json!(0)
        );
    }
}

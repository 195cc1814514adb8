//! apps: Deployment and ReplicaSet.

use super::age::age;
use super::labels::{format_label_selector, selector_string};
use super::{age_column, container_cells, int_at, name_column, Column};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

fn template_columns(selector_description: &str) -> [Column; 3] {
    [
        Column::new(
            "Containers",
            "string",
            "The names of the containers in the pod template.",
        )
        .wide(),
        Column::new(
            "Images",
            "string",
            "The images of the containers in the pod template.",
        )
        .wide(),
        Column::new("Selector", "string", selector_description).wide(),
    ]
}

/// `spec.replicas`, which defaults to 1.
fn desired(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

pub(super) fn deployment_columns() -> Vec<Column> {
    let mut cols = vec![
        name_column(),
        Column::new("Ready", "string", "Ready replicas, of the desired number."),
        Column::new(
            "Up-to-date",
            "string",
            "Replicas running the current pod template.",
        ),
        Column::new("Available", "string", "Replicas available to serve."),
        age_column(),
    ];
    cols.extend(template_columns(
        "The labels of the pods the deployment manages.",
    ));
    cols
}

pub(super) fn deployment_row(d: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(d.pointer("/spec/template/spec"));
    // Unlike the other selector columns, an empty one prints as "" here, as upstream.
    let selector =
        selector_string(d.pointer("/spec/selector")).unwrap_or_else(|_| "<invalid>".into());
    vec![
        json!(crate::meta::name(d)),
        json!(format!(
            "{}/{}",
            int_at(d, "/status/readyReplicas"),
            desired(d)
        )),
        json!(int_at(d, "/status/updatedReplicas")),
        json!(int_at(d, "/status/availableReplicas")),
        json!(age(d, now)),
        json!(names),
        json!(images),
        json!(selector),
    ]
}

pub(super) fn replica_set_columns() -> Vec<Column> {
    let mut cols = vec![
        name_column(),
        Column::new("Desired", "integer", "The number of replicas asked for."),
        Column::new("Current", "integer", "The number of replicas that exist."),
        Column::new("Ready", "integer", "The number of replicas that are ready."),
        age_column(),
    ];
    cols.extend(template_columns(
        "The labels of the pods the replica set manages.",
    ));
    cols
}

pub(super) fn replica_set_row(rs: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(rs.pointer("/spec/template/spec"));
    vec![
        json!(crate::meta::name(rs)),
        json!(desired(rs)),
        json!(int_at(rs, "/status/replicas")),
        json!(int_at(rs, "/status/readyReplicas")),
        json!(age(rs, now)),
        json!(names),
        json!(images),
        json!(format_label_selector(rs.pointer("/spec/selector"))),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ago, now};
    use super::*;

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}, {"name": "proxy", "image": "envoy:v1.31"}]}})
    }

    #[test]
    fn deployment_shows_ready_of_desired_and_template_in_wide_columns() {
        let d = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(7 * 3600 + 5 * 60)},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        assert_eq!(
            deployment_row(&d, now()),
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("7h5m"),
                json!("app,proxy"),
                json!("nginx:1.27,envoy:v1.31"),
                json!("app=web")
            ]
        );
    }

    #[test]
    fn new_deployment_without_status_shows_zero_of_default_one() {
        let d =
            json!({"metadata": {"name": "web"}, "spec": {"selector": {}, "template": template()}});
        let c = deployment_row(&d, now());
        assert_eq!(c[1..4], [json!("0/1"), json!(0), json!(0)]);
        assert_eq!(c[7], json!(""));
    }

    #[test]
    fn deployment_with_invalid_selector_says_invalid() {
        let d = json!({"metadata": {"name": "web"},
                       "spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Sometimes"}]}}});
        assert_eq!(deployment_row(&d, now())[7], json!("<invalid>"));
    }

    #[test]
    fn replica_set_shows_desired_current_ready_as_integers() {
        let rs = json!({
            "metadata": {"name": "web-5d4f8c7b9", "creationTimestamp": ago(50)},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d4f8c7b9"}},
                     "template": template()},
            "status": {"replicas": 3, "readyReplicas": 1}
        });
        assert_eq!(
            replica_set_row(&rs, now()),
            vec![
                json!("web-5d4f8c7b9"),
                json!(3),
                json!(3),
                json!(1),
                json!("50s"),
                json!("app,proxy"),
                json!("nginx:1.27,envoy:v1.31"),
                json!("app=web,pod-template-hash=5d4f8c7b9")
            ]
        );
    }

    #[test]
    fn scaled_down_replica_set_shows_zero_desired() {
        let rs = json!({"metadata": {"name": "web-old"}, "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}}});
        let c = replica_set_row(&rs, now());
        assert_eq!(c[1..4], [json!(0), json!(0), json!(0)]);
        assert_eq!(c[5..7], [json!(""), json!("")]);
    }
}

//! The pure half of `pods/log` and `pods/exec`: which container, which options, and
//! the kubelet URL's query, as kube-apiserver's pod strategy decides them.

use serde_json::Value;
use weft_api::{ApiError, FieldError};

/// The annotation that names the container kubectl (and weft) default to.
pub const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

fn names(pod: &Value, field: &str) -> Vec<String> {
    pod["spec"][field].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str().map(String::from)).collect()
}

/// The container a request means: the one named (which must exist), else the
/// default-container annotation's, else the only one; several and none named is
/// kube-apiserver's error listing them all (init, regular, ephemeral).
pub fn choose_container(pod: &Value, requested: Option<&str>) -> Result<String, ApiError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let all: Vec<String> = ["initContainers", "containers", "ephemeralContainers"].iter().flat_map(|f| names(pod, f)).collect();
    if let Some(c) = requested.filter(|c| !c.is_empty()) {
        if all.iter().any(|n| n == c) {
            return Ok(c.to_string());
        }
        return Err(ApiError::bad_request(format!("container {c} is not valid for pod {name}")));
    }
    let containers = names(pod, "containers");
    if let Some(d) = pod["metadata"]["annotations"][DEFAULT_CONTAINER].as_str().filter(|d| containers.iter().any(|n| n == d)) {
        return Ok(d.to_string());
    }
    match containers.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(ApiError::bad_request(format!("a container name must be specified for pod {name}"))),
        _ => Err(ApiError::bad_request(format!("a container name must be specified for pod {name}, choose one of: [{}]", all.join(" ")))),
    }
}

fn flag(k: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" | "True" => Ok(true),
        "false" | "0" | "False" | "" => Ok(false),
        _ => Err(ApiError::bad_request(format!("query parameter {k}={v:?} is not valid: want true or false"))),
    }
}

fn int(k: &str, v: &str) -> Result<i64, ApiError> {
    v.parse().map_err(|_| ApiError::bad_request(format!("query parameter {k}={v:?} is not valid: want an integer")))
}

/// `pods/log`'s options: the container asked for, and the kubelet's query.
#[derive(Debug, PartialEq)]
pub struct LogRequest {
    pub container: Option<String>,
    pub kubelet_query: Vec<(String, String)>,
}

/// Parses and validates PodLogOptions (`PodLogOptions "x" is invalid: ...` on bad values).
pub fn log_request(pod_name: &str, pairs: &[(String, String)]) -> Result<LogRequest, ApiError> {
    let mut container = None;
    let mut q = Vec::new();
    let mut errs = Vec::new();
    let (mut since_seconds, mut since_time) = (false, false);
    for (k, v) in pairs {
        match k.as_str() {
            "container" => container = Some(v.clone()),
            "follow" | "previous" | "timestamps" if flag(k, v)? => q.push((k.clone(), "true".to_string())),
            "tailLines" => {
                let n = int(k, v)?;
                if n < 0 {
                    errs.push(FieldError::invalid("tailLines", n.into(), "must be greater than or equal to 0"));
                }
                q.push((k.clone(), n.to_string()));
            }
            "limitBytes" => {
                let n = int(k, v)?;
                if n < 1 {
                    errs.push(FieldError::invalid("limitBytes", n.into(), "must be greater than 0"));
                }
                q.push((k.clone(), n.to_string()));
            }
            "sinceSeconds" => {
                let n = int(k, v)?;
                if n < 1 {
                    errs.push(FieldError::invalid("sinceSeconds", n.into(), "must be greater than 0"));
                }
                since_seconds = true;
                q.push((k.clone(), n.to_string()));
            }
            "sinceTime" => {
                let t = chrono::DateTime::parse_from_rfc3339(v).map_err(|_| ApiError::bad_request(format!("query parameter sinceTime={v:?} is not valid: want an RFC 3339 time such as 2024-05-01T12:00:00Z")))?;
                since_time = true;
                q.push((k.clone(), t.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
            }
            _ => {}
        }
    }
    if since_seconds && since_time {
        errs.push(FieldError::forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified"));
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid("", "PodLogOptions", pod_name, &errs));
    }
    Ok(LogRequest { container, kubelet_query: q })
}

/// `pods/exec`'s options: the container asked for, and the kubelet's query (the
/// command words in order, the streams as `1`).
pub fn exec_request(pairs: &[(String, String)]) -> Result<LogRequest, ApiError> {
    let mut container = None;
    let mut q = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "container" => container = Some(v.clone()),
            "command" => q.push(("command".to_string(), v.clone())),
            "stdin" | "stdout" | "stderr" | "tty" if flag(k, v)? => q.push((k.clone(), "1".to_string())),
            _ => {}
        }
    }
    Ok(LogRequest { container, kubelet_query: q })
}

pub fn encode(q: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(q).finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: &[&str], init: &[&str], annotations: Value) -> Value {
        let c = |n: &&str| json!({"name": n});
        json!({"metadata": {"name": "web", "annotations": annotations}, "spec": {"containers": containers.iter().map(c).collect::<Vec<_>>(), "initContainers": init.iter().map(c).collect::<Vec<_>>()}})
    }

    #[test]
    fn the_only_container_or_the_annotated_default_is_chosen() {
        assert_eq!(choose_container(&pod(&["a"], &[], json!({})), None).unwrap(), "a");
        let p = pod(&["a", "b"], &[], json!({DEFAULT_CONTAINER: "b"}));
        assert_eq!(choose_container(&p, None).unwrap(), "b");
        assert_eq!(choose_container(&p, Some("a")).unwrap(), "a");
    }

    #[test]
    fn ambiguous_or_unknown_containers_get_kube_apiservers_errors() {
        let e = choose_container(&pod(&["a", "b"], &[], json!({})), None).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (400, "a container name must be specified for pod web, choose one of: [a b]"));
        let e = choose_container(&pod(&["a", "b"], &["setup"], json!({})), None).unwrap_err();
        assert_eq!(e.message, "a container name must be specified for pod web, choose one of: [setup a b]");
        let e = choose_container(&pod(&["a"], &[], json!({})), Some("zz")).unwrap_err();
        assert_eq!(e.message, "container zz is not valid for pod web");
        // Init containers can be named explicitly.
        assert_eq!(choose_container(&pod(&["a"], &["setup"], json!({})), Some("setup")).unwrap(), "setup");
    }

    fn pairs(q: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    }

    #[test]
    fn log_options_become_the_kubelets_query() {
        let r = log_request("web", &pairs("container=c&follow=true&tailLines=1&timestamps=true&previous=false&sinceTime=2024-05-01T12:00:00%2B02:00")).unwrap();
        assert_eq!(r.container.as_deref(), Some("c"));
        assert_eq!(encode(&r.kubelet_query), "follow=true&tailLines=1&timestamps=true&sinceTime=2024-05-01T10%3A00%3A00Z");
    }

    #[test]
    fn invalid_log_options_are_refused_as_kube_apiserver_does() {
        let e = log_request("web", &pairs("tailLines=-1")).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (422, "PodLogOptions \"web\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"));
        let e = log_request("web", &pairs("sinceSeconds=10&sinceTime=2024-05-01T12:00:00Z")).unwrap_err();
        assert!(e.message.contains("at most one of `sinceTime` or `sinceSeconds` may be specified"), "{}", e.message);
        assert_eq!(log_request("web", &pairs("limitBytes=lots")).unwrap_err().code, 400);
    }

    #[test]
    fn exec_options_keep_the_command_words_in_order() {
        let r = exec_request(&pairs("command=sh&command=-c&command=echo+hi&stdin=true&stdout=true&tty=false&container=c")).unwrap();
        assert_eq!(encode(&r.kubelet_query), "command=sh&command=-c&command=echo+hi&stdin=1&stdout=1");
        assert_eq!(r.container.as_deref(), Some("c"));
    }
}

//! `GET /containerLogs/{namespace}/{pod}/{container}`: a container's log as the
//! kubelet serves it, with PodLogOptions from the query (`follow`, `previous`,
//! `timestamps`, `tailLines`, `limitBytes`, `sinceSeconds`, `sinceTime`).

use super::{text, Body, Kubelet};
use crate::container_log::read::{self, LogOptions};
use crate::container_log::{self};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use k8s_openapi::api::core::v1::Pod;
use std::time::Duration;

/// PodLogOptions from the query, and whether the previous instance is wanted.
pub fn parse_query(pairs: &[(String, String)], now: DateTime<Utc>) -> Result<(LogOptions, bool), (StatusCode, String)> {
    let mut o = LogOptions::default();
    let mut previous = false;
    let mut since_seconds = None;
    let bad = |k: &str, v: &str, want: &str| (StatusCode::BAD_REQUEST, format!("query parameter {k}={v:?} is not valid: want {want}"));
    let flag = |k: &str, v: &str| match v {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        _ => Err(bad(k, v, "true or false")),
    };
    let number = |k: &str, v: &str| v.parse::<i64>().map_err(|_| bad(k, v, "an integer"));
    for (k, v) in pairs {
        match k.as_str() {
            "follow" => o.follow = flag(k, v)?,
            "previous" => previous = flag(k, v)?,
            "timestamps" => o.timestamps = flag(k, v)?,
            "tailLines" => {
                let n = number(k, v)?;
                o.tail_lines = Some(u64::try_from(n).map_err(|_| (StatusCode::UNPROCESSABLE_ENTITY, format!("tailLines: Invalid value: {n}: must be greater than or equal to 0")))?);
            }
            "limitBytes" => {
                let n = number(k, v)?;
                o.limit_bytes = Some(u64::try_from(n).ok().filter(|n| *n > 0).ok_or((StatusCode::UNPROCESSABLE_ENTITY, format!("limitBytes: Invalid value: {n}: must be greater than 0")))?);
            }
            "sinceSeconds" => {
                let n = number(k, v)?;
                if n < 1 {
                    return Err((StatusCode::UNPROCESSABLE_ENTITY, format!("sinceSeconds: Invalid value: {n}: must be greater than 0")));
                }
                since_seconds = Some(n);
            }
            "sinceTime" => {
                let t = DateTime::parse_from_rfc3339(v).map_err(|_| bad(k, v, "an RFC 3339 time such as 2024-05-01T12:00:00Z"))?;
                o.since = Some(t.with_timezone(&Utc));
            }
            _ => {}
        }
    }
    if let Some(s) = since_seconds {
        if o.since.is_some() {
            return Err((StatusCode::UNPROCESSABLE_ENTITY, "at most one of `sinceTime` or `sinceSeconds` may be specified".into()));
        }
        o.since = Some(now - chrono::Duration::seconds(s));
    }
    Ok((o, previous))
}

pub async fn handle(k: &Kubelet, ns: &str, name: &str, container: &str, query: Option<&str>) -> Response<Body> {
    let Some(pod) = k.pods.get(ns, name) else { return text(StatusCode::NOT_FOUND, format!("pod {name:?} does not exist")) };
    if !has_container(&pod, container) {
        return text(StatusCode::NOT_FOUND, format!("container {container:?} not found in pod {name:?}"));
    }
    let (opts, previous) = match parse_query(&super::query_pairs(query), Utc::now()) {
        Ok(o) => o,
        Err((code, msg)) => return text(code, msg),
    };
    let log = crate::process::container_dir(&k.pod_dir(&pod), container).join("log");
    let path = if previous { container_log::previous_of(&log) } else { log };
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(_) if previous => return text(StatusCode::BAD_REQUEST, format!("previous terminated container {container:?} in pod {name:?} not found")),
        Err(_) => return text(StatusCode::BAD_REQUEST, format!("container {container:?} in pod {name:?} is waiting to start: {}", waiting_reason(&pod, container))),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    tokio::task::spawn_blocking(move || {
        let mut sink = |chunk: Vec<u8>| tx.blocking_send(Bytes::from(chunk)).is_ok();
        let closed = tx.clone();
        let mut idle = move || {
            std::thread::sleep(Duration::from_millis(100));
            !closed.is_closed()
        };
        if let Err(e) = read::stream(file, &opts, &mut sink, &mut idle) {
            tracing::warn!(log = %path.display(), %e, "reading a container log");
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), rx)) });
    Response::builder().status(StatusCode::OK).header(http::header::CONTENT_TYPE, "text/plain").body(StreamBody::new(body).boxed()).expect("valid response")
}

pub fn has_container(pod: &Pod, name: &str) -> bool {
    pod.spec.as_ref().is_some_and(|s| s.containers.iter().chain(s.init_containers.iter().flatten()).any(|c| c.name == name))
}

/// Why a container without a log has not started, from its status.
fn waiting_reason(pod: &Pod, container: &str) -> String {
    let status = pod.status.as_ref();
    let statuses = status.into_iter().flat_map(|s| s.container_statuses.iter().flatten().chain(s.init_container_statuses.iter().flatten()));
    statuses
        .filter(|s| s.name == container)
        .find_map(|s| s.state.as_ref()?.waiting.as_ref()?.reason.clone())
        .unwrap_or_else(|| "ContainerCreating".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn q(s: &str) -> Vec<(String, String)> {
        super::super::query_pairs(Some(s))
    }

    #[test]
    fn log_options_parse_from_the_query() {
        let now = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        let (o, prev) = parse_query(&q("follow=true&previous=1&timestamps=true&tailLines=5&limitBytes=10&sinceSeconds=60"), now).unwrap();
        assert!(prev && o.follow && o.timestamps);
        assert_eq!((o.tail_lines, o.limit_bytes, o.since), (Some(5), Some(10), Some(now - chrono::Duration::seconds(60))));
        let (o, _) = parse_query(&q("sinceTime=2024-05-01T11:00:00Z"), now).unwrap();
        assert_eq!(o.since, Some(Utc.with_ymd_and_hms(2024, 5, 1, 11, 0, 0).unwrap()));
    }

    #[test]
    fn bad_log_options_are_refused_with_the_parameter_named() {
        let now = Utc::now();
        assert_eq!(parse_query(&q("tailLines=-1"), now).unwrap_err().0, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(parse_query(&q("limitBytes=x"), now).unwrap_err().1.contains("limitBytes"));
        assert!(parse_query(&q("sinceSeconds=5&sinceTime=2024-05-01T11:00:00Z"), now).unwrap_err().1.contains("at most one"));
        assert_eq!(parse_query(&q("follow=maybe"), now).unwrap_err().0, StatusCode::BAD_REQUEST);
    }
}

//! watch: a chunked stream of JSON events, from a resourceVersion, with bookmarks.

use crate::api::{Api, Ctx};
use crate::handlers::read::Filter;
use crate::http::{Body, Want};
use crate::{objects, table};
use bytes::Bytes;
use http::{header, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use weft_api::{meta, ApiError};
use weft_store::{EventType, StoreError};

pub fn watch(api: Arc<Api>, ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let filter = Filter::from_query(&ctx)?;
    let rv = ctx.query.get("resourceVersion").cloned().unwrap_or_default();
    let send_initial = ctx.query.get("sendInitialEvents").is_some_and(|v| v == "true");
    let bookmarks = ctx.query.get("allowWatchBookmarks").is_some_and(|v| v == "true");
    let timeout = ctx
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800 + (uuid::Uuid::new_v4().as_u128() % 1800) as u64));
    let prefix = objects::prefix(&ctx.served, ctx.ns());
    // No resourceVersion (or "0"): start with the current state as ADDED events.
    let (initial, start) = if rv.is_empty() || rv == "0" || send_initial {
        let (items, rev) = api.store.list(&prefix);
        let items: Vec<_> = items.into_iter().filter(|o| filter.selects(o)).collect();
        let start = if send_initial && !rv.is_empty() && rv != "0" { rv.parse().unwrap_or(rev).max(rev) } else { rev };
        (items, start)
    } else {
        let n: u64 = rv.parse().map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}: send a resourceVersion from a previous response")))?;
        (Vec::new(), n)
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let started = api.store.watch(&prefix, start);
    tokio::spawn(async move {
        let w = match started {
            Ok(w) => w,
            Err(StoreError::Compacted { requested, oldest }) => {
                let e = ApiError::gone(format!("too old resource version: {requested} ({oldest})"));
                let _ = tx.send(frame("ERROR", &e.to_status())).await;
                return;
            }
            Err(e) => {
                let _ = tx.send(frame("ERROR", &ApiError::internal(e.to_string()).to_status())).await;
                return;
            }
        };
        let mut first = true;
        for o in initial {
            if tx.send(event_frame(&ctx, "ADDED", &o, &mut first)).await.is_err() {
                return;
            }
        }
        if send_initial {
            let b = bookmark(&ctx, start, true);
            if tx.send(b).await.is_err() {
                return;
            }
        }
        stream(api, ctx, filter, w, tx, timeout, bookmarks, start, first).await;
    });
    let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx).map_frames());
    Ok(Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(body.boxed())
        .expect("valid response"))
}

trait MapFrames {
    fn map_frames(self) -> impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + Sync + 'static;
}
impl MapFrames for tokio_stream::wrappers::ReceiverStream<Bytes> {
    fn map_frames(self) -> impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + Sync + 'static {
        use futures::StreamExt;
        // Frames that queued while the connection was busy go out as one write (one TLS
        // record, one chunk) rather than one each: under load this keeps delivery latency
        // flat instead of growing with the backlog.
        self.ready_chunks(256).map(|mut frames| {
            if frames.len() == 1 {
                return Ok(Frame::data(frames.pop().unwrap()));
            }
            let mut joined = bytes::BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
            for f in frames {
                joined.extend_from_slice(&f);
            }
            Ok(Frame::data(joined.freeze()))
        })
    }
}

#[allow(clippy::too_many_arguments)]
async fn stream(api: Arc<Api>, ctx: Ctx, filter: Filter, mut w: weft_store::Watch, tx: mpsc::Sender<Bytes>, timeout: Duration, bookmarks: bool, start: u64, mut first: bool) {
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(api.settings.bookmark_interval);
    tick.tick().await;
    let mut progress = start;
    loop {
        tokio::select! {
            _ = &mut deadline => return,
            _ = tx.closed() => return,
            _ = tick.tick(), if bookmarks => {
                let rev = progress.max(w.last_revision());
                if tx.send(bookmark(&ctx, rev, false)).await.is_err() { return; }
            }
            ev = w.next() => {
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(StoreError::Compacted { requested, oldest }) => {
                        let e = ApiError::gone(format!("too old resource version: {requested} ({oldest})"));
                        let _ = tx.send(frame("ERROR", &e.to_status())).await;
                        return;
                    }
                    Err(_) => return,
                };
                progress = ev.revision;
                let now_matches = filter.selects(&ev.object);
                let was_matching = ev.prev.as_ref().map(|p| filter.selects(p));
                // Moving into or out of the selection reads as ADDED or DELETED.
                let kind = match (ev.kind, was_matching, now_matches) {
                    (EventType::Deleted, _, true) => "DELETED",
                    (EventType::Deleted, _, false) => continue,
                    (EventType::Added, _, true) => "ADDED",
                    (EventType::Modified, Some(false), true) => "ADDED",
                    (EventType::Modified, _, true) => "MODIFIED",
                    (EventType::Modified, Some(true), false) => "DELETED",
                    _ => continue,
                };
                if tx.send(event_frame(&ctx, kind, &ev.object, &mut first)).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn frame(kind: &str, obj: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": kind, "object": obj})).unwrap();
    v.push(b'\n');
    Bytes::from(v)
}

fn event_frame(ctx: &Ctx, kind: &str, o: &weft_store::Object, first: &mut bool) -> Bytes {
    let converted = crate::handlers::read::present(ctx, o);
    match ctx.want {
        Want::Table => {
            let t = table::watch_table(ctx, &converted.unwrap_or_else(|| o.value()), *first);
            *first = false;
            frame(kind, &t)
        }
        Want::Metadata => frame(kind, &table::partial_metadata(&converted.unwrap_or_else(|| o.value()))),
        Want::Object => {
            if let Some(v) = converted {
                frame(kind, &v)
            } else {
                // The stored bytes as they are: no parse, no serialization per watcher.
                let raw = &o.raw;
                let mut b = Vec::with_capacity(raw.len() + 32);
                b.extend_from_slice(b"{\"type\":\"");
                b.extend_from_slice(kind.as_bytes());
                b.extend_from_slice(b"\",\"object\":");
                b.extend_from_slice(raw);
                b.extend_from_slice(b"}\n");
                Bytes::from(b)
            }
        }
    }
}

fn bookmark(ctx: &Ctx, rev: u64, initial_end: bool) -> Bytes {
    let mut m = json!({"resourceVersion": rev.to_string()});
    if initial_end {
        m["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let _ = meta::name;
    frame("BOOKMARK", &json!({"kind": ctx.served.info.kind, "apiVersion": ctx.served.info.api_version(), "metadata": m}))
}

//! The single writer: takes write requests in batches, checks preconditions, commits
//! the batch in one durable transaction, then publishes it (group commit).

use crate::db::{Change, Db};
use crate::object::{Event, EventType, Object};
use crate::state::State;
use crate::{Op, StoreError};
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, RwLock};
use tokio::sync::{broadcast, oneshot};

pub struct WriteRequest {
    pub ops: Vec<Op>,
    pub reply: oneshot::Sender<Result<Vec<Arc<Object>>, StoreError>>,
}

/// Most requests one commit takes; bounds latency under a flood.
const MAX_BATCH: usize = 2048;

pub fn spawn(
    db: Db,
    state: Arc<RwLock<State>>,
    events: broadcast::Sender<Arc<Event>>,
    retain: usize,
) -> Result<(Sender<WriteRequest>, std::thread::JoinHandle<()>), StoreError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("weft-store-writer".into())
        .spawn(move || run(db, state, events, rx, retain))
        .map_err(|e| StoreError::Io(e.to_string()))?;
    Ok((tx, handle))
}

/// A request's outcome before commit.
struct Staged {
    reply: oneshot::Sender<Result<Vec<Arc<Object>>, StoreError>>,
    result: Result<Vec<Arc<Event>>, StoreError>,
}

fn run(db: Db, state: Arc<RwLock<State>>, events: broadcast::Sender<Arc<Event>>, rx: Receiver<WriteRequest>, retain: usize) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let (mut revision, compacted, log_front) = {
            let st = state.read().unwrap();
            (st.revision, st.compacted, st.log.front().map(|e| e.revision))
        };
        // Objects as this batch sees them: the committed state plus earlier requests.
        let mut overlay: HashMap<String, Option<Arc<Object>>> = HashMap::new();
        let mut staged = Vec::with_capacity(batch.len());
        for req in batch {
            let result = {
                let st = state.read().unwrap();
                stage(&req.ops, &st, &mut overlay, &mut revision)
            };
            staged.push(Staged { reply: req.reply, result });
        }
        let new_events: Vec<Arc<Event>> = staged.iter().filter_map(|s| s.result.as_ref().ok()).flatten().cloned().collect();
        if new_events.is_empty() {
            for s in staged {
                let _ = s.reply.send(s.result.map(|_| vec![]));
            }
            continue;
        }
        // Compact the log so that it keeps at most `retain` events.
        let total = state.read().unwrap().log.len() + new_events.len();
        let (compact_from, compact_to) = if total > retain {
            let drop_n = total - retain;
            let from = log_front.unwrap_or(compacted + 1);
            let st = state.read().unwrap();
            let to = if drop_n <= st.log.len() { st.log[drop_n - 1].revision } else { new_events[drop_n - st.log.len() - 1].revision };
            (from, to)
        } else {
            (0, 0)
        };
        let changes: Vec<Change<'_>> = new_events
            .iter()
            .map(|e| Change { revision: e.revision, kind: e.kind, key: &e.object.key, raw: &e.object.raw })
            .collect();
        if let Err(err) = db.commit(&changes, revision, compact_from, compact_to) {
            tracing::error!(%err, "store commit failed; the batch is rejected");
            for s in staged {
                let _ = s.reply.send(Err(err.clone()));
            }
            continue;
        }
        {
            let mut st = state.write().unwrap();
            for e in &new_events {
                match e.kind {
                    EventType::Deleted => {
                        st.objects.remove(&e.object.key);
                    }
                    _ => {
                        st.objects.insert(e.object.key.clone(), e.object.clone());
                    }
                }
                st.log.push_back(e.clone());
                // Send while holding the lock: see Store::watch.
                let _ = events.send(e.clone());
            }
            while st.log.front().is_some_and(|e| compact_to > 0 && e.revision <= compact_to) {
                st.log.pop_front();
            }
            if compact_to > 0 {
                st.compacted = compact_to;
            }
            st.revision = revision;
        }
        for s in staged {
            let _ = s.reply.send(s.result.map(|evs| evs.iter().map(|e| e.object.clone()).collect()));
        }
    }
}

/// Checks one request's preconditions and builds its events; all its ops or none.
fn stage(ops: &[Op], st: &State, overlay: &mut HashMap<String, Option<Arc<Object>>>, revision: &mut u64) -> Result<Vec<Arc<Event>>, StoreError> {
    let mut local: HashMap<String, Option<Arc<Object>>> = HashMap::new();
    let mut evs = Vec::with_capacity(ops.len());
    let mut rev = *revision;
    for op in ops {
        let key = op.key();
        let current = local
            .get(key)
            .cloned()
            .or_else(|| overlay.get(key).cloned())
            .unwrap_or_else(|| st.objects.get(key).cloned());
        rev += 1;
        let ev = match op {
            Op::Create { value, .. } => {
                if current.is_some() {
                    return Err(StoreError::AlreadyExists(key.to_string()));
                }
                Event { revision: rev, kind: EventType::Added, object: Arc::new(Object::new(key.to_string(), rev, value.clone())), prev: None }
            }
            Op::Update { value, expect_revision, .. } => {
                let cur = current.ok_or_else(|| StoreError::NotFound(key.to_string()))?;
                check(key, &cur, *expect_revision)?;
                Event { revision: rev, kind: EventType::Modified, object: Arc::new(Object::new(key.to_string(), rev, value.clone())), prev: Some(cur) }
            }
            Op::Delete { expect_revision, .. } => {
                let cur = current.ok_or_else(|| StoreError::NotFound(key.to_string()))?;
                check(key, &cur, *expect_revision)?;
                Event { revision: rev, kind: EventType::Deleted, object: Arc::new(Object::new(key.to_string(), rev, cur.value())), prev: Some(cur) }
            }
        };
        let ev = Arc::new(ev);
        local.insert(key.to_string(), if ev.kind == EventType::Deleted { None } else { Some(ev.object.clone()) });
        evs.push(ev);
    }
    *revision = rev;
    overlay.extend(local);
    Ok(evs)
}

fn check(key: &str, cur: &Object, expect: Option<u64>) -> Result<(), StoreError> {
    match expect {
        Some(e) if e != cur.revision => Err(StoreError::Conflict { key: key.to_string(), expected: e, current: cur.revision }),
        _ => Ok(()),
    }
}

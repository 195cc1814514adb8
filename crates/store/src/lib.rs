//! weft's embedded store: the etcd of local mode.
//!
//! - Durable: a write is acknowledged only after its redb transaction has committed
//!   (fsync), so an acknowledged write survives `kill -9` and power loss.
//! - One global revision counter; every write gets the next revision, which becomes the
//!   object's `metadata.resourceVersion`.
//! - A watch log (persisted with the write, in the same transaction) lets a watch resume
//!   from any recent revision, also across restarts; older ones are compacted.
//! - Writers are batched (group commit): concurrent writes share one fsync.
//! - Reads are served from memory; the database is read only at start.

mod db;
mod error;
mod object;
mod state;
mod watch;
mod writer;

pub use error::StoreError;
pub use object::{Event, EventType, Object};
pub use watch::Watch;

use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, RwLock};
use tokio::sync::{broadcast, oneshot};

/// How many events the watch log keeps; a watch from an older revision gets
/// `StoreError::Compacted` (the API's `410 Gone`).
pub const DEFAULT_LOG_RETAIN: usize = 50_000;

/// One write. Preconditions make read-modify-write safe: `expect_revision` must equal
/// the stored object's revision (optimistic concurrency).
#[derive(Debug, Clone)]
pub enum Op {
    Create { key: String, value: Value },
    Update { key: String, value: Value, expect_revision: Option<u64> },
    Delete { key: String, expect_revision: Option<u64> },
}

impl Op {
    pub fn key(&self) -> &str {
        match self {
            Op::Create { key, .. } | Op::Update { key, .. } | Op::Delete { key, .. } => key,
        }
    }
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    state: Arc<RwLock<state::State>>,
    writes: Option<std::sync::mpsc::Sender<writer::WriteRequest>>,
    events: broadcast::Sender<Arc<Event>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Inner {
    /// Closing the queue ends the writer; joining it releases the database file, so
    /// the same path can be opened again at once.
    fn drop(&mut self) {
        self.writes.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl Store {
    /// Opens (or creates) the store in `path` (a file), loading every object and the
    /// retained watch log into memory.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with(path, DEFAULT_LOG_RETAIN)
    }

    pub fn open_with(path: &Path, log_retain: usize) -> Result<Store, StoreError> {
        let (db, loaded) = db::Db::open(path)?;
        let state = Arc::new(RwLock::new(state::State::from_loaded(loaded, log_retain)));
        let (events, _) = broadcast::channel(16 * 1024);
        let (writes, writer) = writer::spawn(db, state.clone(), events.clone(), log_retain)?;
        Ok(Store { inner: Arc::new(Inner { state, writes: Some(writes), events, writer: Some(writer) }) })
    }

    /// The newest revision: the resourceVersion of a consistent list.
    pub fn revision(&self) -> u64 {
        self.inner.state.read().unwrap().revision
    }

    /// The oldest revision a watch may start from.
    pub fn oldest_watchable(&self) -> u64 {
        self.inner.state.read().unwrap().compacted
    }

    pub fn get(&self, key: &str) -> Option<Arc<Object>> {
        self.inner.state.read().unwrap().objects.get(key).cloned()
    }

    /// Every object whose key starts with `prefix`, in key order, with the revision of
    /// this snapshot.
    pub fn list(&self, prefix: &str) -> (Vec<Arc<Object>>, u64) {
        let st = self.inner.state.read().unwrap();
        let items = st.objects.range(prefix.to_string()..).take_while(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v.clone()).collect();
        (items, st.revision)
    }

    /// Applies `ops` atomically (all or none), durably, and returns the objects written
    /// (for a delete: the last state, stamped with the deletion's revision).
    pub async fn write(&self, ops: Vec<Op>) -> Result<Vec<Arc<Object>>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .writes
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(writer::WriteRequest { ops, reply: tx })
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    pub async fn create(&self, key: &str, value: Value) -> Result<Arc<Object>, StoreError> {
        one(self.write(vec![Op::Create { key: key.into(), value }]).await)
    }

    pub async fn update(&self, key: &str, value: Value, expect_revision: Option<u64>) -> Result<Arc<Object>, StoreError> {
        one(self.write(vec![Op::Update { key: key.into(), value, expect_revision }]).await)
    }

    pub async fn delete(&self, key: &str, expect_revision: Option<u64>) -> Result<Arc<Object>, StoreError> {
        one(self.write(vec![Op::Delete { key: key.into(), expect_revision }]).await)
    }

    /// Events for keys under `prefix` with revision > `after`, then live ones.
    pub fn watch(&self, prefix: &str, after: u64) -> Result<Watch, StoreError> {
        let st = self.inner.state.read().unwrap();
        if after < st.compacted {
            return Err(StoreError::Compacted { requested: after, oldest: st.compacted });
        }
        // Subscribe under the read lock: the writer publishes under the write lock, so
        // no event falls between the backlog and the live stream.
        let rx = self.inner.events.subscribe();
        let backlog = st.events_after(after, prefix);
        Ok(Watch::new(prefix.to_string(), after, backlog, rx, self.inner.state.clone()))
    }
}

fn one(r: Result<Vec<Arc<Object>>, StoreError>) -> Result<Arc<Object>, StoreError> {
    r.map(|mut v| v.pop().expect("one op gives one object"))
}

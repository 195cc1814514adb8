//! The redb side: three tables written in one transaction per batch.

use crate::object::{EventType, Object};
use crate::StoreError;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;

/// key → the object's JSON (with its resourceVersion).
const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
/// revision → an encoded event (the watch log).
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// "revision" → the newest revision; "compacted" → the oldest watchable revision.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

pub struct Db {
    db: Database,
}

/// What the database held at start.
pub struct Loaded {
    pub revision: u64,
    pub compacted: u64,
    pub objects: Vec<Object>,
    /// (revision, type, object) in ascending revision.
    pub log: Vec<(u64, EventType, Object)>,
}

/// One change to persist.
pub struct Change<'a> {
    pub revision: u64,
    pub kind: EventType,
    pub key: &'a str,
    /// The new state; for a delete, the last state stamped with the delete revision.
    pub raw: &'a [u8],
}

/// redb's page cache: enough for the tree's inner pages and the recent log.
const CACHE_BYTES: usize = 32 << 20;

impl Db {
    pub fn open(path: &Path) -> Result<(Db, Loaded), StoreError> {
        // The store keeps every object in memory already; redb's page cache only needs
        // the hot B-tree pages (its 1 GiB default would be resident memory for nothing).
        let db = Database::builder().set_cache_size(CACHE_BYTES).create(path)?;
        {
            // Make sure every table exists, so that reads never meet a missing one.
            let w = db.begin_write()?;
            w.open_table(OBJECTS)?;
            w.open_table(LOG)?;
            w.open_table(META)?;
            w.commit()?;
        }
        let r = db.begin_read()?;
        let meta = r.open_table(META)?;
        let revision = meta.get("revision")?.map(|g| g.value()).unwrap_or(0);
        let compacted = meta.get("compacted")?.map(|g| g.value()).unwrap_or(0);
        let mut objects = Vec::new();
        for entry in r.open_table(OBJECTS)?.iter()? {
            let (k, v) = entry?;
            match Object::from_raw(k.value().to_string(), v.value()) {
                Some(o) => objects.push(o),
                None => tracing::error!(key = k.value(), "unreadable object in the store; skipped"),
            }
        }
        let mut log = Vec::new();
        for entry in r.open_table(LOG)?.iter()? {
            let (rev, v) = entry?;
            if let Some((kind, key, raw)) = decode_event(v.value()) {
                if let Some(o) = Object::from_raw(key, raw) {
                    log.push((rev.value(), kind, o));
                }
            }
        }
        drop(meta);
        drop(r);
        Ok((Db { db }, Loaded { revision, compacted, objects, log }))
    }

    /// Persists a batch durably: objects, log entries, the new revision, and the
    /// compaction of log entries at or below `compact_to`.
    pub fn commit(&self, changes: &[Change<'_>], revision: u64, compact_from: u64, compact_to: u64) -> Result<(), StoreError> {
        let w = self.db.begin_write()?;
        {
            let mut objects = w.open_table(OBJECTS)?;
            let mut log = w.open_table(LOG)?;
            let mut meta = w.open_table(META)?;
            for c in changes {
                match c.kind {
                    EventType::Deleted => {
                        objects.remove(c.key)?;
                    }
                    _ => {
                        objects.insert(c.key, c.raw)?;
                    }
                }
                log.insert(c.revision, encode_event(c.kind, c.key, c.raw).as_slice())?;
            }
            if compact_to > compact_from {
                for rev in compact_from..=compact_to {
                    log.remove(rev)?;
                }
                meta.insert("compacted", compact_to)?;
            }
            meta.insert("revision", revision)?;
        }
        w.commit()?;
        Ok(())
    }
}

fn encode_event(kind: EventType, key: &str, raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + key.len() + raw.len());
    out.push(kind.code());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(raw);
    out
}

fn decode_event(b: &[u8]) -> Option<(EventType, String, &[u8])> {
    let kind = EventType::from_code(*b.first()?)?;
    let len = u32::from_le_bytes(b.get(1..5)?.try_into().ok()?) as usize;
    let key = std::str::from_utf8(b.get(5..5 + len)?).ok()?.to_string();
    Some((kind, key, b.get(5 + len..)?))
}

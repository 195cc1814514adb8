use serde_json::json;
use weft_store::{EventType, Store, StoreError};

fn pod(name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}})
}

#[tokio::test]
async fn writes_get_increasing_revisions_and_preconditions_hold() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("db")).unwrap();
    let a = s.create("/pods/default/a", pod("a")).await.unwrap();
    let b = s.create("/pods/default/b", pod("b")).await.unwrap();
    assert!(b.revision > a.revision);
    assert_eq!(a.value()["metadata"]["resourceVersion"], a.revision.to_string());
    assert_eq!(s.create("/pods/default/a", pod("a")).await.unwrap_err(), StoreError::AlreadyExists("/pods/default/a".into()));
    let err = s.update("/pods/default/a", pod("a"), Some(a.revision + 100)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }));
    let a2 = s.update("/pods/default/a", pod("a"), Some(a.revision)).await.unwrap();
    assert_eq!(s.get("/pods/default/a").unwrap().revision, a2.revision);
    let (items, rev) = s.list("/pods/default/");
    assert_eq!(items.len(), 2);
    assert_eq!(rev, a2.revision);
    let d = s.delete("/pods/default/b", None).await.unwrap();
    assert!(d.revision > a2.revision);
    assert!(s.get("/pods/default/b").is_none());
}

#[tokio::test]
async fn acknowledged_writes_and_the_watch_log_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let first;
    {
        let s = Store::open(&path).unwrap();
        first = s.create("/pods/default/a", pod("a")).await.unwrap().revision;
        s.create("/pods/default/b", pod("b")).await.unwrap();
        s.delete("/pods/default/a", None).await.unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert!(s.get("/pods/default/a").is_none());
    assert!(s.get("/pods/default/b").is_some());
    let mut w = s.watch("/pods/", first).unwrap();
    let e1 = w.next().await.unwrap();
    assert_eq!(e1.kind, EventType::Added);
    assert_eq!(e1.object.key, "/pods/default/b");
    let e2 = w.next().await.unwrap();
    assert_eq!(e2.kind, EventType::Deleted);
    assert_eq!(e2.prev.as_ref().unwrap().revision, first);
    // Live events continue after the backlog.
    s.create("/pods/default/c", pod("c")).await.unwrap();
    assert_eq!(w.next().await.unwrap().object.key, "/pods/default/c");
}

#[tokio::test]
async fn concurrent_writers_are_batched_without_losing_any() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("db")).unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                s.create(&format!("/pods/default/p-{t}-{i}"), pod("p")).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.list("/pods/").0.len(), 800);
    assert_eq!(s.revision(), 800);
}

#[tokio::test]
async fn a_watch_from_a_compacted_revision_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(&dir.path().join("db"), 10).unwrap();
    for i in 0..30 {
        s.create(&format!("/cm/default/c{i}"), pod("c")).await.unwrap();
    }
    assert!(matches!(s.watch("/cm/", 1), Err(StoreError::Compacted { .. })));
    let oldest = s.oldest_watchable();
    assert_eq!(oldest, 20);
    let mut w = s.watch("/cm/", oldest).unwrap();
    assert_eq!(w.next().await.unwrap().revision, 21);
}

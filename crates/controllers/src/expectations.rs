//! Writes a controller made that its informer has not shown it yet. Acting on a
//! cache that lags its own writes would create twice or delete twice, so a key
//! with unobserved writes waits (as client-go's ControllerExpectations).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Unobserved writes older than this are forgotten: the object may have been
/// created and deleted by others before the informer saw it.
const TTL: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Pending {
    /// Names that must appear in the cache.
    created: HashMap<String, Instant>,
    /// Names that must leave the cache.
    deleted: HashMap<String, Instant>,
    /// Names whose cached resourceVersion must move past this one.
    replaced: HashMap<String, (String, Instant)>,
}

pub struct Expectations<K> {
    pending: Mutex<HashMap<K, Pending>>,
}

impl<K: Eq + Hash + Clone> Default for Expectations<K> {
    fn default() -> Self {
        Expectations { pending: Mutex::new(HashMap::new()) }
    }
}

impl<K: Eq + Hash + Clone> Expectations<K> {
    pub fn created(&self, key: &K, name: &str) {
        self.pending.lock().unwrap().entry(key.clone()).or_default().created.insert(name.into(), Instant::now());
    }

    pub fn deleted(&self, key: &K, name: &str) {
        self.pending.lock().unwrap().entry(key.clone()).or_default().deleted.insert(name.into(), Instant::now());
    }

    pub fn replaced(&self, key: &K, name: &str, old_resource_version: &str) {
        self.pending
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_default()
            .replaced
            .insert(name.into(), (old_resource_version.into(), Instant::now()));
    }

    /// True when the cache shows every write made for `key`. `cached` gives the
    /// cached resourceVersion of a name, or None when it is not cached.
    pub fn satisfied(&self, key: &K, cached: impl Fn(&str) -> Option<String>) -> bool {
        let mut all = self.pending.lock().unwrap();
        let Some(p) = all.get_mut(key) else { return true };
        let fresh = |t: &Instant| t.elapsed() < TTL;
        p.created.retain(|name, t| fresh(t) && cached(name).is_none());
        p.deleted.retain(|name, t| fresh(t) && cached(name).is_some());
        p.replaced.retain(|name, (rv, t)| fresh(t) && cached(name).as_deref() == Some(rv.as_str()));
        let done = p.created.is_empty() && p.deleted.is_empty() && p.replaced.is_empty();
        if done {
            all.remove(key);
        }
        done
    }

    pub fn forget(&self, key: &K) {
        self.pending.lock().unwrap().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_hold_until_the_cache_shows_each_write() {
        let e = Expectations::default();
        e.created(&"svc", "a");
        e.deleted(&"svc", "b");
        e.replaced(&"svc", "c", "5");
        let cache = |a: bool, b: bool, c: &str| {
            let c = c.to_string();
            move |n: &str| match n {
                "a" => a.then(|| "1".to_string()),
                "b" => b.then(|| "1".to_string()),
                _ => Some(c.clone()),
            }
        };
        assert!(!e.satisfied(&"svc", cache(false, true, "5")));
        assert!(!e.satisfied(&"svc", cache(true, true, "6")));
        assert!(e.satisfied(&"svc", cache(true, false, "6")));
        assert!(e.satisfied(&"other", cache(false, false, "0")));
    }
}

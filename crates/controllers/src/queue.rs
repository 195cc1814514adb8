//! A work queue as client-go's: a key is queued at most once, a failed key is
//! retried with exponential backoff, and a key can be requeued after a delay.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

pub struct Queue<K> {
    state: Arc<Mutex<State<K>>>,
    notify: Arc<Notify>,
}

impl<K> Clone for Queue<K> {
    fn clone(&self) -> Self {
        Queue { state: self.state.clone(), notify: self.notify.clone() }
    }
}

struct State<K> {
    order: VecDeque<K>,
    queued: HashSet<K>,
    failures: HashMap<K, u32>,
}

impl<K: Clone + Eq + Hash + Send + 'static> Default for Queue<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Eq + Hash + Send + 'static> Queue<K> {
    pub fn new() -> Self {
        Queue {
            state: Arc::new(Mutex::new(State { order: VecDeque::new(), queued: HashSet::new(), failures: HashMap::new() })),
            notify: Arc::new(Notify::new()),
        }
    }

    pub fn add(&self, key: K) {
        let mut s = self.state.lock().unwrap();
        if s.queued.insert(key.clone()) {
            s.order.push_back(key);
            drop(s);
            self.notify.notify_one();
        }
    }

    pub fn add_after(&self, key: K, delay: Duration) {
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(key);
        });
    }

    /// Requeues a key that failed, waiting longer after each consecutive failure.
    pub fn retry(&self, key: K) {
        let n = {
            let mut s = self.state.lock().unwrap();
            let n = s.failures.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        self.add_after(key, backoff(n));
    }

    /// Clears a key's failure count after it succeeded.
    pub fn forget(&self, key: &K) {
        self.state.lock().unwrap().failures.remove(key);
    }

    pub async fn next(&self) -> K {
        loop {
            let notified = self.notify.notified();
            if let Some(key) = {
                let mut s = self.state.lock().unwrap();
                let key = s.order.pop_front();
                if let Some(k) = &key {
                    s.queued.remove(k);
                }
                key
            } {
                return key;
            }
            notified.await;
        }
    }

    /// Serves keys one at a time to `reconcile`, forever. `Ok(Some(d))` asks to
    /// look again after `d` (a time-based condition); errors are retried.
    pub async fn serve<F, Fut>(&self, name: &'static str, mut reconcile: F)
    where
        F: FnMut(K) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Option<Duration>>>,
        K: std::fmt::Debug,
    {
        loop {
            let key = self.next().await;
            match reconcile(key.clone()).await {
                Ok(again) => {
                    self.forget(&key);
                    if let Some(d) = again {
                        self.add_after(key, d);
                    }
                }
                Err(err) => {
                    tracing::debug!(controller = name, ?key, "sync failed: {err:#}");
                    self.retry(key);
                }
            }
        }
    }
}

/// 5ms doubling to at most 5 minutes, as client-go's default item backoff.
fn backoff(failures: u32) -> Duration {
    let ms = 5u64.saturating_mul(1u64 << failures.min(20).saturating_sub(1));
    Duration::from_millis(ms.min(300_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_added_twice_before_it_is_served_is_served_once() {
        let q = Queue::new();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.next().await, "a");
        assert_eq!(q.next().await, "b");
        q.add("a");
        assert_eq!(q.next().await, "a");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(5));
        assert_eq!(backoff(2), Duration::from_millis(10));
        assert_eq!(backoff(40), Duration::from_secs(300));
    }
}

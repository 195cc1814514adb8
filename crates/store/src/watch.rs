//! A watch: the logged backlog, then live events; a watcher that falls behind the
//! broadcast catches up from the log instead of losing events.

use crate::object::Event;
use crate::state::State;
use crate::StoreError;
use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use tokio::sync::broadcast::{self, error::RecvError};

pub struct Watch {
    prefix: String,
    last: u64,
    backlog: VecDeque<Arc<Event>>,
    rx: broadcast::Receiver<Arc<Event>>,
    state: Arc<RwLock<State>>,
}

impl Watch {
    pub(crate) fn new(prefix: String, after: u64, backlog: Vec<Arc<Event>>, rx: broadcast::Receiver<Arc<Event>>, state: Arc<RwLock<State>>) -> Watch {
        Watch { prefix, last: after, backlog: backlog.into(), rx, state }
    }

    /// The revision of the last event delivered (or the start revision).
    pub fn last_revision(&self) -> u64 {
        self.last
    }

    /// The next event under the prefix. Errors only when the watcher fell so far behind
    /// that the log no longer holds what it missed (the client must re-list: 410).
    pub async fn next(&mut self) -> Result<Arc<Event>, StoreError> {
        loop {
            if let Some(e) = self.backlog.pop_front() {
                if e.revision > self.last {
                    self.last = e.revision;
                    return Ok(e);
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(e) => {
                    if e.revision > self.last && e.object.key.starts_with(&self.prefix) {
                        self.last = e.revision;
                        return Ok(e);
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let st = self.state.read().unwrap();
                    if self.last < st.compacted {
                        return Err(StoreError::Compacted { requested: self.last, oldest: st.compacted });
                    }
                    self.rx = self.rx.resubscribe();
                    self.backlog = st.events_after(self.last, &self.prefix).into();
                }
                Err(RecvError::Closed) => return Err(StoreError::Closed),
            }
        }
    }
}

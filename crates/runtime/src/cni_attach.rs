//! Pod network attaches (CNI ADD) on a few threads of their own, as many as the
//! machine has cores, instead of on every pod's task at once.
//!
//! When 100 pods start together, all their ADDs contend for the kernel's RTNL
//! lock and for the IPAM store's lock; running them at most one per core keeps
//! each ADD short and gets the last pod its address no later. Each thread
//! drives its ADDs on a current-thread runtime (netlink replies wake the same
//! thread, not another worker) over one connection to the node netns, opened
//! on its first ADD and kept.
//!
//! `WEFT_CNI_WORKERS=<n>` sets the number of threads; `0` runs each ADD on the
//! pod's own task, all at once (for comparing the two).

use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use weft_cni::{AttachRequest, CniError, CniResult, NetConfig, Node};

/// What an ADD took: waiting for a thread, and the ADD itself.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub waited: Duration,
    pub took: Duration,
}

type Reply = (Result<CniResult, CniError>, Timing);

struct Job {
    req: AttachRequest,
    conf: NetConfig,
    queued: Instant,
    reply: oneshot::Sender<Reply>,
}

pub struct Attacher {
    jobs: Option<mpsc::Sender<Job>>,
}

impl Attacher {
    /// Threads per `WEFT_CNI_WORKERS`, else one per core.
    pub fn from_env(node: &str) -> Attacher {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let n = std::env::var("WEFT_CNI_WORKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(cores);
        Attacher::new(node, n)
    }

    /// `threads == 0`: no threads, each ADD runs on its caller's task.
    pub fn new(node: &str, threads: usize) -> Attacher {
        if threads == 0 {
            return Attacher { jobs: None };
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("cni-add-{i}"))
                .spawn(move || serve(&rx));
            if let Err(e) = spawned {
                tracing::warn!(node, error = %e, "cannot start a CNI ADD thread; ADDs run on the pods' tasks");
                return Attacher { jobs: None };
            }
        }
        Attacher { jobs: Some(tx) }
    }

    pub async fn attach(&self, req: AttachRequest, conf: &NetConfig) -> Reply {
        let queued = Instant::now();
        let Some(jobs) = &self.jobs else {
            let r = weft_cni::attach(&req, conf).await;
            return (r, Timing { waited: Duration::ZERO, took: queued.elapsed() });
        };
        let (reply, rx) = oneshot::channel();
        let job = Job { req, conf: conf.clone(), queued, reply };
        if jobs.send(job).is_err() {
            return (Err(CniError::new(weft_cni::code::IO, "the CNI ADD threads are gone")), Timing { waited: queued.elapsed(), took: Duration::ZERO });
        }
        rx.await.unwrap_or_else(|_| (Err(CniError::new(weft_cni::code::IO, "a CNI ADD thread stopped mid-ADD")), Timing { waited: queued.elapsed(), took: Duration::ZERO }))
    }
}

/// One thread: takes jobs until the [`Attacher`] is dropped.
fn serve(rx: &Mutex<mpsc::Receiver<Job>>) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start a runtime for CNI ADDs");
            return;
        }
    };
    // The connection to the node netns, kept across ADDs (one node per Attacher).
    let mut node: Option<Node> = None;
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let start = Instant::now();
        let result = rt.block_on(async {
            if node.is_none() {
                node = Some(Node::open(job.req.host_netns.as_deref())?);
            }
            let n = node.as_ref().expect("just opened");
            weft_cni::attach_on(n, &job.req, &job.conf).await
        });
        if result.is_err() {
            // Open afresh next time: the error may be the connection's.
            node = None;
        }
        let timing = Timing { waited: start - job.queued, took: start.elapsed() };
        let _ = job.reply.send((result, timing));
    }
}

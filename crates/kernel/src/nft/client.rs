//! The nf_tables client: opened in a network namespace, it commits batches
//! atomically and maps kernel errors back to the operation that caused them.
//! Reading back is in `read.rs`.

use super::batch::Batch;
use super::batch_encode;
use super::socket::{kernel_error, NfSocket};
use crate::error::{Error, Result};
use crate::netns::Netns;

/// A connection to nf_tables in one network namespace. Blocking: from async
/// code, call it inside `spawn_blocking` (a commit of 100k elements takes
/// a fraction of a second, see examples/nft_bench.rs).
pub struct Nft {
    pub(crate) sock: NfSocket,
}

/// A weight (elements, or other operations, count one each) per transaction
/// that keeps one kernel transaction under a second on a small machine
/// (examples/nft_bench.rs: a 130,000-weight proxy ruleset loads in about
/// 1 s in one transaction, its longest 50,000 part in about 0.5 s).
pub const DEFAULT_PART_WEIGHT: usize = 50_000;

impl Nft {
    /// A client for nf_tables in `ns`.
    pub fn open(ns: &Netns) -> Result<Nft> {
        Ok(Nft { sock: NfSocket::open(Some(ns))? })
    }

    /// A client for the calling thread's netns.
    pub fn current() -> Result<Nft> {
        Ok(Nft { sock: NfSocket::open(None)? })
    }

    /// Commits `batch` as one transaction: all of it takes effect, or none
    /// does. The error names the operation the kernel refused (and the
    /// kernel's reason, when it gives one).
    pub fn commit(&mut self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let first = self.sock.seqs(0);
        let enc = batch_encode::encode(batch, first)?;
        let count = enc.msgs.len() as u32 + 2;
        self.sock.seqs(count);
        let last = first + count - 1;
        let object_text = format!("nftables batch of {} operations in {}", batch.len(), self.sock.place);
        let object = || object_text.clone();
        let replies = self
            .sock
            .transact(&enc.bytes, first, last, enc.msgs.len())
            .map_err(|e| Error::new("commit", object(), e))?;
        let Some(worst) = replies.iter().min_by_key(|r| r.seq) else {
            return Ok(());
        };
        let what = match enc.describe(worst.seq) {
            Some(d) => d.to_string(),
            None if worst.errno == nix::libc::ERESTART => {
                let gen = batch.generation.map_or(String::new(), |g| format!(" {g}"));
                return Err(kernel_error("commit", object(), worst.errno, Some(format!("the ruleset is no longer at generation{gen}: re-read it and retry"))));
            }
            None => "the batch as a whole".to_string(),
        };
        let mut detail = worst.msg.clone();
        if replies.len() > 1 {
            let others: Vec<&str> = replies.iter().filter(|r| r.seq != worst.seq).filter_map(|r| enc.describe(r.seq)).take(3).collect();
            let more = format!("{} more refused: {}", replies.len() - 1, others.join("; "));
            detail = Some(match detail {
                Some(d) => format!("{d}; {more}"),
                None => more,
            });
        }
        Err(kernel_error("commit", format!("{what} (nothing in the batch was applied) in {}", self.sock.place), worst.errno, detail))
    }

    /// Commits a batch as several transactions of at most `max_weight` each
    /// (see [`Batch::split`]), in order; returns how many. On an error the
    /// parts before it stay committed, and the error says which part failed.
    pub fn commit_in_parts(&mut self, batch: &Batch, max_weight: usize) -> Result<usize> {
        let parts = batch.split(max_weight);
        let n = parts.len();
        for (i, part) in parts.iter().enumerate() {
            if let Err(e) = self.commit(part) {
                let note = format!("part {} of {n}; parts before it are committed", i + 1);
                return Err(e.with_detail(Some(note)));
            }
        }
        Ok(n)
    }
}

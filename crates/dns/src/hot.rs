//! Answers already encoded: the zone's response to a request, kept under the request's
//! exact bytes (everything after the id: flags, question with its case, EDNS), so a
//! repeated question skips decoding, the answer function and encoding. Entries are
//! valid for one generation of zone and configuration; any change makes them misses.
//! Answers with several addresses are not kept (they rotate).

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

const SHARDS: usize = 16;
/// Per shard; a full shard drops an arbitrary entry.
const PER_SHARD: usize = 4096;
/// Requests longer than this are not kept (a question with EDNS is ~60 bytes).
const MAX_KEY: usize = 300;

struct Entry {
    generation: u64,
    /// Forwarded answers age: kept at most until their TTLs would tick.
    expires: Option<Instant>,
    /// Round-robin on the encoded bytes: (start, record size, count) of a run of
    /// same-size address records (see [`rotation`]).
    rotate: Option<(usize, usize, usize)>,
    response: Vec<u8>,
    qtype: RecordType,
    rcode: ResponseCode,
}

pub struct Hot {
    shards: Vec<Mutex<HashMap<Box<[u8]>, Entry>>>,
    turn: AtomicUsize,
}

pub struct Hit {
    /// A forwarded answer (from the cache), not the zone's.
    pub forwarded: bool,
    pub response: Vec<u8>,
    pub qtype: RecordType,
    pub rcode: ResponseCode,
}

impl Default for Hot {
    fn default() -> Self {
        Hot { shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(), turn: AtomicUsize::new(0) }
    }
}

fn shard_of(key: &[u8]) -> usize {
    // FNV-1a over the question: cheap, and the map hashes again anyway.
    let mut h: u32 = 0x811c_9dc5;
    for b in key {
        h = (h ^ *b as u32).wrapping_mul(0x0100_0193);
    }
    h as usize % SHARDS
}

/// The part of a request that decides its response: all but the id.
fn key(request: &[u8]) -> Option<&[u8]> {
    (request.len() >= 12 && request.len() <= MAX_KEY).then(|| &request[2..])
}

impl Hot {
    pub fn get(&self, request: &[u8], generation: u64, now: Instant) -> Option<Hit> {
        let k = key(request)?;
        let s = self.shards[shard_of(k)].lock().unwrap_or_else(|p| p.into_inner());
        let e = s.get(k).filter(|e| e.generation == generation && e.expires.is_none_or(|t| now < t))?;
        let mut response = e.response.clone();
        response[..2].copy_from_slice(&request[..2]);
        if let Some((start, size, n)) = e.rotate {
            let k = self.turn.fetch_add(1, Ordering::Relaxed) % n;
            response[start..start + size * n].rotate_left(k * size);
        }
        Some(Hit { forwarded: e.expires.is_some(), response, qtype: e.qtype, rcode: e.rcode })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn put(&self, request: &[u8], generation: u64, expires: Option<Instant>, rotate: Option<(usize, usize, usize)>, response: &[u8], qtype: RecordType, rcode: ResponseCode) {
        let Some(k) = key(request) else { return };
        if response.len() < 12 {
            return;
        }
        let mut s = self.shards[shard_of(k)].lock().unwrap_or_else(|p| p.into_inner());
        if s.len() >= PER_SHARD && !s.contains_key(k) {
            let stale: Vec<Box<[u8]>> = s.iter().filter(|(_, e)| e.generation != generation).map(|(k, _)| k.clone()).take(64).collect();
            if stale.is_empty() {
                if let Some(v) = s.keys().next().cloned() {
                    s.remove(&v);
                }
            }
            for v in stale {
                s.remove(&v);
            }
        }
        s.insert(k.into(), Entry { generation, expires, rotate, response: response.to_vec(), qtype, rcode });
    }
}

/// Where the answer section of an encoded response is a run of `count` A (or AAAA)
/// records whose owner is the question (a pointer to offset 12): each is then exactly
/// 16 (or 28) bytes, and rotating them as byte chunks is round-robin.
pub fn rotation(response: &[u8], count: usize, qtype: RecordType) -> Option<(usize, usize, usize)> {
    let (size, code) = match qtype {
        RecordType::A => (16, 1u8),
        RecordType::AAAA => (28, 28u8),
        _ => return None,
    };
    if count < 2 || u16::from_be_bytes([*response.get(6)?, *response.get(7)?]) as usize != count {
        return None;
    }
    let mut i = 12;
    loop {
        let l = *response.get(i)? as usize;
        if l == 0 {
            break;
        }
        if l & 0xc0 != 0 {
            return None;
        }
        i += 1 + l;
    }
    let start = i + 1 + 4;
    for r in 0..count {
        let at = start + r * size;
        let rr = response.get(at..at + size)?;
        if rr[..4] != [0xc0, 0x0c, 0, code] || u16::from_be_bytes([rr[10], rr[11]]) as usize != size - 12 {
            return None;
        }
    }
    Some((start, size, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_carries_the_new_id_and_a_new_generation_misses() {
        let h = Hot::default();
        let req = [0xaa, 0xbb, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'f', b'o', b'o', 0, 0, 1, 0, 1];
        let resp = [0xaa, 0xbb, 0x85, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
        let now = Instant::now();
        h.put(&req, 7, None, None, &resp, RecordType::A, ResponseCode::NoError);
        let mut again = req;
        again[..2].copy_from_slice(&[0x12, 0x34]);
        let hit = h.get(&again, 7, now).unwrap();
        assert_eq!(&hit.response[..4], &[0x12, 0x34, 0x85, 0x80]);
        assert!(h.get(&again, 8, now).is_none(), "the zone changed");
        let mut other = req;
        other[13] = b'F';
        assert!(h.get(&other, 7, now).is_none(), "case is part of the key (answers keep it)");
        h.put(&req, 7, Some(now + std::time::Duration::from_millis(500)), None, &resp, RecordType::A, ResponseCode::NoError);
        assert!(h.get(&req, 7, now).is_some());
        assert!(h.get(&req, 7, now + std::time::Duration::from_secs(1)).is_none(), "a forwarded answer expires");
    }
}

#[cfg(test)]
mod rotation_tests {
    use super::*;
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RData, Record};
    use std::net::Ipv4Addr;

    #[test]
    fn encoded_address_runs_rotate_as_whole_records() {
        let name = Name::from_ascii("Hdls.testns.svc.cluster.local.").unwrap();
        let mut m = Message::response(1, hickory_proto::op::OpCode::Query);
        m.add_query(Query::query(name.clone(), RecordType::A));
        for i in 1..=3 {
            m.answers.push(Record::from_rdata(name.clone(), 5, RData::A(Ipv4Addr::new(10, 0, 0, i).into())));
        }
        let b = m.to_vec().unwrap();
        let (start, size, n) = rotation(&b, 3, RecordType::A).expect("a rotatable run");
        let h = Hot::default();
        let req = [0u8, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'x', 0, 0, 1, 0, 1];
        h.put(&req, 1, None, Some((start, size, n)), &b, RecordType::A, ResponseCode::NoError);
        let firsts: Vec<String> = (0..3)
            .map(|_| {
                let m = Message::from_vec(&h.get(&req, 1, Instant::now()).unwrap().response).unwrap();
                assert_eq!(m.answers.len(), 3);
                assert_eq!(m.answers[0].name, name);
                m.answers[0].data.to_string()
            })
            .collect();
        assert_eq!(firsts, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        // A CNAME first: not a plain run, not rotated.
        assert!(rotation(&b, 2, RecordType::A).is_none());
    }
}

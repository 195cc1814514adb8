//! The forwarding cache: upstream answers, positive and negative, each kept for its
//! TTL (positive: the smallest record TTL; negative: the SOA's minimum, RFC 2308),
//! bounded by `cacheMaxTTL` and by a number of entries. Full shards evict an arbitrary
//! entry (as CoreDNS does). Time is a parameter, so expiry is tested without sleeping.

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SHARDS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// Lowercase, fully qualified.
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

#[derive(Debug, Clone)]
struct Entry {
    rcode: ResponseCode,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    stored: Instant,
    ttl: u32,
}

/// What a hit gives back, TTLs already aged.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Seconds until the entry expires.
    pub least_ttl: u32,
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
}

pub struct Cache {
    shards: Vec<Mutex<HashMap<Key, Entry>>>,
    per_shard: usize,
    max_ttl: u32,
}

impl Cache {
    /// A cache of about `size` entries (0: nothing is cached).
    pub fn new(size: usize, max_ttl: u32) -> Cache {
        Cache { shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(), per_shard: size.div_ceil(SHARDS), max_ttl }
    }

    fn shard(&self, k: &Key) -> &Mutex<HashMap<Key, Entry>> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        k.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    pub fn get(&self, k: &Key, now: Instant) -> Option<Hit> {
        if self.per_shard == 0 {
            return None;
        }
        let mut s = self.shard(k).lock().unwrap_or_else(|p| p.into_inner());
        let e = s.get(k)?;
        let age = now.saturating_duration_since(e.stored).as_secs() as u32;
        if age >= e.ttl {
            s.remove(k);
            return None;
        }
        let aged = |rs: &[Record]| rs.iter().cloned().map(|mut r| {
            r.ttl = r.ttl.min(e.ttl).saturating_sub(age);
            r
        }).collect();
        Some(Hit { least_ttl: e.ttl - age, rcode: e.rcode, answers: aged(&e.answers), authorities: aged(&e.authorities) })
    }

    /// Stores an upstream answer if it may be cached: complete (no TC), NOERROR or
    /// NXDOMAIN, with a TTL above zero.
    pub fn put(&self, k: Key, resp: &Message, now: Instant) {
        if self.per_shard == 0 || resp.truncation {
            return;
        }
        let Some(ttl) = ttl_of(resp).map(|t| t.min(self.max_ttl)).filter(|t| *t > 0) else { return };
        let mut s = self.shard(&k).lock().unwrap_or_else(|p| p.into_inner());
        if s.len() >= self.per_shard && !s.contains_key(&k) {
            // Expired entries first; else any one.
            let expired: Vec<Key> = s.iter().filter(|(_, e)| now.saturating_duration_since(e.stored) >= Duration::from_secs(e.ttl as u64)).map(|(k, _)| k.clone()).take(8).collect();
            if expired.is_empty() {
                if let Some(victim) = s.keys().next().cloned() {
                    s.remove(&victim);
                }
            } else {
                for v in expired {
                    s.remove(&v);
                }
            }
        }
        s.insert(k, Entry { rcode: resp.response_code, answers: resp.answers.clone(), authorities: resp.authorities.clone(), stored: now, ttl });
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How long an answer may be cached; `None` when it may not.
pub fn ttl_of(resp: &Message) -> Option<u32> {
    let soa_min = || {
        resp.authorities.iter().find_map(|r| match &r.data {
            RData::SOA(s) => Some(s.minimum.min(r.ttl)),
            _ => None,
        })
    };
    match resp.response_code {
        ResponseCode::NoError if !resp.answers.is_empty() => resp.answers.iter().filter(|r| r.record_type() != RecordType::OPT).map(|r| r.ttl).min(),
        ResponseCode::NoError | ResponseCode::NXDomain => soa_min(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::SOA;
    use hickory_proto::rr::Name;
    use std::net::Ipv4Addr;

    fn key(n: &str) -> Key {
        Key { name: n.into(), qtype: 1, qclass: 1 }
    }

    fn answer(ttl: u32) -> Message {
        let mut m = Message::response(1, hickory_proto::op::OpCode::Query);
        m.answers.push(Record::from_rdata(Name::from_ascii("a.example.").unwrap(), ttl, RData::A(Ipv4Addr::new(1, 2, 3, 4).into())));
        m
    }

    fn nxdomain(soa_ttl: u32, minimum: u32) -> Message {
        let mut m = Message::response(1, hickory_proto::op::OpCode::Query);
        m.metadata.response_code = ResponseCode::NXDomain;
        let soa = SOA::new(Name::from_ascii("ns.example.").unwrap(), Name::from_ascii("h.example.").unwrap(), 1, 1, 1, 1, minimum);
        m.authorities.push(Record::from_rdata(Name::from_ascii("example.").unwrap(), soa_ttl, RData::SOA(soa)));
        m
    }

    #[test]
    fn positive_answers_age_and_expire() {
        let c = Cache::new(100, 3600);
        let t0 = Instant::now();
        c.put(key("a.example."), &answer(30), t0);
        let hit = c.get(&key("a.example."), t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(hit.answers[0].ttl, 20);
        assert!(c.get(&key("a.example."), t0 + Duration::from_secs(30)).is_none());
    }

    #[test]
    fn negative_answers_live_for_the_soa_minimum_and_max_ttl_bounds_all() {
        let c = Cache::new(100, 60);
        let t0 = Instant::now();
        c.put(key("nx.example."), &nxdomain(300, 10), t0);
        assert_eq!(c.get(&key("nx.example."), t0 + Duration::from_secs(9)).unwrap().rcode, ResponseCode::NXDomain);
        assert!(c.get(&key("nx.example."), t0 + Duration::from_secs(10)).is_none());
        c.put(key("a.example."), &answer(86400), t0);
        assert!(c.get(&key("a.example."), t0 + Duration::from_secs(61)).is_none());
    }

    #[test]
    fn truncated_servfail_and_zero_ttl_answers_are_not_cached() {
        let c = Cache::new(100, 3600);
        let now = Instant::now();
        let mut tc = answer(30);
        tc.metadata.truncation = true;
        c.put(key("tc."), &tc, now);
        let mut sf = answer(30);
        sf.metadata.response_code = ResponseCode::ServFail;
        c.put(key("sf."), &sf, now);
        c.put(key("zero."), &answer(0), now);
        assert!(c.is_empty());
    }

    #[test]
    fn size_is_bounded() {
        let c = Cache::new(32, 3600);
        let now = Instant::now();
        for i in 0..1000 {
            c.put(key(&format!("n{i}.example.")), &answer(30), now);
        }
        assert!(c.len() <= 32, "{}", c.len());
        assert!(Cache::new(0, 3600).get(&key("a."), now).is_none());
    }
}

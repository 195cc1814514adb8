//! From a request to a response: the zone answers what is the cluster's, the cache
//! what was asked upstream before, and upstream resolvers the rest. The synchronous
//! part ([`Dns::plan`]) runs on the socket threads; only upstream questions go async.

use crate::answer::{self, Outcome};
use crate::cache::{Cache, Key};
use crate::config::Config;
use crate::forward::{self, Transport};
use crate::hot::Hot;
use crate::metrics::Metrics;
use crate::wire::{self, Request};
use crate::zone::Zone;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Record, RecordType};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

pub struct Dns {
    zone: RwLock<Zone>,
    config: RwLock<Arc<Config>>,
    cache: RwLock<Arc<Cache>>,
    /// The configuration before any ConfigMap.
    base: Config,
    pub metrics: Metrics,
    turn: AtomicUsize,
    /// Bumped on every change of zone or configuration (see [`crate::hot`]).
    generation: AtomicU64,
    hot: Hot,
}

/// What a request needs.
pub enum Plan {
    /// The response is ready.
    Done(Message),
    /// Ask upstream for `q`, then answer `req` with `cnames` followed by what came back.
    Upstream { req: Box<Message>, cnames: Vec<Record>, q: Query },
}

/// Whether an encoded response may answer the same request bytes again.
enum Keep {
    No,
    /// Until the zone or the configuration changes.
    Always,
    /// Also no later than this.
    Until(Instant),
    /// Like `Always`, if its addresses can be rotated in the encoded bytes.
    Rotating,
}

/// What the socket threads do with a datagram.
pub enum Handled {
    Reply(Vec<u8>),
    Drop,
    Upstream { req: Box<Message>, cnames: Vec<Record>, q: Query },
}

impl Dns {
    pub fn new(base: Config) -> Arc<Dns> {
        let cache = Cache::new(base.cache_size, base.cache_max_ttl);
        Arc::new(Dns {
            zone: RwLock::new(Zone::new()),
            config: RwLock::new(Arc::new(base.clone())),
            cache: RwLock::new(Arc::new(cache)),
            base,
            metrics: Metrics::new(),
            turn: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            hot: Hot::default(),
        })
    }

    pub fn zone(&self) -> RwLockReadGuard<'_, Zone> {
        self.zone.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the zone; answers see the change as soon as `f` returns.
    pub fn update_zone<T>(&self, f: impl FnOnce(&mut Zone) -> T) -> T {
        let mut z = self.zone.write().unwrap_or_else(|p| p.into_inner());
        let r = f(&mut z);
        self.generation.fetch_add(1, Ordering::Release);
        r
    }

    pub fn ready(&self) -> bool {
        self.zone().ready()
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn cache(&self) -> Arc<Cache> {
        self.cache.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_config(&self, c: Config) {
        let old = self.config();
        if old.cache_size != c.cache_size || old.cache_max_ttl != c.cache_max_ttl || old.upstreams != c.upstreams || old.stub_domains != c.stub_domains {
            *self.cache.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Cache::new(c.cache_size, c.cache_max_ttl));
        }
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(c);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Applies the ConfigMap's data (`None`: the ConfigMap is gone, back to defaults).
    pub fn apply_configmap(&self, data: Option<&BTreeMap<String, String>>) -> Result<(), String> {
        let c = match data {
            Some(d) => Config::with_configmap(&self.base, d)?,
            None => self.base.clone(),
        };
        self.set_config(c);
        Ok(())
    }

    /// Decodes a datagram or TCP message and answers it if that needs no upstream.
    /// `received`: when the request arrived (hot answers forwarded from upstream age).
    pub fn handle_bytes(&self, buf: &[u8], transport: Transport, received: Instant) -> Handled {
        let generation = self.generation.load(Ordering::Acquire);
        if transport == Transport::Udp {
            if let Some(hit) = self.hot.get(buf, generation, received) {
                self.metrics.request(proto_name(transport), hit.qtype);
                if hit.forwarded {
                    self.metrics.cache_hits.inc();
                }
                self.metrics.response(hit.rcode);
                return Handled::Reply(hit.response);
            }
        }
        match wire::parse(buf) {
            Request::Drop => Handled::Drop,
            Request::Error(m) => {
                self.metrics.response(m.response_code);
                Handled::Reply(wire::encode(&m, 512))
            }
            Request::Query(req) => {
                let limit = limit(&req, transport);
                let qtype = wire::question(&req).query_type();
                match self.plan_inner(req, transport) {
                (Plan::Done(m), keep) => {
                    let b = self.finish(&m, limit);
                    if transport == Transport::Udp {
                        match keep {
                            Keep::No => {}
                            Keep::Always => self.hot.put(buf, generation, None, None, &b, qtype, m.response_code),
                            Keep::Until(t) => self.hot.put(buf, generation, Some(t), None, &b, qtype, m.response_code),
                            Keep::Rotating => {
                                if let Some(r) = crate::hot::rotation(&b, m.answers.len(), qtype) {
                                    self.hot.put(buf, generation, None, Some(r), &b, qtype, m.response_code);
                                }
                            }
                        }
                    }
                    Handled::Reply(b)
                }
                (Plan::Upstream { req, cnames, q }, _) => Handled::Upstream { req, cnames, q },
                }
            }
        }
    }

    /// Encodes a response within the transport's limit and counts it (its time is
    /// counted by the transport once it is sent).
    pub fn finish(&self, m: &Message, limit: usize) -> Vec<u8> {
        self.metrics.response(m.response_code);
        wire::encode(m, limit)
    }

    /// The synchronous part: the zone, or the cache.
    pub fn plan(&self, req: Box<Message>, transport: Transport) -> Plan {
        self.plan_inner(req, transport).0
    }

    /// [`Dns::plan`], and whether the response may be kept encoded: answered from the
    /// zone, without addresses to rotate.
    fn plan_inner(&self, req: Box<Message>, transport: Transport) -> (Plan, Keep) {
        let q = wire::question(&req).clone();
        self.metrics.request(proto_name(transport), q.query_type());
        let cfg = self.config();
        let outcome = answer::answer(&self.zone(), &cfg, &q);
        match outcome {
            Outcome::Reply(r) => {
                let mut m = wire::response_to(&req, r.rcode);
                m.metadata.authoritative = r.authoritative;
                m.answers = r.answers;
                m.authorities = r.authorities;
                m.additionals = r.additionals;
                let keep = if rotates(&m.answers) { Keep::Rotating } else { Keep::Always };
                self.balance(&mut m.answers);
                (Plan::Done(m), keep)
            }
            Outcome::NotReady => {
                let mut m = wire::response_to(&req, ResponseCode::ServFail);
                m.authorities.push(answer::soa(&cfg, &cfg.zone_name(), 0));
                (Plan::Done(m), Keep::No)
            }
            Outcome::Forward => self.cached(req, vec![], q),
            Outcome::Chase { cnames, target, qtype } => {
                let mut tq = Query::query(target, qtype);
                tq.set_query_class(q.query_class());
                self.cached(req, cnames, tq)
            }
        }
    }

    fn cached(&self, req: Box<Message>, cnames: Vec<Record>, q: Query) -> (Plan, Keep) {
        let now = Instant::now();
        match self.cache().get(&key(&q), now) {
            Some(hit) => {
                self.metrics.cache_hits.inc();
                let mut m = wire::response_to(&req, hit.rcode);
                m.answers = cnames;
                m.answers.extend(hit.answers);
                m.authorities = hit.authorities;
                self.keep_case(&req, &mut m);
                // Kept encoded while the TTLs it shows stay true (under a second).
                let keep = if rotates(&m.answers) || hit.least_ttl == 0 { Keep::No } else { Keep::Until(now + Duration::from_millis(900)) };
                self.balance(&mut m.answers);
                (Plan::Done(m), keep)
            }
            None => {
                self.metrics.cache_misses.inc();
                (Plan::Upstream { req, cnames, q }, Keep::No)
            }
        }
    }

    /// Asks upstream and builds the response (SERVFAIL when no upstream answers).
    pub async fn upstream(&self, req: &Message, cnames: Vec<Record>, q: Query, transport: Transport) -> Message {
        let cfg = self.config();
        let name = q.name().to_lowercase().to_ascii();
        let ups = cfg.upstreams_for(name.trim_end_matches('.')).to_vec();
        self.metrics.forwards.inc();
        match forward::ask(&q, &ups, transport).await {
            Ok(resp) => {
                self.cache().put(key(&q), &resp, Instant::now());
                let mut m = wire::response_to(req, resp.response_code);
                // A truncated upstream answer stays truncated: the client retries over TCP.
                m.metadata.truncation = resp.truncation;
                m.answers = cnames;
                m.answers.extend(resp.answers);
                m.authorities = resp.authorities;
                m.additionals = resp.additionals;
                self.keep_case(req, &mut m);
                self.balance(&mut m.answers);
                m
            }
            Err(e) => {
                self.metrics.forward_errors.inc();
                tracing::debug!(name = %name, error = %e, "forwarding failed");
                let mut m = wire::response_to(req, ResponseCode::ServFail);
                m.answers = cnames;
                m
            }
        }
    }

    /// The whole path, for TCP and tests.
    pub async fn respond(&self, buf: &[u8], transport: Transport) -> Option<Vec<u8>> {
        match self.handle_bytes(buf, transport, Instant::now()) {
            Handled::Reply(b) => Some(b),
            Handled::Drop => None,
            Handled::Upstream { req, cnames, q } => {
                let m = self.upstream(&req, cnames, q, transport).await;
                Some(self.finish(&m, limit(&req, transport)))
            }
        }
    }

    /// Round-robin: each response starts its address records one further along.
    fn balance(&self, answers: &mut [Record]) {
        let n = self.turn.fetch_add(1, Ordering::Relaxed);
        rotate_addresses(answers, n);
    }

    /// Answers keep the case of the question's owner name.
    fn keep_case(&self, req: &Message, m: &mut Message) {
        let qn = wire::question(req).name();
        for r in m.answers.iter_mut() {
            if r.name == *qn {
                r.name = qn.clone();
            }
        }
    }
}

/// The size limit of a response to `req`.
pub fn limit(req: &Message, transport: Transport) -> usize {
    match transport {
        Transport::Udp => wire::udp_limit(req),
        Transport::Tcp => wire::MAX_TCP,
    }
}

fn proto_name(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
    }
}

fn key(q: &Query) -> Key {
    Key { name: q.name().to_lowercase().to_ascii(), qtype: q.query_type().into(), qclass: q.query_class().into() }
}

/// Whether round-robin would reorder these answers.
fn rotates(answers: &[Record]) -> bool {
    [RecordType::A, RecordType::AAAA].iter().any(|t| answers.iter().filter(|r| r.record_type() == *t).nth(1).is_some())
}

/// Rotates the A and AAAA records by `n` among their own positions; CNAMEs and the rest
/// stay where they are (a CNAME precedes its target).
pub fn rotate_addresses(answers: &mut [Record], n: usize) {
    for t in [RecordType::A, RecordType::AAAA] {
        if answers.iter().filter(|r| r.record_type() == t).nth(1).is_none() {
            continue;
        }
        let idx: Vec<usize> = answers.iter().enumerate().filter(|(_, r)| r.record_type() == t).map(|(i, _)| i).collect();
        if idx[idx.len() - 1] - idx[0] + 1 == idx.len() {
            // A contiguous run (the usual case): rotate in place.
            answers[idx[0]..=idx[idx.len() - 1]].rotate_left(n % idx.len());
            continue;
        }
        let recs: Vec<Record> = idx.iter().map(|i| answers[*i].clone()).collect();
        let k = n % recs.len();
        for (j, i) in idx.iter().enumerate() {
            answers[*i] = recs[(j + k) % recs.len()].clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::CNAME;
    use hickory_proto::rr::{Name, RData};
    use std::net::Ipv4Addr;

    #[test]
    fn rotation_moves_addresses_and_keeps_the_cname_first() {
        let n = Name::from_ascii("a.example.").unwrap();
        let mut rs = vec![Record::from_rdata(n.clone(), 5, RData::CNAME(CNAME(n.clone())))];
        for i in 1..=3 {
            rs.push(Record::from_rdata(n.clone(), 5, RData::A(Ipv4Addr::new(10, 0, 0, i).into())));
        }
        let firsts: Vec<String> = (0..3)
            .map(|k| {
                let mut r = rs.clone();
                rotate_addresses(&mut r, k);
                assert_eq!(r[0].record_type(), RecordType::CNAME);
                r[1].data.to_string()
            })
            .collect();
        assert_eq!(firsts, vec!["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    }
}

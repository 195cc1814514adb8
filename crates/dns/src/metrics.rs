//! Prometheus metrics: requests by protocol and type, responses by rcode, a latency
//! histogram, cache hits and misses. Labels are static strings: nothing is allocated
//! per request.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// `proto` and `type` (a keyword in Rust, hence pairs rather than a struct).
pub type RequestLabels = [(&'static str, &'static str); 2];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RcodeLabel {
    pub rcode: &'static str,
}

pub struct Metrics {
    pub registry: Registry,
    requests: Family<RequestLabels, Counter>,
    responses: Family<RcodeLabel, Counter>,
    duration: Histogram,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub forwards: Counter,
    pub forward_errors: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("weft_dns");
        let requests = Family::<RequestLabels, Counter>::default();
        let responses = Family::<RcodeLabel, Counter>::default();
        // 25 µs .. ~0.4 s.
        let duration = Histogram::new(exponential_buckets(0.000025, 2.0, 15));
        let (cache_hits, cache_misses, forwards, forward_errors) = (Counter::default(), Counter::default(), Counter::default(), Counter::default());
        registry.register("requests", "DNS requests by protocol and query type", requests.clone());
        registry.register("responses", "DNS responses by rcode", responses.clone());
        registry.register("request_duration_seconds", "Time from a request's arrival to its response", duration.clone());
        registry.register("cache_hits", "Forwarded questions answered from the cache", cache_hits.clone());
        registry.register("cache_misses", "Forwarded questions not in the cache", cache_misses.clone());
        registry.register("forward_requests", "Questions sent upstream", forwards.clone());
        registry.register("forward_errors", "Upstream questions that got no usable answer", forward_errors.clone());
        Metrics { registry, requests, responses, duration, cache_hits, cache_misses, forwards, forward_errors }
    }

    pub fn request(&self, proto: &'static str, qtype: RecordType) {
        self.requests.get_or_create(&[("proto", proto), ("type", type_name(qtype))]).inc();
    }

    pub fn response(&self, rcode: ResponseCode, seconds: f64) {
        self.responses.get_or_create(&RcodeLabel { rcode: rcode_name(rcode) }).inc();
        self.duration.observe(seconds);
    }

    pub fn encode(&self) -> String {
        let mut s = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }
}

fn type_name(t: RecordType) -> &'static str {
    match t {
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        RecordType::SRV => "SRV",
        RecordType::PTR => "PTR",
        RecordType::CNAME => "CNAME",
        RecordType::TXT => "TXT",
        RecordType::SOA => "SOA",
        RecordType::NS => "NS",
        RecordType::MX => "MX",
        RecordType::ANY => "ANY",
        RecordType::HTTPS => "HTTPS",
        _ => "other",
    }
}

pub fn rcode_name(r: ResponseCode) -> &'static str {
    match r {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::BADVERS => "BADVERS",
        _ => "other",
    }
}

//! Prometheus metrics: requests by protocol and type, responses by rcode, a latency
//! histogram, cache hits and misses, datagrams per UDP socket (to see the kernel spread
//! them over the SO_REUSEPORT group). Labels are static strings or handles taken once
//! per socket: nothing is allocated per request.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Instant;

/// Request time buckets (seconds): fine from 5 µs to 2 ms, where answers from memory
/// fall and where a 1 ms objective must be told apart, coarse up to upstream timeouts.
const DURATION_BUCKETS: [f64; 20] =
    [5e-6, 10e-6, 20e-6, 30e-6, 50e-6, 75e-6, 100e-6, 150e-6, 200e-6, 300e-6, 500e-6, 750e-6, 1e-3, 1.5e-3, 2e-3, 5e-3, 10e-3, 50e-3, 250e-3, 1.0];

/// `proto` and `type` (a keyword in Rust, hence pairs rather than a struct).
pub type RequestLabels = [(&'static str, &'static str); 2];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RcodeLabel {
    pub rcode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SocketLabel {
    /// `address#index` within the address's SO_REUSEPORT group.
    pub socket: String,
}

pub struct Metrics {
    pub registry: Registry,
    requests: Family<RequestLabels, Counter>,
    responses: Family<RcodeLabel, Counter>,
    duration: Histogram,
    handling: Histogram,
    udp_sockets: Family<SocketLabel, Counter>,
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
        let duration = Histogram::new(DURATION_BUCKETS);
        let handling = Histogram::new(DURATION_BUCKETS);
        let udp_sockets = Family::<SocketLabel, Counter>::default();
        let (cache_hits, cache_misses, forwards, forward_errors) = (Counter::default(), Counter::default(), Counter::default(), Counter::default());
        registry.register("requests", "DNS requests by protocol and query type", requests.clone());
        registry.register("responses", "DNS responses by rcode", responses.clone());
        registry.register("request_duration_seconds", "Time from a request's arrival (the kernel's receive timestamp for UDP) to its response being sent", duration.clone());
        registry.register("request_handling_seconds", "Time in the server's own hands: from the request read off its socket to its response being sent", handling.clone());
        registry.register("udp_socket_requests", "Datagrams received, per UDP socket", udp_sockets.clone());
        registry.register("cache_hits", "Forwarded questions answered from the cache", cache_hits.clone());
        registry.register("cache_misses", "Forwarded questions not in the cache", cache_misses.clone());
        registry.register("forward_requests", "Questions sent upstream", forwards.clone());
        registry.register("forward_errors", "Upstream questions that got no usable answer", forward_errors.clone());
        Metrics { registry, requests, responses, duration, handling, udp_sockets, cache_hits, cache_misses, forwards, forward_errors }
    }

    pub fn request(&self, proto: &'static str, qtype: RecordType) {
        self.requests.get_or_create(&[("proto", proto), ("type", type_name(qtype))]).inc();
    }

    pub fn response(&self, rcode: ResponseCode) {
        self.responses.get_or_create(&RcodeLabel { rcode: rcode_name(rcode) }).inc();
    }

    /// A response was sent for a request that arrived at `received` (in the kernel) and
    /// was read at `read`: the two differ by the time it waited in queues.
    pub fn answered(&self, received: Instant, read: Instant) {
        let now = Instant::now();
        self.duration.observe(now.duration_since(received).as_secs_f64());
        self.handling.observe(now.duration_since(read).as_secs_f64());
    }

    /// The datagram counter of one UDP socket, kept by its thread.
    pub fn udp_socket(&self, socket: &str) -> Counter {
        self.udp_sockets.get_or_create(&SocketLabel { socket: socket.to_string() }).clone()
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

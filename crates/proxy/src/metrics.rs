//! Prometheus metrics of the proxy, in kube-proxy's spirit (its `sync_proxy_rules_*`
//! family): how long full syncs (read back, diff, write everything that differs) and
//! partial ones (the changes since the last sync) take, when the last one succeeded, how
//! much each wrote, and how many failed.

use crate::apply::SyncReport;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

/// A full sync (read back, diff, write) or a partial one (only what changed).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum SyncKind {
    Full,
    Partial,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

fn label(kind: SyncKind) -> KindLabel {
    KindLabel { kind: if kind == SyncKind::Full { "full" } else { "partial" } }
}

pub struct ProxyMetrics {
    pub registry: Registry,
    full: Histogram,
    partial: Histogram,
    last_success: Gauge<f64, AtomicU64>,
    elements: Counter,
    rules: Counter,
    transactions: Counter,
    errors: Family<KindLabel, Counter>,
    service_ports: Gauge,
}

impl Default for ProxyMetrics {
    fn default() -> Self {
        ProxyMetrics::new()
    }
}

impl ProxyMetrics {
    pub fn new() -> ProxyMetrics {
        let mut registry = Registry::with_prefix("weft_proxy");
        // 100 µs .. ~100 s.
        let buckets = || exponential_buckets(0.0001, 2.0, 20);
        let m = ProxyMetrics {
            full: Histogram::new(buckets()),
            partial: Histogram::new(buckets()),
            last_success: Gauge::default(),
            elements: Counter::default(),
            rules: Counter::default(),
            transactions: Counter::default(),
            errors: Family::default(),
            service_ports: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("sync_full_proxy_rules_duration_seconds", "Time a full sync took: read the table back, diff, write what differs", m.full.clone());
        registry.register("sync_partial_proxy_rules_duration_seconds", "Time an incremental sync took: compile and write the changed services", m.partial.clone());
        registry.register("sync_proxy_rules_last_timestamp_seconds", "When the last sync succeeded (Unix time)", m.last_success.clone());
        registry.register("sync_proxy_rules_elements_applied", "Map and set elements added or deleted", m.elements.clone());
        registry.register("sync_proxy_rules_rules_applied", "Rules written", m.rules.clone());
        registry.register("sync_proxy_rules_transactions", "nf_tables transactions committed", m.transactions.clone());
        registry.register("sync_proxy_rules_errors", "Syncs that failed, by kind (a failed sync is followed by a full one)", m.errors.clone());
        registry.register("service_ports", "Service ports (per port and IP family) the proxy serves", m.service_ports.clone());
        // Both kinds show from the start, at zero.
        for kind in [SyncKind::Full, SyncKind::Partial] {
            let _ = m.errors.get_or_create(&label(kind));
        }
        ProxyMetrics { registry, ..m }
    }

    /// A sync of `kind` went through in `took` and wrote what `r` says.
    pub fn synced(&self, kind: SyncKind, took: Duration, r: &SyncReport, service_ports: usize) {
        match kind {
            SyncKind::Full => self.full.observe(took.as_secs_f64()),
            SyncKind::Partial => self.partial.observe(took.as_secs_f64()),
        }
        self.elements.inc_by(r.elements as u64);
        self.rules.inc_by(r.rules as u64);
        self.transactions.inc_by(r.transactions as u64);
        self.service_ports.set(service_ports as i64);
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        self.last_success.set(now.as_secs_f64());
    }

    pub fn failed(&self, kind: SyncKind) {
        self.errors.get_or_create(&label(kind)).inc();
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_moves_its_histogram_counters_and_timestamp() {
        let m = ProxyMetrics::new();
        let r = SyncReport { elements: 12, rules: 3, transactions: 1, ..Default::default() };
        m.synced(SyncKind::Partial, Duration::from_millis(2), &r, 7);
        m.failed(SyncKind::Full);
        let text = m.encode();
        assert!(text.contains("weft_proxy_sync_partial_proxy_rules_duration_seconds_count 1"), "{text}");
        assert!(text.contains("weft_proxy_sync_full_proxy_rules_duration_seconds_count 0"), "{text}");
        assert!(text.contains("weft_proxy_sync_proxy_rules_elements_applied_total 12"), "{text}");
        assert!(text.contains("weft_proxy_sync_proxy_rules_rules_applied_total 3"), "{text}");
        assert!(text.contains("weft_proxy_sync_proxy_rules_errors_total{kind=\"full\"} 1"), "{text}");
        assert!(text.contains("weft_proxy_sync_proxy_rules_errors_total{kind=\"partial\"} 0"), "{text}");
        assert!(text.contains("weft_proxy_service_ports 7"), "{text}");
        assert!(!text.contains("weft_proxy_sync_proxy_rules_last_timestamp_seconds 0.0"), "{text}");
    }
}

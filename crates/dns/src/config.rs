//! The DNS server's configuration: built-in defaults, overridden by the ConfigMap
//! `kube-system/weft-dns`, reloaded live when it changes.
//!
//! ConfigMap keys (all optional; an unknown key or a bad value rejects the whole
//! ConfigMap, the previous configuration stays in force and the error is logged):
//!
//! | key | value | default |
//! |---|---|---|
//! | `upstreams` | resolvers for names outside the cluster, `IP` or `IP:port`, separated by spaces or commas | the host's `/etc/resolv.conf` nameservers |
//! | `stubDomains` | JSON object: domain → list of resolvers, e.g. `{"corp.example": ["10.1.0.53"]}` | none |
//! | `cacheSize` | entries in the forwarding cache (positive and negative); 0 disables it | 10000 |
//! | `cacheMaxTTL` | seconds, upper bound of a cached answer's lifetime | 3600 |
//! | `podRecords` | `verified`, `insecure` or `disabled` (`1-2-3-4.ns.pod.<zone>`) | `insecure` |
//! | `ttl` | seconds, TTL of cluster records (0–3600) | 5 |
//! | `reverseZones` | reverse zones answered with NXDOMAIN for unknown addresses, e.g. `10.in-addr.arpa` (others are forwarded) | none |
//! | `ignoreEmptyService` | `true`: a ClusterIP service with no ready endpoints is NXDOMAIN | `false` |

use hickory_proto::rr::Name;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodRecords {
    Disabled,
    /// Any dashed address under an existing namespace answers.
    Insecure,
    /// Only addresses of pods that exist in that namespace answer.
    Verified,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The cluster domain, lowercase, no trailing dot.
    pub domain: String,
    pub ttl: u32,
    pub pod_records: PodRecords,
    pub ignore_empty_service: bool,
    /// Lowercase, no trailing dot, longest first.
    pub reverse_zones: Vec<String>,
    /// The cluster DNS service (namespace, name): the address of `ns.dns.<zone>`.
    pub dns_service: (String, String),
    pub upstreams: Vec<SocketAddr>,
    /// Domain (lowercase, no trailing dot) → resolvers, longest domain first.
    pub stub_domains: Vec<(String, Vec<SocketAddr>)>,
    pub cache_size: usize,
    pub cache_max_ttl: u32,
}

pub const CONFIGMAP_NAMESPACE: &str = "kube-system";
pub const CONFIGMAP_NAME: &str = "weft-dns";
const KEYS: &[&str] = &["upstreams", "stubDomains", "cacheSize", "cacheMaxTTL", "podRecords", "ttl", "reverseZones", "ignoreEmptyService"];

impl Config {
    /// Defaults for `domain`, forwarding to `upstreams`.
    pub fn new(domain: &str, upstreams: Vec<SocketAddr>) -> Config {
        Config {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            ttl: 5,
            pod_records: PodRecords::Insecure,
            ignore_empty_service: false,
            reverse_zones: vec![],
            dns_service: ("kube-system".into(), "kube-dns".into()),
            upstreams,
            stub_domains: vec![],
            cache_size: 10_000,
            cache_max_ttl: 3600,
        }
    }

    /// `base` with the ConfigMap's `data` applied. Errors name the key and the fix.
    pub fn with_configmap(base: &Config, data: &BTreeMap<String, String>) -> Result<Config, String> {
        let mut c = base.clone();
        let at = |k: &str| format!("ConfigMap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME} data.{k}");
        for (k, v) in data {
            let v = v.trim();
            match k.as_str() {
                "upstreams" => {
                    c.upstreams = parse_servers(v).map_err(|e| format!("{}: {e}", at(k)))?;
                    if c.upstreams.is_empty() {
                        return Err(format!("{}: empty; list at least one resolver (IP or IP:port) or remove the key", at(k)));
                    }
                }
                "stubDomains" => {
                    let m: BTreeMap<String, Vec<String>> = serde_json::from_str(v).map_err(|e| format!("{}: {e}; expected a JSON object like {{\"corp.example\": [\"10.1.0.53\"]}}", at(k)))?;
                    let mut stubs = vec![];
                    for (d, servers) in m {
                        let servers = parse_servers(&servers.join(" ")).map_err(|e| format!("{} [{d}]: {e}", at(k)))?;
                        if servers.is_empty() {
                            return Err(format!("{} [{d}]: no resolvers; give at least one", at(k)));
                        }
                        stubs.push((normalize_domain(&d), servers));
                    }
                    stubs.sort_by_key(|(d, _)| std::cmp::Reverse(d.len()));
                    c.stub_domains = stubs;
                }
                "cacheSize" => c.cache_size = v.parse().map_err(|_| format!("{}: {v:?} is not a number of entries (e.g. 10000; 0 disables the cache)", at(k)))?,
                "cacheMaxTTL" => c.cache_max_ttl = v.parse().map_err(|_| format!("{}: {v:?} is not a number of seconds", at(k)))?,
                "ttl" => {
                    c.ttl = v.parse().ok().filter(|t| *t <= 3600).ok_or_else(|| format!("{}: {v:?} is not a TTL in seconds between 0 and 3600", at(k)))?;
                }
                "podRecords" => {
                    c.pod_records = match v {
                        "verified" => PodRecords::Verified,
                        "insecure" => PodRecords::Insecure,
                        "disabled" => PodRecords::Disabled,
                        _ => return Err(format!("{}: {v:?} is not one of verified, insecure, disabled", at(k))),
                    }
                }
                "reverseZones" => {
                    let mut zones: Vec<String> = v.split([' ', ',', '\n']).filter(|s| !s.is_empty()).map(normalize_domain).collect();
                    if let Some(z) = zones.iter().find(|z| !(z.ends_with("in-addr.arpa") || z.ends_with("ip6.arpa"))) {
                        return Err(format!("{}: {z:?} is not under in-addr.arpa or ip6.arpa", at(k)));
                    }
                    zones.sort_by_key(|z| std::cmp::Reverse(z.len()));
                    c.reverse_zones = zones;
                }
                "ignoreEmptyService" => c.ignore_empty_service = v.parse().map_err(|_| format!("{}: {v:?} is not true or false", at(k)))?,
                _ => return Err(format!("{}: unknown key; valid keys are {}", at(k), KEYS.join(", "))),
            }
        }
        Ok(c)
    }

    /// The resolvers for a name outside the cluster (lowercase, no trailing dot).
    pub fn upstreams_for(&self, name: &str) -> &[SocketAddr] {
        for (d, servers) in &self.stub_domains {
            if in_domain(name, d) {
                return servers;
            }
        }
        &self.upstreams
    }

    /// The configured reverse zone that holds `name`, if any.
    pub fn reverse_zone_of(&self, name: &str) -> Option<&str> {
        self.reverse_zones.iter().find(|z| in_domain(name, z)).map(|s| s.as_str())
    }

    pub fn zone_name(&self) -> Name {
        fqdn(&self.domain)
    }
}

/// `name` is `domain` or below it (both lowercase, no trailing dot).
pub fn in_domain(name: &str, domain: &str) -> bool {
    domain.is_empty() || name == domain || (name.len() > domain.len() && name.ends_with(domain) && name.as_bytes()[name.len() - domain.len() - 1] == b'.')
}

fn normalize_domain(d: &str) -> String {
    d.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// A fully qualified name from trusted text (zone names, service names).
pub fn fqdn(s: &str) -> Name {
    let mut n = Name::from_ascii(s).unwrap_or_else(|_| Name::root());
    n.set_fqdn(true);
    n
}

/// `IP` or `IP:port` or `[v6]:port`, separated by spaces or commas; port 53 by default.
pub fn parse_servers(s: &str) -> Result<Vec<SocketAddr>, String> {
    s.split([' ', ',', '\n', '\t'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.parse::<SocketAddr>()
                .or_else(|_| w.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| format!("{w:?} is not an address (IP, IP:port or [IPv6]:port)"))
        })
        .collect()
}

/// The nameservers of a resolv.conf text.
pub fn resolv_conf_servers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        .filter_map(|a| a.split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn configmap_overrides_defaults() {
        let base = Config::new("cluster.local.", vec!["127.0.0.1:53".parse().unwrap()]);
        let c = Config::with_configmap(
            &base,
            &data(&[
                ("upstreams", "127.0.0.2, 127.0.0.3:5353 [::1]:53"),
                ("stubDomains", r#"{"corp.example.": ["127.0.0.9:5300"], "a.corp.example": ["127.0.0.10"]}"#),
                ("cacheSize", "5"),
                ("podRecords", "verified"),
                ("ttl", "30"),
                ("reverseZones", "0.10.in-addr.arpa, 168.192.in-addr.arpa."),
                ("ignoreEmptyService", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(c.domain, "cluster.local");
        assert_eq!(c.upstreams.len(), 3);
        assert_eq!(c.upstreams_for("x.a.corp.example"), &["127.0.0.10:53".parse::<SocketAddr>().unwrap()]);
        assert_eq!(c.upstreams_for("b.corp.example"), &["127.0.0.9:5300".parse::<SocketAddr>().unwrap()]);
        assert_eq!(c.upstreams_for("xcorp.example"), c.upstreams.as_slice());
        assert_eq!((c.cache_size, c.ttl, c.pod_records, c.ignore_empty_service), (5, 30, PodRecords::Verified, true));
        assert_eq!(c.reverse_zone_of("1.0.0.10.in-addr.arpa"), Some("0.10.in-addr.arpa"));
        assert_eq!(c.reverse_zone_of("1.0.0.11.in-addr.arpa"), None);
    }

    #[test]
    fn bad_values_name_the_key_and_the_fix() {
        let base = Config::new("cluster.local", vec![]);
        for (kv, want) in [
            (("ttl", "lots"), "data.ttl"),
            (("podRecords", "yes"), "verified, insecure, disabled"),
            (("upstreams", "resolver.example"), "is not an address"),
            (("stubDomains", "[1]"), "JSON object"),
            (("nameservers", "1.2.3.4"), "unknown key; valid keys are upstreams"),
            (("reverseZones", "example.org"), "not under in-addr.arpa"),
        ] {
            let e = Config::with_configmap(&base, &data(&[kv])).unwrap_err();
            assert!(e.contains(want) && e.contains("kube-system/weft-dns"), "{e}");
        }
    }

    #[test]
    fn resolv_conf_nameservers_are_read() {
        let s = resolv_conf_servers("# c\nsearch x\nnameserver 192.0.2.1\nnameserver fe80::1%eth0\noptions ndots:2\n");
        assert_eq!(s, vec!["192.0.2.1:53".parse().unwrap(), "[fe80::1]:53".parse().unwrap()]);
    }
}

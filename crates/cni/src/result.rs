//! The ADD result, kept version-neutral and formatted per requested version.
//!
//! 0.3.x/0.4.0: each `ips` entry carries `"version": "4"|"6"`.
//! 1.0.0: `version` is gone from `ips`.
//! 1.1.0: interfaces may carry `mtu` (also `socketPath`, `pciID`; routes may
//! carry `mtu`, `advmss`, `priority`, `table`, `scope`).

use crate::error::{code, CniError};
use crate::version::Version;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::net::IpAddr;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniResult {
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<RouteConfig>,
    pub dns: Dns,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub mac: Option<String>,
    /// The netns path, for interfaces inside the sandbox.
    pub sandbox: Option<String>,
    pub mtu: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    pub address: IpNet,
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        *self == Dns::default()
    }
}

impl CniResult {
    /// The result JSON as `version` shapes it.
    pub fn to_json(&self, version: Version) -> Value {
        let interfaces: Vec<Value> = self
            .interfaces
            .iter()
            .map(|i| {
                let mut o = Map::new();
                o.insert("name".into(), json!(i.name));
                if let Some(mac) = &i.mac {
                    o.insert("mac".into(), json!(mac));
                }
                if let (Some(mtu), true) = (i.mtu, version.has_interface_mtu()) {
                    o.insert("mtu".into(), json!(mtu));
                }
                if let Some(sb) = &i.sandbox {
                    o.insert("sandbox".into(), json!(sb));
                }
                Value::Object(o)
            })
            .collect();
        let ips: Vec<Value> = self
            .ips
            .iter()
            .map(|ip| {
                let mut o = Map::new();
                if version.ips_have_version() {
                    o.insert("version".into(), json!(if ip.address.addr().is_ipv4() { "4" } else { "6" }));
                }
                o.insert("address".into(), json!(ip.address.to_string()));
                if let Some(gw) = ip.gateway {
                    o.insert("gateway".into(), json!(gw.to_string()));
                }
                if let Some(i) = ip.interface {
                    o.insert("interface".into(), json!(i));
                }
                Value::Object(o)
            })
            .collect();
        let routes: Vec<Value> = self
            .routes
            .iter()
            .map(|r| match r.gw {
                Some(gw) => json!({"dst": r.dst.to_string(), "gw": gw.to_string()}),
                None => json!({"dst": r.dst.to_string()}),
            })
            .collect();
        let mut out = Map::new();
        out.insert("cniVersion".into(), json!(version.as_str()));
        if !interfaces.is_empty() {
            out.insert("interfaces".into(), Value::Array(interfaces));
        }
        out.insert("ips".into(), Value::Array(ips));
        if !routes.is_empty() {
            out.insert("routes".into(), Value::Array(routes));
        }
        out.insert("dns".into(), serde_json::to_value(&self.dns).unwrap_or_else(|_| json!({})));
        Value::Object(out)
    }

    /// Reads a result of any supported version (e.g. `prevResult`).
    pub fn from_json(v: &Value) -> Result<CniResult, CniError> {
        let bad = |what: &str| CniError::new(code::DECODE, format!("cannot decode prevResult: {what}"));
        let obj = v.as_object().ok_or_else(|| bad("not an object"))?;
        let mut r = CniResult::default();
        for i in obj.get("interfaces").and_then(Value::as_array).into_iter().flatten() {
            r.interfaces.push(Interface {
                name: i.get("name").and_then(Value::as_str).ok_or_else(|| bad("interface without a name"))?.into(),
                mac: i.get("mac").and_then(Value::as_str).map(String::from),
                sandbox: i.get("sandbox").and_then(Value::as_str).map(String::from),
                mtu: i.get("mtu").and_then(Value::as_u64).and_then(|m| u32::try_from(m).ok()),
            });
        }
        for ip in obj.get("ips").and_then(Value::as_array).into_iter().flatten() {
            let address = ip
                .get("address")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<IpNet>().ok())
                .ok_or_else(|| bad("ips entry without a valid address"))?;
            let gateway = match ip.get("gateway").and_then(Value::as_str) {
                Some(g) => Some(g.parse().map_err(|_| bad("ips entry with an invalid gateway"))?),
                None => None,
            };
            let interface = ip.get("interface").and_then(Value::as_u64).map(|i| i as usize);
            r.ips.push(IpConfig { address, gateway, interface });
        }
        for rt in obj.get("routes").and_then(Value::as_array).into_iter().flatten() {
            let dst = rt
                .get("dst")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<IpNet>().ok())
                .ok_or_else(|| bad("route without a valid dst"))?;
            let gw = match rt.get("gw").and_then(Value::as_str) {
                Some(g) => Some(g.parse().map_err(|_| bad("route with an invalid gw"))?),
                None => None,
            };
            r.routes.push(RouteConfig { dst, gw });
        }
        if let Some(d) = obj.get("dns").filter(|d| !d.is_null()) {
            // Unknown DNS keys from other plugins are not ours to judge.
            r.dns = Dns {
                nameservers: strings(d.get("nameservers")),
                domain: d.get("domain").and_then(Value::as_str).map(String::from),
                search: strings(d.get("search")),
                options: strings(d.get("options")),
            };
        }
        Ok(r)
    }

    /// Appends `ours` after this (previous) result, re-pointing our ips'
    /// interface indexes: how a plugin passes `prevResult` through on ADD.
    pub fn merged_with(mut self, ours: CniResult) -> CniResult {
        let offset = self.interfaces.len();
        self.interfaces.extend(ours.interfaces);
        self.ips.extend(ours.ips.into_iter().map(|mut ip| {
            ip.interface = ip.interface.map(|i| i + offset);
            ip
        }));
        self.routes.extend(ours.routes);
        if !ours.dns.is_empty() {
            self.dns = ours.dns;
        }
        self
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CniResult {
        CniResult {
            interfaces: vec![
                Interface { name: "weftabc".into(), mac: Some("02:00:00:00:00:01".into()), sandbox: None, mtu: Some(1450) },
                Interface {
                    name: "eth0".into(),
                    mac: Some("02:00:00:00:00:02".into()),
                    sandbox: Some("/run/ns/p".into()),
                    mtu: Some(1450),
                },
            ],
            ips: vec![
                IpConfig { address: "10.244.1.2/24".parse().unwrap(), gateway: Some("10.244.1.1".parse().unwrap()), interface: Some(1) },
                IpConfig { address: "fd00::2/64".parse().unwrap(), gateway: Some("fd00::1".parse().unwrap()), interface: Some(1) },
            ],
            routes: vec![RouteConfig { dst: "0.0.0.0/0".parse().unwrap(), gw: Some("10.244.1.1".parse().unwrap()) }],
            dns: Dns { nameservers: vec!["10.96.0.10".into()], ..Default::default() },
        }
    }

    fn v(s: &str) -> Version {
        Version::negotiate(Some(s)).unwrap()
    }

    #[test]
    fn pre_1_0_results_tag_each_ip_with_its_version() {
        for ver in ["0.3.0", "0.3.1", "0.4.0"] {
            let j = sample().to_json(v(ver));
            assert_eq!(j["cniVersion"], ver);
            assert_eq!(j["ips"][0]["version"], "4");
            assert_eq!(j["ips"][1]["version"], "6");
            assert!(j["interfaces"][1].get("mtu").is_none());
        }
    }

    #[test]
    fn v1_results_drop_ip_version_and_1_1_adds_interface_mtu() {
        let j = sample().to_json(v("1.0.0"));
        assert!(j["ips"][0].get("version").is_none());
        assert!(j["interfaces"][0].get("mtu").is_none());
        let j = sample().to_json(v("1.1.0"));
        assert_eq!(j["interfaces"][1]["mtu"], 1450);
        assert_eq!(j["interfaces"][1]["sandbox"], "/run/ns/p");
        assert!(j["interfaces"][0].get("sandbox").is_none());
        assert_eq!(j["ips"][0]["interface"], 1);
        assert_eq!(j["ips"][0]["gateway"], "10.244.1.1");
        assert_eq!(j["routes"][0], json!({"dst": "0.0.0.0/0", "gw": "10.244.1.1"}));
        assert_eq!(j["dns"], json!({"nameservers": ["10.96.0.10"]}));
    }

    #[test]
    fn results_of_every_version_read_back() {
        for ver in crate::version::SUPPORTED {
            let mut want = sample();
            if !v(ver).has_interface_mtu() {
                want.interfaces.iter_mut().for_each(|i| i.mtu = None);
            }
            assert_eq!(CniResult::from_json(&sample().to_json(v(ver))).unwrap(), want, "{ver}");
        }
        assert_eq!(CniResult::from_json(&json!({"ips": [{"address": "nope"}]})).unwrap_err().code, code::DECODE);
    }

    #[test]
    fn merging_keeps_the_previous_result_first() {
        let prev = CniResult {
            interfaces: vec![Interface { name: "other".into(), ..Default::default() }],
            ..Default::default()
        };
        let m = prev.merged_with(sample());
        assert_eq!(m.interfaces.len(), 3);
        assert_eq!(m.ips[0].interface, Some(2));
    }
}

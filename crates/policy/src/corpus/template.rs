//! The corpus's IP templates, computed from pod addresses as upstream does:
//! `{{ip NS/POD}}` the address, `{{host NS/POD}}` its /32 or /128, and
//! `{{net NS/POD N}}` the canonical /N that contains it (`makeLargeCIDRForIP`).

use crate::corpus::pod_key;
use crate::model::PodKey;
use ipnet::IpNet;
use std::net::IpAddr;

/// Replaces every template in `text`; `ip` gives a pod's address.
pub fn render_str(text: &str, ip: &dyn Fn(&PodKey) -> Option<IpAddr>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| format!("template {:?} has no closing }}}}", &rest[start..]))?;
        out.push_str(&expand(after[..end].trim(), ip)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn expand(inner: &str, ip: &dyn Fn(&PodKey) -> Option<IpAddr>) -> Result<String, String> {
    let words: Vec<&str> = inner.split_whitespace().collect();
    let bad = || format!("template {{{{{inner}}}}}: expected `ip NS/POD`, `host NS/POD` or `net NS/POD N`");
    let (kind, pod) = match words.as_slice() {
        [kind, pod] | [kind, pod, _] => (*kind, pod_key(pod).map_err(|e| format!("template {{{{{inner}}}}}: {e}"))?),
        _ => return Err(bad()),
    };
    let addr = ip(&pod).ok_or_else(|| format!("template {{{{{inner}}}}}: pod {pod} has no address"))?;
    let full = if addr.is_ipv4() { 32 } else { 128 };
    match (kind, words.len()) {
        ("ip", 2) => Ok(addr.to_string()),
        ("host", 2) => Ok(format!("{addr}/{full}")),
        ("net", 3) => {
            let n: u8 = words[2].parse().ok().filter(|n| *n <= full).ok_or_else(|| format!("template {{{{{inner}}}}}: prefix length {} is not 0..={full}", words[2]))?;
            Ok(IpNet::new(addr, n).map_err(|e| e.to_string())?.trunc().to_string())
        }
        _ => Err(bad()),
    }
}

/// Replaces templates in every string of a JSON value (a policy, before it is sent).
pub fn render(value: &serde_json::Value, ip: &dyn Fn(&PodKey) -> Option<IpAddr>) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    Ok(match value {
        Value::String(s) => Value::String(render_str(s, ip)?),
        Value::Array(a) => Value::Array(a.iter().map(|v| render(v, ip)).collect::<Result<_, _>>()?),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| Ok((k.clone(), render(v, ip)?))).collect::<Result<_, String>>()?),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(k: &PodKey) -> Option<IpAddr> {
        match k.to_string().as_str() {
            "x/b" => Some("10.244.2.7".parse().unwrap()),
            "y/b" => Some("fd00:10:244:1::e".parse().unwrap()),
            _ => None,
        }
    }

    #[test]
    fn host_net_and_ip_follow_upstream() {
        assert_eq!(render_str("{{host x/b}}", &ips).unwrap(), "10.244.2.7/32");
        assert_eq!(render_str("{{host y/b}}", &ips).unwrap(), "fd00:10:244:1::e/128");
        assert_eq!(render_str("{{net x/b 4}}", &ips).unwrap(), "0.0.0.0/4");
        assert_eq!(render_str("{{net x/b 16}}", &ips).unwrap(), "10.244.0.0/16");
        assert_eq!(render_str("{{net y/b 4}}", &ips).unwrap(), "f000::/4");
        assert_eq!(render_str("{{ip x/b}}", &ips).unwrap(), "10.244.2.7");
        assert_eq!(render_str("a {{ip x/b}} b {{ip x/b}}", &ips).unwrap(), "a 10.244.2.7 b 10.244.2.7");
        assert_eq!(render_str("0.0.0.0/31", &ips).unwrap(), "0.0.0.0/31");
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        assert!(render_str("{{host z/z}}", &ips).unwrap_err().contains("pod z/z has no address"));
        assert!(render_str("{{net x/b 33}}", &ips).unwrap_err().contains("prefix length 33"));
        assert!(render_str("{{cidr x/b}}", &ips).unwrap_err().contains("expected"));
        assert!(render_str("{{host x/b", &ips).unwrap_err().contains("no closing"));
        assert!(render_str("{{host b}}", &ips).unwrap_err().contains("NAMESPACE/POD"));
    }

    #[test]
    fn a_policy_is_rendered_in_every_string() {
        let v = serde_json::json!({"spec": {"egress": [{"to": [{"ipBlock": {"cidr": "{{net x/b 4}}", "except": ["{{host x/b}}"]}}], "ports": [{"port": 80}]}]}});
        let r = render(&v, &ips).unwrap();
        assert_eq!(r["spec"]["egress"][0]["to"][0]["ipBlock"], serde_json::json!({"cidr": "0.0.0.0/4", "except": ["10.244.2.7/32"]}));
        assert_eq!(r["spec"]["egress"][0]["ports"][0]["port"], 80);
    }
}

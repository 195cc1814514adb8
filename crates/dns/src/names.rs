//! Address ↔ label forms of the specification: dashed addresses (`1-2-3-4`,
//! `5678-abcd--1`) and reverse names (`4.3.2.1.in-addr.arpa.`, 32 nibbles `.ip6.arpa.`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `10.0.0.1` → `10-0-0-1`; `5678:abcd::1` → `5678-abcd--1`.
pub fn dashed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string().replace('.', "-"),
        IpAddr::V6(a) => a.to_string().replace(':', "-"),
    }
}

/// The inverse of [`dashed`]; `None` when the label is not an address.
pub fn parse_dashed(label: &str) -> Option<IpAddr> {
    if label.is_empty() || label.len() > 45 {
        return None;
    }
    let v4 = label.replace('-', ".");
    if let Ok(a) = v4.parse::<Ipv4Addr>() {
        // Only the exact form: four dashed decimal octets.
        return (a.to_string() == v4).then_some(IpAddr::V4(a));
    }
    label.replace('-', ":").parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// Labels below `in-addr.arpa`/`ip6.arpa`, most significant last (as in the name), to an
/// address; `None` unless the name is a full address.
pub fn parse_reverse(labels: &[&str]) -> Option<IpAddr> {
    match labels {
        [rest @ .., "in-addr", "arpa"] if rest.len() == 4 => {
            let mut o = [0u8; 4];
            for (i, l) in rest.iter().rev().enumerate() {
                if l.is_empty() || l.len() > 3 || (l.len() > 1 && l.starts_with('0')) {
                    return None;
                }
                o[i] = l.parse().ok()?;
            }
            Some(IpAddr::V4(Ipv4Addr::from(o)))
        }
        [rest @ .., "ip6", "arpa"] if rest.len() == 32 => {
            let mut v: u128 = 0;
            for l in rest.iter().rev() {
                if l.len() != 1 {
                    return None;
                }
                v = (v << 4) | u128::from(u8::from_str_radix(l, 16).ok()?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(v)))
        }
        _ => None,
    }
}

/// The reverse name of an address, fully qualified.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let mut s = String::with_capacity(72);
            for b in a.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s + "ip6.arpa."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashed_forms_round_trip() {
        for ip in ["172.0.0.2", "10.240.0.1", "5678:abcd::1", "fd00:77:30::2:9ba6", "::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(parse_dashed(&dashed(ip)), Some(ip), "{ip}");
        }
        assert_eq!(dashed("5678:abcd::1".parse().unwrap()), "5678-abcd--1");
        for bad in ["blah", "1-2-3", "01-2-3-4", "1-2-3-4-5", "", "dup-name"] {
            assert_eq!(parse_dashed(bad), None, "{bad}");
        }
    }

    #[test]
    fn reverse_names_round_trip() {
        for ip in ["10.0.0.100", "192.168.1.100", "1234:abcd::1", "fd00:77:30::a"] {
            let ip: IpAddr = ip.parse().unwrap();
            let name = reverse_name(ip);
            let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
            assert_eq!(parse_reverse(&labels), Some(ip), "{name}");
        }
        assert_eq!(parse_reverse(&["0", "10", "in-addr", "arpa"]), None);
        assert_eq!(parse_reverse(&["256", "0", "0", "10", "in-addr", "arpa"]), None);
    }
}

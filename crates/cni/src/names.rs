//! Deterministic names and addresses for the kernel objects an attachment
//! makes, so DEL and GC find them again without stored state.

use weft_kernel::Mac;

/// FNV-1a 64: tiny, stable across Rust releases (unlike DefaultHasher), and
/// plenty for spreading a few hundred names per node.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The host end of a pod's veth: "weft" + 11 hex digits = 15 bytes, the
/// kernel's limit. Keyed like CNI state: (network, container id, ifname).
pub fn host_veth(network: &str, container_id: &str, ifname: &str) -> String {
    let h = fnv1a(&[network, container_id, ifname]);
    format!("weft{:011x}", h >> 20)
}

/// Whether a link name looks like one [`host_veth`] made.
pub fn is_host_veth(name: &str) -> bool {
    name.len() == 15 && name.starts_with("weft") && name[4..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A fixed, locally administered unicast MAC for the bridge, so its address
/// does not change as pods (ports) come and go.
pub fn bridge_mac(network: &str, bridge: &str, gateway: &str) -> Mac {
    let h = fnv1a(&[network, bridge, gateway]).to_be_bytes();
    Mac([0x02, h[0], h[1], h[2], h[3], h[4]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_veth_names_are_short_stable_and_distinct() {
        let a = host_veth("weft", "c1", "eth0");
        assert_eq!(a.len(), 15);
        assert!(is_host_veth(&a));
        assert_eq!(a, host_veth("weft", "c1", "eth0"));
        assert_ne!(a, host_veth("weft", "c1", "eth1"));
        assert_ne!(a, host_veth("weft", "c2", "eth0"));
        assert_ne!(a, host_veth("other", "c1", "eth0"));
        let many: std::collections::HashSet<_> = (0..10_000).map(|i| host_veth("weft", &format!("c{i}"), "eth0")).collect();
        assert_eq!(many.len(), 10_000);
        assert!(!is_host_veth("weft0") && !is_host_veth("eth0"));
    }

    #[test]
    fn bridge_mac_is_local_unicast() {
        let m = bridge_mac("weft", "weft0", "10.244.1.1");
        assert_eq!(m.0[0] & 0x03, 0x02);
    }
}

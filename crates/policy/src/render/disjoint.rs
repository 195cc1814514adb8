//! Disjoint ranges for interval sets. The kernel refuses an element that overlaps one
//! already in an interval set (rbtree and pipapo alike), while a plan's peers and ports
//! may overlap (`10.0.0.0/24` on 80, and `10.0.0.5` on 80-90). So the union is cut into
//! pieces that do not overlap, and each piece is one element.

use std::collections::{BTreeMap, BTreeSet};

/// An inclusive range of addresses as numbers (IPv4 in the low 32 bits).
pub type Span = (u128, u128);

/// The union of `spans`, sorted, with overlapping and adjacent spans merged.
pub fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_unstable();
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for (first, last) in spans {
        match out.last_mut() {
            Some(prev) if first <= prev.1.saturating_add(1) => prev.1 = prev.1.max(last),
            _ => out.push((first, last)),
        }
    }
    out
}

/// A box: addresses `peers` × ports `first..=last`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortBox {
    pub peers: Span,
    pub first: u16,
    pub last: u16,
}

/// The union of `boxes`, as boxes that do not overlap: the port axis is cut where any
/// box starts or ends, each piece gets the merged addresses of the boxes that cover
/// it, and neighbouring pieces with the same addresses join again. Cost: boxes with the
/// same port range are merged first, so it grows with the number of distinct port
/// ranges squared, not boxes squared.
pub fn boxes(input: &[PortBox]) -> Vec<PortBox> {
    let mut by_ports: BTreeMap<(u16, u16), Vec<Span>> = BTreeMap::new();
    for b in input {
        by_ports.entry((b.first, b.last)).or_default().push(b.peers);
    }
    let by_ports: Vec<((u16, u16), Vec<Span>)> = by_ports.into_iter().map(|(k, v)| (k, merge(v))).collect();
    // Cut points: where a range starts, and one past where it ends.
    let mut cuts: BTreeSet<u32> = BTreeSet::new();
    for ((first, last), _) in &by_ports {
        cuts.insert(*first as u32);
        cuts.insert(*last as u32 + 1);
    }
    let cuts: Vec<u32> = cuts.into_iter().collect();
    // (first, last, peers) per piece, neighbours with equal peers joined.
    let mut pieces: Vec<(u32, u32, Vec<Span>)> = Vec::new();
    for w in cuts.windows(2) {
        let (first, last) = (w[0], w[1] - 1);
        let covering: Vec<Span> = by_ports.iter().filter(|((f, l), _)| (*f as u32) <= first && last <= *l as u32).flat_map(|(_, p)| p.iter().copied()).collect();
        if covering.is_empty() {
            continue;
        }
        let peers = merge(covering);
        match pieces.last_mut() {
            Some(prev) if prev.1 + 1 == first && prev.2 == peers => prev.1 = last,
            _ => pieces.push((first, last, peers)),
        }
    }
    pieces
        .into_iter()
        .flat_map(|(first, last, peers)| peers.into_iter().map(move |p| PortBox { peers: p, first: first as u16, last: last as u16 }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(peers: Span, first: u16, last: u16) -> PortBox {
        PortBox { peers, first, last }
    }

    fn covers(bs: &[PortBox], ip: u128, port: u16) -> usize {
        bs.iter().filter(|b| b.peers.0 <= ip && ip <= b.peers.1 && b.first <= port && port <= b.last).count()
    }

    #[test]
    fn merge_joins_overlapping_and_adjacent_spans_only() {
        assert_eq!(merge(vec![(5, 9), (0, 3), (4, 4), (11, 12), (12, 20)]), vec![(0, 9), (11, 20)]);
        assert_eq!(merge(vec![(0, u128::MAX), (3, 4)]), vec![(0, u128::MAX)]);
        assert_eq!(merge(vec![]), vec![]);
    }

    #[test]
    fn overlapping_boxes_become_disjoint_and_cover_the_same_points() {
        let input = vec![b((0, 255), 80, 80), b((5, 5), 80, 90), b((300, 310), 85, 100), b((0, 255), 81, 81)];
        let out = boxes(&input);
        for ip in [0u128, 5, 6, 255, 256, 299, 300, 305, 310, 311] {
            for port in [79u16, 80, 81, 82, 84, 85, 90, 91, 100, 101] {
                let want = input.iter().any(|x| covers(std::slice::from_ref(x), ip, port) > 0);
                let got = covers(&out, ip, port);
                assert!(got <= 1, "{ip}:{port} is in {got} output boxes: {out:?}");
                assert_eq!(got == 1, want, "{ip}:{port} in {out:?}");
            }
        }
        // 80-81 share their peers, so they are one box.
        assert!(out.contains(&b((0, 255), 80, 81)), "{out:?}");
    }

    #[test]
    fn boxes_at_the_ends_of_the_port_space() {
        let out = boxes(&[b((1, 1), 0, 65535), b((1, 1), 65535, 65535)]);
        assert_eq!(out, vec![b((1, 1), 0, 65535)]);
    }
}

//! Every conformance vector and every rule of weft's own table, through the answer
//! function and the response builder (no sockets): the pure half of the DNS server.

mod common;

use common::{check, config, objects, show, vectors, Setup};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::Name;
use weft_dns::forward::Transport;
use weft_dns::resolve::Plan;
use weft_dns::Dns;

fn plan_for(v: &common::Vector) -> Plan {
    let dns = Dns::new(config(v));
    dns.update_zone(|z| {
        *z = weft_dns::fixture::synced_zone(&objects(v));
        if v.setup == Setup::Unsynced {
            z.synced = Default::default();
        }
    });
    let mut req = Message::query();
    req.metadata.recursion_desired = true;
    req.add_query(Query::query(Name::from_ascii(v.name).unwrap(), v.qtype));
    dns.plan(Box::new(req), Transport::Udp)
}

#[test]
fn every_vector_is_answered_from_the_zone() {
    let mut failures = vec![];
    for v in vectors() {
        match plan_for(&v) {
            Plan::Done(m) if !v.upstream => {
                if let Err(e) = check(&v, &m) {
                    failures.push(e);
                }
            }
            Plan::Upstream { cnames, q, .. } if v.upstream => {
                // The cluster part (the CNAMEs) is ours; the rest comes from upstream.
                let target = q.name().to_string();
                let ours: Vec<String> = v.answers.iter().filter(|a| !a.starts_with(&target)).map(|s| s.to_string()).collect();
                let got: Vec<String> = cnames.iter().map(show).collect();
                if got != ours || target != "ext.interwebs.test." {
                    failures.push(format!("{}: cnames {got:?} then {target}, want {ours:?} then ext.interwebs.test.", v.id));
                }
            }
            Plan::Done(m) => failures.push(format!("{}: answered {:?} from the zone, want an upstream question", v.id, m.answers)),
            Plan::Upstream { q, .. } => failures.push(format!("{}: asked upstream for {q}, want an answer from the zone", v.id)),
        }
    }
    assert!(failures.is_empty(), "{} of {} vectors fail:\n{}", failures.len(), vectors().len(), failures.join("\n"));
}

#[test]
fn names_outside_the_cluster_and_unknown_reverse_names_go_upstream() {
    let v = &vectors()[0];
    let dns = Dns::new(config(v));
    dns.update_zone(|z| *z = weft_dns::fixture::synced_zone(&objects(v)));
    for name in ["example.org.", "9.9.9.10.in-addr.arpa.", "cluster.local.example."] {
        let mut req = Message::query();
        req.add_query(Query::query(Name::from_ascii(name).unwrap(), hickory_proto::rr::RecordType::A));
        assert!(matches!(dns.plan(Box::new(req), Transport::Udp), Plan::Upstream { .. }), "{name}");
    }
}

#[test]
fn a_label_holding_dots_is_not_taken_for_a_cluster_name() {
    let v = &vectors()[0];
    let dns = Dns::new(config(v));
    dns.update_zone(|z| *z = weft_dns::fixture::synced_zone(&objects(v)));
    for labels in [vec![&b"x.cluster.local"[..]], vec![&b"svc1.testns.svc"[..], b"cluster", b"local"], vec![&b"1.0.0.10.in-addr"[..], b"arpa"]] {
        let name = Name::from_labels(labels.clone()).unwrap();
        let mut req = Message::query();
        req.add_query(Query::query(name.clone(), hickory_proto::rr::RecordType::A));
        match dns.plan(Box::new(req), Transport::Udp) {
            Plan::Done(m) => assert!(m.answers.is_empty(), "{name}: {:?}", m.answers),
            Plan::Upstream { .. } => {}
        }
    }
}

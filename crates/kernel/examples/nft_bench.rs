//! nf_tables at service-proxy scale: 10,000 services x 10 endpoints.
//! Needs root; runs in a throwaway netns of its own.
//!
//!   cargo run --release -p weft-kernel --example nft_bench [services] [endpoints]
//!
//! Layout (the shape weft's proxy is meant to use):
//! - `services`: verdict map `ip daddr . meta l4proto . th dport` -> `goto svc-N`
//!   (one element per service), looked up from nat prerouting/output;
//! - `svc-N`: one rule per service: its id into r32(0), `numgen random mod E`
//!   into r32(1), `id . n` looked up in the service's endpoint shard into r1,
//!   DNAT to it;
//! - `endpoints-S` (S = id mod 64): maps `integer . integer` ->
//!   `ipv4_addr . inet_service`, holding the endpoints of their services.
//!
//! Why shards: the kernel checks each new element of a map against every
//! rule that binds it (and each new binding against every element), so one
//! global map bound from 10,000 chains makes a full load quadratic (measured
//! 67 s); a map per service instead makes set lookups by name quadratic (the
//! kernel keeps a table's sets in a list: 4.7 s load, 6.2 s read-back).
//! 64 shards keep both small.

use std::time::Instant;
use weft_kernel::nft::*;

fn vip(i: u32) -> Value {
    Value::concat([Value::be32(0x0a60_0000 + i), Value::proto(6), Value::port(80)])
}

const SHARDS: u32 = 64;

fn endpoint(svc: u32, ep: u32) -> Element {
    let pod = 0x0af4_0000 + svc * 16 + ep;
    Element::mapping(Value::concat([Value::u32(svc), Value::u32(ep)]), Value::concat([Value::be32(pod), Value::port(8080)]))
}

fn shard(svc: u32) -> Set {
    Set::map(&format!("endpoints-{}", svc % SHARDS), &[KeyType::Integer32, KeyType::Integer32], &[KeyType::Ipv4Addr, KeyType::InetService])
}

fn service_chain(i: u32, endpoints: u32) -> (Chain, Rule) {
    let name = format!("svc-{i}");
    let rule = Rule::new(&name, vec![
        Expr::load(Reg::r32(0), Value::u32(i)),
        Expr::numgen_random(Reg::r32(1), endpoints),
        Expr::map(&shard(i).name, Reg::r32(0), Reg::R1),
        Expr::dnat(NatFamily::Ipv4, Reg::R1, Some(Reg::r32(1))),
    ]);
    (Chain::regular(&name), rule)
}

fn add_service(b: &mut Batch, t: &TableRef, services: &Set, i: u32, endpoints: u32) {
    let (chain, rule) = service_chain(i, endpoints);
    b.add_chain(t, &chain).add_rule(t, &rule);
    b.add_elements(t, &shard(i), (0..endpoints).map(|e| endpoint(i, e)));
    b.add_elements(t, services, [Element::verdict(vip(i), Verdict::Goto(chain.name.clone()))]);
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u32>().expect("numbers: services endpoints"));
    let n_svc = args.next().unwrap_or(10_000);
    let n_ep = args.next().unwrap_or(10);
    weft_testns::run("nft_bench", |_| {
        let table = Table::new(Family::Ip, "weft-bench");
        let t = table.table_ref();
        let services = Set::vmap("services", &[KeyType::Ipv4Addr, KeyType::InetProto, KeyType::InetService]);
        // Chains and rules first, elements last (see Batch::add_ruleset).
        let mut rs = Ruleset::new(table.clone());
        rs.chain(Chain::base("nat-prerouting", ChainType::Nat, Hook::Prerouting, priority::DSTNAT))
            .chain(Chain::base("nat-output", ChainType::Nat, Hook::Output, priority::DSTNAT));
        let mut svc_elems = Vec::new();
        let mut shards: Vec<Vec<Element>> = vec![Vec::new(); SHARDS as usize];
        for i in 0..n_svc {
            let (chain, rule) = service_chain(i, n_ep);
            svc_elems.push(Element::verdict(vip(i), Verdict::Goto(chain.name.clone())));
            shards[(i % SHARDS) as usize].extend((0..n_ep).map(|e| endpoint(i, e)));
            rs.chain(chain).rule(rule);
        }
        for (s, elems) in shards.into_iter().enumerate() {
            rs.set(shard(s as u32), elems);
        }
        for hook in ["nat-prerouting", "nat-output"] {
            rs.rule(Rule::new(hook, [Expr::ipv4_service_key(), vec![Expr::vmap("services", Reg::R1)]].concat()));
        }
        rs.set(services.clone(), svc_elems);
        let mut full = Batch::new();
        full.add_ruleset(&rs);
        println!("shape: {n_svc} services x {n_ep} endpoints = {} map elements in {} maps, {} chains, {} rules; batch weight {}", n_svc * (n_ep + 1), SHARDS + 1, n_svc + 2, n_svc + 2, full.weight());

        let mut nft = Nft::current().expect("nft socket");
        let s = Instant::now();
        nft.commit(&full).expect("full load");
        println!("full load, one transaction: {:.3} s", s.elapsed().as_secs_f64());

        let mut add = Batch::new();
        add_service(&mut add, &t, &services, n_svc, n_ep);
        let s = Instant::now();
        nft.commit(&add).expect("incremental add");
        println!("incremental add of one service ({} elements, 1 chain, 1 rule) at that scale: {:.2} ms", n_ep + 1, s.elapsed().as_secs_f64() * 1e3);

        let mut del = Batch::new();
        del.delete_elements(&t, &services, [Element::new(vip(0))]).delete_elements(&t, &shard(0), (0..n_ep).map(|e| endpoint(0, e)));
        let s = Instant::now();
        nft.commit(&del).expect("incremental delete");
        println!("incremental delete of one service's elements: {:.2} ms", s.elapsed().as_secs_f64() * 1e3);

        let s = Instant::now();
        let rs = nft.ruleset(&t).expect("read back").expect("table");
        let elems: usize = rs.sets.iter().map(|(_, e)| e.len()).sum();
        println!("read-back of the whole table ({elems} elements, {} chains, {} rules): {:.3} s", rs.chains.len(), rs.rules.len(), s.elapsed().as_secs_f64());

        // The same content again, cut into transactions of DEFAULT_PART_WEIGHT.
        let mut reload = Batch::new();
        reload.delete_table_if_exists(&t).add_ruleset(&rs);
        let parts = reload.split(DEFAULT_PART_WEIGHT);
        let (mut total, mut worst) = (0f64, 0f64);
        for part in &parts {
            let s = Instant::now();
            nft.commit(part).expect("reload part");
            let took = s.elapsed().as_secs_f64();
            total += took;
            worst = worst.max(took);
        }
        println!("reload in {} transactions of at most {DEFAULT_PART_WEIGHT}: {total:.3} s total, longest {worst:.3} s", parts.len());
        nft.commit(Batch::new().delete_table_if_exists(&t)).unwrap();
    });
}

//! The DNS server on a synthetic cluster, for bench/dns.sh (no API server: the zone is
//! fed the same objects the watchers would deliver).
//!
//! ```text
//! serve --listen 127.0.0.1:5300 --http 127.0.0.1:9153 --services 10000 --endpoints 100000 \
//!       --sockets 1 --upstream 127.0.0.1:5399
//! serve --unbound-conf peer.conf --queries q.txt --write-only   # the same records for a peer
//! serve --stub 127.0.0.1:5399     # an upstream stub: every name A 192.0.2.1, TTL 3600
//! serve --memory                   # resident memory of a 10,000/100,000 zone
//! ```

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, Record};
use serde_json::json;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use weft_dns::{fixture, Config, Dns, Listen, ServerSpec};

struct Args {
    listen: SocketAddr,
    http: Option<SocketAddr>,
    services: usize,
    endpoints: usize,
    sockets: usize,
    upstream: Vec<SocketAddr>,
    unbound_conf: Option<String>,
    queries: Option<String>,
    stub: Option<SocketAddr>,
    memory: bool,
    /// Write `unbound_conf` and `queries`, then exit.
    write_only: bool,
    /// Time the packet path in-process (no sockets): ns per query.
    selfbench: bool,
}

fn args() -> Args {
    let mut a = Args { listen: "127.0.0.1:5300".parse().unwrap(), http: None, services: 10_000, endpoints: 100_000, sockets: 0, upstream: vec![], unbound_conf: None, queries: None, stub: None, memory: false, write_only: false, selfbench: false };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--listen" => a.listen = v().parse().expect("--listen IP:PORT"),
            "--http" => a.http = Some(v().parse().expect("--http IP:PORT")),
            "--services" => a.services = v().parse().expect("--services N"),
            "--endpoints" => a.endpoints = v().parse().expect("--endpoints N"),
            "--sockets" => a.sockets = v().parse().expect("--sockets N"),
            "--upstream" => a.upstream = weft_dns::config::parse_servers(&v()).expect("--upstream IP:PORT"),
            "--unbound-conf" => a.unbound_conf = Some(v()),
            "--queries" => a.queries = Some(v()),
            "--stub" => a.stub = Some(v().parse().expect("--stub IP:PORT")),
            "--memory" => a.memory = true,
            "--write-only" => a.write_only = true,
            "--selfbench" => a.selfbench = true,
            _ => panic!("unknown argument {k}"),
        }
    }
    a
}

/// Service `i`: `svc-i.ns-(i % 100)`, every tenth headless; endpoints spread evenly.
/// Objects go to `sink` one service at a time, as watch events would arrive.
fn objects(services: usize, endpoints: usize, mut sink: impl FnMut(&[serde_json::Value])) -> Vec<(String, Vec<Ipv4Addr>)> {
    let per = endpoints / services.max(1);
    let mut records = vec![];
    for n in 0..100.min(services) {
        sink(&[fixture::namespace(&format!("ns-{n}"))]);
    }
    let ports = json!([{"name": "http", "port": 80, "protocol": "TCP"}]);
    for i in 0..services {
        let (ns, name) = (format!("ns-{}", i % 100), format!("svc-{i}"));
        let headless = i % 10 == 0;
        let cip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + 16 + i as u32);
        let eps: Vec<Ipv4Addr> = (0..per).map(|e| Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + (i * per + e) as u32)).collect();
        let ips: Vec<String> = eps.iter().map(|e| e.to_string()).collect();
        let list: Vec<(&str, Option<&str>)> = ips.iter().map(|s| (s.as_str(), None)).collect();
        let cips = if headless { vec!["None".to_string()] } else { vec![cip.to_string()] };
        let cips: Vec<&str> = cips.iter().map(|s| s.as_str()).collect();
        sink(&[fixture::service(&ns, &name, &cips, ports.clone()), fixture::slice(&ns, &name, &format!("{name}-x"), "IPv4", &list, ports.clone())]);
        let fq = format!("{name}.{ns}.svc.cluster.local.");
        records.push((fq, if headless { eps } else { vec![cip] }));
    }
    records
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status").unwrap_or_default().lines().find_map(|l| l.strip_prefix("VmRSS:").and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())).unwrap_or(0)
}

fn stub(at: SocketAddr) -> ! {
    let s = std::net::UdpSocket::bind(at).expect("stub bind");
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = s.recv_from(&mut buf) else { continue };
        let Ok(req) = Message::from_vec(&buf[..n]) else { continue };
        let Some(q) = req.queries.first().cloned() else { continue };
        let mut m = Message::response(req.id, req.op_code);
        m.metadata.recursion_available = true;
        m.metadata.recursion_desired = req.recursion_desired;
        m.add_query(q.clone());
        if q.query_type() == hickory_proto::rr::RecordType::A {
            m.answers.push(Record::from_rdata(q.name().clone(), 3600, RData::A(Ipv4Addr::new(192, 0, 2, 1).into())));
        }
        if let Ok(b) = m.to_vec() {
            let _ = s.send_to(&b, peer);
        }
    }
}

fn main() -> anyhow::Result<()> {
    let a = args();
    if let Some(at) = a.stub {
        stub(at);
    }
    let dns = Dns::new(Config::new("cluster.local", a.upstream.clone()));
    let before = rss_kib();
    let records = objects(a.services, a.endpoints, |objs| dns.update_zone(|z| fixture::load(z, objs).expect("valid objects")));
    dns.update_zone(|z| z.synced = weft_dns::zone::Synced { services: true, slices: true, namespaces: true, pods: true });
    let (s, e, r) = dns.zone().counts();
    if a.memory {
        let with_records = rss_kib();
        drop(records);
        trim();
        let after = rss_kib();
        println!(
            "zone: {s} services, {e} endpoints, {r} reverse entries: {:.1} MiB resident for the zone; process {:.1} MiB (before {:.1} MiB; {:.1} MiB with the benchmark's own record list)",
            after.saturating_sub(before) as f64 / 1024.0,
            after as f64 / 1024.0,
            before as f64 / 1024.0,
            with_records as f64 / 1024.0
        );
        return Ok(());
    }
    if a.selfbench {
        selfbench(&dns, &records);
        return Ok(());
    }
    if let Some(p) = &a.unbound_conf {
        let mut f = std::io::BufWriter::new(std::fs::File::create(p)?);
        writeln!(f, "server:\n  local-zone: \"cluster.local.\" static")?;
        for (name, ips) in &records {
            for ip in ips {
                writeln!(f, "  local-data: \"{name} 5 IN A {ip}\"")?;
            }
        }
    }
    if let Some(p) = &a.queries {
        let mut f = std::io::BufWriter::new(std::fs::File::create(p)?);
        for (name, _) in records.iter().step_by((records.len() / 5000).max(1)) {
            writeln!(f, "{name} A")?;
        }
    }
    if a.write_only {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    rt.block_on(async {
        let spec = ServerSpec { netns: None, listen: vec![Listen { dns: a.listen, http: a.http }], udp_sockets: a.sockets };
        let _server = weft_dns::server::start(dns.clone(), &spec)?;
        println!("serving {s} services, {e} endpoints on {}", a.listen);
        tokio::signal::ctrl_c().await?;
        anyhow::Ok(())
    })
}

/// Hands freed heap back to the OS so resident memory shows what is live.
fn trim() {
    // SAFETY: malloc_trim only releases free memory of glibc's heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn selfbench(dns: &Dns, records: &[(String, Vec<Ipv4Addr>)]) {
    use hickory_proto::op::Query;
    use hickory_proto::rr::{Name, RecordType};
    let packets = |headless: bool| -> Vec<Vec<u8>> {
        records
            .iter()
            .filter(|(_, ips)| (ips.len() > 1) == headless)
            .take(2000)
            .map(|(n, _)| {
                let mut m = Message::query();
                m.metadata.recursion_desired = true;
                m.add_query(Query::query(Name::from_ascii(n).unwrap(), RecordType::A));
                m.to_vec().unwrap()
            })
            .collect()
    };
    for (what, ps) in [("ClusterIP (kept encoded after the first)", packets(false)), ("headless, 10 rotating A records", packets(true))] {
        let n = 400_000;
        let t = std::time::Instant::now();
        for i in 0..n {
            let p = &ps[i % ps.len()];
            std::hint::black_box(dns.handle_bytes(p, weft_dns::forward::Transport::Udp, std::time::Instant::now()));
        }
        println!("{what}: {:.0} ns per query in-process", t.elapsed().as_nanos() as f64 / n as f64);
    }
}

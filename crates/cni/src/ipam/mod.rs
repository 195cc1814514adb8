//! IP address management from the node's pod CIDR(s), host-local style:
//! a persistent log under the data dir, one lock for all processes.

mod legacy;
mod pool;
mod store;

pub use pool::Pool;
pub use store::Store;

use crate::config::NetConfig;
use crate::error::{code, CniError};
use crate::request::Attachment;
use ipnet::IpNet;
use std::collections::HashSet;
use std::net::IpAddr;

/// One address handed to an attachment, with its subnet's prefix and gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub address: IpNet,
    pub gateway: IpAddr,
}

/// Runs IPAM file work (which may wait on the store lock) without parking
/// async tasks behind it and without a thread spawn per call: on a
/// multi-thread runtime the worker hands its other tasks off; on a
/// current-thread runtime (the plugin binary) there is nothing else to run.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn io_err(conf: &NetConfig, e: std::io::Error) -> CniError {
    CniError::new(
        code::IO,
        format!("IPAM store {} failed: {e}", conf.store_dir().display()),
    )
}

pub fn pools(conf: &NetConfig) -> Vec<Pool> {
    conf.ipam.subnets.iter().map(|s| Pool::new(*s)).collect()
}

fn lease_for(pools: &[Pool], ip: IpAddr) -> Option<Lease> {
    pools.iter().find(|p| p.subnet().contains(&ip)).map(|p| Lease {
        address: IpNet::new(ip, p.subnet().prefix_len()).expect("prefix fits"),
        gateway: p.gateway(),
    })
}

/// Hands one address per subnet to `a`. An attachment that already holds
/// addresses gets error 100: the spec forbids a second ADD without a DEL.
pub fn allocate(conf: &NetConfig, a: &Attachment) -> Result<Vec<Lease>, CniError> {
    let mut store = Store::lock(&conf.store_dir()).map_err(|e| io_err(conf, e))?;
    if let Some(ips) = store.allocation(a) {
        let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
        return Err(CniError::new(
            code::ALREADY_ATTACHED,
            format!(
                "container {} is already attached as {} (addresses {}): DEL it before adding it again",
                a.container_id,
                a.ifname,
                list.join(", ")
            ),
        ));
    }
    let pools = pools(conf);
    let mut got: Vec<IpAddr> = Vec::new();
    for pool in &pools {
        let Some(ip) = pool.next_free(store.last_reserved(pool.is_v6()), |ip| store.is_taken(ip)) else {
            return Err(CniError::new(
                code::POOL_EXHAUSTED,
                format!("no free address left in subnet {} of network {}", pool.subnet(), conf.name),
            ));
        };
        got.push(ip);
    }
    store.add(a, &got).map_err(|e| io_err(conf, e))?;
    Ok(got.iter().filter_map(|ip| lease_for(&pools, *ip)).collect())
}

/// The leases `a` holds, if any.
pub fn lookup(conf: &NetConfig, a: &Attachment) -> Result<Option<Vec<Lease>>, CniError> {
    let store = Store::lock(&conf.store_dir()).map_err(|e| io_err(conf, e))?;
    let pools = pools(conf);
    Ok(store
        .allocation(a)
        .map(|ips| ips.into_iter().filter_map(|ip| lease_for(&pools, ip)).collect()))
}

/// Frees what `a` holds; freeing nothing is fine (DEL is idempotent).
pub fn release(conf: &NetConfig, a: &Attachment) -> Result<Vec<IpAddr>, CniError> {
    if !conf.store_dir().exists() {
        return Ok(Vec::new());
    }
    let mut store = Store::lock(&conf.store_dir()).map_err(|e| io_err(conf, e))?;
    store.release(a).map_err(|e| io_err(conf, e))
}

/// Frees every allocation whose attachment is not in `valid`. Returns the
/// attachments dropped.
pub fn gc(conf: &NetConfig, valid: &HashSet<Attachment>) -> Result<Vec<Attachment>, CniError> {
    if !conf.store_dir().exists() {
        return Ok(Vec::new());
    }
    let mut store = Store::lock(&conf.store_dir()).map_err(|e| io_err(conf, e))?;
    let mut dropped = Vec::new();
    for a in store.attachments() {
        if !valid.contains(&a) {
            store.release(&a).map_err(|e| io_err(conf, e))?;
            dropped.push(a);
        }
    }
    Ok(dropped)
}

/// Subnets with no free address left (STATUS reports them).
pub fn exhausted(conf: &NetConfig) -> Result<Vec<IpNet>, CniError> {
    let store = Store::lock(&conf.store_dir()).map_err(|e| io_err(conf, e))?;
    let reserved = store.reserved();
    Ok(pools(conf)
        .into_iter()
        .filter(|p| {
            let used = reserved.iter().filter(|ip| p.is_allocatable(**ip)).count() as u128;
            used >= p.size()
        })
        .map(|p| p.subnet())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(dir: &std::path::Path, subnets: &[&str]) -> NetConfig {
        NetConfig::new("net", subnets.iter().map(|s| s.parse().unwrap()).collect(), dir.to_path_buf()).unwrap()
    }
    fn att(c: &str) -> Attachment {
        Attachment { container_id: c.into(), ifname: "eth0".into() }
    }

    #[test]
    fn dual_stack_allocation_persists_and_releases() {
        let d = tempfile::tempdir().unwrap();
        let c = conf(d.path(), &["10.1.0.0/24", "fd00:1::/64"]);
        let l = allocate(&c, &att("a")).unwrap();
        assert_eq!(l[0].address.to_string(), "10.1.0.2/24");
        assert_eq!(l[0].gateway.to_string(), "10.1.0.1");
        assert_eq!(l[1].address.to_string(), "fd00:1::2/64");
        assert_eq!(lookup(&c, &att("a")).unwrap(), Some(l.clone()));
        let e = allocate(&c, &att("a")).unwrap_err();
        assert_eq!(e.code, code::ALREADY_ATTACHED);
        assert!(e.msg.contains("10.1.0.2"), "{e}");
        let l2 = allocate(&c, &att("b")).unwrap();
        assert_eq!(l2[0].address.to_string(), "10.1.0.3/24");
        assert_eq!(release(&c, &att("a")).unwrap().len(), 2);
        assert_eq!(release(&c, &att("a")).unwrap().len(), 0);
        assert_eq!(lookup(&c, &att("a")).unwrap(), None);
        // Round-robin: the freed .2 is not reused right away.
        assert_eq!(allocate(&c, &att("c")).unwrap()[0].address.to_string(), "10.1.0.4/24");
    }

    #[test]
    fn exhaustion_is_error_102_and_takes_nothing_from_the_other_family() {
        let d = tempfile::tempdir().unwrap();
        let c = conf(d.path(), &["fd00:1::/64", "10.1.0.0/30"]);
        allocate(&c, &att("a")).unwrap();
        assert_eq!(exhausted(&c).unwrap(), vec!["10.1.0.0/30".parse::<IpNet>().unwrap()]);
        let e = allocate(&c, &att("b")).unwrap_err();
        assert_eq!(e.code, code::POOL_EXHAUSTED);
        assert!(e.msg.contains("10.1.0.0/30"), "{e}");
        let store = Store::lock(&c.store_dir()).unwrap();
        assert_eq!(store.reserved().len(), 2, "b took nothing");
    }

    #[test]
    fn gc_keeps_valid_attachments_and_frees_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let c = conf(d.path(), &["10.1.0.0/24"]);
        for id in ["a", "b", "c"] {
            allocate(&c, &att(id)).unwrap();
        }
        let valid: HashSet<_> = [att("b")].into_iter().collect();
        let mut dropped = gc(&c, &valid).unwrap();
        dropped.sort();
        assert_eq!(dropped, vec![att("a"), att("c")]);
        let store = Store::lock(&c.store_dir()).unwrap();
        assert_eq!(store.reserved(), vec!["10.1.0.3".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn concurrent_allocations_from_threads_never_collide() {
        let d = tempfile::tempdir().unwrap();
        let c = conf(d.path(), &["10.1.0.0/24"]);
        let ips: Vec<IpNet> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..40).map(|i| {
                let c = &c;
                s.spawn(move || allocate(c, &att(&format!("c{i}"))).unwrap()[0].address)
            }).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let distinct: HashSet<_> = ips.iter().collect();
        assert_eq!(distinct.len(), 40);
    }
}

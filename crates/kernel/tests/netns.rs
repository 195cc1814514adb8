//! Namespaces: create/open/remove, run_in, and sysctls reaching only their netns.

use weft_kernel::{run_in, run_in_async, sysctl, Handle, Netns};

#[test]
fn created_netns_is_distinct_and_removable() {
    weft_testns::run("created_netns_is_distinct_and_removable", |t| {
        let path = t.dir().join("pod-a");
        let ns = Netns::create(&path).expect("create");
        let here = Netns::current().unwrap();
        assert!(!ns.same_as(&here).unwrap());
        let again = Netns::open(&path).unwrap();
        assert!(again.same_as(&ns).unwrap());
        // Creating over an existing file is refused, naming the path.
        let err = Netns::create(&path).unwrap_err().to_string();
        assert!(err.contains("pod-a"), "{err}");
        drop((ns, again));
        Netns::remove(&path).unwrap();
        assert!(!path.exists());
        Netns::remove(&path).expect("removing twice succeeds");
    });
}

#[test]
fn open_rejects_a_plain_file() {
    weft_testns::run("open_rejects_a_plain_file", |t| {
        let path = t.dir().join("plain");
        std::fs::write(&path, b"").unwrap();
        let err = Netns::open(&path).unwrap_err().to_string();
        assert!(err.contains("not a network namespace"), "{err}");
        let err = Netns::open(&t.dir().join("missing")).unwrap_err();
        assert!(err.is_not_found(), "{err}");
    });
}

#[test]
fn run_in_enters_the_namespace_without_moving_the_caller() {
    weft_testns::run("run_in_enters_the_namespace", |t| {
        let ns = Netns::create(&t.dir().join("pod")).unwrap();
        let inside = run_in(&ns, || Netns::current().unwrap()).unwrap();
        assert!(inside.same_as(&ns).unwrap());
        assert!(!Netns::current().unwrap().same_as(&ns).unwrap());
        let links = run_in_async(&ns, || async {
            let h = Handle::current().unwrap();
            h.links().await.unwrap()
        })
        .unwrap();
        assert_eq!(links.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["lo"]);
        Netns::remove(&t.dir().join("pod")).unwrap();
    });
}

#[test]
fn sysctl_is_per_netns() {
    weft_testns::run("sysctl_is_per_netns", |t| {
        let ns = Netns::create(&t.dir().join("pod")).unwrap();
        sysctl::write(None, "net/ipv4/ip_forward", "0").unwrap();
        sysctl::enable_ip_forward(Some(&ns)).unwrap();
        assert_eq!(sysctl::read(Some(&ns), "net/ipv4/ip_forward").unwrap(), "1");
        assert_eq!(sysctl::read(None, "net/ipv4/ip_forward").unwrap(), "0");
        assert!(sysctl::write(None, "../etc/passwd", "x").is_err());
        Netns::remove(&t.dir().join("pod")).unwrap();
    });
}

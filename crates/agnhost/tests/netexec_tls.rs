//! netexec over HTTPS: with given certificate files, and with the image's
//! well-known /localhost.crt that weft stands in for.

mod common;

use common::tls::{accepting_any, https_get, ip_sans, trusting};
use common::*;
use std::sync::{Arc, Mutex};

#[test]
fn https_is_served_with_the_given_certificate() {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let (_p, http, _) = netexec(&[&format!("--tls-cert-file={}", cert.display()), &format!("--tls-private-key-file={}", key.display())]);
    let r = https_get(http, "/hostname", trusting(ck.cert.der().clone()));
    assert_eq!((r.status, r.body), (200, hostname()));
}

#[test]
fn missing_image_localhost_certificate_is_replaced_by_a_builtin_one() {
    let (_p, http, _) = netexec(&["--tls-cert-file=/nonexistent-weft-test/localhost.crt", "--tls-private-key-file=/nonexistent-weft-test/localhost.key"]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let r = https_get(http, "/echo?msg=tls", accepting_any(seen.clone()));
    assert_eq!((r.status, r.body.as_str()), (200, "tls"));
    let sans = ip_sans(&seen.lock().unwrap()[0]);
    assert!(sans.contains(&"127.0.0.1".to_string()) && sans.contains(&"::1".to_string()), "{sans:?}");
}

#[test]
fn unreadable_certificate_files_exit_one() {
    let p = InProcess::start(&["netexec", &format!("--http-port={}", free_port()), "--udp-port=-1", "--tls-cert-file=/nonexistent-weft-test/other.crt"]);
    assert_eq!(p.exit_code(STEP_TIMEOUT), Some(1));
}

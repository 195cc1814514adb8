//! netexec's /dial: one netexec reaching another over HTTP, UDP and SCTP on
//! 127.0.0.1, the way the e2e connectivity checks use it.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

#[test]
fn dial_http_returns_the_targets_answers() {
    let (_client, client_http, _) = netexec(&[]);
    let (_target, target_http, _) = netexec(&[]);
    let r = get(client_http, &format!("/dial?request=hostname&protocol=http&host=127.0.0.1&port={target_http}&tries=2"));
    assert_eq!(r.status, 200);
    assert_eq!(json(&r.body), json!({"responses": [hostname(), hostname()]}));
}

#[test]
fn dial_http_passes_the_request_path_and_query() {
    let (_client, client_http, _) = netexec(&[]);
    let (_target, target_http, _) = netexec(&[]);
    let r = get(client_http, &format!("/dial?request=echo%3Fmsg%3Dhi&host=127.0.0.1&port={target_http}"));
    assert_eq!(json(&r.body), json!({"responses": ["hi"]}));
}

#[test]
fn dial_http_follows_redirects() {
    let (_client, client_http, _) = netexec(&[]);
    let (_target, target_http, _) = netexec(&[]);
    let r = get(client_http, &format!("/dial?request=redirect%3Flocation%3D%2Fhostname&host=127.0.0.1&port={target_http}"));
    assert_eq!(json(&r.body), json!({"responses": [hostname()]}));
}

#[test]
fn dial_udp_sends_the_request_as_a_command() {
    let (_client, client_http, _) = netexec(&[]);
    let (_target, _, target_udp) = netexec(&[]);
    let dial = |req: &str| json(&get(client_http, &format!("/dial?request={req}&protocol=udp&host=127.0.0.1&port={target_udp}")).body);
    assert_eq!(dial("hostname"), json!({"responses": [hostname()]}));
    assert_eq!(dial("echo%20Hello"), json!({"responses": ["hello"]}));
    let ip = dial("clientip")["responses"][0].as_str().unwrap().to_string();
    assert!(ip.starts_with("127.0.0.1:"), "{ip}");
}

#[test]
fn dial_to_a_closed_port_reports_errors_only() {
    let (_client, client_http, _) = netexec(&[]);
    let closed = free_port();
    let r = get(client_http, &format!("/dial?request=hostname&host=127.0.0.1&port={closed}&tries=2"));
    assert_eq!(r.status, 200);
    let v = json(&r.body);
    assert!(v.get("responses").is_none(), "{v}");
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    let want = format!("Get \"http://127.0.0.1:{closed}/hostname\": dial tcp 127.0.0.1:{closed}: connect: connection refused");
    assert_eq!(errors[0], want);

    let r = get(client_http, &format!("/dial?request=hostname&protocol=udp&host=127.0.0.1&port={closed}"));
    let err = json(&r.body)["errors"][0].as_str().unwrap().to_string();
    assert!(err.starts_with("reading from udp connection failed. err:'read udp 127.0.0.1:") && err.ends_with(&format!("->127.0.0.1:{closed}: read: connection refused'")), "{err}");
}

#[test]
fn dial_rejects_bad_parameters_with_400() {
    let (_client, client_http, _) = netexec(&[]);
    let r = get(client_http, "/dial?host=127.0.0.1&port=1");
    assert_eq!((r.status, r.body.as_str()), (400, "request parameter not specified. <nil>\n"));
    let r = get(client_http, "/dial?request=x&host=127.0.0.1&port=1&tries=many");
    assert_eq!(r.status, 400);
    assert!(r.body.starts_with("tries parameter is invalid. "), "{}", r.body);
    let r = get(client_http, "/dial?request=x&host=127.0.0.1&port=1&protocol=quic");
    assert_eq!((r.status, r.body.as_str()), (400, "unsupported protocol. quic\n"));
    let r = get(client_http, "/dial?request=x&host=127.0.0.1&port=99999");
    assert_eq!(r.status, 400);
    assert!(r.body.starts_with("host and/or port param are invalid. "), "{}", r.body);
}

#[test]
fn dial_with_zero_tries_answers_an_empty_object() {
    let (_client, client_http, _) = netexec(&[]);
    assert_eq!(get(client_http, "/dial?request=hostname&host=127.0.0.1&port=1&tries=0").body, "{}");
}

#[test]
fn dial_sctp_names_the_missing_kernel_support() {
    if weft_agnhost::sctp::kernel_supports_sctp() {
        // With SCTP, a closed loopback port is refused by the peer's stack.
        let (_client, client_http, _) = netexec(&[]);
        let r = get(client_http, &format!("/dial?request=hostname&protocol=sctp&host=127.0.0.1&port={}", free_port()));
        assert!(json(&r.body)["errors"][0].as_str().unwrap().starts_with("sctp dial failed."), "{}", r.body);
        return;
    }
    let (_client, client_http, _) = netexec(&[]);
    let r = get(client_http, &format!("/dial?request=hostname&protocol=sctp&host=127.0.0.1&port={}", free_port()));
    assert_eq!(r.status, 200);
    let err = json(&r.body)["errors"][0].as_str().unwrap().to_string();
    assert!(err.starts_with("sctp dial failed. err:") && err.contains("this kernel has no SCTP support"), "{err}");
}

#[test]
fn udp_commands_answer_directly() {
    let (_p, _, udp_port) = netexec(&[]);
    let wait = Duration::from_secs(5);
    assert_eq!(udp(udp_port, "hostname", wait).as_deref(), Some(hostname().as_str()));
    assert_eq!(udp(udp_port, "  ECHO Mixed Case \n", wait).as_deref(), Some("mixed case"));
    assert!(udp(udp_port, "clientip", wait).unwrap().starts_with("127.0.0.1:"));
    assert_eq!(udp(udp_port, "nonsense", Duration::from_millis(300)), None, "unknown commands get no answer");
}

#[test]
fn udp_listen_addresses_bind_only_those_addresses() {
    let (_p, http, udp_port) = netexec(&["--udp-listen-addresses=127.0.0.1"]);
    assert_eq!(udp(udp_port, "hostname", Duration::from_secs(5)).as_deref(), Some(hostname().as_str()));
    assert_eq!(get(http, "/healthz").status, 200);
    // The port is taken on 127.0.0.1 only; the wildcard address is still free.
    assert!(std::net::UdpSocket::bind(("127.0.0.2", udp_port)).is_ok());
}

#[test]
fn sctp_port_without_kernel_support_keeps_http_and_udp_serving() {
    let sctp_port = free_port();
    let (_p, http, udp_port) = netexec(&[&format!("--sctp-port={sctp_port}")]);
    assert_eq!(get(http, "/hostname").body, hostname());
    assert_eq!(udp(udp_port, "hostname", Duration::from_secs(5)).as_deref(), Some(hostname().as_str()));
    assert_eq!(get(http, "/healthz").status, 200);
}

//! netexec's HTTP endpoints, served in-process on loopback.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn root_returns_the_time() {
    let (_p, http, _) = netexec(&[]);
    let r = get(http, "/");
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("NOW: "), "{}", r.body);
    assert!(r.body.contains(" m=+"), "{}", r.body);
}

#[test]
fn clientip_returns_the_callers_ip_and_port() {
    let (_p, http, _) = netexec(&[]);
    let r = get(http, "/clientip");
    assert_eq!(r.status, 200);
    let (ip, port) = r.body.rsplit_once(':').expect("ip:port");
    assert_eq!(ip, "127.0.0.1", "an IPv4 peer of the dual-stack socket reads as IPv4");
    assert!(port.parse::<u16>().is_ok());
}

#[test]
fn hostname_and_legacy_hostname_return_the_hostname() {
    let (_p, http, _) = netexec(&[]);
    assert_eq!(get(http, "/hostname").body, hostname());
    assert_eq!(get(http, "/hostName").body, hostname());
}

#[test]
fn echo_returns_msg_with_optional_status() {
    let (_p, http, _) = netexec(&[]);
    let r = get(http, "/echo?msg=hello%20there");
    assert_eq!((r.status, r.body.as_str()), (200, "hello there"));
    let r = get(http, "/echo?msg=teapot&code=418");
    assert_eq!((r.status, r.body.as_str()), (418, "teapot"));
    let r = get(http, "/echo?msg=x&code=abc");
    assert_eq!((r.status, r.body.as_str()), (200, "argument 'code' must be an integer or empty, got \"abc\"\n"));
}

#[test]
fn echo_reads_urlencoded_post_bodies_before_the_query() {
    let (_p, http, _) = netexec(&[]);
    let r = request(http, "POST", "/echo?msg=query", &[("Content-Type", "application/x-www-form-urlencoded")], b"msg=body");
    assert_eq!(r.body, "body");
}

#[test]
fn header_returns_one_header_or_all_as_json() {
    let (_p, http, _) = netexec(&[]);
    let r = request(http, "GET", "/header?key=X-Forwarded-For", &[("X-Forwarded-For", "10.0.0.1")], b"");
    assert_eq!(r.body, "10.0.0.1");
    let r = request(http, "GET", "/header", &[("x-test", "a")], b"");
    let v = json(&r.body);
    assert_eq!(v["X-Test"], serde_json::json!(["a"]));
    assert!(v.get("Host").is_none(), "Go keeps Host out of the header map");
}

#[test]
fn healthz_and_readyz_are_ok_once_udp_serves() {
    let (_p, http, _) = netexec(&[]);
    assert_eq!(get(http, "/healthz").status, 200);
    let r = get(http, "/readyz");
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
}

#[test]
fn healthz_fails_precondition_without_a_udp_or_sctp_server() {
    let (_p, http, _) = netexec(&["--udp-port=-1"]);
    assert_eq!(get(http, "/healthz").status, 412);
    assert_eq!(get(http, "/readyz").status, 412);
}

#[test]
fn redirect_answers_with_location_and_status() {
    let (_p, http, _) = netexec(&[]);
    let r = get(http, "/redirect?location=/echo%3Fmsg%3Dfoobar");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("Location"), Some("/echo?msg=foobar"));
    assert_eq!(r.body, "<a href=\"/echo?msg=foobar\">Found</a>.\n\n");
    let r = get(http, "/redirect?location=/hostname&code=307");
    assert_eq!((r.status, r.header("Location")), (307, Some("/hostname")));
    let r = get(http, "/redirect?location=hostname");
    assert_eq!(r.header("Location"), Some("/hostname"), "relative targets resolve against the request path");
}

#[test]
fn unclean_paths_are_redirected_like_go_servemux() {
    let (_p, http, _) = netexec(&[]);
    let r = get(http, "//hostname?x=1");
    assert_eq!((r.status, r.header("Location")), (301, Some("/hostname?x=1")));
}

#[test]
fn unknown_paths_fall_through_to_root() {
    let (_p, http, _) = netexec(&[]);
    assert!(get(http, "/no/such/endpoint").body.starts_with("NOW: "));
}

#[test]
fn shell_runs_the_command_and_reports_output_and_error() {
    let (_p, http, _) = netexec(&[]);
    let r = get(http, "/shell?shellCommand=echo%20hi%3B%20echo%20%27a%3Cb%3E%27%20%3E%262");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, r#"{"output":"hi\na\u003cb\u003e\n"}"#, "stderr joins stdout; Go's JSON escapes < and >");
    let r = get(http, "/shell?cmd=exit%203");
    assert_eq!(r.body, r#"{"error":"exit status 3"}"#);
}

#[test]
fn upload_writes_the_file_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = format!("--upload-dir={}", dir.path().display());
    let (_p, http, _) = netexec(&[&dir_arg]);
    let body = b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\n\r\npayload\r\n--BOUNDARY--\r\n";
    let r = request(http, "POST", "/upload", &[("Content-Type", "multipart/form-data; boundary=BOUNDARY")], body);
    assert_eq!(r.status, 201, "{}", r.body);
    let path = json(&r.body)["output"].as_str().unwrap().to_string();
    assert!(path.starts_with(&dir.path().join("upload").display().to_string()), "{path}");
    assert_eq!(std::fs::read(&path).unwrap(), b"payload");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o700);

    let r = request(http, "POST", "/upload", &[], b"");
    assert_eq!((r.status, r.body.as_str()), (200, r#"{"error":"Unable to upload file."}"#));
}

#[test]
fn http_override_serves_every_request_as_the_override() {
    let (_p, http, _) = netexec(&["--http-override=/echo?msg=overridden"]);
    assert_eq!(get(http, "/hostname").body, "overridden");
    assert_eq!(get(http, "/anything/else").body, "overridden");
}

#[test]
fn exit_with_timeout_answers_then_exits_with_the_code() {
    let (p, http, _) = netexec(&[]);
    let r = get(http, "/exit?code=7&timeout=1s");
    assert_eq!(r.status, 200);
    assert_eq!(p.exit_code(STEP_TIMEOUT), Some(7));
}

#[test]
fn exit_without_timeout_exits_at_once() {
    let (p, http, _) = netexec(&[]);
    std::thread::spawn(move || {
        let _ = std::panic::catch_unwind(|| get(http, "/exit?code=5"));
    });
    assert_eq!(p.exit_code(STEP_TIMEOUT), Some(5));
}

#[test]
fn exit_rejects_bad_arguments_and_keeps_running() {
    let (p, http, _) = netexec(&[]);
    let r = get(http, "/exit?code=abc");
    assert_eq!(r.body, "argument 'code' must be an integer [0-127] or empty, got \"abc\"\n");
    let r = get(http, "/exit?timeout=5");
    assert_eq!(r.body, "argument 'timeout' must be a valid golang duration or empty, got \"5\"\n");
    assert_eq!(p.exit_code(Duration::from_millis(200)), None);
}

#[test]
fn shutdown_exits_zero() {
    let (p, http, _) = netexec(&[]);
    std::thread::spawn(move || {
        let _ = std::panic::catch_unwind(|| get(http, "/shutdown"));
    });
    assert_eq!(p.exit_code(STEP_TIMEOUT), Some(0));
}

#[test]
fn bad_flags_exit_one() {
    let p = InProcess::start(&["netexec", "--http-port=notaport"]);
    assert_eq!(p.exit_code(STEP_TIMEOUT), Some(1));
    let p = InProcess::start(&["no-such-subcommand"]);
    assert_eq!(p.exit_code(STEP_TIMEOUT), Some(1));
}

//! netexec's small endpoints. Bodies, status codes and messages follow
//! upstream's handlers, quirks included (bad parameters answer 200 with a
//! message; /healthz never turns ready without a UDP or SCTP server).

use super::mux::Call;
use super::{Exit, State};
use crate::go_duration::GoDuration;
use crate::golog::golog;
use crate::http_server::{go_error, text, Abort, Body, Reply};
use crate::{go_errors, go_json, hostname};
use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Go's r.FormValue: urlencoded POST/PUT/PATCH body values first, then the query.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub async fn read(call: &mut Call) -> Form {
        let mut pairs = Vec::new();
        let urlencoded = call.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")));
        let has_form_body = matches!(call.method, Method::POST | Method::PUT | Method::PATCH) && urlencoded;
        if let (true, Some(body)) = (has_form_body, call.body.take()) {
            // Go caps urlencoded bodies at 10 MB.
            if let Ok(collected) = Limited::new(body, 10 << 20).collect().await {
                pairs.extend(url::form_urlencoded::parse(&collected.to_bytes()).into_owned());
            }
        }
        pairs.extend(url::form_urlencoded::parse(call.query.as_bytes()).into_owned());
        Form(pairs)
    }

    pub fn get(&self, key: &str) -> String {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default()
    }
}

pub fn root(state: &State) -> Reply {
    golog!("GET /");
    Ok(text(StatusCode::OK, format!("NOW: {}", go_now(state))))
}

/// Go's time.Now().String(): local time, nanoseconds without trailing zeros,
/// zone, and the monotonic reading since start.
fn go_now(state: &State) -> String {
    let now = chrono::Local::now();
    let nanos = format!("{:09}", now.timestamp_subsec_nanos());
    let nanos = nanos.trim_end_matches('0');
    let frac = if nanos.is_empty() { String::new() } else { format!(".{nanos}") };
    let offset = now.format("%z").to_string();
    let zone = if offset == "+0000" { "UTC".to_string() } else { offset.clone() };
    let mono = state.started.elapsed().as_secs_f64();
    format!("{}{frac} {offset} {zone} m=+{mono:.9}", now.format("%Y-%m-%d %H:%M:%S"))
}

pub fn clientip(call: &Call) -> Reply {
    golog!("GET /clientip");
    let addr = call.peer.map(|p| go_errors::canonical(p).to_string()).unwrap_or_default();
    Ok(text(StatusCode::OK, addr))
}

pub async fn header(mut call: Call) -> Reply {
    let key = Form::read(&mut call).await.get("key");
    if !key.is_empty() {
        golog!("GET /header?key={key}");
        // Go keeps Host out of r.Header.
        let value = if key.eq_ignore_ascii_case("host") { None } else { call.headers.get(key.as_str()) };
        return Ok(text(StatusCode::OK, value.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).unwrap_or_default()));
    }
    golog!("GET /header");
    let mut all: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &call.headers {
        if name == header::HOST {
            continue;
        }
        all.entry(canonical_header_key(name.as_str())).or_default().push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    Ok(text(StatusCode::OK, go_json::object_of_lists(&all)))
}

/// Go's textproto.CanonicalMIMEHeaderKey: `x-forwarded-for` -> `X-Forwarded-For`.
fn canonical_header_key(k: &str) -> String {
    let mut upper = true;
    k.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            upper = c == '-';
            out
        })
        .collect()
}

pub async fn echo(mut call: Call) -> Reply {
    let form = Form::read(&mut call).await;
    let (msg, code) = (form.get("msg"), form.get("code"));
    golog!("GET /echo?msg={msg}&code={code}");
    if code.is_empty() {
        return Ok(text(StatusCode::OK, msg));
    }
    let Ok(code) = code.parse::<i64>() else {
        return Ok(text(StatusCode::OK, format!("argument 'code' must be an integer or empty, got {code:?}\n")));
    };
    let status = status_for(code)?;
    Ok(text(status, msg))
}

/// Go's WriteHeader: a code outside 100-999 is a handler panic, which drops
/// the connection; 1xx codes are informational and the answer stays 200.
fn status_for(code: i64) -> Result<StatusCode, Abort> {
    match code {
        100..=199 => Ok(StatusCode::OK),
        200..=999 => StatusCode::from_u16(code as u16).map_err(|_| Abort),
        _ => Err(Abort),
    }
}

pub async fn exit(mut call: Call, state: &Arc<State>) -> Reply {
    let form = Form::read(&mut call).await;
    let (wait_s, timeout_s, code_s) = (form.get("wait"), form.get("timeout"), form.get("code"));
    golog!("GET /exit?code={code_s}&timeout={timeout_s}&wait={wait_s}");
    let timeout = match timeout_s.parse::<GoDuration>() {
        Ok(d) => d,
        Err(_) if timeout_s.is_empty() => GoDuration(0),
        Err(_) => return Ok(text(StatusCode::OK, format!("argument 'timeout' must be a valid golang duration or empty, got {timeout_s:?}\n"))),
    };
    let wait = match wait_s.parse::<GoDuration>() {
        Ok(d) => d,
        Err(_) if wait_s.is_empty() => GoDuration(0),
        Err(_) => return Ok(text(StatusCode::OK, format!("argument 'wait' must be a valid golang duration or empty, got {wait_s:?}\n"))),
    };
    let code = match code_s.parse::<i32>() {
        Ok(c) => c,
        Err(_) if code_s.is_empty() => 0,
        Err(_) => return Ok(text(StatusCode::OK, format!("argument 'code' must be an integer [0-127] or empty, got {code_s:?}\n"))),
    };
    golog!("Will begin shutdown in {wait}, allowing {timeout} for connections to close, then will exit with {code}");
    tokio::time::sleep(wait.to_std()).await;
    if timeout.is_zero() {
        // Go's os.Exit: the process ends before this request is answered.
        let _ = state.exit.send(Exit::Now(code));
        return std::future::pending().await;
    }
    let _ = state.exit.send(Exit::Graceful { code, timeout: timeout.to_std() });
    Ok(text(StatusCode::OK, ""))
}

pub fn healthz(state: &State) -> Reply {
    golog!("GET /healthz");
    let status = if state.ready.load(Ordering::SeqCst) { StatusCode::OK } else { StatusCode::PRECONDITION_FAILED };
    Ok(text(status, ""))
}

pub fn readyz(state: &State) -> Reply {
    golog!("GET /readyz");
    if state.sigterm_received.load(Ordering::SeqCst) {
        return Ok(text(StatusCode::SERVICE_UNAVAILABLE, "shutting down"));
    }
    if state.ready.load(Ordering::SeqCst) {
        return Ok(text(StatusCode::OK, "ok"));
    }
    Ok(text(StatusCode::PRECONDITION_FAILED, ""))
}

pub fn hostname(call: &Call) -> Reply {
    golog!("GET {}", call.path);
    Ok(text(StatusCode::OK, hostname::get_or_log()))
}

pub async fn redirect(mut call: Call) -> Reply {
    let form = Form::read(&mut call).await;
    let (location, code_s) = (form.get("location"), form.get("code"));
    golog!("{} /redirect?msg={location}&code={code_s}", call.method);
    let code = if code_s.is_empty() {
        StatusCode::FOUND
    } else {
        match code_s.parse::<i64>() {
            Ok(c) => status_for(c)?,
            Err(_) => return Ok(text(StatusCode::OK, format!("argument 'code' must be an integer or empty, got {code_s:?}\n"))),
        }
    };
    redirect_to(&call, &location, code)
}

/// Go's http.Redirect: relative targets are resolved against the request
/// path, and a GET gets a small HTML body naming the status.
pub fn redirect_to(call: &Call, location: &str, code: StatusCode) -> Reply {
    let mut url = location.to_string();
    let has_scheme_or_host = url.starts_with("//") || url.split_once(':').is_some_and(|(s, _)| !s.is_empty() && !s.contains('/') && !s.contains('?'));
    if !has_scheme_or_host {
        if !url.starts_with('/') {
            let dir = &call.path[..call.path.rfind('/').map(|i| i + 1).unwrap_or(0)];
            url = format!("{}{url}", if dir.is_empty() { "/" } else { dir });
        }
        let (path, query) = match url.find('?') {
            Some(i) => (url[..i].to_string(), url[i..].to_string()),
            None => (url.clone(), String::new()),
        };
        let mut cleaned = super::mux::clean_path(&path);
        if path.ends_with('/') && !cleaned.ends_with('/') {
            cleaned.push('/');
        }
        url = cleaned + &query;
    }
    let location_value = HeaderValue::from_str(&hex_escape_non_ascii(&url)).map_err(|_| Abort)?;
    let mut resp = if call.method == Method::GET {
        let reason = code.canonical_reason().unwrap_or("");
        Response::new(Full::new(Bytes::from(format!("<a href=\"{}\">{reason}</a>.\n\n", html_escape(&url)))))
    } else {
        Response::new(Full::new(Bytes::new()))
    };
    *resp.status_mut() = code;
    if call.method == Method::GET || call.method == Method::HEAD {
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    }
    resp.headers_mut().insert(header::LOCATION, location_value);
    Ok(resp)
}

fn hex_escape_non_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b >= 0x80 {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&#34;").replace('\'', "&#39;")
}

pub async fn shell(mut call: Call) -> Reply {
    let form = Form::read(&mut call).await;
    let mut cmd = form.get("shellCommand");
    if cmd.is_empty() {
        cmd = form.get("cmd");
    }
    golog!("GET /shell?cmd={cmd}");
    let output = super::shell::run(cmd).await;
    golog!("Output: {output:?}");
    Ok(text(StatusCode::OK, go_json::object_of_strings(&output)))
}

/// Shared by /dial for its 400 answers.
pub fn bad_request(msg: &str) -> Response<Body> {
    go_error(StatusCode::BAD_REQUEST, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_keys_are_canonicalized_like_go() {
        assert_eq!(canonical_header_key("x-forwarded-for"), "X-Forwarded-For");
        assert_eq!(canonical_header_key("user-agent"), "User-Agent");
    }

    #[test]
    fn status_codes_outside_go_range_abort() {
        assert!(status_for(99).is_err());
        assert!(status_for(1000).is_err());
        assert_eq!(status_for(404).unwrap(), StatusCode::NOT_FOUND);
        assert_eq!(status_for(103).unwrap(), StatusCode::OK);
    }
}

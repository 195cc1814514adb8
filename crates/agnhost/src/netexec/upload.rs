//! `/upload`: takes the multipart form field `file` and writes it to a new
//! `upload*` file in the upload directory (upstream: /uploads), mode 0700.

use super::mux::Call;
use crate::go_json;
use crate::golog::golog;
use crate::http_server::{text, Reply};
use http::StatusCode;
use http_body_util::{BodyExt, Limited};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Bodies above this are refused rather than held in memory.
const MAX_BODY: usize = 64 << 20;

pub async fn handle(mut call: Call, dir: &Path) -> Reply {
    golog!("GET /upload");
    let content = match file_field(&mut call).await {
        Some(c) => c,
        None => {
            golog!("Unable to upload file: http: no such file");
            return Ok(failure("Unable to upload file."));
        }
    };
    let dir = dir.to_path_buf();
    let written = tokio::task::spawn_blocking(move || write_temp(&dir, &content)).await;
    match written {
        Ok(Ok(path)) => {
            golog!("Wrote upload to {}", path.display());
            let mut m = BTreeMap::new();
            m.insert("output", path.display().to_string());
            Ok(text(StatusCode::CREATED, go_json::object_of_strings(&m)))
        }
        Ok(Err((msg, e))) => {
            golog!("{msg}: {e}");
            Ok(failure(msg))
        }
        Err(e) => {
            golog!("Unable to write file: {e}");
            Ok(failure("Unable to write file."))
        }
    }
}

fn failure(msg: &str) -> http::Response<crate::http_server::Body> {
    let mut m = BTreeMap::new();
    m.insert("error", msg.to_string());
    text(StatusCode::OK, go_json::object_of_strings(&m))
}

/// The contents of the first file part named `file` (Go's r.FormFile("file")).
async fn file_field(call: &mut Call) -> Option<Vec<u8>> {
    let ct = call.headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?.to_string();
    let boundary = boundary(&ct)?;
    let body = Limited::new(call.body.take()?, MAX_BODY).collect().await.ok()?.to_bytes();
    multipart_file(&body, &boundary, "file")
}

fn boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    if !parts.next()?.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Finds the part whose Content-Disposition names `field` and has a filename.
fn multipart_file(body: &[u8], boundary: &str, field: &str) -> Option<Vec<u8>> {
    let delim = format!("--{boundary}");
    let mut rest = &body[find(body, delim.as_bytes())? + delim.len()..];
    loop {
        if rest.starts_with(b"--") {
            return None;
        }
        let head_end = find(rest, b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&rest[..head_end]).to_string();
        let content_start = head_end + 4;
        let end_delim = format!("\r\n{delim}");
        let content_len = find(&rest[content_start..], end_delim.as_bytes())?;
        let content = &rest[content_start..content_start + content_len];
        if disposition_matches(&headers, field) {
            return Some(content.to_vec());
        }
        rest = &rest[content_start + content_len + end_delim.len()..];
    }
}

fn disposition_matches(headers: &str, field: &str) -> bool {
    headers.lines().any(|line| {
        let Some((name, value)) = line.split_once(':') else { return false };
        if !name.trim().eq_ignore_ascii_case("content-disposition") {
            return false;
        }
        let params: Vec<(String, String)> = value
            .split(';')
            .skip(1)
            .filter_map(|p| p.trim().split_once('=').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_string())))
            .collect();
        params.iter().any(|(k, v)| k == "name" && v == field) && params.iter().any(|(k, _)| k == "filename")
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Go's os.CreateTemp(dir, "upload"): a new file named upload<digits>.
fn write_temp(dir: &Path, content: &[u8]) -> Result<PathBuf, (&'static str, std::io::Error)> {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0) as u64 ^ u64::from(std::process::id());
    let mut n = seed;
    let mut attempt = 0;
    let (path, mut file) = loop {
        n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let path = dir.join(format!("upload{}", (n >> 32) as u32));
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
            Ok(f) => break (path, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 10_000 => attempt += 1,
            Err(e) => return Err(("Unable to open file for write", e)),
        }
    };
    file.write_all(content).map_err(|e| ("Unable to write file.", e))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).map_err(|e| ("Unable to chmod file.", e))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_file_part_is_found() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nnope\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\nworld\r\n--XyZ--\r\n";
        assert_eq!(boundary("multipart/form-data; boundary=XyZ").as_deref(), Some("XyZ"));
        assert_eq!(multipart_file(body, "XyZ", "file").as_deref(), Some(&b"hello\r\nworld"[..]));
        assert_eq!(multipart_file(body, "XyZ", "missing"), None);
    }

    #[test]
    fn a_field_without_filename_is_not_a_file() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--b--\r\n";
        assert_eq!(multipart_file(body, "b", "file"), None);
    }
}

//! TLS server configuration for netexec's HTTPS and porter's TLS ports.
//!
//! The agnhost image ships `/localhost.crt` and `/localhost.key` (SANs
//! 127.0.0.1 and ::1), and e2e tests point `--tls-cert-file` at them. weft's
//! pods have no image filesystem, so when those well-known files are asked for
//! and absent, an equivalent self-signed localhost certificate is made instead.

use anyhow::{anyhow, Context, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::{Arc, OnceLock};

pub fn server_config(cert_file: &str, key_file: &str) -> Result<Arc<rustls::ServerConfig>> {
    let (cert_pem, key_pem) = if stands_for_builtin(cert_file, key_file) {
        tracing::info!("{cert_file} not found: serving weft's built-in localhost certificate");
        let (c, k) = builtin_localhost()?;
        (c.clone().into_bytes(), k.clone().into_bytes())
    } else {
        let c = std::fs::read(cert_file).with_context(|| format!("open {cert_file}"))?;
        let k = std::fs::read(key_file).with_context(|| format!("open {key_file}"))?;
        (c, k)
    };
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .with_context(|| format!("tls: failed to parse certificate PEM data in {cert_file}"))?;
    if certs.is_empty() {
        return Err(anyhow!("tls: failed to find any PEM data in certificate input {cert_file}"));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .with_context(|| format!("tls: failed to parse private key in {key_file}"))?
        .ok_or_else(|| anyhow!("tls: failed to find any PEM data in key input {key_file}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("tls: protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("tls: private key does not match public key")?;
    // Go's ListenAndServeTLS offers HTTP/2 and HTTP/1.1 over ALPN.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn stands_for_builtin(cert_file: &str, key_file: &str) -> bool {
    let named = |p: &str, name: &str| Path::new(p).file_name().is_some_and(|n| n == name);
    named(cert_file, "localhost.crt") && !Path::new(cert_file).exists() && (key_file.is_empty() || (named(key_file, "localhost.key") && !Path::new(key_file).exists()))
}

/// A self-signed certificate for 127.0.0.1, ::1 and localhost, made once.
fn builtin_localhost() -> Result<&'static (String, String)> {
    static PAIR: OnceLock<(String, String)> = OnceLock::new();
    if let Some(p) = PAIR.get() {
        return Ok(p);
    }
    let names = vec!["127.0.0.1".to_string(), "::1".to_string(), "localhost".to_string()];
    let ck = rcgen::generate_simple_self_signed(names).context("generate the built-in localhost certificate")?;
    Ok(PAIR.get_or_init(|| (ck.cert.pem(), ck.signing_key.serialize_pem())))
}

//! The kubelet endpoint's TLS and who may use it: client certificates from the cluster
//! CA; the API server's kubelet client (or a cluster admin) is allowed, anonymous
//! requests get 401 and other users 403, as a kubelet with anonymous auth off does.

use super::{text, Body, KubeletServing};
use anyhow::{Context, Result};
use http::{Response, StatusCode};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::sync::Arc;

/// The common name of the API server's client certificate for kubelets (kubeadm's).
pub const APISERVER_CLIENT: &str = "kube-apiserver-kubelet-client";

#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

pub fn server_config(s: &KubeletServing) -> Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in certs(&s.ca_pem)? {
        roots.add(c)?;
    }
    // Unauthenticated handshakes pass, so that such a request gets a 401, not a TLS alert.
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).allow_unauthenticated().build().context("building the kubelet's client certificate verifier")?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut s.key_pem.as_bytes())?.context("no private key in the kubelet serving key")?;
    let mut cfg = ServerConfig::builder_with_provider(provider).with_safe_default_protocol_versions()?.with_client_cert_verifier(verifier).with_single_cert(certs(&s.cert_pem)?, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

fn certs(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    Ok(rustls_pemfile::certs(&mut pem.as_bytes()).collect::<Result<Vec<_>, _>>()?)
}

/// The user a verified client certificate names: CN and O.
pub fn user_of(cert: &CertificateDer<'_>) -> Option<User> {
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let name = c.subject().iter_common_name().next()?.as_str().ok()?.to_string();
    let groups = c.subject().iter_organization().filter_map(|o| o.as_str().ok().map(String::from)).collect();
    Some(User { name, groups })
}

/// The kubelet's authorization for `nodes/<subresource>`, decided locally.
#[allow(clippy::result_large_err)]
pub fn authorize(user: Option<&User>, verb: &str, subresource: &str) -> Result<(), Response<Body>> {
    let Some(u) = user else { return Err(text(StatusCode::UNAUTHORIZED, "Unauthorized")) };
    if u.name == APISERVER_CLIENT || u.groups.iter().any(|g| g == "system:masters") {
        return Ok(());
    }
    Err(text(StatusCode::FORBIDDEN, format!("Forbidden (user={}, verb={verb}, resource=nodes, subresource={subresource})", u.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_api_server_and_admins_may_call_the_kubelet() {
        assert_eq!(authorize(None, "get", "log").unwrap_err().status(), StatusCode::UNAUTHORIZED);
        let apiserver = User { name: APISERVER_CLIENT.into(), groups: vec![] };
        assert!(authorize(Some(&apiserver), "create", "proxy").is_ok());
        let admin = User { name: "kubernetes-admin".into(), groups: vec!["system:masters".into()] };
        assert!(authorize(Some(&admin), "get", "log").is_ok());
        let node = User { name: "system:node:node-2".into(), groups: vec!["system:nodes".into()] };
        assert_eq!(authorize(Some(&node), "get", "log").unwrap_err().status(), StatusCode::FORBIDDEN);
    }
}

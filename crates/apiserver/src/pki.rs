//! The cluster's certificates: a CA, the API server's serving certificate and the
//! admin client credential, generated on first start and kept under the state dir.

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub struct Pki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

fn paths(dir: &Path) -> [PathBuf; 6] {
    ["ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "admin.crt", "admin.key"].map(|f| dir.join(f))
}

impl Pki {
    /// Loads the PKI from `dir`, generating whatever is missing. `ips` and `names` go
    /// into the serving certificate's subject alternative names.
    pub fn load_or_create(dir: &Path, ips: &[IpAddr], names: &[String]) -> Result<Pki> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let [ca_crt, ca_key, srv_crt, srv_key, adm_crt, adm_key] = paths(dir);
        if [&ca_crt, &ca_key, &srv_crt, &srv_key, &adm_crt, &adm_key].iter().all(|p| p.exists()) {
            let read = |p: &PathBuf| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
            return Ok(Pki {
                ca_pem: read(&ca_crt)?,
                server_cert_pem: read(&srv_crt)?,
                server_key_pem: read(&srv_key)?,
                client_cert_pem: read(&adm_crt)?,
                client_key_pem: read(&adm_key)?,
            });
        }
        let ca_keypair = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name.push(DnType::CommonName, "weft-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca_params.self_signed(&ca_keypair)?;
        let ca_pem = ca_cert.pem();
        let issuer = Issuer::new(ca_params, &ca_keypair);

        let server_key = KeyPair::generate()?;
        let mut sp = CertificateParams::new(names.to_vec())?;
        sp.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        for ip in ips {
            sp.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = sp.signed_by(&server_key, &issuer)?;

        let client_key = KeyPair::generate()?;
        let mut cp = CertificateParams::new(Vec::<String>::new())?;
        cp.distinguished_name.push(DnType::CommonName, "kubernetes-admin");
        cp.distinguished_name.push(DnType::OrganizationName, "system:masters");
        cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = cp.signed_by(&client_key, &issuer)?;

        let pki = Pki {
            ca_pem,
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        };
        write_private(&ca_key, &ca_keypair.serialize_pem())?;
        std::fs::write(&ca_crt, &pki.ca_pem)?;
        std::fs::write(&srv_crt, &pki.server_cert_pem)?;
        write_private(&srv_key, &pki.server_key_pem)?;
        std::fs::write(&adm_crt, &pki.client_cert_pem)?;
        write_private(&adm_key, &pki.client_key_pem)?;
        Ok(pki)
    }

    /// A kubeconfig for the admin user against `server` (e.g. `https://127.0.0.1:6443`).
    pub fn kubeconfig(&self, server: &str) -> String {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: weft\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\nusers:\n- name: weft-admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: weft\n  context:\n    cluster: weft\n    user: weft-admin\n    namespace: default\ncurrent-context: weft\npreferences: {{}}\n",
            b64(&self.ca_pem),
            b64(&self.client_cert_pem),
            b64(&self.client_key_pem)
        )
    }
}

fn write_private(path: &Path, pem: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(path)?;
    f.write_all(pem.as_bytes())?;
    Ok(())
}

/// A certificate and key issued from the cluster CA, PEM, with the CA's certificate.
#[derive(Clone, Debug)]
pub struct Issued {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// The CA in `dir` (made by [`Pki::load_or_create`]), as an issuer.
fn ca_issuer(dir: &Path) -> Result<(String, Issuer<'static, KeyPair>)> {
    let [ca_crt, ca_key, ..] = paths(dir);
    let ca_pem = std::fs::read_to_string(&ca_crt).with_context(|| format!("reading the cluster CA {}", ca_crt.display()))?;
    let key_pem = std::fs::read_to_string(&ca_key).with_context(|| format!("reading the cluster CA key {}", ca_key.display()))?;
    let key = KeyPair::from_pem(&key_pem).with_context(|| format!("parsing the cluster CA key {}", ca_key.display()))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, key).with_context(|| format!("parsing the cluster CA {}", ca_crt.display()))?;
    Ok((ca_pem, issuer))
}

/// The common name of the API server's client certificate for kubelets (kubeadm's).
pub const KUBELET_CLIENT_CN: &str = "kube-apiserver-kubelet-client";

/// The API server's client certificate for calling kubelets (logs, exec), issued
/// fresh from the CA in `dir` at each start and kept in memory only.
pub fn kubelet_client(dir: &Path) -> Result<Issued> {
    let (ca_pem, issuer) = ca_issuer(dir)?;
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, KUBELET_CLIENT_CN);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.signed_by(&key, &issuer)?;
    Ok(Issued { ca_pem, cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// A kubelet's serving certificate for `node` at `ips`, from the CA in `dir`.
pub fn kubelet_serving(dir: &Path, node: &str, ips: &[IpAddr]) -> Result<Issued> {
    let (ca_pem, issuer) = ca_issuer(dir)?;
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(vec![node.to_string()])?;
    p.distinguished_name.push(DnType::CommonName, format!("system:node:{node}"));
    p.distinguished_name.push(DnType::OrganizationName, "system:nodes");
    for ip in ips {
        p.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = p.signed_by(&key, &issuer)?;
    Ok(Issued { ca_pem, cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_certificates_chain_to_the_cluster_ca_and_name_who_they_are() {
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &[IpAddr::from([127, 0, 0, 1])], &[]).unwrap();
        let serving = kubelet_serving(dir.path(), "node-1", &[IpAddr::from([10, 99, 0, 2])]).unwrap();
        let client = kubelet_client(dir.path()).unwrap();
        assert_eq!(serving.ca_pem, pki.ca_pem);
        let der = |pem: &str| -> CertificateDer<'static> { rustls_pemfile::certs(&mut pem.as_bytes()).next().unwrap().unwrap() };
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der(&pki.ca_pem)).unwrap();
        let roots = std::sync::Arc::new(roots);
        let servers = rustls::client::WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone()).build().unwrap();
        let node_ip = ServerName::IpAddress(std::net::Ipv4Addr::new(10, 99, 0, 2).into());
        servers.verify_server_cert(&der(&serving.cert_pem), &[], &node_ip, &[], UnixTime::now()).expect("the serving certificate is valid for the node's IP");
        let other_ip = ServerName::IpAddress(std::net::Ipv4Addr::new(10, 99, 0, 3).into());
        assert!(servers.verify_server_cert(&der(&serving.cert_pem), &[], &other_ip, &[], UnixTime::now()).is_err());
        let clients = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider).build().unwrap();
        clients.verify_client_cert(&der(&client.cert_pem), &[], UnixTime::now()).expect("the client certificate is valid");
        let (_, c) = x509_parser::parse_x509_certificate(der(&client.cert_pem).as_ref()).map(|(r, c)| (r.to_vec(), c.subject().to_string())).unwrap();
        assert_eq!(c, format!("CN={KUBELET_CLIENT_CN}"));
    }
}

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

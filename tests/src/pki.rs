//! Certificates made by a test: a CA, a server certificate for 127.0.0.1 and a client's.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// PEM files of a CA, a certificate (and key) for a master on 127.0.0.1, and one for a client.
pub struct Pki {
    /// The CA's certificate.
    pub ca: PathBuf,
    /// The master's certificate and key.
    pub server: (PathBuf, PathBuf),
    /// A client's (an agent's) certificate and key.
    pub client: (PathBuf, PathBuf),
}

impl Pki {
    /// Makes the CA and both certificates, written under `dir`.
    pub fn make(dir: &Path) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let issue = |names: Vec<String>, prefix: &str| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &ca)
                .unwrap();
            (
                write(&format!("{prefix}.pem"), cert.pem()),
                write(&format!("{prefix}.key"), key.serialize_pem()),
            )
        };
        let server = issue(vec!["127.0.0.1".into(), "localhost".into()], "server");
        let client = issue(vec!["agent.baton.test".into()], "client");
        Self {
            ca: write("ca.pem", ca.pem()),
            server,
            client,
        }
    }
}

//! TLS for the clients of the master (agents, CLI): `https://` URLs use TLS, verified against the
//! system roots or a given CA; `http://` URLs are plaintext. Failures say when the scheme and the
//! master disagree.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// A client's TLS settings.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// CA certificate (PEM) to verify the master with, instead of the system roots.
    pub ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for masters that verify agents.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// Checks that `url` is an `http://` or `https://` URL a client can connect to.
pub fn check_url(url: &str) -> Result<(), String> {
    plain_endpoint(url).map(|_| ())
}

fn plain_endpoint(url: &str) -> Result<Endpoint, String> {
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(format!(
            "the master URL {url:?} must start with http:// or https:// (e.g. http://127.0.0.1:8090)"
        ));
    }
    Endpoint::from_shared(url.to_string()).map_err(|e| format!("{url}: {e}"))
}

/// An endpoint for `url`, with TLS when it is `https://`.
pub fn endpoint(url: &str, tls: &ClientTls) -> Result<Endpoint, String> {
    let endpoint = plain_endpoint(url)?;
    if !url.starts_with("https://") {
        if tls.ca.is_some() || tls.identity.is_some() {
            return Err(format!(
                "TLS settings were given but {url} is not an https:// URL"
            ));
        }
        return Ok(endpoint);
    }
    let mut config = ClientTlsConfig::new();
    config = match &tls.ca {
        Some(ca) => config.ca_certificate(Certificate::from_pem(read(ca, "CA certificate")?)),
        None => config.with_native_roots(),
    };
    if let Some((cert, key)) = &tls.identity {
        config = config.identity(Identity::from_pem(
            read(cert, "client certificate")?,
            read(key, "client key")?,
        ));
    }
    endpoint
        .tls_config(config)
        .map_err(|e| format!("TLS for {url}: {e}"))
}

/// A connection failure explained by the URL's scheme when the master speaks the other one.
pub fn explain(url: &str, failure: &str) -> String {
    let text = failure.to_ascii_lowercase();
    if url.starts_with("https://")
        && (text.contains("invalidcontenttype") || text.contains("corrupt message"))
    {
        format!("{failure} (the master at {url} does not speak TLS: use an http:// URL)")
    } else if url.starts_with("http://")
        && (text.contains("h2 protocol error")
            || text.contains("connection reset")
            || text.contains("broken pipe")
            || text.contains("frame with invalid size")
            || text.contains("connection closed")
            || text.contains("operation was canceled")
            || text == "transport error")
    {
        format!("{failure} (if the master at {url} serves TLS, use an https:// URL)")
    } else {
        failure.to_string()
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
}

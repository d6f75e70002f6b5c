//! TLS to PostgreSQL, set by the URL as libpq sets it, over rustls (aws-lc-rs):
//! - `sslmode=disable`: plain. `prefer` (the default): TLS when the server offers it, plain when
//!   it does not. `require`: TLS or no connection. Neither checks the server's certificate unless
//!   `sslrootcert` names CAs; then its chain is checked, as libpq does when it has a root file.
//! - `verify-ca`: TLS, the certificate's chain checked up to the CAs of `sslrootcert` (a PEM
//!   file; the system's roots when absent). `verify-full`: also the URL's host name in it.
//! - `sslrootcert=system`: the system's roots, with `verify-full` only (its default then).
//!
//! `postgres::Config` knows neither the verify modes nor `sslrootcert`: both are taken out of the
//! URL before it reads the rest.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use percent_encoding::percent_decode_str;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::database::redact;
use super::pg::blocking;
use super::{StoreError, StoreResult};

mod verifier;

use verifier::Check;

/// Connects to the PostgreSQL database at `url`, secured as its `sslmode` and `sslrootcert` say.
pub fn connect(url: &str) -> StoreResult<postgres::Client> {
    let settings_error = |message| StoreError::TlsSettings {
        database: redact(url),
        message,
    };
    let (tls, rest) = PgTls::split(url).map_err(settings_error)?;
    let connector = tls.connector().map_err(settings_error)?;
    let connect_error = |cause| StoreError::Connect {
        database: redact(url),
        cause,
    };
    let mut config: postgres::Config = rest.parse().map_err(connect_error)?;
    config.ssl_mode(tls.mode.negotiated());
    blocking(|| config.connect(connector)).map_err(connect_error)
}

/// What a connection asks of TLS (libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SslMode {
    /// Plain.
    Disable,
    /// TLS when the server offers it.
    Prefer,
    /// TLS only.
    Require,
    /// TLS, the certificate's chain checked.
    VerifyCa,
    /// TLS, the certificate's chain and host name checked.
    VerifyFull,
}

impl SslMode {
    const ALL: [Self; 5] = [
        Self::Disable,
        Self::Prefer,
        Self::Require,
        Self::VerifyCa,
        Self::VerifyFull,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// The mode the client negotiates TLS in (whether it insists), the checks being ours.
    fn negotiated(self) -> postgres::config::SslMode {
        match self {
            Self::Disable => postgres::config::SslMode::Disable,
            Self::Prefer => postgres::config::SslMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => postgres::config::SslMode::Require,
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str() == value)
            .ok_or_else(|| {
                let accepted: Vec<&str> = Self::ALL.iter().map(|mode| mode.as_str()).collect();
                format!("sslmode {value:?} is not one of {}", accepted.join(", "))
            })
    }
}

/// Where the CAs come from (libpq's `sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum RootCert {
    /// A PEM file of CA certificates.
    File(PathBuf),
    /// The system's roots.
    System,
}

/// A URL's TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PgTls {
    /// Whether TLS is used, and what is checked.
    mode: SslMode,
    /// The CAs the certificate's chain is checked up to.
    root_cert: Option<RootCert>,
}

impl PgTls {
    /// The TLS settings of `url`, and `url` without them (for `postgres::Config`).
    pub(crate) fn split(url: &str) -> Result<(Self, String), String> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut mode = None;
        let mut root_cert = None;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(value);
            match &*percent_decode_str(key).decode_utf8_lossy() {
                "sslmode" => mode = Some(value.decode_utf8_lossy().parse()?),
                "sslrootcert" => {
                    let path = PathBuf::from(OsString::from_vec(value.collect()));
                    root_cert = if path.as_os_str().is_empty() {
                        None
                    } else if path == Path::new("system") {
                        Some(RootCert::System)
                    } else {
                        Some(RootCert::File(path))
                    };
                }
                _ => rest.push(pair),
            }
        }
        let mode = match (&root_cert, mode) {
            (Some(RootCert::System), Some(mode)) if mode != SslMode::VerifyFull => {
                return Err(format!(
                    "sslrootcert=system needs sslmode=verify-full, not sslmode={mode}"
                ));
            }
            (Some(RootCert::System), _) => SslMode::VerifyFull,
            (_, mode) => mode.unwrap_or(SslMode::Prefer),
        };
        let url = if rest.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        Ok((Self { mode, root_cert }, url))
    }

    /// The connector securing connections as these settings say (reading `sslrootcert`).
    fn connector(&self) -> Result<MakeRustlsConnect, String> {
        let roots = match (&self.root_cert, self.mode) {
            (_, SslMode::Disable) => None,
            (Some(RootCert::File(path)), _) => Some(file_roots(path)?),
            (Some(RootCert::System), _) | (None, SslMode::VerifyCa | SslMode::VerifyFull) => {
                Some(system_roots()?)
            }
            (None, _) => None,
        };
        let check = match (roots, self.mode) {
            (Some(roots), SslMode::VerifyFull) => Check::Full(roots),
            (Some(roots), _) => Check::Chain(roots),
            (None, _) => Check::Nothing,
        };
        let config = verifier::client_config(check).map_err(|e| format!("TLS: {e}"))?;
        Ok(MakeRustlsConnect::new(config))
    }
}

/// The CA certificates of the PEM file at `path`; at least one.
fn file_roots(path: &Path) -> Result<Arc<RootCertStore>, String> {
    let named = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("cannot read sslrootcert {named}: {e}"))?;
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        let certificate = certificate.map_err(|e| format!("sslrootcert {named}: bad PEM: {e}"))?;
        roots
            .add(certificate)
            .map_err(|e| format!("sslrootcert {named}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("sslrootcert {named} holds no certificate"));
    }
    Ok(Arc::new(roots))
}

/// The system's root certificates, read once.
fn system_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
                return Err(format!(
                    "no system root certificates to verify the server with ({}): name a CA \
                     file with sslrootcert=PATH",
                    errors.join("; ")
                ));
            }
            Ok(Arc::new(roots))
        })
        .clone()
}

#[cfg(test)]
mod tests;

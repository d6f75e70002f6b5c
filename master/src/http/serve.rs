//! Serving the API: plain HTTP, or HTTPS with the gRPC listener's certificate and client CA.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpListener;

use crate::server::{ServerTls, read_pem};

/// Serves `app` on `listener`, over TLS when `tls` is given, with each peer's address known.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<RustlsConfig>,
) -> std::io::Result<()> {
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let Some(config) = tls else {
        return axum::serve(listener, app).await;
    };
    axum_server::from_tcp_rustls(listener.into_std()?, config)?
        .accept_error_handler(|peer, error| {
            tracing::debug!(peer = ?peer, error = %error, "HTTPS connection refused");
        })
        .serve(app)
        .await
}

/// The rustls configuration of the HTTPS listener: the certificate and key of `tls`, and with
/// its client CA, a client certificate verified against that CA when one is presented (as on the
/// gRPC listener; callers without one are admitted by their tokens).
pub fn tls_config(tls: &ServerTls) -> anyhow::Result<RustlsConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain = certificates(&tls.cert, "certificate")?;
    let key = PrivateKeyDer::from_pem_slice(&read_pem(&tls.key, "key")?)
        .with_context(|| format!("no private key in the TLS key {}", tls.key.display()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca, "client CA")? {
                roots.add(cert).with_context(|| {
                    format!("bad certificate in the TLS client CA {}", ca.display())
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .with_context(|| format!("unusable TLS client CA {}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).with_context(|| {
        format!(
            "the TLS certificate {} and key {} do not go together",
            tls.cert.display(),
            tls.key.display()
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(config)))
}

/// The certificates of the PEM file at `path` (the TLS `what`); at least one.
fn certificates(path: &Path, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_slice_iter(&read_pem(path, what)?)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("bad PEM in the TLS {what} {}", path.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "no certificate in the TLS {what} {}",
        path.display()
    );
    Ok(chain)
}

//! Wires the store, the cluster task and the gRPC services onto a bound listener.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use baton_common::proto::admin_service_server::AdminServiceServer;
use baton_common::proto::agent_service_server::AgentServiceServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::auth::Authority;
use crate::cluster::{ClusterHandle, ClusterSettings, run_cluster};
use crate::leadership::{Leadership, LeaseSettings, lead, stop_leading};
use crate::metrics::MasterMetrics;
use crate::services::{AdminApi, AgentApi};
use crate::store::{Database, LeaseClient, Store};

/// Largest gRPC message accepted (experiment contexts travel in one message).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// How long calls in flight may take to finish once the master is told to stop; connections
/// still open then are closed (the state they changed is in the database already).
const STOP_DRAIN: Duration = Duration::from_secs(2);

/// What a master needs to run.
#[derive(Debug, Clone)]
pub struct MasterOptions {
    /// The database: an SQLite file, or PostgreSQL shared through its lease.
    pub database: Database,
    /// Timing knobs.
    pub cluster: ClusterSettings,
    /// Who may call the admin API.
    pub auth: Authority,
    /// TLS on the listener, if configured.
    pub tls: Option<ServerTls>,
    /// Where to serve Prometheus metrics (`GET /metrics`), if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Where to serve the read-only HTTP JSON API (and `/metrics` when on the same address).
    pub http_listen: Option<SocketAddr>,
    /// The URL agents and the CLI reach this master at, which standbys name (default: the
    /// listening address, or this host's name when listening on every interface).
    pub advertise_url: Option<String>,
    /// Length of the PostgreSQL lease: a standby takes over this long after the leader stops.
    pub lease_ttl: Duration,
}

/// The master's certificate and key, and the CA its agents' certificates must chain to.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
    /// When set, agents and HTTPS API clients must present a certificate signed by this CA
    /// (PEM); gRPC admin callers (the CLI) need not.
    pub client_ca: Option<PathBuf>,
}

impl ServerTls {
    pub(crate) fn config(&self) -> anyhow::Result<tonic::transport::ServerTlsConfig> {
        let identity = tonic::transport::Identity::from_pem(
            read_pem(&self.cert, "certificate")?,
            read_pem(&self.key, "key")?,
        );
        let mut config = tonic::transport::ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.client_ca {
            config = config
                .client_ca_root(tonic::transport::Certificate::from_pem(read_pem(
                    ca,
                    "client CA",
                )?))
                .client_auth_optional(true);
        }
        Ok(config)
    }
}

/// The bytes of the PEM file at `path`, the TLS `what` ("certificate", "key"), or an error
/// naming it.
pub(crate) fn read_pem(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("cannot read the TLS {what} {}: {e}", path.display()))
}

/// Serves the master on `listener` until `shutdown` resolves.
pub async fn serve(
    options: MasterOptions,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Reading the certificate files here names a bad one before anything starts (tonic's own
    // error does not say which file).
    let https = options
        .tls
        .as_ref()
        .map(crate::http::tls_config)
        .transpose()?;
    tracing::info!(database = %options.database, "opening the database");
    let mut shutdown = Box::pin(shutdown);
    let leadership = match &options.database {
        Database::Postgres(url) => match stand_by(url, &options, &listener, &mut shutdown).await? {
            Some(leadership) => Some(leadership),
            None => return Ok(()),
        },
        Database::Sqlite(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            None
        }
    };
    let store = Store::open(
        &options.database,
        leadership.as_ref().map(Leadership::epoch),
    )?;
    let metrics = options.cluster.metrics.clone();
    let (stop_cluster, cluster_stopped) = tokio::sync::oneshot::channel::<()>();
    let (cluster, cluster_task) = run_cluster(store, options.cluster, async {
        let _ = cluster_stopped.await;
    })?;
    let refresh = metrics_refresh(cluster.clone(), metrics.clone(), options.database);
    let metrics_router =
        || baton_common::metrics::router(metrics.registry.clone(), refresh.clone());
    let mut http_tasks = Vec::new();
    if let Some(address) = options.http_listen {
        let listener = baton_common::metrics::bind(address, "--http-listen").await?;
        let mut app = crate::http::router(cluster.clone(), options.auth.clone());
        if options.metrics_listen == Some(address) {
            app = app.merge(metrics_router());
        }
        let scheme = if https.is_some() { "https" } else { "http" };
        tracing::info!(address = %listener.local_addr()?, scheme, "HTTP API serving on /api/v1");
        http_tasks.push(tokio::spawn(crate::http::serve(listener, app, https)));
    }
    if let Some(address) = options
        .metrics_listen
        .filter(|a| Some(*a) != options.http_listen)
    {
        let listener = baton_common::metrics::bind(address, "--metrics-listen").await?;
        tracing::info!(address = %listener.local_addr()?, "metrics serving on /metrics");
        let app = metrics_router();
        http_tasks.push(tokio::spawn(
            async move { axum::serve(listener, app).await },
        ));
    }
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<AdminServiceServer<AdminApi>>()
        .await;
    let (stop, stopping) = crate::stopping::channel();
    let admin = AdminServiceServer::new(AdminApi::new(
        cluster.clone(),
        options.auth,
        stopping.clone(),
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let agents = AgentServiceServer::new(AgentApi::new(
        cluster,
        options.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        stopping.clone(),
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    tracing::info!(address = %listener.local_addr()?, "master serving");
    // Without TCP_NODELAY, a start message carrying a context waits ~40 ms for a delayed ACK.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(baton_common::proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &options.tls {
        builder = builder.tls_config(tls.config()?)?;
    }
    let mut stopped = stopping.clone();
    let serving = builder
        .layer(crate::status_codes::layer())
        .add_service(health_service)
        .add_service(reflection)
        .add_service(admin)
        .add_service(agents)
        .serve_with_incoming_shutdown(incoming, async move { stopped.stopped().await });
    tokio::pin!(serving);
    tokio::select! {
        served = &mut serving => served?,
        () = &mut shutdown => {
            tracing::info!("stopping: agent sessions and log followers are closed");
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
            health_reporter
                .set_not_serving::<AdminServiceServer<AdminApi>>()
                .await;
            stop.fire();
            match tokio::time::timeout(STOP_DRAIN, &mut serving).await {
                Ok(served) => served?,
                Err(_) => tracing::warn!(
                    drain_seconds = STOP_DRAIN.as_secs(),
                    "calls still open after the drain; closing their connections"
                ),
            }
        }
    }
    for task in http_tasks {
        task.abort();
    }
    let _ = stop_cluster.send(());
    let _ = cluster_task.await;
    if let Some(leadership) = leadership {
        tokio::task::spawn_blocking(move || leadership.release()).await?;
    }
    Ok(())
}

/// Waits as a standby on the PostgreSQL database at `url` until this master holds its lease;
/// None when `shutdown` came first. From then on, a fenced write ends the process.
async fn stand_by(
    url: &str,
    options: &MasterOptions,
    listener: &TcpListener,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> anyhow::Result<Option<Leadership>> {
    let connect_to = url.to_string();
    let lease = tokio::task::spawn_blocking(move || LeaseClient::connect(&connect_to)).await??;
    let own_url = match &options.advertise_url {
        Some(url) => url.clone(),
        None => default_url(listener.local_addr()?, options.tls.is_some()),
    };
    let settings = LeaseSettings {
        ttl: options.lease_ttl,
        holder: own_url.clone(),
        url: own_url,
    };
    tracing::info!(url = %settings.url, "standing by for the database lease");
    let leadership = lead(lease, settings, listener, options.tls.as_ref(), shutdown).await?;
    crate::store::on_fatal(|reason| stop_leading(reason));
    Ok(leadership)
}

/// The URL of a master listening on `address`: its host name in place of an unspecified address.
fn default_url(address: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    if address.ip().is_unspecified() {
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|name| name.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        return format!("{scheme}://{host}:{}", address.port());
    }
    format!("{scheme}://{address}")
}

/// Before each scrape: the state gauges from the cluster task, storage sizes from the database.
fn metrics_refresh(
    cluster: ClusterHandle,
    metrics: Arc<MasterMetrics>,
    database: Database,
) -> baton_common::metrics::Refresh {
    Arc::new(move || {
        let (cluster, metrics, database) = (cluster.clone(), metrics.clone(), database.clone());
        Box::pin(async move {
            let _ = cluster.refresh_metrics().await;
            let read = tokio::task::spawn_blocking(move || metrics.refresh_storage(&database));
            if let Ok(Err(e)) = read.await {
                tracing::warn!(error = %e, "cannot read checkpoint sizes for metrics");
            }
        })
    })
}

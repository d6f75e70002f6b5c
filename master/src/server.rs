//! Wires the store, the cluster task and the gRPC services onto a bound listener.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_common::proto::admin_service_server::AdminServiceServer;
use baton_common::proto::agent_service_server::AgentServiceServer;
use futures::future::pending;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

use crate::auth::Authority;
use crate::cluster::{ClusterHandle, ClusterSettings, run_cluster};
use crate::metrics::MasterMetrics;
use crate::services::{AdminApi, AgentApi};
use crate::store::{Database, LeaseClient, Store};

/// Largest gRPC message accepted (experiment contexts travel in one message).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

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
}

/// The master's certificate and key, and the CA its agents' certificates must chain to.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
    /// When set, agents must present a certificate signed by this CA (PEM); the CLI need not.
    pub client_ca: Option<PathBuf>,
}

impl ServerTls {
    fn config(&self) -> anyhow::Result<tonic::transport::ServerTlsConfig> {
        let read = |path: &PathBuf, what: &str| {
            std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read the TLS {what} {}: {e}", path.display()))
        };
        let identity = tonic::transport::Identity::from_pem(
            read(&self.cert, "certificate")?,
            read(&self.key, "key")?,
        );
        let mut config = tonic::transport::ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.client_ca {
            config = config
                .client_ca_root(tonic::transport::Certificate::from_pem(read(
                    ca,
                    "client CA",
                )?))
                .client_auth_optional(true);
        }
        Ok(config)
    }
}

/// Serves the master on `listener` until `shutdown` resolves.
pub async fn serve(
    options: MasterOptions,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tracing::info!(database = %options.database, "opening the database");
    let lease = match &options.database {
        Database::Postgres(url) => Some(hold_lease(url, &listener, options.tls.is_some())?),
        Database::Sqlite(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            None
        }
    };
    let store = Store::open(&options.database, lease.as_ref().map(|l| l.epoch))?;
    let metrics = options.cluster.metrics.clone();
    let (stop_cluster, cluster_stopped) = tokio::sync::oneshot::channel::<()>();
    let (cluster, cluster_task) = run_cluster(store, options.cluster, async {
        let _ = cluster_stopped.await;
    })?;
    let metrics_task = match options.metrics_listen {
        Some(address) => {
            let listener = baton_common::metrics::bind(address).await?;
            let refresh = metrics_refresh(cluster.clone(), metrics.clone(), options.database);
            let registry = metrics.registry.clone();
            let serve = baton_common::metrics::serve(listener, registry, refresh, pending());
            Some(tokio::spawn(serve))
        }
        None => None,
    };
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<AdminServiceServer<AdminApi>>()
        .await;
    let admin = AdminServiceServer::new(AdminApi::new(cluster.clone(), options.auth))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let agents = AgentServiceServer::new(AgentApi::new(
        cluster,
        options.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
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
    builder
        .layer(crate::status_codes::layer())
        .add_service(health_service)
        .add_service(reflection)
        .add_service(admin)
        .add_service(agents)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    if let Some(task) = metrics_task {
        task.abort();
    }
    let _ = stop_cluster.send(());
    let _ = cluster_task.await;
    if let Some(lease) = lease {
        lease.release().await;
    }
    Ok(())
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

/// Length of the PostgreSQL lease; renewed every third of it.
const LEASE_TTL: Duration = Duration::from_secs(5);

/// Exit status of a master that lost its lease (EX_TEMPFAIL: a supervisor may start it again).
const LOST_LEASE_EXIT: i32 = 75;

/// The PostgreSQL lease this master holds while serving, renewed by a task.
struct HeldLease {
    epoch: u64,
    stop: oneshot::Sender<()>,
    renewer: JoinHandle<()>,
}

impl HeldLease {
    /// Stops renewing and gives the lease up, so that another master may start at once.
    async fn release(self) {
        let _ = self.stop.send(());
        let _ = self.renewer.await;
    }
}

/// Takes the lease of the PostgreSQL database at `url` (an error while another live master holds
/// it) and renews it every third of its length until released; a lost lease, or one that could
/// not be renewed for a whole lease length, ends the process with status 75.
fn hold_lease(url: &str, listener: &TcpListener, tls: bool) -> anyhow::Result<HeldLease> {
    let address = listener.local_addr()?;
    let own_url = format!("{}://{address}", if tls { "https" } else { "http" });
    let holder = format!("baton-master pid {} on {address}", std::process::id());
    let mut lease = LeaseClient::connect(url)?;
    let Some(epoch) = lease.acquire(&holder, &own_url, LEASE_TTL)? else {
        let leader = lease.current()?;
        let (holder, at) = leader.map(|l| (l.holder, l.url)).unwrap_or_default();
        anyhow::bail!(
            "another master holds the lease of the database: {holder} at {at}; stop it, or start \
             this one once its lease expires ({} s after its last renewal)",
            LEASE_TTL.as_secs()
        );
    };
    tracing::info!(epoch, "holding the database lease");
    let (stop, mut stopped) = oneshot::channel::<()>();
    let renewer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(LEASE_TTL / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut renewed = Instant::now();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = tick.tick() => {}
            }
            let attempt = Instant::now();
            match lease.renew(epoch, LEASE_TTL) {
                Ok(true) => renewed = attempt,
                Ok(false) => lost_lease("another master took the lease"),
                Err(e) if attempt.duration_since(renewed) >= LEASE_TTL => {
                    tracing::error!(error = %e, "cannot renew the lease");
                    lost_lease("the lease could not be renewed in time");
                }
                Err(e) => tracing::warn!(error = %e, "cannot renew the lease"),
            }
        }
        if let Err(e) = lease.release(epoch) {
            tracing::warn!(error = %e, "cannot release the lease; it will expire");
        }
    });
    Ok(HeldLease {
        epoch,
        stop,
        renewer,
    })
}

/// Ends the process: a master without the lease may no longer act.
fn lost_lease(reason: &str) -> ! {
    tracing::error!(reason, "this master lost its database lease; exiting");
    std::process::exit(LOST_LEASE_EXIT)
}

//! Wires the store, the cluster task and the gRPC services onto a bound listener.

use std::future::Future;
use std::path::PathBuf;

use baton_common::proto::admin_service_server::AdminServiceServer;
use baton_common::proto::agent_service_server::AgentServiceServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::auth::Authority;
use crate::cluster::{ClusterSettings, run_cluster};
use crate::services::{AdminApi, AgentApi};
use crate::store::Store;

/// Largest gRPC message accepted (experiment contexts travel in one message).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// What a master needs to run.
#[derive(Debug, Clone)]
pub struct MasterOptions {
    /// Directory of the database.
    pub data_dir: PathBuf,
    /// Timing knobs.
    pub cluster: ClusterSettings,
    /// Who may call the admin API.
    pub auth: Authority,
}

/// Serves the master on `listener` until `shutdown` resolves.
pub async fn serve(
    options: MasterOptions,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.data_dir)?;
    let store = Store::open(&options.data_dir)?;
    let (stop_cluster, cluster_stopped) = tokio::sync::oneshot::channel::<()>();
    let (cluster, cluster_task) = run_cluster(store, options.cluster, async {
        let _ = cluster_stopped.await;
    })?;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<AdminServiceServer<AdminApi>>()
        .await;
    let admin = AdminServiceServer::new(AdminApi::new(cluster.clone(), options.auth))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let agents = AgentServiceServer::new(AgentApi::new(cluster))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    tracing::info!(address = %listener.local_addr()?, "master serving");
    // Without TCP_NODELAY, a start message carrying a context waits ~40 ms for a delayed ACK.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(baton_common::proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(admin)
        .add_service(agents)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    let _ = stop_cluster.send(());
    let _ = cluster_task.await;
    Ok(())
}

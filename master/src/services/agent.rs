//! The agent service: one bidirectional stream per agent.

use baton_common::proto::agent_service_server::AgentService;
use baton_common::proto::{AgentMessage, MasterMessage, agent_message::Body};
use futures::Stream;
use std::pin::Pin;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::cluster::ClusterHandle;
use crate::status_codes;
use crate::stopping::Stopping;

/// Serves agent sessions.
pub struct AgentApi {
    cluster: ClusterHandle,
    require_client_cert: bool,
    stopping: Stopping,
}

impl AgentApi {
    /// A service forwarding to the cluster task; with `require_client_cert`, an agent must
    /// present a certificate of the master's client CA. Sessions end when `stopping` fires.
    pub fn new(cluster: ClusterHandle, require_client_cert: bool, stopping: Stopping) -> Self {
        Self {
            cluster,
            require_client_cert,
            stopping,
        }
    }
}

type MasterStream = Pin<Box<dyn Stream<Item = Result<MasterMessage, Status>> + Send>>;

#[tonic::async_trait]
impl AgentService for AgentApi {
    type SessionStream = MasterStream;

    async fn session(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        if self.require_client_cert && request.peer_certs().is_none_or(|certs| certs.is_empty()) {
            return Err(Status::unauthenticated(
                "this master verifies agents: start the agent with --tls-cert and --tls-key signed by the master's --tls-client-ca",
            ));
        }
        let peer = request
            .remote_addr()
            .map_or_else(|| "unknown".to_string(), |a| a.to_string());
        let mut inbound = request.into_inner();
        let hello = match inbound.message().await.map_err(status_codes::corrected)? {
            Some(AgentMessage {
                body: Some(Body::Hello(hello)),
            }) => hello,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message of a session must be Hello",
                ));
            }
        };
        let agent_id = hello.agent_id.clone();
        let (sender, receiver) = mpsc::unbounded_channel();
        let reply = sender.clone();
        let session = self.cluster.agent_connected(hello, sender, peer).await?;
        let cluster = self.cluster.clone();
        let mut stopping = self.stopping.clone();
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    received = inbound.message() => received,
                    // The agent keeps its trials and reconnects to the next master.
                    () = stopping.stopped() => return,
                };
                match received {
                    Ok(Some(message)) => {
                        if cluster
                            .agent_report(agent_id.clone(), session, message)
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(status) => {
                        let status = status_codes::corrected(status);
                        tracing::warn!(agent = %agent_id, error = %status, "agent stream failed");
                        let _ = reply.send(Err(status));
                        break;
                    }
                }
            }
            let _ = cluster.agent_disconnected(agent_id, session).await;
        });
        let outbound = UnboundedReceiverStream::new(receiver);
        Ok(Response::new(Box::pin(self.stopping.clone().cut(outbound))))
    }
}

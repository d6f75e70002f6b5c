//! A standby master's listener: health answers NOT_SERVING and every other call is refused
//! `UNAVAILABLE`, naming the leader, until this master takes the lease.

use std::future::{Future, Ready, ready};
use std::task::{Context, Poll};

use futures::future::Either;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Status};
use tonic_health::ServingStatus;

use crate::server::ServerTls;

use baton_common::master_list::LEADER_KEY;

/// The gRPC services a standby reports NOT_SERVING.
const SERVICES: [&str; 3] = ["", "baton.v1.AdminService", "baton.v1.AgentService"];

/// Path prefix of the health service, which a standby answers itself.
const HEALTH_PATH: &str = "/grpc.health.v1.Health/";

/// The refusal of a call to a standby whose known leader is `leader`.
pub fn refusal(leader: Option<&str>) -> Status {
    let Some(url) = leader else {
        return Status::unavailable("standby master: no leader yet");
    };
    let mut metadata = MetadataMap::new();
    if let Ok(value) = MetadataValue::try_from(url) {
        metadata.insert(LEADER_KEY, value);
    }
    Status::with_metadata(
        Code::Unavailable,
        format!("standby master: the leader is at {url}"),
        metadata,
    )
}

/// Serves `listener` as a standby until `until` resolves; `leader` carries the leader's URL.
pub async fn serve_standby(
    listener: TcpListener,
    tls: Option<&ServerTls>,
    leader: watch::Receiver<Option<String>>,
    until: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for service in SERVICES {
        reporter
            .set_service_status(service, ServingStatus::NotServing)
            .await;
    }
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls.config()?)?;
    }
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    builder
        .layer(StandbyLayer { leader })
        .add_service(health)
        .serve_with_incoming_shutdown(incoming, until)
        .await?;
    Ok(())
}

/// Refuses every call but health checks.
#[derive(Clone)]
struct StandbyLayer {
    leader: watch::Receiver<Option<String>>,
}

impl<S> tower::Layer<S> for StandbyLayer {
    type Service = StandbyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StandbyService {
            inner,
            leader: self.leader.clone(),
        }
    }
}

/// The service [`StandbyLayer`] wraps around the health service.
#[derive(Clone)]
struct StandbyService<S> {
    inner: S,
    leader: watch::Receiver<Option<String>>,
}

impl<S, B> tower::Service<http::Request<B>> for StandbyService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Self::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path().starts_with(HEALTH_PATH) {
            return Either::Left(self.inner.call(request));
        }
        let status = refusal(self.leader.borrow().as_deref());
        Either::Right(ready(Ok(status.into_http())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_leader_in_its_message_and_metadata() {
        let status = refusal(Some("http://10.0.0.2:8090"));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.message(),
            "standby master: the leader is at http://10.0.0.2:8090"
        );
        assert_eq!(
            status.metadata().get(LEADER_KEY).unwrap(),
            "http://10.0.0.2:8090"
        );
        let unknown = refusal(None);
        assert_eq!(unknown.message(), "standby master: no leader yet");
        assert!(unknown.metadata().get(LEADER_KEY).is_none());
    }
}

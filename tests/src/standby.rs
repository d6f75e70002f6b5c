//! A fake standby master: every `baton.v1` call is declined with `UNAVAILABLE` (naming the leader
//! in `baton-leader` when there is one), and health reports the admin API `NOT_SERVING`.

use baton_common::master_list::LEADER_KEY;
use baton_common::proto::admin_service_server::SERVICE_NAME;
use tonic::codegen::http;
use tonic::metadata::MetadataMap;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Status};
use tonic_health::ServingStatus;

/// A standby master on a free loopback port; it stops when dropped.
pub struct FakeStandby {
    /// Its URL.
    pub url: String,
    _runtime: tokio::runtime::Runtime,
}

impl FakeStandby {
    /// Starts a standby that names `leader` (None: no leader yet).
    pub fn start(leader: Option<&str>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("standby binds");
        let url = format!("http://{}", listener.local_addr().expect("standby address"));
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("standby runtime");
        let leader = leader.map(str::to_string);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            let (reporter, health) = tonic_health::server::health_reporter();
            reporter
                .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
                .await;
            let routes = tonic::service::Routes::new(health)
                .into_axum_router()
                .fallback(move || std::future::ready(declined(leader.as_deref())));
            tonic::transport::Server::builder()
                .add_routes(routes.into())
                .serve_with_incoming(TcpIncoming::from(listener))
                .await
        });
        Self {
            url,
            _runtime: runtime,
        }
    }
}

/// The answer of a standby to any call but health.
fn declined(leader: Option<&str>) -> http::Response<tonic::body::Body> {
    let mut metadata = MetadataMap::new();
    let message = match leader {
        Some(leader) => {
            metadata.insert(LEADER_KEY, leader.parse().expect("ASCII leader URL"));
            format!("standby master: the leader is at {leader}")
        }
        None => "standby master: no leader yet".to_string(),
    };
    Status::with_metadata(Code::Unavailable, message, metadata).into_http()
}

/// A URL on a loopback port that nothing listens on: a master that is down.
pub fn dead_master_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    format!("http://{}", listener.local_addr().expect("address"))
}

//! The read-only HTTP JSON API under `/api/v1` that the web dashboard reads: the admin API's
//! reads, through the same cluster handle and behind the same bearer tokens; and the dashboard
//! itself under `/ui/` (static files, no token).

mod assets;
mod logs;
mod metrics;
mod series;
mod serve;
mod views;

pub use serve::{serve, tls_config};

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use baton_common::json_shapes;
use serde_json::{Value, json};

use crate::auth::{Access, Authority};
use crate::cluster::ClusterHandle;
use crate::error::MasterError;
use crate::states::ExperimentState;

/// What every handler reads through.
#[derive(Clone)]
struct Api {
    cluster: ClusterHandle,
    auth: Authority,
}

/// A failed request: its HTTP status and a JSON body `{"error": message}`.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let code = match status.code() {
            tonic::Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
            tonic::Code::NotFound => StatusCode::NOT_FOUND,
            tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
            tonic::Code::FailedPrecondition => StatusCode::CONFLICT,
            tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self(code, status.message().to_string())
    }
}

impl From<MasterError> for ApiError {
    fn from(error: MasterError) -> Self {
        tonic::Status::from(error).into()
    }
}

type Answer = Result<Json<Value>, ApiError>;

/// The API's routes; every one is a GET, and every one needs a token where gRPC would. The
/// dashboard's static files are merged in outside the token check: they carry no data.
pub fn router(cluster: ClusterHandle, auth: Authority) -> Router {
    let api = Api { cluster, auth };
    Router::new()
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/experiments", get(experiments))
        .route("/api/v1/experiments/{id}", get(experiment))
        .route("/api/v1/experiments/{id}/checkpoints", get(checkpoints))
        .route(
            "/api/v1/experiments/{id}/metrics",
            get(metrics::experiment_metrics),
        )
        .route("/api/v1/trials/{id}", get(trial))
        .route("/api/v1/trials/{id}/metrics", get(metrics::trial_metrics))
        .route("/api/v1/trials/{id}/logs", get(logs::trial_logs))
        .route_layer(middleware::from_fn_with_state(api.clone(), authorize))
        .method_not_allowed_fallback(|| async {
            ApiError(
                StatusCode::METHOD_NOT_ALLOWED,
                "this API is read-only: use GET".into(),
            )
        })
        .with_state(api)
        .merge(assets::router())
}

/// Admits a request whose bearer token the admin API would admit for a read.
async fn authorize(State(api): State<Api>, request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.to_string());
    let path = request.uri().path().to_string();
    match api.auth.check_header(header, peer, Access::Read, &path) {
        Ok(_) => next.run(request).await,
        Err(status) => ApiError::from(status).into_response(),
    }
}

/// Parses a path id, naming what it should have been.
fn id(what: &str, text: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("{what} id must be a non-negative integer (got {text:?})"),
        )
    })
}

/// A bad query parameter.
fn bad_parameter(name: &str, message: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, format!("{name}: {message}"))
}

/// A whole-number query parameter from `min` to `max`, `default` when absent.
fn number_parameter(
    query: &HashMap<String, String>,
    name: &str,
    default: u64,
    (min, max): (u64, u64),
) -> Result<u64, ApiError> {
    let Some(text) = query.get(name) else {
        return Ok(default);
    };
    text.parse()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            bad_parameter(
                name,
                format!("must be a whole number from {min} to {max} (got {text:?})"),
            )
        })
}

async fn agents(State(api): State<Api>) -> Answer {
    let listed = api.cluster.list_agents().await?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let agents: Vec<Value> = listed
        .agents
        .iter()
        .map(|a| views::agent(a, now_ms))
        .collect();
    Ok(Json(json!({ "agents": agents })))
}

async fn experiments(
    State(api): State<Api>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer {
    let wanted = match query.get("state") {
        Some(states) => Some(
            states
                .split(',')
                .map(|s| {
                    s.trim()
                        .to_ascii_uppercase()
                        .parse::<ExperimentState>()
                        .map(|state| state.to_string())
                        .map_err(|e| bad_parameter("state", e.to_string()))
                })
                .collect::<Result<HashSet<_>, _>>()?,
        ),
        None => None,
    };
    let listed = api.cluster.list_experiments().await?;
    let experiments: Vec<Value> = listed
        .experiments
        .iter()
        .filter(|e| wanted.as_ref().is_none_or(|w| w.contains(&e.state)))
        .map(json_shapes::experiment_summary)
        .collect();
    Ok(Json(json!({ "experiments": experiments })))
}

async fn experiment(State(api): State<Api>, Path(raw): Path<String>) -> Answer {
    let exp = api
        .cluster
        .describe_experiment(id("experiment", &raw)?)
        .await?;
    Ok(Json(json_shapes::experiment(&exp)))
}

async fn checkpoints(State(api): State<Api>, Path(raw): Path<String>) -> Answer {
    let experiment_id = id("experiment", &raw)?;
    let listed = api.cluster.list_checkpoints(experiment_id, false).await?;
    let kept: HashSet<String> = api
        .cluster
        .gc_kept(experiment_id)
        .await?
        .into_iter()
        .collect();
    let checkpoints: Vec<Value> = listed
        .checkpoints
        .iter()
        .map(|c| views::checkpoint_with_gc(c, &kept))
        .collect();
    Ok(Json(json!({ "checkpoints": checkpoints })))
}

async fn trial(State(api): State<Api>, Path(raw): Path<String>) -> Answer {
    let detail = api.cluster.describe_trial(id("trial", &raw)?).await?;
    let checkpoints = match &detail.trial {
        Some(t) => {
            let mut listed = api.cluster.list_checkpoints(t.experiment_id, false).await?;
            listed.checkpoints.retain(|c| c.trial_id == t.id);
            listed.checkpoints
        }
        None => Vec::new(),
    };
    Ok(Json(views::trial_detail(&detail, &checkpoints)))
}

//! Metric series: one trial's, and one metric of every trial of an experiment for its curves.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use baton_common::json_shapes;
use serde_json::json;

use super::series::{self, experiment_series, trial_series_json};
use super::{Answer, Api, ApiError, bad_parameter, id, number_parameter};

/// Points of a trial's series unless `max_points` says otherwise.
const TRIAL_MAX_POINTS: u64 = 1000;
/// Points of each trial's series in an experiment's curves unless `max_points` says otherwise.
const EXPERIMENT_MAX_POINTS: u64 = 200;
/// The most points a series may ask for.
const MAX_POINTS_LIMIT: u64 = 100_000;

/// Whether `kind` asks for training metrics (the default) or validations.
fn is_training(query: &HashMap<String, String>) -> Result<bool, ApiError> {
    match query.get("kind").map(String::as_str) {
        None | Some("training") => Ok(true),
        Some("validation") => Ok(false),
        Some(other) => Err(bad_parameter(
            "kind",
            format!("must be training or validation (got {other:?})"),
        )),
    }
}

/// The name of `kind`.
fn kind_name(training: bool) -> &'static str {
    if training { "training" } else { "validation" }
}

/// `GET /api/v1/trials/{id}/metrics?kind=&max_points=`: every metric of a trial, by step.
pub async fn trial_metrics(
    State(api): State<Api>,
    Path(raw): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer {
    let trial_id = id("trial", &raw)?;
    let training = is_training(&query)?;
    let max_points = number_parameter(
        &query,
        "max_points",
        TRIAL_MAX_POINTS,
        (1, MAX_POINTS_LIMIT),
    )?;
    let points = series::validations(api.cluster.trial_metrics(trial_id, training).await?);
    let kept = series::downsample(&points, max_points as usize);
    Ok(Json(json!({
        "trial_id": trial_id,
        "kind": kind_name(training),
        "total_points": points.len(),
        "points": kept.iter().map(json_shapes::validation).collect::<Vec<_>>(),
    })))
}

/// `GET /api/v1/experiments/{id}/metrics?kind=&metric=&max_points=`: one metric of every trial
/// (the searcher metric unless named), each trial's series downsampled to `max_points`.
pub async fn experiment_metrics(
    State(api): State<Api>,
    Path(raw): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer {
    let experiment_id = id("experiment", &raw)?;
    let training = is_training(&query)?;
    let max_points = number_parameter(
        &query,
        "max_points",
        EXPERIMENT_MAX_POINTS,
        (1, MAX_POINTS_LIMIT),
    )? as usize;
    let metric = query.get("metric").cloned();
    let (searcher_metric, rows) = api
        .cluster
        .experiment_metrics(experiment_id, training)
        .await?;
    let body = tokio::task::spawn_blocking(move || {
        let (chosen, found) = experiment_series(&rows, metric.as_deref(), &searcher_metric);
        json!({
            "experiment_id": experiment_id,
            "kind": kind_name(training),
            "metric": chosen,
            "metric_names": found.metric_names,
            "series": found.trials.iter()
                .map(|(trial, points)| trial_series_json(*trial, points, max_points))
                .collect::<Vec<_>>(),
        })
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(body))
}

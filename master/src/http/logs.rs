//! A trial's output, a page at a time: the dashboard follows a running trial by asking for the
//! lines after the last one it has.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use baton_common::json_shapes;
use baton_common::proto::TrialLogLine;
use serde_json::json;

use super::{Answer, Api, bad_parameter, id, number_parameter};
use crate::cluster::LogWindow;

/// Lines a page holds unless `limit` says otherwise.
const DEFAULT_LIMIT: u64 = 1000;
/// The most lines a page may hold.
const MAX_LIMIT: u64 = 10_000;

/// `GET /api/v1/trials/{id}/logs?after=&limit=` or `?tail=`: log lines, oldest first, with the
/// id to ask after next.
pub async fn trial_logs(
    State(api): State<Api>,
    Path(raw): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer {
    let trial_id = id("trial", &raw)?;
    let after = number_parameter(&query, "after", 0, (0, u64::MAX))?;
    let window = if query.contains_key("tail") {
        if query.contains_key("after") {
            return Err(bad_parameter(
                "tail",
                "give either tail or after, not both".into(),
            ));
        }
        LogWindow::Tail(number_parameter(&query, "tail", 0, (1, MAX_LIMIT))?)
    } else {
        LogWindow::After {
            after,
            limit: number_parameter(&query, "limit", DEFAULT_LIMIT, (1, MAX_LIMIT))?,
        }
    };
    let rows = api.cluster.log_page(trial_id, window).await?;
    let next_after = rows.last().map_or(after, |row| row.id);
    let lines: Vec<_> = rows
        .into_iter()
        .map(|row| json_shapes::log_line(&TrialLogLine::from(row)))
        .collect();
    Ok(Json(json!({
        "trial_id": trial_id,
        "lines": lines,
        "next_after": next_after,
    })))
}

//! Trials, their allocations and validations as JSON.

use serde_json::{Value, json};

use super::{metric_value, non_empty, parse_json_field, time};
use crate::proto::{Allocation, Trial, TrialDetail, TrialLogLine, Validation};

/// A trial as `trial list --json` shows it.
pub fn trial(trial: &Trial) -> Value {
    json!({
        "id": trial.id,
        "experiment_id": trial.experiment_id,
        "state": trial.state,
        "hparams": parse_json_field(&trial.hparams_json, json!({})),
        "steps_completed": trial.steps_completed,
        "restarts": trial.restarts,
        "agent_id": non_empty(&trial.agent_id),
        "latest_checkpoint": non_empty(&trial.latest_checkpoint_uuid),
        "error": non_empty(&trial.error),
        "state_reason": non_empty(&trial.state_reason),
        "target_length": trial.target_length,
        "best_metric": metric_value(trial.best_metric.as_ref()),
        "latest_metric": metric_value(trial.latest_metric.as_ref()),
    })
}

/// A trial as `trial describe --json` shows it: with its allocations and validations.
pub fn trial_detail(detail: &TrialDetail) -> Value {
    let mut value = detail.trial.as_ref().map_or_else(|| json!({}), trial);
    value["allocations"] = detail.allocations.iter().map(allocation).collect();
    value["latest_validation"] = detail
        .latest_validation
        .as_ref()
        .map_or(Value::Null, validation);
    value["validations"] = detail.validations.iter().map(validation).collect();
    value
}

/// One step's metrics: `{step, metrics}` with the metrics parsed.
pub fn validation(point: &Validation) -> Value {
    json!({ "step": point.step, "metrics": parse_json_field(&point.metrics_json, json!({})) })
}

/// One allocation: where and when it ran, and why it ended (`exit_reason` null while running).
pub fn allocation(alloc: &Allocation) -> Value {
    json!({
        "id": alloc.id,
        "agent_id": alloc.agent_id,
        "start_step": alloc.start_step,
        "end_step": alloc.end_step,
        "exit_reason": non_empty(&alloc.exit_reason),
        "started_ms": alloc.started_ms,
        "ended_ms": alloc.ended_ms,
        "started": time(alloc.started_ms),
        "ended": time(alloc.ended_ms),
        "message": non_empty(&alloc.message),
        "parts": alloc.parts.iter().map(|p| json!({
            "id": p.id,
            "agent_id": p.agent_id,
            "slot_ids": p.slot_ids,
            "exit_reason": non_empty(&p.exit_reason),
            "message": non_empty(&p.message),
        })).collect::<Vec<_>>(),
    })
}

/// One line of a trial's output, as `trial logs --json` prints it.
pub fn log_line(line: &TrialLogLine) -> Value {
    json!({
        "id": line.id,
        "allocation_id": line.allocation_id,
        "stream": line.stream,
        "text": line.text,
        "timestamp_ms": line.timestamp_ms,
        "timestamp": time(line.timestamp_ms),
    })
}

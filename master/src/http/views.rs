//! The JSON shapes of the HTTP API: the CLI's `--json` shapes, field for field.

use std::collections::{BTreeMap, HashSet};

use baton_common::proto::{
    Agent, Allocation, Checkpoint, Experiment, Trial, TrialDetail, Validation,
};
use chrono::{DateTime, SecondsFormat};
use serde_json::{Value, json};

/// Unix milliseconds in RFC 3339, UTC; `null` when unset.
fn time(unix_ms: i64) -> Value {
    DateTime::from_timestamp_millis(unix_ms)
        .filter(|_| unix_ms > 0)
        .map_or(Value::Null, |at| {
            Value::String(at.to_rfc3339_opts(SecondsFormat::Millis, true))
        })
}

/// A JSON document stored as text, parsed (`default` when empty, the text when unparsable).
fn parsed(text: &str, default: Value) -> Value {
    if text.trim().is_empty() {
        return default;
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// `null` for an empty string, the string otherwise.
fn non_empty(text: &str) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        Value::String(text.to_string())
    }
}

/// An agent as `agent list --json` shows it, with the age of its last heartbeat.
pub fn agent(agent: &Agent, now_ms: i64) -> Value {
    json!({
        "id": agent.id,
        "state": agent.state,
        "connected": agent.connected,
        "slots": agent.slots,
        "used_slots": agent.used_slots,
        "trial_ids": agent.trial_ids,
        "last_seen_ms": agent.last_seen_ms,
        "last_seen": time(agent.last_seen_ms),
        "heartbeat_age_ms": (agent.last_seen_ms > 0).then(|| now_ms.saturating_sub(agent.last_seen_ms).max(0)),
        "version": agent.version,
        "slot_details": agent.slot_details.iter()
            .map(|s| json!({ "id": s.id, "kind": s.kind, "name": s.name }))
            .collect::<Vec<_>>(),
    })
}

/// An experiment as `experiment list --json` shows it: counts, no trials.
pub fn experiment_summary(exp: &Experiment) -> Value {
    let trial_states: BTreeMap<&str, u32> = exp
        .trial_states
        .iter()
        .map(|(state, count)| (state.as_str(), *count))
        .collect();
    json!({
        "id": exp.id,
        "name": exp.name,
        "state": exp.state,
        "searcher": exp.searcher,
        "created_ms": exp.created_ms,
        "created": time(exp.created_ms),
        "trial_count": exp.trial_count,
        "trial_states": trial_states,
        "steps_completed": exp.steps_completed,
        "max_length": exp.max_length,
        "storage_bytes": exp.storage_bytes,
        "storage_peak_bytes": exp.storage_peak_bytes,
        "pinned_checkpoints": exp.pinned_checkpoints,
        "gc_while_running": exp.gc_while_running,
    })
}

/// An experiment with its trials, as `experiment describe --json` shows it (brackets aside).
pub fn experiment(exp: &Experiment) -> Value {
    let mut value = experiment_summary(exp);
    value["trials"] = exp.trials.iter().map(trial).collect();
    value
}

/// A trial as `trial list --json` shows it.
pub fn trial(trial: &Trial) -> Value {
    json!({
        "id": trial.id,
        "experiment_id": trial.experiment_id,
        "state": trial.state,
        "hparams": parsed(&trial.hparams_json, json!({})),
        "steps_completed": trial.steps_completed,
        "restarts": trial.restarts,
        "agent_id": non_empty(&trial.agent_id),
        "latest_checkpoint": non_empty(&trial.latest_checkpoint_uuid),
        "error": non_empty(&trial.error),
        "state_reason": non_empty(&trial.state_reason),
        "target_length": trial.target_length,
    })
}

/// A trial as `trial describe --json` shows it, with its checkpoints added.
pub fn trial_detail(detail: &TrialDetail, checkpoints: &[Checkpoint]) -> Value {
    let mut value = detail.trial.as_ref().map_or_else(|| json!({}), trial);
    value["allocations"] = detail.allocations.iter().map(allocation).collect();
    value["latest_validation"] = detail
        .latest_validation
        .as_ref()
        .map_or(Value::Null, series_point);
    value["validations"] = detail.validations.iter().map(series_point).collect();
    value["checkpoints"] = checkpoints.iter().map(checkpoint).collect();
    value
}

/// One step of a metric series: `{step, metrics}`.
pub fn series_point(point: &Validation) -> Value {
    json!({ "step": point.step, "metrics": parsed(&point.metrics_json, json!({})) })
}

/// One allocation of a trial.
fn allocation(alloc: &Allocation) -> Value {
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

/// A checkpoint as `experiment list-checkpoints --json` shows it.
pub fn checkpoint(ckpt: &Checkpoint) -> Value {
    json!({
        "uuid": ckpt.uuid,
        "experiment_id": ckpt.experiment_id,
        "trial_id": ckpt.trial_id,
        "step": ckpt.step,
        "state": ckpt.state,
        "metric": ckpt.metric,
        "size_bytes": ckpt.size_bytes,
        "created_ms": ckpt.created_ms,
        "created": time(ckpt.created_ms),
        "pinned": ckpt.pinned,
        "pin_note": non_empty(&ckpt.pin_note),
    })
}

/// A checkpoint with whether the experiment's current GC policy keeps it.
pub fn checkpoint_with_gc(ckpt: &Checkpoint, kept: &HashSet<String>) -> Value {
    let mut value = checkpoint(ckpt);
    value["gc_keeps"] = Value::Bool(kept.contains(&ckpt.uuid));
    value
}

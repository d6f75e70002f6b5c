//! The JSON shapes of the HTTP API: the CLI's `--json` shapes, with what a dashboard adds.

use std::collections::HashSet;

use baton_common::json_shapes;
use baton_common::proto::{Agent, Checkpoint, TrialDetail};
use serde_json::{Value, json};

/// An agent as `agent list --json` shows it, with the age of its last heartbeat.
pub fn agent(agent: &Agent, now_ms: i64) -> Value {
    let mut value = json_shapes::agent(agent);
    value["heartbeat_age_ms"] =
        json!((agent.last_seen_ms > 0).then(|| now_ms.saturating_sub(agent.last_seen_ms).max(0)));
    value
}

/// A trial as `trial describe --json` shows it, with its checkpoints added.
pub fn trial_detail(detail: &TrialDetail, checkpoints: &[Checkpoint]) -> Value {
    let mut value = json_shapes::trial_detail(detail);
    value["checkpoints"] = checkpoints.iter().map(json_shapes::checkpoint).collect();
    value
}

/// A checkpoint with whether the experiment's current GC policy keeps it.
pub fn checkpoint_with_gc(ckpt: &Checkpoint, kept: &HashSet<String>) -> Value {
    let mut value = json_shapes::checkpoint(ckpt);
    value["gc_keeps"] = Value::Bool(kept.contains(&ckpt.uuid));
    value
}

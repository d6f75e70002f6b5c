//! Checkpoints as JSON.

use serde_json::{Value, json};

use super::{non_empty, parse_json_field, time};
use crate::proto::Checkpoint;

/// A checkpoint as `list-checkpoints --json` and GC previews show it.
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

/// A checkpoint as `checkpoint describe --json` shows it: metadata and storage parsed.
pub fn checkpoint_described(ckpt: &Checkpoint) -> Value {
    let mut value = checkpoint(ckpt);
    value["metadata"] = parse_json_field(&ckpt.metadata_json, json!({}));
    value["storage"] = parse_json_field(&ckpt.storage_json, Value::Null);
    value["error"] = non_empty(&ckpt.error);
    value
}

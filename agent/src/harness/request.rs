//! Decoding one harness request line into a typed request, with the limits a trial must keep.

use serde_json::{Map, Value};

/// Longest request line the agent reads; a longer line is refused and skipped.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Most metrics in one report.
pub const MAX_METRICS_PER_REPORT: usize = 1000;
/// Longest metric name, in bytes.
pub const MAX_METRIC_NAME_BYTES: usize = 256;
/// Largest checkpoint `metadata` object, serialized, in bytes.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// A request from the trial.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// The first request of a connection.
    Init,
    /// A completed training step and its metrics.
    ReportTraining {
        /// Steps completed.
        step: u64,
        /// Metric name → number.
        metrics: Map<String, Value>,
    },
    /// Validation metrics at a step.
    ReportValidation {
        /// The step validated.
        step: u64,
        /// Metric name → number.
        metrics: Map<String, Value>,
    },
    /// A directory for a checkpoint of the state after `step`.
    CheckpointStart {
        /// The step checkpointed.
        step: u64,
        /// The uuid rank 0 got, from the other ranks of a distributed trial (normalized).
        uuid: Option<String>,
    },
    /// The checkpoint's files are complete.
    CheckpointEnd {
        /// The checkpoint's uuid.
        uuid: String,
        /// The step given to `checkpoint_start`, when the trial repeats it.
        step: Option<u64>,
        /// The trial's own description of the checkpoint.
        metadata: Map<String, Value>,
        /// The rank that ended it, in a distributed trial.
        rank: Option<u32>,
    },
    /// Discard an open checkpoint.
    CheckpointAbort {
        /// The checkpoint's uuid.
        uuid: String,
    },
}

impl Request {
    /// The request's `op`, as the trial names it.
    pub fn op(&self) -> &'static str {
        match self {
            Request::Init => "init",
            Request::ReportTraining { .. } => "report_training",
            Request::ReportValidation { .. } => "report_validation",
            Request::CheckpointStart { .. } => "checkpoint_start",
            Request::CheckpointEnd { .. } => "checkpoint_end",
            Request::CheckpointAbort { .. } => "checkpoint_abort",
        }
    }
}

/// Decodes one request line; the error names the field and what would be right.
pub fn decode(line: &str) -> Result<Request, String> {
    let value: Value =
        serde_json::from_str(line).map_err(|e| format!("request is not valid JSON: {e}"))?;
    let request = value.as_object().ok_or("a request must be a JSON object")?;
    let op = request
        .get("op")
        .and_then(Value::as_str)
        .ok_or("request has no string field \"op\"")?;
    match op {
        "init" => Ok(Request::Init),
        "report_training" => Ok(Request::ReportTraining {
            step: field_u64(request, "step")?,
            metrics: metrics(request)?,
        }),
        "report_validation" => Ok(Request::ReportValidation {
            step: field_u64(request, "step")?,
            metrics: metrics(request)?,
        }),
        "checkpoint_start" => Ok(Request::CheckpointStart {
            step: field_u64(request, "step")?,
            uuid: match request.get("uuid") {
                None | Some(Value::Null) => None,
                Some(_) => Some(field_uuid(request, "uuid")?),
            },
        }),
        "checkpoint_end" => Ok(Request::CheckpointEnd {
            uuid: field_str(request, "uuid")?,
            step: match request.get("step") {
                None | Some(Value::Null) => None,
                Some(_) => Some(field_u64(request, "step")?),
            },
            metadata: metadata(request)?,
            rank: match request.get("rank") {
                None | Some(Value::Null) => None,
                Some(_) => Some(field_u32(request, "rank")?),
            },
        }),
        "checkpoint_abort" => Ok(Request::CheckpointAbort {
            uuid: field_str(request, "uuid")?,
        }),
        other => Err(format!(
            "unknown op {other:?} (expected init, report_training, report_validation, checkpoint_start, checkpoint_end or checkpoint_abort)"
        )),
    }
}

fn field_u64(request: &Map<String, Value>, name: &str) -> Result<u64, String> {
    request
        .get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("field {name:?} must be a non-negative integer"))
}

fn field_u32(request: &Map<String, Value>, name: &str) -> Result<u32, String> {
    request
        .get(name)
        .and_then(Value::as_u64)
        .and_then(|value| u32::try_from(value).ok())
        .ok_or_else(|| format!("field {name:?} must be an integer from 0 to {}", u32::MAX))
}

/// A UUID field, in its lowercase hyphenated form.
fn field_uuid(request: &Map<String, Value>, name: &str) -> Result<String, String> {
    let text = field_str(request, name)?;
    uuid::Uuid::parse_str(&text)
        .map(|uuid| uuid.to_string())
        .map_err(|_| format!("field {name:?} must be a UUID, got {:?}", truncated(&text)))
}

fn field_str(request: &Map<String, Value>, name: &str) -> Result<String, String> {
    request
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("field {name:?} must be a string"))
}

/// The `metrics` object: at most `MAX_METRICS_PER_REPORT` names of at most
/// `MAX_METRIC_NAME_BYTES`, each a number.
fn metrics(request: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let metrics = request
        .get("metrics")
        .and_then(Value::as_object)
        .ok_or("field \"metrics\" must be a JSON object of metric name to number")?;
    if metrics.len() > MAX_METRICS_PER_REPORT {
        return Err(format!(
            "field \"metrics\" has {} entries: at most {MAX_METRICS_PER_REPORT} metrics per report",
            metrics.len()
        ));
    }
    for (name, value) in metrics {
        if name.is_empty() || name.len() > MAX_METRIC_NAME_BYTES {
            return Err(format!(
                "metric name {:?} must be 1 to {MAX_METRIC_NAME_BYTES} bytes long",
                truncated(name)
            ));
        }
        if !value.is_number() {
            return Err(format!(
                "metric {:?} must be a number, not {value}",
                truncated(name)
            ));
        }
    }
    Ok(metrics.clone())
}

/// The optional `metadata` object, at most `MAX_METADATA_BYTES` serialized.
fn metadata(request: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let Some(value) = request.get("metadata") else {
        return Ok(Map::new());
    };
    let metadata = value
        .as_object()
        .ok_or("field \"metadata\" must be a JSON object")?;
    let size = value.to_string().len();
    if size > MAX_METADATA_BYTES {
        return Err(format!(
            "field \"metadata\" is {size} bytes: at most {MAX_METADATA_BYTES} (store large data as checkpoint files)"
        ));
    }
    Ok(metadata.clone())
}

/// The start of a long name, for error messages.
fn truncated(name: &str) -> String {
    match name.char_indices().nth(40) {
        Some((end, _)) => format!("{}…", &name[..end]),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn requests_decode_to_their_fields() {
        assert_eq!(decode(r#"{"op":"init"}"#), Ok(Request::Init));
        let Ok(Request::ReportTraining { step, metrics }) =
            decode(r#"{"op":"report_training","step":3,"metrics":{"loss":0.5},"extra":1}"#)
        else {
            panic!("a training report");
        };
        assert_eq!((step, metrics["loss"].as_f64()), (3, Some(0.5)));
        assert_eq!(
            decode(r#"{"op":"checkpoint_end","uuid":"u"}"#),
            Ok(Request::CheckpointEnd {
                uuid: "u".into(),
                step: None,
                metadata: Map::new(),
                rank: None
            })
        );
    }

    #[test]
    fn ranks_of_a_distributed_trial_name_the_uuid_and_their_rank() {
        assert_eq!(
            decode(r#"{"op":"checkpoint_start","step":5}"#),
            Ok(Request::CheckpointStart {
                step: 5,
                uuid: None
            })
        );
        assert_eq!(
            decode(
                r#"{"op":"checkpoint_start","step":5,"uuid":"0E5F7C1E-6A3B-4D7E-9B1A-2F4C8D9E0A11"}"#
            ),
            Ok(Request::CheckpointStart {
                step: 5,
                uuid: Some("0e5f7c1e-6a3b-4d7e-9b1a-2f4c8d9e0a11".into())
            })
        );
        let Ok(Request::CheckpointEnd { rank, .. }) =
            decode(r#"{"op":"checkpoint_end","uuid":"u","rank":3}"#)
        else {
            panic!("a checkpoint end");
        };
        assert_eq!(rank, Some(3));
    }

    #[test]
    fn bad_requests_name_the_field() {
        for (line, expected) in [
            ("not json", "not valid JSON"),
            ("[1]", "must be a JSON object"),
            (r#"{"op":7}"#, "no string field \"op\""),
            (r#"{"op":"fly"}"#, "unknown op \"fly\""),
            (
                r#"{"op":"report_training","step":-1,"metrics":{}}"#,
                "\"step\" must be a non-negative integer",
            ),
            (
                r#"{"op":"report_training","step":1,"metrics":[]}"#,
                "\"metrics\" must be a JSON object",
            ),
            (
                r#"{"op":"report_validation","step":1,"metrics":{"loss":"low"}}"#,
                "metric \"loss\" must be a number",
            ),
            (
                r#"{"op":"report_validation","step":1,"metrics":{"":1}}"#,
                "must be 1 to 256 bytes",
            ),
            (
                r#"{"op":"checkpoint_end","uuid":"u","step":"x"}"#,
                "\"step\" must be a non-negative integer",
            ),
            (
                r#"{"op":"checkpoint_end","uuid":"u","metadata":[]}"#,
                "\"metadata\" must be a JSON object",
            ),
            (r#"{"op":"checkpoint_abort"}"#, "\"uuid\" must be a string"),
            (
                r#"{"op":"checkpoint_start","step":1,"uuid":"rank-0"}"#,
                "field \"uuid\" must be a UUID, got \"rank-0\"",
            ),
            (
                r#"{"op":"checkpoint_end","uuid":"u","rank":-1}"#,
                "field \"rank\" must be an integer from 0 to 4294967295",
            ),
        ] {
            let error = decode(line).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }

    #[test]
    fn limits_are_named_in_the_error() {
        let many: Map<String, Value> = (0..=MAX_METRICS_PER_REPORT)
            .map(|i| (format!("m{i}"), Value::from(i)))
            .collect();
        let line = serde_json::json!({"op":"report_training","step":1,"metrics":many}).to_string();
        let error = decode(&line).unwrap_err();
        assert!(error.contains("has 1001 entries: at most 1000"), "{error}");
        let long = "n".repeat(MAX_METRIC_NAME_BYTES + 1);
        let line = serde_json::json!({"op":"report_training","step":1,"metrics":{long: 1}});
        assert!(
            decode(&line.to_string())
                .unwrap_err()
                .contains("bytes long")
        );
        let big = "x".repeat(MAX_METADATA_BYTES);
        let line = serde_json::json!({"op":"checkpoint_end","uuid":"u","metadata":{"a": big}});
        let error = decode(&line.to_string()).unwrap_err();
        assert!(error.contains("at most 65536"), "{error}");
    }

    proptest! {
        #[test]
        fn any_line_decodes_or_is_refused_without_panicking(line in ".{0,200}") {
            let _ = decode(&line);
        }

        #[test]
        fn any_json_object_with_a_known_op_decodes_or_names_what_is_wrong(
            op in prop::sample::select(vec!["init", "report_training", "report_validation", "checkpoint_start", "checkpoint_end", "checkpoint_abort"]),
            step in prop::option::of(any::<i64>()),
            uuid in prop::option::of("[a-z0-9-]{0,40}"),
            metric in prop::option::of(("[a-z]{0,300}", any::<f64>())),
        ) {
            let mut request = serde_json::json!({"op": op});
            if let Some(step) = step { request["step"] = step.into(); }
            if let Some(uuid) = &uuid { request["uuid"] = uuid.as_str().into(); }
            if let Some((name, value)) = &metric {
                request["metrics"] = serde_json::json!({name.as_str(): value});
            }
            match decode(&request.to_string()) {
                Ok(decoded) => prop_assert_eq!(decoded.op(), op),
                Err(error) => prop_assert!(error.contains("field") || error.contains("metric"), "{}", error),
            }
        }
    }
}

//! The admin API's objects as JSON: what the CLI's `--json` prints and the HTTP API serves.

mod agents;
mod checkpoints;
mod experiments;
mod trials;

pub use agents::{agent, agent_status};
pub use checkpoints::{checkpoint, checkpoint_described};
pub use experiments::{brackets, experiment, experiment_summary, metric_value, steps_total};
pub use trials::{allocation, log_line, trial, trial_detail, validation};

use chrono::{DateTime, SecondsFormat};
use serde_json::Value;

/// Unix milliseconds in RFC 3339, UTC (`2026-12-02T00:21:07.250Z`); `null` when unset.
pub fn time(unix_ms: i64) -> Value {
    DateTime::from_timestamp_millis(unix_ms)
        .filter(|_| unix_ms > 0)
        .map_or(Value::Null, |at| {
            Value::String(at.to_rfc3339_opts(SecondsFormat::Millis, true))
        })
}

/// Parses a JSON document sent as a string; an empty string is `default`, invalid JSON stays text.
pub fn parse_json_field(text: &str, default: Value) -> Value {
    if text.trim().is_empty() {
        return default;
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// `null` for an empty string, the string otherwise.
pub fn non_empty(text: &str) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        Value::String(text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_parse_or_fall_back() {
        assert_eq!(parse_json_field("", json!({})), json!({}));
        assert_eq!(
            parse_json_field("{\"lr\": 0.1}", json!({})),
            json!({"lr": 0.1})
        );
        assert_eq!(parse_json_field("not json", Value::Null), json!("not json"));
        assert_eq!(non_empty("a1"), json!("a1"));
        assert_eq!(non_empty(""), Value::Null);
        assert_eq!(time(0), Value::Null);
        assert_eq!(time(1_767_225_600_000), json!("2026-01-01T00:00:00.000Z"));
    }
}

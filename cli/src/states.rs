//! The `--state` filters: state names as the master shows them, given in any case.

use clap::builder::{PossibleValuesParser, TypedValueParser};

/// Experiment states.
pub const EXPERIMENT: &[&str] = &[
    "ACTIVE",
    "PAUSED",
    "COMPLETED",
    "CANCELED",
    "ERRORED",
    "DELETING",
];

/// Trial states (PAUSED: queued in a PAUSED experiment, or waiting at its rung of an adaptive
/// search).
pub const TRIAL: &[&str] = &[
    "QUEUED",
    "PAUSED",
    "STARTING",
    "RUNNING",
    "SUSPENDING",
    "KILLING",
    "COMPLETED",
    "CANCELED",
    "ERRORED",
];

/// Parses one of `states` in any case (with `ignore_case` on the argument) into upper case.
pub fn parser(states: &'static [&'static str]) -> impl TypedValueParser<Value = String> {
    PossibleValuesParser::new(states).map(|state| state.to_ascii_uppercase())
}

/// Whether `state` passes a `--state` filter (an empty filter passes everything).
pub fn wanted(filter: &[String], state: &str) -> bool {
    filter.is_empty() || filter.iter().any(|s| s == state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_filter_passes_everything() {
        assert!(wanted(&[], "RUNNING"));
        let filter = ["RUNNING".to_string(), "PAUSED".to_string()];
        assert!(wanted(&filter, "PAUSED"));
        assert!(!wanted(&filter, "QUEUED"));
    }
}

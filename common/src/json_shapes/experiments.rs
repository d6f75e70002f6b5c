//! Experiments and their adaptive-search brackets as JSON.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{time, trial};
use crate::proto::{Experiment, MetricValue, SearchBracket};

/// Steps the experiment's trials train in all; `None` for an adaptive search, whose trials
/// stopped at a rung train less than `max_length`.
pub fn steps_total(exp: &Experiment) -> Option<u64> {
    (exp.searcher != "adaptive_asha")
        .then(|| exp.max_length.saturating_mul(u64::from(exp.trial_count)))
}

/// A value of the searcher metric: `{trial_id, step, value}`, `null` when absent.
pub fn metric_value(value: Option<&MetricValue>) -> Value {
    value.map_or(
        Value::Null,
        |m| json!({ "trial_id": m.trial_id, "step": m.step, "value": m.value }),
    )
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
        "steps_total": steps_total(exp),
        "max_length": exp.max_length,
        "metric": { "name": exp.metric, "smaller_is_better": exp.smaller_is_better },
        "best_metric": metric_value(exp.best_metric.as_ref()),
        "storage_bytes": exp.storage_bytes,
        "storage_peak_bytes": exp.storage_peak_bytes,
        "pinned_checkpoints": exp.pinned_checkpoints,
        "gc_while_running": exp.gc_while_running,
    })
}

/// An experiment as `experiment describe --json` shows it: with its trials and, for an adaptive
/// search, its brackets.
pub fn experiment(exp: &Experiment) -> Value {
    let mut value = experiment_summary(exp);
    value["trials"] = exp.trials.iter().map(trial).collect();
    value["brackets"] = brackets(&exp.brackets);
    value
}

/// Brackets with each rung's results in the order they arrived (`metric` null for a failure).
pub fn brackets(brackets: &[SearchBracket]) -> Value {
    brackets
        .iter()
        .map(|bracket| {
            json!({
                "trials": bracket.trials,
                "created": bracket.created,
                "rungs": bracket.rungs.iter().map(|rung| json!({
                    "length": rung.length,
                    "training": rung.training,
                    "reported": rung.results.len(),
                    "waiting": rung.waiting,
                    "promoted": rung.results.iter().filter(|r| r.promoted).count(),
                    "results": rung.results.iter().map(|result| json!({
                        "trial_id": result.trial_id,
                        "metric": result.metric,
                        "promoted": result.promoted,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{RungResult, SearchRung, Trial};

    fn grid(states: &[(&str, u32)], steps_completed: u64) -> Experiment {
        Experiment {
            id: 2,
            name: "linreg-grid".into(),
            state: "ACTIVE".into(),
            searcher: "grid".into(),
            created_ms: 1_767_225_600_000,
            trial_count: states.iter().map(|(_, n)| n).sum(),
            trial_states: states.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
            steps_completed,
            max_length: 60,
            metric: "loss".into(),
            smaller_is_better: true,
            ..Default::default()
        }
    }

    #[test]
    fn a_summary_counts_trials_without_a_trials_array() {
        let mut exp = grid(&[("COMPLETED", 2), ("RUNNING", 2)], 150);
        let value = experiment_summary(&exp);
        assert_eq!(value["trial_count"], 4);
        assert_eq!(value["trial_states"], json!({"COMPLETED": 2, "RUNNING": 2}));
        assert_eq!(value["steps_completed"], 150);
        assert_eq!(value["steps_total"], 240);
        assert_eq!(value["created"], "2026-01-01T00:00:00.000Z");
        assert_eq!(
            value["metric"],
            json!({"name": "loss", "smaller_is_better": true})
        );
        assert_eq!(value["best_metric"], Value::Null);
        assert!(value.get("trials").is_none(), "{value}");
        exp.best_metric = Some(MetricValue {
            trial_id: 3,
            step: 40,
            value: 0.5,
        });
        exp.searcher = "adaptive_asha".into();
        let value = experiment_summary(&exp);
        assert_eq!(
            value["best_metric"],
            json!({"trial_id": 3, "step": 40, "value": 0.5})
        );
        assert_eq!(value["steps_total"], Value::Null);
        assert_eq!(experiment(&exp)["trials"], json!([]));
    }

    #[test]
    fn a_description_has_trials_and_brackets() {
        let mut exp = grid(&[("RUNNING", 1)], 12);
        exp.trials = vec![Trial {
            id: 7,
            state: "RUNNING".into(),
            ..Default::default()
        }];
        let result = |trial_id, metric, promoted| RungResult {
            trial_id,
            metric,
            promoted,
        };
        exp.brackets = vec![SearchBracket {
            trials: 4,
            created: 2,
            rungs: vec![SearchRung {
                length: 4,
                training: 1,
                waiting: 0,
                results: vec![result(3, Some(0.5), true), result(1, None, false)],
            }],
        }];
        let value = experiment(&exp);
        assert_eq!(value["trials"][0]["id"], 7);
        let rung = &value["brackets"][0]["rungs"][0];
        assert_eq!(rung["reported"], 2);
        assert_eq!(rung["promoted"], 1);
        assert_eq!(
            rung["results"],
            json!([
                {"trial_id": 3, "metric": 0.5, "promoted": true},
                {"trial_id": 1, "metric": null, "promoted": false},
            ])
        );
    }
}

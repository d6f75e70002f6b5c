//! An adaptive search in `experiment describe`: its brackets and rungs, as a table and as JSON.

use baton_common::proto::{SearchBracket, SearchRung};
use serde_json::{Value, json};

use crate::output;

/// Trials of a rung promoted to the next one.
fn promoted(rung: &SearchRung) -> usize {
    rung.results.iter().filter(|r| r.promoted).count()
}

/// One row per rung: where its trials are and how many were promoted.
pub fn rungs_table(brackets: &[SearchBracket]) -> String {
    let rows = brackets.iter().enumerate().flat_map(|(b, bracket)| {
        bracket.rungs.iter().enumerate().map(move |(r, rung)| {
            vec![
                format!("{} ({}/{} trials)", b + 1, bracket.created, bracket.trials),
                (r + 1).to_string(),
                rung.length.to_string(),
                rung.training.to_string(),
                rung.results.len().to_string(),
                rung.waiting.to_string(),
                promoted(rung).to_string(),
            ]
        })
    });
    output::table(
        &[
            "BRACKET", "RUNG", "LENGTH", "TRAINING", "REPORTED", "WAITING", "PROMOTED",
        ],
        rows,
    )
}

/// The brackets as `experiment describe --json` shows them, each rung's results in the order
/// they arrived (`metric` null for a failure).
pub fn brackets_json(brackets: &[SearchBracket]) -> Value {
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
                    "promoted": promoted(rung),
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
    use baton_common::proto::RungResult;

    fn brackets() -> Vec<SearchBracket> {
        let result = |trial_id, metric, promoted| RungResult {
            trial_id,
            metric,
            promoted,
        };
        vec![SearchBracket {
            trials: 4,
            created: 4,
            rungs: vec![
                SearchRung {
                    length: 16,
                    training: 1,
                    waiting: 1,
                    results: vec![
                        result(7, Some(0.5), false),
                        result(8, Some(0.25), true),
                        result(9, None, false),
                    ],
                },
                SearchRung {
                    length: 64,
                    training: 1,
                    waiting: 0,
                    results: vec![],
                },
            ],
        }]
    }

    #[test]
    fn the_table_counts_each_rung() {
        let text = rungs_table(&brackets());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "BRACKET         RUNG  LENGTH  TRAINING  REPORTED  WAITING  PROMOTED"
        );
        assert_eq!(
            lines[1],
            "1 (4/4 trials)  1     16      1         3         1        1"
        );
        assert_eq!(
            lines[2],
            "1 (4/4 trials)  2     64      1         0         0        0"
        );
    }

    #[test]
    fn the_json_lists_results_in_arrival_order() {
        let value = brackets_json(&brackets());
        let rung = &value[0]["rungs"][0];
        assert_eq!(value[0]["trials"], 4);
        assert_eq!(
            (rung["length"].as_u64(), rung["reported"].as_u64()),
            (Some(16), Some(3))
        );
        assert_eq!(rung["promoted"], 1);
        assert_eq!(
            rung["results"],
            json!([
                {"trial_id": 7, "metric": 0.5, "promoted": false},
                {"trial_id": 8, "metric": 0.25, "promoted": true},
                {"trial_id": 9, "metric": null, "promoted": false},
            ])
        );
    }
}

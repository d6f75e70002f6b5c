//! An adaptive search in `experiment describe`: its brackets and rungs as a table.

use crate::output;
use baton_common::proto::{SearchBracket, SearchRung};

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
}

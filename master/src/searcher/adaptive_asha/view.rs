//! What the master reads of a search: where each trial stands, and each rung's results.

use super::{AdaptiveAsha, RequestId, TrialState};

/// Where one trial stands in the search: the rung it trains for, waits at or stopped at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrialStatus {
    /// Its bracket (0: the most aggressive).
    pub bracket: usize,
    /// The rung (0: the shortest).
    pub rung: usize,
    /// That rung's length in steps.
    pub length: u64,
    /// What it does there.
    pub stage: Stage,
}

/// What a trial does at its rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// It trains until the rung's length.
    Training,
    /// It reported at the rung and waits to be promoted or stopped.
    Paused,
    /// It trains no more.
    Closed,
}

/// One bracket's plan and progress.
#[derive(Debug, Clone, PartialEq)]
pub struct BracketView {
    /// Trials the bracket creates in all.
    pub trials: u32,
    /// Trials it has created so far.
    pub created: u32,
    /// Its rungs, shortest first.
    pub rungs: Vec<RungView>,
}

/// One rung's counts and results.
#[derive(Debug, Clone, PartialEq)]
pub struct RungView {
    /// Steps a trial has trained when it reports at this rung.
    pub length: u64,
    /// Trials training for it now.
    pub training: u32,
    /// Trials that reported at it and wait to be promoted or stopped.
    pub waiting: u32,
    /// The results reported at it, in the order they arrived.
    pub results: Vec<RungResult>,
}

/// One result at a rung.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RungResult {
    /// The trial.
    pub trial: RequestId,
    /// Its searcher metric; None for a failure.
    pub metric: Option<f64>,
    /// Whether it was promoted to the next rung.
    pub promoted: bool,
}

impl AdaptiveAsha {
    /// Where trial `id` stands; None for a trial not created.
    pub fn status(&self, id: RequestId) -> Option<TrialStatus> {
        let trial = self.trials.get(id.0 as usize)?;
        Some(TrialStatus {
            bracket: trial.bracket,
            rung: trial.rung,
            length: self.brackets[trial.bracket].lengths[trial.rung],
            stage: match trial.state {
                TrialState::Training => Stage::Training,
                TrialState::Paused => Stage::Paused,
                TrialState::Closed => Stage::Closed,
            },
        })
    }

    /// The rung lengths of bracket `bracket`, shortest first (empty for no such bracket).
    pub fn rung_lengths(&self, bracket: usize) -> &[u64] {
        self.brackets.get(bracket).map_or(&[], |b| &b.lengths)
    }

    /// How many trials were created so far (request ids `0..created`).
    pub fn created(&self) -> u32 {
        self.trials.len() as u32
    }

    /// Whether the search has ended (every trial created and none active).
    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    /// Every bracket, the most aggressive first.
    pub fn brackets(&self) -> Vec<BracketView> {
        self.brackets
            .iter()
            .map(|bracket| BracketView {
                trials: bracket.quota,
                created: bracket.created,
                rungs: (0..bracket.lengths.len())
                    .map(|r| {
                        let mut entries = bracket.rungs[r].ranked().to_vec();
                        entries.sort_by_key(|e| e.arrival);
                        let results = entries
                            .into_iter()
                            .map(|e| RungResult {
                                trial: e.trial,
                                metric: e
                                    .score
                                    .map(|s| if self.smaller_is_better { s } else { -s }),
                                // A trial promoted from a rung trains for, or reported at, a
                                // later one of its bracket.
                                promoted: self.trials[e.trial.0 as usize].rung > r,
                            })
                            .collect();
                        RungView {
                            length: bracket.lengths[r],
                            training: bracket.training[r],
                            waiting: bracket.paused[r],
                            results,
                        }
                    })
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::Event;
    use super::*;
    use baton_common::config::parse_experiment_config;

    #[test]
    fn statuses_and_rungs_follow_the_events() {
        let config = parse_experiment_config(
            "name: t\nentrypoint: python3 train.py\n\
             searcher: {name: adaptive_asha, metric: acc, smaller_is_better: false, \
             max_length: 4, max_trials: 4, divisor: 2, max_rungs: 3, mode: aggressive}\n\
             checkpoint_storage: {type: shared_fs, host_path: /tmp/c}\n",
        )
        .unwrap();
        let (mut asha, _) = AdaptiveAsha::new(&config).unwrap();
        assert_eq!(asha.created(), 4);
        let status = |rung, length, stage| TrialStatus {
            bracket: 0,
            rung,
            length,
            stage,
        };
        assert_eq!(
            asha.status(RequestId(0)),
            Some(status(0, 1, Stage::Training))
        );
        assert_eq!(asha.status(RequestId(4)), None);
        assert_eq!(asha.rung_lengths(0), [1, 2, 4]);
        assert!(asha.rung_lengths(1).is_empty());
        for (trial, metric) in [(1, 0.2), (0, 0.9)] {
            asha.on_event(Event::ValidationReported {
                trial: RequestId(trial),
                length: 1,
                metric,
            });
        }
        // Two results: the better (larger) is promoted at once, the other waits.
        assert_eq!(
            asha.status(RequestId(0)),
            Some(status(1, 2, Stage::Training))
        );
        assert_eq!(asha.status(RequestId(1)), Some(status(0, 1, Stage::Paused)));
        asha.on_event(Event::TrialExited {
            trial: RequestId(2),
        });
        assert_eq!(asha.status(RequestId(2)), Some(status(0, 1, Stage::Closed)));
        let rungs = &asha.brackets()[0].rungs;
        let counts: Vec<(u64, u32, u32)> = rungs
            .iter()
            .map(|r| (r.length, r.training, r.waiting))
            .collect();
        assert_eq!(counts, [(1, 1, 1), (2, 1, 0), (4, 0, 0)]);
        let results: Vec<(u32, Option<f64>, bool)> = rungs[0]
            .results
            .iter()
            .map(|r| (r.trial.0, r.metric, r.promoted))
            .collect();
        assert_eq!(
            results,
            [
                (1, Some(0.2), false),
                (0, Some(0.9), true),
                (2, None, false)
            ],
            "in arrival order, metrics as reported"
        );
        assert!(!asha.is_shut_down());
    }
}

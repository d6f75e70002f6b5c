//! Collection while running against collection at the end, on random experiment histories.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

/// One thing that happens while an experiment runs.
#[derive(Debug, Clone)]
enum Event {
    /// A live trial commits a checkpoint `advance` steps after its previous one (0: the same
    /// step), after validating that step when `metric` is given (`Some(None)`: a validation
    /// without the searcher metric).
    Checkpoint {
        trial: u64,
        advance: u64,
        metric: Option<Option<u8>>,
    },
    /// A live trial reports a validation again for the step of its latest checkpoint.
    Validate { trial: u64, metric: Option<u8> },
    /// A trial ends.
    End { trial: u64 },
    /// A COMPLETED checkpoint is pinned or unpinned, or an allocation starts or stops restoring
    /// from it (the `index`-th checkpoint, modulo their number).
    ToggleHold { index: usize },
    /// Collection while running.
    Collect,
    /// Every deletion under way finishes.
    FinishDeletions,
}

/// Metrics with ties; a validation may also lack the searcher metric.
const METRICS: [f64; 4] = [0.1, 0.2, 0.2, 0.3];

/// A checkpoint of the simulated experiment.
#[derive(Debug, Clone)]
struct Checkpoint {
    trial: u64,
    step: u64,
    state: CheckpointState,
    held: bool,
}

/// The experiment as the master would see it.
#[derive(Debug, Default)]
struct History {
    checkpoints: Vec<Checkpoint>,
    /// The metric of each (trial, step) validation.
    validations: BTreeMap<(u64, u64), Option<f64>>,
    ended: BTreeSet<u64>,
    /// The last step each trial committed.
    steps: BTreeMap<u64, u64>,
    /// Everything collection while running chose.
    collected: BTreeSet<String>,
}

impl History {
    fn uuid(index: usize) -> String {
        format!("ckpt-{index:03}")
    }

    /// The snapshot GC selects from.
    fn candidates(&self) -> Vec<GcCandidate> {
        self.checkpoints
            .iter()
            .enumerate()
            .map(|(i, c)| GcCandidate {
                uuid: Self::uuid(i),
                trial_id: c.trial,
                step: c.step,
                seq: i as u64,
                metric: self.validations.get(&(c.trial, c.step)).copied().flatten(),
                state: c.state,
                trial_can_run: !self.ended.contains(&c.trial),
                held: c.held,
            })
            .collect()
    }

    fn apply(&mut self, event: &Event, policy: &GcPolicy) -> Result<(), TestCaseError> {
        match *event {
            Event::Checkpoint {
                trial,
                advance,
                metric,
            } if !self.ended.contains(&trial) => {
                let step = match self.steps.get(&trial) {
                    Some(previous) => previous + advance,
                    None => advance.max(1),
                };
                self.steps.insert(trial, step);
                if let Some(metric) = metric {
                    let value = metric.map(|m| METRICS[usize::from(m)]);
                    self.validations.insert((trial, step), value);
                }
                self.checkpoints.push(Checkpoint {
                    trial,
                    step,
                    state: CheckpointState::Completed,
                    held: false,
                });
            }
            Event::Validate { trial, metric } if !self.ended.contains(&trial) => {
                if let Some(&step) = self.steps.get(&trial) {
                    let value = metric.map(|m| METRICS[usize::from(m)]);
                    self.validations.insert((trial, step), value);
                }
            }
            Event::End { trial } => {
                self.ended.insert(trial);
            }
            Event::ToggleHold { index } if !self.checkpoints.is_empty() => {
                let n = self.checkpoints.len();
                let checkpoint = &mut self.checkpoints[index % n];
                // Pins and restores are refused for a checkpoint chosen for deletion.
                if checkpoint.state == CheckpointState::Completed {
                    checkpoint.held = !checkpoint.held;
                }
            }
            Event::Collect => self.collect(policy)?,
            Event::FinishDeletions => {
                for c in &mut self.checkpoints {
                    if c.state == CheckpointState::Deleting {
                        c.state = CheckpointState::Deleted;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Collects while running, checking what must never be collected.
    fn collect(&mut self, policy: &GcPolicy) -> Result<(), TestCaseError> {
        let candidates = self.candidates();
        let chosen = collectable_while_running(&candidates, policy);
        let latest_of_live: BTreeSet<&str> = candidates
            .iter()
            .filter(|c| c.state == CheckpointState::Completed && c.trial_can_run)
            .fold(
                BTreeMap::new(),
                |mut latest: BTreeMap<u64, &GcCandidate>, c| {
                    let entry = latest.entry(c.trial_id).or_insert(c);
                    if (c.step, c.seq) > (entry.step, entry.seq) {
                        *entry = c;
                    }
                    latest
                },
            )
            .values()
            .map(|c| c.uuid.as_str())
            .collect();
        for uuid in &chosen {
            let c = candidates.iter().find(|c| &c.uuid == uuid).unwrap();
            prop_assert_eq!(c.state, CheckpointState::Completed, "{}", uuid);
            prop_assert!(!c.held, "held {} collected", uuid);
            prop_assert!(
                !latest_of_live.contains(uuid.as_str()),
                "{} is the latest of live trial {}",
                uuid,
                c.trial_id
            );
        }
        for uuid in chosen {
            let index: usize = uuid["ckpt-".len()..].parse().unwrap();
            self.checkpoints[index].state = CheckpointState::Deleting;
            self.collected.insert(uuid);
        }
        Ok(())
    }
}

fn arb_event() -> impl Strategy<Value = Event> {
    let metric = prop_oneof![1 => Just(None), 3 => (0u8..4).prop_map(Some)];
    prop_oneof![
        8 => (0u64..3, 0u64..3, prop::option::weighted(0.6, metric.clone()))
            .prop_map(|(trial, advance, metric)| Event::Checkpoint { trial, advance, metric }),
        2 => (0u64..3, metric).prop_map(|(trial, metric)| Event::Validate { trial, metric }),
        1 => (0u64..3).prop_map(|trial| Event::End { trial }),
        2 => any::<usize>().prop_map(|index| Event::ToggleHold { index }),
        4 => Just(Event::Collect),
        1 => Just(Event::FinishDeletions),
    ]
}

fn arb_policy() -> impl Strategy<Value = GcPolicy> {
    (0u64..4, 0u64..4, 0u64..4, any::<bool>()).prop_map(|(e, t, l, smaller_is_better)| GcPolicy {
        save_experiment_best: e,
        save_trial_best: t,
        save_trial_latest: l,
        smaller_is_better,
    })
}

/// Runs `events`, ends every trial, and checks the end against the end alone.
fn check_history(events: &[Event], policy: &GcPolicy) -> Result<(), TestCaseError> {
    let mut history = History::default();
    for event in events {
        history.apply(event, policy)?;
    }
    for trial in 0..3 {
        history.ended.insert(trial);
    }
    let at_end = select(&history.candidates(), policy);

    // The same history without collection while running: every checkpoint COMPLETED.
    let untouched: Vec<GcCandidate> = history
        .candidates()
        .into_iter()
        .map(|c| GcCandidate {
            state: CheckpointState::Completed,
            ..c
        })
        .collect();
    let alone = select(&untouched, policy);

    let mut deleted: BTreeSet<String> = history.collected.clone();
    deleted.extend(at_end.delete.iter().cloned());
    let alone_deleted: BTreeSet<String> = alone.delete.iter().cloned().collect();
    prop_assert_eq!(&deleted, &alone_deleted);
    let alone_kept: BTreeSet<String> = alone.keep.into_iter().collect();
    prop_assert!(
        history.collected.is_disjoint(&alone_kept),
        "collected while running but kept at the end: {:?}",
        history
            .collected
            .intersection(&alone_kept)
            .collect::<Vec<_>>()
    );
    prop_assert_eq!(at_end.keep.into_iter().collect::<BTreeSet<_>>(), alone_kept);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn running_then_end_deletes_exactly_what_the_end_alone_deletes(
        events in prop::collection::vec(arb_event(), 0..60),
        policy in arb_policy(),
    ) {
        check_history(&events, &policy)?;
    }
}

/// A trial checkpointing every 5 steps and validating every 10, collected after each commit:
/// what it holds never exceeds its latest and its best.
#[test]
fn a_long_trial_holds_its_latest_and_its_best_only() {
    let policy = GcPolicy::default();
    let mut history = History::default();
    for step in (5..=200u64).step_by(5) {
        let validated = (step % 10 == 0).then_some(Some(if step == 20 { 0 } else { 1 }));
        let checkpoint = Event::Checkpoint {
            trial: 0,
            advance: 5,
            metric: validated,
        };
        history.apply(&checkpoint, &policy).unwrap();
        history.apply(&Event::Collect, &policy).unwrap();
        history.apply(&Event::FinishDeletions, &policy).unwrap();
        let held: Vec<u64> = history
            .checkpoints
            .iter()
            .filter(|c| c.state == CheckpointState::Completed)
            .map(|c| c.step)
            .collect();
        // The best is the validation of step 20 (0.1; the others are 0.2) once it is settled.
        let expected: Vec<u64> = match step {
            5 | 10 => vec![step],
            15 => vec![10, 15],
            20 => vec![10, 20],
            _ => vec![20, step],
        };
        assert_eq!(held, expected, "after the checkpoint of step {step}");
    }
}

/// A metric that may still change (the latest checkpoint's) ranks no other checkpoint out.
#[test]
fn an_unsettled_metric_ranks_no_other_checkpoint_out() {
    let policy = GcPolicy {
        save_experiment_best: 0,
        save_trial_best: 1,
        save_trial_latest: 0,
        smaller_is_better: true,
    };
    let checkpoint = |metric: Option<u8>| Event::Checkpoint {
        trial: 0,
        advance: 10,
        metric: metric.map(Some),
    };
    let mut history = History::default();
    // Step 10 validates 0.2, step 20 0.1 for now.
    for event in [checkpoint(Some(1)), checkpoint(Some(0)), Event::Collect] {
        history.apply(&event, &policy).unwrap();
    }
    assert!(history.collected.is_empty(), "step 20 may validate again");
    // Step 20 validates again, worse; step 30 settles it.
    let again = Event::Validate {
        trial: 0,
        metric: Some(3),
    };
    for event in [again, checkpoint(None), Event::Collect] {
        history.apply(&event, &policy).unwrap();
    }
    assert_eq!(
        history.collected,
        BTreeSet::from([History::uuid(1)]),
        "step 10 (0.2) is the best, step 20 (0.3) goes"
    );
}

use std::collections::BTreeMap;

use baton_common::proto;
use proptest::prelude::*;

use super::*;
use crate::states::{ExperimentState, TrialState};

/// Fails when some trial runs on two agents at once.
pub(super) fn assert_single_copies(world: &World) {
    let mut copies: BTreeMap<u64, Vec<(usize, String)>> = BTreeMap::new();
    for (agent, trial) in world.live_trials() {
        copies
            .entry(trial.trial)
            .or_default()
            .push((agent, trial.allocation.clone()));
    }
    for (trial, runs) in copies {
        assert!(
            runs.len() <= 1,
            "trial {trial} runs twice at once: {runs:?}"
        );
    }
}

pub(super) fn ticks(world: &mut World, n: u32) {
    for _ in 0..n {
        world.tick();
        assert_single_copies(world);
    }
}

pub(super) fn trial_ids(world: &World, experiment: u64) -> Vec<u64> {
    world
        .cluster
        .trials
        .values()
        .filter(|t| t.row.experiment_id == experiment)
        .map(|t| t.row.id)
        .collect()
}

fn state_of(world: &World, trial: u64) -> TrialState {
    world.cluster.trials[&trial].row.state
}

/// Runs until every trial has ended (or fails after `limit` ticks).
pub(super) fn run_to_end(world: &mut World, limit: u32) {
    for _ in 0..limit {
        if world
            .cluster
            .trials
            .values()
            .all(|t| t.row.state.is_terminal())
        {
            return;
        }
        ticks(world, 1);
    }
    let states: Vec<(u64, TrialState, String)> = world
        .cluster
        .trials
        .values()
        .map(|t| (t.row.id, t.row.state, world.cluster.state_reason(t.row.id)))
        .collect();
    panic!("trials still not ended after {limit} ticks: {states:?}");
}

/// A completed trial ended in exactly the state of an undisturbed run.
fn assert_completed_exactly(world: &World, trial: u64) {
    let row = &world.cluster.trials[&trial].row;
    assert_eq!(row.state, TrialState::Completed, "trial {trial}");
    assert_eq!(row.steps_completed, MAX_LENGTH, "trial {trial}");
    let uuid = row
        .latest_checkpoint_uuid
        .as_ref()
        .expect("a final checkpoint");
    let checkpoint = world.storage[uuid];
    assert_eq!(checkpoint.step, MAX_LENGTH);
    assert_eq!(
        checkpoint.state,
        chained_state(trial, MAX_LENGTH),
        "trial {trial} ends as an undisturbed run does"
    );
}

fn agent_of(world: &World, trial: u64) -> Option<usize> {
    world
        .live_trials()
        .into_iter()
        .find(|(_, t)| t.trial == trial)
        .map(|(agent, _)| agent)
}

#[test]
fn an_undisturbed_cluster_completes_every_trial() {
    let runtime = runtime();
    let _spawns = runtime.enter();
    let mut world = World::new(3);
    let experiment = world.create_experiment(4, 50);
    run_to_end(&mut world, 1000);
    for trial in trial_ids(&world, experiment) {
        assert_completed_exactly(&world, trial);
    }
}

#[test]
fn a_move_given_while_the_agent_is_cut_off_happens_after_the_heal() {
    let runtime = runtime();
    let _spawns = runtime.enter();
    let mut world = World::new(2);
    let experiment = world.create_experiment(1, 50);
    let trial = trial_ids(&world, experiment)[0];
    ticks(&mut world, 12);
    let from = agent_of(&world, trial).expect("the trial runs");
    let to = 1 - from;
    world.cut(from, true);
    world
        .cluster
        .move_trial(trial, Some(world.agents[to].id.clone()))
        .expect("the move is accepted");
    ticks(&mut world, 4);
    assert_eq!(
        agent_of(&world, trial),
        Some(from),
        "the cut agent still runs it"
    );
    world.heal(from);
    ticks(&mut world, 8);
    assert_eq!(
        agent_of(&world, trial),
        Some(to),
        "moved once the link healed"
    );
    run_to_end(&mut world, 1000);
    assert_completed_exactly(&world, trial);
}

#[test]
fn a_partition_past_the_deadline_never_runs_a_trial_twice() {
    let runtime = runtime();
    let _spawns = runtime.enter();
    let mut world = World::new(2);
    let experiment = world.create_experiment(1, 50);
    let trial = trial_ids(&world, experiment)[0];
    ticks(&mut world, 15);
    let from = agent_of(&world, trial).expect("the trial runs");
    world.cut(from, false);
    ticks(&mut world, 40);
    assert_eq!(
        agent_of(&world, trial),
        Some(1 - from),
        "resumed on the other agent"
    );
    world.heal(from);
    run_to_end(&mut world, 1000);
    assert_completed_exactly(&world, trial);
}

#[test]
fn a_move_to_the_agent_an_earlier_move_left_is_placed_there() {
    let runtime = runtime();
    let _spawns = runtime.enter();
    let mut world = World::new(2);
    let experiment = world.create_experiment(1, 50);
    let trial = trial_ids(&world, experiment)[0];
    ticks(&mut world, 4);
    let from = agent_of(&world, trial).expect("the trial runs");
    let other = world.agents[1 - from].id.clone();
    world.cluster.disable_agent(&other, false).unwrap();
    world.cluster.move_trial(trial, None).unwrap();
    ticks(&mut world, 4);
    assert_eq!(
        state_of(&world, trial),
        TrialState::Queued,
        "nowhere else to go"
    );
    let back = world.agents[from].id.clone();
    world.cluster.move_trial(trial, Some(back)).unwrap();
    ticks(&mut world, 4);
    assert_eq!(
        agent_of(&world, trial),
        Some(from),
        "placed where it was sent"
    );
}

/// Something that happens to the cluster.
#[derive(Debug, Clone)]
enum Op {
    Ticks(u32),
    Move { trial: usize, to: Option<usize> },
    Pause,
    Activate,
    KillUrgent,
    Disable { agent: usize, drain: bool },
    Enable { agent: usize },
    Cut { agent: usize, noticed: bool },
    Heal { agent: usize },
    Delay { agent: usize, ticks: u32 },
    RestartAgent { agent: usize },
    CrashTrial { agent: usize },
}

const AGENTS: usize = 3;

fn op() -> impl Strategy<Value = Op> {
    let agent = 0..AGENTS;
    prop_oneof![
        4 => (1u32..16).prop_map(Op::Ticks),
        2 => (0usize..4, proptest::option::of(0..AGENTS)).prop_map(|(trial, to)| Op::Move { trial, to }),
        1 => Just(Op::Pause),
        1 => Just(Op::Activate),
        1 => Just(Op::KillUrgent),
        1 => (agent.clone(), any::<bool>()).prop_map(|(agent, drain)| Op::Disable { agent, drain }),
        1 => agent.clone().prop_map(|agent| Op::Enable { agent }),
        2 => (agent.clone(), any::<bool>()).prop_map(|(agent, noticed)| Op::Cut { agent, noticed }),
        2 => agent.clone().prop_map(|agent| Op::Heal { agent }),
        1 => (agent.clone(), 1u32..3).prop_map(|(agent, ticks)| Op::Delay { agent, ticks }),
        1 => agent.clone().prop_map(|agent| Op::RestartAgent { agent }),
        1 => agent.prop_map(|agent| Op::CrashTrial { agent }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random operator commands, link faults, daemon restarts and trial crashes: no trial ever
    /// runs twice at once; once the links heal every command has taken effect; afterwards every
    /// trial ends, and each that was not canceled ends exactly as an undisturbed run.
    #[test]
    fn every_command_takes_effect_and_no_trial_runs_twice(ops in proptest::collection::vec(op(), 1..40)) {
        let runtime = runtime();
    let _spawns = runtime.enter();
    let mut world = World::new(AGENTS);
        let low = world.create_experiment(3, 50);
        let urgent = world.create_experiment(1, 10);
        let mut trials = trial_ids(&world, low);
        trials.extend(trial_ids(&world, urgent));
        let mut moved = Vec::new();
        let mut killed = false;
        for op in ops {
            match op {
                Op::Ticks(n) => ticks(&mut world, n),
                Op::Move { trial, to } => {
                    let trial = trials[trial];
                    let to = to.map(|i| world.agents[i].id.clone());
                    let allocation = world.cluster.trials[&trial].allocation.clone();
                    if world.cluster.move_trial(trial, to).is_ok() && let Some(allocation) = allocation {
                        moved.push(allocation);
                    }
                }
                Op::Pause => { let _ = world.cluster.pause_experiment(low); }
                Op::Activate => { let _ = world.cluster.activate_experiment(low); }
                Op::KillUrgent => { killed |= world.cluster.kill_experiment(urgent).is_ok(); }
                Op::Disable { agent, drain } => {
                    let id = world.agents[agent].id.clone();
                    world.cluster.disable_agent(&id, drain).expect("known agent");
                }
                Op::Enable { agent } => {
                    let id = world.agents[agent].id.clone();
                    world.cluster.enable_agent(&id).expect("known agent");
                }
                Op::Cut { agent, noticed } => world.cut(agent, noticed),
                Op::Heal { agent } => world.heal(agent),
                Op::Delay { agent, ticks } => world.agents[agent].delayed = ticks,
                Op::RestartAgent { agent } => world.restart_agent(agent),
                Op::CrashTrial { agent } => world.crash_trial(agent),
            }
            assert_single_copies(&world);
        }

        // The links heal: every accepted command takes effect.
        for agent in 0..AGENTS {
            if !world.agents[agent].up {
                world.heal(agent);
            }
        }
        ticks(&mut world, 40);
        let live = world.live_trials();
        for allocation in &moved {
            prop_assert!(
                !live.iter().any(|(_, t)| &t.allocation == allocation),
                "a moved allocation still runs: {allocation}"
            );
        }
        if killed {
            for &trial in &trial_ids(&world, urgent) {
                prop_assert!(state_of(&world, trial).is_terminal());
                prop_assert!(agent_of(&world, trial).is_none());
            }
        }
        if world.cluster.experiments[&low].row.state == ExperimentState::Paused {
            for &trial in &trial_ids(&world, low) {
                prop_assert!(agent_of(&world, trial).is_none(), "a paused trial runs");
            }
        }
        for (agent, _) in &live {
            let mode = world.cluster.agents[&world.agents[*agent].id].mode;
            prop_assert!(mode != super::super::state::AgentMode::Disabled, "a disabled agent runs a trial");
        }

        // Then everything may run again: every trial ends, exactly as an undisturbed run.
        let _ = world.cluster.activate_experiment(low);
        for agent in 0..AGENTS {
            let id = world.agents[agent].id.clone();
            world.cluster.enable_agent(&id).expect("known agent");
        }
        run_to_end(&mut world, 4000);
        prop_assert!(world.live_trials().is_empty());
        prop_assert!(world.cluster.allocations.is_empty());
        for &trial in &trials {
            let state = state_of(&world, trial);
            if killed && trial_ids(&world, urgent).contains(&trial) {
                prop_assert!(state == TrialState::Canceled || state == TrialState::Completed);
                if state == TrialState::Completed {
                    assert_completed_exactly(&world, trial);
                }
            } else {
                assert_completed_exactly(&world, trial);
            }
        }
    }
}

#[test]
fn best_and_latest_metrics_are_those_stored_and_survive_a_restart() {
    let runtime = runtime();
    let _spawns = runtime.enter();
    let mut world = World::on_disk(2);
    let experiment = world.create_experiment(4, 50);
    run_to_end(&mut world, 1000);
    let shown = |world: &World| {
        let view = world.cluster.experiment_view(experiment, true).unwrap();
        let trials: Vec<_> = view
            .trials
            .iter()
            .map(|t| (t.id, t.best_metric, t.latest_metric))
            .collect();
        (view.best_metric, trials)
    };
    let (best, trials) = shown(&world);
    let mut expected_best: Option<proto::MetricValue> = None;
    for (trial, trial_best, latest) in &trials {
        let stored: Vec<(u64, f64)> = world
            .cluster
            .store
            .validations_of_trial(*trial)
            .unwrap()
            .iter()
            .map(|v| {
                let metrics: serde_json::Value = serde_json::from_str(&v.metrics_json).unwrap();
                (v.step, metrics["loss"].as_f64().unwrap())
            })
            .collect();
        let (step, value) = *stored.last().expect("the trial validated");
        let at = |(step, value)| proto::MetricValue {
            trial_id: *trial,
            step,
            value,
        };
        assert_eq!(*latest, Some(at((step, value))));
        let min = stored
            .iter()
            .copied()
            .reduce(|a, b| if b.1 < a.1 { b } else { a })
            .map(at);
        assert_eq!(*trial_best, min);
        if expected_best.is_none_or(|b| min.is_some_and(|m| m.value < b.value)) {
            expected_best = min;
        }
    }
    assert_eq!(best, expected_best);
    assert!(best.is_some());
    world.restart_master();
    assert_eq!(shown(&world), (best, trials));
}

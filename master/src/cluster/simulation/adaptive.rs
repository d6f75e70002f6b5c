//! An adaptive search (`adaptive_asha`) on the simulated cluster, through link faults, daemon
//! restarts, trial crashes, pauses and master restarts: every rung result is what an undisturbed
//! run reports there, promotions follow the rule over each rung's arrival order, and every trial
//! ends COMPLETED at its last rung with exactly an undisturbed run's state.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::promotion_rule::promoted_by_rule;
use super::tests::{run_to_end, ticks, trial_ids};
use super::*;
use crate::states::{ExperimentState, TrialState};

const AGENTS: usize = 3;
const TRIALS: u32 = 8;
const DIVISOR: usize = 2;

/// Checks a finished search against the rule and against undisturbed runs.
fn check_search(world: &World, experiment: u64) -> Result<(), TestCaseError> {
    let view = world
        .cluster
        .experiment_view(experiment, true)
        .expect("the experiment has a view");
    prop_assert_eq!(view.state.as_str(), "COMPLETED");
    prop_assert_eq!(view.trials.len(), TRIALS as usize);
    prop_assert_eq!(view.brackets.len(), 1);
    let rungs = &view.brackets[0].rungs;
    let lengths: Vec<u64> = rungs.iter().map(|r| r.length).collect();
    prop_assert_eq!(lengths, vec![10, 20, MAX_LENGTH]);
    let mut last_length = BTreeMap::new();
    let mut promoted = BTreeSet::new();
    for (r, rung) in rungs.iter().enumerate() {
        prop_assert_eq!((rung.training, rung.waiting), (0, 0));
        let reached: BTreeSet<u64> = rung.results.iter().map(|x| x.trial_id).collect();
        if r == 0 {
            prop_assert_eq!(reached.len(), TRIALS as usize);
        } else {
            prop_assert_eq!(
                &reached,
                &promoted,
                "rung {} holds the promoted trials",
                r + 1
            );
        }
        let metrics: Vec<Option<f64>> = rung.results.iter().map(|x| x.metric).collect();
        promoted.clear();
        for (position, result) in rung.results.iter().enumerate() {
            let state = chained_state(result.trial_id, rung.length);
            prop_assert_eq!(
                result.metric,
                Some(validation_loss(state)),
                "trial {} reported at {} steps what an undisturbed run reports",
                result.trial_id,
                rung.length
            );
            let expected = r + 1 < rungs.len() && promoted_by_rule(&metrics, position, DIVISOR);
            prop_assert_eq!(
                result.promoted,
                expected,
                "trial {} at rung {}: {:?}",
                result.trial_id,
                r + 1,
                metrics
            );
            if result.promoted {
                promoted.insert(result.trial_id);
            }
            last_length.insert(result.trial_id, rung.length);
        }
    }
    for trial in trial_ids(world, experiment) {
        let row = &world.cluster.trials[&trial].row;
        let length = last_length[&trial];
        prop_assert_eq!(row.state, TrialState::Completed, "trial {}", trial);
        prop_assert_eq!(row.steps_completed, length, "trial {}", trial);
        let uuid = row
            .latest_checkpoint_uuid
            .as_ref()
            .expect("a rung checkpoint");
        let checkpoint = world.storage[uuid];
        prop_assert_eq!(
            (checkpoint.step, checkpoint.state),
            (length, chained_state(trial, length)),
            "trial {} ends as an undisturbed run does",
            trial
        );
    }
    Ok(())
}

#[test]
fn an_undisturbed_search_promotes_by_the_rule() {
    let runtime = runtime();
    let _spawns = runtime.enter();
    let mut world = World::on_disk(AGENTS);
    let experiment = world.create_adaptive_experiment(TRIALS, 0);
    run_to_end(&mut world, 2000);
    check_search(&world, experiment).unwrap();
}

#[test]
fn waiting_trials_show_paused_with_their_rung() {
    let runtime = runtime();
    let _spawns = runtime.enter();
    let mut world = World::new(AGENTS);
    let experiment = world.create_adaptive_experiment(TRIALS, 0);
    let mut seen = false;
    for _ in 0..400 {
        ticks(&mut world, 1);
        let paused = world
            .cluster
            .trials_of(experiment)
            .into_iter()
            .find(|t| t.state == "PAUSED");
        if let Some(trial) = paused {
            assert_eq!(trial.target_length, 10, "{trial:?}");
            assert!(
                trial
                    .state_reason
                    .starts_with("trained to rung 1 of 3 (10 steps) in bracket 1; waits to be promoted to 20 steps"),
                "{}",
                trial.state_reason
            );
            seen = true;
            break;
        }
    }
    assert!(seen, "some trial waits at its first rung");
}

/// A master that stopped after recording a trial PAUSED but before recording its event tells the
/// search again after its restart, and the search ends as if nothing happened.
#[test]
fn an_event_lost_in_a_crash_is_told_again_after_a_restart() {
    let runtime = runtime();
    let _spawns = runtime.enter();
    let mut world = World::on_disk(AGENTS);
    let experiment = world.create_adaptive_experiment(TRIALS, 0);
    let path = world
        .database
        .as_ref()
        .expect("on disk")
        .path()
        .join("baton.db");
    let last_event = || {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.query_row(
            "SELECT seq, request_id FROM searcher_events ORDER BY seq DESC LIMIT 1",
            [],
            |row| Ok((row.get::<_, u64>(0)?, row.get::<_, u32>(1)?)),
        )
        .ok()
    };
    let mut lost = None;
    for _ in 0..400 {
        ticks(&mut world, 1);
        let Some((seq, request)) = last_event() else {
            continue;
        };
        let search = world.cluster.experiments[&experiment]
            .search
            .as_ref()
            .unwrap();
        let trial = search.trials[&crate::searcher::adaptive_asha::RequestId(request)];
        if world.cluster.trials[&trial].row.state == TrialState::Paused {
            let db = rusqlite::Connection::open(&path).unwrap();
            db.execute("DELETE FROM searcher_events WHERE seq = ?1", [seq])
                .unwrap();
            lost = Some(trial);
            break;
        }
    }
    let trial = lost.expect("some trial waits at its rung");
    world.restart_master();
    let search = world.cluster.experiments[&experiment]
        .search
        .as_ref()
        .unwrap();
    let request = world.cluster.trials[&trial].row.request_id.unwrap();
    let status = search
        .asha
        .status(crate::searcher::adaptive_asha::RequestId(request))
        .unwrap();
    assert_ne!(
        status.stage,
        crate::searcher::adaptive_asha::Stage::Training,
        "the search was told again"
    );
    run_to_end(&mut world, 2000);
    check_search(&world, experiment).unwrap();
}

/// With `max_concurrent_trials: 2` on three agents, at most two trials train at once and the
/// others are created as slots free up; the search still ends.
#[test]
fn the_concurrency_limit_holds_and_trials_come_as_slots_free_up() {
    let runtime = runtime();
    let _spawns = runtime.enter();
    let mut world = World::new(AGENTS);
    let experiment = world.create_adaptive_experiment(TRIALS, 2);
    assert_eq!(trial_ids(&world, experiment).len(), 2);
    for _ in 0..2000 {
        ticks(&mut world, 1);
        let training = trial_ids(&world, experiment)
            .into_iter()
            .filter(|t| {
                let state = world.cluster.trials[t].row.state;
                state != TrialState::Paused && !state.is_terminal()
            })
            .count();
        assert!(training <= 2, "{training} trials train at once");
        if world.cluster.experiments[&experiment]
            .row
            .state
            .is_terminal()
        {
            break;
        }
    }
    assert_eq!(
        world.cluster.experiments[&experiment].row.state,
        ExperimentState::Completed
    );
    assert_eq!(trial_ids(&world, experiment).len(), TRIALS as usize);
}

/// A killed search creates no more trials: the waiting and training ones end CANCELED.
#[test]
fn a_killed_search_cancels_its_waiting_trials_and_creates_no_more() {
    let runtime = runtime();
    let _spawns = runtime.enter();
    let mut world = World::new(AGENTS);
    let experiment = world.create_adaptive_experiment(TRIALS, 3);
    while !trial_ids(&world, experiment)
        .iter()
        .any(|t| world.cluster.trials[t].row.state == TrialState::Paused)
    {
        ticks(&mut world, 1);
    }
    let created = trial_ids(&world, experiment).len();
    world.cluster.kill_experiment(experiment).unwrap();
    run_to_end(&mut world, 400);
    assert_eq!(trial_ids(&world, experiment).len(), created);
    assert_eq!(
        world.cluster.experiments[&experiment].row.state,
        ExperimentState::Canceled
    );
    let states: Vec<TrialState> = trial_ids(&world, experiment)
        .iter()
        .map(|t| world.cluster.trials[t].row.state)
        .collect();
    assert!(states.contains(&TrialState::Canceled), "{states:?}");
    assert!(
        states
            .iter()
            .all(|s| matches!(s, TrialState::Canceled | TrialState::Completed)),
        "{states:?}"
    );
}

/// A trial that fails past `max_restarts` ends ERRORED and counts as a failure at its rung; the
/// search goes on and the experiment completes.
#[test]
fn a_trial_errored_past_its_restarts_is_a_failure_at_its_rung() {
    let runtime = runtime();
    let _spawns = runtime.enter();
    let mut world = World::new(AGENTS);
    let experiment = world.create_adaptive_experiment(TRIALS, 0);
    let entry = world.cluster.experiments.get_mut(&experiment).unwrap();
    entry.config.max_restarts = 0;
    ticks(&mut world, 2);
    world.crash_trial(0);
    run_to_end(&mut world, 2000);
    let errored: Vec<u64> = trial_ids(&world, experiment)
        .into_iter()
        .filter(|t| world.cluster.trials[t].row.state == TrialState::Errored)
        .collect();
    assert_eq!(errored.len(), 1);
    let view = world.cluster.experiment_view(experiment, true).unwrap();
    assert_eq!(view.state, "COMPLETED");
    let first = &view.brackets[0].rungs[0].results;
    let failed = first.iter().find(|r| r.trial_id == errored[0]).unwrap();
    assert_eq!((failed.metric, failed.promoted), (None, false));
    assert_eq!(first.len(), TRIALS as usize);
}

#[derive(Debug, Clone)]
enum Op {
    Ticks(u32),
    Cut { agent: usize, noticed: bool },
    Heal { agent: usize },
    RestartAgent { agent: usize },
    CrashTrial { agent: usize },
    RestartMaster,
    Pause,
    Activate,
}

fn op() -> impl Strategy<Value = Op> {
    let agent = 0..AGENTS;
    prop_oneof![
        6 => (1u32..30).prop_map(Op::Ticks),
        1 => (agent.clone(), any::<bool>()).prop_map(|(agent, noticed)| Op::Cut { agent, noticed }),
        2 => agent.clone().prop_map(|agent| Op::Heal { agent }),
        1 => agent.clone().prop_map(|agent| Op::RestartAgent { agent }),
        1 => agent.prop_map(|agent| Op::CrashTrial { agent }),
        2 => Just(Op::RestartMaster),
        1 => Just(Op::Pause),
        1 => Just(Op::Activate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever befalls the cluster, the search ends as the rule and undisturbed runs say.
    #[test]
    fn faults_and_master_restarts_lose_no_promotion_and_no_step(ops in proptest::collection::vec(op(), 1..30)) {
        let runtime = runtime();
        let _spawns = runtime.enter();
        let mut world = World::on_disk(AGENTS);
        let experiment = world.create_adaptive_experiment(TRIALS, 0);
        for op in ops {
            match op {
                Op::Ticks(n) => ticks(&mut world, n),
                Op::Cut { agent, noticed } => world.cut(agent, noticed),
                Op::Heal { agent } => world.heal(agent),
                Op::RestartAgent { agent } => world.restart_agent(agent),
                Op::CrashTrial { agent } => world.crash_trial(agent),
                Op::RestartMaster => world.restart_master(),
                Op::Pause => { let _ = world.cluster.pause_experiment(experiment); }
                Op::Activate => { let _ = world.cluster.activate_experiment(experiment); }
            }
        }
        for agent in 0..AGENTS {
            if !world.agents[agent].up {
                world.heal(agent);
            }
        }
        if world.cluster.experiments[&experiment].row.state == ExperimentState::Paused {
            world.cluster.activate_experiment(experiment).unwrap();
        }
        run_to_end(&mut world, 4000);
        prop_assert!(world.live_trials().is_empty());
        check_search(&world, experiment)?;
    }
}

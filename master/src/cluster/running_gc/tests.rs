//! Collection while running on the simulated cluster: what a running trial holds, and what it
//! takes in storage.

use baton_common::config::GcSettings;
use baton_common::gc::CheckpointState;

use crate::cluster::simulation::{World, runtime};

/// An experiment's checkpoints as (step, state), in creation order.
fn by_step(world: &World, experiment: u64) -> Vec<(u64, CheckpointState)> {
    world
        .cluster
        .store
        .checkpoints_of_experiment(experiment)
        .unwrap()
        .iter()
        .map(|c| (c.step, c.state))
        .collect()
}

#[test]
fn a_running_trial_keeps_its_latest_and_what_its_allocation_restores_from() {
    let runtime = runtime();
    let _entered = runtime.enter();
    let mut world = World::new(1);
    let id = world.create_experiment(1, 50);
    let trial = *world.cluster.trials.keys().next().unwrap();
    let policy = GcSettings {
        save_experiment_best: 0,
        save_trial_best: 0,
        save_trial_latest: 1,
        gc_while_running: true,
    };
    world.cluster.set_gc_policy(id, policy).unwrap();
    let steps = |world: &World| world.cluster.trials[&trial].row.steps_completed;
    world.tick_until(100, "step 25", |w| steps(w) >= 25);
    use CheckpointState::{Completed, Deleting};
    assert_eq!(by_step(&world, id), [(10, Deleting), (20, Completed)]);

    // The trial fails and resumes from step 20; its checkpoint of step 30 does not take the one
    // its allocation restored from.
    world.crash_trial(0);
    let latest = |world: &World| world.cluster.trials[&trial].row.latest_checkpoint_step;
    world.tick_until(100, "checkpoint 30", |w| latest(w) == 30);
    world.tick();
    assert_eq!(
        by_step(&world, id),
        [(10, Deleting), (20, Completed), (30, Completed)]
    );

    // What is held and the peak: every checkpoint written is still in storage until its
    // deletion finishes.
    let storage = |world: &World| world.cluster.experiments[&id].storage;
    assert_eq!(
        (storage(&world).held_bytes, storage(&world).peak_bytes),
        (3, 3)
    );
    let deleting: Vec<String> = world
        .cluster
        .store
        .checkpoints_in_state(Deleting)
        .unwrap()
        .into_iter()
        .map(|c| c.uuid)
        .collect();
    for uuid in deleting {
        world.cluster.deletion_finished(&uuid, Ok(()));
        world.cluster.deletion_finished(&uuid, Ok(()));
    }
    assert_eq!(
        (storage(&world).held_bytes, storage(&world).peak_bytes),
        (2, 3),
        "a deletion reported twice counts once"
    );

    // At the end, the policy alone: the latest checkpoint.
    world.tick_until(100, "the end", |w| {
        w.cluster.experiments[&id].row.state.is_terminal()
    });
    let kept: Vec<u64> = by_step(&world, id)
        .into_iter()
        .filter(|(_, state)| *state == Completed)
        .map(|(step, _)| step)
        .collect();
    assert_eq!(kept, [40]);
}

#[test]
fn without_gc_while_running_every_checkpoint_stays_until_the_end() {
    let runtime = runtime();
    let _entered = runtime.enter();
    let mut world = World::new(1);
    let id = world.create_experiment(1, 50);
    let trial = *world.cluster.trials.keys().next().unwrap();
    let policy = GcSettings {
        save_experiment_best: 0,
        save_trial_best: 0,
        save_trial_latest: 1,
        gc_while_running: false,
    };
    world.cluster.set_gc_policy(id, policy).unwrap();
    let latest = |world: &World| world.cluster.trials[&trial].row.latest_checkpoint_step;
    world.tick_until(100, "checkpoint 30", |w| latest(w) == 30);
    world.tick();
    assert!(
        by_step(&world, id)
            .iter()
            .all(|(_, state)| *state == CheckpointState::Completed)
    );
}

//! Pins on the simulated cluster: kept by every policy and by experiment deletion.

use baton_common::config::GcSettings;
use baton_common::gc::CheckpointState;

use crate::cluster::simulation::{World, runtime};
use crate::error::MasterError;
use crate::states::ExperimentState;

/// The uuid of an experiment's checkpoint of `step`.
fn uuid_at(world: &World, experiment: u64, step: u64) -> String {
    world
        .cluster
        .store
        .checkpoints_of_experiment(experiment)
        .unwrap()
        .into_iter()
        .find(|c| c.step == step)
        .map(|c| c.uuid)
        .unwrap()
}

/// Records every deletion under way as finished.
fn finish_deletions(world: &mut World) {
    let deleting = world
        .cluster
        .store
        .checkpoints_in_state(CheckpointState::Deleting)
        .unwrap();
    for row in deleting {
        world.cluster.deletion_finished(&row.uuid, Ok(()));
    }
}

/// The steps of an experiment's checkpoints in `state`.
fn steps_in(world: &World, experiment: u64, state: CheckpointState) -> Vec<u64> {
    world
        .cluster
        .store
        .checkpoints_of_experiment(experiment)
        .unwrap()
        .into_iter()
        .filter(|c| c.state == state)
        .map(|c| c.step)
        .collect()
}

#[test]
fn a_pinned_checkpoint_outlives_every_policy_and_the_experiment_s_deletion() {
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
    let latest = |world: &World| world.cluster.trials[&trial].row.latest_checkpoint_step;
    while latest(&world) < 10 {
        world.tick();
    }
    let pinned = uuid_at(&world, id, 10);
    let view = world
        .cluster
        .pin_checkpoint(&pinned, "first good one")
        .unwrap();
    assert!(view.pinned && view.pin_note == "first good one");
    assert_eq!(world.cluster.experiments[&id].storage.pinned, 1);

    // Refusals change nothing.
    let unknown = "0e5f7c1e-6a3b-4d7e-9b1a-2f4c8d9e0a11";
    let long_note = "n".repeat(1025);
    for (uuid, note, expected) in [
        (
            unknown,
            "",
            "checkpoint 0e5f7c1e-6a3b-4d7e-9b1a-2f4c8d9e0a11 does not exist",
        ),
        ("../../etc", "", "\"../../etc\" is not a checkpoint uuid"),
        (
            pinned.as_str(),
            long_note.as_str(),
            "note: at most 1024 bytes (got 1025)",
        ),
    ] {
        let refused = world.cluster.pin_checkpoint(uuid, note).unwrap_err();
        assert!(refused.to_string().contains(expected), "{refused}");
    }
    assert!(matches!(
        world.cluster.unpin_checkpoint(unknown),
        Err(MasterError::NotFound(_))
    ));

    while !world.cluster.experiments[&id].row.state.is_terminal() {
        world.tick();
    }
    assert_eq!(steps_in(&world, id, CheckpointState::Completed), [10, 40]);
    let collected = uuid_at(&world, id, 20);
    let refused = world.cluster.pin_checkpoint(&collected, "").unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("only a COMPLETED checkpoint can be pinned"),
        "{refused}"
    );

    // Deleting the experiment deletes the rest and keeps it, with its pinned checkpoint.
    finish_deletions(&mut world);
    let answer = world.cluster.delete_experiment(id).unwrap();
    assert_eq!(
        (answer.state.as_str(), answer.pinned_checkpoints),
        ("COMPLETED", 1)
    );
    finish_deletions(&mut world);
    assert_eq!(steps_in(&world, id, CheckpointState::Completed), [10]);
    assert_eq!(
        world.cluster.experiments[&id].row.state,
        ExperimentState::Completed
    );

    // Unpinned, it is the experiment's latest checkpoint, which the policy keeps; deleting the
    // experiment again removes it all.
    let view = world.cluster.unpin_checkpoint(&pinned).unwrap();
    assert!(!view.pinned && view.pin_note.is_empty());
    assert_eq!(view.state, "COMPLETED");
    world.cluster.delete_experiment(id).unwrap();
    finish_deletions(&mut world);
    assert!(!world.cluster.experiments.contains_key(&id));
}

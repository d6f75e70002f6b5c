//! Collection while an experiment runs (`checkpoint_storage.gc_while_running`): events that can
//! push checkpoints out of the policy (a commit, an allocation or trial ending, an unpin) mark
//! the experiment due; each tick collects the due experiments at once, so a burst of commits
//! costs one selection, and the deletions run in spawned tasks like every other.

use baton_common::gc::{CheckpointState, collectable_while_running};

use super::state::Cluster;
use crate::error::MasterResult;

impl Cluster {
    /// Asks for collection of an experiment on the next tick, if it collects while running.
    pub(super) fn mark_gc_due(&mut self, experiment_id: u64) {
        let collects = self
            .experiments
            .get(&experiment_id)
            .is_some_and(|e| e.gc.gc_while_running && !e.row.state.is_terminal());
        if collects {
            self.gc_due.insert(experiment_id);
        }
    }

    /// Collects every due experiment.
    pub(super) fn collect_due_garbage(&mut self) {
        for experiment_id in std::mem::take(&mut self.gc_due) {
            if let Err(e) = self.collect_while_running(experiment_id) {
                tracing::error!(experiment = experiment_id, error = %e, "collection while running failed");
            }
        }
    }

    /// Deletes the checkpoints of a running experiment that its policy can no longer keep.
    fn collect_while_running(&mut self, experiment_id: u64) -> MasterResult<()> {
        let Some(experiment) = self.experiments.get(&experiment_id) else {
            return Ok(());
        };
        if !experiment.gc.gc_while_running || experiment.row.state.is_terminal() {
            return Ok(());
        }
        let settings = experiment.gc;
        let policy = self.gc_policy(experiment_id, &settings)?;
        let (candidates, _) = self.gc_candidates(experiment_id)?;
        let delete = collectable_while_running(&candidates, &policy);
        if delete.is_empty() {
            return Ok(());
        }
        self.store.transaction(|store| {
            for uuid in &delete {
                store.set_checkpoint_state(uuid, CheckpointState::Deleting, "")?;
            }
            Ok(())
        })?;
        tracing::info!(
            experiment = experiment_id,
            deleting = delete.len(),
            "collecting checkpoints the policy can no longer keep"
        );
        self.spawn_deletion(experiment_id, delete);
        Ok(())
    }
}

#[cfg(test)]
mod tests;

//! Deleting a terminal experiment: mark it DELETING, delete its checkpoints from storage, then
//! remove its records. A master that stops at any point goes on where it was when it starts again.
//! An experiment with pinned checkpoints loses only its unpinned ones and keeps its records.

use baton_common::gc::CheckpointState;
use baton_common::proto::Experiment;

use super::state::Cluster;
use crate::error::{MasterError, MasterResult};
use crate::states::ExperimentState;

impl Cluster {
    /// Starts deleting a terminal experiment and returns it as DELETING; repeating it while it
    /// is DELETING changes nothing.
    pub fn delete_experiment(&mut self, id: u64) -> MasterResult<Experiment> {
        let experiment = self.experiment_mut(id)?;
        let state = experiment.row.state;
        if state == ExperimentState::Deleting {
            return self.experiment_view(id, true);
        }
        if !state.is_terminal() {
            return Err(MasterError::FailedPrecondition(format!(
                "experiment {id} is {state}: only a COMPLETED, CANCELED or ERRORED experiment can be deleted (kill it first)"
            )));
        }
        if !self.allocations_of_experiment(id).is_empty() {
            return Err(MasterError::FailedPrecondition(format!(
                "experiment {id} still has trials stopping: delete it once they have exited"
            )));
        }
        let checkpoints = self.store.checkpoints_of_experiment(id)?;
        let to_delete: Vec<String> = checkpoints
            .iter()
            .filter(|c| c.state != CheckpointState::Deleted && !c.pinned)
            .map(|c| c.uuid.clone())
            .collect();
        if checkpoints.iter().any(|c| c.pinned) {
            return self.delete_unpinned(id, to_delete);
        }
        self.store.transaction(|store| {
            store.set_experiment_state(id, ExperimentState::Deleting)?;
            for uuid in &to_delete {
                store.set_checkpoint_state(uuid, CheckpointState::Deleting, "")?;
            }
            Ok(())
        })?;
        self.experiment_mut(id)?.row.state = ExperimentState::Deleting;
        tracing::info!(
            experiment = id,
            checkpoints = to_delete.len(),
            "deleting experiment"
        );
        let view = self.experiment_view(id, true)?;
        self.spawn_deletion(id, to_delete);
        self.remove_if_deleted(id);
        Ok(view)
    }

    /// Deletes the unpinned checkpoints of an experiment with pinned ones; the experiment keeps
    /// its state and records, so that the pinned checkpoints stay described and downloadable.
    fn delete_unpinned(&mut self, id: u64, to_delete: Vec<String>) -> MasterResult<Experiment> {
        self.store.transaction(|store| {
            for uuid in &to_delete {
                store.set_checkpoint_state(uuid, CheckpointState::Deleting, "")?;
            }
            Ok(())
        })?;
        tracing::info!(
            experiment = id,
            checkpoints = to_delete.len(),
            "deleting the unpinned checkpoints of an experiment with pinned ones"
        );
        self.spawn_deletion(id, to_delete);
        self.experiment_view(id, true)
    }

    /// Removes a DELETING experiment's records once none of its checkpoints is left in storage.
    pub(super) fn remove_if_deleted(&mut self, id: u64) {
        if self
            .experiments
            .get(&id)
            .is_none_or(|e| e.row.state != ExperimentState::Deleting)
        {
            return;
        }
        let remaining = match self.store.checkpoints_of_experiment(id) {
            Ok(rows) => rows
                .iter()
                .filter(|c| c.state != CheckpointState::Deleted)
                .count(),
            Err(e) => {
                tracing::error!(error = %e, "cannot list an experiment's checkpoints");
                return;
            }
        };
        if remaining > 0 {
            return;
        }
        if let Err(e) = self.store.delete_experiment_records(id) {
            tracing::error!(experiment = id, error = %e, "cannot remove a deleted experiment's records");
            return;
        }
        self.experiments.remove(&id);
        let trials: Vec<u64> = self
            .trials
            .values()
            .filter(|t| t.row.experiment_id == id)
            .map(|t| t.row.id)
            .collect();
        for trial in trials {
            self.trials.remove(&trial);
            self.waiting.remove(&trial);
        }
        tracing::info!(experiment = id, "experiment deleted");
    }

    /// Finishes deletions of experiments the master was deleting when it stopped.
    pub(super) fn resume_experiment_deletions(&mut self) {
        let deleting: Vec<u64> = self
            .experiments
            .values()
            .filter(|e| e.row.state == ExperimentState::Deleting)
            .map(|e| e.row.id)
            .collect();
        for id in deleting {
            self.remove_if_deleted(id);
        }
    }
}

//! Checkpoint garbage collection: select by policy, mark DELETING, delete storage, then record.

use baton_common::config::GcSettings;
use baton_common::gc::{CheckpointState, GcCandidate, GcPolicy, GcSelection, select};
use baton_common::storage::CheckpointStore;

use super::checkpoints::ScoredCheckpoint;
use super::state::Cluster;
use super::trials::trial_state;
use crate::error::{MasterError, MasterResult};

impl Cluster {
    /// What `policy` would keep and delete among an experiment's checkpoints.
    pub fn gc_preview(
        &self,
        experiment_id: u64,
        policy: &GcSettings,
    ) -> MasterResult<(GcSelection, Vec<ScoredCheckpoint>)> {
        let experiment = self.experiments.get(&experiment_id).ok_or_else(|| {
            MasterError::NotFound(format!("experiment {experiment_id} does not exist"))
        })?;
        let policy = GcPolicy {
            save_experiment_best: policy.save_experiment_best,
            save_trial_best: policy.save_trial_best,
            save_trial_latest: policy.save_trial_latest,
            smaller_is_better: experiment.config.searcher.smaller_is_better,
        };
        let checkpoints = self.experiment_checkpoints(experiment_id, true)?;
        let candidates: Vec<GcCandidate> = checkpoints
            .iter()
            .map(|(row, metric)| GcCandidate {
                uuid: row.uuid.clone(),
                trial_id: row.trial_id,
                step: row.step,
                seq: row.seq,
                metric: *metric,
                state: row.state.parse().unwrap_or(CheckpointState::Error),
                trial_can_run: self
                    .trials
                    .get(&row.trial_id)
                    .is_some_and(|t| !trial_state::is_terminal(&t.row.state)),
            })
            .collect();
        Ok((select(&candidates, &policy), checkpoints))
    }

    /// Stores a new policy for an experiment and deletes what it does not keep.
    pub fn set_gc_policy(
        &mut self,
        experiment_id: u64,
        policy: GcSettings,
    ) -> MasterResult<GcSelection> {
        let experiment = self.experiment_mut(experiment_id)?;
        if experiment.row.state == "DELETED" {
            return Err(MasterError::FailedPrecondition(format!(
                "experiment {experiment_id} is deleted"
            )));
        }
        experiment.gc = policy;
        let json = serde_json::to_string(&policy).expect("policy serializes");
        self.store.set_gc_policy(experiment_id, &json)?;
        self.collect_garbage(experiment_id, &policy)
    }

    /// Marks what `policy` does not keep as DELETING and deletes it from storage in the background.
    pub(super) fn collect_garbage(
        &mut self,
        experiment_id: u64,
        policy: &GcSettings,
    ) -> MasterResult<GcSelection> {
        let (selection, _) = self.gc_preview(experiment_id, policy)?;
        if selection.delete.is_empty() {
            return Ok(selection);
        }
        self.store.transaction(|store| {
            for uuid in &selection.delete {
                store.set_checkpoint_state(uuid, CheckpointState::Deleting.as_str(), "")?;
            }
            Ok(())
        })?;
        tracing::info!(
            experiment = experiment_id,
            deleting = selection.delete.len(),
            kept = selection.keep.len(),
            "garbage collecting checkpoints"
        );
        self.spawn_deletion(experiment_id, selection.delete.clone());
        Ok(selection)
    }

    /// Restarts deletions that were in flight or failed when the master stopped.
    pub(super) fn resume_deletions(&mut self) {
        self.restart_deletions(&[CheckpointState::Deleting, CheckpointState::Error]);
    }

    /// Retries deletions that failed (ERROR), so that a storage outage heals without a restart.
    pub(super) fn retry_failed_deletions(&mut self) {
        self.restart_deletions(&[CheckpointState::Error]);
    }

    fn restart_deletions(&mut self, states: &[CheckpointState]) {
        for &state in states {
            let rows = match self.store.checkpoints_in_state(state.as_str()) {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "cannot list checkpoints to delete");
                    return;
                }
            };
            for row in rows {
                self.spawn_deletion(row.experiment_id, vec![row.uuid]);
            }
        }
    }

    fn spawn_deletion(&mut self, experiment_id: u64, uuids: Vec<String>) {
        let Some(experiment) = self.experiments.get(&experiment_id) else {
            return;
        };
        let uuids: Vec<String> = uuids
            .into_iter()
            .filter(|uuid| self.deletions_in_flight.insert(uuid.clone()))
            .collect();
        if uuids.is_empty() {
            return;
        }
        let backend = experiment.config.checkpoint_storage.backend.clone();
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let store = CheckpointStore::new(&backend);
            for uuid in uuids {
                let result = match &store {
                    Ok(store) => store.delete(&uuid).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                let recorded = handle
                    .call(move |cluster| {
                        cluster.deletions_in_flight.remove(&uuid);
                        let (state, error) = match &result {
                            Ok(()) => (CheckpointState::Deleted, String::new()),
                            Err(error) => {
                                tracing::warn!(checkpoint = %uuid, %error, "checkpoint deletion failed; will retry");
                                (CheckpointState::Error, error.clone())
                            }
                        };
                        cluster.store.set_checkpoint_state(&uuid, state.as_str(), &error)
                    })
                    .await;
                if let Ok(Err(e)) = recorded {
                    tracing::error!(error = %e, "cannot record checkpoint deletion");
                }
            }
        });
    }
}

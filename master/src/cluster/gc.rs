//! Checkpoint garbage collection: select by policy, mark DELETING, delete storage, then record.

use std::collections::HashSet;

use baton_common::config::GcSettings;
use baton_common::gc::{CheckpointState, GcCandidate, GcPolicy, GcSelection, select};
use baton_common::proto::{Checkpoint, CheckpointCompleted, SetGcPolicyResponse};
use baton_common::storage::CheckpointStore;

use super::checkpoints::ScoredCheckpoint;
use super::state::Cluster;
use crate::error::{MasterError, MasterResult};
use crate::states::ExperimentState;
use crate::store::{CheckpointRow, StoreResult, now_ms};

impl Cluster {
    /// What `policy` would keep and delete among an experiment's checkpoints.
    pub fn gc_preview(
        &self,
        experiment_id: u64,
        policy: &GcSettings,
    ) -> MasterResult<(GcSelection, Vec<ScoredCheckpoint>)> {
        let policy = self.gc_policy(experiment_id, policy)?;
        let (candidates, checkpoints) = self.gc_candidates(experiment_id)?;
        Ok((select(&candidates, &policy), checkpoints))
    }

    /// The checkpoints an experiment's current policy keeps.
    pub fn gc_kept(&self, experiment_id: u64) -> MasterResult<Vec<String>> {
        let policy = self
            .experiments
            .get(&experiment_id)
            .map(|e| e.gc)
            .ok_or_else(|| {
                MasterError::NotFound(format!("experiment {experiment_id} does not exist"))
            })?;
        Ok(self.gc_preview(experiment_id, &policy)?.0.keep)
    }

    /// `settings` ranked in the direction of the experiment's searcher metric.
    pub(super) fn gc_policy(
        &self,
        experiment_id: u64,
        settings: &GcSettings,
    ) -> MasterResult<GcPolicy> {
        let experiment = self.experiments.get(&experiment_id).ok_or_else(|| {
            MasterError::NotFound(format!("experiment {experiment_id} does not exist"))
        })?;
        Ok(GcPolicy {
            save_experiment_best: settings.save_experiment_best,
            save_trial_best: settings.save_trial_best,
            save_trial_latest: settings.save_trial_latest,
            smaller_is_better: experiment.config.searcher.smaller_is_better,
        })
    }

    /// An experiment's checkpoints as GC sees them, with their records. A checkpoint is held when
    /// it is pinned or a running allocation restores from it (its trial's checkpoint of the step
    /// the allocation started at).
    pub(super) fn gc_candidates(
        &self,
        experiment_id: u64,
    ) -> MasterResult<(Vec<GcCandidate>, Vec<ScoredCheckpoint>)> {
        let checkpoints = self.experiment_checkpoints(experiment_id, true)?;
        let restored: HashSet<(u64, u64)> = self
            .allocations
            .values()
            .map(|live| (live.row.trial_id, live.row.start_step))
            .collect();
        let candidates = checkpoints
            .iter()
            .map(|(row, metric)| GcCandidate {
                uuid: row.uuid.clone(),
                trial_id: row.trial_id,
                step: row.step,
                seq: row.seq,
                metric: *metric,
                state: row.state,
                trial_can_run: self
                    .trials
                    .get(&row.trial_id)
                    .is_some_and(|t| !t.row.state.is_terminal()),
                held: row.pinned || restored.contains(&(row.trial_id, row.step)),
            })
            .collect();
        Ok((candidates, checkpoints))
    }

    /// Stores a new policy for an experiment and deletes what it does not keep.
    pub fn set_gc_policy(
        &mut self,
        experiment_id: u64,
        policy: GcSettings,
    ) -> MasterResult<GcSelection> {
        let experiment = self.experiment_mut(experiment_id)?;
        if experiment.row.state == ExperimentState::Deleting {
            return Err(MasterError::FailedPrecondition(format!(
                "experiment {experiment_id} is being deleted"
            )));
        }
        experiment.gc = policy;
        let json = serde_json::to_string(&policy).expect("policy serializes");
        self.store.set_gc_policy(experiment_id, &json)?;
        self.mark_gc_due(experiment_id);
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
                store.set_checkpoint_state(uuid, CheckpointState::Deleting, "")?;
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
            let rows = match self.store.checkpoints_in_state(state) {
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

    pub(super) fn spawn_deletion(&mut self, experiment_id: u64, uuids: Vec<String>) {
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
                if handle.deletion_finished(uuid, result).await.is_err() {
                    return;
                }
            }
        });
    }

    /// Records the outcome of a checkpoint's storage deletion: DELETED, or ERROR to retry.
    pub(super) fn deletion_finished(&mut self, uuid: &str, result: Result<(), String>) {
        self.deletions_in_flight.remove(uuid);
        let (state, error) = match result {
            Ok(()) => (CheckpointState::Deleted, String::new()),
            Err(error) => {
                tracing::warn!(checkpoint = %uuid, %error, "checkpoint deletion failed; will retry");
                (CheckpointState::Error, error)
            }
        };
        let before = self.store.checkpoint_by_uuid(uuid);
        if let Err(e) = self.store.set_checkpoint_state(uuid, state, &error) {
            tracing::error!(error = %e, "cannot record checkpoint deletion");
            return;
        }
        if let Ok(Some(row)) = before {
            let metrics = &self.settings.metrics;
            if state == CheckpointState::Deleted {
                metrics.checkpoints_deleted.inc();
                metrics.deleted_bytes.inc_by(row.size_bytes);
                if row.state != CheckpointState::Deleted {
                    self.checkpoint_removed(row.experiment_id, row.size_bytes);
                }
            } else {
                metrics.deletion_failures.inc();
            }
            self.remove_if_deleted(row.experiment_id);
        }
    }

    /// The answer to `set gc-policy`: what the policy keeps and deletes, applied unless `dry_run`.
    /// `while_running` sets `gc_while_running`; None keeps the experiment's.
    pub(super) fn gc_policy_reply(
        &mut self,
        experiment_id: u64,
        policy: GcSettings,
        while_running: Option<bool>,
        dry_run: bool,
    ) -> MasterResult<SetGcPolicyResponse> {
        let current = self.experiment_mut(experiment_id)?.gc.gc_while_running;
        let policy = GcSettings {
            gc_while_running: while_running.unwrap_or(current),
            ..policy
        };
        let (selection, rows) = if dry_run {
            self.gc_preview(experiment_id, &policy)?
        } else {
            let selection = self.set_gc_policy(experiment_id, policy)?;
            (selection, self.experiment_checkpoints(experiment_id, true)?)
        };
        let by_uuid: std::collections::HashMap<&str, _> = rows
            .iter()
            .map(|scored| (scored.0.uuid.as_str(), scored))
            .collect();
        let view = |uuids: &[String]| -> Vec<Checkpoint> {
            uuids
                .iter()
                .filter_map(|uuid| by_uuid.get(uuid.as_str()).copied())
                .map(|(row, metric)| self.checkpoint_view(row.clone(), *metric))
                .collect()
        };
        Ok(SetGcPolicyResponse {
            keep: view(&selection.keep),
            delete: view(&selection.delete),
        })
    }

    /// A checkpoint committed by an allocation that is no longer current (its agent was cut off
    /// and the trial moved on): recorded as DELETING and deleted from storage, so that it is never
    /// used and never left behind. Only the agent that ran the allocation can report it, and a
    /// uuid already recorded is left alone.
    pub(super) fn discard_fenced_checkpoint(
        &mut self,
        agent_id: &str,
        report: CheckpointCompleted,
    ) -> StoreResult<()> {
        let Ok(uuid) = uuid::Uuid::parse_str(&report.uuid) else {
            return Ok(());
        };
        let Some(allocation) = self.store.allocation_by_id(&report.allocation_id)? else {
            return Ok(());
        };
        let Some(trial) = self.trials.get(&allocation.trial_id) else {
            return Ok(());
        };
        if allocation.agent_id != agent_id {
            return Ok(());
        }
        let experiment_id = trial.row.experiment_id;
        let row = CheckpointRow {
            seq: 0,
            uuid: uuid.to_string(),
            experiment_id,
            trial_id: allocation.trial_id,
            allocation_id: allocation.id,
            step: report.step,
            state: CheckpointState::Deleting,
            size_bytes: report.size_bytes,
            metadata_json: report.metadata_json,
            error: String::new(),
            created_ms: now_ms(),
            pinned: false,
            pin_note: String::new(),
        };
        if self.store.insert_checkpoint(&row)? {
            self.checkpoint_stored(experiment_id, row.size_bytes);
            tracing::warn!(checkpoint = %row.uuid, agent = %agent_id, step = row.step, "deleting a checkpoint written by a fenced allocation");
            self.spawn_deletion(experiment_id, vec![row.uuid]);
        }
        Ok(())
    }
}

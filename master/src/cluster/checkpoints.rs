//! Checkpoint queries and their searcher metrics.

use std::collections::HashMap;

use baton_common::gc::CheckpointState;
use baton_common::proto::CheckpointRef;

use super::state::Cluster;
use crate::error::{MasterError, MasterResult};
use crate::store::CheckpointRow;

/// A checkpoint with the searcher metric of the validation at its step.
pub type ScoredCheckpoint = (CheckpointRow, Option<f64>);

impl Cluster {
    /// Checkpoints of an experiment with their metrics; DELETED ones only when `all`.
    pub fn experiment_checkpoints(
        &self,
        experiment_id: u64,
        all: bool,
    ) -> MasterResult<Vec<ScoredCheckpoint>> {
        let experiment = self.experiments.get(&experiment_id).ok_or_else(|| {
            MasterError::NotFound(format!("experiment {experiment_id} does not exist"))
        })?;
        let metric_name = experiment.config.searcher.metric.clone();
        let rows = self.store.checkpoints_of_experiment(experiment_id)?;
        let mut metrics: HashMap<u64, HashMap<u64, f64>> = HashMap::new();
        for (trial_id, v) in self.store.metrics_of_experiment(experiment_id, false)? {
            if let Some(m) = metric_value(&v.metrics_json, &metric_name) {
                metrics.entry(trial_id).or_default().insert(v.step, m);
            }
        }
        Ok(rows
            .into_iter()
            .filter(|row| all || row.state != CheckpointState::Deleted)
            .map(|row| {
                let metric = metrics
                    .get(&row.trial_id)
                    .and_then(|m| m.get(&row.step))
                    .copied();
                (row, metric)
            })
            .collect())
    }

    /// One checkpoint by uuid, or by trial and step.
    pub fn find_checkpoint(&self, reference: &CheckpointRef) -> MasterResult<ScoredCheckpoint> {
        let row = if !reference.uuid.is_empty() {
            self.store
                .checkpoint_by_uuid(&reference.uuid)?
                .ok_or_else(|| {
                    MasterError::NotFound(format!("checkpoint {} does not exist", reference.uuid))
                })?
        } else if reference.trial_id == 0 {
            return Err(MasterError::InvalidArgument(
                "name a checkpoint by its uuid, or by trial_id and step".into(),
            ));
        } else {
            self.store
                .checkpoint_by_trial_step(reference.trial_id, reference.step)?
                .ok_or_else(|| {
                    MasterError::NotFound(format!(
                        "trial {} has no checkpoint at step {}",
                        reference.trial_id, reference.step
                    ))
                })?
        };
        let (_, metric) = self
            .experiment_checkpoints(row.experiment_id, true)?
            .into_iter()
            .find(|(r, _)| r.uuid == row.uuid)
            .unwrap_or((row.clone(), None));
        Ok((row, metric))
    }

    /// The storage backend of an experiment, with its credentials (for the master's own use).
    pub fn storage_backend(
        &self,
        experiment_id: u64,
    ) -> MasterResult<baton_common::config::StorageBackend> {
        self.experiments
            .get(&experiment_id)
            .map(|e| e.config.checkpoint_storage.backend.clone())
            .ok_or_else(|| {
                MasterError::NotFound(format!("experiment {experiment_id} does not exist"))
            })
    }

    /// The storage description of an experiment, secrets removed.
    pub fn redacted_storage_json(&self, experiment_id: u64) -> String {
        self.experiments
            .get(&experiment_id)
            .map(|e| {
                let mut storage = e.config.checkpoint_storage.clone();
                storage.backend = storage.backend.redacted();
                serde_json::to_string(&storage).expect("storage config serializes")
            })
            .unwrap_or_default()
    }
}

/// The named metric of a validation, if present and finite.
fn metric_value(metrics_json: &str, name: &str) -> Option<f64> {
    let metrics: serde_json::Value = serde_json::from_str(metrics_json).ok()?;
    metrics.get(name)?.as_f64().filter(|m| m.is_finite())
}

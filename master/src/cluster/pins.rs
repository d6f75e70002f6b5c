//! Checkpoint pins: a pinned checkpoint is kept by every GC policy (at the end, while running,
//! in previews) and by experiment deletion; unpinned, its experiment's policy applies again.

use baton_common::gc::CheckpointState;
use baton_common::proto::Checkpoint;

use super::state::Cluster;
use crate::error::{MasterError, MasterResult};
use crate::store::CheckpointRow;

/// Longest pin note, in bytes.
pub const MAX_PIN_NOTE_BYTES: usize = 1024;

impl Cluster {
    /// Pins a COMPLETED checkpoint with `note` (replacing the note of one already pinned).
    pub fn pin_checkpoint(&mut self, uuid: &str, note: &str) -> MasterResult<Checkpoint> {
        if note.len() > MAX_PIN_NOTE_BYTES {
            return Err(MasterError::InvalidArgument(format!(
                "note: at most {MAX_PIN_NOTE_BYTES} bytes (got {})",
                note.len()
            )));
        }
        let row = self.pinnable(uuid)?;
        if row.state != CheckpointState::Completed {
            return Err(MasterError::FailedPrecondition(format!(
                "checkpoint {uuid} is {}: only a COMPLETED checkpoint can be pinned",
                row.state
            )));
        }
        self.store.set_checkpoint_pin(uuid, true, note)?;
        if !row.pinned
            && let Some(experiment) = self.experiments.get_mut(&row.experiment_id)
        {
            experiment.storage.pinned += 1;
        }
        tracing::info!(checkpoint = %uuid, experiment = row.experiment_id, "checkpoint pinned");
        self.pinned_view(uuid)
    }

    /// Unpins a checkpoint (a no-op for one not pinned); its experiment's policy applies again:
    /// at once when the experiment is over, at the next collection when it collects while running.
    pub fn unpin_checkpoint(&mut self, uuid: &str) -> MasterResult<Checkpoint> {
        let row = self.pinnable(uuid)?;
        if !row.pinned {
            return self.pinned_view(uuid);
        }
        self.store.set_checkpoint_pin(uuid, false, "")?;
        let experiment_id = row.experiment_id;
        let Some(experiment) = self.experiments.get_mut(&experiment_id) else {
            return self.pinned_view(uuid);
        };
        experiment.storage.pinned = experiment.storage.pinned.saturating_sub(1);
        tracing::info!(checkpoint = %uuid, experiment = experiment_id, "checkpoint unpinned");
        if experiment.row.state.is_terminal() {
            let policy = experiment.gc;
            self.collect_garbage(experiment_id, &policy)?;
        } else {
            self.mark_gc_due(experiment_id);
        }
        self.pinned_view(uuid)
    }

    /// The record of a checkpoint that may be pinned or unpinned.
    fn pinnable(&self, uuid: &str) -> MasterResult<CheckpointRow> {
        if uuid::Uuid::parse_str(uuid).is_err() {
            let shown: String = uuid.chars().take(64).collect();
            let more = if shown.len() < uuid.len() { "…" } else { "" };
            return Err(MasterError::InvalidArgument(format!(
                "uuid: {shown:?}{more} is not a checkpoint uuid (such as \
                 0e5f7c1e-6a3b-4d7e-9b1a-2f4c8d9e0a11; see `baton experiment list-checkpoints`)"
            )));
        }
        self.store
            .checkpoint_by_uuid(uuid)?
            .ok_or_else(|| MasterError::NotFound(format!("checkpoint {uuid} does not exist")))
    }

    /// A checkpoint as the pin calls answer it.
    fn pinned_view(&self, uuid: &str) -> MasterResult<Checkpoint> {
        let reference = baton_common::proto::CheckpointRef {
            uuid: uuid.to_string(),
            ..Default::default()
        };
        let (row, metric) = self.find_checkpoint(&reference)?;
        Ok(self.checkpoint_view(row, metric))
    }
}

#[cfg(test)]
mod tests;

//! What an experiment's checkpoints take in storage: the bytes held now, the peak (recorded in the
//! store when it rises, so that it survives restarts), and how many checkpoints are pinned.

use std::collections::HashMap;

use super::state::Cluster;

/// An experiment's checkpoints in storage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageUse {
    /// Bytes of its checkpoints in every state but DELETED.
    pub held_bytes: u64,
    /// The most bytes held at once.
    pub peak_bytes: u64,
    /// Checkpoints pinned by an operator.
    pub pinned: u32,
}

impl StorageUse {
    /// The use loaded from the store: a recorded peak below what is held now (a database from
    /// before peaks were recorded) is raised to it.
    pub fn loaded(held_bytes: u64, recorded_peak: u64, pinned: u32) -> Self {
        Self {
            held_bytes,
            peak_bytes: recorded_peak.max(held_bytes),
            pinned,
        }
    }

    /// Counts a checkpoint written to storage; returns the new peak when it rose.
    pub fn stored(&mut self, bytes: u64) -> Option<u64> {
        self.held_bytes = self.held_bytes.saturating_add(bytes);
        (self.held_bytes > self.peak_bytes).then(|| {
            self.peak_bytes = self.held_bytes;
            self.peak_bytes
        })
    }

    /// Counts a checkpoint deleted from storage.
    pub fn removed(&mut self, bytes: u64) {
        self.held_bytes = self.held_bytes.saturating_sub(bytes);
    }
}

impl Cluster {
    /// The storage use of every experiment with checkpoints, as the store has it.
    pub(super) fn load_storage_use(
        store: &crate::store::Store,
    ) -> crate::store::StoreResult<HashMap<u64, (u64, u32)>> {
        Ok(store
            .checkpoint_totals()?
            .into_iter()
            .map(|(experiment, held, pinned)| (experiment, (held, pinned)))
            .collect())
    }

    /// Counts a checkpoint of `experiment_id` written to storage, recording a new peak.
    pub(super) fn checkpoint_stored(&mut self, experiment_id: u64, bytes: u64) {
        let Some(experiment) = self.experiments.get_mut(&experiment_id) else {
            return;
        };
        if let Some(peak) = experiment.storage.stored(bytes)
            && let Err(e) = self.store.raise_storage_peak(experiment_id, peak)
        {
            tracing::error!(experiment = experiment_id, error = %e, "cannot record the storage peak");
        }
    }

    /// Counts a checkpoint of `experiment_id` deleted from storage.
    pub(super) fn checkpoint_removed(&mut self, experiment_id: u64, bytes: u64) {
        if let Some(experiment) = self.experiments.get_mut(&experiment_id) {
            experiment.storage.removed(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_follows_what_is_held_and_never_falls() {
        let mut usage = StorageUse::loaded(0, 0, 0);
        assert_eq!(usage.stored(100), Some(100));
        assert_eq!(usage.stored(50), Some(150));
        usage.removed(100);
        assert_eq!(usage.stored(60), None, "110 held is below the peak of 150");
        assert_eq!((usage.held_bytes, usage.peak_bytes), (110, 150));
        usage.removed(500);
        assert_eq!(usage.held_bytes, 0);
    }

    #[test]
    fn a_peak_recorded_below_what_is_held_is_raised() {
        assert_eq!(StorageUse::loaded(300, 0, 1).peak_bytes, 300);
        assert_eq!(StorageUse::loaded(300, 900, 1).peak_bytes, 900);
    }
}

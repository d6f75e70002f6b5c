//! The periodic sweep of upload leftovers: `<uuid>/` directories in checkpoint storage that never
//! got their `metadata.json` (an agent or trial died mid-upload) and that no record names.
//!
//! The owner task only decides when to sweep and which storages; listing and deleting run in a
//! spawned task. Uploads in flight are protected by the grace period: a directory is a leftover
//! only when its newest object is older than `upload_grace`, far longer than any upload stalls.
//! Each sweep also retries the checkpoint deletions that failed (state ERROR).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use baton_common::config::StorageBackend;
use baton_common::storage::CheckpointStore;

use super::ClusterHandle;
use super::state::Cluster;
use crate::error::MasterResult;

/// When the next sweep is due, and whether one is still running.
pub(super) struct SweepState {
    next: Instant,
    running: Arc<AtomicBool>,
}

impl SweepState {
    /// The first sweep is due one `interval` after `now` (deletions are resumed at load anyway).
    pub(super) fn new(now: Instant, interval: Duration) -> Self {
        Self {
            next: now + interval,
            running: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Clears the running flag when the sweep task ends, even by panic.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Cluster {
    /// When due: retries failed deletions, and sweeps every experiment's storage unless the last
    /// sweep is still running.
    pub(super) fn sweep_if_due(&mut self, now: Instant) {
        if now < self.sweep.next {
            return;
        }
        self.sweep.next = now + self.settings.sweep_interval;
        self.retry_failed_deletions();
        if self.sweep.running.load(Ordering::Acquire) {
            return;
        }
        let mut backends: Vec<StorageBackend> = Vec::new();
        for experiment in self.experiments.values() {
            let backend = &experiment.config.checkpoint_storage.backend;
            if !backends.contains(backend) {
                backends.push(backend.clone());
            }
        }
        if backends.is_empty() {
            return;
        }
        self.sweep.running.store(true, Ordering::Release);
        let running = Running(self.sweep.running.clone());
        let grace = self.settings.upload_grace;
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let _running = running;
            for backend in backends {
                sweep_storage(&backend, grace, &handle).await;
            }
        });
    }

    /// The uuids among `uuids` that no checkpoint record names, whatever its state.
    pub(super) fn unrecorded(&self, uuids: Vec<String>) -> MasterResult<Vec<String>> {
        let mut unrecorded = Vec::new();
        for uuid in uuids {
            if self.store.checkpoint_by_uuid(&uuid)?.is_none() {
                unrecorded.push(uuid);
            }
        }
        Ok(unrecorded)
    }
}

/// Deletes the leftovers of one storage; failures are logged and retried by the next sweep.
async fn sweep_storage(backend: &StorageBackend, grace: Duration, handle: &ClusterHandle) {
    let storage = serde_json::to_string(&backend.redacted()).unwrap_or_default();
    let store = match CheckpointStore::new(backend) {
        Ok(store) => store,
        Err(error) => {
            tracing::warn!(%storage, %error, "cannot open checkpoint storage to sweep");
            return;
        }
    };
    let leftovers = match store.list_uncommitted(grace).await {
        Ok(leftovers) if leftovers.is_empty() => return,
        Ok(leftovers) => leftovers,
        Err(error) => {
            tracing::warn!(%storage, %error, "cannot list checkpoint storage to sweep");
            return;
        }
    };
    let leftovers = match handle.unrecorded(leftovers).await {
        Ok(leftovers) => leftovers,
        Err(error) => {
            tracing::warn!(%storage, %error, "cannot check upload leftovers against records");
            return;
        }
    };
    for uuid in leftovers {
        match store.delete(&uuid).await {
            Ok(()) => tracing::info!(%storage, checkpoint = %uuid, "deleted an incomplete upload"),
            Err(error) => {
                tracing::warn!(%storage, checkpoint = %uuid, %error, "cannot delete an incomplete upload; next sweep retries");
            }
        }
    }
}

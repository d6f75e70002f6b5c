//! Fixtures shared by the storage tests.

use std::path::Path;

use super::{CheckpointStore, CommitRequest};
use crate::config::StorageBackend;

/// A store on a shared filesystem rooted at `dir`.
pub fn shared_fs(dir: &Path) -> CheckpointStore {
    CheckpointStore::new(&StorageBackend::SharedFs {
        host_path: dir.display().to_string(),
        storage_path: None,
    })
    .unwrap()
}

/// A commit request for checkpoint `uuid` with fixed trial details.
pub fn request(uuid: &str) -> CommitRequest {
    CommitRequest {
        uuid: uuid.into(),
        experiment_id: 1,
        trial_id: 2,
        allocation_id: "a".into(),
        step: 5,
        hparams: serde_json::json!({"lr": 0.1}),
        metadata: serde_json::json!({"framework": "test"}),
    }
}

//! `metadata.json`: the manifest written last as a checkpoint's commit marker.

use serde::{Deserialize, Serialize};

/// Name of the manifest file inside a checkpoint directory.
pub const MANIFEST_NAME: &str = "metadata.json";

/// One file of a checkpoint, as recorded in its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path relative to the checkpoint directory, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 hash of the content, hex.
    pub blake3: String,
}

/// The content of `metadata.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The checkpoint's uuid.
    pub uuid: String,
    /// Experiment that produced it.
    pub experiment_id: u64,
    /// Trial that produced it.
    pub trial_id: u64,
    /// Allocation that produced it.
    pub allocation_id: String,
    /// Steps completed when it was taken.
    pub step: u64,
    /// The trial's hyperparameters.
    pub hparams: serde_json::Value,
    /// The trial's own metadata (framework, format, ...).
    pub metadata: serde_json::Value,
    /// Every file with its size and checksum.
    pub files: Vec<ManifestFile>,
    /// Unix time in milliseconds of the commit.
    pub committed_ms: i64,
}

impl Manifest {
    /// Total size of the checkpoint's files in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

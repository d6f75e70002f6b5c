//! Commits checkpoints in the background, in the order the trial finished them. A checkpoint
//! handed over by the trial is recorded in `uploads/` first and its report in `committed/` after
//! the commit, so that a restarted daemon finishes the one and replays the other.

use std::sync::Arc;

use baton_common::proto::{
    AgentMessage, CheckpointCompleted, StartAllocation, agent_message::Body,
};
use baton_common::storage::{CheckpointStore, CommitRequest};
use tokio::sync::mpsc;

use super::record::{AllocationDir, list, read_json, write_json};
use crate::harness::UploadJob;
use crate::metrics::{AgentMetrics, Transfer};

/// Records a checkpoint handed over by the trial, before the trial is told it was taken.
pub fn record_pending(dir: &AllocationDir, job: &UploadJob) -> std::io::Result<()> {
    let uploads = dir.path("uploads");
    std::fs::create_dir_all(&uploads)?;
    write_json(&uploads.join(format!("{}.json", job.uuid)), job)
}

/// The checkpoints handed over but not committed by a previous daemon, oldest step first.
pub fn pending(dir: &AllocationDir) -> Vec<UploadJob> {
    let mut jobs: Vec<UploadJob> = list(&dir.path("uploads"), "json")
        .iter()
        .filter_map(|path| read_json(path))
        .collect();
    jobs.sort_by_key(|job| job.step);
    jobs
}

/// Commits each finished checkpoint and reports it; returns the errors of failed commits.
pub async fn commit_uploads(
    metrics: Arc<AgentMetrics>,
    store: CheckpointStore,
    start: StartAllocation,
    dir: AllocationDir,
    mut jobs: mpsc::UnboundedReceiver<UploadJob>,
    outbox: mpsc::UnboundedSender<AgentMessage>,
) -> Vec<String> {
    let hparams: serde_json::Value = serde_json::from_str(&start.hparams_json).unwrap_or_default();
    let mut errors = Vec::new();
    while let Some(job) = jobs.recv().await {
        let pending_file = dir.path("uploads").join(format!("{}.json", job.uuid));
        let request = CommitRequest {
            uuid: job.uuid.clone(),
            experiment_id: start.experiment_id,
            trial_id: start.trial_id,
            allocation_id: start.allocation_id.clone(),
            step: job.step,
            hparams: hparams.clone(),
            metadata: job.metadata,
        };
        let begun = std::time::Instant::now();
        match store.commit(&request, &job.dir).await {
            Ok(manifest) => {
                if !store.writes_in_place() {
                    let _ = tokio::fs::remove_dir_all(&job.dir).await;
                }
                tracing::info!(checkpoint = %job.uuid, step = job.step, bytes = manifest.size_bytes(), elapsed = ?begun.elapsed(), "checkpoint committed");
                metrics.transferred(
                    Transfer::Commit,
                    store.backend_name(),
                    manifest.size_bytes(),
                    begun.elapsed(),
                );
                let report = CheckpointCompleted {
                    allocation_id: start.allocation_id.clone(),
                    uuid: job.uuid,
                    step: job.step,
                    size_bytes: manifest.size_bytes(),
                    metadata_json: serde_json::to_string(&manifest).expect("manifest serializes"),
                };
                if let Err(e) = dir.record_committed(&report) {
                    tracing::warn!(checkpoint = %report.uuid, error = %e, "cannot record a checkpoint report for replay");
                }
                let _ = outbox.send(AgentMessage {
                    body: Some(Body::CheckpointCompleted(report)),
                });
            }
            Err(e) => {
                let error = format!("checkpoint {} at step {}: {e}", job.uuid, job.step);
                tracing::error!(%error, "checkpoint commit failed");
                metrics.transfer_failed(Transfer::Commit, store.backend_name());
                let _ = outbox.send(super::logs::agent_line(&start.allocation_id, &error));
                errors.push(error);
            }
        }
        let _ = std::fs::remove_file(pending_file);
    }
    errors
}

//! Commits checkpoints in the background, in the order the trial finished them.

use baton_common::proto::{
    AgentMessage, CheckpointCompleted, StartAllocation, agent_message::Body,
};
use baton_common::storage::{CheckpointStore, CommitRequest};
use tokio::sync::mpsc;

use crate::harness::UploadJob;

/// Commits each finished checkpoint and reports it; returns the errors of failed commits.
pub async fn commit_uploads(
    store: CheckpointStore,
    start: StartAllocation,
    mut jobs: mpsc::UnboundedReceiver<UploadJob>,
    outbox: mpsc::UnboundedSender<AgentMessage>,
) -> Vec<String> {
    let hparams: serde_json::Value = serde_json::from_str(&start.hparams_json).unwrap_or_default();
    let mut errors = Vec::new();
    while let Some(job) = jobs.recv().await {
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
                let _ = outbox.send(AgentMessage {
                    body: Some(Body::CheckpointCompleted(CheckpointCompleted {
                        allocation_id: start.allocation_id.clone(),
                        uuid: job.uuid,
                        step: job.step,
                        size_bytes: manifest.size_bytes(),
                        metadata_json: serde_json::to_string(&manifest)
                            .expect("manifest serializes"),
                    })),
                });
            }
            Err(e) => {
                let error = format!("checkpoint {} at step {}: {e}", job.uuid, job.step);
                tracing::error!(%error, "checkpoint commit failed");
                let _ = outbox.send(super::logs::agent_line(&start.allocation_id, &error));
                errors.push(error);
            }
        }
    }
    errors
}

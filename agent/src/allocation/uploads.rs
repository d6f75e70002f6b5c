//! Commits checkpoints in the background, in the order the trial finished them. A checkpoint
//! handed over by the trial is recorded in `uploads/` first and its report in `committed/` (or
//! `parts/`) after the commit, so that a restarted daemon finishes the one and replays the other.
//!
//! A part of a distributed trial commits only its own ranks' files, once every rank of the part
//! that ends the checkpoint has (see [`UploadJob::part_ranks`]), and reports them as
//! `CheckpointPartCommitted`; the master writes `metadata.json` once every part is in.

mod part;

use std::path::PathBuf;
use std::sync::Arc;

use baton_common::proto::{
    AgentMessage, CheckpointCompleted, StartAllocation, agent_message::Body,
};
use baton_common::storage::{CheckpointStore, CommitRequest};
use tokio::sync::mpsc;

use super::distributed;
use super::record::{AllocationDir, list, read_json, write_json};
use crate::harness::UploadJob;
use crate::metrics::{AgentMetrics, Transfer};
use part::PartCheckpoints;

/// Records a checkpoint handed over by the trial, before the trial is told it was taken.
pub fn record_pending(dir: &AllocationDir, job: &UploadJob) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.path("uploads"))?;
    write_json(&pending_file(dir, job), job)
}

/// Where a handed-over checkpoint is recorded: one file per rank that ended it.
fn pending_file(dir: &AllocationDir, job: &UploadJob) -> PathBuf {
    let name = match job.local_rank {
        0 => format!("{}.json", job.uuid),
        rank => format!("{}.{rank}.json", job.uuid),
    };
    dir.path("uploads").join(name)
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
    let committer = Committer {
        metrics,
        store,
        start,
        dir,
        outbox,
    };
    let mut parts = PartCheckpoints::default();
    let mut errors = Vec::new();
    while let Some(job) = jobs.recv().await {
        let (result, done) = if !distributed::is_distributed(&committer.start) {
            let done = vec![pending_file(&committer.dir, &job)];
            (committer.commit(job).await, done)
        } else if let Some(ranks) = parts.add(job) {
            let done = ranks
                .iter()
                .map(|job| pending_file(&committer.dir, job))
                .collect();
            (committer.commit_part(ranks).await, done)
        } else {
            continue;
        };
        if let Err(error) = result {
            tracing::error!(%error, "checkpoint commit failed");
            committer
                .metrics
                .transfer_failed(Transfer::Commit, committer.store.backend_name());
            committer.log(&error);
            errors.push(error);
        }
        for file in done {
            let _ = std::fs::remove_file(file);
        }
    }
    for (uuid, ended, expected) in parts.incomplete() {
        committer.log(&format!(
            "checkpoint {uuid} not committed: {ended} of the {expected} ranks of this part ended it before the trial exited"
        ));
    }
    errors
}

/// What committing an allocation's checkpoints needs.
struct Committer {
    metrics: Arc<AgentMetrics>,
    store: CheckpointStore,
    start: StartAllocation,
    dir: AllocationDir,
    outbox: mpsc::UnboundedSender<AgentMessage>,
}

impl Committer {
    /// Commits a one-process trial's checkpoint with its `metadata.json` and reports it.
    async fn commit(&self, job: UploadJob) -> Result<(), String> {
        let start = &self.start;
        let request = CommitRequest {
            uuid: job.uuid.clone(),
            experiment_id: start.experiment_id,
            trial_id: start.trial_id,
            allocation_id: start.allocation_id.clone(),
            step: job.step,
            hparams: serde_json::from_str(&start.hparams_json).unwrap_or_default(),
            metadata: job.metadata,
        };
        let begun = std::time::Instant::now();
        let manifest = self
            .store
            .commit(&request, &job.dir)
            .await
            .map_err(|e| format!("checkpoint {} at step {}: {e}", job.uuid, job.step))?;
        if !self.store.writes_in_place() {
            let _ = tokio::fs::remove_dir_all(&job.dir).await;
        }
        tracing::info!(checkpoint = %job.uuid, step = job.step, bytes = manifest.size_bytes(), elapsed = ?begun.elapsed(), "checkpoint committed");
        self.metrics.transferred(
            Transfer::Commit,
            self.store.backend_name(),
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
        if let Err(e) = self.dir.record_committed(&report) {
            tracing::warn!(checkpoint = %report.uuid, error = %e, "cannot record a checkpoint report for replay");
        }
        let _ = self.outbox.send(AgentMessage {
            body: Some(Body::CheckpointCompleted(report)),
        });
        Ok(())
    }

    /// Sends an agent line to the trial's log.
    fn log(&self, text: &str) {
        let _ = self
            .outbox
            .send(super::logs::agent_line(&self.start.allocation_id, text));
    }
}

#[cfg(test)]
mod tests {
    use baton_common::storage::{MANIFEST_NAME, ManifestFile};

    use super::*;

    #[tokio::test]
    async fn a_part_commits_its_ranks_files_without_a_manifest_and_reports_them() {
        let work = tempfile::tempdir().unwrap();
        let storage = tempfile::tempdir().unwrap();
        let start = StartAllocation {
            allocation_id: "a1".into(),
            world_size: 4,
            local_world_size: 2,
            part_index: 1,
            part_count: 2,
            rank_offset: 2,
            storage_json: serde_json::json!({"type": "shared_fs", "host_path": storage.path()})
                .to_string(),
            ..Default::default()
        };
        let store = CheckpointStore::from_storage_json(&start.storage_json)
            .unwrap()
            .always_staged();
        let dir = AllocationDir::new(work.path(), "a1");
        let staged = store.write_dir("u1", &dir.path("staging"));
        std::fs::create_dir_all(&staged).unwrap();
        let (jobs, received) = mpsc::unbounded_channel();
        for local_rank in [1, 0] {
            std::fs::write(staged.join(format!("rank{local_rank}.bin")), b"weights").unwrap();
            let job = UploadJob {
                uuid: "u1".into(),
                step: 7,
                dir: staged.clone(),
                metadata: serde_json::json!({}),
                part_ranks: 2,
                local_rank,
            };
            record_pending(&dir, &job).unwrap();
            jobs.send(job).unwrap();
        }
        drop(jobs);
        let (outbox, mut reports) = mpsc::unbounded_channel();
        let metrics = Arc::new(AgentMetrics::new(&[]));
        let errors = commit_uploads(metrics, store, start, dir.clone(), received, outbox).await;
        assert!(errors.is_empty(), "{errors:?}");
        let Some(Body::CheckpointPart(report)) = reports.recv().await.unwrap().body else {
            panic!("a checkpoint part report");
        };
        assert_eq!((report.part_index, report.step), (1, 7));
        assert_eq!(report.metadata_json, "");
        let files: Vec<ManifestFile> = serde_json::from_str(&report.files_json).unwrap();
        let paths: Vec<&str> = files.iter().map(|file| file.path.as_str()).collect();
        assert_eq!(paths, ["rank0.bin", "rank1.bin"]);
        assert!(storage.path().join("u1/rank1.bin").is_file());
        assert!(!storage.path().join("u1").join(MANIFEST_NAME).exists());
        assert!(!staged.exists());
        assert!(pending(&dir).is_empty());
        assert_eq!(dir.committed_parts(), [report]);
    }
}

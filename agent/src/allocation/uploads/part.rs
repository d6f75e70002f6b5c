//! A distributed trial part's checkpoint: the jobs of its ranks, gathered by uuid, then its files
//! committed without `metadata.json` and reported as `CheckpointPartCommitted`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use baton_common::proto::{AgentMessage, CheckpointPartCommitted, agent_message::Body};

use super::Committer;
use crate::harness::UploadJob;
use crate::metrics::Transfer;

/// Rank jobs of the checkpoints a part has not fully ended yet, by uuid and local rank.
#[derive(Default)]
pub struct PartCheckpoints {
    open: HashMap<String, BTreeMap<u32, UploadJob>>,
}

impl PartCheckpoints {
    /// Adds one rank's job; returns the part's jobs, by local rank, once all of them are in.
    pub fn add(&mut self, job: UploadJob) -> Option<Vec<UploadJob>> {
        let expected = job.part_ranks.max(1) as usize;
        let uuid = job.uuid.clone();
        let ranks = self.open.entry(uuid.clone()).or_default();
        ranks.insert(job.local_rank, job);
        if ranks.len() < expected {
            return None;
        }
        self.open
            .remove(&uuid)
            .map(|ranks| ranks.into_values().collect())
    }

    /// The checkpoints still open: uuid, jobs in, jobs expected.
    pub fn incomplete(self) -> impl Iterator<Item = (String, usize, u32)> {
        self.open.into_iter().map(|(uuid, ranks)| {
            let expected = ranks.values().map(|job| job.part_ranks).max().unwrap_or(1);
            (uuid, ranks.len(), expected)
        })
    }
}

/// The directory holding every rank's files: the one they share, or the uuid's staging directory
/// that holds theirs.
fn part_dir(committer: &Committer, ranks: &[UploadJob]) -> Result<PathBuf, String> {
    let first = &ranks[0];
    if ranks.iter().all(|job| job.dir == first.dir) {
        return Ok(first.dir.clone());
    }
    let staged = committer
        .store
        .write_dir(&first.uuid, &committer.dir.path("staging"));
    match ranks.iter().find(|job| !job.dir.starts_with(&staged)) {
        Some(outside) => Err(format!(
            "checkpoint {}: the ranks wrote into different directories, {} outside {}",
            first.uuid,
            outside.dir.display(),
            staged.display()
        )),
        None => Ok(staged),
    }
}

impl Committer {
    /// Commits the files of a part's checkpoint (no `metadata.json`) and reports them; the chief's
    /// part also reports the trial's metadata, from its rank 0.
    pub(super) async fn commit_part(&self, ranks: Vec<UploadJob>) -> Result<(), String> {
        let first = &ranks[0];
        let (uuid, step) = (first.uuid.clone(), first.step);
        let failed = |e: String| format!("checkpoint {uuid} at step {step}: {e}");
        let dir = part_dir(self, &ranks).map_err(failed)?;
        let begun = std::time::Instant::now();
        let files = self
            .store
            .commit_part(&uuid, &dir)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !self.store.writes_in_place() {
            let _ = tokio::fs::remove_dir_all(&dir).await;
        }
        let bytes = files.iter().map(|file| file.size).sum();
        let part_index = self.start.part_index;
        tracing::info!(checkpoint = %uuid, step, part = part_index, bytes, elapsed = ?begun.elapsed(), "checkpoint part committed");
        self.metrics.transferred(
            Transfer::Commit,
            self.store.backend_name(),
            bytes,
            begun.elapsed(),
        );
        let metadata_json = match part_index {
            0 => first.metadata.to_string(),
            _ => String::new(),
        };
        let report = CheckpointPartCommitted {
            allocation_id: self.start.allocation_id.clone(),
            uuid,
            step,
            part_index,
            files_json: serde_json::to_string(&files).expect("files serialize"),
            metadata_json,
        };
        if let Err(e) = self.dir.record_part(&report) {
            tracing::warn!(checkpoint = %report.uuid, error = %e, "cannot record a checkpoint part report for replay");
        }
        let _ = self.outbox.send(AgentMessage {
            body: Some(Body::CheckpointPart(report)),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(uuid: &str, local_rank: u32, part_ranks: u32) -> UploadJob {
        UploadJob {
            uuid: uuid.into(),
            step: 5,
            dir: PathBuf::from("/staging").join(uuid),
            metadata: serde_json::json!({"rank": local_rank}),
            part_ranks,
            local_rank,
        }
    }

    #[test]
    fn a_part_is_complete_once_each_of_its_ranks_ended_it() {
        let mut parts = PartCheckpoints::default();
        assert_eq!(parts.add(job("one", 0, 1)).unwrap().len(), 1);
        assert!(parts.add(job("two", 1, 2)).is_none());
        assert!(parts.add(job("two", 1, 2)).is_none());
        assert!(parts.add(job("three", 0, 2)).is_none());
        let ranks = parts.add(job("two", 0, 2)).unwrap();
        assert_eq!(
            ranks.iter().map(|job| job.local_rank).collect::<Vec<_>>(),
            [0, 1]
        );
        assert_eq!(
            parts.incomplete().collect::<Vec<_>>(),
            [("three".to_string(), 1, 2)]
        );
    }
}

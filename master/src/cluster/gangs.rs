//! Allocations that span several agents (distributed trials): one part per agent, part 0 the
//! chief whose id is the allocation's. Each part is a live allocation of its own to the agent
//! machinery (start, desired state, fencing, exit); this module keeps them together: the other
//! parts start once the chief's agent chose the rendezvous ports, a stop of one part stops all,
//! the trial moves on once every part has ended, and a checkpoint is committed (its
//! `metadata.json` written by the master) only once every part's files are in storage.

use std::collections::{BTreeMap, BTreeSet};

use baton_common::proto::{
    CheckpointCompleted, CheckpointPartCommitted, MasterMessage, RendezvousReady, StartAllocation,
    master_message,
};
use baton_common::storage::{CheckpointStore, Manifest, ManifestFile};

use super::desired::{Desired, KillReason};
use super::lifecycle::Outcome;
use super::state::Cluster;
use crate::store::now_ms;

/// What the master keeps of a distributed allocation besides its parts' own records.
#[derive(Debug, Default)]
pub struct Gang {
    /// Part ids by index; the chief's (index 0) is the allocation's id.
    pub parts: Vec<String>,
    /// Starts of the other parts, with their agents, sent once the rendezvous is known.
    pub waiting_starts: Vec<(String, StartAllocation)>,
    /// The worst way a part has ended so far.
    pub ended: Option<PartEnd>,
    /// Checkpoints some of whose parts are committed, by uuid.
    pub checkpoints: BTreeMap<String, GangCheckpoint>,
    /// Checkpoints whose `metadata.json` is being written.
    pub writing: BTreeSet<String>,
    /// Every part has ended; the trial moves on once no manifest is being written.
    pub finished: bool,
}

/// How an allocation, or one part of it, ended.
#[derive(Debug, Clone)]
pub struct PartEnd {
    /// What it means for the trial.
    pub outcome: Outcome,
    /// Details.
    pub message: String,
    /// What the master wanted of it.
    pub desired: Desired,
    /// Since when.
    pub desired_since: std::time::Instant,
    /// The last step it reported.
    pub end_step: u64,
}

/// The parts of one checkpoint received so far.
#[derive(Debug, Default)]
pub struct GangCheckpoint {
    /// Steps completed when it was taken.
    pub step: u64,
    /// Files of each part, by part index.
    pub files: BTreeMap<u32, Vec<ManifestFile>>,
    /// The trial's metadata, from the chief's part.
    pub metadata: serde_json::Value,
}

/// How bad an outcome is for a distributed allocation: the worst part's outcome is the whole's.
fn severity(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Completed => 0,
        Outcome::Requeue => 1,
        Outcome::Canceled => 2,
        Outcome::Failed => 3,
    }
}

impl Gang {
    /// Notes a part's end, keeping the worst, with the furthest step any part reported.
    pub fn note_end(&mut self, mut end: PartEnd) {
        let furthest = self.ended.as_ref().map_or(0, |e| e.end_step);
        end.end_step = end.end_step.max(furthest);
        match &mut self.ended {
            Some(worst) if severity(end.outcome) <= severity(worst.outcome) => {
                worst.end_step = end.end_step;
            }
            _ => self.ended = Some(end),
        }
    }
}

impl Cluster {
    /// Every live part of the allocation `allocation_id` belongs to (itself alone when it runs on
    /// one agent).
    pub(super) fn parts_of(&self, allocation_id: &str) -> Vec<String> {
        let gang = if self.gangs.contains_key(allocation_id) {
            allocation_id.to_string()
        } else {
            self.allocations
                .get(allocation_id)
                .map(|live| live.row.gang.clone())
                .unwrap_or_default()
        };
        match self.gangs.get(&gang) {
            Some(g) if !gang.is_empty() => g
                .parts
                .iter()
                .filter(|p| self.allocations.contains_key(*p))
                .cloned()
                .collect(),
            _ => vec![allocation_id.to_string()],
        }
    }

    /// Notes a part's end; stops the other parts unless it ended as asked (suspended on a
    /// suspend request, or completed). Returns the allocation's end once no part is left and no
    /// manifest is being written.
    pub(super) fn gang_part_ended(
        &mut self,
        gang_id: &str,
        end: PartEnd,
        as_asked: bool,
    ) -> Option<PartEnd> {
        let gang = self.gangs.get_mut(gang_id)?;
        gang.note_end(end);
        let running: Vec<String> = gang
            .parts
            .iter()
            .filter(|p| self.allocations.contains_key(*p))
            .cloned()
            .collect();
        if let Some(first) = running.first() {
            if !as_asked {
                self.set_desired(&first.clone(), Desired::Kill(KillReason::PartEnded));
            }
            return None;
        }
        let gang = self.gangs.get_mut(gang_id)?;
        gang.waiting_starts.clear();
        if !gang.writing.is_empty() {
            gang.finished = true;
            return None;
        }
        self.gangs.remove(gang_id).and_then(|g| g.ended)
    }

    /// The chief's agent chose the rendezvous ports: starts the other parts with them.
    pub(super) fn rendezvous_ready(&mut self, agent_id: &str, ready: RendezvousReady) {
        let Some(live) = self.allocations.get(&ready.allocation_id) else {
            return;
        };
        if live.row.agent_id != agent_id || live.row.part_index != 0 || live.row.gang.is_empty() {
            return;
        }
        let address = self
            .agents
            .get(agent_id)
            .map(|a| a.address.clone())
            .unwrap_or_default();
        let gang_id = live.row.gang.clone();
        let Some(gang) = self.gangs.get_mut(&gang_id) else {
            return;
        };
        let starts = std::mem::take(&mut gang.waiting_starts);
        tracing::info!(allocation = %gang_id, %address, port = ready.rendezvous_port, "rendezvous ready; starting the other parts");
        for (part_agent, mut start) in starts {
            start.chief_address = address.clone();
            start.rendezvous_port = ready.rendezvous_port;
            start.sync_port = ready.sync_port;
            let part_id = start.allocation_id.clone();
            let sent = self.agents.get_mut(&part_agent).and_then(|agent| {
                agent.send(MasterMessage {
                    body: Some(master_message::Body::Start(start)),
                })
            });
            if let Some(live) = self.allocations.get_mut(&part_id) {
                live.start_sent = sent;
                live.held = false;
            }
        }
    }

    /// Notes one part of a checkpoint; once every part is in, writes its `metadata.json`.
    pub(super) fn checkpoint_part(&mut self, trial_id: u64, part: CheckpointPartCommitted) {
        let Some(gang_id) = self
            .allocations
            .get(&part.allocation_id)
            .map(|live| live.row.gang.clone())
            .filter(|g| !g.is_empty())
        else {
            tracing::warn!(allocation = %part.allocation_id, "checkpoint part from an allocation on one agent ignored");
            return;
        };
        let files: Vec<ManifestFile> = match serde_json::from_str(&part.files_json) {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!(checkpoint = %part.uuid, error = %e, "unreadable checkpoint part ignored");
                return;
            }
        };
        let Some(gang) = self.gangs.get_mut(&gang_id) else {
            return;
        };
        if gang.writing.contains(&part.uuid) {
            return;
        }
        let entry = gang.checkpoints.entry(part.uuid.clone()).or_default();
        entry.step = part.step;
        entry.files.insert(part.part_index, files);
        if part.part_index == 0 {
            entry.metadata = serde_json::from_str(&part.metadata_json).unwrap_or_default();
        }
        if entry.files.len() < gang.parts.len() {
            return;
        }
        let complete = gang.checkpoints.remove(&part.uuid).expect("entry exists");
        match self.gang_manifest(trial_id, &gang_id, &part.uuid, complete) {
            Ok(manifest) => self.spawn_manifest_write(trial_id, gang_id, manifest),
            Err(reason) => {
                tracing::warn!(checkpoint = %part.uuid, %reason, "checkpoint of a distributed allocation refused; it is never used");
            }
        }
    }

    /// The manifest of a checkpoint whose every part is in; refuses a file two parts both wrote.
    fn gang_manifest(
        &self,
        trial_id: u64,
        gang_id: &str,
        uuid: &str,
        checkpoint: GangCheckpoint,
    ) -> Result<Manifest, String> {
        let trial = self.trials.get(&trial_id).ok_or("its trial is gone")?;
        let mut files: Vec<ManifestFile> = checkpoint.files.into_values().flatten().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        if let Some(pair) = files.windows(2).find(|w| w[0].path == w[1].path) {
            return Err(format!("two parts both wrote {}", pair[0].path));
        }
        Ok(Manifest {
            uuid: uuid.to_string(),
            experiment_id: trial.row.experiment_id,
            trial_id,
            allocation_id: gang_id.to_string(),
            step: checkpoint.step,
            hparams: serde_json::from_str(&trial.row.hparams_json).unwrap_or_default(),
            metadata: checkpoint.metadata,
            files,
            committed_ms: now_ms(),
        })
    }

    /// Writes a distributed checkpoint's `metadata.json` off the cluster task.
    fn spawn_manifest_write(&mut self, trial_id: u64, gang_id: String, manifest: Manifest) {
        let Some(backend) = self
            .trials
            .get(&trial_id)
            .and_then(|t| self.experiments.get(&t.row.experiment_id))
            .map(|e| e.config.checkpoint_storage.backend.clone())
        else {
            return;
        };
        if let Some(gang) = self.gangs.get_mut(&gang_id) {
            gang.writing.insert(manifest.uuid.clone());
        }
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let written = match CheckpointStore::new(&backend) {
                Ok(store) => store
                    .write_manifest(&manifest)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let _ = handle
                .gang_checkpoint_written(trial_id, gang_id, manifest, written)
                .await;
        });
    }

    /// A distributed checkpoint's `metadata.json` is written (or failed): records it, and ends the
    /// allocation if it was only waiting for this.
    pub(super) fn gang_checkpoint_written(
        &mut self,
        trial_id: u64,
        gang_id: &str,
        manifest: Manifest,
        written: Result<(), String>,
    ) {
        match written {
            Ok(()) => {
                let report = CheckpointCompleted {
                    allocation_id: gang_id.to_string(),
                    uuid: manifest.uuid.clone(),
                    step: manifest.step,
                    size_bytes: manifest.size_bytes(),
                    metadata_json: serde_json::to_string(&manifest).expect("manifest serializes"),
                };
                if let Err(e) = self.record_checkpoint(trial_id, report) {
                    tracing::error!(error = %e, "cannot record checkpoint");
                }
            }
            Err(error) => {
                tracing::warn!(checkpoint = %manifest.uuid, %error, "cannot write the metadata.json of a distributed checkpoint; it is never used");
            }
        }
        let Some(gang) = self.gangs.get_mut(gang_id) else {
            return;
        };
        gang.writing.remove(&manifest.uuid);
        if gang.finished && gang.writing.is_empty() {
            let ended = self.gangs.remove(gang_id).and_then(|g| g.ended);
            if let Some(end) = ended {
                self.finish_allocation(trial_id, end);
            }
        }
    }
}

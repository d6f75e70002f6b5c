//! Before the trial runs: record the start, write the context, restore the checkpoint, launch.

use std::path::{Path, PathBuf};

use baton_common::proto::{AgentMessage, StartAllocation};
use baton_common::storage::{CheckpointStore, Manifest, safe_relative_path};
use tokio::sync::mpsc;

use super::logs::agent_line;
use super::process::TrialProcess;
use super::record::AllocationDir;
use super::{AllocationEnv, distributed};
use crate::metrics::{AgentMetrics, Transfer};

/// The checkpoint a trial resumes from, as far as its restore has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// A fresh start: nothing to restore.
    Fresh,
    /// Being restored into this local directory while the trial starts.
    Restoring(String),
    /// Restored into this local directory.
    Restored(String),
}

impl Resume {
    /// Where a trial resuming from `start`'s checkpoint finds it, restored or not.
    pub fn of(start: &StartAllocation, dir: &AllocationDir) -> Self {
        if start.latest_checkpoint_uuid.is_empty() {
            return Resume::Fresh;
        }
        let path = restore_path(start, dir).display().to_string();
        if dir.path(RESTORED_MARKER).exists() {
            Resume::Restored(path)
        } else {
            Resume::Restoring(path)
        }
    }

    /// The local checkpoint directory, if any.
    pub fn path(&self) -> Option<&str> {
        match self {
            Resume::Fresh => None,
            Resume::Restoring(path) | Resume::Restored(path) => Some(path),
        }
    }
}

/// A file in the allocation's directory that says its checkpoint is restored and verified.
const RESTORED_MARKER: &str = "restored";

/// Prepares the allocation's directory and starts its trial at once, before its checkpoint is
/// restored (the harness holds the trial's `init` until it is); returns the process and what it
/// resumes from. A distributed trial's chief part gets its rendezvous ports here.
pub async fn launch(
    start: &mut StartAllocation,
    env: &AllocationEnv,
    dir: &AllocationDir,
    outbox: &mpsc::UnboundedSender<AgentMessage>,
) -> Result<(TrialProcess, Resume), String> {
    distributed::choose_ports(start)?;
    dir.write_start(start).map_err(|e| {
        format!(
            "cannot record the allocation in {}: {e}",
            dir.root.display()
        )
    })?;
    distributed::announce(start, outbox);
    write_context(start, &dir.path("context")).await?;
    let resume = Resume::of(start, dir);
    let socket = socket_path(&env.work_dir, &start.allocation_id);
    let process = TrialProcess::spawn(start, env, dir, &socket, resume.path())?;
    Ok((process, resume))
}

/// Where `start`'s checkpoint is restored to.
fn restore_path(start: &StartAllocation, dir: &AllocationDir) -> PathBuf {
    dir.path("restore").join(&start.latest_checkpoint_uuid)
}

/// Writes the experiment's context files, refusing paths that escape the directory.
async fn write_context(start: &StartAllocation, context_dir: &Path) -> Result<(), String> {
    tokio::fs::create_dir_all(context_dir)
        .await
        .map_err(|e| format!("cannot create {}: {e}", context_dir.display()))?;
    for file in start.context.iter().flat_map(|c| c.files.iter()) {
        let relative = safe_relative_path("context", &file.path).map_err(|e| e.to_string())?;
        let path = context_dir.join(relative);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        tokio::fs::write(&path, &file.content)
            .await
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        if file.mode != 0 {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::Permissions::from_mode(file.mode & 0o777);
            tokio::fs::set_permissions(&path, mode)
                .await
                .map_err(|e| format!("cannot chmod {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// Downloads and verifies the checkpoint `start` resumes from, by the master's record of its
/// files, then marks the allocation restored.
pub async fn restore_checkpoint(
    metrics: &AgentMetrics,
    start: &StartAllocation,
    dir: &AllocationDir,
    outbox: &mpsc::UnboundedSender<AgentMessage>,
) -> Result<(), String> {
    let store =
        CheckpointStore::from_storage_json(&start.storage_json).map_err(|e| e.to_string())?;
    let restored = download(metrics, start, &store, dir, outbox).await;
    if restored.is_err() {
        metrics.transfer_failed(Transfer::Restore, store.backend_name());
    }
    restored?;
    std::fs::write(dir.path(RESTORED_MARKER), b"")
        .map_err(|e| format!("cannot record the restore in {}: {e}", dir.root.display()))
}

async fn download(
    metrics: &AgentMetrics,
    start: &StartAllocation,
    store: &CheckpointStore,
    dir: &AllocationDir,
    outbox: &mpsc::UnboundedSender<AgentMessage>,
) -> Result<(), String> {
    let uuid = &start.latest_checkpoint_uuid;
    let target = restore_path(start, dir);
    let begun = std::time::Instant::now();
    let manifest: Manifest = serde_json::from_str(&start.latest_checkpoint_metadata_json)
        .ok()
        .filter(|m: &Manifest| m.uuid == *uuid)
        .ok_or_else(|| {
            format!("cannot restore checkpoint {uuid}: the master sent no readable record of it")
        })?;
    store
        .download_recorded(&manifest, &target, &|_| {})
        .await
        .map_err(|e| format!("cannot restore checkpoint {uuid}: {e}"))?;
    metrics.transferred(
        Transfer::Restore,
        store.backend_name(),
        manifest.size_bytes(),
        begun.elapsed(),
    );
    let _ = outbox.send(agent_line(
        &start.allocation_id,
        &format!(
            "restored checkpoint {uuid} (step {}, {} bytes) in {:?}",
            manifest.step,
            manifest.size_bytes(),
            begun.elapsed()
        ),
    ));
    Ok(())
}

/// The harness socket path, kept short enough for `sun_path`.
pub fn socket_path(work_dir: &Path, allocation_id: &str) -> PathBuf {
    let preferred = work_dir
        .join("sockets")
        .join(format!("{allocation_id}.sock"));
    if preferred.as_os_str().len() < 100 {
        let _ = std::fs::create_dir_all(work_dir.join("sockets"));
        preferred
    } else {
        std::env::temp_dir().join(format!("baton-{allocation_id}.sock"))
    }
}

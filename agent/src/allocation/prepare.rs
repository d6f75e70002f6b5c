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

/// Prepares the allocation's directory and starts its trial; returns the process and the local
/// checkpoint it restores from. A distributed trial's chief part gets its rendezvous ports here.
pub async fn launch(
    start: &mut StartAllocation,
    env: &AllocationEnv,
    dir: &AllocationDir,
    outbox: &mpsc::UnboundedSender<AgentMessage>,
) -> Result<(TrialProcess, Option<String>), String> {
    distributed::choose_ports(start)?;
    dir.write_start(start).map_err(|e| {
        format!(
            "cannot record the allocation in {}: {e}",
            dir.root.display()
        )
    })?;
    distributed::announce(start, outbox);
    write_context(start, &dir.path("context")).await?;
    let store =
        CheckpointStore::from_storage_json(&start.storage_json).map_err(|e| e.to_string())?;
    let restored = restore_checkpoint(&env.metrics, start, &store, dir, outbox)
        .await
        .inspect_err(|_| {
            env.metrics
                .transfer_failed(Transfer::Restore, store.backend_name())
        })?;
    let socket = socket_path(&env.work_dir, &start.allocation_id);
    let process = TrialProcess::spawn(start, env, dir, &socket, restored.as_deref())?;
    Ok((process, restored))
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

/// Downloads and verifies the checkpoint to resume from, by the master's record of its files;
/// None on a fresh start.
async fn restore_checkpoint(
    metrics: &AgentMetrics,
    start: &StartAllocation,
    store: &CheckpointStore,
    dir: &AllocationDir,
    outbox: &mpsc::UnboundedSender<AgentMessage>,
) -> Result<Option<String>, String> {
    if start.latest_checkpoint_uuid.is_empty() {
        return Ok(None);
    }
    let uuid = &start.latest_checkpoint_uuid;
    let target = dir.path("restore").join(uuid);
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
    Ok(Some(target.display().to_string()))
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

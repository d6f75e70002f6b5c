//! One allocation: prepare its directory, restore its checkpoint, run the trial, commit its
//! checkpoints, and report how it ended.

mod logs;
mod process;
mod uploads;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use baton_common::proto::{
    AgentMessage, AllocationExited, AllocationPhase, AllocationStarted, AllocationStatus, ExitKind,
    StartAllocation, agent_message::Body,
};
use baton_common::storage::{CheckpointStore, safe_relative_path};
use serde_json::json;
use tokio::sync::mpsc;

use crate::harness::Harness;
use crate::policy::StepTracker;
use process::{TrialExit, TrialProcess};

/// A command from the master to a running allocation.
#[derive(Debug, Clone)]
pub enum Control {
    /// Checkpoint at the next step boundary, then stop.
    Suspend,
    /// Kill now.
    Kill,
}

/// What the agent's session sees of a running allocation: its phase and step, for heartbeats.
#[derive(Clone)]
pub struct AllocationProgress {
    phase: Arc<AtomicI32>,
    /// Step bookkeeping, shared with the harness socket.
    pub tracker: Arc<Mutex<StepTracker>>,
}

impl AllocationProgress {
    /// Progress of an allocation about to start.
    pub fn new(start: &StartAllocation) -> Self {
        Self {
            phase: Arc::new(AtomicI32::new(AllocationPhase::Starting as i32)),
            tracker: Arc::new(Mutex::new(StepTracker::new(
                start.policy.unwrap_or_default(),
                start.latest_checkpoint_step,
            ))),
        }
    }

    fn set(&self, phase: AllocationPhase) {
        self.phase.store(phase as i32, Ordering::Relaxed);
    }

    /// The allocation as heartbeats report it.
    pub fn status(&self, allocation_id: &str) -> AllocationStatus {
        let tracker = self.tracker.lock().expect("tracker lock");
        let mut phase = AllocationPhase::try_from(self.phase.load(Ordering::Relaxed))
            .unwrap_or(AllocationPhase::Unspecified);
        if phase == AllocationPhase::Running && tracker.suspend_requested() {
            phase = AllocationPhase::Suspending;
        }
        AllocationStatus {
            allocation_id: allocation_id.to_string(),
            phase: phase as i32,
            last_step: tracker.last_step,
        }
    }
}

/// Where an allocation runs and what it needs from the agent.
#[derive(Debug, Clone)]
pub struct AllocationEnv {
    /// The agent's work directory.
    pub work_dir: PathBuf,
    /// Directory holding the `baton` Python package.
    pub harness_path: PathBuf,
    /// Seconds between SIGTERM and SIGKILL.
    pub kill_grace: std::time::Duration,
}

/// Runs an allocation to its end and reports `AllocationExited` (after its uploads finish).
pub async fn run_allocation(
    start: StartAllocation,
    env: AllocationEnv,
    progress: AllocationProgress,
    control: mpsc::UnboundedReceiver<Control>,
    outbox: mpsc::UnboundedSender<AgentMessage>,
) {
    let allocation_id = start.allocation_id.clone();
    let dir = env.work_dir.join("allocations").join(&allocation_id);
    let exited = match run(&start, &env, &dir, &progress, control, &outbox).await {
        Ok(exited) => exited,
        Err(message) => {
            tracing::error!(allocation = %allocation_id, %message, "allocation failed to start");
            send_log(&outbox, &allocation_id, &message);
            AllocationExited {
                allocation_id: allocation_id.clone(),
                kind: ExitKind::Failed as i32,
                exit_code: -1,
                end_step: start.latest_checkpoint_step,
                message,
            }
        }
    };
    tracing::info!(allocation = %allocation_id, kind = ?exited.kind(), code = exited.exit_code, "allocation exited");
    let _ = outbox.send(AgentMessage {
        body: Some(Body::AllocationExited(exited)),
    });
    let _ = tokio::fs::remove_dir_all(&dir).await;
}

async fn run(
    start: &StartAllocation,
    env: &AllocationEnv,
    dir: &Path,
    progress: &AllocationProgress,
    control: mpsc::UnboundedReceiver<Control>,
    outbox: &mpsc::UnboundedSender<AgentMessage>,
) -> Result<AllocationExited, String> {
    let tracker = progress.tracker.clone();
    let context_dir = dir.join("context");
    write_context(start, &context_dir).await?;
    let store =
        CheckpointStore::from_storage_json(&start.storage_json).map_err(|e| e.to_string())?;
    let restored = restore_checkpoint(start, &store, dir, outbox).await?;
    let (uploads_tx, uploads_rx) = mpsc::unbounded_channel();
    let uploader = tokio::spawn(uploads::commit_uploads(
        store.clone(),
        start.clone(),
        uploads_rx,
        outbox.clone(),
    ));
    let init_reply = json!({
        "trial_id": start.trial_id,
        "experiment_id": start.experiment_id,
        "allocation_id": start.allocation_id,
        "hparams": serde_json::from_str::<serde_json::Value>(&start.hparams_json).unwrap_or_default(),
        "max_length": tracker.lock().expect("tracker lock").max_length(),
        "start_step": start.latest_checkpoint_step,
        "latest_checkpoint": restored,
    });
    let harness = Arc::new(Harness::new(
        init_reply,
        tracker.clone(),
        store,
        dir.join("staging"),
        start.allocation_id.clone(),
        outbox.clone(),
        uploads_tx,
    ));
    let socket = socket_path(&env.work_dir, &start.allocation_id);
    let _ = std::fs::remove_file(&socket);
    let listener = tokio::net::UnixListener::bind(&socket)
        .map_err(|e| format!("cannot open harness socket {}: {e}", socket.display()))?;
    let harness_task = tokio::spawn(harness.serve(listener));
    let process = TrialProcess::spawn(
        start,
        env,
        &context_dir,
        &socket,
        restored.as_deref(),
        outbox,
    )?;
    progress.set(AllocationPhase::Running);
    let _ = outbox.send(AgentMessage {
        body: Some(Body::AllocationStarted(AllocationStarted {
            allocation_id: start.allocation_id.clone(),
            start_step: start.latest_checkpoint_step,
        })),
    });
    let preemption_timeout =
        std::time::Duration::from_millis(start.policy.map_or(60_000, |p| p.preemption_timeout_ms));
    let exit = process
        .supervise(control, tracker.clone(), preemption_timeout, env.kill_grace)
        .await;
    progress.set(AllocationPhase::Exiting);
    harness_task.abort();
    let _ = std::fs::remove_file(&socket);
    let upload_errors = uploader.await.unwrap_or_default();
    let tracker = tracker.lock().expect("tracker lock");
    let (kind, mut message) = match exit {
        TrialExit::Killed => (ExitKind::Killed, "killed on request".to_string()),
        TrialExit::KilledAfterTimeout => (
            ExitKind::KilledAfterTimeout,
            format!("did not stop within the preemption timeout of {preemption_timeout:?}"),
        ),
        TrialExit::Exited(0) if tracker.stopped_for_suspend => (ExitKind::Suspended, String::new()),
        TrialExit::Exited(0) => (ExitKind::Completed, String::new()),
        TrialExit::Exited(code) if code < 0 => {
            (ExitKind::Failed, format!("killed by signal {}", -code))
        }
        TrialExit::Exited(127) => (
            ExitKind::Failed,
            format!(
                "cannot start the entrypoint {:?}: command not found (exit status 127)",
                start.entrypoint
            ),
        ),
        TrialExit::Exited(126) => (
            ExitKind::Failed,
            format!(
                "cannot start the entrypoint {:?}: not executable (exit status 126)",
                start.entrypoint
            ),
        ),
        TrialExit::Exited(code) => (ExitKind::Failed, format!("exited with status {code}")),
    };
    if !upload_errors.is_empty() {
        message = format!(
            "{message}; checkpoint upload failed: {}",
            upload_errors.join("; ")
        )
        .trim_start_matches("; ")
        .to_string();
    }
    Ok(AllocationExited {
        allocation_id: start.allocation_id.clone(),
        kind: kind as i32,
        exit_code: exit.code(),
        end_step: tracker.last_step,
        message,
    })
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

/// Downloads and verifies the checkpoint to resume from; None on a fresh start.
async fn restore_checkpoint(
    start: &StartAllocation,
    store: &CheckpointStore,
    dir: &Path,
    outbox: &mpsc::UnboundedSender<AgentMessage>,
) -> Result<Option<String>, String> {
    if start.latest_checkpoint_uuid.is_empty() {
        return Ok(None);
    }
    let uuid = &start.latest_checkpoint_uuid;
    let target = dir.join("restore").join(uuid);
    let begun = std::time::Instant::now();
    let manifest = store
        .download(uuid, &target)
        .await
        .map_err(|e| format!("cannot restore checkpoint {uuid}: {e}"))?;
    send_log(
        outbox,
        &start.allocation_id,
        &format!(
            "restored checkpoint {uuid} (step {}, {} bytes) in {:?}",
            manifest.step,
            manifest.size_bytes(),
            begun.elapsed()
        ),
    );
    Ok(Some(target.display().to_string()))
}

/// The harness socket path, kept short enough for `sun_path`.
fn socket_path(work_dir: &Path, allocation_id: &str) -> PathBuf {
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

/// Sends one agent-side log line for an allocation.
fn send_log(outbox: &mpsc::UnboundedSender<AgentMessage>, allocation_id: &str, text: &str) {
    let _ = outbox.send(logs::agent_line(allocation_id, text));
}

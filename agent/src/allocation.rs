//! One allocation: prepare its directory, restore its checkpoint, run the trial under its
//! supervisor (or adopt one a previous daemon started), commit its checkpoints, and report how it
//! ended.

mod distributed;
mod logs;
mod prepare;
mod process;
pub mod record;
mod running;
mod uploads;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_common::proto::{
    AgentMessage, AllocationExited, AllocationPhase, AllocationStatus, ExitKind, StartAllocation,
    agent_message::Body,
};
use tokio::sync::mpsc;

use crate::metrics::AgentMetrics;
use crate::policy::StepTracker;
use process::TrialProcess;
use record::AllocationDir;

pub use logs::agent_line;
pub use uploads::record_pending as record_pending_upload;

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
    self_fenced: Arc<AtomicBool>,
    /// Step bookkeeping, shared with the harness socket.
    pub tracker: Arc<Mutex<StepTracker>>,
}

impl AllocationProgress {
    /// Progress of an allocation about to start; its step bookkeeping is kept in `dir`.
    pub fn new(start: &StartAllocation, dir: &AllocationDir) -> Self {
        Self {
            phase: Arc::new(AtomicI32::new(AllocationPhase::Starting as i32)),
            self_fenced: Arc::new(AtomicBool::new(false)),
            tracker: Arc::new(Mutex::new(StepTracker::new(
                start.policy.unwrap_or_default(),
                start.latest_checkpoint_step,
                Some(dir.path("tracker.json")),
            ))),
        }
    }

    /// Notes that the agent stopped this allocation itself, cut off from the master.
    pub fn mark_self_fenced(&self) {
        self.self_fenced.store(true, Ordering::Relaxed);
    }

    /// Whether the agent stopped this allocation itself.
    pub fn self_fenced(&self) -> bool {
        self.self_fenced.load(Ordering::Relaxed)
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
    /// Time between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// How long a trial keeps running without a daemon renewing its lease.
    pub trial_lease: Duration,
    /// Lines of output per second the trial may ship to the master.
    pub log_lines_per_second: u32,
    /// Where checkpoint transfers are counted.
    pub metrics: Arc<AgentMetrics>,
}

/// Runs a new allocation to its end and reports `AllocationExited` (after its uploads finish).
pub async fn run_allocation(
    mut start: StartAllocation,
    env: AllocationEnv,
    progress: AllocationProgress,
    control: mpsc::UnboundedReceiver<Control>,
    outbox: mpsc::UnboundedSender<AgentMessage>,
) {
    let dir = AllocationDir::new(&env.work_dir, &start.allocation_id);
    let exited = match prepare::launch(&mut start, &env, &dir, &outbox).await {
        Ok((process, resume)) => {
            let serve = running::Serve {
                start: &start,
                env: &env,
                dir: &dir,
                progress: &progress,
                outbox: &outbox,
            };
            running::run_to_end(serve, process, resume, control).await
        }
        Err(message) => {
            tracing::error!(allocation = %start.allocation_id, %message, "allocation failed to start");
            let _ = outbox.send(agent_line(&start.allocation_id, &message));
            AllocationExited {
                allocation_id: start.allocation_id.clone(),
                kind: ExitKind::Failed as i32,
                exit_code: -1,
                end_step: start.latest_checkpoint_step,
                message,
            }
        }
    };
    finish(&dir, exited, &outbox).await;
}

/// A trial a previous daemon started, found in the work directory, ready to be taken over.
pub struct Orphan {
    /// Its start request.
    pub start: StartAllocation,
    dir: AllocationDir,
    process: TrialProcess,
}

/// Finds the allocation recorded in `allocation_id`'s directory; removes it when its trial never
/// started (the master then sees it missing and places the trial again).
pub fn find_orphan(work_dir: &std::path::Path, allocation_id: &str) -> Option<Orphan> {
    let dir = AllocationDir::new(work_dir, allocation_id);
    let start = match dir.read_start() {
        Ok(start) => start,
        Err(e) => {
            tracing::warn!(allocation = %allocation_id, error = %e, "discarding an unreadable allocation");
            let _ = std::fs::remove_dir_all(&dir.root);
            return None;
        }
    };
    let Some(record) = dir.read_supervisor() else {
        tracing::info!(allocation = %allocation_id, "discarding an allocation whose trial never started");
        let _ = std::fs::remove_dir_all(&dir.root);
        return None;
    };
    let process = TrialProcess::adopt(&dir, record);
    Some(Orphan {
        start,
        dir,
        process,
    })
}

/// Takes over an orphaned allocation: replays its rendezvous, latest validation and checkpoint
/// reports, then runs it to its end.
pub async fn adopt_allocation(
    orphan: Orphan,
    env: AllocationEnv,
    progress: AllocationProgress,
    control: mpsc::UnboundedReceiver<Control>,
    outbox: mpsc::UnboundedSender<AgentMessage>,
) {
    let Orphan {
        start,
        dir,
        process,
    } = orphan;
    tracing::info!(allocation = %start.allocation_id, trial = start.trial_id, "adopting a running trial");
    if let Some(ready) = distributed::rendezvous_ready(&start) {
        let _ = outbox.send(ready);
    }
    // The validation a trial makes before it exits at its length precedes its checkpoint.
    if let Some(report) = dir.validation() {
        let _ = outbox.send(AgentMessage {
            body: Some(Body::Validation(report)),
        });
    }
    for report in dir.committed() {
        let _ = outbox.send(AgentMessage {
            body: Some(Body::CheckpointCompleted(report)),
        });
    }
    for report in dir.committed_parts() {
        let _ = outbox.send(AgentMessage {
            body: Some(Body::CheckpointPart(report)),
        });
    }
    // A daemon that stopped during the restore left it unfinished: it is done again.
    let resume = prepare::Resume::of(&start, &dir);
    let serve = running::Serve {
        start: &start,
        env: &env,
        dir: &dir,
        progress: &progress,
        outbox: &outbox,
    };
    let exited = running::run_to_end(serve, process, resume, control).await;
    finish(&dir, exited, &outbox).await;
}

/// Reports the exit and removes the allocation's directory.
async fn finish(
    dir: &AllocationDir,
    exited: AllocationExited,
    outbox: &mpsc::UnboundedSender<AgentMessage>,
) {
    tracing::info!(allocation = %exited.allocation_id, kind = ?exited.kind(), code = exited.exit_code, "allocation exited");
    let _ = outbox.send(AgentMessage {
        body: Some(Body::AllocationExited(exited)),
    });
    let _ = tokio::fs::remove_dir_all(&dir.root).await;
}

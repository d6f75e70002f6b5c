//! While the trial runs: the harness socket, output shipping, uploads and the lease, until the
//! trial ends; then how it ended, in the master's terms.

use std::sync::Arc;
use std::time::Duration;

use baton_common::proto::{
    AgentMessage, AllocationExited, AllocationPhase, AllocationStarted, ExitKind, StartAllocation,
    agent_message::Body,
};
use baton_common::storage::CheckpointStore;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::prepare::Resume;
use super::process::{TrialExit, TrialProcess};
use super::record::AllocationDir;
use super::{AllocationEnv, AllocationProgress, Control, distributed, logs, prepare, uploads};
use crate::harness::{Harness, RankRole, RestoreState};

/// What serving a trial needs, whether this daemon started it or adopted it.
pub struct Serve<'a> {
    /// The start request.
    pub start: &'a StartAllocation,
    /// The agent's settings.
    pub env: &'a AllocationEnv,
    /// The allocation's directory.
    pub dir: &'a AllocationDir,
    /// What heartbeats report.
    pub progress: &'a AllocationProgress,
    /// Reports to the master.
    pub outbox: &'a mpsc::UnboundedSender<AgentMessage>,
}

/// Serves a started (or adopted) trial until it ends, and says how it ended; restores its
/// checkpoint meanwhile if that is not done yet (the trial's `init` waits for it).
pub async fn run_to_end(
    serve: Serve<'_>,
    process: TrialProcess,
    resume: Resume,
    mut control: mpsc::UnboundedReceiver<Control>,
) -> AllocationExited {
    let Serve {
        start,
        env,
        dir,
        progress,
        outbox,
    } = serve;
    let allocation_id = start.allocation_id.clone();
    let lease = tokio::spawn(renew_lease(dir.clone()));
    let store = match CheckpointStore::from_storage_json(&start.storage_json) {
        // Every part lists only its own ranks' files: never written in place.
        Ok(store) if distributed::is_distributed(start) => store.always_staged(),
        Ok(store) => store,
        Err(e) => {
            lease.abort();
            return exited(
                start,
                ExitKind::Failed,
                -1,
                start.latest_checkpoint_step,
                e.to_string(),
            );
        }
    };
    let (uploads_tx, uploads_rx) = mpsc::unbounded_channel();
    for job in uploads::pending(dir) {
        let _ = uploads_tx.send(job);
    }
    let uploader = tokio::spawn(uploads::commit_uploads(
        env.metrics.clone(),
        store.clone(),
        start.clone(),
        dir.clone(),
        uploads_rx,
        outbox.clone(),
    ));
    let tracker = progress.tracker.clone();
    let init_reply = json!({
        "trial_id": start.trial_id,
        "experiment_id": start.experiment_id,
        "allocation_id": start.allocation_id,
        "hparams": serde_json::from_str::<serde_json::Value>(&start.hparams_json).unwrap_or_default(),
        "max_length": tracker.lock().expect("tracker lock").max_length(),
        "start_step": start.latest_checkpoint_step,
        "latest_checkpoint": resume.path(),
    });
    let restoring = matches!(resume, Resume::Restoring(_));
    let (restore_state, restore_watch) = watch::channel(if restoring {
        RestoreState::Pending
    } else {
        RestoreState::Done
    });
    let harness = Arc::new(
        Harness::new(
            init_reply,
            tracker.clone(),
            store,
            dir.clone(),
            allocation_id.clone(),
            outbox.clone(),
            uploads_tx,
        )
        .with_role(RankRole::of(start))
        .with_restore(restore_watch),
    );
    let socket = prepare::socket_path(&env.work_dir, &allocation_id);
    let _ = std::fs::remove_file(&socket);
    let harness_task = match tokio::net::UnixListener::bind(&socket) {
        Ok(listener) => Some(tokio::spawn(harness.serve(listener))),
        Err(e) => {
            let message = format!("cannot open harness socket {}: {e}", socket.display());
            let _ = outbox.send(logs::agent_line(&allocation_id, &message));
            None
        }
    };
    let (output_done, output_done_rx) = watch::channel(false);
    let output = tokio::spawn(logs::tail_output(
        dir.clone(),
        allocation_id.clone(),
        logs::LogBudget::new(env.log_lines_per_second),
        outbox.clone(),
        output_done_rx,
    ));
    let started = || {
        progress.set(AllocationPhase::Running);
        let _ = outbox.send(AgentMessage {
            body: Some(Body::AllocationStarted(AllocationStarted {
                allocation_id: allocation_id.clone(),
                start_step: start.latest_checkpoint_step,
            })),
        });
    };
    if !restoring {
        started();
    }
    let preemption_timeout =
        Duration::from_millis(start.policy.map_or(60_000, |p| p.preemption_timeout_ms));
    // The master's commands, and a kill of the agent's own when the restore fails.
    let (commands, supervised) = mpsc::unbounded_channel();
    let supervise = process.supervise(
        supervised,
        tracker.clone(),
        preemption_timeout,
        env.kill_grace,
    );
    tokio::pin!(supervise);
    let restore = prepare::restore_checkpoint(&env.metrics, start, dir, outbox);
    tokio::pin!(restore);
    let mut restore_failure = None;
    let mut restore_pending = restoring;
    let exit = loop {
        tokio::select! {
            exit = &mut supervise => break exit,
            Some(command) = control.recv() => {
                let _ = commands.send(command);
            }
            restored = &mut restore, if restore_pending => {
                restore_pending = false;
                match restored {
                    Ok(()) => {
                        let _ = restore_state.send(RestoreState::Done);
                        started();
                    }
                    Err(reason) => {
                        let _ = restore_state.send(RestoreState::Failed(reason.clone()));
                        let _ = commands.send(Control::Kill);
                        restore_failure = Some(reason);
                    }
                }
            }
        }
    };
    progress.set(AllocationPhase::Exiting);
    if let Some(task) = harness_task {
        task.abort();
    }
    let _ = std::fs::remove_file(&socket);
    let _ = output_done.send(true);
    let _ = output.await;
    let upload_errors = uploader.await.unwrap_or_default();
    lease.abort();
    let tracker = tracker.lock().expect("tracker lock");
    if let Some(reason) = restore_failure {
        let _ = outbox.send(logs::agent_line(&allocation_id, &reason));
        return exited(
            start,
            ExitKind::Failed,
            -1,
            start.latest_checkpoint_step,
            reason,
        );
    }
    let (kind, mut message) = describe_exit(exit, tracker.stopped_for_suspend, start, env);
    if let Some(said) = matches!(
        exit,
        TrialExit::SupervisorFailed(_) | TrialExit::Lost | TrialExit::Exited(127)
    )
    .then(|| supervisor_said(dir))
    .flatten()
    {
        message = format!("{message}; its supervisor said: {said}");
    }
    if progress.self_fenced() {
        message = format!("{message}; stopped by the agent itself: no contact with the master")
            .trim_start_matches("; ")
            .to_string();
    }
    if !upload_errors.is_empty() {
        message = format!(
            "{message}; checkpoint upload failed: {}",
            upload_errors.join("; ")
        )
        .trim_start_matches("; ")
        .to_string();
    }
    exited(start, kind, exit.code(), tracker.last_step, message)
}

/// The master's view of how the trial ended.
fn describe_exit(
    exit: TrialExit,
    stopped_for_suspend: bool,
    start: &StartAllocation,
    env: &AllocationEnv,
) -> (ExitKind, String) {
    let entrypoint = &start.entrypoint;
    match exit {
        TrialExit::Killed => (ExitKind::Killed, "killed on request".to_string()),
        TrialExit::KilledAfterTimeout => (
            ExitKind::KilledAfterTimeout,
            format!(
                "did not stop within the preemption timeout of {:?}",
                Duration::from_millis(start.policy.map_or(60_000, |p| p.preemption_timeout_ms))
            ),
        ),
        TrialExit::LeaseExpired(_) => (
            ExitKind::Killed,
            format!(
                "stopped by its supervisor: no agent daemon renewed its lease for {:?}",
                env.trial_lease
            ),
        ),
        TrialExit::SupervisorFailed(code) => (
            ExitKind::Failed,
            format!("the trial supervisor exited with status {code} without recording the trial's exit"),
        ),
        TrialExit::Lost => (
            ExitKind::Killed,
            "the trial process vanished without an exit status (host restart, or its supervisor was killed)"
                .to_string(),
        ),
        TrialExit::Exited(0) if stopped_for_suspend => (ExitKind::Suspended, String::new()),
        TrialExit::Exited(0) => (ExitKind::Completed, String::new()),
        TrialExit::Exited(127) => (
            ExitKind::Failed,
            format!("cannot start the entrypoint {entrypoint:?}: command not found (exit status 127)"),
        ),
        TrialExit::Exited(126) => (
            ExitKind::Failed,
            format!("cannot start the entrypoint {entrypoint:?}: not executable (exit status 126)"),
        ),
        TrialExit::Exited(code) if code < 0 => {
            (ExitKind::Failed, format!("killed by signal {}", -code))
        }
        TrialExit::Exited(code) => (ExitKind::Failed, format!("exited with status {code}")),
    }
}

/// Most of the supervisor's own output quoted in an exit message.
const SUPERVISOR_WORDS: usize = 600;

/// The last lines the trial's supervisor wrote (its errors), if any, on one line.
fn supervisor_said(dir: &AllocationDir) -> Option<String> {
    let text = std::fs::read_to_string(dir.path("supervisor.log")).ok()?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let said = lines[lines.len().saturating_sub(3)..].join("; ");
    let start = said.len().saturating_sub(SUPERVISOR_WORDS);
    let start = (start..=said.len())
        .find(|i| said.is_char_boundary(*i))
        .unwrap_or(0);
    Some(said[start..].to_string()).filter(|s| !s.is_empty())
}

fn exited(
    start: &StartAllocation,
    kind: ExitKind,
    exit_code: i32,
    end_step: u64,
    message: String,
) -> AllocationExited {
    AllocationExited {
        allocation_id: start.allocation_id.clone(),
        kind: kind as i32,
        exit_code,
        end_step,
        message,
    }
}

/// Renews the trial's lease every second while the daemon serves it.
async fn renew_lease(dir: AllocationDir) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Err(e) = dir.renew_lease() {
            tracing::warn!(dir = %dir.root.display(), error = %e, "cannot renew a trial's lease");
        }
    }
}

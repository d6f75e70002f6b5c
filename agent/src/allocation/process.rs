//! The trial's child process: spawn it in its own process group, then supervise it.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_common::proto::{AgentMessage, StartAllocation};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::{AllocationEnv, Control, logs::pump_lines};
use crate::policy::StepTracker;

/// How the trial process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialExit {
    /// It exited by itself with this code (negative: killed by that signal).
    Exited(i32),
    /// It was killed on the master's request.
    Killed,
    /// It ignored a suspend request past the preemption timeout.
    KilledAfterTimeout,
}

impl TrialExit {
    /// The exit code to report.
    pub fn code(self) -> i32 {
        match self {
            TrialExit::Exited(code) => code,
            TrialExit::Killed | TrialExit::KilledAfterTimeout => -(Signal::SIGKILL as i32),
        }
    }
}

/// A running trial process.
pub struct TrialProcess {
    child: Child,
    pid: Pid,
    pumps: Vec<tokio::task::JoinHandle<()>>,
}

impl TrialProcess {
    /// Starts the entrypoint under `sh -c` in the context directory with the harness environment.
    pub fn spawn(
        start: &StartAllocation,
        env: &AllocationEnv,
        context_dir: &Path,
        socket: &Path,
        restored: Option<&str>,
        outbox: &mpsc::UnboundedSender<AgentMessage>,
    ) -> Result<Self, String> {
        let mut python_path = env.harness_path.display().to_string();
        if let Ok(existing) = std::env::var("PYTHONPATH")
            && !existing.is_empty()
        {
            python_path = format!("{python_path}:{existing}");
        }
        let gpus: Vec<&str> = start
            .slot_ids
            .iter()
            .filter(|s| s.starts_with("GPU-"))
            .map(String::as_str)
            .collect();
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(format!("exec {}", start.entrypoint))
            .current_dir(context_dir)
            .env("BATON_HARNESS_SOCKET", socket)
            .env("BATON_TRIAL_ID", start.trial_id.to_string())
            .env("BATON_EXPERIMENT_ID", start.experiment_id.to_string())
            .env("BATON_ALLOCATION_ID", &start.allocation_id)
            .env("BATON_HPARAMS", &start.hparams_json)
            .env("CUDA_VISIBLE_DEVICES", gpus.join(","))
            .env("PYTHONPATH", python_path)
            .env("PYTHONUNBUFFERED", "1")
            .env_remove("BATON_LATEST_CHECKPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(path) = restored {
            command.env("BATON_LATEST_CHECKPOINT", path);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", start.entrypoint))?;
        let pid = Pid::from_raw(child.id().ok_or("trial process exited before it started")? as i32);
        let mut pumps = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            pumps.push(tokio::spawn(pump_lines(
                stdout,
                "stdout",
                start.allocation_id.clone(),
                outbox.clone(),
            )));
        }
        if let Some(stderr) = child.stderr.take() {
            pumps.push(tokio::spawn(pump_lines(
                stderr,
                "stderr",
                start.allocation_id.clone(),
                outbox.clone(),
            )));
        }
        tracing::info!(allocation = %start.allocation_id, pid = pid.as_raw(), "trial process started");
        Ok(Self { child, pid, pumps })
    }

    /// Waits for the process, applying suspend and kill requests and the preemption timeout.
    pub async fn supervise(
        mut self,
        mut control: mpsc::UnboundedReceiver<Control>,
        tracker: Arc<Mutex<StepTracker>>,
        preemption_timeout: Duration,
        kill_grace: Duration,
    ) -> TrialExit {
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut forced: Option<TrialExit> = None;
        let mut control_open = true;
        let status = loop {
            let timeout = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                status = self.child.wait() => break status,
                command = control.recv(), if control_open => match command {
                    Some(Control::Suspend) => {
                        tracker.lock().expect("tracker lock").request_suspend();
                        deadline.get_or_insert(tokio::time::Instant::now() + preemption_timeout);
                    }
                    Some(Control::Kill) => {
                        forced = Some(TrialExit::Killed);
                        break self.terminate(kill_grace).await;
                    }
                    None => control_open = false,
                },
                _ = timeout => {
                    forced = Some(TrialExit::KilledAfterTimeout);
                    break self.terminate(kill_grace).await;
                }
            }
        };
        for pump in self.pumps.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), pump).await;
        }
        if let Some(forced) = forced {
            return forced;
        }
        match status {
            Ok(status) => TrialExit::Exited(exit_code(status)),
            Err(_) => TrialExit::Exited(-1),
        }
    }

    /// SIGTERM to the process group, then SIGKILL after the grace period.
    async fn terminate(&mut self, grace: Duration) -> std::io::Result<std::process::ExitStatus> {
        let _ = killpg(self.pid, Signal::SIGTERM);
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => {
                let _ = killpg(self.pid, Signal::SIGKILL);
                status
            }
            Err(_) => {
                let _ = killpg(self.pid, Signal::SIGKILL);
                self.child.wait().await
            }
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| -status.signal().unwrap_or(0))
}

//! The trial's process: started under a supervisor in its own process group (so that it outlives
//! the daemon), or adopted from a previous daemon, then supervised until it ends.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_common::proto::StartAllocation;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::record::{AllocationDir, SupervisorRecord, process_start_time};
use super::{AllocationEnv, Control, distributed};
use crate::policy::StepTracker;
use crate::supervisor::{RANK_OFFSET_VAR, SUPERVISE_ARG};

/// The running daemon's executable, as the kernel keeps it.
const SELF_EXE: &str = "/proc/self/exe";

/// How the daemon was started (its `argv[0]`), which its supervisors show as theirs.
fn daemon_name() -> std::ffi::OsString {
    std::env::args_os()
        .next()
        .unwrap_or_else(|| "baton-agent".into())
}

/// How the trial process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialExit {
    /// It exited by itself with this code (negative: killed by that signal).
    Exited(i32),
    /// It was killed on the master's request.
    Killed,
    /// It ignored a suspend request past the preemption timeout.
    KilledAfterTimeout,
    /// Its supervisor stopped it because no daemon renewed the lease in time.
    LeaseExpired(i32),
    /// Its supervisor exited by itself with this status without recording an exit.
    SupervisorFailed(i32),
    /// Its supervisor vanished without recording an exit.
    Lost,
}

impl TrialExit {
    /// The exit code to report.
    pub fn code(self) -> i32 {
        match self {
            TrialExit::Exited(code)
            | TrialExit::LeaseExpired(code)
            | TrialExit::SupervisorFailed(code) => code,
            TrialExit::Killed | TrialExit::KilledAfterTimeout | TrialExit::Lost => {
                -(Signal::SIGKILL as i32)
            }
        }
    }
}

/// A trial's supervisor: the daemon's own child, or one adopted from a previous daemon.
enum Supervised {
    Child(Child),
    Adopted(SupervisorRecord),
}

/// A running trial.
pub struct TrialProcess {
    group: Pid,
    supervised: Supervised,
    dir: AllocationDir,
}

impl TrialProcess {
    /// Starts the entrypoint under a supervisor, with the harness environment (and a distributed
    /// trial's ranks), and records it.
    pub fn spawn(
        start: &StartAllocation,
        env: &AllocationEnv,
        dir: &AllocationDir,
        socket: &Path,
        restored: Option<&str>,
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
        dir.renew_lease()
            .map_err(|e| format!("cannot write the trial's lease: {e}"))?;
        let supervisor_log = std::fs::File::create(dir.path("supervisor.log"))
            .map_err(|e| format!("cannot create the supervisor log: {e}"))?;
        // The daemon's own image, even once its file was replaced or deleted (an upgrade under
        // a running daemon): the supervisor must speak this daemon's protocol.
        let mut command = Command::new(SELF_EXE);
        command
            .arg0(daemon_name())
            .arg(SUPERVISE_ARG)
            .arg(&dir.root)
            .arg(dir.path("context"))
            .arg(env.trial_lease.as_millis().to_string())
            .arg(env.kill_grace.as_millis().to_string())
            .arg(&start.entrypoint)
            // Not the allocation directory: nothing of the daemon's keeps it busy.
            .current_dir("/")
            .env("BATON_HARNESS_SOCKET", socket)
            .env("BATON_HARNESS_RECONNECT_SECONDS", reconnect_seconds(env))
            .env("BATON_TRIAL_ID", start.trial_id.to_string())
            .env("BATON_EXPERIMENT_ID", start.experiment_id.to_string())
            .env("BATON_ALLOCATION_ID", &start.allocation_id)
            .env("BATON_HPARAMS", &start.hparams_json)
            .env("CUDA_VISIBLE_DEVICES", gpus.join(","))
            .env("PYTHONPATH", python_path)
            .env("PYTHONUNBUFFERED", "1")
            .env_remove("BATON_LATEST_CHECKPOINT")
            .env_remove(RANK_OFFSET_VAR)
            .envs(distributed::supervisor_env(start))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(supervisor_log)
            .process_group(0)
            .kill_on_drop(false);
        if let Some(path) = restored {
            command.env("BATON_LATEST_CHECKPOINT", path);
        }
        let child = command.spawn().map_err(|e| {
            format!(
                "cannot start the trial supervisor ({SELF_EXE}, {}): {e}",
                daemon_name().to_string_lossy()
            )
        })?;
        let pid = child.id().ok_or("trial process exited before it started")? as i32;
        let record = SupervisorRecord {
            pid,
            start_time: process_start_time(pid).unwrap_or_default(),
        };
        dir.write_supervisor(record)
            .map_err(|e| format!("cannot record the trial process: {e}"))?;
        tracing::info!(allocation = %start.allocation_id, pid, "trial process started");
        Ok(Self {
            group: Pid::from_raw(pid),
            supervised: Supervised::Child(child),
            dir: dir.clone(),
        })
    }

    /// Takes over a trial started by a previous daemon.
    pub fn adopt(dir: &AllocationDir, record: SupervisorRecord) -> Self {
        Self {
            group: Pid::from_raw(record.pid),
            supervised: Supervised::Adopted(record),
            dir: dir.clone(),
        }
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
        let mut supervisor_code = None;
        loop {
            let timeout = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                code = self.ended() => {
                    supervisor_code = code;
                    break;
                }
                command = control.recv(), if control_open => match command {
                    Some(Control::Suspend) => {
                        tracker.lock().expect("tracker lock").request_suspend();
                        deadline.get_or_insert(tokio::time::Instant::now() + preemption_timeout);
                    }
                    Some(Control::Kill) => {
                        forced = Some(TrialExit::Killed);
                        self.terminate(kill_grace).await;
                        break;
                    }
                    None => control_open = false,
                },
                _ = timeout => {
                    forced = Some(TrialExit::KilledAfterTimeout);
                    self.terminate(kill_grace).await;
                    break;
                }
            }
        }
        // Whatever the trial left behind in its group goes with it.
        let _ = killpg(self.group, Signal::SIGKILL);
        if let Some(forced) = forced {
            return forced;
        }
        match self.dir.read_exit() {
            Some(exit) if exit.lease_expired => TrialExit::LeaseExpired(exit.code),
            Some(exit) => TrialExit::Exited(exit.code),
            None => supervisor_code.map_or(TrialExit::Lost, TrialExit::SupervisorFailed),
        }
    }

    /// Resolves once the supervisor is gone; with its exit code when it was this daemon's child
    /// and exited by itself (not by a signal).
    async fn ended(&mut self) -> Option<i32> {
        match &mut self.supervised {
            Supervised::Child(child) => child.wait().await.ok().and_then(|s| s.code()),
            Supervised::Adopted(record) => loop {
                if process_start_time(record.pid) != Some(record.start_time) {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            },
        }
    }

    /// SIGTERM to the process group, then SIGKILL after the grace period.
    async fn terminate(&mut self, grace: Duration) {
        let _ = killpg(self.group, Signal::SIGTERM);
        if tokio::time::timeout(grace, self.ended()).await.is_err() {
            let _ = killpg(self.group, Signal::SIGKILL);
            self.ended().await;
        }
    }
}

/// How long the harness in the trial waits for a restarted daemon: a little past the lease,
/// after which the supervisor stops the trial anyway.
fn reconnect_seconds(env: &AllocationEnv) -> String {
    (env.trial_lease.as_secs() + 5).to_string()
}

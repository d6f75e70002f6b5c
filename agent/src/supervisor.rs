//! The trial supervisor: a small process between the agent daemon and the trial, so that the
//! trial outlives a daemon restart and its exit status is never lost.
//!
//! The daemon starts `baton-agent __supervise-trial DIR CONTEXT LEASE_MS GRACE_MS ENTRYPOINT` as the
//! leader of a new process group. The supervisor runs the entrypoint in that group with its output
//! in `DIR/stdout.log` and `DIR/stderr.log`, ignores the group's SIGTERM (the trial gets it), and
//! writes `DIR/exit.json` when the trial ends. While no daemon renews `DIR/lease` for `LEASE_MS`
//! (the daemon is gone for good, or cut off), it stops the trial itself: SIGTERM, then SIGKILL
//! after `GRACE_MS`. The daemon that adopts the allocation reads the exit from `DIR/exit.json`.
//!
//! A part of a distributed trial runs several ranks. The daemon passes them in the supervisor's
//! environment: `BATON_RANK_OFFSET` (the part's first rank, only set for distributed trials) and
//! `BATON_LOCAL_WORLD_SIZE` (its rank count), next to what all ranks share (`WORLD_SIZE`,
//! `LOCAL_WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`, `BATON_WORLD_SIZE`, `BATON_SYNC_ADDR`,
//! `BATON_SYNC_PORT`, and the part's GPUs in `CUDA_VISIBLE_DEVICES`). The supervisor starts one
//! entrypoint per rank, child `i` with `RANK` and `BATON_RANK` = offset + `i`, `LOCAL_RANK` and
//! `BATON_LOCAL_RANK` = `i`, and `CUDA_VISIBLE_DEVICES` = the part's `i`-th GPU when it has one per
//! rank (else all of them). The first child that exits non-zero or by a signal has the others
//! stopped (SIGTERM, then SIGKILL after `GRACE_MS`) and its code recorded; 0 is recorded once all
//! exited 0. The lease applies to all of them. Without `BATON_RANK_OFFSET` the one child runs in
//! the supervisor's own environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;

use crate::allocation::record::{ExitRecord, write_json};

/// The first argument that runs `baton-agent` as a trial supervisor.
pub const SUPERVISE_ARG: &str = "__supervise-trial";

/// The supervisor's variable holding the first rank of a distributed trial's part.
pub const RANK_OFFSET_VAR: &str = "BATON_RANK_OFFSET";

/// Variables one child gets on top of the supervisor's environment.
type ChildEnv = Vec<(&'static str, String)>;

/// Runs the supervisor with the arguments after [`SUPERVISE_ARG`]; returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let [dir, context, lease_ms, grace_ms, entrypoint] = args else {
        eprintln!(
            "usage: baton-agent {SUPERVISE_ARG} DIR CONTEXT LEASE_MS GRACE_MS ENTRYPOINT (started by the agent daemon)"
        );
        return 2;
    };
    let (Ok(lease_ms), Ok(grace_ms)) = (lease_ms.parse::<u64>(), grace_ms.parse::<u64>()) else {
        eprintln!("LEASE_MS and GRACE_MS must be whole numbers of milliseconds");
        return 2;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a single-threaded runtime starts");
    let supervisor = Supervisor {
        dir: PathBuf::from(dir),
        lease: Duration::from_millis(lease_ms),
        grace: Duration::from_millis(grace_ms),
    };
    let ranks = child_envs(|name| std::env::var(name).ok());
    let exit = runtime.block_on(supervisor.run(Path::new(context), entrypoint, &ranks));
    let record = supervisor.dir.join("exit.json");
    if let Err(e) = write_json(&record, &exit) {
        eprintln!(
            "cannot record the trial's exit in {}: {e}",
            record.display()
        );
        return 1;
    }
    0
}

/// What each child gets on top of the supervisor's environment, read through `lookup`: one
/// child with nothing added, or one per rank of a distributed trial's part.
fn child_envs(lookup: impl Fn(&str) -> Option<String>) -> Vec<ChildEnv> {
    let number = |name: &str| lookup(name).and_then(|value| value.parse::<u32>().ok());
    let Some(offset) = number(RANK_OFFSET_VAR) else {
        return vec![Vec::new()];
    };
    let count = number("BATON_LOCAL_WORLD_SIZE").unwrap_or(1).max(1);
    let gpus: Vec<String> = lookup("CUDA_VISIBLE_DEVICES")
        .unwrap_or_default()
        .split(',')
        .filter(|gpu| !gpu.is_empty())
        .map(str::to_string)
        .collect();
    (0..count)
        .map(|local| {
            let (rank, local_rank) = ((offset + local).to_string(), local.to_string());
            let mut env = vec![
                ("RANK", rank.clone()),
                ("BATON_RANK", rank),
                ("LOCAL_RANK", local_rank.clone()),
                ("BATON_LOCAL_RANK", local_rank),
            ];
            if gpus.len() == count as usize {
                env.push(("CUDA_VISIBLE_DEVICES", gpus[local as usize].clone()));
            }
            env
        })
        .collect()
}

struct Supervisor {
    dir: PathBuf,
    lease: Duration,
    grace: Duration,
}

impl Supervisor {
    /// Runs one child per entry of `ranks` until all have exited; the first failure stops the rest.
    async fn run(&self, context: &Path, entrypoint: &str, ranks: &[ChildEnv]) -> ExitRecord {
        // The group's SIGTERM/SIGINT/SIGHUP are for the trial; the supervisor outlives them to
        // record the exit. (Handled signals reset to their defaults in the trial after exec.)
        let mut ignored = Vec::new();
        for kind in [
            SignalKind::terminate(),
            SignalKind::interrupt(),
            SignalKind::hangup(),
        ] {
            if let Ok(stream) = signal(kind) {
                ignored.push(stream);
            }
        }
        let mut live: HashMap<usize, Pid> = HashMap::new();
        let mut waits = FuturesUnordered::new();
        let mut failure: Option<i32> = None;
        for (index, env) in ranks.iter().enumerate() {
            match self.spawn(context, entrypoint, env) {
                Ok(mut child) => {
                    if let Some(id) = child.id() {
                        live.insert(index, Pid::from_raw(id as i32));
                    }
                    waits.push(async move { (index, child.wait().await) });
                }
                Err(e) => {
                    eprintln!("cannot start {entrypoint:?}: {e}");
                    failure = Some(127);
                    break;
                }
            }
        }
        // Once stopping begins, the children left get SIGTERM, and SIGKILL at `kill_at`.
        let mut stopping = failure.is_some();
        let mut kill_at = failure.map(|_| self.stop(&live));
        let mut check = tokio::time::interval(Duration::from_millis(500));
        let mut lease_expired = false;
        loop {
            let kill_timer = async move {
                match kill_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ended = waits.next() => {
                    let Some((index, status)) = ended else { break };
                    live.remove(&index);
                    let code = status.map_or(-1, exit_code);
                    if code != 0 && failure.is_none() {
                        failure = Some(code);
                        if !stopping && !live.is_empty() {
                            eprintln!("local rank {index} ended with {code}: stopping the other ranks");
                            stopping = true;
                            kill_at = Some(self.stop(&live));
                        }
                    }
                }
                _ = check.tick(), if !lease_expired => {
                    if self.lease_age() > self.lease {
                        eprintln!("no agent daemon renewed the lease for {:?}: stopping the trial", self.lease);
                        lease_expired = true;
                        if !stopping {
                            stopping = true;
                            kill_at = Some(self.stop(&live));
                        }
                    }
                }
                _ = kill_timer => {
                    for pid in live.values() {
                        let _ = kill(*pid, Signal::SIGKILL);
                    }
                    kill_at = None;
                }
            }
        }
        ExitRecord {
            code: failure.unwrap_or(0),
            lease_expired,
        }
    }

    /// Starts the entrypoint with `env` added, its output appended to the trial's logs.
    fn spawn(&self, context: &Path, entrypoint: &str, env: &ChildEnv) -> std::io::Result<Child> {
        Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("exec {entrypoint}"))
            .current_dir(context)
            .env_remove(RANK_OFFSET_VAR)
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(append(&self.dir.join("stdout.log"))?)
            .stderr(append(&self.dir.join("stderr.log"))?)
            .spawn()
    }

    /// Sends SIGTERM to the children still running; returns when to SIGKILL them.
    fn stop(&self, live: &HashMap<usize, Pid>) -> Instant {
        for pid in live.values() {
            let _ = kill(*pid, Signal::SIGTERM);
        }
        Instant::now() + self.grace
    }

    /// Time since the daemon last renewed the lease (its file's modification time).
    fn lease_age(&self) -> Duration {
        std::fs::metadata(self.dir.join("lease"))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .unwrap_or(Duration::MAX)
    }
}

/// `path` opened for appending; an error names it.
fn append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))
}

/// An exit status as a code, or the negated signal number.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| -status.signal().unwrap_or(0))
}

#[cfg(test)]
mod tests;

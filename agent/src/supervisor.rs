//! The trial supervisor: a small process between the agent daemon and the trial, so that the
//! trial outlives a daemon restart and its exit status is never lost.
//!
//! The daemon starts `baton-agent __supervise-trial DIR CONTEXT LEASE_MS GRACE_MS ENTRYPOINT` as the
//! leader of a new process group. The supervisor runs the entrypoint in that group with its output
//! in `DIR/stdout.log` and `DIR/stderr.log`, ignores the group's SIGTERM (the trial gets it), and
//! writes `DIR/exit.json` when the trial ends. While no daemon renews `DIR/lease` for `LEASE_MS`
//! (the daemon is gone for good, or cut off), it stops the trial itself: SIGTERM, then SIGKILL
//! after `GRACE_MS`. The daemon that adopts the allocation reads the exit from `DIR/exit.json`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::signal::unix::{SignalKind, signal};

use crate::allocation::record::{ExitRecord, write_json};

/// The first argument that runs `baton-agent` as a trial supervisor.
pub const SUPERVISE_ARG: &str = "__supervise-trial";

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
    let exit = runtime.block_on(supervisor.run(Path::new(context), entrypoint));
    if let Err(e) = write_json(&supervisor.dir.join("exit.json"), &exit) {
        eprintln!("cannot record the trial's exit: {e}");
        return 1;
    }
    0
}

struct Supervisor {
    dir: PathBuf,
    lease: Duration,
    grace: Duration,
}

impl Supervisor {
    async fn run(&self, context: &Path, entrypoint: &str) -> ExitRecord {
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
        let spawned = (|| -> std::io::Result<tokio::process::Child> {
            Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("exec {entrypoint}"))
                .current_dir(context)
                .stdin(Stdio::null())
                .stdout(append(&self.dir.join("stdout.log"))?)
                .stderr(append(&self.dir.join("stderr.log"))?)
                .spawn()
        })();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                eprintln!("cannot start {entrypoint:?}: {e}");
                return ExitRecord {
                    code: 127,
                    lease_expired: false,
                };
            }
        };
        let trial = child.id().map(|id| Pid::from_raw(id as i32));
        let mut check = tokio::time::interval(Duration::from_millis(500));
        let mut lease_expired = false;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                _ = check.tick(), if !lease_expired => {
                    if self.lease_age() > self.lease {
                        eprintln!("no agent daemon renewed the lease for {:?}: stopping the trial", self.lease);
                        lease_expired = true;
                        if let Some(pid) = trial {
                            let _ = kill(pid, Signal::SIGTERM);
                        }
                        let grace = self.grace;
                        match tokio::time::timeout(grace, child.wait()).await {
                            Ok(status) => break status,
                            Err(_) => {
                                let _ = child.start_kill();
                                break child.wait().await;
                            }
                        }
                    }
                }
            }
        };
        ExitRecord {
            code: status.map_or(-1, exit_code),
            lease_expired,
        }
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

fn append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// An exit status as a code, or the negated signal number.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| -status.signal().unwrap_or(0))
}

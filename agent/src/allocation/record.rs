//! An allocation's directory on disk: everything a restarted agent daemon needs to adopt it.
//!
//! `<work dir>/allocations/<id>/` holds `start.pb` (the start request, written first), `trial.json`
//! (the supervisor's pid and start time, written once it runs), `lease` (renewed by the daemon
//! every second; the supervisor stops the trial when it goes stale), `exit.json` (written by the
//! supervisor when the trial ends), `tracker.json` (step bookkeeping that must survive the
//! daemon), `uploads/` (checkpoints handed over but not yet committed), `committed/` and `parts/`
//! (reports of committed checkpoints and checkpoint parts, replayed after a restart),
//! `validation.pb` (the latest validation report, replayed after a restart: the one a trial makes
//! before it exits at its length is never lost), the trial's `stdout.log` / `stderr.log` with the
//! shipped offsets in `log-offsets.json`, and `context/`, `restore/`, `staging/`.

use std::path::{Path, PathBuf};

use baton_common::proto::{
    CheckpointCompleted, CheckpointPartCommitted, StartAllocation, ValidationReport,
};
use prost::Message;
use serde::{Deserialize, Serialize};

/// The directory of one allocation and the files in it.
#[derive(Debug, Clone)]
pub struct AllocationDir {
    /// The directory.
    pub root: PathBuf,
}

/// The supervisor process of a trial, as recorded for adoption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisorRecord {
    /// Its pid, also the trial's process group.
    pub pid: i32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat` field 22), against pid reuse.
    pub start_time: u64,
}

/// How the trial ended, as the supervisor recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Exit code, or the negated signal number.
    pub code: i32,
    /// The supervisor stopped the trial because no daemon renewed its lease.
    #[serde(default)]
    pub lease_expired: bool,
}

impl AllocationDir {
    /// The directory of `allocation_id` under the agent's work directory.
    pub fn new(work_dir: &Path, allocation_id: &str) -> Self {
        Self {
            root: work_dir.join("allocations").join(allocation_id),
        }
    }

    /// A file or directory inside it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Records the start request (without the context, which is on disk), before anything else.
    pub fn write_start(&self, start: &StartAllocation) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        let mut stored = start.clone();
        stored.context = None;
        write_atomic(&self.path("start.pb"), &stored.encode_to_vec())
    }

    /// The recorded start request.
    pub fn read_start(&self) -> Result<StartAllocation, String> {
        let bytes = std::fs::read(self.path("start.pb"))
            .map_err(|e| format!("cannot read {}: {e}", self.path("start.pb").display()))?;
        StartAllocation::decode(bytes.as_slice())
            .map_err(|e| format!("{} is corrupt: {e}", self.path("start.pb").display()))
    }

    /// Records the running supervisor.
    pub fn write_supervisor(&self, record: SupervisorRecord) -> std::io::Result<()> {
        write_json(&self.path("trial.json"), &record)
    }

    /// The recorded supervisor, if the trial was started.
    pub fn read_supervisor(&self) -> Option<SupervisorRecord> {
        read_json(&self.path("trial.json"))
    }

    /// The trial's recorded exit, once it ended.
    pub fn read_exit(&self) -> Option<ExitRecord> {
        read_json(&self.path("exit.json"))
    }

    /// Renews the lease that keeps the supervisor from stopping the trial.
    pub fn renew_lease(&self) -> std::io::Result<()> {
        write_atomic(&self.path("lease"), crate::now_ms().to_string().as_bytes())
    }

    /// Records a checkpoint report so that it can be replayed after a daemon restart.
    pub fn record_committed(&self, report: &CheckpointCompleted) -> std::io::Result<()> {
        let dir = self.path("committed");
        std::fs::create_dir_all(&dir)?;
        write_atomic(
            &dir.join(format!("{}.pb", report.uuid)),
            &report.encode_to_vec(),
        )
    }

    /// Every recorded checkpoint report.
    pub fn committed(&self) -> Vec<CheckpointCompleted> {
        list(&self.path("committed"), "pb")
            .into_iter()
            .filter_map(|path| std::fs::read(path).ok())
            .filter_map(|bytes| CheckpointCompleted::decode(bytes.as_slice()).ok())
            .collect()
    }

    /// Records the latest validation report so that it can be replayed after a daemon restart.
    pub fn record_validation(&self, report: &ValidationReport) -> std::io::Result<()> {
        write_atomic(&self.path("validation.pb"), &report.encode_to_vec())
    }

    /// The latest recorded validation report, if any.
    pub fn validation(&self) -> Option<ValidationReport> {
        let bytes = std::fs::read(self.path("validation.pb")).ok()?;
        ValidationReport::decode(bytes.as_slice()).ok()
    }

    /// Records a checkpoint part report so that it can be replayed after a daemon restart.
    pub fn record_part(&self, report: &CheckpointPartCommitted) -> std::io::Result<()> {
        let dir = self.path("parts");
        std::fs::create_dir_all(&dir)?;
        write_atomic(
            &dir.join(format!("{}.pb", report.uuid)),
            &report.encode_to_vec(),
        )
    }

    /// Every recorded checkpoint part report.
    pub fn committed_parts(&self) -> Vec<CheckpointPartCommitted> {
        list(&self.path("parts"), "pb")
            .into_iter()
            .filter_map(|path| std::fs::read(path).ok())
            .filter_map(|bytes| CheckpointPartCommitted::decode(bytes.as_slice()).ok())
            .collect()
    }
}

/// Ids of the allocations recorded under a work directory.
pub fn recorded_allocations(work_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(work_dir.join("allocations")) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

/// Files with `extension` in `dir`, sorted.
pub fn list(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    paths.sort();
    paths
}

/// Writes `value` as JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    write_atomic(path, &serde_json::to_vec(value).expect("record serializes"))
}

/// Reads a JSON record; None when absent or unreadable.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes a file through a temporary name and a rename, so readers see all or nothing.
pub fn write_atomic(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("partial");
    std::fs::write(&temporary, content)?;
    std::fs::rename(&temporary, path)
}

/// The start time of a live process (`/proc/PID/stat` field 22); None when gone or a zombie.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_request_round_trips_without_its_context() {
        let work = tempfile::tempdir().unwrap();
        let dir = AllocationDir::new(work.path(), "a1");
        let start = StartAllocation {
            allocation_id: "a1".into(),
            trial_id: 7,
            context: Some(Default::default()),
            ..Default::default()
        };
        dir.write_start(&start).unwrap();
        let read = dir.read_start().unwrap();
        assert_eq!(read.trial_id, 7);
        assert!(read.context.is_none());
        assert_eq!(recorded_allocations(work.path()), ["a1"]);
    }

    #[test]
    fn the_latest_validation_is_kept() {
        let work = tempfile::tempdir().unwrap();
        let dir = AllocationDir::new(work.path(), "a1");
        std::fs::create_dir_all(&dir.root).unwrap();
        assert_eq!(dir.validation(), None);
        for step in [10, 20] {
            let report = ValidationReport {
                allocation_id: "a1".into(),
                step,
                metrics_json: format!("{{\"loss\": {step}}}"),
            };
            dir.record_validation(&report).unwrap();
        }
        let latest = dir.validation().unwrap();
        assert_eq!(
            (latest.step, latest.metrics_json.as_str()),
            (20, "{\"loss\": 20}")
        );
    }

    #[test]
    fn this_process_has_a_start_time_and_a_dead_pid_has_none() {
        assert!(process_start_time(std::process::id() as i32).is_some());
        assert_eq!(process_start_time(i32::MAX), None);
    }
}

//! Checkpoint records.

use rusqlite::{OptionalExtension, Row, params};

use baton_common::gc::CheckpointState;

use super::{Store, StoreResult, parsed};

/// One checkpoint as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointRow {
    /// Creation order.
    pub seq: u64,
    /// Checkpoint uuid.
    pub uuid: String,
    /// Owning experiment.
    pub experiment_id: u64,
    /// Owning trial.
    pub trial_id: u64,
    /// Allocation that produced it.
    pub allocation_id: String,
    /// Steps completed when it was taken.
    pub step: u64,
    /// Lifecycle state.
    pub state: CheckpointState,
    /// Total size of its files.
    pub size_bytes: u64,
    /// Its metadata.json.
    pub metadata_json: String,
    /// Last storage error.
    pub error: String,
    /// Creation time, Unix milliseconds.
    pub created_ms: i64,
}

const COLUMNS: &str = "seq, uuid, experiment_id, trial_id, allocation_id, step, state, size_bytes, metadata_json, error, created_ms";

impl Store {
    /// Inserts a checkpoint; returns false when its uuid was already recorded.
    pub fn insert_checkpoint(&self, row: &CheckpointRow) -> StoreResult<bool> {
        let changed = self.execute_cached(
            "INSERT OR IGNORE INTO checkpoints (uuid, experiment_id, trial_id, allocation_id, step, state, size_bytes, metadata_json, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                row.uuid,
                row.experiment_id,
                row.trial_id,
                row.allocation_id,
                row.step,
                row.state.as_str(),
                row.size_bytes,
                row.metadata_json,
                row.created_ms
            ],
        )?;
        Ok(changed == 1)
    }

    /// Checkpoints of an experiment in creation order.
    pub fn checkpoints_of_experiment(&self, experiment_id: u64) -> StoreResult<Vec<CheckpointRow>> {
        self.query_checkpoints("experiment_id = ?1 ORDER BY seq", params![experiment_id])
    }

    /// Checkpoints in a given state, across experiments.
    pub fn checkpoints_in_state(&self, state: CheckpointState) -> StoreResult<Vec<CheckpointRow>> {
        self.query_checkpoints("state = ?1 ORDER BY seq", params![state.as_str()])
    }

    /// One checkpoint by uuid.
    pub fn checkpoint_by_uuid(&self, uuid: &str) -> StoreResult<Option<CheckpointRow>> {
        let sql = format!("SELECT {COLUMNS} FROM checkpoints WHERE uuid = ?1");
        self.conn
            .prepare_cached(&sql)?
            .query_row([uuid], checkpoint_from_row)
            .optional()
    }

    /// The live checkpoint a trial took at a step.
    pub fn checkpoint_by_trial_step(
        &self,
        trial_id: u64,
        step: u64,
    ) -> StoreResult<Option<CheckpointRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM checkpoints WHERE trial_id = ?1 AND step = ?2 ORDER BY state = 'DELETED', seq DESC LIMIT 1"
        );
        self.conn
            .query_row(&sql, params![trial_id, step], checkpoint_from_row)
            .optional()
    }

    /// Records a checkpoint's state and last error.
    pub fn set_checkpoint_state(
        &self,
        uuid: &str,
        state: CheckpointState,
        error: &str,
    ) -> StoreResult<()> {
        self.execute_cached(
            "UPDATE checkpoints SET state = ?2, error = ?3 WHERE uuid = ?1",
            params![uuid, state.as_str(), error],
        )?;
        Ok(())
    }

    fn query_checkpoints(
        &self,
        condition: &str,
        params: impl rusqlite::Params,
    ) -> StoreResult<Vec<CheckpointRow>> {
        let sql = format!("SELECT {COLUMNS} FROM checkpoints WHERE {condition}");
        let mut statement = self.conn.prepare(&sql)?;
        let rows = statement.query_map(params, checkpoint_from_row)?;
        rows.collect()
    }
}

fn checkpoint_from_row(row: &Row<'_>) -> rusqlite::Result<CheckpointRow> {
    Ok(CheckpointRow {
        seq: row.get(0)?,
        uuid: row.get(1)?,
        experiment_id: row.get(2)?,
        trial_id: row.get(3)?,
        allocation_id: row.get(4)?,
        step: row.get(5)?,
        state: parsed(row, 6)?,
        size_bytes: row.get(7)?,
        metadata_json: row.get(8)?,
        error: row.get(9)?,
        created_ms: row.get(10)?,
    })
}

/// Bytes of checkpoints still in storage (not DELETED) per experiment, read through a read-only
/// connection of its own to the database under `data_dir`.
pub fn kept_bytes_by_experiment(data_dir: &std::path::Path) -> rusqlite::Result<Vec<(u64, i64)>> {
    let conn = rusqlite::Connection::open_with_flags(
        data_dir.join(super::DATABASE_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut statement = conn.prepare(
        "SELECT experiment_id, SUM(size_bytes) FROM checkpoints WHERE state != 'DELETED' \
         GROUP BY experiment_id",
    )?;
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect()
}

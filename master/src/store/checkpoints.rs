//! Checkpoint records.

use baton_common::gc::CheckpointState;

use super::value::{Row, Value, params};
use super::{Database, Store, StoreResult};

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
        let changed = self.execute(
            "INSERT INTO checkpoints (uuid, experiment_id, trial_id, allocation_id, step, state, size_bytes, metadata_json, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
            params![
                &row.uuid,
                row.experiment_id,
                row.trial_id,
                &row.allocation_id,
                row.step,
                row.state.as_str(),
                row.size_bytes,
                &row.metadata_json,
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
        self.query_first(&sql, params![uuid], checkpoint_from_row)
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
        self.query_first(&sql, params![trial_id, step], checkpoint_from_row)
    }

    /// Records a checkpoint's state and last error.
    pub fn set_checkpoint_state(
        &self,
        uuid: &str,
        state: CheckpointState,
        error: &str,
    ) -> StoreResult<()> {
        self.execute(
            "UPDATE checkpoints SET state = ?2, error = ?3 WHERE uuid = ?1",
            params![uuid, state.as_str(), error],
        )?;
        Ok(())
    }

    fn query_checkpoints(
        &self,
        condition: &str,
        params: &[Value<'_>],
    ) -> StoreResult<Vec<CheckpointRow>> {
        let sql = format!("SELECT {COLUMNS} FROM checkpoints WHERE {condition}");
        self.query(&sql, params, checkpoint_from_row)
    }
}

fn checkpoint_from_row(row: &Row<'_>) -> StoreResult<CheckpointRow> {
    Ok(CheckpointRow {
        seq: row.get(0)?,
        uuid: row.get(1)?,
        experiment_id: row.get(2)?,
        trial_id: row.get(3)?,
        allocation_id: row.get(4)?,
        step: row.get(5)?,
        state: row.parsed(6)?,
        size_bytes: row.get(7)?,
        metadata_json: row.get(8)?,
        error: row.get(9)?,
        created_ms: row.get(10)?,
    })
}

/// Bytes of checkpoints still in storage (not DELETED) per experiment, read through a
/// short-lived read-only connection of its own (never the cluster task's); on PostgreSQL a read
/// needs no lease.
pub fn kept_bytes_by_experiment(database: &Database) -> StoreResult<Vec<(u64, i64)>> {
    const SQL: &str = "SELECT experiment_id, CAST(SUM(size_bytes) AS BIGINT) FROM checkpoints \
                       WHERE state != 'DELETED' GROUP BY experiment_id";
    let convert = |row: &Row<'_>| Ok((row.get(0)?, row.get(1)?));
    match database {
        Database::Sqlite(path) => {
            let conn = rusqlite::Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            let mut statement = conn.prepare(SQL)?;
            let mut rows = statement.query([])?;
            let mut kept = Vec::new();
            while let Some(row) = rows.next()? {
                kept.push(convert(&Row::Sqlite(row))?);
            }
            Ok(kept)
        }
        Database::Postgres(url) => {
            let rows = super::pg::PgClient::connect(url)?.query(SQL, &[])?;
            rows.iter()
                .map(|row| convert(&Row::Postgres(row)))
                .collect()
        }
    }
}

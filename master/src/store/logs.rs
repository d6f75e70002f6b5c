//! Trial log lines.

use rusqlite::params;

use super::{Store, StoreResult};

/// One stored log line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    /// Position in the log.
    pub id: u64,
    /// Trial that printed it.
    pub trial_id: u64,
    /// Allocation that printed it.
    pub allocation_id: String,
    /// stdout, stderr or agent.
    pub stream: String,
    /// The line.
    pub text: String,
    /// Unix milliseconds.
    pub timestamp_ms: i64,
}

impl Store {
    /// Appends log lines of a trial and returns them with their ids.
    pub fn insert_logs(
        &self,
        trial_id: u64,
        allocation_id: &str,
        lines: &[(String, String, i64)],
    ) -> StoreResult<Vec<LogRow>> {
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO logs (trial_id, allocation_id, stream, text, timestamp_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut rows = Vec::with_capacity(lines.len());
        for (stream, text, timestamp_ms) in lines {
            statement.execute(params![trial_id, allocation_id, stream, text, timestamp_ms])?;
            rows.push(LogRow {
                id: self.conn.last_insert_rowid() as u64,
                trial_id,
                allocation_id: allocation_id.to_string(),
                stream: stream.clone(),
                text: text.clone(),
                timestamp_ms: *timestamp_ms,
            });
        }
        Ok(rows)
    }

    /// Log lines of a trial, oldest first.
    pub fn logs_of_trial(&self, trial_id: u64) -> StoreResult<Vec<LogRow>> {
        let mut statement = self.conn.prepare(
            "SELECT id, trial_id, allocation_id, stream, text, timestamp_ms FROM logs WHERE trial_id = ?1 ORDER BY id",
        )?;
        let rows = statement.query_map([trial_id], |row| {
            Ok(LogRow {
                id: row.get(0)?,
                trial_id: row.get(1)?,
                allocation_id: row.get(2)?,
                stream: row.get(3)?,
                text: row.get(4)?,
                timestamp_ms: row.get(5)?,
            })
        })?;
        rows.collect()
    }
}

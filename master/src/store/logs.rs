//! Trial log lines.

use std::collections::HashMap;

use baton_common::proto::TrialLogLine;

use super::value::{Row, params};
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

impl From<LogRow> for TrialLogLine {
    fn from(row: LogRow) -> Self {
        Self {
            id: row.id,
            allocation_id: row.allocation_id,
            stream: row.stream,
            text: row.text,
            timestamp_ms: row.timestamp_ms,
        }
    }
}

impl Store {
    /// Appends log lines of a trial, numbered in `stream_id` from `first_seq` (0: unnumbered), and
    /// returns them with their ids.
    pub fn insert_logs(
        &self,
        trial_id: u64,
        allocation_id: &str,
        (stream_id, first_seq): (&str, u64),
        lines: &[(String, String, i64)],
    ) -> StoreResult<Vec<LogRow>> {
        let mut rows = Vec::with_capacity(lines.len());
        for (index, (stream, text, timestamp_ms)) in lines.iter().enumerate() {
            let seq = match first_seq {
                0 => 0,
                first => first.saturating_add(index as u64),
            };
            let id = self.insert_returning_id(
                "INSERT INTO logs (trial_id, allocation_id, stream, text, timestamp_ms, stream_id, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![trial_id, allocation_id, stream, text, *timestamp_ms, stream_id, seq],
            )?;
            rows.push(LogRow {
                id,
                trial_id,
                allocation_id: allocation_id.to_string(),
                stream: stream.clone(),
                text: text.clone(),
                timestamp_ms: *timestamp_ms,
            });
        }
        Ok(rows)
    }

    /// The highest sequence number stored per log stream of an allocation's numbered lines.
    pub fn last_log_seqs(&self, allocation_id: &str) -> StoreResult<HashMap<String, u64>> {
        let rows = self.query(
            "SELECT stream_id, MAX(seq) FROM logs WHERE allocation_id = ?1 AND seq > 0 GROUP BY stream_id",
            params![allocation_id],
            |row| Ok((row.get::<String>(0)?, row.get::<u64>(1)?)),
        )?;
        Ok(rows.into_iter().collect())
    }

    /// Log lines of a trial, oldest first.
    pub fn logs_of_trial(&self, trial_id: u64) -> StoreResult<Vec<LogRow>> {
        self.query(
            "SELECT id, trial_id, allocation_id, stream, text, timestamp_ms FROM logs WHERE trial_id = ?1 ORDER BY id",
            params![trial_id],
            log_from_row,
        )
    }

    /// At most `limit` log lines of a trial after the line `after`, oldest first.
    pub fn logs_after(&self, trial_id: u64, after: u64, limit: u64) -> StoreResult<Vec<LogRow>> {
        self.query(
            "SELECT id, trial_id, allocation_id, stream, text, timestamp_ms FROM logs WHERE trial_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            params![trial_id, after, limit],
            log_from_row,
        )
    }

    /// The last `count` log lines of a trial, oldest first.
    pub fn logs_tail(&self, trial_id: u64, count: u64) -> StoreResult<Vec<LogRow>> {
        let mut rows = self.query(
            "SELECT id, trial_id, allocation_id, stream, text, timestamp_ms FROM logs WHERE trial_id = ?1 ORDER BY id DESC LIMIT ?2",
            params![trial_id, count],
            log_from_row,
        )?;
        rows.reverse();
        Ok(rows)
    }
}

fn log_from_row(row: &Row<'_>) -> StoreResult<LogRow> {
    Ok(LogRow {
        id: row.get(0)?,
        trial_id: row.get(1)?,
        allocation_id: row.get(2)?,
        stream: row.get(3)?,
        text: row.get(4)?,
        timestamp_ms: row.get(5)?,
    })
}

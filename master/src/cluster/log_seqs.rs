//! Numbered log lines: an agent replays its recent output after a reconnect, and the lines of a
//! message already stored are dropped, so that each line is stored once.

use std::collections::HashMap;

use baton_common::proto::LogLines;

use super::state::{Cluster, ClusterEvent};
use crate::store::StoreResult;

/// The highest sequence number stored per log stream of one allocation.
#[derive(Debug, Clone, Default)]
pub struct LogSeqs(HashMap<String, u64>);

impl LogSeqs {
    /// How many leading lines of a message numbered in `stream_id` from `first_seq` are stored.
    fn stored_prefix(&self, stream_id: &str, first_seq: u64) -> u64 {
        let highest = self.0.get(stream_id).copied().unwrap_or(0);
        highest.saturating_add(1).saturating_sub(first_seq)
    }

    /// Notes that the lines of `stream_id` up to `last_seq` are stored.
    fn stored(&mut self, stream_id: &str, last_seq: u64) {
        let highest = self.0.entry(stream_id.to_string()).or_default();
        *highest = (*highest).max(last_seq);
    }
}

impl Cluster {
    /// Stores the lines of a current allocation's message that are not stored yet.
    pub(super) fn record_logs(&mut self, trial_id: u64, logs: LogLines) -> StoreResult<()> {
        let LogLines {
            allocation_id,
            lines,
            stream_id,
            mut first_seq,
        } = logs;
        let mut lines: Vec<(String, String, i64)> = lines
            .into_iter()
            .map(|l| (l.stream, l.text, l.timestamp_ms))
            .collect();
        let live = self.allocations.get_mut(&allocation_id);
        let seqs = match live {
            Some(live) if first_seq > 0 => {
                if live.log_seqs.is_none() {
                    let stored = self.store.last_log_seqs(&allocation_id)?;
                    live.log_seqs = Some(LogSeqs(stored));
                }
                live.log_seqs.as_mut()
            }
            _ => None,
        };
        if let Some(seqs) = &seqs {
            let skip = seqs.stored_prefix(&stream_id, first_seq);
            lines.drain(..usize::try_from(skip).unwrap_or(usize::MAX).min(lines.len()));
            first_seq = first_seq.saturating_add(skip);
        }
        if lines.is_empty() {
            return Ok(());
        }
        let rows =
            self.store
                .insert_logs(trial_id, &allocation_id, (&stream_id, first_seq), &lines)?;
        if let Some(seqs) = seqs {
            seqs.stored(&stream_id, first_seq.saturating_add(rows.len() as u64 - 1));
        }
        for row in rows {
            let _ = self.events.send(ClusterEvent::Log(row));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

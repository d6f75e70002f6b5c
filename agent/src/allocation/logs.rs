//! Trial output: the trial writes `stdout.log` and `stderr.log` in its allocation directory (so it
//! never blocks on, or dies with, the daemon); the daemon tails them and ships new lines to the
//! master, keeping the shipped offsets on disk so that a restarted daemon resumes where it was.
//! Each trial ships at most its budget of lines per second (with bursts); lines beyond it are
//! dropped, and the trial's log says how many. The lines a pump ships are numbered, so that the
//! session may replay them after a reconnect and the master still stores each once.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use baton_common::proto::{AgentMessage, LogLine, LogLines, agent_message::Body};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use super::record::{AllocationDir, read_json, write_json};

/// Longest line shipped as one log line; longer lines are split.
const MAX_LINE: usize = 64 * 1024;

/// How often the files are checked for new output.
const POLL: Duration = Duration::from_millis(100);

/// Bytes of each stream already shipped.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Offsets {
    stdout: u64,
    stderr: u64,
}

/// Seconds of the rate a trial may ship at once after being quiet.
const BURST_SECONDS: f64 = 10.0;

/// A token bucket of log lines: `rate` a second, at most `BURST_SECONDS` of them saved up.
#[derive(Debug)]
pub struct LogBudget {
    rate: f64,
    tokens: f64,
    refilled: Instant,
    dropped: u64,
}

impl LogBudget {
    /// A full budget of `lines_per_second`.
    pub fn new(lines_per_second: u32) -> Self {
        let rate = f64::from(lines_per_second.max(1));
        Self {
            rate,
            tokens: rate * BURST_SECONDS,
            refilled: Instant::now(),
            dropped: 0,
        }
    }

    /// Keeps the lines the budget allows, counting the rest as dropped.
    fn admit(&mut self, mut lines: Vec<String>, now: Instant) -> Vec<String> {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate * BURST_SECONDS);
        self.refilled = now;
        let kept = lines.len().min(self.tokens as usize);
        self.tokens -= kept as f64;
        self.dropped += (lines.len() - kept) as u64;
        lines.truncate(kept);
        lines
    }

    /// The line that reports lines dropped since the last report, if any.
    fn take_drop_report(&mut self) -> Option<String> {
        let dropped = std::mem::take(&mut self.dropped);
        (dropped > 0).then(|| {
            format!(
                "{dropped} lines of output dropped: the trial wrote more than {} lines/s (the agent's --log-lines-per-second)",
                self.rate
            )
        })
    }
}

/// The numbering of one log pump's lines: a random stream id, and the next line's number.
#[derive(Debug)]
struct Numbering {
    stream_id: String,
    next: u64,
}

impl Numbering {
    /// A new stream, numbered from 1.
    fn new() -> Self {
        Self {
            stream_id: uuid::Uuid::new_v4().to_string(),
            next: 1,
        }
    }

    /// Numbers `lines` for `allocation_id`'s log.
    fn message(&mut self, allocation_id: &str, stream: &str, lines: Vec<String>) -> AgentMessage {
        let first_seq = self.next;
        self.next += lines.len() as u64;
        AgentMessage {
            body: Some(Body::Logs(LogLines {
                stream_id: self.stream_id.clone(),
                first_seq,
                ..batch(allocation_id, stream, lines)
            })),
        }
    }
}

/// Ships the trial's output until `done` turns true, then ships what is left and returns.
pub async fn tail_output(
    dir: AllocationDir,
    allocation_id: String,
    mut budget: LogBudget,
    outbox: mpsc::UnboundedSender<AgentMessage>,
    mut done: watch::Receiver<bool>,
) {
    let offsets_path = dir.path("log-offsets.json");
    let mut offsets: Offsets = read_json(&offsets_path).unwrap_or_default();
    let mut numbering = Numbering::new();
    loop {
        let finished = *done.borrow();
        let mut moved = false;
        for (stream, offset) in [
            ("stdout", &mut offsets.stdout),
            ("stderr", &mut offsets.stderr),
        ] {
            let path = dir.path(&format!("{stream}.log"));
            let (lines, read) = read_lines(path, *offset, finished);
            if read > 0 {
                *offset += read;
                moved = true;
                let lines = budget.admit(lines, Instant::now());
                if !lines.is_empty() {
                    let _ = outbox.send(numbering.message(&allocation_id, stream, lines));
                }
            }
        }
        if let Some(report) = budget.take_drop_report() {
            let _ = outbox.send(numbering.message(&allocation_id, "agent", vec![report]));
        }
        if moved && let Err(e) = write_json(&offsets_path, &offsets) {
            tracing::warn!(allocation = %allocation_id, error = %e, "cannot record log offsets");
        }
        if finished {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = done.changed() => {}
        }
    }
}

/// Complete lines after `offset` and the bytes they span; a trailing partial line is included
/// only when `to_end`.
fn read_lines(path: PathBuf, offset: u64, to_end: bool) -> (Vec<String>, u64) {
    let Ok(mut file) = std::fs::File::open(path) else {
        return (Vec::new(), 0);
    };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return (Vec::new(), 0);
    }
    let mut bytes = Vec::new();
    if file.take(16 * 1024 * 1024).read_to_end(&mut bytes).is_err() {
        return (Vec::new(), 0);
    }
    let end = if to_end {
        bytes.len()
    } else {
        match bytes.iter().rposition(|b| *b == b'\n') {
            Some(last) => last + 1,
            // A line longer than MAX_LINE without a newline yet is shipped in pieces.
            None if bytes.len() >= MAX_LINE => bytes.len(),
            None => 0,
        }
    };
    let mut lines = Vec::new();
    for line in bytes[..end].split(|b| *b == b'\n') {
        if line.is_empty() {
            lines.push(String::new());
        }
        for piece in line.chunks(MAX_LINE) {
            lines.push(String::from_utf8_lossy(piece).into_owned());
        }
    }
    // `split` yields an empty piece after a final newline; it is not a line.
    if bytes[..end].ends_with(b"\n") || end == 0 {
        lines.pop();
    }
    (lines, end as u64)
}

/// Unnumbered log lines of one stream, stamped now.
fn batch(allocation_id: &str, stream: &str, lines: Vec<String>) -> LogLines {
    let timestamp_ms = crate::now_ms();
    LogLines {
        allocation_id: allocation_id.into(),
        lines: lines
            .into_iter()
            .map(|text| LogLine {
                stream: stream.into(),
                text,
                timestamp_ms,
            })
            .collect(),
        ..Default::default()
    }
}

/// One agent-side log line, unnumbered.
pub fn agent_line(allocation_id: &str, text: &str) -> AgentMessage {
    AgentMessage {
        body: Some(Body::Logs(batch(allocation_id, "agent", vec![text.into()]))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_allows_a_burst_then_the_rate_and_counts_the_rest() {
        let start = Instant::now();
        let mut budget = LogBudget::new(100);
        let lines = |n: usize| vec![String::from("x"); n];
        assert_eq!(budget.admit(lines(600), start).len(), 600);
        assert_eq!(budget.admit(lines(600), start).len(), 400);
        let report = budget.take_drop_report().unwrap();
        assert!(
            report.starts_with("200 lines of output dropped"),
            "{report}"
        );
        assert_eq!(budget.take_drop_report(), None);
        let later = start + Duration::from_secs(2);
        assert_eq!(budget.admit(lines(500), later).len(), 200);
        let much_later = start + Duration::from_secs(3600);
        assert_eq!(budget.admit(lines(5000), much_later).len(), 1000);
    }

    #[test]
    fn a_pump_numbers_its_lines_on_across_messages() {
        let mut numbering = Numbering::new();
        let lines = |n: usize| vec![String::from("x"); n];
        let numbers: Vec<(String, u64, usize)> = [
            numbering.message("a1", "stdout", lines(3)),
            numbering.message("a1", "stderr", lines(1)),
            numbering.message("a1", "agent", lines(2)),
        ]
        .into_iter()
        .map(|message| match message.body {
            Some(Body::Logs(logs)) => (logs.stream_id, logs.first_seq, logs.lines.len()),
            other => panic!("not log lines: {other:?}"),
        })
        .collect();
        let stream = numbering.stream_id.clone();
        assert_eq!(
            numbers,
            [
                (stream.clone(), 1, 3),
                (stream.clone(), 4, 1),
                (stream, 5, 2)
            ]
        );
        assert_ne!(Numbering::new().stream_id, numbering.stream_id);
    }

    #[test]
    fn only_complete_lines_are_read_until_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout.log");
        std::fs::write(&path, "one\n\ntwo\nthr").unwrap();
        let (lines, read) = read_lines(path.clone(), 0, false);
        assert_eq!(
            (lines, read),
            (vec!["one".into(), "".into(), "two".into()], 9)
        );
        let (lines, read) = read_lines(path.clone(), 9, false);
        assert_eq!((lines.len(), read), (0, 0));
        let (lines, read) = read_lines(path, 9, true);
        assert_eq!((lines, read), (vec!["thr".to_string()], 3));
    }
}

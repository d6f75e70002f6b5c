//! Trial output: the trial writes `stdout.log` and `stderr.log` in its allocation directory (so it
//! never blocks on, or dies with, the daemon); the daemon tails them and ships new lines to the
//! master, keeping the shipped offsets on disk so that a restarted daemon resumes where it was.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

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

/// Ships the trial's output until `done` turns true, then ships what is left and returns.
pub async fn tail_output(
    dir: AllocationDir,
    allocation_id: String,
    outbox: mpsc::UnboundedSender<AgentMessage>,
    mut done: watch::Receiver<bool>,
) {
    let offsets_path = dir.path("log-offsets.json");
    let mut offsets: Offsets = read_json(&offsets_path).unwrap_or_default();
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
                if !lines.is_empty() {
                    let _ = outbox.send(batch(&allocation_id, stream, lines));
                }
            }
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

fn batch(allocation_id: &str, stream: &str, lines: Vec<String>) -> AgentMessage {
    let timestamp_ms = crate::now_ms();
    AgentMessage {
        body: Some(Body::Logs(LogLines {
            allocation_id: allocation_id.into(),
            lines: lines
                .into_iter()
                .map(|text| LogLine {
                    stream: stream.into(),
                    text,
                    timestamp_ms,
                })
                .collect(),
        })),
    }
}

/// One agent-side log line.
pub fn agent_line(allocation_id: &str, text: &str) -> AgentMessage {
    AgentMessage {
        body: Some(Body::Logs(LogLines {
            allocation_id: allocation_id.into(),
            lines: vec![LogLine {
                stream: "agent".into(),
                text: text.into(),
                timestamp_ms: crate::now_ms(),
            }],
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

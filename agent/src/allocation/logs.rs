//! Trial output: read line by line and shipped to the master in small batches.

use baton_common::proto::{AgentMessage, LogLine, LogLines, agent_message::Body};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

/// Forwards every line of `reader` as log lines of `stream`.
pub async fn pump_lines(
    reader: impl AsyncRead + Unpin,
    stream: &'static str,
    allocation_id: String,
    outbox: mpsc::UnboundedSender<AgentMessage>,
) {
    let mut lines = BufReader::new(reader).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(text)) => {
                let line = LogLine {
                    stream: stream.into(),
                    text,
                    timestamp_ms: now_ms(),
                };
                let _ = outbox.send(AgentMessage {
                    body: Some(Body::Logs(LogLines {
                        allocation_id: allocation_id.clone(),
                        lines: vec![line],
                    })),
                });
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(allocation = %allocation_id, error = %e, "cannot read trial output");
                break;
            }
        }
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
                timestamp_ms: now_ms(),
            }],
        })),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

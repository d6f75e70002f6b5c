//! Reports handed to a session stream lately, replayed after a reconnect in case the stream lost
//! them: the master applies reports idempotently and stores numbered log lines once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use baton_common::proto::{AgentMessage, agent_message::Body};

/// How long sent reports are kept for replay after a reconnect.
const REPLAY_WINDOW: Duration = Duration::from_secs(30);

/// The reports sent within the replay window, oldest first.
#[derive(Debug, Default)]
pub struct Recent(VecDeque<(Instant, AgentMessage)>);

impl Recent {
    /// Keeps a report sent at `now`: not heartbeats (each counts its own session's messages), nor
    /// unnumbered log lines (the master would store them twice).
    pub fn remember(&mut self, message: AgentMessage, now: Instant) {
        while self
            .0
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > REPLAY_WINDOW)
        {
            self.0.pop_front();
        }
        let replayable = match &message.body {
            Some(Body::Heartbeat(_)) => false,
            Some(Body::Logs(logs)) => logs.first_seq > 0,
            _ => true,
        };
        if replayable {
            self.0.push_back((now, message));
        }
    }

    /// Moves the kept reports to the front of `unsent`, in the order they were sent.
    pub fn replay_into(&mut self, unsent: &mut VecDeque<AgentMessage>) {
        for (_, message) in self.0.drain(..).rev() {
            unsent.push_front(message);
        }
    }
}

#[cfg(test)]
mod tests {
    use baton_common::proto::{Heartbeat, LogLines, TrainingReport};

    use super::*;

    fn wrap(body: Body) -> AgentMessage {
        AgentMessage { body: Some(body) }
    }

    fn logs(first_seq: u64) -> AgentMessage {
        wrap(Body::Logs(LogLines {
            allocation_id: "a1".into(),
            stream_id: "s".into(),
            first_seq,
            ..Default::default()
        }))
    }

    fn training(step: u64) -> AgentMessage {
        wrap(Body::Training(TrainingReport {
            allocation_id: "a1".into(),
            step,
            metrics_json: "{}".into(),
        }))
    }

    #[test]
    fn numbered_log_lines_are_replayed_in_order_ahead_of_unsent_reports() {
        let start = Instant::now();
        let mut recent = Recent::default();
        recent.remember(training(1), start);
        recent.remember(logs(1), start);
        recent.remember(logs(0), start);
        recent.remember(wrap(Body::Heartbeat(Heartbeat::default())), start);
        recent.remember(logs(4), start);
        let mut unsent = VecDeque::from([training(2)]);
        recent.replay_into(&mut unsent);
        assert_eq!(
            Vec::from(unsent),
            [training(1), logs(1), logs(4), training(2)]
        );
        let mut again = VecDeque::new();
        recent.replay_into(&mut again);
        assert!(again.is_empty());
    }

    #[test]
    fn reports_older_than_the_window_are_forgotten() {
        let start = Instant::now();
        let mut recent = Recent::default();
        recent.remember(logs(1), start);
        recent.remember(logs(2), start + Duration::from_secs(10));
        recent.remember(training(1), start + REPLAY_WINDOW + Duration::from_secs(1));
        let mut unsent = VecDeque::new();
        recent.replay_into(&mut unsent);
        assert_eq!(Vec::from(unsent), [logs(2), training(1)]);
    }
}

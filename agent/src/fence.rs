//! Self-fencing: an agent cut off from the master stops its trials before the master declares it
//! lost and restarts them elsewhere, so a trial never runs on two agents at once.
//!
//! After `window` without a message from the master the agent suspends its trials (checkpoint,
//! commit, stop) and keeps the reports to replay: if the master was only down, the checkpoint
//! belongs to a still-current allocation and the trial resumes from it; if the agent was cut off
//! and the master moved the trial on, the reports are fenced. A trial still running one second
//! before the master's own deadline (learnt from its welcome) is killed.

use std::time::{Duration, Instant};

/// How far the agent has gone in stopping its trials for lack of contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FenceLevel {
    /// In contact: trials run.
    Clear,
    /// Cut off past the window: trials checkpoint and stop.
    Suspend,
    /// Cut off nearly as long as the master waits: trials are killed.
    Kill,
}

/// The agent's measure of its contact with the master.
#[derive(Debug, Clone)]
pub struct Fence {
    window: Duration,
    last_contact: Instant,
    master_deadline: Option<Duration>,
}

impl Fence {
    /// A fence that acts after `window` without contact, counting from now.
    pub fn new(window: Duration, now: Instant) -> Self {
        Self {
            window,
            last_contact: now,
            master_deadline: None,
        }
    }

    /// A fence for a daemon that starts `since_contact` after its predecessor last heard from
    /// the master (so that a restart during a partition does not reset the count).
    pub fn resumed(window: Duration, now: Instant, since_contact: Duration) -> Self {
        Self {
            window,
            last_contact: now.checked_sub(since_contact).unwrap_or(now),
            master_deadline: None,
        }
    }

    /// Notes a message from the master.
    pub fn contact(&mut self, now: Instant) {
        self.last_contact = now;
    }

    /// Notes the master's agent timeout and heartbeat pace; warns when the window does not leave
    /// time to stop, or is so short that one late acknowledgement would trip it.
    pub fn learn_deadline(&mut self, agent_timeout: Duration, heartbeat: Duration) {
        if self.window < heartbeat * 2 {
            tracing::warn!(fence_window = ?self.window, heartbeat = ?heartbeat,
                "the fence window is under two heartbeats: a late acknowledgement may stop trials; raise --fence-window");
        }
        if agent_timeout.is_zero() {
            return;
        }
        if self.window >= agent_timeout {
            tracing::warn!(fence_window = ?self.window, agent_timeout = ?agent_timeout,
                "the fence window is not below the master's agent timeout: a cut-off agent's trials may run twice; lower --fence-window");
        }
        self.master_deadline = Some(agent_timeout);
    }

    /// What lack of contact calls for at `now`.
    pub fn level(&self, now: Instant) -> FenceLevel {
        let cut_off = now.saturating_duration_since(self.last_contact);
        let kill_at = self.master_deadline.map(|deadline| {
            deadline
                .saturating_sub(Duration::from_secs(1))
                .max(self.window)
        });
        match kill_at {
            Some(kill_at) if cut_off >= kill_at => FenceLevel::Kill,
            _ if cut_off >= self.window => FenceLevel::Suspend,
            _ => FenceLevel::Clear,
        }
    }

    /// How long the agent has been without contact at `now`.
    pub fn cut_off_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_contact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspends_after_the_window_and_kills_just_before_the_master_gives_up() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut fence = Fence::new(s(8), t0);
        assert_eq!(fence.level(t0 + s(7)), FenceLevel::Clear);
        assert_eq!(fence.level(t0 + s(8)), FenceLevel::Suspend);
        assert_eq!(
            fence.level(t0 + s(60)),
            FenceLevel::Suspend,
            "no deadline known yet"
        );
        fence.learn_deadline(s(15), s(2));
        assert_eq!(fence.level(t0 + s(13)), FenceLevel::Suspend);
        assert_eq!(fence.level(t0 + s(14)), FenceLevel::Kill);
        fence.contact(t0 + s(14));
        assert_eq!(fence.level(t0 + s(15)), FenceLevel::Clear);
    }

    #[test]
    fn a_restarted_daemon_keeps_counting_from_the_last_contact() {
        let t0 = Instant::now() + Duration::from_secs(100);
        let fence = Fence::resumed(Duration::from_secs(8), t0, Duration::from_secs(7));
        assert_eq!(fence.level(t0), FenceLevel::Clear);
        assert_eq!(
            fence.level(t0 + Duration::from_secs(1)),
            FenceLevel::Suspend
        );
    }

    #[test]
    fn a_window_past_the_deadline_still_suspends_before_it_kills() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut fence = Fence::new(s(20), t0);
        fence.learn_deadline(s(15), s(2));
        assert_eq!(fence.level(t0 + s(19)), FenceLevel::Clear);
        assert_eq!(fence.level(t0 + s(20)), FenceLevel::Kill);
    }
}

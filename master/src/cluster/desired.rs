//! What the master wants of each allocation, and the pure rules that bring agents in line with it.
//!
//! No single message is trusted to arrive. Every live allocation carries its desired state (run,
//! suspend, kill). A suspend or kill is sent right after each hello of the agent and again on every
//! tick until the agent's reports show it done; agents treat repeats as no-ops. Heartbeats list
//! what the agent runs, in order with its reports, so an allocation the master does not expect is
//! killed (fencing) and one it expects but the agent lacks ends as lost. Every transitional state
//! has a deadline after which the master escalates.

use std::time::{Duration, Instant};

use super::state::StopReason;

/// Why the master wants an allocation killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillReason {
    /// Its experiment was killed: the trial ends CANCELED.
    Canceled,
    /// It was asked to suspend and did not stop in time: it resumes from its latest checkpoint.
    SuspendTimeout(StopReason),
    /// It did not start within the start deadline: it is placed again.
    StartTimeout,
    /// Another part of its allocation (a distributed trial) ended: the whole allocation stops.
    PartEnded,
}

/// What the master wants an allocation to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    /// Keep running.
    Run,
    /// Checkpoint at the next step boundary, then stop.
    Suspend(StopReason),
    /// Stop now, without a checkpoint.
    Kill(KillReason),
}

impl Desired {
    /// The text stored in the database.
    pub fn stored(self) -> String {
        match self {
            Desired::Run => "run".into(),
            Desired::Suspend(reason) => format!("suspend:{}", reason.name()),
            Desired::Kill(KillReason::Canceled) => "kill:canceled".into(),
            Desired::Kill(KillReason::StartTimeout) => "kill:start-timeout".into(),
            Desired::Kill(KillReason::PartEnded) => "kill:part-ended".into(),
            Desired::Kill(KillReason::SuspendTimeout(reason)) => {
                format!("kill:suspend-timeout:{}", reason.name())
            }
        }
    }

    /// Parses stored text; an unknown value is an error, never a default.
    pub fn parse_stored(text: &str) -> Result<Self, String> {
        let suspend = |name: &str| {
            StopReason::parse(name)
                .ok_or_else(|| format!("unknown stop reason {name:?} in desired state {text:?}"))
        };
        match text {
            "run" => Ok(Desired::Run),
            "kill:canceled" => Ok(Desired::Kill(KillReason::Canceled)),
            "kill:start-timeout" => Ok(Desired::Kill(KillReason::StartTimeout)),
            "kill:part-ended" => Ok(Desired::Kill(KillReason::PartEnded)),
            _ => {
                if let Some(name) = text.strip_prefix("kill:suspend-timeout:") {
                    Ok(Desired::Kill(KillReason::SuspendTimeout(suspend(name)?)))
                } else if let Some(name) = text.strip_prefix("suspend:") {
                    Ok(Desired::Suspend(suspend(name)?))
                } else {
                    Err(format!(
                        "unknown desired allocation state {text:?} (expected run, suspend:REASON or kill:REASON)"
                    ))
                }
            }
        }
    }
}

impl Desired {
    /// What the master wants once an operator or the scheduler asks for `wanted`: a kill
    /// overrides a suspend, nothing overrides a kill, a second suspend keeps the first reason, and
    /// nothing goes back to running. None when nothing changes.
    pub fn then(self, wanted: Desired) -> Option<Desired> {
        match (self, wanted) {
            (Desired::Kill(_), _) | (_, Desired::Run) => None,
            (Desired::Suspend(_), Desired::Suspend(_)) => None,
            _ => Some(wanted),
        }
    }
}

/// Deadlines and pacing of the transitional states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// How often an unconfirmed suspend or kill is sent again.
    pub resend_interval: Duration,
    /// Time beyond its preemption timeout a suspending allocation gets before the master has it
    /// killed (the agent's own SIGTERM/SIGKILL normally comes first).
    pub stop_grace: Duration,
    /// How long an allocation may take to start, checkpoint restore included, before it is killed
    /// and placed again.
    pub start_timeout: Duration,
}

/// What the master knows of one live allocation at a tick.
#[derive(Debug, Clone, Copy)]
pub struct TickView {
    /// What the master wants.
    pub desired: Desired,
    /// When it started wanting it.
    pub desired_since: Instant,
    /// When the desired suspend or kill was last sent.
    pub last_sent: Option<Instant>,
    /// Whether the agent has a live stream.
    pub connected: bool,
    /// Whether the agent reported the trial process started.
    pub started: bool,
    /// When the allocation was created (or loaded after a master restart).
    pub created: Instant,
    /// The experiment's preemption timeout.
    pub preemption_timeout: Duration,
}

/// What a tick does for one allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickAction {
    /// Nothing is due.
    Wait,
    /// Send the desired suspend or kill again.
    Resend,
    /// The deadline passed: want a kill instead.
    Escalate(KillReason),
}

/// Decides what a tick does for one allocation.
pub fn on_tick(view: &TickView, now: Instant, deadlines: &Deadlines) -> TickAction {
    let elapsed = |since: Instant| now.saturating_duration_since(since);
    match view.desired {
        Desired::Run if !view.started && elapsed(view.created) > deadlines.start_timeout => {
            TickAction::Escalate(KillReason::StartTimeout)
        }
        Desired::Run => TickAction::Wait,
        Desired::Suspend(reason)
            if elapsed(view.desired_since) > view.preemption_timeout + deadlines.stop_grace =>
        {
            TickAction::Escalate(KillReason::SuspendTimeout(reason))
        }
        _ if !view.connected => TickAction::Wait,
        _ if view
            .last_sent
            .is_none_or(|sent| elapsed(sent) >= deadlines.resend_interval) =>
        {
            TickAction::Resend
        }
        _ => TickAction::Wait,
    }
}

/// Where the start of an allocation was sent: the agent session and the message's place in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentAt {
    /// The agent session.
    pub session: u64,
    /// 1-based position of the message in that session.
    pub seq: u64,
}

/// A live allocation the master expects on an agent.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// Allocation id.
    pub id: &'a str,
    /// Where its start was sent (None: never, or by an earlier master process).
    pub start: Option<SentAt>,
}

/// What an agent's report of its allocations calls for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heal {
    /// Reported but not expected: kill them.
    pub fence: Vec<String>,
    /// Expected but not reported although the agent had its start: they are gone.
    pub lost: Vec<String>,
}

/// Compares what an agent reports with what the master expects of it.
///
/// `received` is how many master messages of `session` the agent had handled when it reported
/// (None for a hello, sent before anything of its session). An allocation whose start the agent may
/// not have handled yet is neither lost nor fenced.
pub fn compare(
    expected: &[Expected<'_>],
    reported: &[&str],
    session: u64,
    received: Option<u64>,
) -> Heal {
    let fence = reported
        .iter()
        .filter(|id| !expected.iter().any(|e| e.id == **id))
        .map(|id| id.to_string())
        .collect();
    let lost = expected
        .iter()
        .filter(|e| !reported.contains(&e.id))
        .filter(|e| match e.start {
            Some(sent) if sent.session == session => received.is_some_and(|r| r >= sent.seq),
            _ => true,
        })
        .map(|e| e.id.to_string())
        .collect();
    Heal { fence, lost }
}

#[cfg(test)]
mod tests;

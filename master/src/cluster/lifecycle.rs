//! Pure lifecycle decisions: what an allocation's end means, and what its trial becomes.

use std::time::Duration;

use baton_common::config::RestartBackoff;
use baton_common::proto::ExitKind;

use super::desired::{Desired, KillReason};
use crate::states::TrialState;

/// What happens to a trial when its allocation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The trial is done.
    Completed,
    /// The trial goes back to the queue (without counting a restart).
    Requeue,
    /// The trial failed: requeued while restarts remain, else ERRORED.
    Failed,
    /// The trial was canceled.
    Canceled,
}

/// The exit reason recorded for an allocation that ended as the agent says, given what the master
/// wanted of it and whether it trained a step, and what that means for the trial.
///
/// A run killed without the master asking (its process or supervisor vanished, its lease lapsed)
/// is requeued for free once it trained a step; before that, whatever killed it may do so again
/// on every start, so it counts against `max_restarts` and backs off like a failure.
pub fn classify_exit(
    kind: ExitKind,
    desired: Desired,
    progressed: bool,
) -> (&'static str, Outcome) {
    match (kind, desired) {
        (ExitKind::Completed, _) => ("completed", Outcome::Completed),
        (ExitKind::Suspended, Desired::Suspend(stop)) => (stop.exit_reason(), Outcome::Requeue),
        (ExitKind::Suspended, _) => ("suspended", Outcome::Requeue),
        (ExitKind::KilledAfterTimeout, _)
        | (ExitKind::Killed, Desired::Kill(KillReason::SuspendTimeout(_))) => {
            ("killed-after-timeout", Outcome::Requeue)
        }
        (ExitKind::Killed, Desired::Kill(KillReason::Canceled)) => ("canceled", Outcome::Canceled),
        (ExitKind::Killed, Desired::Kill(KillReason::StartTimeout)) => {
            ("start-timeout", Outcome::Requeue)
        }
        (ExitKind::Killed, Desired::Kill(KillReason::PartEnded)) => {
            ("part-ended", Outcome::Requeue)
        }
        (ExitKind::Killed, Desired::Run) if !progressed => ("killed", Outcome::Failed),
        (ExitKind::Killed, _) => ("killed", Outcome::Requeue),
        (ExitKind::Failed | ExitKind::Unspecified, _) => ("failed", Outcome::Failed),
    }
}

/// A trial after one of its allocations ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NextTrial {
    /// Its new state.
    pub state: TrialState,
    /// Failures counted against `max_restarts` so far.
    pub restarts: u32,
    /// How long it waits before it may be placed again (restart backoff).
    pub wait: Option<Duration>,
}

/// What a trial becomes after an allocation with `outcome` ended.
pub fn next_trial(
    outcome: Outcome,
    experiment_canceled: bool,
    restarts: u32,
    max_restarts: u32,
    backoff: &RestartBackoff,
) -> NextTrial {
    let settle = |state| NextTrial {
        state,
        restarts,
        wait: None,
    };
    match outcome {
        Outcome::Completed => settle(TrialState::Completed),
        _ if experiment_canceled => settle(TrialState::Canceled),
        Outcome::Canceled => settle(TrialState::Canceled),
        Outcome::Requeue => settle(TrialState::Queued),
        Outcome::Failed => {
            let restarts = restarts + 1;
            if restarts > max_restarts {
                NextTrial {
                    state: TrialState::Errored,
                    restarts,
                    wait: None,
                }
            } else {
                NextTrial {
                    state: TrialState::Queued,
                    restarts,
                    wait: Some(backoff.delay(restarts)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::state::StopReason;

    #[test]
    fn exits_are_named_by_what_the_master_wanted() {
        let rows = [
            (
                ExitKind::Completed,
                Desired::Run,
                "completed",
                Outcome::Completed,
            ),
            (
                ExitKind::Completed,
                Desired::Suspend(StopReason::Moved),
                "completed",
                Outcome::Completed,
            ),
            (
                ExitKind::Suspended,
                Desired::Suspend(StopReason::Moved),
                "moved",
                Outcome::Requeue,
            ),
            (
                ExitKind::Suspended,
                Desired::Suspend(StopReason::Disabled),
                "suspended-by-disable",
                Outcome::Requeue,
            ),
            (
                ExitKind::Suspended,
                Desired::Run,
                "suspended",
                Outcome::Requeue,
            ),
            (
                ExitKind::KilledAfterTimeout,
                Desired::Suspend(StopReason::Preempted),
                "killed-after-timeout",
                Outcome::Requeue,
            ),
            (
                ExitKind::Killed,
                Desired::Kill(KillReason::SuspendTimeout(StopReason::Paused)),
                "killed-after-timeout",
                Outcome::Requeue,
            ),
            (
                ExitKind::Killed,
                Desired::Kill(KillReason::Canceled),
                "canceled",
                Outcome::Canceled,
            ),
            (
                ExitKind::Killed,
                Desired::Kill(KillReason::StartTimeout),
                "start-timeout",
                Outcome::Requeue,
            ),
            (ExitKind::Killed, Desired::Run, "killed", Outcome::Requeue),
            (
                ExitKind::Failed,
                Desired::Kill(KillReason::Canceled),
                "failed",
                Outcome::Failed,
            ),
            (
                ExitKind::Unspecified,
                Desired::Run,
                "failed",
                Outcome::Failed,
            ),
        ];
        for (kind, desired, reason, outcome) in rows {
            assert_eq!(
                classify_exit(kind, desired, true),
                (reason, outcome),
                "{kind:?} {desired:?}"
            );
        }
    }

    #[test]
    fn an_unasked_kill_before_the_first_step_counts_as_a_failure() {
        assert_eq!(
            classify_exit(ExitKind::Killed, Desired::Run, false),
            ("killed", Outcome::Failed)
        );
        assert_eq!(
            classify_exit(ExitKind::Killed, Desired::Run, true),
            ("killed", Outcome::Requeue)
        );
        let asked = [
            Desired::Suspend(StopReason::Moved),
            Desired::Kill(KillReason::StartTimeout),
            Desired::Kill(KillReason::Canceled),
        ];
        for desired in asked {
            assert_ne!(
                classify_exit(ExitKind::Killed, desired, false).1,
                Outcome::Failed,
                "{desired:?}"
            );
        }
    }

    #[test]
    fn failures_back_off_then_error_past_max_restarts() {
        let backoff = RestartBackoff {
            initial_seconds: 1.0,
            max_seconds: 60.0,
        };
        let first = next_trial(Outcome::Failed, false, 0, 2, &backoff);
        assert_eq!(
            (first.state, first.restarts, first.wait),
            (TrialState::Queued, 1, Some(Duration::from_secs(1)))
        );
        let second = next_trial(Outcome::Failed, false, 1, 2, &backoff);
        assert_eq!(second.wait, Some(Duration::from_secs(2)));
        let third = next_trial(Outcome::Failed, false, 2, 2, &backoff);
        assert_eq!(
            (third.state, third.restarts, third.wait),
            (TrialState::Errored, 3, None)
        );
    }

    #[test]
    fn a_canceled_experiment_ends_its_trials_unless_they_completed() {
        let backoff = RestartBackoff::default();
        for outcome in [Outcome::Requeue, Outcome::Failed, Outcome::Canceled] {
            let next = next_trial(outcome, true, 0, 3, &backoff);
            assert_eq!(
                (next.state, next.restarts),
                (TrialState::Canceled, 0),
                "{outcome:?}"
            );
        }
        assert_eq!(
            next_trial(Outcome::Completed, true, 0, 3, &backoff).state,
            TrialState::Completed
        );
        assert_eq!(
            next_trial(Outcome::Requeue, false, 0, 3, &backoff).state,
            TrialState::Queued
        );
    }
}

//! Lifecycle states of trials and experiments: enums in memory, upper-case names in the database
//! and the API. A stored name that is not a state is an error, never a default.

use std::fmt;
use std::str::FromStr;

/// A name that is not a state of the kind asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} state {value:?} (expected {expected})")]
pub struct UnknownState {
    /// "trial" or "experiment".
    pub kind: &'static str,
    /// The name found.
    pub value: String,
    /// The names allowed.
    pub expected: &'static str,
}

/// Where a trial is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrialState {
    /// Waiting for slots.
    Queued,
    /// Trained to its rung of an adaptive search (`adaptive_asha`); waits to be promoted (queued
    /// again) or stopped (completed).
    Paused,
    /// Placed; the agent is preparing it.
    Starting,
    /// The trial process runs.
    Running,
    /// Asked to checkpoint and stop.
    Suspending,
    /// Asked to stop without a checkpoint (killed, or past a deadline).
    Killing,
    /// Trained to completion.
    Completed,
    /// Killed by an operator.
    Canceled,
    /// Failed more than `max_restarts` times.
    Errored,
}

impl TrialState {
    /// Every trial state.
    pub const ALL: [Self; 9] = [
        Self::Queued,
        Self::Paused,
        Self::Starting,
        Self::Running,
        Self::Suspending,
        Self::Killing,
        Self::Completed,
        Self::Canceled,
        Self::Errored,
    ];

    /// The name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Paused => "PAUSED",
            Self::Starting => "STARTING",
            Self::Running => "RUNNING",
            Self::Suspending => "SUSPENDING",
            Self::Killing => "KILLING",
            Self::Completed => "COMPLETED",
            Self::Canceled => "CANCELED",
            Self::Errored => "ERRORED",
        }
    }

    /// Whether a trial in this state will never run again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Canceled | Self::Errored)
    }
}

/// Where an experiment is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExperimentState {
    /// Trials are scheduled.
    Active,
    /// Trials are suspended and not scheduled.
    Paused,
    /// Every trial ended and at least one completed.
    Completed,
    /// Killed by an operator.
    Canceled,
    /// Every trial ended and none completed.
    Errored,
    /// Being deleted: its checkpoints are deleted from storage, then its records.
    Deleting,
}

impl ExperimentState {
    /// Every experiment state.
    pub const ALL: [Self; 6] = [
        Self::Active,
        Self::Paused,
        Self::Completed,
        Self::Canceled,
        Self::Errored,
        Self::Deleting,
    ];

    /// The name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Paused => "PAUSED",
            Self::Completed => "COMPLETED",
            Self::Canceled => "CANCELED",
            Self::Errored => "ERRORED",
            Self::Deleting => "DELETING",
        }
    }

    /// Whether an experiment in this state is over.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Canceled | Self::Errored | Self::Deleting
        )
    }
}

impl fmt::Display for TrialState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ExperimentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `word` after the article it takes by its first letter: "an ACTIVE", "a PAUSED".
pub fn with_article(word: &str) -> String {
    let vowel = word
        .chars()
        .next()
        .is_some_and(|c| "AEIOUaeiou".contains(c));
    format!("{} {word}", if vowel { "an" } else { "a" })
}

/// The state among `all` named `text`.
fn parse_among<T: Copy>(
    all: &[T],
    name: fn(T) -> &'static str,
    text: &str,
    kind: &'static str,
    expected: &'static str,
) -> Result<T, UnknownState> {
    all.iter()
        .copied()
        .find(|state| name(*state) == text)
        .ok_or_else(|| UnknownState {
            kind,
            value: text.to_string(),
            expected,
        })
}

impl FromStr for TrialState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = "QUEUED, PAUSED, STARTING, RUNNING, SUSPENDING, KILLING, COMPLETED, CANCELED or ERRORED";
        parse_among(&Self::ALL, Self::as_str, s, "trial", expected)
    }
}

impl FromStr for ExperimentState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = "ACTIVE, PAUSED, COMPLETED, CANCELED, ERRORED or DELETING";
        parse_among(&Self::ALL, Self::as_str, s, "experiment", expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for state in TrialState::ALL {
            assert_eq!(state.as_str().parse(), Ok(state));
        }
        for state in ExperimentState::ALL {
            assert_eq!(state.as_str().parse(), Ok(state));
        }
        let error = "queued".parse::<TrialState>().unwrap_err().to_string();
        assert!(error.contains("unknown trial state \"queued\""), "{error}");
        assert!("DONE".parse::<ExperimentState>().is_err());
    }

    #[test]
    fn the_article_goes_by_the_word() {
        assert_eq!(with_article("ACTIVE"), "an ACTIVE");
        assert_eq!(with_article("ERRORED"), "an ERRORED");
        assert_eq!(with_article("PAUSED"), "a PAUSED");
        assert_eq!(with_article("int"), "an int");
        assert_eq!(with_article("double"), "a double");
    }
}

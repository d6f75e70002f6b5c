//! The restart backoff: how long a failed trial waits before it runs again.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, require};

/// Waits between restarts after failures: `initial_seconds`, doubling per failure, capped.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartBackoff {
    /// Wait before the first restart (0 restarts at once).
    #[serde(default = "default_initial")]
    pub initial_seconds: f64,
    /// Longest wait.
    #[serde(default = "default_max")]
    pub max_seconds: f64,
}

fn default_initial() -> f64 {
    1.0
}

fn default_max() -> f64 {
    60.0
}

impl Default for RestartBackoff {
    fn default() -> Self {
        Self {
            initial_seconds: default_initial(),
            max_seconds: default_max(),
        }
    }
}

impl RestartBackoff {
    /// Checks that both waits are finite, non-negative and in order.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let seconds = |value: f64| (0.0..=86_400.0).contains(&value);
        require(
            seconds(self.initial_seconds),
            "restart_backoff.initial_seconds",
            || {
                format!(
                    "must be a number of seconds from 0 to 86400 (got {})",
                    self.initial_seconds
                )
            },
        )?;
        require(
            seconds(self.max_seconds) && self.max_seconds >= self.initial_seconds,
            "restart_backoff.max_seconds",
            || {
                format!(
                    "must be a number of seconds from initial_seconds ({}) to 86400 (got {})",
                    self.initial_seconds, self.max_seconds
                )
            },
        )
    }

    /// The wait before running again after the `failures`-th failure (1-based).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(62) as i32;
        let seconds = (self.initial_seconds * 2f64.powi(doublings)).min(self.max_seconds);
        Duration::from_secs_f64(seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_initial_wait_up_to_the_cap() {
        let backoff = RestartBackoff {
            initial_seconds: 1.0,
            max_seconds: 10.0,
        };
        let delays: Vec<u64> = (1..=6).map(|n| backoff.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        assert_eq!(backoff.delay(1000).as_secs(), 10);
        let immediate = RestartBackoff {
            initial_seconds: 0.0,
            max_seconds: 0.0,
        };
        assert_eq!(immediate.delay(3), Duration::ZERO);
    }
}

//! The searcher section: the search algorithm, the metric and the training length.

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, at_least_one, non_empty};

/// The searcher: which trials to run and how long to train each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearcherConfig {
    /// Which search algorithm proposes trials.
    pub name: SearcherName,
    /// Validation metric that ranks trials and checkpoints.
    pub metric: String,
    /// Whether a smaller metric is better.
    #[serde(default = "default_true")]
    pub smaller_is_better: bool,
    /// Steps each trial trains for.
    pub max_length: u64,
    /// Number of trials: required by `random`, a cap for `grid`, ignored by `single`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_trials: Option<u32>,
    /// Seed of the random searcher.
    #[serde(default)]
    pub seed: u64,
}

fn default_true() -> bool {
    true
}

/// The search algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearcherName {
    /// One trial with fixed values.
    Single,
    /// Every combination of grid points.
    Grid,
    /// `max_trials` random samples.
    Random,
}

impl SearcherConfig {
    /// Checks the metric, the length and the trial count against the searcher.
    pub fn validate(&self) -> Result<(), ConfigError> {
        non_empty("searcher.metric", &self.metric)?;
        at_least_one("searcher.max_length", self.max_length)?;
        match self.max_trials {
            Some(n) => at_least_one("searcher.max_trials", n.into()),
            None if self.name == SearcherName::Random => Err(ConfigError::invalid(
                "searcher.max_trials",
                "required by the random searcher (the number of trials to sample)",
            )),
            None => Ok(()),
        }
    }
}

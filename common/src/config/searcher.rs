//! The searcher section: the search algorithm, the metric, the training length and the early
//! stopping knobs of `adaptive_asha`.

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, at_least_one, non_empty, require};

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
    /// Steps each trial trains for (for `adaptive_asha`, the trials that are never stopped early).
    pub max_length: u64,
    /// Number of trials: required by `random` and `adaptive_asha`, a cap for `grid`, ignored by
    /// `single`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_trials: Option<u32>,
    /// Seed of the `random` and `adaptive_asha` searchers.
    #[serde(default)]
    pub seed: u64,
    /// `adaptive_asha` only: ratio of consecutive rung lengths and of trials kept per rung.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divisor: Option<u32>,
    /// `adaptive_asha` only: most rungs of a bracket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rungs: Option<u32>,
    /// `adaptive_asha` only: how many brackets, from the most aggressive early stopping down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<AdaptiveMode>,
    /// `adaptive_asha` only: most trials training at once (0: as many as the cluster runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_trials: Option<u32>,
}

fn default_true() -> bool {
    true
}

/// The search algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearcherName {
    /// One trial with fixed values.
    Single,
    /// Every combination of grid points.
    Grid,
    /// `max_trials` random samples.
    Random,
    /// `max_trials` random samples, stopped early by asynchronous successive halving.
    AdaptiveAsha,
}

impl SearcherName {
    /// The name as the config writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SearcherName::Single => "single",
            SearcherName::Grid => "grid",
            SearcherName::Random => "random",
            SearcherName::AdaptiveAsha => "adaptive_asha",
        }
    }
}

/// How `adaptive_asha` spreads trials over brackets of different early-stopping strength.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdaptiveMode {
    /// One bracket: the most aggressive early stopping.
    Aggressive,
    /// The more aggressive half of the brackets.
    #[default]
    Standard,
    /// Every bracket, down to one that trains all its trials to `max_length`.
    Conservative,
}

/// Default `divisor` of `adaptive_asha`.
const DEFAULT_DIVISOR: u32 = 4;

/// Default `max_rungs` of `adaptive_asha`.
const DEFAULT_MAX_RUNGS: u32 = 5;

impl SearcherConfig {
    /// `divisor`, or its default.
    pub fn divisor(&self) -> u32 {
        self.divisor.unwrap_or(DEFAULT_DIVISOR)
    }

    /// `max_rungs`, or its default.
    pub fn max_rungs(&self) -> u32 {
        self.max_rungs.unwrap_or(DEFAULT_MAX_RUNGS)
    }

    /// `mode`, or its default.
    pub fn mode(&self) -> AdaptiveMode {
        self.mode.unwrap_or_default()
    }

    /// Most trials training at once; `None` when there is no limit (absent or 0).
    pub fn concurrency_limit(&self) -> Option<u32> {
        self.max_concurrent_trials.filter(|&limit| limit > 0)
    }

    /// Checks the metric, the length, the trial count and the knobs against the searcher.
    pub fn validate(&self) -> Result<(), ConfigError> {
        non_empty("searcher.metric", &self.metric)?;
        at_least_one("searcher.max_length", self.max_length)?;
        match (self.max_trials, self.name) {
            (Some(n), _) => at_least_one("searcher.max_trials", n.into())?,
            (None, SearcherName::Random | SearcherName::AdaptiveAsha) => {
                return Err(ConfigError::invalid(
                    "searcher.max_trials",
                    format!(
                        "required by the {} searcher (the number of trials to sample)",
                        self.name.as_str()
                    ),
                ));
            }
            (None, _) => {}
        }
        if self.name == SearcherName::AdaptiveAsha {
            let divisor = self.divisor();
            require(divisor >= 2, "searcher.divisor", || {
                format!("must be at least 2 (got {divisor})")
            })?;
            return at_least_one("searcher.max_rungs", self.max_rungs().into());
        }
        let adaptive_only = [
            ("searcher.divisor", self.divisor.is_some()),
            ("searcher.max_rungs", self.max_rungs.is_some()),
            ("searcher.mode", self.mode.is_some()),
            (
                "searcher.max_concurrent_trials",
                self.max_concurrent_trials.is_some(),
            ),
        ];
        for (path, set) in adaptive_only {
            require(!set, path, || {
                format!(
                    "only used by the adaptive_asha searcher (got name: {})",
                    self.name.as_str()
                )
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

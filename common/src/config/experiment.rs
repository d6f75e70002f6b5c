//! The top level of an experiment config: its fields, parsing and validation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::backoff::RestartBackoff;
use super::error::{ConfigError, non_empty, path_string, require};
use super::hyperparameter::Hyperparameter;
use super::limits::check_config_text;
use super::resources::ResourcesConfig;
use super::searcher::SearcherConfig;
use super::storage::CheckpointStorageConfig;

/// An experiment as its author writes it in YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Human-readable name of the experiment.
    pub name: String,
    /// Command line run in the context directory, e.g. `python3 train.py --epochs 3`.
    pub entrypoint: String,
    /// Hyperparameters by name: constants or ranges for the searcher.
    #[serde(default)]
    pub hyperparameters: BTreeMap<String, Hyperparameter>,
    /// How trials are proposed and how long each one trains.
    pub searcher: SearcherConfig,
    /// Slots and priority of each trial.
    #[serde(default)]
    pub resources: ResourcesConfig,
    /// Checkpoint at least every this many steps (0 = only when asked or at the end).
    #[serde(default)]
    pub min_checkpoint_period: u64,
    /// Validate at least every this many steps (0 = only when asked or at the end).
    #[serde(default)]
    pub min_validation_period: u64,
    /// How many times a failing trial is restarted from its latest checkpoint.
    #[serde(default = "default_max_restarts")]
    pub max_restarts: u32,
    /// How long a failed trial waits before it runs again.
    #[serde(default)]
    pub restart_backoff: RestartBackoff,
    /// Seconds a trial has to reach a step boundary when asked to stop, before it is killed.
    #[serde(default = "default_preemption_timeout")]
    pub preemption_timeout: u64,
    /// Where checkpoints go and which of them garbage collection keeps.
    pub checkpoint_storage: CheckpointStorageConfig,
}

fn default_max_restarts() -> u32 {
    5
}

fn default_preemption_timeout() -> u64 {
    60
}

/// Parses an experiment config from YAML and validates it.
pub fn parse_experiment_config(yaml: &str) -> Result<ExperimentConfig, ConfigError> {
    if yaml.trim().is_empty() {
        return Err(ConfigError::Parse {
            path: "experiment config".to_string(),
            message:
                "is empty; it needs at least name, entrypoint, searcher and checkpoint_storage"
                    .to_string(),
        });
    }
    check_config_text(yaml)?;
    // Syntax errors first: typed parsing can stop at a wrong type before reaching them.
    if let Err(err) = serde_norway::from_str::<serde_norway::Value>(yaml) {
        return Err(ConfigError::Parse {
            path: "experiment config".to_string(),
            message: format!("is not valid YAML: {err}"),
        });
    }
    let deserializer = serde_norway::Deserializer::from_str(yaml);
    let config: ExperimentConfig =
        serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let path = path_string(err.path());
            ConfigError::parse(&path, &err.into_inner().to_string())
        })?;
    config.validate()?;
    Ok(config)
}

impl ExperimentConfig {
    /// Checks the values that parsing alone cannot: ranges, required combinations, paths.
    pub fn validate(&self) -> Result<(), ConfigError> {
        non_empty("name", &self.name)?;
        non_empty("entrypoint", &self.entrypoint)?;
        for (name, hp) in &self.hyperparameters {
            require(!name.trim().is_empty(), "hyperparameters", || {
                format!("names must not be empty (got {name:?})")
            })?;
            hp.validate(&format!("hyperparameters.{name}"))?;
        }
        self.searcher.validate()?;
        self.resources.validate()?;
        require(self.preemption_timeout >= 1, "preemption_timeout", || {
            format!(
                "must be at least 1 second (got {})",
                self.preemption_timeout
            )
        })?;
        self.restart_backoff.validate()?;
        self.checkpoint_storage.validate()
    }
}

#[cfg(test)]
mod tests;

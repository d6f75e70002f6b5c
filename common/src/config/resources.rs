//! The resources section: slots and scheduling priority of each trial.

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, at_least_one, require};

/// Resources of each trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesConfig {
    /// Slots (GPUs) each trial needs on one agent.
    #[serde(default = "default_slots_per_trial")]
    pub slots_per_trial: u32,
    /// Scheduling priority, 1 to 99; a lower number is more important.
    #[serde(default = "default_priority")]
    pub priority: u32,
}

fn default_slots_per_trial() -> u32 {
    1
}

fn default_priority() -> u32 {
    42
}

impl Default for ResourcesConfig {
    fn default() -> Self {
        ResourcesConfig {
            slots_per_trial: default_slots_per_trial(),
            priority: default_priority(),
        }
    }
}

impl ResourcesConfig {
    /// Checks the slot count and the priority range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("resources.slots_per_trial", self.slots_per_trial.into())?;
        require(
            (1..=99).contains(&self.priority),
            "resources.priority",
            || {
                format!(
                    "must be from 1 to 99, lower is more important (got {})",
                    self.priority
                )
            },
        )
    }
}

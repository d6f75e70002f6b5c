//! The resources section: slots and scheduling priority of each trial.

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, at_least_one, require};

/// Resources of each trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesConfig {
    /// Slots (GPUs) each trial needs; more than one agent has are taken on several agents.
    #[serde(default = "default_slots_per_trial")]
    pub slots_per_trial: u32,
    /// Rank processes each agent of a trial starts (absent: one per slot it gives the trial; 1
    /// for launchers such as `torchrun` that start the local workers themselves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes_per_agent: Option<u32>,
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
            processes_per_agent: None,
            priority: default_priority(),
        }
    }
}

impl ResourcesConfig {
    /// Rank processes on an agent that gives the trial `slots` slots.
    pub fn processes_on(&self, slots: u32) -> u32 {
        self.processes_per_agent.unwrap_or(slots).max(1)
    }

    /// Checks the slot count and the priority range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("resources.slots_per_trial", self.slots_per_trial.into())?;
        if let Some(processes) = self.processes_per_agent {
            at_least_one("resources.processes_per_agent", processes.into())?;
        }
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

//! Why a trial is in its state: what it waits for, what the master is retrying.

use std::time::Instant;

use baton_common::proto::AllocationPhase;

use super::desired::Desired;
use super::reconcile::kill_text;
use super::search;
use super::state::{AgentMode, Cluster, LiveAllocation};
use crate::states::TrialState;

impl Cluster {
    /// A sentence on why trial `trial_id` is where it is, or "" when nothing needs saying.
    pub(super) fn state_reason(&self, trial_id: u64) -> String {
        let Some(trial) = self.trials.get(&trial_id) else {
            return String::new();
        };
        match trial
            .allocation
            .as_ref()
            .and_then(|a| self.allocations.get(a))
        {
            Some(live) => self.allocation_reason(live),
            None if trial.row.state == TrialState::Paused => self
                .experiments
                .get(&trial.row.experiment_id)
                .map(|e| search::waiting_reason(e, &trial.row))
                .unwrap_or_default(),
            None => self.waiting.get(&trial_id).cloned().unwrap_or_default(),
        }
    }

    /// Warnings for a new experiment whose trials no connected agent could ever fit.
    pub fn placement_warnings(&self, experiment_id: u64) -> Vec<String> {
        let Some(experiment) = self.experiments.get(&experiment_id) else {
            return Vec::new();
        };
        let needed = experiment.config.resources.slots_per_trial as usize;
        let sizes: Vec<usize> = self
            .agents
            .values()
            .filter(|a| a.link.is_some() && a.mode == AgentMode::Enabled)
            .map(|a| a.slots.len())
            .collect();
        let total: usize = sizes.iter().sum();
        if sizes.is_empty() {
            vec!["no enabled agent is connected: the trials wait until one joins".to_string()]
        } else if total < needed {
            vec![format!(
                "each trial needs {needed} slots (resources.slots_per_trial) but the {} connected agents have {total} in all (the largest {}): the trials wait until more agents join",
                sizes.len(),
                sizes.iter().max().unwrap_or(&0)
            )]
        } else {
            Vec::new()
        }
    }

    fn allocation_reason(&self, live: &LiveAllocation) -> String {
        let now = self.now();
        let agent_id = &live.row.agent_id;
        let connected = self.agents.get(agent_id).is_some_and(|a| a.link.is_some());
        let link = if connected {
            match live.phase {
                Some(phase) => format!("agent {agent_id} reports it {}", phase_text(phase)),
                None => format!("agent {agent_id} has not reported it yet"),
            }
        } else {
            format!(
                "agent {agent_id} is disconnected; the request is sent again when it reconnects"
            )
        };
        let ago = |since: Instant| now.saturating_duration_since(since).as_secs();
        match live.desired {
            Desired::Run if !live.started => format!(
                "placed on agent {agent_id} {} s ago; {link}",
                ago(live.created)
            ),
            Desired::Run => String::new(),
            Desired::Suspend(reason) => format!(
                "suspend ({}) requested {} s ago, sent {} times; {link}",
                reason.name(),
                ago(live.desired_since),
                live.sends
            ),
            Desired::Kill(reason) => format!(
                "kill ({}) requested {} s ago, sent {} times; {link}",
                kill_text(reason),
                ago(live.desired_since),
                live.sends
            ),
        }
    }
}

fn phase_text(phase: AllocationPhase) -> &'static str {
    match phase {
        AllocationPhase::Unspecified => "in an unknown phase",
        AllocationPhase::Starting => "starting (restoring its checkpoint)",
        AllocationPhase::Running => "running",
        AllocationPhase::Suspending => "saving its suspend checkpoint",
        AllocationPhase::Exiting => "exiting",
    }
}

//! The state gauges of the metrics, set from the in-memory model when a scrape asks.

use super::state::Cluster;
use crate::states::{ExperimentState, TrialState};

/// Agent states as the `state` label of `baton_agents` counts them; a disconnected agent counts
/// as `disconnected` whatever its mode.
const AGENT_STATES: [&str; 4] = ["enabled", "disabled", "draining", "disconnected"];

impl Cluster {
    /// Sets agent, slot, heartbeat, trial, experiment and queue gauges from the current state.
    pub(super) fn refresh_metrics(&self) {
        let metrics = &self.settings.metrics;
        let now = self.now();
        for state in AGENT_STATES {
            metrics.agents.with_label_values(&[state]).set(0);
        }
        metrics.agent_slots.reset();
        metrics.agent_slots_used.reset();
        metrics.agent_heartbeat_age.reset();
        for agent in self.agents.values() {
            let state = if agent.link.is_some() {
                agent.mode.as_str()
            } else {
                "disconnected"
            };
            metrics.agents.with_label_values(&[state]).inc();
            let used: usize = agent
                .allocations
                .iter()
                .filter_map(|id| self.allocations.get(id))
                .map(|a| a.row.slot_ids.len())
                .sum();
            let label = [agent.id.as_str()];
            metrics
                .agent_slots
                .with_label_values(&label)
                .set(agent.slots.len() as i64);
            metrics
                .agent_slots_used
                .with_label_values(&label)
                .set(used as i64);
            metrics
                .agent_heartbeat_age
                .with_label_values(&label)
                .set(now.saturating_duration_since(agent.last_seen).as_secs_f64());
        }
        for state in TrialState::ALL {
            let count = self
                .trials
                .values()
                .filter(|t| t.row.state == state)
                .count();
            metrics
                .trials
                .with_label_values(&[state.as_str()])
                .set(count as i64);
        }
        for state in ExperimentState::ALL {
            let count = self
                .experiments
                .values()
                .filter(|e| e.row.state == state)
                .count();
            metrics
                .experiments
                .with_label_values(&[state.as_str()])
                .set(count as i64);
        }
    }
}

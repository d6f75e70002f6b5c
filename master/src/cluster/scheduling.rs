//! Turning queued trials into allocations, and preempting for more important ones.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::desired::Desired;
use super::state::{AgentMode, Cluster, StopReason};
use crate::scheduler::{
    AgentCapacity, AgentSummary, PendingTrial, RunningAllocation, choose_preemptions, place,
    why_waiting,
};
use crate::states::{ExperimentState, TrialState};

/// Most allocations one scheduling pass starts, the most important first; the next pass starts
/// more once the commands queued meanwhile are applied.
const STARTS_PER_PASS: usize = 1000;

impl Cluster {
    /// Places queued trials when something changed since the last pass, and notes why the
    /// others wait.
    pub fn schedule_if_needed(&mut self) {
        if !self.needs_schedule {
            return;
        }
        self.needs_schedule = false;
        self.waiting.clear();
        let pending = self.pending_trials(self.now());
        if pending.is_empty() {
            return;
        }
        let capacity = self.free_capacity();
        let mut placements = place(&pending, &capacity);
        if placements.len() > STARTS_PER_PASS {
            placements.truncate(STARTS_PER_PASS);
            self.start_allocations(&placements);
            self.needs_schedule = true;
            return;
        }
        self.start_allocations(&placements);
        let placed: HashSet<u64> = placements.iter().map(|p| p.trial_id).collect();
        let unplaced: Vec<&PendingTrial> = pending
            .iter()
            .filter(|t| !placed.contains(&t.trial_id))
            .collect();
        let agents = self.agent_summaries();
        let most_important = unplaced.iter().map(|t| t.priority).min();
        // Trials alike in what an explanation reads share one.
        let mut reasons = HashMap::new();
        for trial in &unplaced {
            let more_important = most_important.is_some_and(|p| p < trial.priority);
            let key = (
                trial.slots,
                &trial.target_agent,
                &trial.avoid_agent,
                more_important,
            );
            let reason = reasons
                .entry(key)
                .or_insert_with(|| why_waiting(trial, &agents, more_important));
            self.waiting.insert(trial.trial_id, reason.clone());
        }
        if let Some(waiting) = unplaced.iter().min_by_key(|t| (t.priority, t.trial_id)) {
            self.preempt_for(waiting);
        }
    }

    /// Queued trials of active experiments that may run now; notes why the others may not.
    fn pending_trials(&mut self, now: Instant) -> Vec<PendingTrial> {
        let mut pending = Vec::new();
        for t in self.trials.values() {
            if t.row.state != TrialState::Queued || t.allocation.is_some() {
                continue;
            }
            let Some(experiment) = self.experiments.get(&t.row.experiment_id) else {
                continue;
            };
            if experiment.row.state != ExperimentState::Active {
                self.waiting.insert(
                    t.row.id,
                    format!("its experiment is {}", experiment.row.state),
                );
                continue;
            }
            if let Some(at) = t.not_before.filter(|at| *at > now) {
                self.waiting.insert(
                    t.row.id,
                    format!(
                        "restarts in {:.1} s, after failure {} (at most {} restarts; backoff doubles from restart_backoff.initial_seconds)",
                        (at - now).as_secs_f64(),
                        t.row.restarts,
                        experiment.config.max_restarts
                    ),
                );
                continue;
            }
            pending.push(PendingTrial {
                trial_id: t.row.id,
                priority: experiment.config.resources.priority,
                slots: experiment.config.resources.slots_per_trial,
                target_agent: t.target_agent.clone(),
                avoid_agent: t.avoid_agent.clone(),
            });
        }
        pending
    }

    /// Every agent with its slots, for explanations.
    fn agent_summaries(&self) -> Vec<AgentSummary> {
        let free: HashMap<String, u32> = self
            .free_capacity()
            .into_iter()
            .map(|a| (a.agent_id, a.free_slots.len() as u32))
            .collect();
        self.agents
            .values()
            .map(|a| AgentSummary {
                agent_id: a.id.clone(),
                connected: a.link.is_some(),
                mode: a.mode.as_str(),
                slots: a.slots.len() as u32,
                free: free.get(&a.id).copied().unwrap_or(0),
            })
            .collect()
    }

    /// Free slots of connected, enabled agents.
    fn free_capacity(&self) -> Vec<AgentCapacity> {
        self.agents
            .values()
            .filter(|a| a.link.is_some() && a.mode == AgentMode::Enabled)
            .map(|agent| {
                let used: Vec<&String> = agent
                    .allocations
                    .iter()
                    .filter_map(|id| self.allocations.get(id))
                    .flat_map(|live| live.row.slot_ids.iter())
                    .collect();
                let free_slots = agent
                    .slots
                    .iter()
                    .map(|s| s.id.clone())
                    .filter(|id| !used.contains(&id))
                    .collect();
                AgentCapacity {
                    agent_id: agent.id.clone(),
                    free_slots,
                    total_slots: agent.slots.len() as u32,
                }
            })
            .collect()
    }

    fn preempt_for(&mut self, waiting: &PendingTrial) {
        if self
            .allocations
            .values()
            .any(|a| a.desired == Desired::Suspend(StopReason::Preempted))
        {
            return;
        }
        // Only allocations of less important trials may be suspended for it.
        let mut running: Vec<RunningAllocation> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for a in self
            .allocations
            .values()
            .filter(|a| a.desired == Desired::Run)
        {
            let Some(priority) = self
                .trials
                .get(&a.row.trial_id)
                .and_then(|t| self.experiments.get(&t.row.experiment_id))
                .map(|e| e.config.resources.priority)
                .filter(|p| *p > waiting.priority)
            else {
                continue;
            };
            // The parts of an allocation spanning several agents are suspended together.
            let id = if a.row.gang.is_empty() {
                &a.row.id
            } else {
                &a.row.gang
            };
            let part = (a.row.agent_id.clone(), a.row.slot_ids.len() as u32);
            match index.get(id.as_str()) {
                Some(&i) => running[i].parts.push(part),
                None => {
                    index.insert(id, running.len());
                    running.push(RunningAllocation {
                        allocation_id: id.clone(),
                        parts: vec![part],
                        priority,
                        started: a.row.started_ms,
                    });
                }
            }
        }
        if running.is_empty() {
            return;
        }
        let victims = choose_preemptions(waiting, &self.free_capacity(), &running);
        for victim in victims {
            tracing::info!(allocation = %victim, for_trial = waiting.trial_id, "preempting");
            self.set_desired(&victim, Desired::Suspend(StopReason::Preempted));
        }
    }
}

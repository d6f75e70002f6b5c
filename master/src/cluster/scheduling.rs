//! Turning queued trials into allocations, and preempting for more important ones.

use baton_common::proto::{
    Context, MasterMessage, StartAllocation, StepPolicy, master_message::Body,
};
use prost::Message;
use std::time::Instant;

use super::desired::Desired;
use super::state::{AgentMode, Cluster, LiveAllocation, StopReason};
use crate::scheduler::{
    AgentCapacity, AgentSummary, PendingTrial, Placement, RunningAllocation, choose_preemptions,
    place, why_waiting,
};
use crate::states::{ExperimentState, TrialState};
use crate::store::{AllocationRow, now_ms};

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
        let placements = place(&pending, &capacity);
        for placement in &placements {
            self.start_allocation(placement);
        }
        let placed: Vec<u64> = placements.iter().map(|p| p.trial_id).collect();
        let unplaced: Vec<&PendingTrial> = pending
            .iter()
            .filter(|t| !placed.contains(&t.trial_id))
            .collect();
        let agents = self.agent_summaries();
        for trial in &unplaced {
            let more_important = unplaced.iter().any(|o| o.priority < trial.priority);
            self.waiting
                .insert(trial.trial_id, why_waiting(trial, &agents, more_important));
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
        let free: std::collections::HashMap<String, u32> = self
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
        let running: Vec<RunningAllocation> = self
            .allocations
            .values()
            .filter(|a| a.desired == Desired::Run)
            .filter_map(|a| {
                let trial = self.trials.get(&a.row.trial_id)?;
                let experiment = self.experiments.get(&trial.row.experiment_id)?;
                Some(RunningAllocation {
                    allocation_id: a.row.id.clone(),
                    agent_id: a.row.agent_id.clone(),
                    priority: experiment.config.resources.priority,
                    slots: a.row.slot_ids.len() as u32,
                    started: a.row.started_ms,
                })
            })
            .collect();
        let victims = choose_preemptions(waiting, &self.free_capacity(), &running);
        for victim in victims {
            tracing::info!(allocation = %victim, for_trial = waiting.trial_id, "preempting");
            self.set_desired(&victim, Desired::Suspend(StopReason::Preempted));
        }
    }

    fn start_allocation(&mut self, placement: &Placement) {
        let Some(trial) = self.trials.get_mut(&placement.trial_id) else {
            return;
        };
        let Some(experiment) = self.experiments.get(&trial.row.experiment_id) else {
            return;
        };
        let context = match self.store.experiment_context(experiment.row.id) {
            Ok(bytes) => Context::decode(bytes.as_slice()).unwrap_or_default(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read experiment context");
                return;
            }
        };
        let latest_checkpoint_metadata_json = match &trial.row.latest_checkpoint_uuid {
            None => String::new(),
            Some(uuid) => match self.store.checkpoint_by_uuid(uuid) {
                Ok(Some(checkpoint)) => checkpoint.metadata_json,
                Ok(None) => {
                    tracing::error!(%uuid, "no record of the trial's latest checkpoint");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the trial's latest checkpoint");
                    return;
                }
            },
        };
        let row = AllocationRow {
            id: uuid::Uuid::new_v4().to_string(),
            trial_id: trial.row.id,
            agent_id: placement.agent_id.clone(),
            slot_ids: placement.slot_ids.clone(),
            start_step: trial.row.latest_checkpoint_step,
            end_step: trial.row.latest_checkpoint_step,
            exit_reason: None,
            message: String::new(),
            started_ms: now_ms(),
            ended_ms: 0,
            desired: Desired::Run.stored(),
        };
        trial.row.state = TrialState::Starting;
        trial.row.steps_completed = trial.row.latest_checkpoint_step;
        trial.allocation = Some(row.id.clone());
        trial.target_agent = None;
        trial.avoid_agent = None;
        let config = &experiment.config;
        let start = StartAllocation {
            allocation_id: row.id.clone(),
            trial_id: trial.row.id,
            experiment_id: experiment.row.id,
            entrypoint: config.entrypoint.clone(),
            hparams_json: trial.row.hparams_json.clone(),
            context: Some(context),
            latest_checkpoint_uuid: trial.row.latest_checkpoint_uuid.clone().unwrap_or_default(),
            latest_checkpoint_step: trial.row.latest_checkpoint_step,
            storage_json: serde_json::to_string(&config.checkpoint_storage)
                .expect("storage config serializes"),
            policy: Some(StepPolicy {
                max_length: config.searcher.max_length,
                min_validation_period: config.min_validation_period,
                min_checkpoint_period: config.min_checkpoint_period,
                preemption_timeout_ms: config.preemption_timeout * 1000,
            }),
            slot_ids: placement.slot_ids.clone(),
            latest_checkpoint_metadata_json,
        };
        let stored = self.store.transaction(|store| {
            store.insert_allocation(&row)?;
            store.update_trial(&trial.row)
        });
        if let Err(e) = stored {
            tracing::error!(error = %e, "cannot record allocation");
            return;
        }
        tracing::info!(trial = row.trial_id, agent = %row.agent_id, allocation = %row.id, start_step = row.start_step, "starting allocation");
        let mut live =
            LiveAllocation::new(row, false, self.now()).expect("a new allocation wants to run");
        if let Some(agent) = self.agents.get_mut(&placement.agent_id) {
            agent.allocations.insert(live.row.id.clone());
            live.start_sent = agent.send(MasterMessage {
                body: Some(Body::Start(start)),
            });
        }
        self.allocations.insert(live.row.id.clone(), live);
    }
}

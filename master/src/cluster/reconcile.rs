//! Keeping agents in line with the desired state: set it, send it, re-send it, heal differences.

use std::time::Instant;

use baton_common::proto::{
    AllocationPhase, AllocationStatus, MasterMessage, SuspendAllocation, master_message::Body,
};

use super::agents::kill_message;
use super::desired::{self, Desired, Expected, KillReason, TickAction, TickView};
use super::state::Cluster;
use crate::states::TrialState;

impl Cluster {
    /// Records what the master wants of an allocation and sends it. A kill overrides a suspend;
    /// nothing overrides a kill, and a second suspend keeps the first reason.
    pub(super) fn set_desired(&mut self, allocation_id: &str, wanted: Desired) {
        // Every part of an allocation spanning several agents wants the same.
        for part in self.parts_of(allocation_id) {
            self.set_part_desired(&part, wanted);
        }
    }

    /// Records and sends what the master wants of one allocation (or part).
    fn set_part_desired(&mut self, allocation_id: &str, wanted: Desired) {
        let now = self.now();
        let Some(live) = self.allocations.get_mut(allocation_id) else {
            return;
        };
        let Some(wanted) = live.desired.then(wanted) else {
            return;
        };
        live.desired = wanted;
        live.desired_since = now;
        live.last_sent = None;
        live.sends = 0;
        let trial_id = live.row.trial_id;
        if let Err(e) = self
            .store
            .set_allocation_desired(allocation_id, &wanted.stored())
        {
            tracing::error!(allocation = %allocation_id, error = %e, "cannot record desired state");
        }
        let state = match wanted {
            Desired::Suspend(_) => TrialState::Suspending,
            _ => TrialState::Killing,
        };
        if let Some(trial) = self.trials.get_mut(&trial_id) {
            trial.row.state = state;
            if let Err(e) = self.store.update_trial(&trial.row) {
                tracing::error!(error = %e, "cannot record trial state");
            }
        }
        tracing::info!(allocation = %allocation_id, trial = trial_id, desired = %wanted.stored(), "stopping allocation");
        self.send_desired(allocation_id);
    }

    /// Sends the desired suspend or kill of an allocation to its agent, if connected.
    pub(super) fn send_desired(&mut self, allocation_id: &str) {
        let now = self.now();
        let Some(live) = self.allocations.get_mut(allocation_id) else {
            return;
        };
        let message = match live.desired {
            Desired::Run => return,
            Desired::Suspend(reason) => MasterMessage {
                body: Some(Body::Suspend(SuspendAllocation {
                    allocation_id: allocation_id.to_string(),
                    reason: reason.exit_reason().to_string(),
                })),
            },
            Desired::Kill(reason) => kill_message(allocation_id, kill_text(reason)),
        };
        let Some(agent) = self.agents.get_mut(&live.row.agent_id) else {
            return;
        };
        if agent.send(message).is_some() {
            live.last_sent = Some(now);
            live.sends += 1;
        }
    }

    /// The tick: re-sends unconfirmed suspends and kills, and escalates past their deadlines.
    pub(super) fn reconcile_allocations(&mut self, now: Instant) {
        let deadlines = self.settings.deadlines;
        let mut actions = Vec::new();
        for (id, live) in &self.allocations {
            let connected = self
                .agents
                .get(&live.row.agent_id)
                .is_some_and(|a| a.link.is_some());
            let preemption_timeout = self
                .trials
                .get(&live.row.trial_id)
                .and_then(|t| self.experiments.get(&t.row.experiment_id))
                .map_or(std::time::Duration::from_secs(60), |e| {
                    std::time::Duration::from_secs(e.config.preemption_timeout)
                });
            let view = TickView {
                desired: live.desired,
                desired_since: live.desired_since,
                last_sent: live.last_sent,
                connected,
                started: live.started,
                created: live.created,
                preemption_timeout,
            };
            match desired::on_tick(&view, now, &deadlines) {
                TickAction::Wait => {}
                action => actions.push((id.clone(), action)),
            }
        }
        for (id, action) in actions {
            match action {
                TickAction::Wait => {}
                TickAction::Resend => self.send_desired(&id),
                TickAction::Escalate(reason) => {
                    tracing::warn!(allocation = %id, reason = kill_text(reason), "deadline passed; killing allocation");
                    self.set_desired(&id, Desired::Kill(reason));
                }
            }
        }
    }

    /// Compares an agent's report of its allocations with what the master expects of it: fences
    /// the unexpected, ends the missing as lost, notes phases. `received` as in `desired::compare`.
    pub(super) fn heal_agent(
        &mut self,
        agent_id: &str,
        session: u64,
        statuses: &[AllocationStatus],
        received: Option<u64>,
    ) {
        let Some(agent) = self.agents.get(agent_id) else {
            return;
        };
        let expected: Vec<Expected<'_>> = agent
            .allocations
            .iter()
            .filter_map(|id| self.allocations.get(id))
            .filter(|live| !live.held)
            .map(|live| Expected {
                id: &live.row.id,
                start: live.start_sent,
            })
            .collect();
        let reported: Vec<&str> = statuses.iter().map(|s| s.allocation_id.as_str()).collect();
        let heal = desired::compare(&expected, &reported, session, received);
        for status in statuses {
            if let Some(live) = self.allocations.get_mut(&status.allocation_id) {
                live.phase = AllocationPhase::try_from(status.phase).ok();
            }
        }
        for id in &heal.fence {
            let exiting = statuses
                .iter()
                .any(|s| &s.allocation_id == id && s.phase == AllocationPhase::Exiting as i32);
            tracing::warn!(agent = %agent_id, allocation = %id, "killing stale allocation");
            if !exiting && let Some(agent) = self.agents.get_mut(agent_id) {
                agent.send(kill_message(id, "allocation is no longer current"));
            }
        }
        for id in heal.lost {
            self.end_lost_allocation(&id, "the agent no longer runs it");
        }
    }

    /// Sends every unconfirmed suspend and kill of an agent again, right after its hello.
    pub(super) fn resend_to_agent(&mut self, agent_id: &str) {
        let ids: Vec<String> = self
            .agents
            .get(agent_id)
            .map(|a| a.allocations.iter().cloned().collect())
            .unwrap_or_default();
        for id in ids {
            self.send_desired(&id);
        }
    }
}

/// What the agent is told when the master kills an allocation.
pub(super) fn kill_text(reason: KillReason) -> &'static str {
    match reason {
        KillReason::Canceled => "experiment killed",
        KillReason::SuspendTimeout(_) => "did not stop within its preemption timeout",
        KillReason::StartTimeout => "did not start within the start timeout",
        KillReason::PartEnded => "another part of its distributed allocation ended",
    }
}

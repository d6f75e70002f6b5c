//! Trial and allocation transitions: stop, end, requeue, complete.

use super::desired::Desired;
use super::gangs::PartEnd;
use super::lifecycle::{Outcome, next_trial};
use super::search;
use super::state::{Cluster, ClusterEvent, StopReason};
use crate::error::{MasterError, MasterResult};
use crate::states::{ExperimentState, TrialState};
use crate::store::now_ms;

impl Cluster {
    /// Ends an allocation whose agent is gone; its trial resumes elsewhere from its latest checkpoint.
    pub(super) fn end_lost_allocation(&mut self, allocation_id: &str, message: &str) {
        self.end_allocation(allocation_id, "agent-lost", message, None, Outcome::Requeue);
    }

    /// Records the end of an allocation and moves its trial on.
    pub(super) fn end_allocation(
        &mut self,
        allocation_id: &str,
        exit_reason: &str,
        message: &str,
        end_step: Option<u64>,
        outcome: Outcome,
    ) {
        let Some(mut live) = self.allocations.remove(allocation_id) else {
            return;
        };
        if let Some(agent) = self.agents.get_mut(&live.row.agent_id) {
            agent.allocations.remove(allocation_id);
        }
        live.row.exit_reason = Some(exit_reason.to_string());
        live.row.message = message.to_string();
        live.row.end_step = live.row.end_step.max(end_step.unwrap_or(0));
        live.row.ended_ms = now_ms();
        if let Err(e) = self.store.end_allocation(&live.row) {
            tracing::error!(error = %e, "cannot record allocation end");
        }
        tracing::info!(allocation = %allocation_id, trial = live.row.trial_id, exit_reason, message, "allocation ended");
        self.settings
            .metrics
            .allocations_ended
            .with_label_values(&[exit_reason])
            .inc();
        self.needs_schedule = true;
        let end = PartEnd {
            outcome,
            message: message.to_string(),
            desired: live.desired,
            desired_since: live.desired_since,
            end_step: live.row.end_step,
        };
        let end = if live.row.gang.is_empty() {
            Some(end)
        } else {
            let as_asked = matches!(
                (outcome, live.desired),
                (Outcome::Completed, _) | (Outcome::Requeue, Desired::Suspend(_))
            );
            self.gang_part_ended(&live.row.gang, end, as_asked)
        };
        if let Some(end) = end {
            self.finish_allocation(live.row.trial_id, end);
        }
    }

    /// Moves a trial on once its allocation (every part of it) has ended as `end` says.
    pub(super) fn finish_allocation(&mut self, trial_id: u64, end: PartEnd) {
        let PartEnd {
            outcome,
            message,
            desired,
            desired_since,
            end_step,
            ..
        } = end;
        let Some(trial) = self.trials.get_mut(&trial_id) else {
            return;
        };
        trial.allocation = None;
        trial.moving_since = match (outcome, desired) {
            (Outcome::Requeue, Desired::Suspend(reason)) if reason != StopReason::Paused => {
                Some(desired_since)
            }
            _ => None,
        };
        let Some(experiment) = self.experiments.get(&trial.row.experiment_id) else {
            return;
        };
        let canceled = experiment.row.state == ExperimentState::Canceled;
        let max_restarts = experiment.config.max_restarts;
        let decided = next_trial(
            outcome,
            canceled,
            trial.row.restarts,
            max_restarts,
            &experiment.config.restart_backoff,
        );
        let completed = outcome == Outcome::Completed;
        let next = if outcome != Outcome::Canceled
            && search::reached_rung(experiment, trial, completed, end_step)
        {
            TrialState::Paused
        } else {
            decided.state
        };
        trial.row.restarts = decided.restarts;
        trial.not_before = decided
            .wait
            .filter(|_| next == TrialState::Queued)
            .map(|wait| self.clock.now() + wait);
        if next == TrialState::Errored {
            trial.row.error = format!(
                "failed {} times (max_restarts is {max_restarts}); last failure: {message}",
                trial.row.restarts
            );
        }
        trial.row.state = next;
        match next {
            TrialState::Queued => trial.row.steps_completed = trial.row.latest_checkpoint_step,
            // Training reports lost with a restarted agent daemon do not undercount a trial that
            // completed: its exit and final checkpoint say how far it got.
            TrialState::Completed | TrialState::Paused => {
                trial.row.steps_completed = trial
                    .row
                    .steps_completed
                    .max(end_step)
                    .max(trial.row.latest_checkpoint_step);
            }
            _ => {}
        }
        if let Err(e) = self.store.update_trial(&trial.row) {
            tracing::error!(error = %e, "cannot record trial state");
        }
        let (trial_id, experiment_id) = (trial.row.id, trial.row.experiment_id);
        // What the allocation restored from, or the trial's latest, may no longer be needed.
        self.mark_gc_due(experiment_id);
        if next.is_terminal() {
            let _ = self.events.send(ClusterEvent::TrialEnded(trial_id));
        }
        if next.is_terminal() || next == TrialState::Paused {
            self.tell_search(trial_id);
            self.check_experiment_done(experiment_id);
        }
    }

    /// Finishes an experiment whose trials have all ended (and whose adaptive search, if any,
    /// creates no more), then collects its garbage.
    pub(super) fn check_experiment_done(&mut self, experiment_id: u64) {
        let searching = self.experiments.get(&experiment_id).is_some_and(|e| {
            !e.row.state.is_terminal() && e.search.as_ref().is_some_and(|s| !s.asha.is_shut_down())
        });
        if searching {
            return;
        }
        let states: Vec<TrialState> = self
            .trials
            .values()
            .filter(|t| t.row.experiment_id == experiment_id)
            .map(|t| t.row.state)
            .collect();
        if !states.iter().all(|s| s.is_terminal()) {
            return;
        }
        let final_state = if states.contains(&TrialState::Completed) {
            ExperimentState::Completed
        } else if states.contains(&TrialState::Errored) {
            ExperimentState::Errored
        } else {
            ExperimentState::Canceled
        };
        let Some(experiment) = self.experiments.get_mut(&experiment_id) else {
            return;
        };
        if !experiment.row.state.is_terminal() {
            experiment.row.state = final_state;
            if let Err(e) = self.store.set_experiment_state(experiment_id, final_state) {
                tracing::error!(error = %e, "cannot record experiment state");
            }
            tracing::info!(
                experiment = experiment_id,
                state = %final_state,
                "experiment ended"
            );
        }
        let policy = experiment.gc;
        if let Err(e) = self.collect_garbage(experiment_id, &policy) {
            tracing::error!(experiment = experiment_id, error = %e, "garbage collection failed");
        }
    }

    /// Suspends a running trial and resumes it on another (or the named) agent.
    pub fn move_trial(&mut self, trial_id: u64, to_agent: Option<String>) -> MasterResult<()> {
        if let Some(target) = &to_agent {
            self.agent_mut(target)?;
        }
        let trial = self.trial_mut(trial_id)?;
        if trial.row.state.is_terminal() {
            return Err(MasterError::FailedPrecondition(format!(
                "trial {trial_id} is {} and cannot move",
                trial.row.state
            )));
        }
        let Some(allocation_id) = trial.allocation.clone() else {
            // A named agent wins over the one an earlier move left.
            if to_agent.is_some() {
                trial.avoid_agent = None;
            }
            trial.target_agent = to_agent;
            return Ok(());
        };
        let Some(current_agent) = self
            .allocations
            .get(&allocation_id)
            .map(|live| live.row.agent_id.clone())
        else {
            return Err(MasterError::FailedPrecondition(format!(
                "trial {trial_id} is stopping on several agents; move it once it is queued"
            )));
        };
        if to_agent.as_deref() == Some(current_agent.as_str()) {
            return Err(MasterError::FailedPrecondition(format!(
                "trial {trial_id} already runs on agent {current_agent}"
            )));
        }
        let trial = self.trial_mut(trial_id)?;
        trial.avoid_agent = Some(current_agent);
        trial.target_agent = to_agent;
        self.set_desired(&allocation_id, Desired::Suspend(StopReason::Moved));
        Ok(())
    }

    pub(super) fn trial_mut(
        &mut self,
        trial_id: u64,
    ) -> MasterResult<&mut super::state::TrialEntry> {
        self.trials
            .get_mut(&trial_id)
            .ok_or_else(|| MasterError::NotFound(format!("trial {trial_id} does not exist")))
    }
}

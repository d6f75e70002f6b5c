//! Reports from agents, each checked against the current allocation (fencing).

use baton_common::proto::{
    AgentMessage, AllocationExited, CheckpointCompleted, ExitKind, HeartbeatAck, MasterMessage,
    agent_message::Body, master_message,
};

use super::agents::kill_message;
use super::lifecycle::classify_exit;
use super::state::Cluster;
use crate::states::TrialState;
use crate::store::{CheckpointRow, StoreResult, now_ms};

impl Cluster {
    /// Handles one message from an agent's current session.
    pub fn agent_message(&mut self, agent_id: &str, session: u64, message: AgentMessage) {
        if !self.touch_agent(agent_id, session) {
            return;
        }
        let Some(body) = message.body else { return };
        self.settings
            .metrics
            .agent_reports
            .with_label_values(&[report_kind(&body)])
            .inc();
        let result = match body {
            Body::Hello(_) => Ok(()),
            Body::Heartbeat(heartbeat) => {
                if let Some(agent) = self.agents.get_mut(agent_id) {
                    agent.send(MasterMessage {
                        body: Some(master_message::Body::HeartbeatAck(HeartbeatAck {})),
                    });
                }
                self.heal_agent(
                    agent_id,
                    session,
                    &heartbeat.allocations,
                    Some(heartbeat.commands_received),
                );
                Ok(())
            }
            Body::Training(report) => match self.current_trial(agent_id, &report.allocation_id) {
                Some(trial_id) => self.record_training(
                    trial_id,
                    &report.allocation_id,
                    report.step,
                    &report.metrics_json,
                ),
                None => Ok(()),
            },
            Body::Validation(report) => match self.current_trial(agent_id, &report.allocation_id) {
                Some(trial_id) => self
                    .store
                    .upsert_validation(trial_id, report.step, &report.metrics_json)
                    .map(|()| self.note_validation(trial_id, report.step, &report.metrics_json)),
                None => Ok(()),
            },
            Body::CheckpointCompleted(report) => {
                match self.current_trial(agent_id, &report.allocation_id) {
                    Some(trial_id) => self.record_checkpoint(trial_id, report),
                    None => self.discard_fenced_checkpoint(agent_id, report),
                }
            }
            Body::Logs(logs) => match self.current_trial(agent_id, &logs.allocation_id) {
                Some(trial_id) => self.record_logs(trial_id, logs),
                None => Ok(()),
            },
            Body::AllocationStarted(started) => {
                if let Some(live) = self.allocations.get_mut(&started.allocation_id)
                    && live.row.agent_id == agent_id
                {
                    live.started = true;
                }
                if let Some(trial_id) = self.current_trial(agent_id, &started.allocation_id) {
                    let trial = self
                        .trials
                        .get_mut(&trial_id)
                        .expect("current trial exists");
                    if trial.row.state == TrialState::Starting {
                        trial.row.state = TrialState::Running;
                        self.store.update_trial(&trial.row)
                    } else {
                        Ok(())
                    }
                } else {
                    Ok(())
                }
            }
            Body::AllocationExited(exited) => {
                self.allocation_exited(agent_id, exited);
                Ok(())
            }
            Body::RendezvousReady(ready) => {
                self.rendezvous_ready(agent_id, ready);
                Ok(())
            }
            Body::CheckpointPart(part) => {
                if let Some(trial_id) = self.current_trial(agent_id, &part.allocation_id) {
                    self.checkpoint_part(trial_id, part);
                }
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!(agent = %agent_id, error = %e, "cannot record agent report");
        }
    }

    /// The trial of an allocation if it is current on this agent; otherwise tells the agent to kill it.
    fn current_trial(&mut self, agent_id: &str, allocation_id: &str) -> Option<u64> {
        match self.allocations.get(allocation_id) {
            Some(live) if live.row.agent_id == agent_id => Some(live.row.trial_id),
            _ => {
                tracing::warn!(agent = %agent_id, allocation = %allocation_id, "report from a fenced allocation ignored");
                if let Some(agent) = self.agents.get_mut(agent_id) {
                    agent.send(kill_message(
                        allocation_id,
                        "allocation is no longer current",
                    ));
                }
                None
            }
        }
    }

    fn record_training(
        &mut self,
        trial_id: u64,
        allocation_id: &str,
        step: u64,
        metrics_json: &str,
    ) -> StoreResult<()> {
        self.store
            .upsert_training_metrics(trial_id, step, metrics_json)?;
        if let Some(live) = self.allocations.get_mut(allocation_id) {
            live.row.end_step = live.row.end_step.max(step);
        }
        let trial = self
            .trials
            .get_mut(&trial_id)
            .expect("current trial exists");
        trial.row.steps_completed = step;
        if let Some(since) = trial.moving_since.take() {
            let moved = self.clock.now().saturating_duration_since(since);
            self.settings
                .metrics
                .move_duration
                .observe(moved.as_secs_f64());
        }
        self.store.update_trial(&trial.row)
    }

    /// Records a committed checkpoint of a trial's current allocation; it becomes the trial's
    /// latest unless that is of a later step.
    pub(super) fn record_checkpoint(
        &mut self,
        trial_id: u64,
        report: CheckpointCompleted,
    ) -> StoreResult<()> {
        let trial = self
            .trials
            .get_mut(&trial_id)
            .expect("current trial exists");
        let row = CheckpointRow {
            seq: 0,
            uuid: report.uuid.clone(),
            experiment_id: trial.row.experiment_id,
            trial_id,
            allocation_id: report.allocation_id,
            step: report.step,
            state: baton_common::gc::CheckpointState::Completed,
            size_bytes: report.size_bytes,
            metadata_json: report.metadata_json,
            error: String::new(),
            created_ms: now_ms(),
            pinned: false,
            pin_note: String::new(),
        };
        let inserted = self.store.insert_checkpoint(&row)?;
        if let Some(experiment) = self.experiments.get(&row.experiment_id)
            && inserted
        {
            let backend = [experiment.config.checkpoint_storage.backend.type_name()];
            let metrics = &self.settings.metrics;
            metrics
                .checkpoints_committed
                .with_label_values(&backend)
                .inc();
            metrics
                .checkpoint_committed_bytes
                .with_label_values(&backend)
                .inc_by(row.size_bytes);
        }
        if trial.row.latest_checkpoint_uuid.is_none()
            || report.step >= trial.row.latest_checkpoint_step
        {
            trial.row.latest_checkpoint_uuid = Some(report.uuid);
            trial.row.latest_checkpoint_step = report.step;
            self.store.update_trial(&trial.row)?;
        }
        if inserted {
            self.checkpoint_stored(row.experiment_id, row.size_bytes);
            self.mark_gc_due(row.experiment_id);
        }
        Ok(())
    }

    fn allocation_exited(&mut self, agent_id: &str, exited: AllocationExited) {
        let Some(live) = self.allocations.get(&exited.allocation_id) else {
            return;
        };
        if live.row.agent_id != agent_id {
            return;
        }
        let kind = ExitKind::try_from(exited.kind).unwrap_or(ExitKind::Failed);
        let progressed = live.row.end_step.max(exited.end_step) > live.row.start_step;
        let (reason, outcome) = classify_exit(kind, live.desired, progressed);
        self.end_allocation(
            &exited.allocation_id,
            reason,
            &exited.message,
            Some(exited.end_step),
            outcome,
        );
    }
}

/// The kind of an agent message, as the `kind` label of the reports metric.
fn report_kind(body: &Body) -> &'static str {
    match body {
        Body::Hello(_) => "hello",
        Body::Heartbeat(_) => "heartbeat",
        Body::Training(_) => "training",
        Body::Validation(_) => "validation",
        Body::CheckpointCompleted(_) => "checkpoint",
        Body::Logs(_) => "logs",
        Body::AllocationStarted(_) => "allocation_started",
        Body::AllocationExited(_) => "allocation_exited",
        Body::RendezvousReady(_) => "rendezvous_ready",
        Body::CheckpointPart(_) => "checkpoint_part",
    }
}

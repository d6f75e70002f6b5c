//! Read-only views of the cluster state in admin API shapes.

use std::collections::HashMap;

use baton_common::proto;

use super::command::LogWindow;
use super::metric_summary::{MetricAt, is_better};
use super::search;
use super::state::{Cluster, TrialEntry};
use crate::error::{MasterError, MasterResult};
use crate::states::{ExperimentState, TrialState};
use crate::store::{AllocationRow, CheckpointRow, LogRow, ValidationRow};

impl Cluster {
    /// Every experiment, with trial counts but without the trials themselves.
    pub fn list_experiments(&self) -> Vec<proto::Experiment> {
        self.experiments
            .keys()
            .filter_map(|id| self.experiment_view(*id, false).ok())
            .collect()
    }

    /// One experiment, with its trials when `with_trials`.
    pub fn experiment_view(&self, id: u64, with_trials: bool) -> MasterResult<proto::Experiment> {
        let experiment = self
            .experiments
            .get(&id)
            .ok_or_else(|| MasterError::NotFound(format!("experiment {id} does not exist")))?;
        let trials = if with_trials {
            self.trials_of(id)
        } else {
            Vec::new()
        };
        let searcher = &experiment.config.searcher;
        let mut trial_states = HashMap::new();
        let mut trial_count = 0;
        let mut steps_completed: u64 = 0;
        let mut best: Option<(u64, MetricAt)> = None;
        for trial in self.trials.values().filter(|t| t.row.experiment_id == id) {
            *trial_states
                .entry(self.shown_state(trial).to_string())
                .or_insert(0) += 1;
            trial_count += 1;
            steps_completed = steps_completed.saturating_add(trial.row.steps_completed);
            if let Some(at) = trial.metrics.best
                && best.is_none_or(|(_, b)| is_better(at, b, searcher.smaller_is_better))
            {
                best = Some((trial.row.id, at));
            }
        }
        Ok(proto::Experiment {
            id,
            name: experiment.row.name.clone(),
            state: experiment.row.state.to_string(),
            config_yaml: baton_common::config::redact_config_yaml(&experiment.row.config_yaml),
            trials,
            created_ms: experiment.row.created_ms,
            searcher: experiment.config.searcher.name.as_str().to_string(),
            trial_count,
            trial_states,
            steps_completed,
            max_length: experiment.config.searcher.max_length,
            storage_bytes: experiment.storage.held_bytes,
            storage_peak_bytes: experiment.storage.peak_bytes,
            pinned_checkpoints: experiment.storage.pinned,
            gc_while_running: experiment.gc.gc_while_running,
            brackets: if with_trials {
                search::brackets(experiment)
            } else {
                Vec::new()
            },
            metric: searcher.metric.clone(),
            smaller_is_better: searcher.smaller_is_better,
            best_metric: best.map(|(trial_id, at)| at.view(trial_id)),
        })
    }

    /// The state a trial shows: PAUSED for a queued trial of a PAUSED experiment.
    fn shown_state(&self, trial: &TrialEntry) -> &'static str {
        let paused = self
            .experiments
            .get(&trial.row.experiment_id)
            .is_some_and(|e| e.row.state == ExperimentState::Paused);
        if paused && trial.row.state == TrialState::Queued {
            "PAUSED"
        } else {
            trial.row.state.as_str()
        }
    }

    /// Trials of an experiment.
    pub fn trials_of(&self, experiment_id: u64) -> Vec<proto::Trial> {
        self.trials
            .values()
            .filter(|t| t.row.experiment_id == experiment_id)
            .map(|t| self.trial_view(t.row.id))
            .collect()
    }

    fn trial_view(&self, trial_id: u64) -> proto::Trial {
        let trial = &self.trials[&trial_id];
        let target_length = self
            .experiments
            .get(&trial.row.experiment_id)
            .map_or(0, |e| search::target_length(e, &trial.row));
        let agent_id = trial
            .allocation
            .as_ref()
            .and_then(|a| self.allocations.get(a))
            .map(|a| a.row.agent_id.clone())
            .unwrap_or_default();
        proto::Trial {
            id: trial.row.id,
            experiment_id: trial.row.experiment_id,
            state: self.shown_state(trial).to_string(),
            hparams_json: trial.row.hparams_json.clone(),
            steps_completed: trial.row.steps_completed,
            restarts: trial.row.restarts,
            agent_id,
            latest_checkpoint_uuid: trial.row.latest_checkpoint_uuid.clone().unwrap_or_default(),
            error: trial.row.error.clone(),
            state_reason: self.state_reason(trial_id),
            target_length,
            best_metric: trial.metrics.best.map(|at| at.view(trial_id)),
            latest_metric: trial.metrics.latest.map(|at| at.view(trial_id)),
        }
    }

    /// One trial with its allocations and validations.
    pub fn trial_detail(&self, trial_id: u64) -> MasterResult<proto::TrialDetail> {
        if !self.trials.contains_key(&trial_id) {
            return Err(MasterError::NotFound(format!(
                "trial {trial_id} does not exist"
            )));
        }
        let allocations = self.store.allocations_of_trial(trial_id)?;
        let validations: Vec<proto::Validation> = self
            .store
            .validations_of_trial(trial_id)?
            .into_iter()
            .map(|v| proto::Validation {
                step: v.step,
                metrics_json: v.metrics_json,
            })
            .collect();
        Ok(proto::TrialDetail {
            trial: Some(self.trial_view(trial_id)),
            allocations: allocation_views(allocations),
            latest_validation: validations.last().cloned(),
            validations,
        })
    }

    /// A trial's reported metrics by step: training ones, or validations when `training` is false.
    pub fn trial_metrics(&self, trial_id: u64, training: bool) -> MasterResult<Vec<ValidationRow>> {
        if !self.trials.contains_key(&trial_id) {
            return Err(MasterError::NotFound(format!(
                "trial {trial_id} does not exist"
            )));
        }
        Ok(if training {
            self.store.training_metrics_of_trial(trial_id)?
        } else {
            self.store.validations_of_trial(trial_id)?
        })
    }

    /// The searcher metric's name and the training metrics (validations when `training` is
    /// false) of every trial of an experiment, by trial and step.
    pub fn experiment_metrics(
        &self,
        experiment_id: u64,
        training: bool,
    ) -> MasterResult<(String, Vec<(u64, ValidationRow)>)> {
        let experiment = self.experiments.get(&experiment_id).ok_or_else(|| {
            MasterError::NotFound(format!("experiment {experiment_id} does not exist"))
        })?;
        let rows = self.store.metrics_of_experiment(experiment_id, training)?;
        Ok((experiment.config.searcher.metric.clone(), rows))
    }

    /// A page of a trial's log lines, oldest first.
    pub fn log_page(&self, trial_id: u64, window: LogWindow) -> MasterResult<Vec<LogRow>> {
        if !self.trials.contains_key(&trial_id) {
            return Err(MasterError::NotFound(format!(
                "trial {trial_id} does not exist"
            )));
        }
        Ok(match window {
            LogWindow::After { after, limit } => self.store.logs_after(trial_id, after, limit)?,
            LogWindow::Tail(count) => self.store.logs_tail(trial_id, count)?,
        })
    }

    /// Agents known to the master.
    pub fn list_agents(&self) -> Vec<proto::Agent> {
        self.agents.keys().map(|id| self.agent_view(id)).collect()
    }

    /// One agent.
    pub fn agent_view(&self, agent_id: &str) -> proto::Agent {
        let agent = &self.agents[agent_id];
        let allocations: Vec<_> = agent
            .allocations
            .iter()
            .filter_map(|id| self.allocations.get(id))
            .collect();
        proto::Agent {
            id: agent.id.clone(),
            state: agent.mode.as_str().into(),
            connected: agent.link.is_some(),
            slots: agent.slots.len() as u32,
            used_slots: allocations
                .iter()
                .map(|a| a.row.slot_ids.len() as u32)
                .sum(),
            slot_details: agent.slots.clone(),
            version: agent.version.clone(),
            trial_ids: allocations.iter().map(|a| a.row.trial_id).collect(),
            slot_trials: allocations
                .iter()
                .flat_map(|a| a.row.slot_ids.iter().map(|s| (s.clone(), a.row.trial_id)))
                .collect(),
            last_seen_ms: crate::store::now_ms()
                - self
                    .now()
                    .saturating_duration_since(agent.last_seen)
                    .as_millis() as i64,
        }
    }

    /// A checkpoint in API shape.
    pub fn checkpoint_view(&self, row: CheckpointRow, metric: Option<f64>) -> proto::Checkpoint {
        proto::Checkpoint {
            storage_json: self.redacted_storage_json(row.experiment_id),
            uuid: row.uuid,
            experiment_id: row.experiment_id,
            trial_id: row.trial_id,
            step: row.step,
            state: row.state.to_string(),
            metric,
            size_bytes: row.size_bytes,
            metadata_json: row.metadata_json,
            error: row.error,
            created_ms: row.created_ms,
            pinned: row.pinned,
            pin_note: row.pin_note,
        }
    }
}

/// Allocations in API shape, oldest first, the parts of one spanning several agents as one.
fn allocation_views(rows: Vec<AllocationRow>) -> Vec<proto::Allocation> {
    let mut views: Vec<proto::Allocation> = Vec::new();
    let mut gangs: Vec<(String, Vec<AllocationRow>)> = Vec::new();
    for row in rows {
        if row.gang.is_empty() {
            views.push(allocation_view(row));
        } else if let Some((_, parts)) = gangs.iter_mut().find(|(g, _)| *g == row.gang) {
            parts.push(row);
        } else {
            gangs.push((row.gang.clone(), vec![row]));
        }
    }
    views.extend(gangs.into_iter().map(|(id, parts)| gang_view(id, parts)));
    views.sort_by_key(|a| a.started_ms);
    views
}

fn allocation_view(row: AllocationRow) -> proto::Allocation {
    proto::Allocation {
        id: row.id,
        agent_id: row.agent_id,
        start_step: row.start_step,
        end_step: row.end_step,
        exit_reason: row.exit_reason.unwrap_or_default(),
        started_ms: row.started_ms,
        ended_ms: row.ended_ms,
        message: row.message,
        parts: Vec::new(),
    }
}

/// An allocation spanning several agents: the chief's agent and start, the furthest step, and,
/// once every part has ended, the end that decided the trial's next state: a failure over a
/// cancellation over a stop (suspended, lost, killed) over a completion, and among those the part
/// that ended first (the others followed it).
fn gang_view(id: String, mut parts: Vec<AllocationRow>) -> proto::Allocation {
    parts.sort_by_key(|p| p.part_index);
    let all_ended = parts.iter().all(|p| p.exit_reason.is_some());
    let weight = |reason: &str| match reason {
        "failed" => 0,
        "canceled" => 1,
        "completed" => 3,
        _ => 2,
    };
    let first_end = parts
        .iter()
        .filter_map(|p| p.exit_reason.as_deref().map(|reason| (weight(reason), p)))
        .min_by_key(|(weight, p)| (*weight, p.ended_ms, p.part_index))
        .map(|(_, p)| p);
    let (exit_reason, message, ended_ms) = match first_end {
        Some(first) if all_ended => (
            first.exit_reason.clone().unwrap_or_default(),
            first.message.clone(),
            parts.iter().map(|p| p.ended_ms).max().unwrap_or(0),
        ),
        _ => (String::new(), String::new(), 0),
    };
    proto::Allocation {
        agent_id: parts[0].agent_id.clone(),
        start_step: parts[0].start_step,
        end_step: parts.iter().map(|p| p.end_step).max().unwrap_or(0),
        started_ms: parts.iter().map(|p| p.started_ms).min().unwrap_or(0),
        exit_reason,
        message,
        ended_ms,
        parts: parts
            .into_iter()
            .map(|p| proto::AllocationPart {
                id: p.id,
                agent_id: p.agent_id,
                slot_ids: p.slot_ids,
                exit_reason: p.exit_reason.unwrap_or_default(),
                message: p.message,
                ended_ms: p.ended_ms,
            })
            .collect(),
        id,
    }
}

impl Cluster {
    /// Stored log lines of a trial, a subscription for new ones, and whether the trial has ended.
    pub fn trial_logs(
        &self,
        trial_id: u64,
    ) -> MasterResult<(
        Vec<crate::store::LogRow>,
        tokio::sync::broadcast::Receiver<super::ClusterEvent>,
        bool,
    )> {
        let trial = self
            .trials
            .get(&trial_id)
            .ok_or_else(|| MasterError::NotFound(format!("trial {trial_id} does not exist")))?;
        let ended = trial.row.state.is_terminal();
        Ok((self.store.logs_of_trial(trial_id)?, self.subscribe(), ended))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(index: u32, agent: &str, reason: Option<&str>, ended_ms: i64) -> AllocationRow {
        AllocationRow {
            id: if index == 0 {
                "g".into()
            } else {
                format!("g.{index}")
            },
            trial_id: 1,
            agent_id: agent.into(),
            slot_ids: vec!["cpu0".into()],
            start_step: 20,
            end_step: 30 + u64::from(index),
            exit_reason: reason.map(str::to_string),
            message: String::new(),
            started_ms: 100 + i64::from(index),
            ended_ms,
            desired: "run".into(),
            gang: "g".into(),
            part_index: index,
            part_count: 2,
        }
    }

    #[test]
    fn the_parts_of_an_allocation_show_as_one_with_the_end_that_decided() {
        let one = allocation_views(vec![
            part(1, "a2", Some("completed"), 500),
            part(0, "a1", Some("suspended-by-disable"), 600),
        ]);
        assert_eq!(one.len(), 1);
        let gang = &one[0];
        assert_eq!((gang.id.as_str(), gang.agent_id.as_str()), ("g", "a1"));
        assert_eq!(
            (gang.start_step, gang.end_step, gang.started_ms),
            (20, 31, 100)
        );
        assert_eq!(
            gang.exit_reason, "suspended-by-disable",
            "a stop over a completion"
        );
        assert_eq!(gang.ended_ms, 600);
        assert_eq!(gang.parts[1].agent_id, "a2");

        let failed = allocation_views(vec![
            part(0, "a1", Some("part-ended"), 700),
            part(1, "a2", Some("failed"), 650),
        ]);
        assert_eq!(failed[0].exit_reason, "failed");
        let lost = allocation_views(vec![
            part(0, "a1", Some("part-ended"), 700),
            part(1, "a2", Some("agent-lost"), 650),
        ]);
        assert_eq!(
            lost[0].exit_reason, "agent-lost",
            "the part that ended first"
        );
        let running = allocation_views(vec![
            part(0, "a1", None, 0),
            part(1, "a2", Some("failed"), 650),
        ]);
        assert_eq!(
            (running[0].exit_reason.as_str(), running[0].ended_ms),
            ("", 0)
        );
    }
}

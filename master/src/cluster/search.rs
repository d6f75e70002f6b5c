//! Experiments whose trials come as results arrive (`searcher.name: adaptive_asha`).
//!
//! The search ([`AdaptiveAsha`]) lives beside its experiment. A trial trains until the length the
//! search asks for, its rung: each allocation gets that length as its `max_length`, so the trial
//! validates, checkpoints and exits there. The trial then waits PAUSED and the search is told its
//! metric, the validation of `searcher.metric` at exactly that step (NaN when there is none); a
//! trial that ends otherwise (errored past its restarts, exited before its length) is told as an
//! exit. The search's actions apply at once: `Create` records a QUEUED trial under its request
//! id, `Train` queues a PAUSED trial again (it resumes from its rung checkpoint, on any agent),
//! `Stop` completes it. The experiment completes once the search has shut down and every trial
//! has ended.
//!
//! Every event is stored before it is fed. A restarted master rebuilds each search by feeding
//! the stored events again, then brings trials and search in line, since a crash may fall
//! between a trial's change and its event or between an event and its actions: trials not
//! recorded yet are created, a PAUSED trial the search still trains is told again (or queued, when
//! it was promoted), one the search stopped completes, and an ended trial the search still counts
//! is told as an exit.

mod views;

use std::collections::BTreeMap;

use super::state::{Cluster, ClusterEvent, ExperimentEntry, TrialEntry};
use crate::searcher::TrialHparams;
use crate::searcher::adaptive_asha::{Action, AdaptiveAsha, Event, RequestId, Stage};
use crate::states::TrialState;
use crate::store::TrialRow;
pub(super) use views::{brackets, waiting_reason};

/// The adaptive search of one experiment.
pub struct Search {
    /// The searcher's state.
    pub asha: AdaptiveAsha,
    /// Trial ids by request id.
    pub trials: BTreeMap<RequestId, u64>,
    /// Events stored so far: the next event's sequence number.
    pub events: u64,
}

impl Search {
    /// A search just created, before any event.
    pub fn new(asha: AdaptiveAsha) -> Self {
        Self {
            asha,
            trials: BTreeMap::new(),
            events: 0,
        }
    }
}

/// The length a trial trains to in its allocations: the rung its search trains it for (or last
/// trained it for), else `searcher.max_length`.
pub(super) fn target_length(experiment: &ExperimentEntry, trial: &TrialRow) -> u64 {
    let rung = experiment
        .search
        .as_ref()
        .zip(trial.request_id)
        .and_then(|(search, id)| search.asha.status(RequestId(id)));
    rung.map_or(experiment.config.searcher.max_length, |status| {
        status.length
    })
}

/// Whether a trial of an active search whose allocation just ended has trained to the rung it
/// trains for: its latest checkpoint is there, or it exited as trained to completion at or past
/// that length. It then waits PAUSED instead of running again or completing.
pub(super) fn reached_rung(
    experiment: &ExperimentEntry,
    trial: &TrialEntry,
    completed: bool,
    end_step: u64,
) -> bool {
    let Some((search, id)) = experiment.search.as_ref().zip(trial.row.request_id) else {
        return false;
    };
    let Some(status) = search.asha.status(RequestId(id)) else {
        return false;
    };
    let steps = trial.row.steps_completed.max(end_step);
    status.stage == Stage::Training
        && !experiment.row.state.is_terminal()
        && (trial.row.latest_checkpoint_step >= status.length
            || (completed && steps >= status.length))
}

impl Cluster {
    /// Tells a trial's search what became of it (PAUSED at its rung, or ended) and applies the
    /// search's answer; nothing for a trial of another searcher or of an ended experiment.
    pub(super) fn tell_search(&mut self, trial_id: u64) {
        let Some((experiment_id, event)) = self.event_of(trial_id) else {
            return;
        };
        let Some(search) = self
            .experiments
            .get_mut(&experiment_id)
            .and_then(|e| e.search.as_mut())
        else {
            return;
        };
        if let Err(e) = self
            .store
            .insert_searcher_event(experiment_id, search.events, &event)
        {
            // The trial's state is stored: a restarted master tells the search again.
            tracing::error!(experiment = experiment_id, error = %e, "cannot record searcher event");
        }
        search.events += 1;
        tracing::info!(
            experiment = experiment_id,
            trial = trial_id,
            ?event,
            "searcher event"
        );
        let actions = search.asha.on_event(event);
        self.apply_search(experiment_id, actions);
    }

    /// What a trial's search must be told now, with its experiment: a validation at the rung
    /// it trains for once it waits there, an exit once it ended while the search counts it.
    fn event_of(&self, trial_id: u64) -> Option<(u64, Event)> {
        let trial = self.trials.get(&trial_id)?;
        let experiment = self.experiments.get(&trial.row.experiment_id)?;
        if experiment.row.state.is_terminal() {
            return None;
        }
        let request = RequestId(trial.row.request_id?);
        let status = experiment.search.as_ref()?.asha.status(request)?;
        let event = match (trial.row.state, status.stage) {
            (TrialState::Paused, Stage::Training) if trial.row.steps_completed >= status.length => {
                Event::ValidationReported {
                    trial: request,
                    length: status.length,
                    metric: self.metric_at(trial_id, status.length, experiment),
                }
            }
            (state, Stage::Training | Stage::Paused) if state.is_terminal() => {
                Event::TrialExited { trial: request }
            }
            _ => return None,
        };
        Some((trial.row.experiment_id, event))
    }

    /// The searcher metric of a trial's validation at `step`; NaN when there is none.
    fn metric_at(&self, trial_id: u64, step: u64, experiment: &ExperimentEntry) -> f64 {
        let validations = match self.store.validation_at(trial_id, step) {
            Ok(validations) => validations,
            Err(e) => {
                tracing::error!(trial = trial_id, error = %e, "cannot read validation");
                None
            }
        };
        validations
            .and_then(|json| serde_json::from_str::<serde_json::Value>(&json).ok())
            .and_then(|metrics| metrics.get(&experiment.config.searcher.metric)?.as_f64())
            .unwrap_or(f64::NAN)
    }

    /// Applies a search's actions: creates trials, and brings the trials it names in line.
    fn apply_search(&mut self, experiment_id: u64, actions: Vec<Action>) {
        for action in actions {
            let request = match action {
                Action::Create {
                    request_id,
                    hparams,
                } => {
                    self.create_search_trial(experiment_id, request_id, &hparams);
                    continue;
                }
                Action::Train { trial, .. } | Action::Stop { trial } => trial,
                Action::Shutdown => {
                    tracing::info!(experiment = experiment_id, "search finished");
                    continue;
                }
            };
            let trial_id = self
                .experiments
                .get(&experiment_id)
                .and_then(|e| e.search.as_ref()?.trials.get(&request).copied());
            if let Some(trial_id) = trial_id {
                self.follow_search(trial_id);
            }
        }
    }

    /// Records a QUEUED trial of a search under its request id (once).
    pub(super) fn create_search_trial(
        &mut self,
        experiment_id: u64,
        request: RequestId,
        hparams: &TrialHparams,
    ) {
        let Some(search) = self
            .experiments
            .get_mut(&experiment_id)
            .and_then(|e| e.search.as_mut())
        else {
            return;
        };
        if search.trials.contains_key(&request) {
            return;
        }
        let json = serde_json::Value::Object(hparams.clone()).to_string();
        let id = match self
            .store
            .insert_trial(experiment_id, &json, Some(request.0))
        {
            Ok(id) => id,
            Err(e) => {
                // A restarted master creates it from the replayed search.
                tracing::error!(experiment = experiment_id, error = %e, "cannot record new trial");
                return;
            }
        };
        search.trials.insert(request, id);
        let row = TrialRow::queued(id, experiment_id, json, Some(request.0));
        self.trials.insert(id, TrialEntry::new(row));
        self.needs_schedule = true;
    }

    /// Brings a PAUSED trial in line with its search: queued again once promoted, COMPLETED once
    /// stopped.
    fn follow_search(&mut self, trial_id: u64) {
        let Some(trial) = self.trials.get(&trial_id) else {
            return;
        };
        let Some(experiment) = self.experiments.get(&trial.row.experiment_id) else {
            return;
        };
        let status = experiment
            .search
            .as_ref()
            .zip(trial.row.request_id)
            .and_then(|(search, id)| search.asha.status(RequestId(id)));
        let next = match status.map(|s| (s.stage, s.length)) {
            _ if trial.row.state != TrialState::Paused => return,
            Some((Stage::Training, length)) if trial.row.steps_completed < length => {
                TrialState::Queued
            }
            Some((Stage::Closed, _)) => TrialState::Completed,
            _ => return,
        };
        let trial = self.trials.get_mut(&trial_id).expect("trial exists");
        trial.row.state = next;
        if let Err(e) = self.store.update_trial(&trial.row) {
            tracing::error!(error = %e, "cannot record trial state");
        }
        tracing::info!(trial = trial_id, state = %next, "trial follows its search");
        if next == TrialState::Completed {
            let _ = self.events.send(ClusterEvent::TrialEnded(trial_id));
        } else {
            self.needs_schedule = true;
        }
    }

    /// Rebuilds every adaptive search from its stored events and brings the trials of active
    /// experiments in line with it.
    pub(super) fn resume_searches(&mut self) {
        let ids: Vec<u64> = self.experiments.keys().copied().collect();
        for experiment_id in ids {
            let Some(experiment) = self.experiments.get(&experiment_id) else {
                continue;
            };
            if experiment.config.searcher.name != baton_common::config::SearcherName::AdaptiveAsha {
                continue;
            }
            let Some((search, creates)) = self.replay_search(experiment_id) else {
                continue;
            };
            let experiment = self.experiments.get_mut(&experiment_id).expect("exists");
            experiment.search = Some(search);
            if experiment.row.state.is_terminal() {
                continue;
            }
            for (request, hparams) in &creates {
                self.create_search_trial(experiment_id, *request, hparams);
            }
            let trials: Vec<u64> = self
                .trials
                .values()
                .filter(|t| t.row.experiment_id == experiment_id)
                .map(|t| t.row.id)
                .collect();
            for trial_id in trials {
                self.follow_search(trial_id);
                self.tell_search(trial_id);
            }
            self.check_experiment_done(experiment_id);
        }
    }

    /// An experiment's search fed its stored events again, with the trials it created so far.
    fn replay_search(
        &self,
        experiment_id: u64,
    ) -> Option<(Search, BTreeMap<RequestId, TrialHparams>)> {
        let experiment = self.experiments.get(&experiment_id)?;
        let (asha, first) = match AdaptiveAsha::new(&experiment.config) {
            Ok(started) => started,
            Err(e) => {
                tracing::error!(experiment = experiment_id, error = %e, "stored search no longer starts; its trials are not created");
                return None;
            }
        };
        let events = match self.store.searcher_events(experiment_id) {
            Ok(events) => events,
            Err(e) => {
                tracing::error!(experiment = experiment_id, error = %e, "cannot read searcher events");
                return None;
            }
        };
        let mut search = Search::new(asha);
        search.events = events.len() as u64;
        let mut creates = BTreeMap::new();
        let mut collect = |actions: Vec<Action>| {
            for action in actions {
                if let Action::Create {
                    request_id,
                    hparams,
                } = action
                {
                    creates.insert(request_id, hparams);
                }
            }
        };
        collect(first);
        for event in events {
            collect(search.asha.on_event(event));
        }
        search.trials = self
            .trials
            .values()
            .filter(|t| t.row.experiment_id == experiment_id)
            .filter_map(|t| Some((RequestId(t.row.request_id?), t.row.id)))
            .collect();
        Some((search, creates))
    }
}

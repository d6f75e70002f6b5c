//! Experiment lifecycle: load, create, pause, activate, kill.

use std::collections::BTreeMap;

use baton_common::config::parse_experiment_config;

use super::desired::{Desired, KillReason};
use super::search::Search;
use super::state::{Cluster, ExperimentEntry, StopReason, TrialEntry};
use super::storage_use::StorageUse;
use crate::error::{MasterError, MasterResult};
use crate::prepare::PreparedExperiment;
use crate::searcher::adaptive_asha::RequestId;
use crate::states::{ExperimentState, TrialState, with_article};
use crate::store::{ExperimentRow, Store, TrialRow, now_ms};

impl Cluster {
    /// Records a prepared experiment and its trials atomically.
    pub fn create_experiment(&mut self, prepared: PreparedExperiment) -> MasterResult<u64> {
        let PreparedExperiment {
            config_yaml,
            config,
            encoded_context,
            hparams,
            search,
        } = prepared;
        let created_ms = now_ms();
        // The trials of an adaptive search carry their request ids: 0, 1, 2… in order.
        let adaptive = search.is_some();
        let (experiment_id, trial_ids) = self.store.transaction(|store| {
            let id = store.insert_experiment(
                &config.name,
                &config_yaml,
                &encoded_context,
                created_ms,
            )?;
            let mut trial_ids = Vec::new();
            for (index, set) in hparams.iter().enumerate() {
                let json = serde_json::Value::Object(set.clone()).to_string();
                let request_id = adaptive.then_some(index as u32);
                let trial_id = store.insert_trial(id, &json, request_id)?;
                trial_ids.push((trial_id, json, request_id));
            }
            Ok((id, trial_ids))
        })?;
        let mut search = search.map(Search::new);
        for (trial_id, hparams_json, request_id) in trial_ids {
            if let (Some(search), Some(request_id)) = (search.as_mut(), request_id) {
                search.trials.insert(RequestId(request_id), trial_id);
            }
            let row = TrialRow::queued(trial_id, experiment_id, hparams_json, request_id);
            self.trials.insert(trial_id, TrialEntry::new(row));
        }
        let gc = config.checkpoint_storage.gc;
        let row = ExperimentRow {
            id: experiment_id,
            name: config.name.clone(),
            state: ExperimentState::Active,
            config_yaml,
            gc_policy_json: None,
            created_ms,
            storage_peak_bytes: 0,
        };
        tracing::info!(experiment = experiment_id, name = %config.name, trials = hparams.len(), "experiment created");
        self.experiments.insert(
            experiment_id,
            ExperimentEntry {
                row,
                config,
                gc,
                storage: Default::default(),
                search,
            },
        );
        self.needs_schedule = true;
        Ok(experiment_id)
    }

    /// Suspends every trial of an experiment with a checkpoint and stops scheduling it.
    pub fn pause_experiment(&mut self, id: u64) -> MasterResult<()> {
        self.transition(id, ExperimentState::Active, ExperimentState::Paused)?;
        for allocation in self.allocations_of_experiment(id) {
            self.set_desired(&allocation, Desired::Suspend(StopReason::Paused));
        }
        Ok(())
    }

    /// Lets a paused experiment's trials be scheduled again.
    pub fn activate_experiment(&mut self, id: u64) -> MasterResult<()> {
        self.transition(id, ExperimentState::Paused, ExperimentState::Active)?;
        self.needs_schedule = true;
        Ok(())
    }

    /// Cancels an experiment: queued trials end now, running ones are killed.
    pub fn kill_experiment(&mut self, id: u64) -> MasterResult<()> {
        let experiment = self.experiment_mut(id)?;
        if experiment.row.state.is_terminal() {
            return Err(MasterError::FailedPrecondition(format!(
                "experiment {id} is already {}",
                experiment.row.state
            )));
        }
        experiment.row.state = ExperimentState::Canceled;
        self.store
            .set_experiment_state(id, ExperimentState::Canceled)?;
        for trial in self
            .trials
            .values_mut()
            .filter(|t| t.row.experiment_id == id)
        {
            if trial.allocation.is_none() && !trial.row.state.is_terminal() {
                trial.row.state = TrialState::Canceled;
                self.store.update_trial(&trial.row)?;
            }
        }
        for allocation in self.allocations_of_experiment(id) {
            self.set_desired(&allocation, Desired::Kill(KillReason::Canceled));
        }
        self.check_experiment_done(id);
        Ok(())
    }

    fn transition(
        &mut self,
        id: u64,
        from: ExperimentState,
        to: ExperimentState,
    ) -> MasterResult<()> {
        let experiment = self.experiment_mut(id)?;
        if experiment.row.state != from {
            return Err(MasterError::FailedPrecondition(format!(
                "experiment {id} is {}; only {} experiment can become {to}",
                experiment.row.state,
                with_article(from.as_str())
            )));
        }
        experiment.row.state = to;
        self.store.set_experiment_state(id, to)?;
        Ok(())
    }

    pub(super) fn allocations_of_experiment(&self, id: u64) -> Vec<String> {
        self.trials
            .values()
            .filter(|t| t.row.experiment_id == id)
            .filter_map(|t| t.allocation.clone())
            .collect()
    }

    /// Every experiment in the store whose config still parses, with its policy and storage use.
    pub(super) fn load_experiments(store: &Store) -> MasterResult<BTreeMap<u64, ExperimentEntry>> {
        let totals = Self::load_storage_use(store)?;
        let mut experiments = BTreeMap::new();
        for row in store.list_experiments()? {
            let config = match parse_experiment_config(&row.config_yaml) {
                Ok(config) => config,
                Err(e) => {
                    tracing::error!(experiment = row.id, error = %e, "stored config no longer parses; experiment left out");
                    continue;
                }
            };
            let gc = match &row.gc_policy_json {
                Some(json) => serde_json::from_str(json).unwrap_or(config.checkpoint_storage.gc),
                None => config.checkpoint_storage.gc,
            };
            let (held, pinned) = totals.get(&row.id).copied().unwrap_or_default();
            let storage = StorageUse::loaded(held, row.storage_peak_bytes, pinned);
            let entry = ExperimentEntry {
                row,
                config,
                gc,
                storage,
                search: None,
            };
            experiments.insert(entry.row.id, entry);
        }
        Ok(experiments)
    }

    pub(super) fn experiment_mut(&mut self, id: u64) -> MasterResult<&mut ExperimentEntry> {
        self.experiments
            .get_mut(&id)
            .ok_or_else(|| MasterError::NotFound(format!("experiment {id} does not exist")))
    }
}

//! The experiment a fleet runs: its config and context, and whether the master shows all of its
//! trials stopped.

use std::path::Path;

use baton_common::proto::admin_service_client::AdminServiceClient;
use baton_common::proto::{Context, ContextFile, Experiment, ListExperimentsRequest};
use tonic::transport::Channel;

use crate::run::Load;

/// The grid experiment: one categorical hyperparameter with a value per trial.
pub fn experiment_config(load: &Load, storage: &Path) -> String {
    let values: Vec<String> = (0..load.trials).map(|i| i.to_string()).collect();
    format!(
        "name: fleet-{trials}\n\
         entrypoint: sleep 86400\n\
         hyperparameters:\n  seed:\n    type: categorical\n    vals: [{values}]\n\
         searcher:\n  name: grid\n  metric: validation_loss\n  smaller_is_better: true\n  max_length: {max_length}\n\
         resources:\n  slots_per_trial: 1\n\
         min_validation_period: {validation}\n\
         min_checkpoint_period: {checkpoint}\n\
         max_restarts: 0\n\
         checkpoint_storage:\n  type: shared_fs\n  host_path: {storage}\n  save_experiment_best: 0\n  save_trial_best: 1\n  save_trial_latest: 1\n",
        trials = load.trials,
        values = values.join(", "),
        max_length = load.max_length,
        validation = load.validation_period,
        checkpoint = load.checkpoint_period,
        storage = storage.display(),
    )
}

/// A context directory of one file of `kib` KiB (none for 0).
pub fn context(kib: usize) -> Context {
    let files = (kib > 0).then(|| ContextFile {
        path: "model.py".into(),
        content: vec![b'#'; kib * 1024],
        mode: 0o644,
    });
    Context {
        files: files.into_iter().collect(),
    }
}

/// The experiment as `ListExperiments` shows it (state and trial counts by state).
async fn summary(
    admin: &mut AdminServiceClient<Channel>,
    experiment: u64,
) -> anyhow::Result<Experiment> {
    let listed = admin
        .list_experiments(ListExperimentsRequest {})
        .await?
        .into_inner();
    listed
        .experiments
        .into_iter()
        .find(|e| e.id == experiment)
        .ok_or_else(|| anyhow::anyhow!("experiment {experiment} is not listed"))
}

/// Whether the experiment is still active (not every trial trained to `max_length` yet).
pub async fn is_active(
    admin: &mut AdminServiceClient<Channel>,
    experiment: u64,
) -> anyhow::Result<bool> {
    Ok(summary(admin, experiment).await?.state == "ACTIVE")
}

/// Whether the master shows no trial of `experiment` starting, running or stopping.
pub async fn stopped_all(
    admin: &mut AdminServiceClient<Channel>,
    experiment: u64,
) -> anyhow::Result<bool> {
    let states = summary(admin, experiment).await?.trial_states;
    Ok(["STARTING", "RUNNING", "SUSPENDING", "KILLING"]
        .iter()
        .all(|state| states.get(*state).copied().unwrap_or(0) == 0))
}

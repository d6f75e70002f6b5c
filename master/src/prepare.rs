//! Everything about a new experiment whose cost depends on the request — parsing, validation,
//! grid expansion, packing the context — done before the cluster task sees it.

use std::collections::BTreeSet;

use baton_common::config::{ExperimentConfig, check_entrypoint, parse_experiment_config};
use baton_common::proto::Context;
use prost::Message;

use crate::error::{MasterError, MasterResult};
use crate::searcher::{TrialHparams, propose_trials};

/// Largest context directory accepted, in bytes.
pub const MAX_CONTEXT_BYTES: usize = 32 * 1024 * 1024;

/// An experiment checked and expanded, ready to be recorded.
pub struct PreparedExperiment {
    /// The config as submitted.
    pub config_yaml: String,
    /// The parsed config.
    pub config: ExperimentConfig,
    /// The context directory, encoded for the store.
    pub encoded_context: Vec<u8>,
    /// One set of hyperparameters per trial.
    pub hparams: Vec<TrialHparams>,
}

/// Parses and validates a config and its context and proposes its trials.
pub fn prepare_experiment(
    config_yaml: String,
    context: Context,
) -> MasterResult<PreparedExperiment> {
    let invalid = |e: &dyn std::fmt::Display| {
        MasterError::InvalidArgument(format!("invalid experiment config: {e}"))
    };
    let config = parse_experiment_config(&config_yaml).map_err(|e| invalid(&e))?;
    let size: usize = context.files.iter().map(|f| f.content.len()).sum();
    if size > MAX_CONTEXT_BYTES {
        return Err(MasterError::InvalidArgument(format!(
            "context directory is {size} bytes; the limit is {MAX_CONTEXT_BYTES} bytes (32 MiB)"
        )));
    }
    let files: BTreeSet<String> = context.files.iter().map(|f| f.path.clone()).collect();
    check_entrypoint(&config.entrypoint, &files).map_err(|e| invalid(&e))?;
    let hparams = propose_trials(&config).map_err(|e| invalid(&e))?;
    Ok(PreparedExperiment {
        config_yaml,
        config,
        encoded_context: context.encode_to_vec(),
        hparams,
    })
}

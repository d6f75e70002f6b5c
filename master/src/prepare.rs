//! Everything about a new experiment whose cost depends on the request — parsing, validation,
//! grid expansion, packing the context — done before the cluster task sees it.

use std::collections::BTreeSet;

use baton_common::config::{
    ExperimentConfig, SearcherName, check_entrypoint, parse_experiment_config,
};
use baton_common::proto::Context;
use prost::Message;

use crate::error::{MasterError, MasterResult};
use crate::searcher::adaptive_asha::{Action, AdaptiveAsha};
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
    /// One set of hyperparameters per trial to create now (for `adaptive_asha`, its first
    /// trials, request ids 0, 1, 2…).
    pub hparams: Vec<TrialHparams>,
    /// The `adaptive_asha` search that creates the other trials as results arrive.
    pub search: Option<AdaptiveAsha>,
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
    let (hparams, search) = if config.searcher.name == SearcherName::AdaptiveAsha {
        let (search, actions) = AdaptiveAsha::new(&config).map_err(|e| invalid(&e))?;
        let first = actions
            .into_iter()
            .filter_map(|action| match action {
                Action::Create { hparams, .. } => Some(hparams),
                _ => None,
            })
            .collect();
        (first, Some(search))
    } else {
        (propose_trials(&config).map_err(|e| invalid(&e))?, None)
    };
    Ok(PreparedExperiment {
        config_yaml,
        config,
        encoded_context: context.encode_to_vec(),
        hparams,
        search,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_common::proto::ContextFile;
    use proptest::prelude::*;
    use serde_json::Value;

    /// A valid config to mutate.
    const VALID: &str = "name: x\nentrypoint: python3 train.py\n\
        hyperparameters:\n  lr: {type: double, minval: 0.001, maxval: 0.1, count: 3}\n  layers: {type: int, minval: 1, maxval: 4, count: 2}\n  act: {type: categorical, vals: [relu, tanh]}\n\
        searcher: {name: grid, metric: loss, max_length: 10}\n\
        checkpoint_storage: {type: shared_fs, host_path: /tmp/x}\n";

    const KEYS: &[&str] = &[
        "name",
        "entrypoint",
        "hyperparameters",
        "searcher",
        "metric",
        "max_length",
        "max_trials",
        "type",
        "vals",
        "minval",
        "maxval",
        "count",
        "resources",
        "slots_per_trial",
        "priority",
        "checkpoint_storage",
        "host_path",
        "bucket",
        "min_validation_period",
        "min_checkpoint_period",
        "max_restarts",
        "restart_backoff",
    ];

    fn context() -> Context {
        Context {
            files: vec![ContextFile {
                path: "train.py".into(),
                content: b"pass\n".to_vec(),
                mode: 0o644,
            }],
        }
    }

    /// YAML-shaped values made of config words, numbers and YAML's own punctuation.
    fn yaml_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            Just(Value::Null),
            prop::sample::select(vec![
                "grid",
                "random",
                "single",
                "shared_fs",
                "s3",
                "double",
                "int",
                "log",
                "categorical",
                "python3 train.py",
                "*a",
                "&a x",
                "!!binary",
                "~",
                "[",
                "{",
                "- -"
            ])
            .prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            prop::sample::select(KEYS).prop_map(str::to_string),
                            "[a-z_]{1,8}"
                        ],
                        inner
                    ),
                    0..6
                )
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    /// What preparing `yaml` may lead to: an experiment of at least one trial, or a refusal.
    fn prepares_or_refuses(yaml: String) -> Result<(), TestCaseError> {
        match prepare_experiment(yaml, context()) {
            Ok(prepared) => prop_assert!(!prepared.hparams.is_empty()),
            Err(MasterError::InvalidArgument(message)) => prop_assert!(!message.is_empty()),
            Err(other) => prop_assert!(false, "not a refusal: {other}"),
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn any_yaml_document_prepares_or_is_refused(value in yaml_value()) {
            let yaml = serde_norway::to_string(&value).unwrap();
            prepares_or_refuses(yaml)?;
        }

        #[test]
        fn a_valid_config_with_bytes_changed_prepares_or_is_refused(
            edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec!["", ":", "-", "[", "]", "{", "}", "&a", "*a", "\n  ", "\t", "'", "\"", "#", "9e999", "!"])), 1..6)
        ) {
            let mut yaml = VALID.to_string();
            for (at, insert) in edits {
                let mut index = at.index(yaml.len() + 1);
                while !yaml.is_char_boundary(index) {
                    index -= 1;
                }
                yaml.insert_str(index, insert);
            }
            prepares_or_refuses(yaml)?;
        }

        #[test]
        fn any_text_prepares_or_is_refused(yaml in "\\PC{0,300}") {
            prepares_or_refuses(yaml)?;
        }
    }

    #[test]
    fn aliases_expanding_a_billion_times_are_refused() {
        let mut yaml = format!("{VALID}l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..10 {
            let below = format!("*l{}", level - 1);
            let row = [below.as_str(); 9].join(", ");
            yaml.push_str(&format!("l{level}: &l{level} [{row}]\n"));
        }
        let Err(MasterError::InvalidArgument(message)) = prepare_experiment(yaml, context()) else {
            panic!("a billion laughs must be refused");
        };
        assert!(message.contains("repetition limit exceeded"), "{message}");
    }

    #[test]
    fn the_valid_config_prepares() {
        let prepared = prepare_experiment(VALID.into(), context()).unwrap();
        assert!(!prepared.hparams.is_empty());
        assert!(prepared.search.is_none());
    }

    #[test]
    fn an_adaptive_search_starts_with_its_first_trials_and_bad_knobs_are_refused() {
        let adaptive = VALID.replace(
            "{name: grid, metric: loss, max_length: 10}",
            "{name: adaptive_asha, metric: loss, max_length: 16, max_trials: 6, \
             max_concurrent_trials: 2}",
        );
        let prepared = prepare_experiment(adaptive.clone(), context()).unwrap();
        assert_eq!(
            prepared.hparams.len(),
            2,
            "max_concurrent_trials trials first"
        );
        assert_eq!(prepared.search.expect("a search").created(), 2);
        let bad = adaptive.replace("max_trials: 6", "max_trials: 6, divisor: 1");
        let Err(MasterError::InvalidArgument(message)) = prepare_experiment(bad, context()) else {
            panic!("a divisor of 1 must be refused");
        };
        assert_eq!(
            message,
            "invalid experiment config: searcher.divisor: must be at least 2 (got 1)"
        );
    }
}

use serde_json::json;

use super::*;
use crate::config::test_support::{FS, SINGLE, doc, storage};
use crate::config::{GcSettings, SearcherName, StorageBackend};

fn hp(spec: &str) -> String {
    doc(&format!("hyperparameters:\n  lr: {spec}\n"), SINGLE, FS)
}

fn searcher(spec: &str) -> String {
    doc("", spec, FS)
}

fn top(extra: &str) -> String {
    doc(extra, SINGLE, FS)
}

#[test]
fn bad_configs_name_the_field() {
    #[rustfmt::skip]
    let rows: Vec<(String, &str, &str)> = vec![
        // (yaml, field path, fragment of the message)
        ("name: [unclosed".into(), "experiment config", "not valid YAML"),
        ("key: @bad".into(), "experiment config", "not valid YAML"),
        ("".into(), "experiment config", "empty"),
        ("- a\n- b\n".into(), "experiment config", "invalid type: sequence"),
        (top("bogus: 1\n"), "bogus", "unknown field `bogus`"),
        ("entrypoint: x\nsearcher: {}\n".into(), "searcher.name", "missing"),
        (doc("", SINGLE, FS).replace("name: exp\n", ""), "name", "missing required field"),
        (doc("", SINGLE, FS).replace("name: exp", "name: ''"), "name", "must not be empty"),
        (doc("", SINGLE, FS).replace("name: exp", "name: [1]"), "name", "invalid type"),
        (doc("", SINGLE, FS).replace("python3 train.py", "' '"), "entrypoint", "must not be empty"),
        ("name: a\nentrypoint: b\nsearcher: {name: single, metric: m, max_length: 1}\n".into(), "checkpoint_storage", "missing"),
        (searcher("{name: single, metric: loss, max_length: 10, bogus: 1}"), "searcher.bogus", "unknown field"),
        (searcher("{name: sing, metric: loss, max_length: 10}"), "searcher.name", "unknown variant `sing`"),
        (searcher("{name: single, max_length: 10}"), "searcher.metric", "missing required field"),
        (searcher("{name: single, metric: '', max_length: 10}"), "searcher.metric", "must not be empty"),
        (searcher("{name: single, metric: loss, max_length: 0}"), "searcher.max_length", "must be at least 1 (got 0)"),
        (searcher("{name: single, metric: loss, max_length: ten}"), "searcher.max_length", "invalid type"),
        (searcher("{name: single, metric: loss, max_length: -1}"), "searcher.max_length", "-1"),
        (searcher("{name: single, metric: loss, max_length: 1, smaller_is_better: maybe}"), "searcher.smaller_is_better", "invalid type"),
        (searcher("{name: random, metric: loss, max_length: 10}"), "searcher.max_trials", "required by the random searcher"),
        (searcher("{name: grid, metric: loss, max_length: 10, max_trials: 0}"), "searcher.max_trials", "at least 1"),
        (top("resources: {slots: 2}\n"), "resources.slots", "unknown field `slots`"),
        (top("resources: {priority: 0}\n"), "resources.priority", "from 1 to 99"),
        (top("resources: {priority: 100}\n"), "resources.priority", "(got 100)"),
        (top("resources: {slots_per_trial: 0}\n"), "resources.slots_per_trial", "at least 1 (got 0)"),
        (top("resources: {processes_per_agent: 0}\n"), "resources.processes_per_agent", "at least 1 (got 0)"),
        (top("min_checkpoint_period: -1\n"), "min_checkpoint_period", "-1"),
        (top("min_validation_period: -5\n"), "min_validation_period", "-5"),
        (top("min_validation_period: 2.5\n"), "min_validation_period", "2.5"),
        (top("max_restarts: -1\n"), "max_restarts", "-1"),
        (top("preemption_timeout: 0\n"), "preemption_timeout", "at least 1 second (got 0)"),
        (top("restart_backoff: {initial_seconds: -1}\n"), "restart_backoff.initial_seconds", "from 0 to 86400 (got -1)"),
        (top("restart_backoff: {initial_seconds: 5, max_seconds: 2}\n"), "restart_backoff.max_seconds", "from initial_seconds (5) to 86400 (got 2)"),
        (top("restart_backoff: {initial: 5}\n"), "restart_backoff.initial", "unknown field"),
        (storage("{type: shared_fs, host_path: /m, bogus: 2}"), "checkpoint_storage.bogus", "unknown field"),
        (storage("{type: shared_fs, host_path: /m, save_trial_best: -1}"), "checkpoint_storage.save_trial_best", "-1"),
        (storage("{type: shared_fs, host_path: /m, save_experiment_best: 1.5}"), "checkpoint_storage.save_experiment_best", "1.5"),
        (storage("{type: shared_fs, host_path: /m, save_trial_latest: two}"), "checkpoint_storage.save_trial_latest", "invalid type"),
        (storage("{type: shared_fs, host_path: /m, gc_while_running: 1}"), "checkpoint_storage.gc_while_running", "expected a boolean"),
        (storage("{type: shared_fs, host_path: /m, gc_while_running: 'true'}"), "checkpoint_storage.gc_while_running", "expected a boolean"),
        (storage("{type: shared_fs, host_path: rel/dir}"), "checkpoint_storage.host_path", "must be an absolute path (got \"rel/dir\")"),
        (storage("{type: shared_fs, host_path: /m, storage_path: a/../../b}"), "checkpoint_storage.storage_path", "without \"..\""),
        (storage("{type: shared_fs, host_path: /m, storage_path: /abs}"), "checkpoint_storage.storage_path", "relative"),
        (storage("{type: shared_fs}"), "checkpoint_storage.host_path", "missing required field"),
        (storage("{type: ftp, host: x}"), "checkpoint_storage.type", "unknown type \"ftp\""),
        (storage("{host_path: /m}"), "checkpoint_storage.type", "missing required field"),
        (storage("5"), "checkpoint_storage", "invalid type"),
        (storage("{type: s3}"), "checkpoint_storage.bucket", "missing required field"),
        (storage("{type: s3, bucket: ''}"), "checkpoint_storage.bucket", "must not be empty"),
        (storage("{type: s3, bucket: 3}"), "checkpoint_storage.bucket", "invalid type"),
        (storage("{type: s3, bucket: b, endpoint_url: 'localhost:9000'}"), "checkpoint_storage.endpoint_url", "http or https"),
        (storage("{type: s3, bucket: b, endpoint_url: 'ftp://host'}"), "checkpoint_storage.endpoint_url", "http or https"),
        (storage("{type: s3, bucket: b, access_key: k}"), "checkpoint_storage.secret_key", "required when access_key"),
        (storage("{type: s3, bucket: b, secret_key: k}"), "checkpoint_storage.access_key", "required when secret_key"),
        (storage("{type: s3, bucket: b, prefix: a/../b}"), "checkpoint_storage.prefix", "\"..\""),
        (storage("{type: s3, bucket: b, host_path: /m}"), "checkpoint_storage.host_path", "unknown field"),
        (storage("{type: gcs, bucket: ''}"), "checkpoint_storage.bucket", "must not be empty"),
        (storage("{type: gcs, bucket: b, endpoint_url: 'localhost:4443'}"), "checkpoint_storage.endpoint_url", "http or https"),
        (storage("{type: azure, container: c}"), "checkpoint_storage", "account_url, connection_string or account"),
        (storage("{type: azure, container: c, account_url: nope}"), "checkpoint_storage.account_url", "http or https"),
        (hp("{type: int, minval: 1, maxval: 2, bogus: 3}"), "hyperparameters.lr.bogus", "unknown field"),
        (hp("{type: int, minval: 2, maxval: 1}"), "hyperparameters.lr.minval", "must not exceed maxval (got 2 > 1)"),
        (hp("{type: int, minval: 1.5, maxval: 2}"), "hyperparameters.lr.minval", "expected i64"),
        (hp("{type: int, maxval: 2}"), "hyperparameters.lr.minval", "missing required field"),
        (hp("{type: int, minval: 1, maxval: 2, count: 0}"), "hyperparameters.lr.count", "at least 1"),
        (hp("{type: int, minval: 1, maxval: 2, count: -2}"), "hyperparameters.lr.count", "-2"),
        (hp("{type: double, minval: 0.5, maxval: 0.1}"), "hyperparameters.lr.minval", "must not exceed maxval"),
        // Non-finite floats do not survive the trip through JSON values; they read as null.
        (hp("{type: double, minval: 0, maxval: .inf}"), "hyperparameters.lr.maxval", "expected f64"),
        (hp("{type: double, minval: a, maxval: 1}"), "hyperparameters.lr.minval", "invalid type"),
        (hp("{type: log, minval: -4, maxval: -1, base: 1}"), "hyperparameters.lr.base", "other than 1"),
        (hp("{type: log, minval: -4, maxval: -1, base: -2}"), "hyperparameters.lr.base", "positive"),
        (hp("{type: log, minval: 1, maxval: 400}"), "hyperparameters.lr.maxval", "finite"),
        (hp("{type: categorical, vals: []}"), "hyperparameters.lr.vals", "at least one value"),
        (hp("{type: categorical, vals: 3}"), "hyperparameters.lr.vals", "expected a sequence"),
        (hp("{type: categorical}"), "hyperparameters.lr.vals", "missing required field"),
        (hp("{type: const}"), "hyperparameters.lr.val", "missing required field"),
        (hp("{type: uniform, minval: 1, maxval: 2}"), "hyperparameters.lr.type", "unknown type \"uniform\""),
        (hp("{type: 7}"), "hyperparameters.lr.type", "unknown type 7"),
    ];
    assert!(rows.len() >= 20);
    let mut failures = Vec::new();
    for (yaml, path, fragment) in rows {
        match parse_experiment_config(&yaml) {
            Ok(_) => failures.push(format!("accepted:\n{yaml}")),
            Err(err) => {
                let text = err.to_string();
                let right = err.path() == path
                    && text.starts_with(&format!("{path}: "))
                    && text.contains(fragment);
                if !right {
                    failures.push(format!(
                        "{text:?} wants {path:?} and {fragment:?} from:\n{yaml}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn minimal_config_gets_defaults() {
    let cfg = parse_experiment_config(&doc("", SINGLE, FS)).unwrap();
    assert_eq!(cfg.name, "exp");
    assert_eq!(cfg.entrypoint, "python3 train.py");
    assert!(cfg.hyperparameters.is_empty());
    assert_eq!(cfg.searcher.name, SearcherName::Single);
    assert!(cfg.searcher.smaller_is_better);
    assert_eq!(
        (
            cfg.searcher.max_length,
            cfg.searcher.max_trials,
            cfg.searcher.seed
        ),
        (10, None, 0)
    );
    assert_eq!(
        cfg.resources,
        ResourcesConfig {
            slots_per_trial: 1,
            processes_per_agent: None,
            priority: 42
        }
    );
    assert_eq!(
        (cfg.min_checkpoint_period, cfg.min_validation_period),
        (0, 0)
    );
    assert_eq!((cfg.max_restarts, cfg.preemption_timeout), (5, 60));
    assert_eq!(
        cfg.checkpoint_storage.backend,
        StorageBackend::SharedFs {
            host_path: "/mnt/ckpt".into(),
            storage_path: None
        }
    );
    assert_eq!(cfg.checkpoint_storage.gc, GcSettings::default());
    assert_eq!(
        cfg.checkpoint_storage.gc,
        GcSettings {
            save_experiment_best: 0,
            save_trial_best: 1,
            save_trial_latest: 1,
            gc_while_running: false,
        }
    );
}

const FULL: &str = r#"
name: mnist
entrypoint: python3 train.py --epochs 3
hyperparameters:
  lr: 0.1
  layers: [64, 32]
  optimizer_args: {momentum: 0.9}
  fixed: {type: const, val: {type: sgd}}
  batch: {type: int, minval: 16, maxval: 128, count: 3}
  dropout: {type: double, minval: 0.1, maxval: 0.5}
  wd: {type: log, minval: -5, maxval: -2, count: 4}
  decay: {type: log, minval: 0, maxval: 3, base: 2}
  act: {type: categorical, vals: [relu, tanh]}
searcher:
  name: grid
  metric: validation_accuracy
  smaller_is_better: false
  max_length: 1000
  max_trials: 50
  seed: 7
resources: {slots_per_trial: 2, processes_per_agent: 1, priority: 10}
min_checkpoint_period: 100
min_validation_period: 50
max_restarts: 0
preemption_timeout: 30
checkpoint_storage:
  type: shared_fs
  host_path: /mnt/checkpoints
  storage_path: baton/mnist
  save_experiment_best: 2
  save_trial_best: 0
  save_trial_latest: 3
  gc_while_running: true
"#;

#[test]
fn full_shared_fs_config_parses() {
    let cfg = parse_experiment_config(FULL).unwrap();
    let hps = &cfg.hyperparameters;
    assert_eq!(hps["lr"], Hyperparameter::Const(json!(0.1)));
    assert_eq!(hps["layers"], Hyperparameter::Const(json!([64, 32])));
    assert_eq!(
        hps["optimizer_args"],
        Hyperparameter::Const(json!({"momentum": 0.9}))
    );
    assert_eq!(hps["fixed"], Hyperparameter::Const(json!({"type": "sgd"})));
    assert_eq!(
        hps["batch"],
        Hyperparameter::Int {
            minval: 16,
            maxval: 128,
            count: Some(3)
        }
    );
    assert_eq!(
        hps["dropout"],
        Hyperparameter::Double {
            minval: 0.1,
            maxval: 0.5,
            count: None
        }
    );
    assert_eq!(
        hps["wd"],
        Hyperparameter::Log {
            minval: -5.0,
            maxval: -2.0,
            base: 10.0,
            count: Some(4)
        }
    );
    assert_eq!(
        hps["decay"],
        Hyperparameter::Log {
            minval: 0.0,
            maxval: 3.0,
            base: 2.0,
            count: None
        }
    );
    assert_eq!(
        hps["act"],
        Hyperparameter::Categorical {
            vals: vec![json!("relu"), json!("tanh")]
        }
    );
    assert_eq!(
        cfg.searcher,
        SearcherConfig {
            name: SearcherName::Grid,
            metric: "validation_accuracy".into(),
            smaller_is_better: false,
            max_length: 1000,
            max_trials: Some(50),
            seed: 7,
            divisor: None,
            max_rungs: None,
            mode: None,
            max_concurrent_trials: None,
        }
    );
    assert_eq!(
        cfg.resources,
        ResourcesConfig {
            slots_per_trial: 2,
            processes_per_agent: Some(1),
            priority: 10
        }
    );
    assert_eq!(
        (cfg.min_checkpoint_period, cfg.min_validation_period),
        (100, 50)
    );
    assert_eq!((cfg.max_restarts, cfg.preemption_timeout), (0, 30));
    assert_eq!(
        cfg.checkpoint_storage,
        CheckpointStorageConfig {
            backend: StorageBackend::SharedFs {
                host_path: "/mnt/checkpoints".into(),
                storage_path: Some("baton/mnist".into()),
            },
            gc: GcSettings {
                save_experiment_best: 2,
                save_trial_best: 0,
                save_trial_latest: 3,
                gc_while_running: true,
            },
        }
    );
}

#[test]
fn config_round_trips_through_yaml_and_json() {
    let cfg = parse_experiment_config(FULL).unwrap();
    let yaml = serde_norway::to_string(&cfg).unwrap();
    assert_eq!(parse_experiment_config(&yaml).unwrap(), cfg, "{yaml}");
    let json = serde_json::to_string(&cfg).unwrap();
    assert_eq!(
        serde_json::from_str::<ExperimentConfig>(&json).unwrap(),
        cfg
    );
}

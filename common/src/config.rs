//! The experiment config: its YAML schema, parsing with field paths, and semantic validation.
//!
//! Every error names the offending field by its path (`searcher.max_length`,
//! `hyperparameters.lr.minval`, `checkpoint_storage.host_path`), says what was found and what
//! would be right. Unknown fields are rejected everywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Component, Path};

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer, ser};
use serde_json::Value;
use serde_path_to_error::Segment;

/// An experiment as its author writes it in YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Human-readable name of the experiment.
    pub name: String,
    /// Command line run in the context directory, e.g. `python3 train.py --epochs 3`.
    pub entrypoint: String,
    /// Hyperparameters by name: constants or ranges for the searcher.
    #[serde(default)]
    pub hyperparameters: BTreeMap<String, Hyperparameter>,
    /// How trials are proposed and how long each one trains.
    pub searcher: SearcherConfig,
    /// Slots and priority of each trial.
    #[serde(default)]
    pub resources: ResourcesConfig,
    /// Checkpoint at least every this many steps (0 = only when asked or at the end).
    #[serde(default)]
    pub min_checkpoint_period: u64,
    /// Validate at least every this many steps (0 = only when asked or at the end).
    #[serde(default)]
    pub min_validation_period: u64,
    /// How many times a failing trial is restarted from its latest checkpoint.
    #[serde(default = "default_max_restarts")]
    pub max_restarts: u32,
    /// Seconds a trial has to reach a step boundary when asked to stop, before it is killed.
    #[serde(default = "default_preemption_timeout")]
    pub preemption_timeout: u64,
    /// Where checkpoints go and which of them garbage collection keeps.
    pub checkpoint_storage: CheckpointStorageConfig,
}

fn default_max_restarts() -> u32 {
    5
}

fn default_preemption_timeout() -> u64 {
    60
}

/// One hyperparameter: a constant, or a range or list the searcher draws from.
#[derive(Debug, Clone, PartialEq)]
pub enum Hyperparameter {
    /// A fixed value (a bare YAML value, or `type: const` with `val`).
    Const(Value),
    /// Integers from `minval` to `maxval` inclusive; `count` points in a grid.
    Int {
        /// Smallest value.
        minval: i64,
        /// Largest value.
        maxval: i64,
        /// Number of grid points (the grid searcher's resolution).
        count: Option<u32>,
    },
    /// Floats from `minval` to `maxval`; `count` points in a grid.
    Double {
        /// Smallest value.
        minval: f64,
        /// Largest value.
        maxval: f64,
        /// Number of grid points (required by the grid searcher).
        count: Option<u32>,
    },
    /// `base` raised to an exponent from `minval` to `maxval`; `count` points in a grid.
    Log {
        /// Smallest exponent.
        minval: f64,
        /// Largest exponent.
        maxval: f64,
        /// Base of the power (default 10).
        base: f64,
        /// Number of grid points (required by the grid searcher).
        count: Option<u32>,
    },
    /// One of a non-empty list of values.
    Categorical {
        /// The values to choose from.
        vals: Vec<Value>,
    },
}

/// A typed hyperparameter without its `type` key, under a key naming the type (as serde reads enums).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum TypedHyperparameter {
    Const {
        val: Value,
    },
    Int {
        minval: i64,
        maxval: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
    Double {
        minval: f64,
        maxval: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
    Log {
        minval: f64,
        maxval: f64,
        #[serde(default = "default_log_base")]
        base: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
    Categorical {
        vals: Vec<Value>,
    },
}

const HYPERPARAMETER_TYPES: &[&str] = &["const", "int", "double", "log", "categorical"];

fn default_log_base() -> f64 {
    10.0
}

impl From<TypedHyperparameter> for Hyperparameter {
    fn from(typed: TypedHyperparameter) -> Self {
        match typed {
            TypedHyperparameter::Const { val } => Hyperparameter::Const(val),
            TypedHyperparameter::Int {
                minval,
                maxval,
                count,
            } => Hyperparameter::Int {
                minval,
                maxval,
                count,
            },
            TypedHyperparameter::Double {
                minval,
                maxval,
                count,
            } => Hyperparameter::Double {
                minval,
                maxval,
                count,
            },
            TypedHyperparameter::Log {
                minval,
                maxval,
                base,
                count,
            } => Hyperparameter::Log {
                minval,
                maxval,
                base,
                count,
            },
            TypedHyperparameter::Categorical { vals } => Hyperparameter::Categorical { vals },
        }
    }
}

impl Serialize for Hyperparameter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let typed = match self.clone() {
            // A constant map holding a `type` key must be spelled out, or it would read back as a range.
            Hyperparameter::Const(Value::Object(map)) if map.contains_key("type") => {
                TypedHyperparameter::Const {
                    val: Value::Object(map),
                }
            }
            Hyperparameter::Const(value) => return value.serialize(serializer),
            Hyperparameter::Int {
                minval,
                maxval,
                count,
            } => TypedHyperparameter::Int {
                minval,
                maxval,
                count,
            },
            Hyperparameter::Double {
                minval,
                maxval,
                count,
            } => TypedHyperparameter::Double {
                minval,
                maxval,
                count,
            },
            Hyperparameter::Log {
                minval,
                maxval,
                base,
                count,
            } => TypedHyperparameter::Log {
                minval,
                maxval,
                base,
                count,
            },
            Hyperparameter::Categorical { vals } => TypedHyperparameter::Categorical { vals },
        };
        // `{"int": {...}}` becomes `{"type": "int", ...}`.
        let external = serde_json::to_value(typed).map_err(ser::Error::custom)?;
        let mut flat = serde_json::Map::new();
        if let Value::Object(outer) = external {
            for (kind, fields) in outer {
                flat.insert("type".to_string(), Value::String(kind));
                if let Value::Object(fields) = fields {
                    flat.extend(fields);
                }
            }
        }
        flat.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Hyperparameter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        match &value {
            Value::Object(map) if map.contains_key("type") => {
                let typed: TypedHyperparameter =
                    deserialize_tagged(map.clone(), HYPERPARAMETER_TYPES)?;
                Ok(typed.into())
            }
            _ => Ok(Hyperparameter::Const(value)),
        }
    }
}

/// The searcher: which trials to run and how long to train each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearcherConfig {
    /// Which search algorithm proposes trials.
    pub name: SearcherName,
    /// Validation metric that ranks trials and checkpoints.
    pub metric: String,
    /// Whether a smaller metric is better.
    #[serde(default = "default_true")]
    pub smaller_is_better: bool,
    /// Steps each trial trains for.
    pub max_length: u64,
    /// Number of trials: required by `random`, a cap for `grid`, ignored by `single`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_trials: Option<u32>,
    /// Seed of the random searcher.
    #[serde(default)]
    pub seed: u64,
}

fn default_true() -> bool {
    true
}

/// The search algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearcherName {
    /// One trial with fixed values.
    Single,
    /// Every combination of grid points.
    Grid,
    /// `max_trials` random samples.
    Random,
}

/// Resources of each trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesConfig {
    /// Slots (GPUs) each trial needs on one agent.
    #[serde(default = "default_slots_per_trial")]
    pub slots_per_trial: u32,
    /// Scheduling priority, 1 to 99; a lower number is more important.
    #[serde(default = "default_priority")]
    pub priority: u32,
}

fn default_slots_per_trial() -> u32 {
    1
}

fn default_priority() -> u32 {
    42
}

impl Default for ResourcesConfig {
    fn default() -> Self {
        ResourcesConfig {
            slots_per_trial: default_slots_per_trial(),
            priority: default_priority(),
        }
    }
}

/// Checkpoint storage and GC policy; one flat map in YAML and JSON (`type`, backend fields, `save_*`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckpointStorageConfig {
    /// Where checkpoints are stored.
    #[serde(flatten)]
    pub backend: StorageBackend,
    /// Which checkpoints garbage collection keeps.
    #[serde(flatten)]
    pub gc: GcSettings,
}

/// A checkpoint storage backend, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StorageBackend {
    /// A filesystem mounted on every host; root = `host_path[/storage_path]`.
    SharedFs {
        /// Absolute path of the mount on each host.
        host_path: String,
        /// Relative directory under `host_path`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        storage_path: Option<String>,
    },
    /// Amazon S3 or an S3-compatible server.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        /// Endpoint of an S3-compatible server (http or https).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint_url: Option<String>,
        /// Region of the bucket.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// Access key id; without it the standard AWS environment is used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access_key: Option<String>,
        /// Secret access key, given together with `access_key`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_key: Option<String>,
    },
    /// Google Cloud Storage.
    Gcs {
        /// Bucket name.
        bucket: String,
        /// Object prefix inside the bucket.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        /// Service account key file; without it the environment's credentials are used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service_account_path: Option<String>,
    },
    /// Azure Blob Storage.
    Azure {
        /// Container name.
        container: String,
        /// Blob prefix inside the container.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        /// Account URL (http or https).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_url: Option<String>,
        /// Connection string holding the account and its key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connection_string: Option<String>,
        /// Storage account name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        /// Access key of the account.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access_key: Option<String>,
    },
}

/// Checkpoint retention: the union of the best and latest checkpoints these counts select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcSettings {
    /// Keep this many best checkpoints of the whole experiment.
    #[serde(default)]
    pub save_experiment_best: u64,
    /// Keep this many best checkpoints of each trial.
    #[serde(default = "default_one")]
    pub save_trial_best: u64,
    /// Keep this many latest checkpoints of each trial.
    #[serde(default = "default_one")]
    pub save_trial_latest: u64,
}

fn default_one() -> u64 {
    1
}

impl Default for GcSettings {
    fn default() -> Self {
        GcSettings {
            save_experiment_best: 0,
            save_trial_best: 1,
            save_trial_latest: 1,
        }
    }
}

/// The storage `type` names, in the order of [`StorageBackend`]'s variants.
const STORAGE_TYPES: &[&str] = &["shared_fs", "s3", "gcs", "azure"];

/// The fields of [`StorageBackend`] again, read externally tagged so that field paths survive.
#[derive(Deserialize)]
#[serde(
    remote = "StorageBackend",
    rename_all = "snake_case",
    deny_unknown_fields
)]
enum StorageBackendDef {
    SharedFs {
        host_path: String,
        #[serde(default)]
        storage_path: Option<String>,
    },
    S3 {
        bucket: String,
        #[serde(default)]
        prefix: Option<String>,
        #[serde(default)]
        endpoint_url: Option<String>,
        #[serde(default)]
        region: Option<String>,
        #[serde(default)]
        access_key: Option<String>,
        #[serde(default)]
        secret_key: Option<String>,
    },
    Gcs {
        bucket: String,
        #[serde(default)]
        prefix: Option<String>,
        #[serde(default)]
        service_account_path: Option<String>,
    },
    Azure {
        container: String,
        #[serde(default)]
        prefix: Option<String>,
        #[serde(default)]
        account_url: Option<String>,
        #[serde(default)]
        connection_string: Option<String>,
        #[serde(default)]
        account: Option<String>,
        #[serde(default)]
        access_key: Option<String>,
    },
}

/// Wrapper giving [`StorageBackendDef`] a `Deserialize` impl.
#[derive(Deserialize)]
struct ExternalStorageBackend(#[serde(with = "StorageBackendDef")] StorageBackend);

impl<'de> Deserialize<'de> for CheckpointStorageConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(CheckpointStorageVisitor)
    }
}

/// Splits the flat map into GC fields (read in place, keeping their paths) and backend fields.
struct CheckpointStorageVisitor;

impl<'de> Visitor<'de> for CheckpointStorageVisitor {
    type Value = CheckpointStorageConfig;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let types = STORAGE_TYPES.join(", ");
        write!(
            f,
            "a map with `type` ({types}) and the fields of that storage"
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut gc = GcSettings::default();
        let mut seen = BTreeSet::new();
        let mut backend = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
            }
            match key.as_str() {
                "save_experiment_best" => gc.save_experiment_best = map.next_value()?,
                "save_trial_best" => gc.save_trial_best = map.next_value()?,
                "save_trial_latest" => gc.save_trial_latest = map.next_value()?,
                _ => {
                    backend.insert(key, map.next_value::<Value>()?);
                }
            }
        }
        let ExternalStorageBackend(backend) = deserialize_tagged(backend, STORAGE_TYPES)?;
        Ok(CheckpointStorageConfig { backend, gc })
    }
}

/// Marks an error message that carries a path below the point where it was raised.
const NESTED: char = '\u{1f}';

fn nested_message(path: &str, message: &str) -> String {
    format!("{NESTED}{path}{NESTED}{message}")
}

/// Reads a `type`-tagged map through `T`, an externally tagged mirror, keeping field paths.
fn deserialize_tagged<T: DeserializeOwned, E: de::Error>(
    mut map: serde_json::Map<String, Value>,
    types: &[&str],
) -> Result<T, E> {
    let expected = types.join(", ");
    let kind = match map.remove("type") {
        Some(Value::String(kind)) if types.contains(&kind.as_str()) => kind,
        Some(other) => {
            let message = format!("unknown type {other}, expected one of {expected}");
            return Err(E::custom(nested_message("type", &message)));
        }
        None => {
            let message = format!("missing required field (one of {expected})");
            return Err(E::custom(nested_message("type", &message)));
        }
    };
    let external = Value::Object(serde_json::Map::from_iter([(kind, Value::Object(map))]));
    serde_path_to_error::deserialize(external).map_err(|err| {
        let path = path_string(err.path());
        E::custom(nested_message(&path, &err.into_inner().to_string()))
    })
}

/// A path as `a.b[0].c`, empty at the root; enum variants (our own wrapping) are left out.
fn path_string(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { .. } => {}
            Segment::Unknown => out.push_str(if out.is_empty() { "?" } else { ".?" }),
        }
    }
    out
}

/// A config that cannot be parsed or is not allowed; Display is `<field path>: <what is wrong>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The text is not YAML of the expected shape.
    #[error("{path}: {message}")]
    Parse {
        /// Path of the offending field, e.g. `searcher.max_length`.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A value has the right shape but is not allowed.
    #[error("{path}: {message}")]
    Invalid {
        /// Path of the offending field, e.g. `searcher.max_length`.
        path: String,
        /// What is wrong and what would be right.
        message: String,
    },
}

impl ConfigError {
    /// Path of the offending field.
    pub fn path(&self) -> &str {
        match self {
            ConfigError::Parse { path, .. } | ConfigError::Invalid { path, .. } => path,
        }
    }

    fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Builds a parse error from a serde path and message, resolving nested paths.
    fn parse(path: &str, message: &str) -> Self {
        let (message, location) = split_location(message);
        let mut message = strip_path_prefix(path, message).to_string();
        let mut path = path.to_string();
        if let Some(rest) = message.strip_prefix(NESTED)
            && let Some((inner, inner_message)) = rest.split_once(NESTED)
        {
            path = join_path(&path, inner);
            message = inner_message.to_string();
        }
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next());
        if let Some(field) = missing {
            path = join_path(&path, field);
            message = "missing required field".to_string();
        }
        if path.is_empty() {
            path = "experiment config".to_string();
        }
        ConfigError::Parse {
            path,
            message: format!("{message}{location}"),
        }
    }
}

/// Splits a trailing ` at line L column C` off a YAML error message.
fn split_location(message: &str) -> (&str, &str) {
    if let Some((head, tail)) = message.rsplit_once(" at line ")
        && let Some((line, column)) = tail.split_once(" column ")
        && [line, column]
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        return (head, &message[head.len()..]);
    }
    (message, "")
}

/// Drops the `<path>: ` prefix the YAML parser puts on messages (the path or one of its parents).
fn strip_path_prefix<'m>(path: &str, message: &'m str) -> &'m str {
    let mut candidate = path;
    while !candidate.is_empty() {
        if let Some(rest) = message
            .strip_prefix(candidate)
            .and_then(|m| m.strip_prefix(": "))
        {
            return rest;
        }
        candidate = match candidate.rfind(['.', '[']) {
            Some(cut) => &candidate[..cut],
            None => "",
        };
    }
    message
}

fn join_path(outer: &str, inner: &str) -> String {
    match (outer.is_empty(), inner.is_empty()) {
        (_, true) => outer.to_string(),
        (true, false) => inner.to_string(),
        (false, false) if inner.starts_with('[') => format!("{outer}{inner}"),
        (false, false) => format!("{outer}.{inner}"),
    }
}

/// Parses an experiment config from YAML and validates it.
pub fn parse_experiment_config(yaml: &str) -> Result<ExperimentConfig, ConfigError> {
    if yaml.trim().is_empty() {
        return Err(ConfigError::Parse {
            path: "experiment config".to_string(),
            message:
                "is empty; it needs at least name, entrypoint, searcher and checkpoint_storage"
                    .to_string(),
        });
    }
    // Syntax errors first: typed parsing can stop at a wrong type before reaching them.
    if let Err(err) = serde_norway::from_str::<serde_norway::Value>(yaml) {
        return Err(ConfigError::Parse {
            path: "experiment config".to_string(),
            message: format!("is not valid YAML: {err}"),
        });
    }
    let deserializer = serde_norway::Deserializer::from_str(yaml);
    let config: ExperimentConfig =
        serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let path = path_string(err.path());
            ConfigError::parse(&path, &err.into_inner().to_string())
        })?;
    config.validate()?;
    Ok(config)
}

type Check = Result<(), ConfigError>;

fn require(ok: bool, path: &str, message: impl FnOnce() -> String) -> Check {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(path, message()))
    }
}

fn non_empty(path: &str, value: &str) -> Check {
    require(!value.trim().is_empty(), path, || {
        format!("must not be empty (got {value:?})")
    })
}

fn at_least_one(path: &str, value: u64) -> Check {
    require(value >= 1, path, || {
        format!("must be at least 1 (got {value})")
    })
}

impl ExperimentConfig {
    /// Checks the values that parsing alone cannot: ranges, required combinations, paths.
    pub fn validate(&self) -> Result<(), ConfigError> {
        non_empty("name", &self.name)?;
        non_empty("entrypoint", &self.entrypoint)?;
        for (name, hp) in &self.hyperparameters {
            require(!name.trim().is_empty(), "hyperparameters", || {
                format!("names must not be empty (got {name:?})")
            })?;
            hp.validate(&format!("hyperparameters.{name}"))?;
        }
        self.searcher.validate()?;
        self.resources.validate()?;
        require(self.preemption_timeout >= 1, "preemption_timeout", || {
            format!(
                "must be at least 1 second (got {})",
                self.preemption_timeout
            )
        })?;
        self.checkpoint_storage.validate()
    }
}

impl Hyperparameter {
    /// Checks bounds, counts and bases; `path` is this hyperparameter's path.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let count_ok = |count: &Option<u32>| match count {
            Some(0) => Err(ConfigError::invalid(
                format!("{path}.count"),
                "must be at least 1 (got 0)",
            )),
            _ => Ok(()),
        };
        match self {
            Hyperparameter::Const(_) => Ok(()),
            Hyperparameter::Int {
                minval,
                maxval,
                count,
            } => {
                require(minval <= maxval, &format!("{path}.minval"), || {
                    format!("must not exceed maxval (got {minval} > {maxval})")
                })?;
                count_ok(count)
            }
            Hyperparameter::Double {
                minval,
                maxval,
                count,
            } => {
                float_range(path, *minval, *maxval)?;
                count_ok(count)
            }
            Hyperparameter::Log {
                minval,
                maxval,
                base,
                count,
            } => {
                float_range(path, *minval, *maxval)?;
                require(
                    base.is_finite() && *base > 0.0 && *base != 1.0,
                    &format!("{path}.base"),
                    || format!("must be a positive number other than 1 (got {base})"),
                )?;
                for (field, exponent) in [("minval", minval), ("maxval", maxval)] {
                    let value = base.powf(*exponent);
                    require(
                        value.is_finite() && value > 0.0,
                        &format!("{path}.{field}"),
                        || {
                            format!(
                                "{base}^{exponent} is not a positive finite number; use a smaller exponent"
                            )
                        },
                    )?;
                }
                count_ok(count)
            }
            Hyperparameter::Categorical { vals } => {
                require(!vals.is_empty(), &format!("{path}.vals"), || {
                    "must list at least one value (got [])".to_string()
                })
            }
        }
    }
}

fn float_range(path: &str, minval: f64, maxval: f64) -> Check {
    for (field, value) in [("minval", minval), ("maxval", maxval)] {
        require(value.is_finite(), &format!("{path}.{field}"), || {
            format!("must be a finite number (got {value})")
        })?;
    }
    require(minval <= maxval, &format!("{path}.minval"), || {
        format!("must not exceed maxval (got {minval} > {maxval})")
    })
}

impl SearcherConfig {
    /// Checks the metric, the length and the trial count against the searcher.
    pub fn validate(&self) -> Result<(), ConfigError> {
        non_empty("searcher.metric", &self.metric)?;
        at_least_one("searcher.max_length", self.max_length)?;
        match self.max_trials {
            Some(n) => at_least_one("searcher.max_trials", n.into()),
            None if self.name == SearcherName::Random => Err(ConfigError::invalid(
                "searcher.max_trials",
                "required by the random searcher (the number of trials to sample)",
            )),
            None => Ok(()),
        }
    }
}

impl ResourcesConfig {
    /// Checks the slot count and the priority range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("resources.slots_per_trial", self.slots_per_trial.into())?;
        require(
            (1..=99).contains(&self.priority),
            "resources.priority",
            || {
                format!(
                    "must be from 1 to 99, lower is more important (got {})",
                    self.priority
                )
            },
        )
    }
}

impl CheckpointStorageConfig {
    /// Checks the backend's fields; paths are under `checkpoint_storage`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.backend.validate()
    }
}

const STORAGE: &str = "checkpoint_storage";

fn check_prefix(prefix: &Option<String>) -> Check {
    let Some(prefix) = prefix else { return Ok(()) };
    require(
        !prefix.split('/').any(|part| part == ".."),
        &format!("{STORAGE}.prefix"),
        || format!("must not contain \"..\" segments (got {prefix:?})"),
    )
}

fn check_url(field: &str, value: &Option<String>) -> Check {
    let Some(value) = value else { return Ok(()) };
    let ok = url::Url::parse(value)
        .map(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
        .unwrap_or(false);
    require(ok, &format!("{STORAGE}.{field}"), || {
        format!("must be an http or https URL such as \"https://host:9000\" (got {value:?})")
    })
}

impl StorageBackend {
    /// Checks required fields, paths, URLs and credential pairs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            StorageBackend::SharedFs {
                host_path,
                storage_path,
            } => {
                require(
                    Path::new(host_path).is_absolute(),
                    &format!("{STORAGE}.host_path"),
                    || format!("must be an absolute path (got {host_path:?})"),
                )?;
                if let Some(sp) = storage_path {
                    let relative = Path::new(sp)
                        .components()
                        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
                    require(relative, &format!("{STORAGE}.storage_path"), || {
                        format!("must be a relative path without \"..\" (got {sp:?})")
                    })?;
                }
                Ok(())
            }
            StorageBackend::S3 {
                bucket,
                prefix,
                endpoint_url,
                access_key,
                secret_key,
                ..
            } => {
                non_empty(&format!("{STORAGE}.bucket"), bucket)?;
                check_prefix(prefix)?;
                check_url("endpoint_url", endpoint_url)?;
                match (access_key, secret_key) {
                    (Some(_), None) => Err(ConfigError::invalid(
                        format!("{STORAGE}.secret_key"),
                        "required when access_key is set (give both, or neither to use the AWS environment)",
                    )),
                    (None, Some(_)) => Err(ConfigError::invalid(
                        format!("{STORAGE}.access_key"),
                        "required when secret_key is set (give both, or neither to use the AWS environment)",
                    )),
                    _ => Ok(()),
                }
            }
            StorageBackend::Gcs { bucket, prefix, .. } => {
                non_empty(&format!("{STORAGE}.bucket"), bucket)?;
                check_prefix(prefix)
            }
            StorageBackend::Azure {
                container,
                prefix,
                account_url,
                connection_string,
                account,
                ..
            } => {
                non_empty(&format!("{STORAGE}.container"), container)?;
                check_prefix(prefix)?;
                check_url("account_url", account_url)?;
                require(
                    account_url.is_some() || connection_string.is_some() || account.is_some(),
                    STORAGE,
                    || {
                        "azure storage needs one of account_url, connection_string or account"
                            .to_string()
                    },
                )
            }
        }
    }

    /// A copy with secrets (`secret_key`, `access_key`, `connection_string`) replaced by `***`.
    pub fn redacted(&self) -> StorageBackend {
        let hide = |secret: &Option<String>| secret.as_ref().map(|_| "***".to_string());
        let mut copy = self.clone();
        match &mut copy {
            StorageBackend::S3 {
                access_key,
                secret_key,
                ..
            } => {
                *access_key = hide(access_key);
                *secret_key = hide(secret_key);
            }
            StorageBackend::Azure {
                connection_string,
                access_key,
                ..
            } => {
                *connection_string = hide(connection_string);
                *access_key = hide(access_key);
            }
            StorageBackend::SharedFs { .. } | StorageBackend::Gcs { .. } => {}
        }
        copy
    }
}

/// Checks that every script the entrypoint names (`*.py`, `*.sh`, `./…`) is in the context files.
///
/// `context_files` holds `/`-separated paths relative to the context directory.
pub fn check_entrypoint(
    entrypoint: &str,
    context_files: &BTreeSet<String>,
) -> Result<(), ConfigError> {
    non_empty("entrypoint", entrypoint)?;
    for token in entrypoint.split_whitespace() {
        let looks_like_script =
            token.ends_with(".py") || token.ends_with(".sh") || token.starts_with("./");
        // Flags, absolute paths and `NAME=value` assignments do not name context files.
        if !looks_like_script
            || token.starts_with('-')
            || token.starts_with('/')
            || token.contains('=')
        {
            continue;
        }
        let mut relative = token;
        while let Some(rest) = relative.strip_prefix("./") {
            relative = rest;
        }
        if relative.is_empty() || context_files.contains(relative) {
            continue;
        }
        let listing = if context_files.is_empty() {
            "the context directory is empty".to_string()
        } else {
            let shown: Vec<&str> = context_files.iter().take(10).map(String::as_str).collect();
            let more = context_files.len().saturating_sub(shown.len());
            let tail = if more > 0 {
                format!(" ... and {more} more")
            } else {
                String::new()
            };
            format!("files: {}{tail}", shown.join(", "))
        };
        return Err(ConfigError::invalid(
            "entrypoint",
            format!("{token:?} is not in the context directory ({listing})"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SINGLE: &str = "{name: single, metric: loss, max_length: 10}";
    const FS: &str = "{type: shared_fs, host_path: /mnt/ckpt}";

    /// A config with the given extra top-level lines, searcher and checkpoint storage.
    fn doc(extra: &str, searcher: &str, storage: &str) -> String {
        format!(
            "name: exp\nentrypoint: python3 train.py\n{extra}searcher: {searcher}\ncheckpoint_storage: {storage}\n"
        )
    }

    fn hp(spec: &str) -> String {
        doc(&format!("hyperparameters:\n  lr: {spec}\n"), SINGLE, FS)
    }

    fn storage(spec: &str) -> String {
        doc("", SINGLE, spec)
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
            (top("min_checkpoint_period: -1\n"), "min_checkpoint_period", "-1"),
            (top("min_validation_period: -5\n"), "min_validation_period", "-5"),
            (top("min_validation_period: 2.5\n"), "min_validation_period", "2.5"),
            (top("max_restarts: -1\n"), "max_restarts", "-1"),
            (top("preemption_timeout: 0\n"), "preemption_timeout", "at least 1 second (got 0)"),
            (storage("{type: shared_fs, host_path: /m, bogus: 2}"), "checkpoint_storage.bogus", "unknown field"),
            (storage("{type: shared_fs, host_path: /m, save_trial_best: -1}"), "checkpoint_storage.save_trial_best", "-1"),
            (storage("{type: shared_fs, host_path: /m, save_experiment_best: 1.5}"), "checkpoint_storage.save_experiment_best", "1.5"),
            (storage("{type: shared_fs, host_path: /m, save_trial_latest: two}"), "checkpoint_storage.save_trial_latest", "invalid type"),
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
                save_trial_latest: 1
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
resources: {slots_per_trial: 2, priority: 10}
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
            }
        );
        assert_eq!(
            cfg.resources,
            ResourcesConfig {
                slots_per_trial: 2,
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
                    save_trial_latest: 3
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

    #[test]
    fn s3_config_parses_and_redacts() {
        let cfg = parse_experiment_config(&storage(
            "{type: s3, bucket: ckpts, prefix: team/a, endpoint_url: 'http://127.0.0.1:9000', \
             region: us-east-1, access_key: AKIA, secret_key: s3cr3t, save_trial_best: 2}",
        ))
        .unwrap();
        let backend = StorageBackend::S3 {
            bucket: "ckpts".into(),
            prefix: Some("team/a".into()),
            endpoint_url: Some("http://127.0.0.1:9000".into()),
            region: Some("us-east-1".into()),
            access_key: Some("AKIA".into()),
            secret_key: Some("s3cr3t".into()),
        };
        assert_eq!(cfg.checkpoint_storage.backend, backend);
        assert_eq!(
            cfg.checkpoint_storage.gc,
            GcSettings {
                save_experiment_best: 0,
                save_trial_best: 2,
                save_trial_latest: 1
            }
        );
        let shown = format!("{:?}", backend.redacted());
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("AKIA") && shown.contains("***"),
            "{shown}"
        );
        assert!(shown.contains("ckpts"));
        // Only credentials are blanked; absent ones stay absent.
        let bare = StorageBackend::S3 {
            bucket: "b".into(),
            prefix: None,
            endpoint_url: None,
            region: None,
            access_key: None,
            secret_key: None,
        };
        assert_eq!(bare.redacted(), bare);
    }

    #[test]
    fn gcs_and_azure_parse_and_redact() {
        let gcs = parse_experiment_config(&storage(
            "{type: gcs, bucket: b, service_account_path: /k.json}",
        ))
        .unwrap();
        assert_eq!(
            gcs.checkpoint_storage.backend,
            StorageBackend::Gcs {
                bucket: "b".into(),
                prefix: None,
                service_account_path: Some("/k.json".into())
            }
        );
        let azure = parse_experiment_config(&storage(
            "{type: azure, container: c, connection_string: 'AccountKey=xyz', access_key: k}",
        ))
        .unwrap();
        match azure.checkpoint_storage.backend.redacted() {
            StorageBackend::Azure {
                container,
                connection_string,
                access_key,
                ..
            } => {
                assert_eq!(container, "c");
                assert_eq!(connection_string.as_deref(), Some("***"));
                assert_eq!(access_key.as_deref(), Some("***"));
            }
            other => panic!("not azure: {other:?}"),
        }
    }

    #[test]
    fn checkpoint_storage_round_trips_through_flat_json() {
        for spec in [
            "{type: shared_fs, host_path: /m, storage_path: a/b, save_experiment_best: 4}",
            "{type: s3, bucket: b, endpoint_url: 'https://s3.local', access_key: a, secret_key: s}",
            "{type: gcs, bucket: b, prefix: p}",
            "{type: azure, container: c, account: acct, save_trial_latest: 0}",
        ] {
            let cfg = parse_experiment_config(&storage(spec))
                .unwrap()
                .checkpoint_storage;
            let text = serde_json::to_string(&cfg).unwrap();
            let flat: Value = serde_json::from_str(&text).unwrap();
            assert!(
                flat.get("type").is_some() && flat.get("save_trial_best").is_some(),
                "{text}"
            );
            assert!(
                flat.get("backend").is_none() && flat.get("gc").is_none(),
                "{text}"
            );
            assert_eq!(
                serde_json::from_str::<CheckpointStorageConfig>(&text).unwrap(),
                cfg,
                "{text}"
            );
        }
        let err = serde_json::from_str::<CheckpointStorageConfig>(
            r#"{"type":"shared_fs","host_path":"/m","x":1}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `x`"), "{err}");
    }

    #[test]
    fn const_map_with_type_key_round_trips() {
        let hp = Hyperparameter::Const(json!({"type": "adam", "beta": 0.9}));
        let text = serde_json::to_string(&hp).unwrap();
        assert_eq!(
            serde_json::from_str::<Hyperparameter>(&text).unwrap(),
            hp,
            "{text}"
        );
        let plain = Hyperparameter::Const(json!({"beta": 0.9}));
        assert_eq!(serde_json::to_string(&plain).unwrap(), r#"{"beta":0.9}"#);
    }

    fn files(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn entrypoint_scripts_must_be_in_the_context() {
        let context = files(&["train.py", "scripts/run.sh", "data.txt"]);
        for ok in [
            "python3 train.py",
            "python3 ./train.py --lr 0.1",
            "bash scripts/run.sh",
            "./scripts/run.sh",
            "python3 -m mypackage.main",
            "env FOO=bar.py python3 train.py --config=conf.py",
            "/usr/bin/env python3 /opt/tools/other.py train.py",
        ] {
            check_entrypoint(ok, &context).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let err = check_entrypoint("python3 missing.py", &context).unwrap_err();
        assert_eq!(err.path(), "entrypoint");
        assert_eq!(
            err.to_string(),
            "entrypoint: \"missing.py\" is not in the context directory (files: data.txt, scripts/run.sh, train.py)"
        );
        assert!(check_entrypoint("./run.sh", &context).is_err());
        assert!(
            check_entrypoint("   ", &context)
                .unwrap_err()
                .to_string()
                .starts_with("entrypoint: ")
        );
        let empty = check_entrypoint("python3 train.py", &BTreeSet::new()).unwrap_err();
        assert!(
            empty.to_string().contains("the context directory is empty"),
            "{empty}"
        );
        let many: BTreeSet<String> = (0..15).map(|i| format!("f{i:02}.txt")).collect();
        let err = check_entrypoint("python3 train.py", &many)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("f09.txt ... and 5 more") && !err.contains("f10.txt"),
            "{err}"
        );
    }
}

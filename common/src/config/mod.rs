//! The experiment config: its YAML schema, parsing with field paths, and semantic validation.
//!
//! Every error names the offending field by its path (`searcher.max_length`,
//! `hyperparameters.lr.minval`, `checkpoint_storage.host_path`), says what was found and what
//! would be right. Unknown fields are rejected everywhere.

mod backoff;
mod entrypoint;
mod error;
mod experiment;
mod hyperparameter;
mod limits;
mod redact;
mod resources;
mod searcher;
mod storage;
#[cfg(test)]
mod test_support;

pub use backoff::RestartBackoff;
pub use entrypoint::check_entrypoint;
pub use error::ConfigError;
pub use experiment::{ExperimentConfig, parse_experiment_config};
pub use hyperparameter::Hyperparameter;
pub use limits::{MAX_CONFIG_BYTES, MAX_NESTING, check_config_text};
pub use redact::{REDACTED, is_secret_key, redact_config_yaml};
pub use resources::ResourcesConfig;
pub use searcher::{AdaptiveMode, SearcherConfig, SearcherName};
pub use storage::{CheckpointStorageConfig, GcSettings, StorageBackend};

//! Config errors with field paths, and the small checks that produce them.

use serde::de::{self, DeserializeOwned};
use serde_json::Value;
use serde_path_to_error::Segment;

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

    pub(super) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Builds a parse error from a serde path and message, resolving nested paths.
    pub(super) fn parse(path: &str, message: &str) -> Self {
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

/// The outcome of one validation check.
pub(super) type Check = Result<(), ConfigError>;

/// A [`ConfigError::Invalid`] at `path` unless `ok`.
pub(super) fn require(ok: bool, path: &str, message: impl FnOnce() -> String) -> Check {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(path, message()))
    }
}

pub(super) fn non_empty(path: &str, value: &str) -> Check {
    require(!value.trim().is_empty(), path, || {
        format!("must not be empty (got {value:?})")
    })
}

pub(super) fn at_least_one(path: &str, value: u64) -> Check {
    require(value >= 1, path, || {
        format!("must be at least 1 (got {value})")
    })
}

/// Marks an error message that carries a path below the point where it was raised.
const NESTED: char = '\u{1f}';

fn nested_message(path: &str, message: &str) -> String {
    format!("{NESTED}{path}{NESTED}{message}")
}

/// Reads a `type`-tagged map through `T`, an externally tagged mirror, keeping field paths.
pub(super) fn deserialize_tagged<T: DeserializeOwned, E: de::Error>(
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
pub(super) fn path_string(path: &serde_path_to_error::Path) -> String {
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

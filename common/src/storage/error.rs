//! Errors of checkpoint storage.

/// Anything that can go wrong while storing or fetching a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The storage configuration cannot be used.
    #[error("checkpoint_storage: {0}")]
    Config(String),
    /// An object store operation failed.
    #[error("storage operation on {object} failed: {source}")]
    ObjectStore {
        /// The object (or prefix) involved.
        object: String,
        /// The underlying error.
        source: object_store::Error,
    },
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The local path involved.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The checkpoint content is not what its manifest says, or breaks a layout rule.
    #[error("checkpoint {uuid}: {reason}")]
    Invalid {
        /// The checkpoint's uuid.
        uuid: String,
        /// What is wrong.
        reason: String,
    },
    /// The checkpoint has no committed manifest.
    #[error("checkpoint {0} is not committed in storage (no metadata.json)")]
    NotCommitted(String),
}

impl StorageError {
    /// Wraps an I/O error with its path.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// Wraps an object store error with the object it concerned.
    pub fn object(object: impl ToString, source: object_store::Error) -> Self {
        StorageError::ObjectStore {
            object: object.to_string(),
            source,
        }
    }
}

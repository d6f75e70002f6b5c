//! The master's error type and its mapping to gRPC status codes.

use crate::store::StoreError;

/// Anything a master operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// The request names something that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed or its values are out of range.
    #[error("{0}")]
    InvalidArgument(String),
    /// The request is valid but the current state does not allow it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller did not prove who it is.
    #[error("{0}")]
    Unauthenticated(String),
    /// The database failed.
    #[error("database error: {0}")]
    Store(#[from] StoreError),
    /// The master's own records are inconsistent (a stored value it does not know).
    #[error("{0}")]
    Internal(String),
    /// The master is shutting down.
    #[error("the master is shutting down")]
    ShuttingDown,
}

impl From<MasterError> for tonic::Status {
    fn from(error: MasterError) -> Self {
        let message = error.to_string();
        match error {
            MasterError::NotFound(_) => tonic::Status::not_found(message),
            MasterError::InvalidArgument(_) => tonic::Status::invalid_argument(message),
            MasterError::FailedPrecondition(_) => tonic::Status::failed_precondition(message),
            MasterError::Unauthenticated(_) => tonic::Status::unauthenticated(message),
            // A master whose lease another master took: the caller should go to that one.
            MasterError::Store(StoreError::Fenced(_)) => tonic::Status::unavailable(message),
            MasterError::Store(_) | MasterError::Internal(_) => tonic::Status::internal(message),
            MasterError::ShuttingDown => tonic::Status::unavailable(message),
        }
    }
}

/// Result of master operations.
pub type MasterResult<T> = Result<T, MasterError>;

//! An early check that checkpoint storage is reachable and writable.

use std::time::Duration;

use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;

use super::{CheckpointStore, StorageError};

impl CheckpointStore {
    /// Writes, reads back and deletes a small probe object, giving up after `timeout`.
    pub async fn check_access(&self, timeout: Duration) -> Result<(), StorageError> {
        let probe = ObjectPath::from(format!(".baton-access-check-{}", uuid::Uuid::new_v4()));
        let round_trip = async {
            self.store.put(&probe, b"baton".to_vec().into()).await?;
            self.store.get(&probe).await?.bytes().await?;
            self.store.delete(&probe).await
        };
        match tokio::time::timeout(timeout, round_trip).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StorageError::Config(format!(
                "cannot write to checkpoint storage: {e}"
            ))),
            Err(_) => Err(StorageError::Config(format!(
                "checkpoint storage did not answer within {timeout:?}: check the endpoint, bucket and credentials"
            ))),
        }
    }
}

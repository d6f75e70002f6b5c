//! Writing a downloaded file so that only a verified, complete file ever has its final name.

use std::path::Path;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use super::{ManifestFile, Progress, StorageError, safe_relative_path};

/// Streams `chunks` into `target/<file.path>.partial` while hashing, then renames it into place
/// only when its size and BLAKE3 match the manifest; anything else removes the partial file.
pub async fn write_verified_file(
    uuid: &str,
    file: &ManifestFile,
    target: &Path,
    chunks: impl Stream<Item = Result<Bytes, StorageError>>,
    progress: Progress<'_>,
) -> Result<(), StorageError> {
    let relative = safe_relative_path(uuid, &file.path)?;
    let destination = target.join(&relative);
    if let Some(parent) = destination.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| StorageError::io(parent, e))?;
    }
    let name = destination
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let partial = destination.with_file_name(format!("{name}.partial"));
    let mut out = tokio::fs::File::create(&partial)
        .await
        .map_err(|e| StorageError::io(&partial, e))?;
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    let mut chunks = std::pin::pin!(chunks);
    let written: Result<(), StorageError> = async {
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            out.write_all(&chunk)
                .await
                .map_err(|e| StorageError::io(&partial, e))?;
            progress(chunk.len() as u64);
        }
        out.flush().await.map_err(|e| StorageError::io(&partial, e))
    }
    .await;
    drop(out);
    let digest = hasher.finalize().to_hex().to_string();
    let verified = written.and_then(|()| check_matches(uuid, file, size, &digest));
    if let Err(e) = verified {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(e);
    }
    tokio::fs::rename(&partial, &destination)
        .await
        .map_err(|e| StorageError::io(&destination, e))
}

/// Checks a received file's size and BLAKE3 against its manifest entry.
pub fn check_matches(
    uuid: &str,
    file: &ManifestFile,
    size: u64,
    digest: &str,
) -> Result<(), StorageError> {
    if size == file.size && digest == file.blake3 {
        Ok(())
    } else {
        Err(StorageError::Invalid {
            uuid: uuid.to_string(),
            reason: format!(
                "file {} does not match metadata.json (size {size} vs {}, checksum {digest} vs {})",
                file.path, file.size, file.blake3
            ),
        })
    }
}

//! Commit, download and delete of checkpoint directories under `<root>/<uuid>/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{
    GetOptions, GetRange, GetResult, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart,
};
use tokio::io::AsyncReadExt;

use super::local_copy;
use super::{
    LocalFile, MANIFEST_NAME, Manifest, ManifestFile, StorageError, build_object_store,
    list_checkpoint_files, write_verified_file,
};
use crate::config::{CheckpointStorageConfig, StorageBackend};

/// Files transferred at once.
const FILE_CONCURRENCY: usize = 4;
/// Files at most this large are sent with a single PUT.
const SINGLE_PUT_LIMIT: u64 = 16 * 1024 * 1024;
/// Part size of multipart uploads.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one file in flight at once.
const PART_CONCURRENCY: usize = 4;
/// Read buffer for hashing and streaming.
const READ_CHUNK: usize = 1024 * 1024;
/// Files larger than this are downloaded as concurrent ranged reads of `PART_SIZE`.
const RANGED_DOWNLOAD_LIMIT: u64 = 64 * 1024 * 1024;

/// Called with the number of bytes just transferred.
pub type Progress<'a> = &'a (dyn Fn(u64) + Send + Sync);

/// What the manifest of a new checkpoint records besides its files.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    /// The checkpoint's uuid.
    pub uuid: String,
    /// Experiment that produced it.
    pub experiment_id: u64,
    /// Trial that produced it.
    pub trial_id: u64,
    /// Allocation that produced it.
    pub allocation_id: String,
    /// Steps completed when it was taken.
    pub step: u64,
    /// The trial's hyperparameters.
    pub hparams: serde_json::Value,
    /// The trial's own metadata.
    pub metadata: serde_json::Value,
}

/// Checkpoint storage of one experiment.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) local_root: Option<PathBuf>,
    backend: &'static str,
    /// Checkpoints are staged locally even on a shared filesystem.
    always_staged: bool,
}

impl CheckpointStore {
    /// Opens the storage a backend config describes.
    pub fn new(backend: &StorageBackend) -> Result<Self, StorageError> {
        let (store, local_root) = build_object_store(backend)?;
        Ok(Self {
            store,
            local_root,
            backend: backend.type_name(),
            always_staged: false,
        })
    }

    /// This store with every checkpoint staged locally and copied in at commit, never written in
    /// place (each part of a distributed trial commits only its own ranks' files).
    pub fn always_staged(mut self) -> Self {
        self.always_staged = true;
        self
    }

    /// The backend's `type` name (`shared_fs`, `s3`, `gcs`, `azure`).
    pub fn backend_name(&self) -> &'static str {
        self.backend
    }

    /// Opens the storage described by a `checkpoint_storage` section in JSON.
    pub fn from_storage_json(json: &str) -> Result<Self, StorageError> {
        let config: CheckpointStorageConfig = serde_json::from_str(json)
            .map_err(|e| StorageError::Config(format!("invalid storage description: {e}")))?;
        Self::new(&config.backend)
    }

    /// Where a trial writes checkpoint `uuid`: in place on a shared filesystem, else under `staging`.
    pub fn write_dir(&self, uuid: &str, staging: &Path) -> PathBuf {
        match &self.local_root {
            Some(root) if !self.always_staged => root.join(uuid),
            _ => staging.join(uuid),
        }
    }

    /// Whether checkpoints are written directly into storage (no upload copy).
    pub fn writes_in_place(&self) -> bool {
        self.local_root.is_some() && !self.always_staged
    }

    /// Uploads (or, in place, hashes) the files of `dir` and writes `metadata.json` last.
    ///
    /// On a local store a staged `dir` is copied straight on disk rather than through
    /// `object_store`, at about the cost of a `cp`.
    pub async fn commit(
        &self,
        request: &CommitRequest,
        dir: &Path,
    ) -> Result<Manifest, StorageError> {
        let files = self.commit_part(&request.uuid, dir).await?;
        let manifest = Manifest {
            uuid: request.uuid.clone(),
            experiment_id: request.experiment_id,
            trial_id: request.trial_id,
            allocation_id: request.allocation_id.clone(),
            step: request.step,
            hparams: request.hparams.clone(),
            metadata: request.metadata.clone(),
            files,
            committed_ms: now_ms(),
        };
        self.write_manifest(&manifest).await?;
        Ok(manifest)
    }

    /// Uploads (or, in place, hashes) the files of `dir` into checkpoint `uuid` like
    /// [`commit`](Self::commit), but writes no `metadata.json`; returns the files, sorted by path.
    pub async fn commit_part(
        &self,
        uuid: &str,
        dir: &Path,
    ) -> Result<Vec<ManifestFile>, StorageError> {
        let list_uuid = uuid.to_string();
        let list_dir = dir.to_path_buf();
        let files =
            tokio::task::spawn_blocking(move || list_checkpoint_files(&list_uuid, &list_dir))
                .await
                .expect("file listing task panicked")?;
        let in_place = self
            .local_root
            .as_ref()
            .is_some_and(|root| dir == root.join(uuid));
        let mut manifest_files: Vec<ManifestFile> = futures::stream::iter(files)
            .map(|file| {
                let uuid = uuid.to_string();
                async move {
                    match &self.local_root {
                        Some(_) if in_place => hash_local_file(file).await,
                        Some(root) => {
                            let checkpoint_dir = root.join(&uuid);
                            local_copy::copy_into_store(&uuid, file, checkpoint_dir).await
                        }
                        None => self.upload_file(&uuid, file).await,
                    }
                }
            })
            // Unordered: a large file in flight must not hold back the files listed after it.
            .buffer_unordered(FILE_CONCURRENCY)
            .try_collect()
            .await?;
        manifest_files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(manifest_files)
    }

    /// Writes `manifest` as its checkpoint's `metadata.json`, the commit marker (written last).
    pub async fn write_manifest(&self, manifest: &Manifest) -> Result<(), StorageError> {
        let body = serde_json::to_vec_pretty(manifest).expect("manifest serializes");
        let location = object_path(&manifest.uuid, MANIFEST_NAME);
        self.store
            .put(&location, PutPayload::from(body))
            .await
            .map_err(|e| StorageError::object(&location, e))?;
        Ok(())
    }

    /// Reads the committed manifest of a checkpoint.
    pub async fn read_manifest(&self, uuid: &str) -> Result<Manifest, StorageError> {
        let location = object_path(uuid, MANIFEST_NAME);
        let result = match self.store.get(&location).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StorageError::NotCommitted(uuid.to_string()));
            }
            Err(e) => return Err(StorageError::object(&location, e)),
        };
        let body = result
            .bytes()
            .await
            .map_err(|e| StorageError::object(&location, e))?;
        let manifest: Manifest =
            serde_json::from_slice(&body).map_err(|e| StorageError::Invalid {
                uuid: uuid.to_string(),
                reason: format!("metadata.json is not valid: {e}"),
            })?;
        if manifest.uuid != uuid {
            return Err(StorageError::Invalid {
                uuid: uuid.to_string(),
                reason: format!("metadata.json names checkpoint {}", manifest.uuid),
            });
        }
        Ok(manifest)
    }

    /// Downloads a committed checkpoint into `target` by its own `metadata.json`, verifying every
    /// size and checksum.
    pub async fn download(&self, uuid: &str, target: &Path) -> Result<Manifest, StorageError> {
        let manifest = self.read_manifest(uuid).await?;
        self.download_recorded(&manifest, target, &|_| {}).await?;
        Ok(manifest)
    }

    /// Downloads the files of `manifest` (the master's record of a checkpoint, not a
    /// `metadata.json` read back from storage) into `target`, verifying every size and checksum
    /// and reporting transferred bytes to `progress`; on a shared filesystem no symbolic link is
    /// followed.
    ///
    /// Memory stays bounded whatever the checkpoint size: at most `FILE_CONCURRENCY` files at once,
    /// each read as a stream (large files as up to `PART_CONCURRENCY` concurrent ranged streams
    /// whose unread bytes HTTP flow control leaves on the server), so only transport buffers and
    /// one chunk per file are held.
    pub async fn download_recorded(
        &self,
        manifest: &Manifest,
        target: &Path,
        progress: Progress<'_>,
    ) -> Result<(), StorageError> {
        let uuid = manifest.uuid.as_str();
        tokio::fs::create_dir_all(target)
            .await
            .map_err(|e| StorageError::io(target, e))?;
        futures::stream::iter(manifest.files.clone())
            .map(|file| async move { self.download_file(uuid, &file, target, progress).await })
            .buffer_unordered(FILE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        let body = serde_json::to_vec_pretty(manifest).expect("manifest serializes");
        let manifest_path = target.join(MANIFEST_NAME);
        tokio::fs::write(&manifest_path, body)
            .await
            .map_err(|e| StorageError::io(&manifest_path, e))?;
        Ok(())
    }

    /// Deletes every object of a checkpoint, manifest first; missing objects count as deleted.
    pub async fn delete(&self, uuid: &str) -> Result<(), StorageError> {
        let manifest = object_path(uuid, MANIFEST_NAME);
        match self.store.delete(&manifest).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(StorageError::object(&manifest, e)),
        }
        let prefix = ObjectPath::from(uuid);
        let objects: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| StorageError::object(&prefix, e))?;
        for object in objects {
            match self.store.delete(&object.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(StorageError::object(&object.location, e)),
            }
        }
        if let Some(root) = &self.local_root {
            let dir = root.join(uuid);
            match tokio::fs::remove_dir_all(&dir).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(&dir, e)),
            }
        }
        Ok(())
    }

    async fn upload_file(&self, uuid: &str, file: LocalFile) -> Result<ManifestFile, StorageError> {
        let location = object_path(uuid, &file.relative);
        let mut reader = tokio::fs::File::open(&file.absolute)
            .await
            .map_err(|e| StorageError::io(&file.absolute, e))?;
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        if file.size <= SINGLE_PUT_LIMIT {
            let mut body = Vec::with_capacity(file.size as usize);
            reader
                .read_to_end(&mut body)
                .await
                .map_err(|e| StorageError::io(&file.absolute, e))?;
            hasher.update(&body);
            size = body.len() as u64;
            self.store
                .put(&location, PutPayload::from(body))
                .await
                .map_err(|e| StorageError::object(&location, e))?;
        } else {
            let upload = self
                .store
                .put_multipart(&location)
                .await
                .map_err(|e| StorageError::object(&location, e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            loop {
                let mut chunk = vec![0u8; PART_SIZE];
                let read = read_full(&mut reader, &mut chunk)
                    .await
                    .map_err(|e| StorageError::io(&file.absolute, e))?;
                if read == 0 {
                    break;
                }
                chunk.truncate(read);
                hasher.update(&chunk);
                size += read as u64;
                if let Err(e) = writer.wait_for_capacity(PART_CONCURRENCY).await {
                    return Err(StorageError::object(&location, e));
                }
                writer.put(Bytes::from(chunk));
            }
            writer
                .finish()
                .await
                .map_err(|e| StorageError::object(&location, e))?;
        }
        Ok(ManifestFile {
            path: file.relative,
            size,
            blake3: hasher.finalize().to_hex().to_string(),
        })
    }

    async fn download_file(
        &self,
        uuid: &str,
        file: &ManifestFile,
        target: &Path,
        progress: Progress<'_>,
    ) -> Result<(), StorageError> {
        if let Some(root) = &self.local_root {
            return local_copy::copy_from_store(uuid, file, root.clone(), target, progress).await;
        }
        let chunks = self.file_chunks(uuid, file).await?;
        write_verified_file(uuid, file, target, chunks, progress).await
    }

    /// The content of one file of a checkpoint, as a stream of chunks (ranged reads when large).
    pub async fn file_chunks(
        &self,
        uuid: &str,
        file: &ManifestFile,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        let location = object_path(uuid, &file.path);
        let (uuid, path) = (uuid.to_string(), file.path.clone());
        let missing = {
            let location = location.clone();
            move |e: object_store::Error| match e {
                object_store::Error::NotFound { .. } => StorageError::Invalid {
                    uuid: uuid.clone(),
                    reason: format!("file {path} listed in metadata.json is missing from storage"),
                },
                e => StorageError::object(&location, e),
            }
        };
        if file.size > RANGED_DOWNLOAD_LIMIT {
            // At most PART_CONCURRENCY large ranges, requested together and read in order so the
            // checksum follows the bytes; HTTP flow control holds back the ranges not yet read.
            let range_size = file
                .size
                .div_ceil(PART_CONCURRENCY as u64)
                .next_multiple_of(PART_SIZE as u64);
            let ranges: Vec<std::ops::Range<u64>> = (0..file.size)
                .step_by(range_size as usize)
                .map(|start| start..(start + range_size).min(file.size))
                .collect();
            let store = self.store.clone();
            Ok(futures::stream::iter(ranges)
                .map(move |range| {
                    let (store, location) = (store.clone(), location.clone());
                    async move {
                        let options = GetOptions {
                            range: Some(GetRange::Bounded(range)),
                            ..GetOptions::default()
                        };
                        store
                            .get_opts(&location, options)
                            .await
                            .map(GetResult::into_stream)
                    }
                })
                .buffered(PART_CONCURRENCY)
                .try_flatten()
                .map_err(missing)
                .boxed())
        } else {
            let result = self.store.get(&location).await.map_err(missing.clone())?;
            Ok(result.into_stream().map_err(missing).boxed())
        }
    }
}

/// The object path of a file of checkpoint `uuid`.
fn object_path(uuid: &str, relative: &str) -> ObjectPath {
    ObjectPath::from(format!("{uuid}/{relative}"))
}

async fn hash_local_file(file: LocalFile) -> Result<ManifestFile, StorageError> {
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut reader =
            std::fs::File::open(&file.absolute).map_err(|e| StorageError::io(&file.absolute, e))?;
        let mut hasher = blake3::Hasher::new();
        let mut buffer = vec![0u8; READ_CHUNK];
        let mut size = 0u64;
        loop {
            let read = reader
                .read(&mut buffer)
                .map_err(|e| StorageError::io(&file.absolute, e))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            size += read as u64;
        }
        Ok(ManifestFile {
            path: file.relative,
            size,
            blake3: hasher.finalize().to_hex().to_string(),
        })
    })
    .await
    .expect("hashing task panicked")
}

async fn read_full(reader: &mut tokio::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let read = reader.read(&mut buffer[filled..]).await?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    Ok(filled)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;

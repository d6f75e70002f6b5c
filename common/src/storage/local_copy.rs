//! Committing a staged directory to a local (`shared_fs`) store by copying its files on disk.
//!
//! A plain `object_store` put into a `LocalFileSystem` costs two to three times a `cp`; copying
//! directly, hashing each chunk on its way through, costs about one `cp`. Each file is written to
//! `<root>/<uuid>/<relative>.partial` and renamed into place once complete, so a file never has its
//! final name before all of its bytes are there.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use super::{LocalFile, ManifestFile, StorageError, safe_relative_path};

/// Read and write size of the copy: one buffer of this size per file being copied.
pub(super) const COPY_CHUNK: usize = 8 * 1024 * 1024;

/// Copies `file` into `checkpoint_dir` (`<root>/<uuid>`) at its relative path, hashing it with
/// BLAKE3 on the way, and returns its manifest entry.
pub(super) async fn copy_into_store(
    uuid: &str,
    file: LocalFile,
    checkpoint_dir: PathBuf,
) -> Result<ManifestFile, StorageError> {
    let uuid = uuid.to_string();
    tokio::task::spawn_blocking(move || copy_file(&uuid, &file, &checkpoint_dir))
        .await
        .expect("local copy task panicked")
}

fn copy_file(
    uuid: &str,
    file: &LocalFile,
    checkpoint_dir: &Path,
) -> Result<ManifestFile, StorageError> {
    let destination = checkpoint_dir.join(safe_relative_path(uuid, &file.relative)?);
    if let Some(parent) = destination.parent() {
        std::fs::create_dir_all(parent).map_err(|e| StorageError::io(parent, e))?;
    }
    let mut reader = File::open(&file.absolute).map_err(|e| StorageError::io(&file.absolute, e))?;
    if same_file(&file.absolute, &destination) {
        // The source already is the stored file (reached through another path): only hash it.
        let (size, blake3) = copy_hashing(&mut reader, &file.absolute, None)?;
        return Ok(entry(file, size, blake3));
    }
    let name = destination
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let partial = destination.with_file_name(format!("{name}.partial"));
    let mut writer = File::create(&partial).map_err(|e| StorageError::io(&partial, e))?;
    let copied = copy_hashing(&mut reader, &file.absolute, Some((&mut writer, &partial)));
    drop(writer);
    let (size, blake3) = match copied {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, &destination).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        StorageError::io(&destination, e)
    })?;
    Ok(entry(file, size, blake3))
}

/// Reads `reader` to its end in `COPY_CHUNK` pieces, hashing each and writing it to `writer` when
/// given; returns the size read and the BLAKE3 hash in hex.
fn copy_hashing(
    reader: &mut File,
    source: &Path,
    mut writer: Option<(&mut File, &Path)>,
) -> Result<(u64, String), StorageError> {
    let mut buffer = vec![0u8; COPY_CHUNK];
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    loop {
        let read = read_full(reader, &mut buffer).map_err(|e| StorageError::io(source, e))?;
        if read == 0 {
            break;
        }
        let chunk = &buffer[..read];
        hasher.update(chunk);
        if let Some((out, path)) = writer.as_mut() {
            out.write_all(chunk)
                .map_err(|e| StorageError::io(path, e))?;
        }
        size += read as u64;
    }
    Ok((size, hasher.finalize().to_hex().to_string()))
}

/// Fills `buffer` as far as the file allows; 0 only at its end.
fn read_full(reader: &mut File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Whether both paths name one existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn entry(file: &LocalFile, size: u64, blake3: String) -> ManifestFile {
    ManifestFile {
        path: file.relative.clone(),
        size,
        blake3,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CheckpointStore, CommitRequest, MANIFEST_NAME};
    use super::*;
    use crate::config::StorageBackend;

    fn request(uuid: &str) -> CommitRequest {
        CommitRequest {
            uuid: uuid.into(),
            experiment_id: 1,
            trial_id: 2,
            allocation_id: "a".into(),
            step: 5,
            hparams: serde_json::json!({"lr": 0.1}),
            metadata: serde_json::json!({"framework": "test"}),
        }
    }

    #[tokio::test]
    async fn staged_shared_fs_commit_copies_then_downloads_nested_files() {
        let root = tempfile::tempdir().unwrap();
        let staging = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(&StorageBackend::SharedFs {
            host_path: root.path().display().to_string(),
            storage_path: Some("ckpts".into()),
        })
        .unwrap();
        let dir = staging.path().join("s1");
        std::fs::create_dir_all(dir.join("model/layers")).unwrap();
        std::fs::create_dir_all(dir.join("empty_dir_is_skipped")).unwrap();
        // Larger than one copy chunk, and not a multiple of it.
        let big: Vec<u8> = (0..(2 * COPY_CHUNK + 4099))
            .map(|i| (i % 253) as u8)
            .collect();
        std::fs::write(dir.join("model/layers/weights.bin"), &big).unwrap();
        std::fs::write(dir.join("model/config.json"), b"{\"layers\": 2}").unwrap();
        std::fs::write(dir.join("empty.txt"), b"").unwrap();

        let manifest = store.commit(&request("s1"), &dir).await.unwrap();
        let stored = root.path().join("ckpts/s1");
        let paths: Vec<_> = manifest.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["empty.txt", "model/config.json", "model/layers/weights.bin"]
        );
        let weights = &manifest.files[2];
        assert_eq!(weights.size, big.len() as u64);
        assert_eq!(weights.blake3, blake3::hash(&big).to_hex().to_string());
        assert_eq!(
            std::fs::read(stored.join("model/layers/weights.bin")).unwrap(),
            big
        );
        assert!(stored.join(MANIFEST_NAME).is_file());
        let leftovers: Vec<_> = walk(&stored)
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        // The staged copy is left alone.
        assert_eq!(
            std::fs::read(dir.join("model/layers/weights.bin")).unwrap(),
            big
        );

        let out = tempfile::tempdir().unwrap();
        let downloaded = store.download("s1", out.path()).await.unwrap();
        assert_eq!(downloaded, manifest);
        assert_eq!(
            std::fs::read(out.path().join("model/layers/weights.bin")).unwrap(),
            big
        );
        assert_eq!(
            std::fs::read(out.path().join("model/config.json")).unwrap(),
            b"{\"layers\": 2}"
        );
        assert_eq!(std::fs::read(out.path().join("empty.txt")).unwrap(), b"");
    }

    #[tokio::test]
    async fn copying_a_file_onto_itself_only_hashes_it() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("u");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("w.bin"), b"abc").unwrap();
        let file = LocalFile {
            relative: "w.bin".into(),
            absolute: root.path().join("./u/w.bin"),
            size: 3,
        };
        let entry = copy_into_store("u", file, dir.clone()).await.unwrap();
        assert_eq!(entry.size, 3);
        assert_eq!(entry.blake3, blake3::hash(b"abc").to_hex().to_string());
        assert_eq!(std::fs::read(dir.join("w.bin")).unwrap(), b"abc");
        assert!(!dir.join("w.bin.partial").exists());
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(walk(&path));
            } else {
                found.push(path);
            }
        }
        found
    }
}

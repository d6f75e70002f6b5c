//! Checkpoint files to and from a local (`shared_fs`) store, copied directly on disk.
//!
//! A plain `object_store` put into a `LocalFileSystem` costs two to three times a `cp`; copying
//! directly costs about one `cp`. The bytes move inside the kernel (`copy_file_range` through
//! `std::io::copy`, which falls back to plain reads and writes where that is not possible), in
//! `COPY_CHUNK` steps, while a second thread reads each copied range back from the new file (from
//! the page cache) and hashes it with BLAKE3: the hash covers exactly what was written, and hashing
//! overlaps the copy instead of adding to it.
//!
//! Both directions write `<name>.partial` and rename it into place once complete (and, when
//! downloading, once its size and hash match the manifest), so a file never has its final name
//! before all of its bytes are there. Files keep their names on disk as the trial wrote them,
//! the same as checkpoints written in place.
//!
//! Memory: one `HASH_CHUNK` buffer per file being copied; the copy itself uses none.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use super::verified_read::open_no_follow;
use super::verified_write::check_matches;
use super::{LocalFile, ManifestFile, Progress, StorageError, safe_relative_path};

/// Bytes copied per `copy_file_range` step.
pub(super) const COPY_CHUNK: u64 = 8 * 1024 * 1024;
/// Read buffer of the hashing side: small enough to stay in the CPU cache between read and hash.
const HASH_CHUNK: usize = 256 * 1024;
/// Copied steps the hashing side may lag behind before the copy waits for it.
const HASH_LAG: usize = 8;

/// Copies `file` into `checkpoint_dir` (`<root>/<uuid>`) at its relative path, hashing what was
/// written with BLAKE3, and returns its manifest entry.
pub(super) async fn copy_into_store(
    uuid: &str,
    file: LocalFile,
    checkpoint_dir: PathBuf,
) -> Result<ManifestFile, StorageError> {
    let uuid = uuid.to_string();
    tokio::task::spawn_blocking(move || store_file(&uuid, &file, &checkpoint_dir))
        .await
        .expect("local copy task panicked")
}

/// Copies one file of a committed checkpoint from `<root>/<uuid>` into `target`, following no
/// symbolic link below `root`, and giving it its final name only once its size and BLAKE3 match
/// the manifest.
pub(super) async fn copy_from_store(
    uuid: &str,
    file: &ManifestFile,
    root: PathBuf,
    target: &Path,
    progress: Progress<'_>,
) -> Result<(), StorageError> {
    let (uuid, file, target) = (uuid.to_string(), file.clone(), target.to_path_buf());
    let (copied, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let copy = tokio::task::spawn_blocking(move || {
        fetch_file(&uuid, &file, &root, &target, &|bytes| {
            let _ = copied.send(bytes);
        })
    });
    while let Some(bytes) = reports.recv().await {
        progress(bytes);
    }
    copy.await.expect("local copy task panicked")
}

fn store_file(
    uuid: &str,
    file: &LocalFile,
    checkpoint_dir: &Path,
) -> Result<ManifestFile, StorageError> {
    safe_relative_path(uuid, uuid)?;
    let destination = checkpoint_dir.join(safe_relative_path(uuid, &file.relative)?);
    let mut reader = File::open(&file.absolute).map_err(|e| StorageError::io(&file.absolute, e))?;
    if same_file(&file.absolute, &destination) {
        // The source already is the stored file (reached through another path): only hash it.
        let (size, blake3) = hash_reader(&mut reader, &file.absolute)?;
        return Ok(entry(file, size, blake3));
    }
    let (size, blake3) = copy_then_rename(
        &mut reader,
        &file.absolute,
        &destination,
        &|_| {},
        |_, _| Ok(()),
    )?;
    Ok(entry(file, size, blake3))
}

fn fetch_file(
    uuid: &str,
    file: &ManifestFile,
    root: &Path,
    target: &Path,
    on_copied: &dyn Fn(u64),
) -> Result<(), StorageError> {
    let relative = safe_relative_path(uuid, &file.path)?;
    let mut reader = open_no_follow(root, uuid, &file.path)?;
    copy_then_rename(
        &mut reader,
        &root.join(uuid).join(&relative),
        &target.join(&relative),
        on_copied,
        |size, digest| check_matches(uuid, file, size, digest),
    )
    .map(|_| ())
}

/// Copies `reader` into `<destination>.partial` (creating parent directories), then renames it to
/// `destination` if `accept` agrees with its size and hash; any failure removes the partial file.
fn copy_then_rename(
    reader: &mut File,
    source: &Path,
    destination: &Path,
    on_copied: &dyn Fn(u64),
    accept: impl FnOnce(u64, &str) -> Result<(), StorageError>,
) -> Result<(u64, String), StorageError> {
    if let Some(parent) = destination.parent() {
        std::fs::create_dir_all(parent).map_err(|e| StorageError::io(parent, e))?;
    }
    let name = destination
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let partial = destination.with_file_name(format!("{name}.partial"));
    let writer = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&partial)
        .map_err(|e| StorageError::io(&partial, e))?;
    let copied = copy_hashing(reader, source, &writer, &partial, on_copied)
        .and_then(|(size, digest)| accept(size, &digest).map(|()| (size, digest)));
    drop(writer);
    let renamed = copied.and_then(|done| {
        std::fs::rename(&partial, destination)
            .map(|()| done)
            .map_err(|e| StorageError::io(destination, e))
    });
    if renamed.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    renamed
}

/// Copies `reader` to its end into `writer` (a new, empty file) while another thread hashes the
/// copied ranges as read back from `writer`; returns the size and the BLAKE3 hash in hex.
fn copy_hashing(
    reader: &mut File,
    source: &Path,
    writer: &File,
    destination: &Path,
    on_copied: &dyn Fn(u64),
) -> Result<(u64, String), StorageError> {
    // How far the copy has got; the hashing side follows.
    let (copied_to, progress) = mpsc::sync_channel::<u64>(HASH_LAG);
    std::thread::scope(|scope| {
        let hashing = scope.spawn(move || hash_written(writer, destination, progress));
        let mut size = 0u64;
        let copied = loop {
            let mut step = Read::take(&mut *reader, COPY_CHUNK);
            let mut out = writer;
            match std::io::copy(&mut step, &mut out) {
                Ok(0) => break Ok(size),
                Ok(n) => {
                    size += n;
                    on_copied(n);
                    if copied_to.send(size).is_err() {
                        // The hashing side failed; its error is reported below.
                        break Ok(size);
                    }
                }
                Err(e) => break Err(StorageError::io(source, e)),
            }
        };
        drop(copied_to);
        let hashed = hashing.join().expect("hashing thread panicked");
        let size = copied?;
        let (hashed_size, blake3) = hashed?;
        if hashed_size != size {
            return Err(StorageError::io(
                destination,
                std::io::Error::other(format!("{hashed_size} bytes hashed of {size} copied")),
            ));
        }
        Ok((size, blake3))
    })
}

/// Hashes `file` from its start up to each offset received, until the sender is gone.
fn hash_written(
    file: &File,
    path: &Path,
    copied_to: mpsc::Receiver<u64>,
) -> Result<(u64, String), StorageError> {
    let mut buffer = vec![0u8; HASH_CHUNK];
    let mut hasher = blake3::Hasher::new();
    let mut hashed = 0u64;
    for end in copied_to {
        while hashed < end {
            let len = (end - hashed).min(HASH_CHUNK as u64) as usize;
            let chunk = &mut buffer[..len];
            file.read_exact_at(chunk, hashed)
                .map_err(|e| StorageError::io(path, e))?;
            hasher.update(chunk);
            hashed += len as u64;
        }
    }
    Ok((hashed, hasher.finalize().to_hex().to_string()))
}

/// Reads `reader` to its end, hashing it; returns the size and the BLAKE3 hash in hex.
fn hash_reader(reader: &mut File, path: &Path) -> Result<(u64, String), StorageError> {
    let mut buffer = vec![0u8; HASH_CHUNK];
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(StorageError::io(path, e)),
        };
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((size, hasher.finalize().to_hex().to_string()))
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
    use super::super::test_support::request;
    use super::super::{CheckpointStore, MANIFEST_NAME};
    use super::*;
    use crate::config::StorageBackend;

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
        let big: Vec<u8> = (0..(2 * COPY_CHUNK as usize + 4099))
            .map(|i| (i % 253) as u8)
            .collect();
        std::fs::write(dir.join("model/layers/weights.bin"), &big).unwrap();
        std::fs::write(dir.join("model/config.json"), b"{\"layers\": 2}").unwrap();
        std::fs::write(dir.join("empty.txt"), b"").unwrap();
        // Characters `object_store` would percent-encode in an object path.
        std::fs::write(dir.join("model/step~1[0].pt"), b"opt").unwrap();

        let manifest = store.commit(&request("s1"), &dir).await.unwrap();
        let stored = root.path().join("ckpts/s1");
        let paths: Vec<_> = manifest.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "empty.txt",
                "model/config.json",
                "model/layers/weights.bin",
                "model/step~1[0].pt"
            ]
        );
        let weights = &manifest.files[2];
        assert_eq!(weights.size, big.len() as u64);
        assert_eq!(weights.blake3, blake3::hash(&big).to_hex().to_string());
        assert_eq!(
            std::fs::read(stored.join("model/layers/weights.bin")).unwrap(),
            big
        );
        assert!(stored.join(MANIFEST_NAME).is_file());
        assert_eq!(
            std::fs::read(stored.join("model/step~1[0].pt")).unwrap(),
            b"opt"
        );
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
        let reported = std::sync::atomic::AtomicU64::new(0);
        let recorded = store.read_manifest("s1").await.unwrap();
        assert_eq!(recorded, manifest);
        store
            .download_recorded(&recorded, out.path(), &|bytes| {
                reported.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
            })
            .await
            .unwrap();
        assert_eq!(reported.into_inner(), manifest.size_bytes());
        assert!(out.path().join(MANIFEST_NAME).is_file());
        assert_eq!(
            std::fs::read(out.path().join("model/layers/weights.bin")).unwrap(),
            big
        );
        assert_eq!(
            std::fs::read(out.path().join("model/config.json")).unwrap(),
            b"{\"layers\": 2}"
        );
        assert_eq!(std::fs::read(out.path().join("empty.txt")).unwrap(), b"");
        assert_eq!(
            std::fs::read(out.path().join("model/step~1[0].pt")).unwrap(),
            b"opt"
        );
        let leftovers: Vec<_> = walk(out.path())
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[tokio::test]
    async fn a_uuid_that_leaves_the_root_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let staging = tempfile::tempdir().unwrap();
        std::fs::write(staging.path().join("w.bin"), b"abc").unwrap();
        let file = LocalFile {
            relative: "w.bin".into(),
            absolute: staging.path().join("w.bin"),
            size: 3,
        };
        let store_dir = root.path().join("store");
        let err = copy_into_store("../escaped", file, store_dir.join("../escaped"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("escapes"), "{err}");
        assert!(!root.path().join("escaped").exists());
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

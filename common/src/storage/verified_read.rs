//! Reading a checkpoint's files for someone else (the master streaming a download): only files
//! of the record, opened on a shared filesystem without following any symbolic link, and checked
//! against their recorded size and BLAKE3 while they stream.

use std::os::fd::OwnedFd;
use std::path::{Component, Path};

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::Mode;
use tokio::io::AsyncReadExt;

use super::verified_write::check_matches;
use super::{CheckpointStore, ManifestFile, StorageError, safe_relative_path};

/// Bytes read from a local file at a time.
const CHUNK: usize = 1024 * 1024;

impl CheckpointStore {
    /// The content of a recorded file, ending with an error if it is not exactly what the record
    /// says (size and BLAKE3); on a shared filesystem no symbolic link is ever followed.
    pub async fn verified_chunks(
        &self,
        uuid: &str,
        file: &ManifestFile,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        safe_relative_path(uuid, &file.path)?;
        let chunks = match &self.local_root {
            Some(root) => {
                let (root, id, path) = (root.clone(), uuid.to_string(), file.path.clone());
                let opened = tokio::task::spawn_blocking(move || open_no_follow(&root, &id, &path))
                    .await
                    .expect("open task panicked")?;
                local_chunks(tokio::fs::File::from_std(opened))
            }
            None => self.file_chunks(uuid, file).await?,
        };
        Ok(verify(uuid.to_string(), file.clone(), chunks))
    }
}

/// Opens `root/uuid/relative`, refusing a symbolic link anywhere below `root` and anything that
/// is not a regular file.
pub fn open_no_follow(
    root: &Path,
    uuid: &str,
    relative: &str,
) -> Result<std::fs::File, StorageError> {
    let refuse = |reason: String| StorageError::Invalid {
        uuid: uuid.to_string(),
        reason,
    };
    let one_name = matches!(
        Path::new(uuid).components().collect::<Vec<_>>().as_slice(),
        [Component::Normal(_)]
    );
    if !one_name || uuid.contains(['/', '\\']) {
        return Err(refuse(format!("{uuid:?} is not a checkpoint uuid")));
    }
    let clean = safe_relative_path(uuid, relative)?;
    let full = Path::new(uuid).join(&clean);
    let names: Vec<&std::ffi::OsStr> = full
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    let directory = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut fd: OwnedFd = open(root, directory, Mode::empty())
        .map_err(|e| StorageError::io(root, std::io::Error::from(e)))?;
    let (last, parents) = names
        .split_last()
        .ok_or_else(|| refuse("empty path".into()))?;
    for name in parents {
        fd = openat(&fd, *name, directory | OFlag::O_NOFOLLOW, Mode::empty())
            .map_err(|e| refuse(open_error(relative, e)))?;
    }
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let file = std::fs::File::from(
        openat(&fd, *last, flags, Mode::empty()).map_err(|e| refuse(open_error(relative, e)))?,
    );
    let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    if !regular {
        return Err(refuse(format!("{relative} is not a regular file")));
    }
    Ok(file)
}

fn open_error(relative: &str, errno: Errno) -> String {
    match errno {
        Errno::ELOOP | Errno::ENOTDIR => {
            format!("{relative} goes through a symbolic link: refused")
        }
        Errno::ENOENT => format!("file {relative} listed in the record is missing from storage"),
        other => format!("cannot open {relative}: {other}"),
    }
}

fn local_chunks(file: tokio::fs::File) -> BoxStream<'static, Result<Bytes, StorageError>> {
    futures::stream::try_unfold(file, |mut file| async move {
        let mut buffer = vec![0u8; CHUNK];
        let read = file
            .read(&mut buffer)
            .await
            .map_err(|e| StorageError::io(Path::new("checkpoint file"), e))?;
        if read == 0 {
            return Ok(None);
        }
        buffer.truncate(read);
        Ok(Some((Bytes::from(buffer), file)))
    })
    .boxed()
}

/// Passes `chunks` through while hashing; ends with an error when the content is longer than
/// recorded or, at the end, differs from the record.
fn verify(
    uuid: String,
    file: ManifestFile,
    chunks: BoxStream<'static, Result<Bytes, StorageError>>,
) -> BoxStream<'static, Result<Bytes, StorageError>> {
    struct State {
        chunks: BoxStream<'static, Result<Bytes, StorageError>>,
        hasher: blake3::Hasher,
        size: u64,
        done: bool,
    }
    let state = State {
        chunks,
        hasher: blake3::Hasher::new(),
        size: 0,
        done: false,
    };
    futures::stream::unfold(state, move |mut state| {
        let (uuid, file) = (uuid.clone(), file.clone());
        async move {
            if state.done {
                return None;
            }
            match state.chunks.next().await {
                Some(Ok(chunk)) => {
                    state.size += chunk.len() as u64;
                    state.hasher.update(&chunk);
                    if state.size > file.size {
                        state.done = true;
                        let digest = state.hasher.finalize().to_hex().to_string();
                        let error = check_matches(&uuid, &file, state.size, &digest).unwrap_err();
                        return Some((Err(error), state));
                    }
                    Some((Ok(chunk), state))
                }
                Some(Err(e)) => {
                    state.done = true;
                    Some((Err(e), state))
                }
                None => {
                    state.done = true;
                    let digest = state.hasher.finalize().to_hex().to_string();
                    check_matches(&uuid, &file, state.size, &digest)
                        .err()
                        .map(|e| (Err(e), state))
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_anywhere_below_the_root_and_special_files_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let uuid = "0e5f7c1e-6a3b-4d7e-9b1a-2f4c8d9e0a11";
        let dir = root.path().join(uuid);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/weights.bin"), b"w").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("shadow"), b"secret").unwrap();
        std::os::unix::fs::symlink(outside.path().join("shadow"), dir.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.join("linked-dir")).unwrap();
        assert!(open_no_follow(root.path(), uuid, "sub/weights.bin").is_ok());
        for (path, expected) in [
            ("link", "symbolic link"),
            ("linked-dir/shadow", "symbolic link"),
            ("sub", "not a regular file"),
            ("../escape", "escapes the checkpoint directory"),
            ("missing", "missing from storage"),
        ] {
            let error = open_no_follow(root.path(), uuid, path)
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{path}: {error}");
        }
        for bad_uuid in ["..", "../etc", "x/y"] {
            let error = open_no_follow(root.path(), bad_uuid, "passwd")
                .unwrap_err()
                .to_string();
            assert!(error.contains("is not a checkpoint uuid"), "{error}");
        }
        nix::unistd::mkfifo(&dir.join("fifo"), Mode::S_IRWXU).unwrap();
        let error = open_no_follow(root.path(), uuid, "fifo")
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a regular file"), "{error}");
    }
}

//! Walking and checking a local checkpoint directory.

use std::path::{Component, Path, PathBuf};

use super::{MANIFEST_NAME, StorageError};

/// A regular file found in a local checkpoint directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Path relative to the directory, `/`-separated.
    pub relative: String,
    /// Absolute path on disk.
    pub absolute: PathBuf,
    /// Size in bytes.
    pub size: u64,
}

/// Lists the regular files under `dir`, refusing symlinks, hard links, special files and
/// `metadata.json`. Empty directories are not part of a checkpoint.
pub fn list_checkpoint_files(uuid: &str, dir: &Path) -> Result<Vec<LocalFile>, StorageError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|e| StorageError::io(&current, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(&current, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| StorageError::io(&path, e))?;
            let relative = relative_name(dir, &path);
            if kind.is_symlink() {
                return Err(invalid(
                    uuid,
                    format!("{relative} is a symlink; write regular files"),
                ));
            } else if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                if relative == MANIFEST_NAME {
                    return Err(invalid(
                        uuid,
                        "metadata.json is written by Baton; pass your metadata to checkpoint(..., metadata=...)".into(),
                    ));
                }
                let metadata = entry.metadata().map_err(|e| StorageError::io(&path, e))?;
                let links = std::os::unix::fs::MetadataExt::nlink(&metadata);
                if links > 1 {
                    return Err(invalid(
                        uuid,
                        format!(
                            "{relative} is a hard link ({links} names for one file); write a copy"
                        ),
                    ));
                }
                let size = metadata.len();
                files.push(LocalFile {
                    relative,
                    absolute: path,
                    size,
                });
            } else {
                return Err(invalid(uuid, format!("{relative} is not a regular file")));
            }
        }
    }
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(files)
}

/// Checks that a manifest path stays inside its directory and returns it as a relative path.
pub fn safe_relative_path(uuid: &str, path: &str) -> Result<PathBuf, StorageError> {
    let candidate = Path::new(path);
    let mut clean = PathBuf::new();
    for component in candidate.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            _ => {
                return Err(invalid(
                    uuid,
                    format!("file path {path:?} escapes the checkpoint directory"),
                ));
            }
        }
    }
    if clean.as_os_str().is_empty() || path.contains('\\') {
        return Err(invalid(
            uuid,
            format!("file path {path:?} is not a plain relative path"),
        ));
    }
    Ok(clean)
}

fn relative_name(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn invalid(uuid: &str, reason: String) -> StorageError {
    StorageError::Invalid {
        uuid: uuid.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_nested_files_sorted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("b.bin"), b"bb").unwrap();
        std::fs::write(dir.path().join("sub/a.json"), b"a").unwrap();
        let files = list_checkpoint_files("u", dir.path()).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| (f.relative.as_str(), f.size))
            .collect();
        assert_eq!(names, vec![("b.bin", 2), ("sub/a.json", 1)]);
    }

    #[test]
    fn refuses_symlinks_and_own_manifest() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        let err = list_checkpoint_files("u", dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("link is a symlink"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST_NAME), b"{}").unwrap();
        let err = list_checkpoint_files("u", dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("metadata.json is written by Baton"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("weights"), b"w").unwrap();
        std::fs::hard_link(dir.path().join("weights"), dir.path().join("alias")).unwrap();
        let err = list_checkpoint_files("u", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is a hard link (2 names for one file)"),
            "{err}"
        );
    }

    #[test]
    fn rejects_escaping_paths() {
        for bad in ["../x", "/etc/passwd", "a/../../b", "", "./", "a\\b"] {
            assert!(safe_relative_path("u", bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            safe_relative_path("u", "a/b.bin").unwrap(),
            PathBuf::from("a/b.bin")
        );
    }
}

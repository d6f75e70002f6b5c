//! Packing an experiment's context directory into a `proto::Context`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use baton_common::proto::{Context, ContextFile};

/// Largest total size of a context directory's files.
pub const CONTEXT_LIMIT_BYTES: u64 = 32 << 20;

/// Directory names never sent.
const SKIPPED_DIRS: [&str; 2] = ["__pycache__", ".git"];

/// A packed context and the warnings met while walking it.
#[derive(Debug)]
pub struct Packed {
    /// The files, sorted by path.
    pub context: Context,
    /// Entries left out, with the reason.
    pub warnings: Vec<String>,
}

/// A file found by the walk, read only once the total size is known to fit.
struct Found {
    relative: String,
    absolute: PathBuf,
    size: u64,
    mode: u32,
}

/// Walks `dir` recursively, skipping `__pycache__`, `.git` and `*.pyc`, following symlinks only
/// while they stay inside `dir`, and fails when the files add up to more than `limit` bytes.
pub fn pack(dir: &Path, limit: u64) -> anyhow::Result<Packed> {
    let meta = fs::metadata(dir).with_context(|| format!("context directory {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("context directory {} is not a directory", dir.display());
    }
    let root =
        fs::canonicalize(dir).with_context(|| format!("context directory {}", dir.display()))?;
    let mut walk = Walk {
        root: root.clone(),
        found: Vec::new(),
        warnings: Vec::new(),
        ancestors: Vec::new(),
    };
    walk.dir(&root, "")?;
    let total: u64 = walk.found.iter().map(|f| f.size).sum();
    if total > limit {
        bail!(
            "context directory {} is {total} bytes; the limit is {limit} bytes ({} MiB): \
             move data out of it and load it from the trial",
            dir.display(),
            limit >> 20
        );
    }
    walk.found.sort_by(|a, b| a.relative.cmp(&b.relative));
    let files = walk
        .found
        .into_iter()
        .map(|f| {
            let content = fs::read(&f.absolute)
                .with_context(|| format!("reading {}", f.absolute.display()))?;
            Ok(ContextFile {
                path: f.relative,
                content,
                mode: f.mode,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Packed {
        context: Context { files },
        warnings: walk.warnings,
    })
}

/// State of one walk over a context directory.
struct Walk {
    root: PathBuf,
    found: Vec<Found>,
    warnings: Vec<String>,
    /// Canonical directories being walked, outermost first, so symlink loops end.
    ancestors: Vec<PathBuf>,
}

impl Walk {
    /// Walks the directory `path`, known as `prefix` inside the context.
    fn dir(&mut self, path: &Path, prefix: &str) -> anyhow::Result<()> {
        let canonical =
            fs::canonicalize(path).with_context(|| format!("reading {}", path.display()))?;
        if self.ancestors.contains(&canonical) {
            self.warnings
                .push(format!("skipping {prefix}: symlink loop"));
            return Ok(());
        }
        self.ancestors.push(canonical);
        let walked = self.entries(path, prefix);
        self.ancestors.pop();
        walked
    }

    /// Adds every entry of the directory `path`.
    fn entries(&mut self, path: &Path, prefix: &str) -> anyhow::Result<()> {
        let entries = fs::read_dir(path).with_context(|| format!("reading {}", path.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", path.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                self.warnings.push(format!(
                    "skipping {}: the name is not UTF-8",
                    entry.path().display()
                ));
                continue;
            };
            let relative = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}/{name}")
            };
            self.entry(&entry.path(), name, relative)?;
        }
        Ok(())
    }

    /// Adds one directory entry, following it when it is a symlink that stays inside the root.
    fn entry(&mut self, path: &Path, name: &str, relative: String) -> anyhow::Result<()> {
        let link =
            fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
        if link.file_type().is_symlink() {
            match fs::canonicalize(path) {
                Ok(target) if target.starts_with(&self.root) => {}
                Ok(target) => {
                    self.warnings.push(format!(
                        "skipping {relative}: symlink points outside the context directory ({})",
                        target.display()
                    ));
                    return Ok(());
                }
                Err(e) => {
                    self.warnings
                        .push(format!("skipping {relative}: broken symlink ({e})"));
                    return Ok(());
                }
            }
        }
        let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        if meta.is_dir() {
            if SKIPPED_DIRS.contains(&name) {
                return Ok(());
            }
            return self.dir(path, &relative);
        }
        if name == ".git" || name.ends_with(".pyc") {
            return Ok(());
        }
        if !meta.is_file() {
            self.warnings
                .push(format!("skipping {relative}: not a regular file"));
            return Ok(());
        }
        self.found.push(Found {
            relative,
            absolute: path.to_path_buf(),
            size: meta.len(),
            mode: mode(&meta),
        });
        Ok(())
    }
}

/// Unix permission bits of a file.
#[cfg(unix)]
fn mode(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

/// Unix permission bits of a file (read-only or not, elsewhere).
#[cfg(not(unix))]
fn mode(meta: &fs::Metadata) -> u32 {
    if meta.permissions().readonly() {
        0o444
    } else {
        0o644
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn write(root: &Path, relative: &str, content: &[u8]) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn paths(packed: &Packed) -> Vec<&str> {
        packed
            .context
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect()
    }

    #[test]
    fn relative_slash_paths_and_skips() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "train.py", b"print(1)");
        write(dir.path(), "pkg/model/net.py", b"x = 1");
        write(dir.path(), "pkg/model/net.pyc", b"junk");
        write(dir.path(), "pkg/__pycache__/net.cpython-311.pyc", b"junk");
        write(dir.path(), ".git/HEAD", b"ref");
        write(dir.path(), "data/.gitkeep", b"");
        let script = dir.path().join("run.sh");
        write(dir.path(), "run.sh", b"#!/bin/sh");
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();

        let packed = pack(dir.path(), CONTEXT_LIMIT_BYTES).unwrap();
        assert_eq!(
            paths(&packed),
            ["data/.gitkeep", "pkg/model/net.py", "run.sh", "train.py"]
        );
        let run = &packed.context.files[2];
        assert_eq!(run.mode, 0o755);
        assert_eq!(packed.context.files[3].content, b"print(1)");
        assert!(packed.warnings.is_empty(), "{:?}", packed.warnings);
    }

    #[test]
    fn size_limit_error_names_dir_and_size() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.bin", &[0u8; 600]);
        write(dir.path(), "sub/b.bin", &[0u8; 500]);
        let err = pack(dir.path(), 1024).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "context directory {} is 1100 bytes; the limit is 1024 bytes (0 MiB): \
                 move data out of it and load it from the trial",
                dir.path().display()
            )
        );
        assert!(pack(dir.path(), 1100).is_ok());
    }

    #[test]
    fn real_limit_message() {
        let dir = tempfile::tempdir().unwrap();
        let file = fs::File::create(dir.path().join("big.bin")).unwrap();
        file.set_len(CONTEXT_LIMIT_BYTES + 1).unwrap();
        let err = pack(dir.path(), CONTEXT_LIMIT_BYTES)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is 33554433 bytes; the limit is 33554432 bytes (32 MiB)"),
            "{err}"
        );
    }

    #[test]
    fn symlinks_inside_are_followed_outside_skipped() {
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "secret.txt", b"nope");
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "lib/util.py", b"u");
        symlink(dir.path().join("lib/util.py"), dir.path().join("alias.py")).unwrap();
        symlink(
            outside.path().join("secret.txt"),
            dir.path().join("secret.txt"),
        )
        .unwrap();
        symlink(outside.path(), dir.path().join("outdir")).unwrap();
        symlink(dir.path(), dir.path().join("lib/loop")).unwrap();
        symlink(dir.path().join("lib"), dir.path().join("libalias")).unwrap();
        symlink(dir.path().join("missing"), dir.path().join("broken")).unwrap();

        let packed = pack(dir.path(), CONTEXT_LIMIT_BYTES).unwrap();
        assert_eq!(
            paths(&packed),
            ["alias.py", "lib/util.py", "libalias/util.py"]
        );
        assert_eq!(packed.context.files[0].content, b"u");
        let warnings = packed.warnings.join("\n");
        assert!(
            warnings.contains("skipping secret.txt: symlink points outside"),
            "{warnings}"
        );
        assert!(
            warnings.contains("skipping outdir: symlink points outside"),
            "{warnings}"
        );
        assert!(
            warnings.contains("skipping lib/loop: symlink loop"),
            "{warnings}"
        );
        assert!(
            warnings.contains("skipping broken: broken symlink"),
            "{warnings}"
        );
    }

    #[test]
    fn missing_or_non_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(pack(&missing, 10).unwrap_err().to_string().contains("nope"));
        write(dir.path(), "f", b"x");
        assert!(
            pack(&dir.path().join("f"), 10)
                .unwrap_err()
                .to_string()
                .contains("is not a directory")
        );
    }
}

//! The Python harness, embedded in the agent and written to its work directory at start.

use std::path::{Path, PathBuf};

/// The harness package's files, relative to its `PYTHONPATH` entry.
const FILES: &[(&str, &str)] = &[
    (
        "baton/__init__.py",
        include_str!("../../harness/python/baton/__init__.py"),
    ),
    (
        "baton/_client.py",
        include_str!("../../harness/python/baton/_client.py"),
    ),
    (
        "baton/_context.py",
        include_str!("../../harness/python/baton/_context.py"),
    ),
];

/// Writes the harness under `work_dir/harness` and returns the directory to put on `PYTHONPATH`.
pub fn install_harness(work_dir: &Path) -> std::io::Result<PathBuf> {
    let root = work_dir.join("harness");
    for (relative, content) in FILES {
        let path = root.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, content)?;
    }
    Ok(root)
}

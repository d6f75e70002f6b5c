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
    (
        "baton/_rng.py",
        include_str!("../../harness/python/baton/_rng.py"),
    ),
    (
        "baton/_sync.py",
        include_str!("../../harness/python/baton/_sync.py"),
    ),
    (
        "baton/keras.py",
        include_str!("../../harness/python/baton/keras.py"),
    ),
    (
        "baton/tensorflow.py",
        include_str!("../../harness/python/baton/tensorflow.py"),
    ),
    (
        "baton/torch.py",
        include_str!("../../harness/python/baton/torch.py"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_of_the_package_is_embedded() {
        let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("../harness/python/baton");
        let mut on_disk: Vec<String> = std::fs::read_dir(package)
            .unwrap()
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".py"))
            .map(|name| format!("baton/{name}"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(name, _)| name.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }
}

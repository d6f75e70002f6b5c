//! Helpers for cluster tests: start real master and agent processes, drive the `baton` CLI.

pub mod browser;
mod cluster;
pub mod http;
pub mod linreg;
pub mod ml;
pub mod moving;
mod netns;
pub mod operations;
pub mod pki;
mod proxy;
mod raw_grpc;
pub mod scrape;
mod standby;
mod storage;
mod test_database;
mod test_storage;

pub use cluster::{TestCluster, wait_until};
pub use netns::Netns;
pub use proxy::LinkProxy;
pub use raw_grpc::raw_unary;
pub use standby::{FakeStandby, dead_master_url};
pub use storage::{read_weights, verify_stored_checkpoint};
pub use test_database::{TestDatabase, postgres_ca, postgres_server};
pub use test_storage::TestStorage;

use std::path::{Path, PathBuf};

/// The directory holding the workspace's built binaries.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory")
        .to_path_buf();
    for name in ["baton", "baton-master", "baton-agent"] {
        assert!(
            dir.join(name).is_file(),
            "{} is missing: build the binaries first (cargo build --bins)",
            dir.join(name).display()
        );
    }
    dir
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

/// An example config with its storage under `storage` and `overrides` (YAML lines) applied.
pub fn example_config(
    example: &str,
    config: &str,
    storage: &Path,
    overrides: &[(&str, &str)],
) -> String {
    let path = repo_root().join("examples").join(example).join(config);
    let mut text = std::fs::read_to_string(&path).expect("example config");
    text = text.replace("/tmp/baton-checkpoints", &storage.display().to_string());
    for (from, to) in overrides {
        assert!(text.contains(from), "{} has no {from:?}", path.display());
        text = text.replace(from, to);
    }
    text
}

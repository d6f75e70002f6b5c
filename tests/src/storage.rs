//! Checks of checkpoints in `shared_fs` storage.

use std::path::Path;

use serde_json::Value;

/// Verifies that `<root>/<uuid>/metadata.json` exists and every file matches its size and BLAKE3.
pub fn verify_stored_checkpoint(root: &Path, uuid: &str) -> Value {
    let dir = root.join(uuid);
    let text = std::fs::read_to_string(dir.join("metadata.json"))
        .unwrap_or_else(|e| panic!("checkpoint {uuid} has no metadata.json: {e}"));
    let manifest: Value = serde_json::from_str(&text).expect("metadata.json is JSON");
    assert_eq!(manifest["uuid"], uuid);
    let files = manifest["files"].as_array().expect("files list");
    assert!(!files.is_empty(), "checkpoint {uuid} lists no files");
    for file in files {
        let path = dir.join(file["path"].as_str().expect("file path"));
        let content = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            content.len() as u64,
            file["size"].as_u64().unwrap(),
            "size of {}",
            path.display()
        );
        assert_eq!(
            blake3::hash(&content).to_hex().as_str(),
            file["blake3"].as_str().unwrap(),
            "checksum of {}",
            path.display()
        );
    }
    manifest
}

/// The `weights.json` of a checkpoint directory, as JSON.
pub fn read_weights(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("weights.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join("weights.json").display()));
    serde_json::from_str(&text).expect("weights.json is JSON")
}

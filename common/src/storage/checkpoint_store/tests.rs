use super::*;
use crate::storage::test_support::{request, shared_fs};

#[tokio::test]
async fn in_place_commit_then_download_round_trips() {
    let root = tempfile::tempdir().unwrap();
    let store = shared_fs(root.path());
    let dir = store.write_dir("u1", Path::new("/unused"));
    assert_eq!(dir, root.path().join("u1"));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("weights.bin"), vec![7u8; 3000]).unwrap();
    std::fs::write(dir.join("sub/state.json"), b"{}").unwrap();
    let manifest = store.commit(&request("u1"), &dir).await.unwrap();
    assert_eq!(manifest.files.len(), 2);
    assert_eq!(manifest.size_bytes(), 3002);
    assert!(dir.join(MANIFEST_NAME).is_file());

    let out = tempfile::tempdir().unwrap();
    let downloaded = store.download("u1", out.path()).await.unwrap();
    assert_eq!(downloaded, manifest);
    assert_eq!(
        std::fs::read(out.path().join("weights.bin")).unwrap(),
        vec![7u8; 3000]
    );
    assert_eq!(
        std::fs::read(out.path().join("sub/state.json")).unwrap(),
        b"{}"
    );
}

#[tokio::test]
async fn staged_commit_copies_large_files_into_shared_fs() {
    let root = tempfile::tempdir().unwrap();
    let staging = tempfile::tempdir().unwrap();
    let store = shared_fs(root.path());
    let dir = staging.path().join("u2");
    std::fs::create_dir_all(&dir).unwrap();
    let big: Vec<u8> = (0..(SINGLE_PUT_LIMIT as usize + 3 * PART_SIZE + 17))
        .map(|i| (i % 251) as u8)
        .collect();
    std::fs::write(dir.join("big.bin"), &big).unwrap();
    let manifest = store.commit(&request("u2"), &dir).await.unwrap();
    assert_eq!(manifest.files[0].size, big.len() as u64);
    assert_eq!(
        manifest.files[0].blake3,
        blake3::hash(&big).to_hex().to_string()
    );
    assert_eq!(std::fs::read(root.path().join("u2/big.bin")).unwrap(), big);
}

#[tokio::test]
async fn corrupted_byte_is_detected_on_download() {
    let root = tempfile::tempdir().unwrap();
    let store = shared_fs(root.path());
    let dir = store.write_dir("u3", Path::new("/unused"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("w.bin"), b"abcdef").unwrap();
    store.commit(&request("u3"), &dir).await.unwrap();
    std::fs::write(dir.join("w.bin"), b"abcdeX").unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = store
        .download("u3", out.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not match metadata.json"), "{err}");
    assert!(!out.path().join("w.bin").exists());
    assert!(!out.path().join("w.bin.partial").exists());
}

#[tokio::test]
async fn uncommitted_and_missing_files_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let store = shared_fs(root.path());
    let dir = store.write_dir("u4", Path::new("/unused"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("w.bin"), b"abc").unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = store.download("u4", out.path()).await.unwrap_err();
    assert!(matches!(err, StorageError::NotCommitted(_)), "{err}");

    store.commit(&request("u4"), &dir).await.unwrap();
    std::fs::remove_file(dir.join("w.bin")).unwrap();
    let err = store
        .download("u4", out.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing from storage"), "{err}");
}

#[tokio::test]
async fn delete_removes_everything_and_tolerates_missing() {
    let root = tempfile::tempdir().unwrap();
    let store = shared_fs(root.path());
    let dir = store.write_dir("u5", Path::new("/unused"));
    std::fs::create_dir_all(dir.join("a/b")).unwrap();
    std::fs::write(dir.join("a/b/w.bin"), b"abc").unwrap();
    store.commit(&request("u5"), &dir).await.unwrap();
    store.delete("u5").await.unwrap();
    assert!(!dir.exists());
    store.delete("u5").await.unwrap();
}

#[tokio::test]
async fn parts_commit_without_a_manifest_until_it_is_written() {
    let root = tempfile::tempdir().unwrap();
    let staging = tempfile::tempdir().unwrap();
    let store = shared_fs(root.path()).always_staged();
    assert!(!store.writes_in_place());
    let mut files = Vec::new();
    for (part, name) in [(0, "rank0.bin"), (1, "rank1.bin")] {
        let dir = store.write_dir("u6", &staging.path().join(format!("part{part}")));
        assert!(dir.starts_with(staging.path()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), vec![part as u8; 100 + part]).unwrap();
        files.extend(store.commit_part("u6", &dir).await.unwrap());
        assert!(!root.path().join("u6").join(MANIFEST_NAME).exists());
    }
    let out = tempfile::tempdir().unwrap();
    let err = store.download("u6", out.path()).await.unwrap_err();
    assert!(matches!(err, StorageError::NotCommitted(_)), "{err}");

    let request = request("u6");
    let manifest = Manifest {
        uuid: request.uuid,
        experiment_id: request.experiment_id,
        trial_id: request.trial_id,
        allocation_id: request.allocation_id,
        step: request.step,
        hparams: request.hparams,
        metadata: request.metadata,
        files,
        committed_ms: 1,
    };
    store.write_manifest(&manifest).await.unwrap();
    assert_eq!(store.read_manifest("u6").await.unwrap(), manifest);
    assert_eq!(store.download("u6", out.path()).await.unwrap(), manifest);
    assert_eq!(manifest.size_bytes(), 201);
    assert_eq!(
        std::fs::read(out.path().join("rank1.bin")).unwrap(),
        vec![1u8; 101]
    );
}

//! The scenarios every object storage backend runs, whatever server emulates it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_common::config::StorageBackend;
use baton_common::storage::{
    CheckpointStore, CommitRequest, Manifest, ManifestFile, StorageError, build_object_store,
};
use object_store::ObjectStoreExt;

use super::server::Server;

/// The bucket (or container) the scenarios use.
pub const BUCKET: &str = "ckpt-bucket";

/// A bucket on an emulator, as the scenarios reach it.
pub trait Target {
    /// The storage config of `bucket`, under the prefix `ckpts`.
    fn backend(&self, bucket: &str) -> StorageBackend;

    /// Creates [`BUCKET`].
    fn create_bucket(&self);

    /// The emulator.
    fn server(&mut self) -> &mut Server;

    /// Baton's store on `bucket`.
    fn store_in(&self, bucket: &str) -> CheckpointStore {
        CheckpointStore::new(&self.backend(bucket)).unwrap()
    }

    /// Baton's store on [`BUCKET`].
    fn store(&self) -> CheckpointStore {
        self.store_in(BUCKET)
    }

    /// Writes the object `<key>` of the store behind its back.
    fn put_object(&self, key: &str, content: Vec<u8>) {
        let (raw, _) = build_object_store(&self.backend(BUCKET)).unwrap();
        runtime()
            .block_on(raw.put(&object_store::path::Path::from(key), content.into()))
            .unwrap();
    }

    /// Stores the files of `dir` as checkpoint `uuid`: Baton's own commit, unless the server cannot
    /// take Baton's writes.
    fn save(&self, uuid: &str, dir: &Path) -> Manifest {
        runtime()
            .block_on(self.store().commit(&request(uuid), dir))
            .unwrap()
    }
}

/// A checkpoint of `large` bytes in `model.bin` and `small` files of 1 KiB, committed and
/// downloaded again byte for byte.
pub fn round_trip(target: &impl Target, large: usize, small: usize) {
    let work = tempfile::tempdir().unwrap();
    let dir = checkpoint_dir(work.path(), large, small);
    let uuid = uuid::Uuid::new_v4().to_string();
    let manifest = target.save(&uuid, &dir);
    assert_eq!(manifest.files.len(), small + 1);
    let out = work.path().join("out");
    let downloaded = runtime()
        .block_on(target.store().download(&uuid, &out))
        .unwrap();
    assert_eq!(downloaded, manifest);
    for file in &manifest.files {
        assert_eq!(
            std::fs::read(out.join(&file.path)).unwrap(),
            std::fs::read(dir.join(&file.path)).unwrap(),
            "{}",
            file.path
        );
    }
}

/// A flipped byte and an object missing from storage both fail the download, which leaves no
/// file that looks complete.
pub fn corrupted_and_missing_objects_are_refused(target: &impl Target) {
    let work = tempfile::tempdir().unwrap();
    let dir = checkpoint_dir(work.path(), 4096, 2);
    let uuid = uuid::Uuid::new_v4().to_string();
    let mut manifest = target.save(&uuid, &dir);
    let store = target.store();
    let rt = runtime();

    let original = std::fs::read(dir.join("model.bin")).unwrap();
    let mut corrupted = original.clone();
    corrupted[100] ^= 1;
    target.put_object(&format!("{uuid}/model.bin"), corrupted);
    let out = work.path().join("corrupt");
    let err = rt
        .block_on(store.download(&uuid, &out))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.bin does not match metadata.json"),
        "{err}"
    );
    assert!(!out.join("model.bin").exists() && !out.join("model.bin.partial").exists());
    assert!(
        !out.join("metadata.json").exists(),
        "a failed download does not look complete"
    );

    target.put_object(&format!("{uuid}/model.bin"), original);
    manifest.files.push(ManifestFile {
        path: "ghost.bin".into(),
        size: 1,
        blake3: blake3::hash(b"g").to_hex().to_string(),
    });
    target.put_object(
        &format!("{uuid}/metadata.json"),
        serde_json::to_vec(&manifest).unwrap(),
    );
    let err = rt
        .block_on(store.download(&uuid, &work.path().join("missing")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ghost.bin listed in metadata.json is missing from storage"),
        "{err}"
    );
}

/// GC's delete removes every object of a checkpoint, and the sweep finds only uncommitted
/// prefixes, which delete then clears.
pub fn gc_delete_and_orphan_sweep(target: &impl Target) {
    let work = tempfile::tempdir().unwrap();
    let dir = checkpoint_dir(work.path(), 2048, 3);
    let [kept, deleted, orphan] = [(); 3].map(|_| uuid::Uuid::new_v4().to_string());
    target.save(&kept, &dir);
    target.save(&deleted, &dir);
    target.put_object(&format!("{orphan}/partial.bin"), vec![1; 1024]);
    target.put_object("notes/readme.txt", b"not a checkpoint".to_vec());
    let store = target.store();
    runtime().block_on(async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            store.list_uncommitted(Duration::ZERO).await.unwrap(),
            vec![orphan.clone()]
        );
        assert!(
            store
                .list_uncommitted(Duration::from_secs(3600))
                .await
                .unwrap()
                .is_empty(),
            "an upload in flight is not swept"
        );

        store.delete(&deleted).await.unwrap();
        let err = store.read_manifest(&deleted).await.unwrap_err();
        assert!(matches!(err, StorageError::NotCommitted(_)), "{err}");
        store.delete(&deleted).await.unwrap();
        store.delete(&orphan).await.unwrap();
        assert!(
            store
                .list_uncommitted(Duration::ZERO)
                .await
                .unwrap()
                .is_empty(),
            "no object of a deleted checkpoint is left"
        );
        store
            .download(&kept, &work.path().join("kept"))
            .await
            .unwrap();
    });
}

/// An emulator killed while a large file uploads, and back empty: the commit fails and nothing
/// is committed.
pub fn a_server_lost_mid_upload_leaves_nothing_committed(target: &mut impl Target) {
    let store = target.store();
    let work = tempfile::tempdir().unwrap();
    let dir = checkpoint_dir(work.path(), 160 * 1024 * 1024, 4);
    let uuid = uuid::Uuid::new_v4().to_string();
    let rt = runtime();
    let upload = rt.spawn({
        let (store, dir, uuid) = (store.clone(), dir.clone(), uuid.clone());
        async move { store.commit(&request(&uuid), &dir).await }
    });
    std::thread::sleep(Duration::from_millis(400));
    target.server().restart();
    let result = rt.block_on(upload).unwrap();
    assert!(
        result.is_err(),
        "an upload interrupted by a server loss must not succeed"
    );
    target.create_bucket();
    let err = rt.block_on(store.read_manifest(&uuid)).unwrap_err();
    assert!(matches!(err, StorageError::NotCommitted(_)), "{err}");
}

/// The access check passes on the bucket and names `missing_error` for a missing one.
pub fn access_check_passes_and_names_a_missing_bucket(target: &impl Target, missing_error: &str) {
    let rt = runtime();
    rt.block_on(target.store().check_access(Duration::from_secs(10)))
        .unwrap();
    let err = rt
        .block_on(
            target
                .store_in("no-such-bucket")
                .check_access(Duration::from_secs(10)),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot write to checkpoint storage"), "{err}");
    assert!(err.contains(missing_error), "{err}");
}

/// A store whose endpoint nobody listens on fails the access check, never showing its `secrets`.
pub fn unreachable_storage_fails_the_access_check(
    store: impl FnOnce(&str) -> CheckpointStore,
    secrets: &[&str],
) {
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = store(&format!("http://{}", nobody.local_addr().unwrap()));
    drop(nobody);
    let err = runtime()
        .block_on(dead.check_access(Duration::from_secs(2)))
        .unwrap_err()
        .to_string();
    // Refused connections are retried quickly; under load the retries may run out before the
    // timeout does. Either way the message says the storage cannot be reached.
    assert!(
        err.contains("did not answer within")
            || (err.contains("cannot write to checkpoint storage")
                && err.contains("error sending request")),
        "{err}"
    );
    for secret in secrets {
        assert!(
            !err.contains(secret),
            "secrets never appear in errors: {err}"
        );
    }
}

/// A commit request for checkpoint `uuid`.
pub fn request(uuid: &str) -> CommitRequest {
    CommitRequest {
        uuid: uuid.into(),
        experiment_id: 1,
        trial_id: 1,
        allocation_id: "a".into(),
        step: 10,
        hparams: serde_json::json!({}),
        metadata: serde_json::json!({"framework": "test"}),
    }
}

/// A checkpoint directory: `model.bin` of `large` bytes and `small` files of 1 KiB in `shards/`.
pub fn checkpoint_dir(root: &Path, large: usize, small: usize) -> PathBuf {
    let dir = root.join("staged");
    std::fs::create_dir_all(dir.join("shards")).unwrap();
    let content: Vec<u8> = (0..large).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(dir.join("model.bin"), content).unwrap();
    for i in 0..small {
        std::fs::write(
            dir.join("shards").join(format!("{i}.json")),
            vec![i as u8; 1024],
        )
        .unwrap();
    }
    dir
}

/// A runtime like the daemons'.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

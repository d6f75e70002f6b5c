//! Checkpoint storage against a real S3-compatible server (moto), with failures injected.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use baton_common::config::StorageBackend;
use baton_common::storage::{CheckpointStore, CommitRequest, StorageError};

/// A private moto server on a free loopback port, stopped on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    fn start_on(port: u16) -> Self {
        let server = std::env::var("BATON_MOTO_SERVER").expect(
            "S3 storage tests need moto: run scripts/test.sh, which installs it and sets BATON_MOTO_SERVER",
        );
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Self { child, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "moto did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn create_bucket(&self, bucket: &str) {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        use std::io::{Read, Write};
        write!(stream, "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert!(
            reply.starts_with("HTTP/1.1 200"),
            "bucket creation failed: {reply}"
        );
    }

    fn store(&self, bucket: &str) -> CheckpointStore {
        CheckpointStore::new(&StorageBackend::S3 {
            bucket: bucket.into(),
            prefix: Some("ckpts".into()),
            endpoint_url: Some(self.endpoint()),
            region: Some("us-east-1".into()),
            access_key: Some("testing".into()),
            secret_key: Some("testing".into()),
        })
        .unwrap()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn request(uuid: &str) -> CommitRequest {
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

/// A checkpoint directory: one large file of `large` bytes and `small` files of 1 KiB.
fn checkpoint_dir(root: &Path, large: usize, small: usize) -> std::path::PathBuf {
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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn large_checkpoint_round_trips_through_multipart_upload_and_ranged_download() {
    let moto = Moto::start();
    moto.create_bucket("ckpt-bucket");
    let store = moto.store("ckpt-bucket");
    let work = tempfile::tempdir().unwrap();
    let dir = checkpoint_dir(work.path(), 80 * 1024 * 1024 + 123, 64);
    runtime().block_on(async {
        let manifest = store.commit(&request("u1"), &dir).await.unwrap();
        assert_eq!(manifest.files.len(), 65);
        let out = work.path().join("out");
        let downloaded = store.download("u1", &out).await.unwrap();
        assert_eq!(downloaded, manifest);
        assert_eq!(
            std::fs::read(out.join("model.bin")).unwrap(),
            std::fs::read(dir.join("model.bin")).unwrap()
        );
        assert_eq!(
            std::fs::read(out.join("shards/63.json")).unwrap(),
            vec![63u8; 1024]
        );
    });
}

#[test]
fn a_server_lost_mid_upload_leaves_nothing_committed() {
    let mut moto = Moto::start();
    moto.create_bucket("ckpt-bucket");
    let store = moto.store("ckpt-bucket");
    let work = tempfile::tempdir().unwrap();
    let dir = checkpoint_dir(work.path(), 160 * 1024 * 1024, 4);
    let rt = runtime();
    let upload = rt.spawn({
        let (store, dir) = (store.clone(), dir.clone());
        async move { store.commit(&request("u2"), &dir).await }
    });
    std::thread::sleep(Duration::from_millis(400));
    let port = moto.port;
    let _ = moto.child.kill();
    let _ = moto.child.wait();
    let restarted = Moto::start_on(port);
    restarted.create_bucket("ckpt-bucket");
    let result = rt.block_on(upload).unwrap();
    assert!(
        result.is_err(),
        "an upload interrupted by a server loss must not succeed"
    );
    let err = rt.block_on(store.read_manifest("u2")).unwrap_err();
    assert!(matches!(err, StorageError::NotCommitted(_)), "{err}");
}

#[test]
fn missing_objects_and_corrupted_bytes_are_refused_on_download() {
    let moto = Moto::start();
    moto.create_bucket("ckpt-bucket");
    let store = moto.store("ckpt-bucket");
    let work = tempfile::tempdir().unwrap();
    let dir = checkpoint_dir(work.path(), 4096, 2);
    let raw = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(moto.endpoint())
        .with_bucket_name("ckpt-bucket")
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .build()
        .unwrap();
    runtime().block_on(async {
        use object_store::ObjectStoreExt;
        store.commit(&request("u3"), &dir).await.unwrap();
        let path = object_store::path::Path::from("ckpts/u3/model.bin");
        let mut bytes = raw
            .get(&path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        bytes[100] ^= 1;
        raw.put(&path, bytes.into()).await.unwrap();
        let out = work.path().join("corrupt");
        let err = store.download("u3", &out).await.unwrap_err().to_string();
        assert!(
            err.contains("model.bin does not match metadata.json"),
            "{err}"
        );
        assert!(!out.join("model.bin").exists() && !out.join("model.bin.partial").exists());
        assert!(
            !out.join("metadata.json").exists(),
            "a failed download does not look complete"
        );

        raw.delete(&path).await.unwrap();
        let err = store
            .download("u3", &work.path().join("missing"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.bin listed in metadata.json is missing from storage"),
            "{err}"
        );
    });
}

#[test]
fn unusable_storage_fails_the_access_check_with_a_clear_message() {
    let moto = Moto::start();
    moto.create_bucket("ckpt-bucket");
    let rt = runtime();
    rt.block_on(
        moto.store("ckpt-bucket")
            .check_access(Duration::from_secs(10)),
    )
    .unwrap();
    let err = rt
        .block_on(
            moto.store("no-such-bucket")
                .check_access(Duration::from_secs(10)),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot write to checkpoint storage"),
        "{err}"
    );
    assert!(err.to_string().contains("NoSuchBucket"), "{err}");
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = CheckpointStore::new(&StorageBackend::S3 {
        bucket: "ckpt-bucket".into(),
        prefix: None,
        endpoint_url: Some(format!("http://{}", nobody.local_addr().unwrap())),
        region: None,
        access_key: Some("testing".into()),
        secret_key: Some("s3cr3t-value".into()),
    })
    .unwrap();
    drop(nobody);
    let err = rt
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
    assert!(
        !err.contains("s3cr3t-value"),
        "secrets never appear in errors: {err}"
    );
}

//! Checkpoint storage as tests see it: a shared_fs directory, or a prefix of a bucket on the S3
//! server or of a container on the Azure Blob emulator that the test run started.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use baton_common::config::StorageBackend;
use baton_common::storage::build_object_store;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::Value;

use crate::example_config;

/// Where a test's checkpoints live.
pub enum TestStorage {
    /// A local directory standing in for a shared filesystem.
    SharedFs(PathBuf),
    /// A prefix in a bucket of the S3-compatible server the test run started.
    S3 {
        /// Endpoint URL.
        endpoint: String,
        /// Bucket name.
        bucket: String,
        /// Key prefix unique to the test.
        prefix: String,
    },
    /// A prefix in a container of the Azure Blob emulator (Azurite) the test run started.
    Azure {
        /// Blob service URL of the emulator's development account.
        endpoint: String,
        /// Container name.
        container: String,
        /// Blob prefix unique to the test.
        prefix: String,
    },
}

/// The well-known key of Azurite's development account `devstoreaccount1`.
pub(crate) const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

impl TestStorage {
    /// A unique prefix in the test S3 server; fails when no server was started.
    pub fn s3(name: &str) -> Self {
        let endpoint = std::env::var("BATON_TEST_S3_ENDPOINT").expect(
            "S3 tests need a real S3-compatible server: run scripts/test.sh, which starts one and sets BATON_TEST_S3_ENDPOINT",
        );
        let bucket = std::env::var("BATON_TEST_S3_BUCKET").unwrap_or_else(|_| "baton-test".into());
        TestStorage::S3 {
            endpoint,
            bucket,
            prefix: format!("{name}-{}", uuid::Uuid::new_v4()),
        }
    }

    /// A unique prefix in the test Azure Blob emulator; fails when none was started.
    pub fn azure(name: &str) -> Self {
        let endpoint = std::env::var("BATON_TEST_AZURE_ENDPOINT").expect(
            "Azure tests need the Azurite emulator: run scripts/test.sh, which starts it and sets BATON_TEST_AZURE_ENDPOINT",
        );
        let container =
            std::env::var("BATON_TEST_AZURE_CONTAINER").unwrap_or_else(|_| "baton-test".into());
        TestStorage::Azure {
            endpoint,
            container,
            prefix: format!("{name}-{}", uuid::Uuid::new_v4()),
        }
    }

    /// An example config whose checkpoint storage is this one.
    pub fn config(&self, example: &str, config: &str, overrides: &[(&str, &str)]) -> String {
        let block = match self {
            TestStorage::SharedFs(root) => return example_config(example, config, root, overrides),
            TestStorage::S3 {
                endpoint,
                bucket,
                prefix,
            } => format!(
                "  type: s3\n  bucket: {bucket}\n  prefix: {prefix}\n  endpoint_url: {endpoint}\n  access_key: testing\n  secret_key: testing\n"
            ),
            TestStorage::Azure {
                endpoint,
                container,
                prefix,
            } => format!(
                "  type: azure\n  container: {container}\n  prefix: {prefix}\n  account_url: {endpoint}\n  access_key: '{AZURITE_KEY}'\n"
            ),
        };
        let text = example_config(example, config, std::path::Path::new("/unused"), overrides);
        let shared = "  type: shared_fs\n  host_path: /unused\n";
        assert!(
            text.contains(shared),
            "config has no shared_fs storage block"
        );
        text.replace(shared, &block)
    }

    /// The uuids of every checkpoint prefix present in storage, committed or not.
    pub fn checkpoint_uuids(&self) -> BTreeSet<String> {
        let (store, _) = self.store();
        runtime().block_on(async {
            let objects: Vec<_> = store.list(None).try_collect().await.expect("storage lists");
            objects
                .iter()
                .filter_map(|o| o.location.parts().next().map(|p| p.as_ref().to_string()))
                .collect()
        })
    }

    /// One stored object of a checkpoint.
    pub fn read(&self, uuid: &str, path: &str) -> Vec<u8> {
        let (store, _) = self.store();
        runtime().block_on(async {
            let location = ObjectPath::from(format!("{uuid}/{path}"));
            let result = store
                .get(&location)
                .await
                .unwrap_or_else(|e| panic!("{location}: {e}"));
            result.bytes().await.expect("object body").to_vec()
        })
    }

    /// Replaces one stored object of a checkpoint.
    pub fn write(&self, uuid: &str, path: &str, content: Vec<u8>) {
        let (store, _) = self.store();
        runtime().block_on(async {
            let location = ObjectPath::from(format!("{uuid}/{path}"));
            store
                .put(&location, PutPayload::from(content))
                .await
                .expect("object written");
        })
    }

    /// Checks a checkpoint's metadata.json and that every file matches its size and BLAKE3.
    pub fn verify(&self, uuid: &str) -> Value {
        let manifest: Value = serde_json::from_slice(&self.read(uuid, "metadata.json"))
            .expect("metadata.json is JSON");
        assert_eq!(manifest["uuid"], uuid);
        let files = manifest["files"].as_array().expect("files list");
        assert!(!files.is_empty(), "checkpoint {uuid} lists no files");
        for file in files {
            let path = file["path"].as_str().expect("file path");
            let content = self.read(uuid, path);
            assert_eq!(
                content.len() as u64,
                file["size"].as_u64().unwrap(),
                "size of {uuid}/{path}"
            );
            assert_eq!(
                blake3::hash(&content).to_hex().as_str(),
                file["blake3"].as_str().unwrap(),
                "checksum of {uuid}/{path}"
            );
        }
        manifest
    }

    /// The `weights.json` of a checkpoint.
    pub fn weights(&self, uuid: &str) -> Value {
        serde_json::from_slice(&self.read(uuid, "weights.json")).expect("weights.json is JSON")
    }

    fn store(&self) -> (Arc<dyn ObjectStore>, ()) {
        match self {
            TestStorage::SharedFs(root) => {
                std::fs::create_dir_all(root).expect("storage directory");
                (
                    Arc::new(
                        object_store::local::LocalFileSystem::new_with_prefix(root)
                            .expect("local store"),
                    ),
                    (),
                )
            }
            TestStorage::S3 {
                endpoint,
                bucket,
                prefix,
            } => {
                let store = AmazonS3Builder::new()
                    .with_endpoint(endpoint)
                    .with_bucket_name(bucket)
                    .with_region("us-east-1")
                    .with_access_key_id("testing")
                    .with_secret_access_key("testing")
                    .with_allow_http(true)
                    .with_virtual_hosted_style_request(false)
                    .build()
                    .expect("S3 client");
                (
                    Arc::new(object_store::prefix::PrefixStore::new(
                        store,
                        prefix.as_str(),
                    )),
                    (),
                )
            }
            TestStorage::Azure {
                endpoint,
                container,
                prefix,
            } => {
                let backend = StorageBackend::Azure {
                    container: container.clone(),
                    prefix: Some(prefix.clone()),
                    account_url: Some(endpoint.clone()),
                    connection_string: None,
                    account: None,
                    access_key: Some(AZURITE_KEY.into()),
                };
                let (store, _) = build_object_store(&backend).expect("Azure client");
                (store, ())
            }
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

//! Azure Blob Storage against Azurite's blob service.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use baton_common::config::StorageBackend;
use baton_common::storage::CheckpointStore;
use sha2::{Digest, Sha256};

use super::server::Server;
use super::suite::{self, BUCKET, Target};

/// Azurite's well-known development account.
const ACCOUNT: &str = "devstoreaccount1";
/// The development account's well-known key.
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// An Azurite blob service of its own, in memory.
struct Azurite(Server);

impl Azurite {
    fn start() -> Self {
        let azurite = Azurite(Server::start(
            "BATON_AZURITE_BLOB",
            "Azure storage tests need Azurite: run scripts/test.sh, which installs it and sets BATON_AZURITE_BLOB",
            |port| {
                let port = port.to_string();
                let args = ["--blobHost", "127.0.0.1", "--blobPort", &port];
                let flags = ["--inMemoryPersistence", "--disableTelemetry", "--silent"];
                args.iter().chain(&flags).map(|a| a.to_string()).collect()
            },
        ));
        azurite.create_bucket();
        azurite
    }
}

impl Target for Azurite {
    fn backend(&self, bucket: &str) -> StorageBackend {
        StorageBackend::Azure {
            container: bucket.into(),
            prefix: Some("ckpts".into()),
            account_url: Some(format!("{}/{ACCOUNT}", self.0.url())),
            connection_string: None,
            account: None,
            access_key: Some(KEY.into()),
        }
    }

    fn create_bucket(&self) {
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let version = "2023-11-03";
        let canonical = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}/{ACCOUNT}/{BUCKET}\nrestype:container"
        );
        let key = STANDARD.decode(KEY).unwrap();
        let signature = STANDARD.encode(hmac_sha256(&key, canonical.as_bytes()));
        let (status, reply) = self.0.request(
            &format!(
                "PUT /{ACCOUNT}/{BUCKET}?restype=container HTTP/1.1\r\nx-ms-date: {date}\r\nx-ms-version: {version}\r\nAuthorization: SharedKey {ACCOUNT}:{signature}"
            ),
            b"",
        );
        assert_eq!(status, 201, "container creation failed: {reply}");
    }

    fn server(&mut self) -> &mut Server {
        &mut self.0
    }
}

/// HMAC-SHA256 (RFC 2104) with a key of at most one block, as the account key is.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let inner = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

#[test]
fn large_checkpoint_round_trips_through_block_upload_and_ranged_download() {
    suite::round_trip(&Azurite::start(), 80 * 1024 * 1024 + 123, 64);
}

#[test]
fn a_server_lost_mid_upload_leaves_nothing_committed() {
    suite::a_server_lost_mid_upload_leaves_nothing_committed(&mut Azurite::start());
}

#[test]
fn missing_objects_and_corrupted_bytes_are_refused_on_download() {
    suite::corrupted_and_missing_objects_are_refused(&Azurite::start());
}

#[test]
fn gc_deletes_checkpoints_and_the_sweep_finds_only_uncommitted_ones() {
    suite::gc_delete_and_orphan_sweep(&Azurite::start());
}

#[test]
fn a_connection_string_reaches_the_emulator_too() {
    let azurite = Azurite::start();
    let store = CheckpointStore::new(&StorageBackend::Azure {
        container: BUCKET.into(),
        prefix: None,
        account_url: None,
        connection_string: Some(format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={}/{ACCOUNT};",
            azurite.0.url()
        )),
        account: None,
        access_key: None,
    })
    .unwrap();
    suite::runtime()
        .block_on(store.check_access(std::time::Duration::from_secs(10)))
        .unwrap();
}

#[test]
fn unusable_storage_fails_the_access_check_with_a_clear_message() {
    suite::access_check_passes_and_names_a_missing_bucket(&Azurite::start(), "ContainerNotFound");
    suite::unreachable_storage_fails_the_access_check(
        |endpoint| {
            CheckpointStore::new(&StorageBackend::Azure {
                container: BUCKET.into(),
                prefix: None,
                account_url: Some(format!("{endpoint}/{ACCOUNT}")),
                connection_string: None,
                account: None,
                access_key: Some(KEY.into()),
            })
            .unwrap()
        },
        &[KEY],
    );
}

//! S3 against moto.

use baton_common::config::StorageBackend;
use baton_common::storage::CheckpointStore;

use super::server::Server;
use super::suite::{self, BUCKET, Target};

/// A moto server of its own.
struct Moto(Server);

impl Moto {
    fn start() -> Self {
        let moto = Moto(Server::start(
            "BATON_MOTO_SERVER",
            "S3 storage tests need moto: run scripts/test.sh, which installs it and sets BATON_MOTO_SERVER",
            |port| {
                ["-H", "127.0.0.1", "-p", &port.to_string()]
                    .map(String::from)
                    .to_vec()
            },
        ));
        moto.create_bucket();
        moto
    }
}

impl Target for Moto {
    fn backend(&self, bucket: &str) -> StorageBackend {
        StorageBackend::S3 {
            bucket: bucket.into(),
            prefix: Some("ckpts".into()),
            endpoint_url: Some(self.0.url()),
            region: Some("us-east-1".into()),
            access_key: Some("testing".into()),
            secret_key: Some("testing".into()),
        }
    }

    fn create_bucket(&self) {
        let (status, reply) = self.0.request(&format!("PUT /{BUCKET} HTTP/1.1"), b"");
        assert_eq!(status, 200, "bucket creation failed: {reply}");
    }

    fn server(&mut self) -> &mut Server {
        &mut self.0
    }
}

#[test]
fn large_checkpoint_round_trips_through_multipart_upload_and_ranged_download() {
    suite::round_trip(&Moto::start(), 80 * 1024 * 1024 + 123, 64);
}

#[test]
fn a_server_lost_mid_upload_leaves_nothing_committed() {
    suite::a_server_lost_mid_upload_leaves_nothing_committed(&mut Moto::start());
}

#[test]
fn missing_objects_and_corrupted_bytes_are_refused_on_download() {
    suite::corrupted_and_missing_objects_are_refused(&Moto::start());
}

#[test]
fn gc_deletes_checkpoints_and_the_sweep_finds_only_uncommitted_ones() {
    suite::gc_delete_and_orphan_sweep(&Moto::start());
}

#[test]
fn unusable_storage_fails_the_access_check_with_a_clear_message() {
    suite::access_check_passes_and_names_a_missing_bucket(&Moto::start(), "NoSuchBucket");
    suite::unreachable_storage_fails_the_access_check(
        |endpoint| {
            CheckpointStore::new(&StorageBackend::S3 {
                bucket: BUCKET.into(),
                prefix: None,
                endpoint_url: Some(endpoint.into()),
                region: None,
                access_key: Some("testing".into()),
                secret_key: Some("s3cr3t-value".into()),
            })
            .unwrap()
        },
        &["s3cr3t-value"],
    );
}

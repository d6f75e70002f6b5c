//! Google Cloud Storage against fake-gcs-server, for what it can do of the XML API that
//! `object_store` speaks.
//!
//! fake-gcs-server serves that API's reads (GET, ranged GET, HEAD), listing (`list-type=2`) and
//! DELETE, but refuses a plain XML `PUT` of an object ("invalid uploadType": it takes XML uploads
//! only through signed URLs) and has no XML multipart upload (`POST ?uploads`). So Baton cannot
//! commit there, nor pass the access check (which writes a probe): the scenarios store their
//! checkpoints through the emulator's JSON upload API instead, then run Baton's verified and
//! ranged downloads, its refusal of corrupted and missing objects, GC's delete and the orphan
//! sweep. gcp-storage-emulator does less: its XML replies carry no `ETag` or `Last-Modified`,
//! which `object_store` requires on every PUT and GET, and it has no XML listing or DELETE.

use baton_common::config::StorageBackend;
use baton_common::storage::{Manifest, ManifestFile, list_checkpoint_files};

use super::server::Server;
use super::suite::{self, BUCKET, Target, request};

/// A fake-gcs-server of its own, in memory, answering on its loopback address.
struct FakeGcs(Server);

impl FakeGcs {
    fn start() -> Self {
        let gcs = FakeGcs(Server::start(
            "BATON_FAKE_GCS_SERVER",
            "GCS storage tests need fake-gcs-server: run scripts/test.sh, which installs it and sets BATON_FAKE_GCS_SERVER",
            |port| {
                let (port, public_host) = (port.to_string(), format!("127.0.0.1:{port}"));
                let args = ["-scheme", "http", "-host", "127.0.0.1", "-port", &port];
                let more = [
                    "-public-host",
                    &public_host,
                    "-backend",
                    "memory",
                    "-log-level",
                    "error",
                ];
                args.iter().chain(&more).map(|a| a.to_string()).collect()
            },
        ));
        gcs.create_bucket();
        gcs
    }
}

impl Target for FakeGcs {
    fn backend(&self, bucket: &str) -> StorageBackend {
        StorageBackend::Gcs {
            bucket: bucket.into(),
            prefix: Some("ckpts".into()),
            service_account_path: None,
            endpoint_url: Some(self.0.url()),
        }
    }

    fn create_bucket(&self) {
        let body = format!(r#"{{"name":"{BUCKET}"}}"#);
        let (status, reply) = self.0.request(
            "POST /storage/v1/b HTTP/1.1\r\nContent-Type: application/json",
            body.as_bytes(),
        );
        assert_eq!(status, 200, "bucket creation failed: {reply}");
    }

    fn server(&mut self) -> &mut Server {
        &mut self.0
    }

    /// Through the JSON upload API, which the emulator takes.
    fn put_object(&self, key: &str, content: Vec<u8>) {
        let name: String = format!("ckpts/{key}")
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (status, reply) = self.0.request(
            &format!("POST /upload/storage/v1/b/{BUCKET}/o?uploadType=media&name={name} HTTP/1.1"),
            &content,
        );
        assert_eq!(status, 200, "upload of {key} failed: {reply}");
    }

    /// The files and a `metadata.json` as Baton's commit would write them, through the JSON API.
    fn save(&self, uuid: &str, dir: &std::path::Path) -> Manifest {
        let files = list_checkpoint_files(uuid, dir)
            .unwrap()
            .into_iter()
            .map(|file| {
                let content = std::fs::read(&file.absolute).unwrap();
                let blake3 = blake3::hash(&content).to_hex().to_string();
                let size = content.len() as u64;
                self.put_object(&format!("{uuid}/{}", file.relative), content);
                ManifestFile {
                    path: file.relative,
                    size,
                    blake3,
                }
            })
            .collect();
        let request = request(uuid);
        let mut manifest = Manifest {
            uuid: request.uuid,
            experiment_id: request.experiment_id,
            trial_id: request.trial_id,
            allocation_id: request.allocation_id,
            step: request.step,
            hparams: request.hparams,
            metadata: request.metadata,
            files,
            committed_ms: 0,
        };
        manifest.files.sort_by(|a, b| a.path.cmp(&b.path));
        let body = serde_json::to_vec_pretty(&manifest).unwrap();
        self.put_object(&format!("{uuid}/metadata.json"), body);
        manifest
    }
}

#[test]
fn a_large_checkpoint_downloads_verified_through_ranged_reads() {
    suite::round_trip(&FakeGcs::start(), 80 * 1024 * 1024 + 123, 64);
}

#[test]
fn missing_objects_and_corrupted_bytes_are_refused_on_download() {
    suite::corrupted_and_missing_objects_are_refused(&FakeGcs::start());
}

#[test]
fn gc_deletes_checkpoints_and_the_sweep_finds_only_uncommitted_ones() {
    suite::gc_delete_and_orphan_sweep(&FakeGcs::start());
}

#[test]
fn unreachable_storage_fails_the_access_check_with_a_clear_message() {
    suite::unreachable_storage_fails_the_access_check(
        |endpoint| {
            baton_common::storage::CheckpointStore::new(&StorageBackend::Gcs {
                bucket: BUCKET.into(),
                prefix: None,
                service_account_path: None,
                endpoint_url: Some(endpoint.into()),
            })
            .unwrap()
        },
        &[],
    );
}

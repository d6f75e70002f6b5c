//! One checkpoint transfer, timed: the Baton side of `scripts/bench-transfer.sh`.
//!
//! ```text
//! transfer upload-staged   <backend-json> <dir> <uuid>     commit a staged directory
//! transfer commit-in-place <backend-json> <uuid>           commit <root>/<uuid> (hash only)
//! transfer download        <backend-json> <uuid> <target>  download and verify
//! transfer delete          <backend-json> <uuid>           delete a checkpoint
//! ```
//!
//! `<backend-json>` is a `checkpoint_storage` section in JSON, e.g.
//! `{"type":"shared_fs","host_path":"/mnt/ckpt"}` or
//! `{"type":"s3","bucket":"b","endpoint_url":"http://127.0.0.1:9000","access_key":"k","secret_key":"s"}`.
//! Prints one line: the operation, bytes moved, wall seconds and MB/s (10^6 bytes per second).
//! Build with `cargo bench -p baton-common --bench transfer --no-run`; run from
//! `scripts/bench-transfer.sh`, which compares each operation with `cp -r` and `rclone`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use baton_common::storage::{CheckpointStore, CommitRequest, StorageError};

const USAGE: &str = "usage:
  transfer upload-staged   <backend-json> <dir> <uuid>
  transfer commit-in-place <backend-json> <uuid>
  transfer download        <backend-json> <uuid> <target>
  transfer delete          <backend-json> <uuid>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` runs every bench with `--bench`: without an operation there is nothing to do.
    let args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--bench")
        .collect();
    if args.is_empty() {
        eprintln!("{USAGE}\n(run scripts/bench-transfer.sh for the comparison with cp and rclone)");
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("transfer: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &[&str]) -> Result<(), String> {
    let open = |json: &str| CheckpointStore::from_storage_json(json).map_err(text);
    let started;
    let bytes = match args {
        ["upload-staged", backend, dir, uuid] => {
            let store = open(backend)?;
            started = Instant::now();
            let manifest = store
                .commit(&request(uuid), Path::new(dir))
                .await
                .map_err(text)?;
            manifest.size_bytes()
        }
        ["commit-in-place", backend, uuid] => {
            let store = open(backend)?;
            if !store.writes_in_place() {
                return Err("commit-in-place needs a shared_fs backend".into());
            }
            let dir = store.write_dir(uuid, Path::new("/nonexistent"));
            started = Instant::now();
            let manifest = store.commit(&request(uuid), &dir).await.map_err(text)?;
            manifest.size_bytes()
        }
        ["download", backend, uuid, target] => {
            let store = open(backend)?;
            started = Instant::now();
            let manifest = store
                .download(uuid, Path::new(target))
                .await
                .map_err(text)?;
            manifest.size_bytes()
        }
        ["delete", backend, uuid] => {
            let store = open(backend)?;
            started = Instant::now();
            store.delete(uuid).await.map_err(text)?;
            0
        }
        _ => return Err(format!("unknown arguments {args:?}\n{USAGE}")),
    };
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{} bytes={bytes} seconds={seconds:.3} mb_per_s={:.1}",
        args[0],
        bytes as f64 / seconds / 1e6
    );
    Ok(())
}

fn request(uuid: &str) -> CommitRequest {
    CommitRequest {
        uuid: uuid.to_string(),
        experiment_id: 1,
        trial_id: 1,
        allocation_id: "bench".into(),
        step: 1,
        hparams: serde_json::json!({}),
        metadata: serde_json::json!({"framework": "bench"}),
    }
}

fn text(error: StorageError) -> String {
    error.to_string()
}

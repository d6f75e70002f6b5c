//! `baton checkpoint download`: fetching a checkpoint straight from checkpoint storage.

use std::path::{Path, PathBuf};

use anyhow::bail;
use baton_common::proto::{Checkpoint, CheckpointRef};
use baton_common::storage::{CheckpointStore, Manifest, Progress};
use serde_json::{Value, json};

use crate::args::DownloadArgs;
use crate::client::Run;
use crate::output;

mod via_master;

/// Hint added to storage errors of S3 checkpoints: the master never hands out credentials.
const S3_CREDENTIALS_HINT: &str =
    " (S3 credentials come from your environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...)";

/// `checkpoint download`: asks the master where the checkpoint is, then fetches it from storage.
pub async fn download(app: &Run, args: &DownloadArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.output {
        ensure_empty_target(dir)?;
    }
    let request = match (&args.uuid, args.trial, args.step) {
        (Some(uuid), _, _) => CheckpointRef {
            uuid: uuid.clone(),
            ..Default::default()
        },
        (None, Some(trial_id), Some(step)) => CheckpointRef {
            uuid: String::new(),
            trial_id,
            step,
        },
        _ => bail!("give a checkpoint uuid, or --trial and --step"),
    };
    let ckpt = app
        .connect()
        .await?
        .describe_checkpoint(request)
        .await?
        .into_inner();
    if matches!(ckpt.state.as_str(), "DELETED" | "DELETING") {
        bail!(
            "checkpoint {} is {}: its files are gone from storage",
            ckpt.uuid,
            ckpt.state
        );
    }
    if ckpt.storage_json.trim().is_empty() {
        bail!(
            "the master gave no checkpoint storage for checkpoint {}",
            ckpt.uuid
        );
    }
    let dir = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("checkpoint-{}", ckpt.uuid)));
    ensure_empty_target(&dir)?;
    let created = !dir.exists();
    let bar = progress_bar(ckpt.size_bytes);
    let progress = |bytes: u64| bar.inc(bytes);
    let result = if args.via_master {
        via_master::download(app, &ckpt.uuid, &dir, &progress).await
    } else {
        direct(&ckpt, &dir, &progress).await
    };
    bar.finish_and_clear();
    if result.is_err() && created {
        // Leave no half-written directory behind; a failed removal changes nothing for the user.
        let _ = std::fs::remove_dir_all(&dir);
    }
    let manifest = result.map_err(|e: anyhow::Error| {
        let s3 = !args.via_master && storage_type(&ckpt.storage_json).as_deref() == Some("s3");
        let hint = if s3 { S3_CREDENTIALS_HINT } else { "" };
        anyhow::anyhow!("downloading checkpoint {}: {e:#}{hint}", ckpt.uuid,)
    })?;
    let (files, size) = (manifest.files.len(), manifest.size_bytes());
    if app.json {
        let dir = dir.display().to_string();
        let value = json!({ "uuid": ckpt.uuid, "dir": dir, "files": files, "size_bytes": size });
        return Ok(output::print_json(&value)?);
    }
    let text = format!(
        "Downloaded checkpoint {} ({files} files, {size} bytes) to {}",
        ckpt.uuid,
        dir.display()
    );
    Ok(output::print(&text)?)
}

/// A bytes / rate / ETA bar on a terminal's stderr; hidden when stderr is not a terminal.
fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// The `type` of a checkpoint_storage section given as JSON.
fn storage_type(storage_json: &str) -> Option<String> {
    let value: Value = serde_json::from_str(storage_json).ok()?;
    value.get("type")?.as_str().map(str::to_string)
}

/// Fails unless `dir` is absent or an empty directory.
pub fn ensure_empty_target(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} already exists and is not empty: choose another directory with -o",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) if dir.exists() && !dir.is_dir() => {
            bail!(
                "{} already exists and is not a directory: choose another directory with -o",
                dir.display()
            )
        }
        Err(e) => bail!(
            "cannot use {} as the download directory: {e}",
            dir.display()
        ),
    }
}

/// Downloads straight from storage the files of the master's record of the checkpoint (not a
/// `metadata.json` read back from storage).
async fn direct(ckpt: &Checkpoint, dir: &Path, progress: Progress<'_>) -> anyhow::Result<Manifest> {
    let manifest: Manifest = serde_json::from_str(&ckpt.metadata_json)
        .ok()
        .filter(|m: &Manifest| m.uuid == ckpt.uuid)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the master's record of checkpoint {} is unreadable",
                ckpt.uuid
            )
        })?;
    let store = CheckpointStore::from_storage_json(&ckpt.storage_json)?;
    store.download_recorded(&manifest, dir, progress).await?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_storage_type() {
        assert_eq!(
            storage_type(r#"{"type":"s3","bucket":"b"}"#).as_deref(),
            Some("s3")
        );
        assert_eq!(storage_type("").as_deref(), None);
    }

    #[test]
    fn download_target_must_be_absent_or_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ensure_empty_target(&dir.path().join("new")).is_ok());
        assert!(ensure_empty_target(dir.path()).is_ok());
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        let err = ensure_empty_target(dir.path()).unwrap_err().to_string();
        assert!(err.contains("already exists and is not empty"), "{err}");
        let err = ensure_empty_target(&dir.path().join("f"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a directory"), "{err}");
    }
}

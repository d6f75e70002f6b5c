//! Downloading a checkpoint streamed through the master, verified like a direct download.

use std::path::Path;

use baton_common::proto::CheckpointRef;
use baton_common::storage::{MANIFEST_NAME, Manifest, Progress, StorageError, write_verified_file};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::client::Run;

/// Fetches checkpoint `uuid` through the master into `dir`, verifying every file.
pub async fn download(
    app: &Run,
    uuid: &str,
    dir: &Path,
    progress: Progress<'_>,
) -> anyhow::Result<Manifest> {
    let request = CheckpointRef {
        uuid: uuid.to_string(),
        ..Default::default()
    };
    let mut stream = app
        .connect()
        .await?
        .download_checkpoint(request)
        .await?
        .into_inner();
    let first = stream
        .message()
        .await?
        .ok_or_else(|| anyhow::anyhow!("the master sent no manifest"))?;
    let manifest: Manifest = serde_json::from_str(&first.manifest_json)?;
    tokio::fs::create_dir_all(dir).await?;
    let mut pending = None;
    for file in &manifest.files {
        let (sender, receiver) = mpsc::channel::<Result<Bytes, StorageError>>(8);
        let writer = write_verified_file(uuid, file, dir, ReceiverStream::new(receiver), progress);
        let feeder = async {
            loop {
                let chunk = match pending.take() {
                    Some(chunk) => Some(chunk),
                    None => stream.message().await?,
                };
                match chunk {
                    Some(chunk) if chunk.path == file.path => {
                        if sender.send(Ok(Bytes::from(chunk.data))).await.is_err() {
                            break;
                        }
                    }
                    other => {
                        pending = other;
                        break;
                    }
                }
            }
            drop(sender);
            Ok::<(), tonic::Status>(())
        };
        let (written, fed) = tokio::join!(writer, feeder);
        fed?;
        written?;
    }
    let body = serde_json::to_vec_pretty(&manifest)?;
    tokio::fs::write(dir.join(MANIFEST_NAME), body).await?;
    Ok(manifest)
}

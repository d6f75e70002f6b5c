//! The harness socket: newline-delimited JSON requests from the trial (see harness/PROTOCOL.md).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use baton_common::proto::{AgentMessage, TrainingReport, ValidationReport, agent_message::Body};
use baton_common::storage::{CheckpointStore, list_checkpoint_files};
use bytes::BytesMut;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedReadHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_util::codec::{Decoder, LinesCodec, LinesCodecError};

pub mod request;

use request::{MAX_REQUEST_BYTES, Request};

/// Harness connections one allocation may hold open at once.
const MAX_CONNECTIONS: usize = 8;

use crate::allocation::record::AllocationDir;
use crate::allocation::record_pending_upload;
use crate::policy::StepTracker;

/// A checkpoint the trial finished writing, to be committed to storage.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct UploadJob {
    /// The checkpoint's uuid.
    pub uuid: String,
    /// Its step.
    pub step: u64,
    /// The directory the trial wrote.
    pub dir: PathBuf,
    /// The trial's own metadata.
    pub metadata: Value,
}

/// What the harness socket shares with the allocation that runs it.
pub struct Harness {
    /// The reply to `init`.
    pub init_reply: Value,
    /// Step bookkeeping, also updated by suspend requests.
    pub tracker: Arc<Mutex<StepTracker>>,
    /// Where checkpoints go.
    pub store: CheckpointStore,
    /// The allocation's directory (checkpoints that are uploaded are staged in it).
    pub dir: AllocationDir,
    /// The allocation's id.
    pub allocation_id: String,
    /// Reports to the master.
    pub outbox: mpsc::UnboundedSender<AgentMessage>,
    /// Checkpoints to commit.
    pub uploads: mpsc::UnboundedSender<UploadJob>,
    open_checkpoints: Mutex<HashMap<String, (u64, PathBuf)>>,
}

impl Harness {
    /// A harness for one allocation.
    pub fn new(
        init_reply: Value,
        tracker: Arc<Mutex<StepTracker>>,
        store: CheckpointStore,
        dir: AllocationDir,
        allocation_id: String,
        outbox: mpsc::UnboundedSender<AgentMessage>,
        uploads: mpsc::UnboundedSender<UploadJob>,
    ) -> Self {
        Self {
            init_reply,
            tracker,
            store,
            dir,
            allocation_id,
            outbox,
            uploads,
            open_checkpoints: Mutex::new(HashMap::new()),
        }
    }

    /// Accepts trial connections until the listener is dropped; beyond `MAX_CONNECTIONS` open at
    /// once, a connection is told why and closed.
    pub async fn serve(self: Arc<Self>, listener: UnixListener) {
        let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        while let Ok((mut stream, _)) = listener.accept().await {
            let Ok(permit) = open.clone().try_acquire_owned() else {
                let refusal = json!({"ok": false, "error": format!("more than {MAX_CONNECTIONS} harness connections at once: refused")});
                let _ = stream.write_all(format!("{refusal}\n").as_bytes()).await;
                continue;
            };
            let harness = self.clone();
            tokio::spawn(async move {
                harness.serve_connection(stream).await;
                drop(permit);
            });
        }
    }

    async fn serve_connection(&self, stream: UnixStream) {
        let (mut read, mut write) = stream.into_split();
        let mut codec = LinesCodec::new_with_max_length(MAX_REQUEST_BYTES);
        let mut buffer = BytesMut::new();
        let mut initialized = false;
        while let Some(line) = next_line(&mut read, &mut codec, &mut buffer).await {
            let reply = match line.and_then(|line| request::decode(&line)) {
                Ok(request) => self.handle(request, &mut initialized).await,
                Err(error) => Err(error),
            };
            let mut reply = match reply {
                Ok(Value::Object(mut fields)) => {
                    fields.insert("ok".into(), Value::Bool(true));
                    Value::Object(fields).to_string()
                }
                Ok(_) => json!({"ok": true}).to_string(),
                Err(error) => json!({"ok": false, "error": error}).to_string(),
            };
            reply.push('\n');
            if write.write_all(reply.as_bytes()).await.is_err() {
                break;
            }
        }
    }

    async fn handle(&self, request: Request, initialized: &mut bool) -> Result<Value, String> {
        if request == Request::Init {
            *initialized = true;
            return Ok(self.init_reply.clone());
        }
        if !*initialized {
            return Err(format!(
                "send {{\"op\":\"init\"}} before {:?}",
                request.op()
            ));
        }
        match request {
            Request::Init => Ok(self.init_reply.clone()),
            Request::ReportTraining { step, metrics } => self.report_training(step, &metrics),
            Request::ReportValidation { step, metrics } => self.report_validation(step, &metrics),
            Request::CheckpointStart { step } => self.checkpoint_start(step).await,
            Request::CheckpointEnd {
                uuid,
                step,
                metadata,
            } => self.checkpoint_end(&uuid, step, metadata).await,
            Request::CheckpointAbort { uuid } => self.checkpoint_abort(&uuid).await,
        }
    }

    fn report_training(&self, step: u64, metrics: &Map<String, Value>) -> Result<Value, String> {
        let directive = self
            .tracker
            .lock()
            .expect("tracker lock")
            .on_training(step)?;
        self.send(Body::Training(TrainingReport {
            allocation_id: self.allocation_id.clone(),
            step,
            metrics_json: Value::Object(metrics.clone()).to_string(),
        }));
        Ok(
            json!({"validate": directive.validate, "checkpoint": directive.checkpoint, "stop": directive.stop}),
        )
    }

    fn report_validation(&self, step: u64, metrics: &Map<String, Value>) -> Result<Value, String> {
        self.tracker
            .lock()
            .expect("tracker lock")
            .on_validation(step);
        self.send(Body::Validation(ValidationReport {
            allocation_id: self.allocation_id.clone(),
            step,
            metrics_json: Value::Object(metrics.clone()).to_string(),
        }));
        Ok(json!({}))
    }

    async fn checkpoint_start(&self, step: u64) -> Result<Value, String> {
        let uuid = uuid::Uuid::new_v4().to_string();
        let dir = self.store.write_dir(&uuid, &self.dir.path("staging"));
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        self.open_checkpoints
            .lock()
            .expect("checkpoint lock")
            .insert(uuid.clone(), (step, dir.clone()));
        Ok(json!({"uuid": uuid, "path": dir}))
    }

    async fn checkpoint_end(
        &self,
        uuid: &str,
        step: Option<u64>,
        metadata: Map<String, Value>,
    ) -> Result<Value, String> {
        let open = self
            .open_checkpoints
            .lock()
            .expect("checkpoint lock")
            .get(uuid)
            .cloned();
        let (step, dir) = match open {
            Some(open) => open,
            None => self.opened_before_restart(uuid, step)?,
        };
        let (check_uuid, check_dir) = (uuid.to_string(), dir.clone());
        tokio::task::spawn_blocking(move || list_checkpoint_files(&check_uuid, &check_dir))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        self.open_checkpoints
            .lock()
            .expect("checkpoint lock")
            .remove(uuid);
        self.tracker
            .lock()
            .expect("tracker lock")
            .on_checkpoint(step);
        let job = UploadJob {
            uuid: uuid.to_string(),
            step,
            dir,
            metadata: Value::Object(metadata),
        };
        record_pending_upload(&self.dir, &job)
            .map_err(|e| format!("cannot record checkpoint {uuid} for upload: {e}"))?;
        self.uploads
            .send(job)
            .map_err(|_| "the allocation is shutting down".to_string())?;
        Ok(json!({}))
    }

    /// A checkpoint opened through a previous daemon: found by its uuid's directory, with the step
    /// the trial repeats in `checkpoint_end`.
    fn opened_before_restart(
        &self,
        uuid: &str,
        step: Option<u64>,
    ) -> Result<(u64, PathBuf), String> {
        let unknown = || format!("checkpoint {uuid} is not open in this allocation");
        let parsed = uuid::Uuid::parse_str(uuid).map_err(|_| unknown())?;
        let dir = self
            .store
            .write_dir(&parsed.to_string(), &self.dir.path("staging"));
        match step {
            Some(step) if dir.is_dir() => Ok((step, dir)),
            _ => Err(unknown()),
        }
    }

    async fn checkpoint_abort(&self, uuid: &str) -> Result<Value, String> {
        let entry = self
            .open_checkpoints
            .lock()
            .expect("checkpoint lock")
            .remove(uuid);
        if let Some((_, dir)) = entry {
            let _ = tokio::fs::remove_dir_all(&dir).await;
        }
        Ok(json!({}))
    }

    fn send(&self, body: Body) {
        let _ = self.outbox.send(AgentMessage { body: Some(body) });
    }
}

/// The next request line, or why it cannot be read (too long, not UTF-8: the connection stays
/// usable); None once the trial closes the connection.
async fn next_line(
    read: &mut OwnedReadHalf,
    codec: &mut LinesCodec,
    buffer: &mut BytesMut,
) -> Option<Result<String, String>> {
    loop {
        match codec.decode(buffer) {
            Ok(Some(line)) => return Some(Ok(line)),
            Ok(None) => {}
            Err(LinesCodecError::MaxLineLengthExceeded) => {
                return Some(Err(format!(
                    "request line longer than {MAX_REQUEST_BYTES} bytes: refused"
                )));
            }
            Err(LinesCodecError::Io(_)) => {
                return Some(Err("request line is not valid UTF-8".into()));
            }
        }
        match read.read_buf(buffer).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

//! The harness socket: newline-delimited JSON requests from the trial (see harness/PROTOCOL.md).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use baton_common::proto::{AgentMessage, TrainingReport, ValidationReport, agent_message::Body};
use baton_common::storage::{CheckpointStore, list_checkpoint_files};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

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

    /// Accepts trial connections until the listener is dropped.
    pub async fn serve(self: Arc<Self>, listener: UnixListener) {
        while let Ok((stream, _)) = listener.accept().await {
            let harness = self.clone();
            tokio::spawn(async move { harness.serve_connection(stream).await });
        }
    }

    async fn serve_connection(&self, stream: UnixStream) {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let mut initialized = false;
        while let Ok(Some(line)) = lines.next_line().await {
            let reply = match serde_json::from_str::<Value>(&line) {
                Ok(request) => self.handle(&request, &mut initialized).await,
                Err(e) => Err(format!("request is not valid JSON: {e}")),
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

    async fn handle(&self, request: &Value, initialized: &mut bool) -> Result<Value, String> {
        let op = request
            .get("op")
            .and_then(Value::as_str)
            .ok_or("request has no string field \"op\"")?;
        if op == "init" {
            *initialized = true;
            return Ok(self.init_reply.clone());
        }
        if !*initialized {
            return Err(format!("send {{\"op\":\"init\"}} before {op:?}"));
        }
        match op {
            "report_training" => self.report_training(request),
            "report_validation" => self.report_validation(request),
            "checkpoint_start" => self.checkpoint_start(request).await,
            "checkpoint_end" => self.checkpoint_end(request).await,
            "checkpoint_abort" => self.checkpoint_abort(request).await,
            other => Err(format!(
                "unknown op {other:?} (expected init, report_training, report_validation, checkpoint_start, checkpoint_end or checkpoint_abort)"
            )),
        }
    }

    fn report_training(&self, request: &Value) -> Result<Value, String> {
        let step = field_u64(request, "step")?;
        let metrics = field_object(request, "metrics")?;
        let directive = self
            .tracker
            .lock()
            .expect("tracker lock")
            .on_training(step)?;
        self.send(Body::Training(TrainingReport {
            allocation_id: self.allocation_id.clone(),
            step,
            metrics_json: metrics.to_string(),
        }));
        Ok(
            json!({"validate": directive.validate, "checkpoint": directive.checkpoint, "stop": directive.stop}),
        )
    }

    fn report_validation(&self, request: &Value) -> Result<Value, String> {
        let step = field_u64(request, "step")?;
        let metrics = field_object(request, "metrics")?;
        self.tracker
            .lock()
            .expect("tracker lock")
            .on_validation(step);
        self.send(Body::Validation(ValidationReport {
            allocation_id: self.allocation_id.clone(),
            step,
            metrics_json: metrics.to_string(),
        }));
        Ok(json!({}))
    }

    async fn checkpoint_start(&self, request: &Value) -> Result<Value, String> {
        let step = field_u64(request, "step")?;
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

    async fn checkpoint_end(&self, request: &Value) -> Result<Value, String> {
        let uuid = field_str(request, "uuid")?;
        let metadata = request
            .get("metadata")
            .cloned()
            .unwrap_or_else(|| json!({}));
        if !metadata.is_object() {
            return Err("field \"metadata\" must be a JSON object".into());
        }
        let open = self
            .open_checkpoints
            .lock()
            .expect("checkpoint lock")
            .get(uuid)
            .cloned();
        let (step, dir) = match open {
            Some(open) => open,
            None => self.opened_before_restart(uuid, request)?,
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
            metadata,
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
    fn opened_before_restart(&self, uuid: &str, request: &Value) -> Result<(u64, PathBuf), String> {
        let unknown = || format!("checkpoint {uuid} is not open in this allocation");
        let parsed = uuid::Uuid::parse_str(uuid).map_err(|_| unknown())?;
        let dir = self
            .store
            .write_dir(&parsed.to_string(), &self.dir.path("staging"));
        let step = request.get("step").and_then(Value::as_u64);
        match step {
            Some(step) if dir.is_dir() => Ok((step, dir)),
            _ => Err(unknown()),
        }
    }

    async fn checkpoint_abort(&self, request: &Value) -> Result<Value, String> {
        let uuid = field_str(request, "uuid")?;
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

fn field_u64(request: &Value, name: &str) -> Result<u64, String> {
    request
        .get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("field {name:?} must be a non-negative integer"))
}

fn field_str<'a>(request: &'a Value, name: &str) -> Result<&'a str, String> {
    request
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("field {name:?} must be a string"))
}

fn field_object<'a>(request: &'a Value, name: &str) -> Result<&'a Value, String> {
    request
        .get(name)
        .filter(|v| v.is_object())
        .ok_or_else(|| format!("field {name:?} must be a JSON object"))
}

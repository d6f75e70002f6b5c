//! The harness socket: newline-delimited JSON requests from the trial (see harness/PROTOCOL.md).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use baton_common::proto::{AgentMessage, TrainingReport, ValidationReport, agent_message::Body};
use baton_common::storage::{CheckpointStore, list_checkpoint_files};
use bytes::BytesMut;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedReadHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tokio_util::codec::{Decoder, LinesCodec, LinesCodecError};

pub mod request;
mod role;

use request::{MAX_REQUEST_BYTES, Request};
pub use role::RankRole;

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
    /// How many jobs of this uuid make up a distributed trial part's checkpoint, one per rank that
    /// ends it (0 or 1: this job alone).
    #[serde(default)]
    pub part_ranks: u32,
    /// The local rank that ended it, telling apart the jobs of one part.
    #[serde(default)]
    pub local_rank: u32,
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
    role: RankRole,
    open_checkpoints: Mutex<HashMap<String, OpenCheckpoint>>,
    restore: watch::Receiver<RestoreState>,
}

/// How far the restore of the checkpoint the trial resumes from has got; `init` is answered once
/// it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreState {
    /// Still downloading and verifying.
    Pending,
    /// Restored and verified (or nothing to restore).
    Done,
    /// It failed, for this reason: the trial is not started.
    Failed(String),
}

/// A checkpoint opened in this allocation that not all of its ranks have ended yet.
#[derive(Debug, Clone)]
struct OpenCheckpoint {
    step: u64,
    dir: PathBuf,
    ended: BTreeSet<u32>,
}

impl Harness {
    /// A harness for one allocation of a one-rank trial (see [`Harness::with_role`]).
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
            role: RankRole::default(),
            open_checkpoints: Mutex::new(HashMap::new()),
            restore: watch::channel(RestoreState::Done).1,
        }
    }

    /// The same harness answering `init` only once `restore` says the checkpoint is restored.
    pub fn with_restore(self, restore: watch::Receiver<RestoreState>) -> Self {
        Self { restore, ..self }
    }

    /// Waits until the checkpoint the trial resumes from is restored.
    async fn restored(&self) -> Result<(), String> {
        let mut restore = self.restore.clone();
        loop {
            match &*restore.borrow_and_update() {
                RestoreState::Done => return Ok(()),
                RestoreState::Failed(reason) => return Err(reason.clone()),
                RestoreState::Pending => {}
            }
            if restore.changed().await.is_err() {
                return Err("the agent stopped restoring the checkpoint".to_string());
            }
        }
    }

    /// The same harness for an allocation that runs `role`'s ranks of a distributed trial.
    pub fn with_role(self, role: RankRole) -> Self {
        Self { role, ..self }
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
            // A report is answered first and forwarded after: the trial's step never waits on
            // the hand-over to the master's stream.
            let mut forward = None;
            let reply = match line.and_then(|line| request::decode(&line)) {
                Ok(request) if initialized => match self.report(&request) {
                    Some(Ok((answer, report))) => {
                        forward = Some(report);
                        Ok(answer)
                    }
                    Some(Err(error)) => Err(error),
                    None => self.handle(request, &mut initialized).await,
                },
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
            let written = write.write_all(reply.as_bytes()).await;
            if let Some(report) = forward {
                self.send(report);
            }
            if written.is_err() {
                break;
            }
        }
    }

    async fn handle(&self, request: Request, initialized: &mut bool) -> Result<Value, String> {
        if request == Request::Init {
            self.restored().await?;
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
            Request::ReportTraining { .. } | Request::ReportValidation { .. } => {
                let (answer, report) = self.report(&request).expect("a report request")?;
                self.send(report);
                Ok(answer)
            }
            Request::CheckpointStart { step, uuid } => self.checkpoint_start(step, uuid).await,
            Request::CheckpointEnd {
                uuid,
                step,
                metadata,
                rank,
            } => self.checkpoint_end(&uuid, step, metadata, rank).await,
            Request::CheckpointAbort { uuid } => self.checkpoint_abort(&uuid).await,
        }
    }

    /// A report's answer and the message for the master; None for requests that are not reports.
    fn report(&self, request: &Request) -> Option<Result<(Value, Body), String>> {
        match request {
            Request::ReportTraining { step, metrics } => Some(self.report_training(*step, metrics)),
            Request::ReportValidation { step, metrics } => {
                Some(self.report_validation(*step, metrics))
            }
            _ => None,
        }
    }

    fn report_training(
        &self,
        step: u64,
        metrics: &Map<String, Value>,
    ) -> Result<(Value, Body), String> {
        self.role.check_reports("report_training")?;
        let directive = self
            .tracker
            .lock()
            .expect("tracker lock")
            .on_training(step)?;
        let report = Body::Training(TrainingReport {
            allocation_id: self.allocation_id.clone(),
            step,
            metrics_json: Value::Object(metrics.clone()).to_string(),
        });
        let answer = json!({"validate": directive.validate, "checkpoint": directive.checkpoint, "stop": directive.stop});
        Ok((answer, report))
    }

    fn report_validation(
        &self,
        step: u64,
        metrics: &Map<String, Value>,
    ) -> Result<(Value, Body), String> {
        self.role.check_reports("report_validation")?;
        self.tracker
            .lock()
            .expect("tracker lock")
            .on_validation(step);
        let report = ValidationReport {
            allocation_id: self.allocation_id.clone(),
            step,
            metrics_json: Value::Object(metrics.clone()).to_string(),
        };
        if let Err(e) = self.dir.record_validation(&report) {
            tracing::warn!(allocation = %self.allocation_id, error = %e, "cannot record validation");
        }
        Ok((json!({}), Body::Validation(report)))
    }

    /// Opens a checkpoint: under a new uuid for rank 0 (or a one-rank trial), under rank 0's
    /// uuid for the other ranks; ranks of this allocation that name an open one share its
    /// directory.
    async fn checkpoint_start(&self, step: u64, uuid: Option<String>) -> Result<Value, String> {
        let uuid = match uuid {
            None => {
                self.role.check_agent_chooses()?;
                uuid::Uuid::new_v4().to_string()
            }
            Some(uuid) => {
                self.role.check_named_uuid()?;
                let open = self
                    .open_checkpoints
                    .lock()
                    .expect("checkpoint lock")
                    .get(&uuid)
                    .cloned();
                match open {
                    Some(open) if open.step != step => {
                        return Err(format!(
                            "checkpoint {uuid} is open for step {}, not {step}",
                            open.step
                        ));
                    }
                    Some(open) => return Ok(json!({"uuid": uuid, "path": open.dir})),
                    None => self.role.check_opens_named(&uuid)?,
                }
                uuid
            }
        };
        let dir = self.store.write_dir(&uuid, &self.dir.path("staging"));
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let open = self
            .open_checkpoints
            .lock()
            .expect("checkpoint lock")
            .entry(uuid.clone())
            .or_insert(OpenCheckpoint {
                step,
                dir,
                ended: BTreeSet::new(),
            })
            .clone();
        Ok(json!({"uuid": uuid, "path": open.dir}))
    }

    /// Hands one rank's part of a checkpoint over for commit; the checkpoint stays open until
    /// every rank of this allocation ended it.
    async fn checkpoint_end(
        &self,
        uuid: &str,
        step: Option<u64>,
        metadata: Map<String, Value>,
        rank: Option<u32>,
    ) -> Result<Value, String> {
        let local_rank = self.role.local_rank(rank)?;
        let open = self
            .open_checkpoints
            .lock()
            .expect("checkpoint lock")
            .get(uuid)
            .cloned();
        let (step, dir) = match open {
            Some(open) if open.ended.contains(&local_rank) => return Ok(json!({})),
            Some(open) => (open.step, open.dir),
            None => self.opened_before_restart(uuid, step)?,
        };
        let (check_uuid, check_dir) = (uuid.to_string(), dir.clone());
        tokio::task::spawn_blocking(move || list_checkpoint_files(&check_uuid, &check_dir))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        {
            let mut open_checkpoints = self.open_checkpoints.lock().expect("checkpoint lock");
            if let Some(open) = open_checkpoints.get_mut(uuid) {
                open.ended.insert(local_rank);
                if open.ended.len() >= self.role.part_ranks() as usize {
                    open_checkpoints.remove(uuid);
                }
            }
        }
        self.tracker
            .lock()
            .expect("tracker lock")
            .on_checkpoint(step);
        let job = UploadJob {
            uuid: uuid.to_string(),
            step,
            dir,
            metadata: Value::Object(metadata),
            part_ranks: self.role.part_ranks(),
            local_rank,
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
        if let Some(open) = entry {
            let _ = tokio::fs::remove_dir_all(&open.dir).await;
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

#[cfg(test)]
mod tests;

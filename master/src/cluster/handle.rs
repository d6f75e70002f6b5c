//! The cluster task's loop and the typed handle through which everything else talks to it.

use std::future::Future;

use baton_common::config::{GcSettings, StorageBackend};
use baton_common::proto::{
    Agent, AgentMessage, Checkpoint, CheckpointRef, CreateExperimentResponse, Experiment, Hello,
    ListAgentsResponse, ListCheckpointsResponse, ListExperimentsResponse, ListTrialsResponse,
    SetGcPolicyResponse, TrialDetail,
};
use tokio::sync::{mpsc, oneshot};

use super::command::{AgentSender, Command, LogSubscription, LogWindow, Reply};
use super::{Cluster, ClusterSettings};
use crate::error::{MasterError, MasterResult};
use crate::metrics::MasterMetrics;
use crate::prepare::PreparedExperiment;
use crate::store::{CheckpointRow, LogRow, Store, ValidationRow};

/// A cheap, cloneable way to send commands to the cluster task.
#[derive(Clone)]
pub struct ClusterHandle {
    commands: mpsc::Sender<Command>,
}

impl ClusterHandle {
    /// A handle whose commands go to the returned receiver, for a cluster driven by hand (tests,
    /// replays of agent messages).
    pub(super) fn detached() -> (Self, mpsc::Receiver<Command>) {
        let (commands, inbox) = mpsc::channel(1024);
        (Self { commands }, inbox)
    }

    /// Sends a command built around a reply channel and waits for the answer.
    async fn ask<R>(&self, command: impl FnOnce(Reply<R>) -> Command) -> MasterResult<R> {
        let (reply, answer) = oneshot::channel();
        self.tell(command(reply)).await?;
        answer.await.map_err(|_| MasterError::ShuttingDown)?
    }

    /// Sends a command that has no answer.
    async fn tell(&self, command: Command) -> MasterResult<()> {
        self.commands
            .send(command)
            .await
            .map_err(|_| MasterError::ShuttingDown)
    }

    /// Records a prepared experiment.
    pub async fn create_experiment(
        &self,
        prepared: PreparedExperiment,
    ) -> MasterResult<CreateExperimentResponse> {
        self.ask(|reply| Command::CreateExperiment {
            prepared: Box::new(prepared),
            reply,
        })
        .await
    }

    /// Every experiment.
    pub async fn list_experiments(&self) -> MasterResult<ListExperimentsResponse> {
        self.ask(Command::ListExperiments).await
    }

    /// One experiment with its trials.
    pub async fn describe_experiment(&self, id: u64) -> MasterResult<Experiment> {
        self.ask(|reply| Command::DescribeExperiment(id, reply))
            .await
    }

    /// Cancels an experiment.
    pub async fn kill_experiment(&self, id: u64) -> MasterResult<Experiment> {
        self.ask(|reply| Command::KillExperiment(id, reply)).await
    }

    /// Starts deleting a terminal experiment.
    pub async fn delete_experiment(&self, id: u64) -> MasterResult<Experiment> {
        self.ask(|reply| Command::DeleteExperiment(id, reply)).await
    }

    /// Pauses an experiment.
    pub async fn pause_experiment(&self, id: u64) -> MasterResult<Experiment> {
        self.ask(|reply| Command::PauseExperiment(id, reply)).await
    }

    /// Activates a paused experiment.
    pub async fn activate_experiment(&self, id: u64) -> MasterResult<Experiment> {
        self.ask(|reply| Command::ActivateExperiment(id, reply))
            .await
    }

    /// An experiment's checkpoints.
    pub async fn list_checkpoints(
        &self,
        experiment_id: u64,
        all: bool,
    ) -> MasterResult<ListCheckpointsResponse> {
        self.ask(|reply| Command::ListCheckpoints {
            experiment_id,
            all,
            reply,
        })
        .await
    }

    /// Previews or applies a GC policy; `while_running` None keeps `gc_while_running` as it is.
    pub async fn set_gc_policy(
        &self,
        experiment_id: u64,
        policy: GcSettings,
        while_running: Option<bool>,
        dry_run: bool,
    ) -> MasterResult<SetGcPolicyResponse> {
        self.ask(|reply| Command::SetGcPolicy {
            experiment_id,
            policy,
            while_running,
            dry_run,
            reply,
        })
        .await
    }

    /// Pins a checkpoint.
    pub async fn pin_checkpoint(&self, uuid: String, note: String) -> MasterResult<Checkpoint> {
        self.ask(|reply| Command::PinCheckpoint { uuid, note, reply })
            .await
    }

    /// Unpins a checkpoint.
    pub async fn unpin_checkpoint(&self, uuid: String) -> MasterResult<Checkpoint> {
        self.ask(|reply| Command::UnpinCheckpoint(uuid, reply))
            .await
    }

    /// An experiment's trials.
    pub async fn list_trials(&self, experiment_id: u64) -> MasterResult<ListTrialsResponse> {
        self.ask(|reply| Command::ListTrials(experiment_id, reply))
            .await
    }

    /// One trial.
    pub async fn describe_trial(&self, id: u64) -> MasterResult<TrialDetail> {
        self.ask(|reply| Command::DescribeTrial(id, reply)).await
    }

    /// A trial's reported metrics by step: training ones, or validations when `training` is false.
    pub async fn trial_metrics(&self, id: u64, training: bool) -> MasterResult<Vec<ValidationRow>> {
        self.ask(|reply| Command::TrialMetrics(id, training, reply))
            .await
    }

    /// The searcher metric's name and the training metrics (validations when `training` is
    /// false) of every trial of an experiment, by trial and step.
    pub async fn experiment_metrics(
        &self,
        id: u64,
        training: bool,
    ) -> MasterResult<(String, Vec<(u64, ValidationRow)>)> {
        self.ask(|reply| Command::ExperimentMetrics(id, training, reply))
            .await
    }

    /// A page of a trial's log lines, oldest first.
    pub async fn log_page(&self, trial_id: u64, window: LogWindow) -> MasterResult<Vec<LogRow>> {
        self.ask(|reply| Command::LogPage(trial_id, window, reply))
            .await
    }

    /// The uuids of the checkpoints an experiment's current GC policy keeps.
    pub async fn gc_kept(&self, experiment_id: u64) -> MasterResult<Vec<String>> {
        self.ask(|reply| Command::GcKept(experiment_id, reply))
            .await
    }

    /// A trial's logs so far and a subscription to new ones.
    pub async fn follow_logs(&self, trial_id: u64) -> MasterResult<LogSubscription> {
        self.ask(|reply| Command::FollowLogs(trial_id, reply)).await
    }

    /// Moves a trial.
    pub async fn move_trial(&self, trial_id: u64, to: Option<String>) -> MasterResult<TrialDetail> {
        self.ask(|reply| Command::MoveTrial {
            trial_id,
            to,
            reply,
        })
        .await
    }

    /// One checkpoint.
    pub async fn describe_checkpoint(&self, reference: CheckpointRef) -> MasterResult<Checkpoint> {
        self.ask(|reply| Command::DescribeCheckpoint(reference, reply))
            .await
    }

    /// A checkpoint's record and storage.
    pub async fn checkpoint_source(
        &self,
        reference: CheckpointRef,
    ) -> MasterResult<(CheckpointRow, StorageBackend)> {
        self.ask(|reply| Command::CheckpointSource(reference, reply))
            .await
    }

    /// Every agent.
    pub async fn list_agents(&self) -> MasterResult<ListAgentsResponse> {
        self.ask(Command::ListAgents).await
    }

    /// Disables an agent.
    pub async fn disable_agent(&self, id: String, drain: bool) -> MasterResult<Agent> {
        self.ask(|reply| Command::DisableAgent { id, drain, reply })
            .await
    }

    /// Enables an agent.
    pub async fn enable_agent(&self, id: String) -> MasterResult<Agent> {
        self.ask(|reply| Command::EnableAgent(id, reply)).await
    }

    /// Registers an agent session; returns its number.
    pub async fn agent_connected(
        &self,
        hello: Hello,
        sender: AgentSender,
        peer: String,
    ) -> MasterResult<u64> {
        self.ask(|reply| Command::AgentConnected {
            hello,
            sender,
            peer,
            reply,
        })
        .await
    }

    /// Hands over a message of an agent session.
    pub async fn agent_report(
        &self,
        agent_id: String,
        session: u64,
        message: AgentMessage,
    ) -> MasterResult<()> {
        self.tell(Command::AgentReport {
            agent_id,
            session,
            message,
        })
        .await
    }

    /// Notes the end of an agent session.
    pub async fn agent_disconnected(&self, agent_id: String, session: u64) -> MasterResult<()> {
        self.tell(Command::AgentDisconnected { agent_id, session })
            .await
    }

    /// Records the outcome of a checkpoint's storage deletion.
    pub async fn deletion_finished(
        &self,
        uuid: String,
        result: Result<(), String>,
    ) -> MasterResult<()> {
        self.tell(Command::DeletionFinished { uuid, result }).await
    }

    /// Hands over the outcome of writing a distributed checkpoint's `metadata.json`.
    pub async fn gang_checkpoint_written(
        &self,
        trial_id: u64,
        allocation_id: String,
        manifest: baton_common::storage::Manifest,
        written: Result<(), String>,
    ) -> MasterResult<()> {
        self.tell(Command::GangCheckpointWritten {
            trial_id,
            allocation_id,
            manifest: Box::new(manifest),
            written,
        })
        .await
    }

    /// Brings the state gauges of the metrics up to date.
    pub async fn refresh_metrics(&self) -> MasterResult<()> {
        self.ask(Command::RefreshMetrics).await
    }

    /// The uuids among `uuids` that no checkpoint record names.
    pub async fn unrecorded(&self, uuids: Vec<String>) -> MasterResult<Vec<String>> {
        self.ask(|reply| Command::Unrecorded(uuids, reply)).await
    }
}

/// Loads the cluster state from `store` and runs its loop until `shutdown` resolves.
pub fn run_cluster(
    store: Store,
    settings: ClusterSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> MasterResult<(ClusterHandle, tokio::task::JoinHandle<()>)> {
    let (commands, mut inbox) = mpsc::channel::<Command>(1024);
    let handle = ClusterHandle { commands };
    let mut cluster = Cluster::load(store, settings.clone(), handle.clone())?;
    let metrics = settings.metrics.clone();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(settings.tick);
        let mut last_pass = std::time::Instant::now();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                command = inbox.recv() => match command {
                    Some(command) => {
                        let mut next = Some(command);
                        while let Some(command) = next.take() {
                            next = apply_queued(&mut cluster, &mut inbox, command, &metrics);
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => cluster.reconcile(),
                _ = &mut shutdown => break,
                // A pass is due (one left placements to the next) and no command waits.
                () = std::future::ready(()), if cluster.needs_schedule && inbox.is_empty() => {}
            }
            // One pass for the changes of the commands queued together, however many.
            let due = inbox.is_empty() || last_pass.elapsed() >= MAX_SCHEDULE_DELAY;
            if cluster.needs_schedule && due {
                last_pass = std::time::Instant::now();
                cluster.schedule_if_needed();
                metrics
                    .schedule_duration
                    .observe(last_pass.elapsed().as_secs_f64());
            }
        }
        tracing::info!("cluster task stopped");
    });
    Ok((handle, task))
}

/// Longest a due scheduling pass waits for the queued commands to be applied first.
const MAX_SCHEDULE_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

/// Most agent reports that share one store commit.
const REPORT_BATCH: usize = 256;

/// Applies `command`; a report that may share a store commit and those like it queued right
/// behind it share one. Returns the queued command that ended such a run, not applied yet.
fn apply_queued(
    cluster: &mut Cluster,
    inbox: &mut mpsc::Receiver<Command>,
    command: Command,
    metrics: &MasterMetrics,
) -> Option<Command> {
    if !command.shares_commit() {
        apply_timed(cluster, command, inbox.len(), metrics);
        return None;
    }
    let batch = cluster.store.begin_batch();
    apply_timed(cluster, command, inbox.len(), metrics);
    let mut left = None;
    for _ in 1..REPORT_BATCH {
        match inbox.try_recv() {
            Ok(next) if next.shares_commit() => {
                apply_timed(cluster, next, inbox.len(), metrics);
            }
            Ok(other) => {
                left = Some(other);
                break;
            }
            Err(_) => break,
        }
    }
    if let Err(e) = batch.and_then(|()| cluster.store.end_batch()) {
        tracing::error!(error = %e, "cannot commit agent reports");
    }
    left
}

/// Applies one command, timing it; `waiting` commands are queued behind it.
fn apply_timed(cluster: &mut Cluster, command: Command, waiting: usize, metrics: &MasterMetrics) {
    metrics.queue_depth.set(waiting as i64);
    let (name, started) = (command.name(), std::time::Instant::now());
    cluster.apply(command);
    metrics
        .command_duration
        .with_label_values(&[name])
        .observe(started.elapsed().as_secs_f64());
}

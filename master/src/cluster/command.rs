//! The typed commands the cluster owner takes, and how it applies each one.

use baton_common::config::{GcSettings, StorageBackend};
use baton_common::proto::{
    Agent, AgentMessage, Checkpoint, CheckpointRef, CreateExperimentResponse, Experiment, Hello,
    ListAgentsResponse, ListCheckpointsResponse, ListExperimentsResponse, ListTrialsResponse,
    MasterMessage, SetGcPolicyResponse, TrialDetail, agent_message::Body,
};
use baton_common::storage::Manifest;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{Cluster, ClusterEvent};
use crate::error::MasterResult;
use crate::prepare::PreparedExperiment;
use crate::store::{CheckpointRow, LogRow, ValidationRow};

/// Where a command's answer goes.
pub type Reply<T> = oneshot::Sender<MasterResult<T>>;

/// Which of a trial's log lines a page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogWindow {
    /// At most `limit` lines after the line `after` (0: from the first).
    After {
        /// The last line the reader has.
        after: u64,
        /// The most lines to return.
        limit: u64,
    },
    /// The last lines.
    Tail(u64),
}

/// What a log follower gets: the stored lines, a subscription, and whether the trial has ended.
pub type LogSubscription = (Vec<LogRow>, broadcast::Receiver<ClusterEvent>, bool);

/// The outbound half of an agent's stream.
pub type AgentSender = mpsc::UnboundedSender<Result<MasterMessage, tonic::Status>>;

/// Everything the cluster owner can be asked to do.
pub enum Command {
    /// Validate and create an experiment with its trials.
    CreateExperiment {
        /// The experiment, parsed and expanded outside the cluster task.
        prepared: Box<PreparedExperiment>,
        /// The new id and warnings.
        reply: Reply<CreateExperimentResponse>,
    },
    /// Every experiment, without trials.
    ListExperiments(Reply<ListExperimentsResponse>),
    /// One experiment with its trials.
    DescribeExperiment(u64, Reply<Experiment>),
    /// Cancel an experiment.
    KillExperiment(u64, Reply<Experiment>),
    /// Delete a terminal experiment: its checkpoints from storage, then its records.
    DeleteExperiment(u64, Reply<Experiment>),
    /// Suspend an experiment's trials and stop scheduling it.
    PauseExperiment(u64, Reply<Experiment>),
    /// Schedule a paused experiment again.
    ActivateExperiment(u64, Reply<Experiment>),
    /// An experiment's checkpoints (DELETED ones too when `all`).
    ListCheckpoints {
        /// The experiment.
        experiment_id: u64,
        /// Include DELETED checkpoints.
        all: bool,
        /// The checkpoints.
        reply: Reply<ListCheckpointsResponse>,
    },
    /// Preview or apply a GC policy.
    SetGcPolicy {
        /// The experiment.
        experiment_id: u64,
        /// The policy.
        policy: GcSettings,
        /// A new `gc_while_running`; None keeps the experiment's.
        while_running: Option<bool>,
        /// Only preview.
        dry_run: bool,
        /// What is kept and deleted.
        reply: Reply<SetGcPolicyResponse>,
    },
    /// Pin a checkpoint with a note.
    PinCheckpoint {
        /// The checkpoint.
        uuid: String,
        /// Why it is pinned.
        note: String,
        /// The checkpoint afterwards.
        reply: Reply<Checkpoint>,
    },
    /// Unpin a checkpoint.
    UnpinCheckpoint(String, Reply<Checkpoint>),
    /// An experiment's trials.
    ListTrials(u64, Reply<ListTrialsResponse>),
    /// One trial with its allocations and validations.
    DescribeTrial(u64, Reply<TrialDetail>),
    /// A trial's reported metrics by step: training ones, or validations when false.
    TrialMetrics(u64, bool, Reply<Vec<ValidationRow>>),
    /// The searcher metric and the training metrics (validations when false) of every trial of
    /// an experiment.
    ExperimentMetrics(u64, bool, Reply<(String, Vec<(u64, ValidationRow)>)>),
    /// A page of a trial's log lines.
    LogPage(u64, LogWindow, Reply<Vec<LogRow>>),
    /// The checkpoints an experiment's current GC policy keeps.
    GcKept(u64, Reply<Vec<String>>),
    /// A trial's stored log lines and a subscription to new ones.
    FollowLogs(u64, Reply<LogSubscription>),
    /// Checkpoint a running trial and resume it elsewhere (or on the named agent).
    MoveTrial {
        /// The trial.
        trial_id: u64,
        /// The agent to move to, if named.
        to: Option<String>,
        /// The trial afterwards.
        reply: Reply<TrialDetail>,
    },
    /// One checkpoint.
    DescribeCheckpoint(CheckpointRef, Reply<Checkpoint>),
    /// A checkpoint's record and its storage, for streaming it.
    CheckpointSource(CheckpointRef, Reply<(CheckpointRow, StorageBackend)>),
    /// Every agent.
    ListAgents(Reply<ListAgentsResponse>),
    /// Stop new work on an agent (suspending its trials unless draining).
    DisableAgent {
        /// The agent.
        id: String,
        /// Let running trials finish.
        drain: bool,
        /// The agent afterwards.
        reply: Reply<Agent>,
    },
    /// Let an agent take work again.
    EnableAgent(String, Reply<Agent>),
    /// An agent opened a session.
    AgentConnected {
        /// Its hello.
        hello: Hello,
        /// Its stream.
        sender: AgentSender,
        /// Its network address.
        peer: String,
        /// The session number.
        reply: Reply<u64>,
    },
    /// A message on an agent's session.
    AgentReport {
        /// The agent.
        agent_id: String,
        /// Its session.
        session: u64,
        /// The message.
        message: AgentMessage,
    },
    /// An agent's session ended.
    AgentDisconnected {
        /// The agent.
        agent_id: String,
        /// The session that ended.
        session: u64,
    },
    /// A checkpoint's storage deletion finished (or failed).
    DeletionFinished {
        /// The checkpoint.
        uuid: String,
        /// What the storage said.
        result: Result<(), String>,
    },
    /// Which of these checkpoint uuids the master has no record of.
    Unrecorded(Vec<String>, Reply<Vec<String>>),
    /// Bring the state gauges of the metrics up to date.
    RefreshMetrics(Reply<()>),
    /// The `metadata.json` of a distributed trial's checkpoint was written (or not).
    GangCheckpointWritten {
        /// The trial.
        trial_id: u64,
        /// The allocation whose parts wrote it.
        allocation_id: String,
        /// What was written.
        manifest: Box<Manifest>,
        /// What the storage said.
        written: Result<(), String>,
    },
}

impl Command {
    /// The command's name, as the `command` label of the latency metric.
    pub fn name(&self) -> &'static str {
        match self {
            Command::CreateExperiment { .. } => "create_experiment",
            Command::ListExperiments(_) => "list_experiments",
            Command::DescribeExperiment(..) => "describe_experiment",
            Command::KillExperiment(..) => "kill_experiment",
            Command::DeleteExperiment(..) => "delete_experiment",
            Command::PauseExperiment(..) => "pause_experiment",
            Command::ActivateExperiment(..) => "activate_experiment",
            Command::ListCheckpoints { .. } => "list_checkpoints",
            Command::SetGcPolicy { .. } => "set_gc_policy",
            Command::PinCheckpoint { .. } => "pin_checkpoint",
            Command::UnpinCheckpoint(..) => "unpin_checkpoint",
            Command::ListTrials(..) => "list_trials",
            Command::DescribeTrial(..) => "describe_trial",
            Command::TrialMetrics(..) => "trial_metrics",
            Command::ExperimentMetrics(..) => "experiment_metrics",
            Command::LogPage(..) => "log_page",
            Command::GcKept(..) => "gc_kept",
            Command::FollowLogs(..) => "follow_logs",
            Command::MoveTrial { .. } => "move_trial",
            Command::DescribeCheckpoint(..) => "describe_checkpoint",
            Command::CheckpointSource(..) => "checkpoint_source",
            Command::ListAgents(_) => "list_agents",
            Command::DisableAgent { .. } => "disable_agent",
            Command::EnableAgent(..) => "enable_agent",
            Command::AgentConnected { .. } => "agent_connected",
            Command::AgentReport { .. } => "agent_report",
            Command::AgentDisconnected { .. } => "agent_disconnected",
            Command::DeletionFinished { .. } => "deletion_finished",
            Command::Unrecorded(..) => "unrecorded",
            Command::RefreshMetrics(_) => "refresh_metrics",
            Command::GangCheckpointWritten { .. } => "gang_checkpoint_written",
        }
    }

    /// Whether the command is an agent report that only records rows of its own trial (training
    /// or validation metrics, its step, that it started): nothing else waits on those writes and
    /// the agent replays the report after a master restart, so such reports may share a commit.
    pub fn shares_commit(&self) -> bool {
        matches!(
            self,
            Command::AgentReport {
                message: AgentMessage {
                    body: Some(
                        Body::Training(_) | Body::Validation(_) | Body::AllocationStarted(_)
                    )
                },
                ..
            }
        )
    }
}

impl Cluster {
    /// Applies one command; answers go to its reply channel (a caller gone is not an error).
    pub fn apply(&mut self, command: Command) {
        match command {
            Command::CreateExperiment { prepared, reply } => {
                let created = self.create_experiment(*prepared).map(|id| {
                    let warnings = self.placement_warnings(id);
                    CreateExperimentResponse { id, warnings }
                });
                let _ = reply.send(created);
            }
            Command::ListExperiments(reply) => {
                let experiments = self.list_experiments();
                let _ = reply.send(Ok(ListExperimentsResponse { experiments }));
            }
            Command::DescribeExperiment(id, reply) => {
                let _ = reply.send(self.experiment_view(id, true));
            }
            Command::KillExperiment(id, reply) => {
                let _ = reply.send(
                    self.kill_experiment(id)
                        .and_then(|()| self.experiment_view(id, true)),
                );
            }
            Command::DeleteExperiment(id, reply) => {
                let _ = reply.send(self.delete_experiment(id));
            }
            Command::PauseExperiment(id, reply) => {
                let _ = reply.send(
                    self.pause_experiment(id)
                        .and_then(|()| self.experiment_view(id, true)),
                );
            }
            Command::ActivateExperiment(id, reply) => {
                let _ = reply.send(
                    self.activate_experiment(id)
                        .and_then(|()| self.experiment_view(id, true)),
                );
            }
            Command::ListCheckpoints {
                experiment_id,
                all,
                reply,
            } => {
                let listed = self.experiment_checkpoints(experiment_id, all).map(|rows| {
                    let checkpoints = rows
                        .into_iter()
                        .map(|(row, metric)| self.checkpoint_view(row, metric))
                        .collect();
                    ListCheckpointsResponse { checkpoints }
                });
                let _ = reply.send(listed);
            }
            Command::SetGcPolicy {
                experiment_id,
                policy,
                while_running,
                dry_run,
                reply,
            } => {
                let answer = self.gc_policy_reply(experiment_id, policy, while_running, dry_run);
                let _ = reply.send(answer);
            }
            Command::PinCheckpoint { uuid, note, reply } => {
                let _ = reply.send(self.pin_checkpoint(&uuid, &note));
            }
            Command::UnpinCheckpoint(uuid, reply) => {
                let _ = reply.send(self.unpin_checkpoint(&uuid));
            }
            Command::ListTrials(id, reply) => {
                let listed = self.experiment_view(id, false).map(|_| ListTrialsResponse {
                    trials: self.trials_of(id),
                });
                let _ = reply.send(listed);
            }
            Command::DescribeTrial(id, reply) => {
                let _ = reply.send(self.trial_detail(id));
            }
            Command::TrialMetrics(id, training, reply) => {
                let _ = reply.send(self.trial_metrics(id, training));
            }
            Command::ExperimentMetrics(id, training, reply) => {
                let _ = reply.send(self.experiment_metrics(id, training));
            }
            Command::LogPage(id, window, reply) => {
                let _ = reply.send(self.log_page(id, window));
            }
            Command::GcKept(id, reply) => {
                let _ = reply.send(self.gc_kept(id));
            }
            Command::FollowLogs(id, reply) => {
                let _ = reply.send(self.trial_logs(id));
            }
            Command::MoveTrial {
                trial_id,
                to,
                reply,
            } => {
                let _ = reply.send(
                    self.move_trial(trial_id, to)
                        .and_then(|()| self.trial_detail(trial_id)),
                );
            }
            Command::DescribeCheckpoint(reference, reply) => {
                let described = self
                    .find_checkpoint(&reference)
                    .map(|(row, metric)| self.checkpoint_view(row, metric));
                let _ = reply.send(described);
            }
            Command::CheckpointSource(reference, reply) => {
                let source = self.find_checkpoint(&reference).and_then(|(row, _)| {
                    let backend = self.storage_backend(row.experiment_id)?;
                    Ok((row, backend))
                });
                let _ = reply.send(source);
            }
            Command::ListAgents(reply) => {
                let agents = self.list_agents();
                let _ = reply.send(Ok(ListAgentsResponse {
                    agents,
                    warning: String::new(),
                }));
            }
            Command::DisableAgent { id, drain, reply } => {
                let _ = reply.send(
                    self.disable_agent(&id, drain)
                        .map(|()| self.agent_view(&id)),
                );
            }
            Command::EnableAgent(id, reply) => {
                let _ = reply.send(self.enable_agent(&id).map(|()| self.agent_view(&id)));
            }
            Command::AgentConnected {
                hello,
                sender,
                peer,
                reply,
            } => {
                let _ = reply.send(self.agent_connected(hello, sender, &peer));
            }
            Command::AgentReport {
                agent_id,
                session,
                message,
            } => self.agent_message(&agent_id, session, message),
            Command::AgentDisconnected { agent_id, session } => {
                self.agent_disconnected(&agent_id, session)
            }
            Command::DeletionFinished { uuid, result } => self.deletion_finished(&uuid, result),
            Command::Unrecorded(uuids, reply) => {
                let _ = reply.send(self.unrecorded(uuids));
            }
            Command::RefreshMetrics(reply) => {
                self.refresh_metrics();
                let _ = reply.send(Ok(()));
            }
            Command::GangCheckpointWritten {
                trial_id,
                allocation_id,
                manifest,
                written,
            } => self.gang_checkpoint_written(trial_id, &allocation_id, *manifest, written),
        }
    }
}

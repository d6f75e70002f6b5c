//! The in-memory cluster state, loaded from the store at start and written through on change.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_common::config::{ExperimentConfig, GcSettings};
use baton_common::proto::{MasterMessage, Slot};
use tokio::sync::{broadcast, mpsc};

use super::ClusterHandle;
use super::clock::{Clock, SystemClock};
use super::desired::{Deadlines, Desired, SentAt};
use super::gangs::Gang;
use super::metric_summary::MetricSummary;
use super::search::Search;
use super::storage_use::StorageUse;
use super::sweep::SweepState;
use crate::auth::AgentTokens;
use crate::error::{MasterError, MasterResult};
use crate::metrics::MasterMetrics;
use crate::states::TrialState;
use crate::store::{AllocationRow, ExperimentRow, LogRow, Store, TrialRow};

/// Timing knobs of the cluster task.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// How often the state is reconciled (heartbeat deadlines, timeouts).
    pub tick: Duration,
    /// How often agents heartbeat.
    pub heartbeat_interval: Duration,
    /// An agent silent for this long is lost and its trials restart elsewhere.
    pub agent_timeout: Duration,
    /// How often checkpoint storage is swept for incomplete uploads and failed deletions retried.
    pub sweep_interval: Duration,
    /// An uncommitted checkpoint directory unchanged for this long is an abandoned upload.
    pub upload_grace: Duration,
    /// Tokens agents must present to join.
    pub agent_tokens: AgentTokens,
    /// Pacing and deadlines of suspends, kills and starts.
    pub deadlines: Deadlines,
    /// Where the cluster's Prometheus metrics are kept.
    pub metrics: Arc<MasterMetrics>,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(250),
            heartbeat_interval: Duration::from_secs(2),
            agent_timeout: Duration::from_secs(15),
            sweep_interval: Duration::from_secs(600),
            upload_grace: Duration::from_secs(3600),
            agent_tokens: AgentTokens::default(),
            deadlines: Deadlines {
                resend_interval: Duration::from_secs(2),
                stop_grace: Duration::from_secs(30),
                start_timeout: Duration::from_secs(900),
            },
            metrics: Arc::new(MasterMetrics::new()),
        }
    }
}

/// Something watchers (log followers) may want to see.
#[derive(Debug, Clone)]
pub enum ClusterEvent {
    /// New log lines were stored.
    Log(LogRow),
    /// A trial reached a terminal state.
    TrialEnded(u64),
}

/// Operator-set scheduling state of an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentMode {
    /// Takes new work.
    Enabled,
    /// Takes no new work; its trials were suspended.
    Disabled,
    /// Takes no new work; its trials run to completion.
    Draining,
}

impl AgentMode {
    /// The name shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentMode::Enabled => "enabled",
            AgentMode::Disabled => "disabled",
            AgentMode::Draining => "draining",
        }
    }

    /// Parses a stored name; an unknown name is an error, never a default.
    pub fn parse(name: &str) -> MasterResult<Self> {
        match name {
            "enabled" => Ok(AgentMode::Enabled),
            "disabled" => Ok(AgentMode::Disabled),
            "draining" => Ok(AgentMode::Draining),
            other => Err(MasterError::Internal(format!(
                "unknown agent state {other:?} in the database (expected enabled, disabled or draining)"
            ))),
        }
    }
}

/// The live stream to a connected agent.
pub struct AgentLink {
    /// Distinguishes successive connections of the same agent.
    pub session: u64,
    /// Commands to the agent.
    pub sender: mpsc::UnboundedSender<Result<MasterMessage, tonic::Status>>,
    /// Messages sent on this session so far.
    pub sent: u64,
    /// The agent daemon's instance (its work directory).
    pub instance: String,
    /// Its network address.
    pub peer: String,
}

/// An agent known to the master.
pub struct AgentEntry {
    /// Agent id.
    pub id: String,
    /// Operator-set mode.
    pub mode: AgentMode,
    /// Its slots.
    pub slots: Vec<Slot>,
    /// The daemon's release, from its latest hello ("" until it connects).
    pub version: String,
    /// Where other agents reach it (its advertised address, or where the master sees it from).
    pub address: String,
    /// The stream, while connected.
    pub link: Option<AgentLink>,
    /// Last message from it.
    pub last_seen: Instant,
    /// Current allocations on it.
    pub allocations: BTreeSet<String>,
}

/// An experiment with its parsed config.
pub struct ExperimentEntry {
    /// The stored record.
    pub row: ExperimentRow,
    /// The parsed config.
    pub config: ExperimentConfig,
    /// The GC policy in force.
    pub gc: GcSettings,
    /// What its checkpoints take in storage.
    pub storage: StorageUse,
    /// Its adaptive search (`adaptive_asha`), which creates trials as results arrive.
    pub search: Option<Search>,
}

/// A trial with its scheduling hints.
pub struct TrialEntry {
    /// The stored record.
    pub row: TrialRow,
    /// Its current allocation.
    pub allocation: Option<String>,
    /// Next placement must be on this agent.
    pub target_agent: Option<String>,
    /// Next placement must not be on this agent.
    pub avoid_agent: Option<String>,
    /// After a failure, the trial waits until then (restart backoff).
    pub not_before: Option<Instant>,
    /// When the master asked the trial's last allocation to suspend so it can run elsewhere;
    /// cleared by the first step of the next allocation (the move's duration).
    pub moving_since: Option<Instant>,
    /// Its best and latest validations of the searcher metric.
    pub metrics: MetricSummary,
}

impl TrialEntry {
    /// A trial without allocation or scheduling hints.
    pub fn new(row: TrialRow) -> Self {
        Self {
            row,
            allocation: None,
            target_agent: None,
            avoid_agent: None,
            not_before: None,
            moving_since: None,
            metrics: MetricSummary::default(),
        }
    }
}

/// Why the master asked an allocation to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Its agent was disabled.
    Disabled,
    /// A more important trial needs its slots.
    Preempted,
    /// Its experiment was paused.
    Paused,
    /// An operator moved it.
    Moved,
}

impl StopReason {
    /// Every reason.
    pub const ALL: [StopReason; 4] = [
        StopReason::Disabled,
        StopReason::Preempted,
        StopReason::Paused,
        StopReason::Moved,
    ];

    /// The allocation exit reason this stop leads to.
    pub fn exit_reason(self) -> &'static str {
        match self {
            StopReason::Disabled => "suspended-by-disable",
            StopReason::Preempted => "preempted",
            StopReason::Paused => "paused",
            StopReason::Moved => "moved",
        }
    }

    /// Short name, as stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            StopReason::Disabled => "disabled",
            StopReason::Preempted => "preempted",
            StopReason::Paused => "paused",
            StopReason::Moved => "moved",
        }
    }

    /// The reason of a short name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// A current allocation.
pub struct LiveAllocation {
    /// The stored record.
    pub row: AllocationRow,
    /// What the master wants of it.
    pub desired: Desired,
    /// When the master started wanting it.
    pub desired_since: Instant,
    /// When a suspend or kill was last sent, and how many times.
    pub last_sent: Option<Instant>,
    /// How many times the desired suspend or kill was sent.
    pub sends: u32,
    /// Where its start was sent.
    pub start_sent: Option<SentAt>,
    /// Whether the agent reported the trial process started.
    pub started: bool,
    /// When it was created, or loaded by this master process.
    pub created: Instant,
    /// The phase the agent last reported.
    pub phase: Option<baton_common::proto::AllocationPhase>,
    /// A part whose start waits for its chief's rendezvous: its agent is not expected to run it.
    pub held: bool,
    /// Its numbered log lines stored so far; loaded from the store on first use.
    pub log_seqs: Option<super::log_seqs::LogSeqs>,
}

impl LiveAllocation {
    /// A new allocation, or one loaded after a master restart, with its stored desired state.
    pub fn new(row: AllocationRow, started: bool, now: Instant) -> MasterResult<Self> {
        let desired = Desired::parse_stored(&row.desired).map_err(|e| {
            MasterError::Internal(format!("allocation {} in the database: {e}", row.id))
        })?;
        Ok(Self {
            row,
            desired,
            desired_since: now,
            last_sent: None,
            sends: 0,
            start_sent: None,
            started,
            created: now,
            phase: None,
            held: false,
            log_seqs: None,
        })
    }
}

/// The cluster state, owned by one task.
pub struct Cluster {
    pub(super) store: Store,
    pub(super) settings: ClusterSettings,
    pub(super) handle: ClusterHandle,
    pub(super) agents: BTreeMap<String, AgentEntry>,
    pub(super) experiments: BTreeMap<u64, ExperimentEntry>,
    pub(super) trials: BTreeMap<u64, TrialEntry>,
    pub(super) allocations: HashMap<String, LiveAllocation>,
    pub(super) events: broadcast::Sender<ClusterEvent>,
    pub(super) next_session: u64,
    pub(super) needs_schedule: bool,
    pub(super) clock: Arc<dyn Clock>,
    /// When a refused agent was last logged, per peer (at most once a minute).
    pub(super) refusals_logged: HashMap<String, Instant>,
    /// Why each queued trial was not placed in the last scheduling pass.
    pub(super) waiting: HashMap<u64, String>,
    pub(super) sweep: SweepState,
    /// Checkpoints whose storage deletion is running now.
    pub(super) deletions_in_flight: std::collections::HashSet<String>,
    /// Allocations spanning several agents, by allocation id.
    pub(super) gangs: HashMap<String, Gang>,
    /// Experiments whose checkpoints collection while running looks at on the next tick.
    pub(super) gc_due: BTreeSet<u64>,
}

impl Cluster {
    /// Loads experiments, trials and open allocations from the store, on the system clock.
    pub fn load(
        store: Store,
        settings: ClusterSettings,
        handle: ClusterHandle,
    ) -> MasterResult<Self> {
        Self::load_with_clock(store, settings, handle, Arc::new(SystemClock))
    }

    /// Loads the cluster state, reading the time from `clock`.
    pub fn load_with_clock(
        store: Store,
        settings: ClusterSettings,
        handle: ClusterHandle,
        clock: Arc<dyn Clock>,
    ) -> MasterResult<Self> {
        let now = clock.now();
        let experiments = Self::load_experiments(&store)?;
        let mut trials: BTreeMap<u64, TrialEntry> = store
            .list_trials()?
            .into_iter()
            .map(|row| (row.id, TrialEntry::new(row)))
            .collect();
        let mut agents = BTreeMap::new();
        for (id, mode) in store.agent_states()? {
            agents.insert(
                id.clone(),
                AgentEntry::new(id, AgentMode::parse(&mode)?, now),
            );
        }
        let mut allocations = HashMap::new();
        let mut gangs: HashMap<String, Gang> = HashMap::new();
        for row in store.open_allocations()? {
            let mut started = false;
            let shown = if row.gang.is_empty() {
                row.id.clone()
            } else {
                let gang = gangs.entry(row.gang.clone()).or_default();
                gang.parts
                    .resize(row.part_count.max(1) as usize, String::new());
                if let Some(slot) = gang.parts.get_mut(row.part_index as usize) {
                    *slot = row.id.clone();
                }
                row.gang.clone()
            };
            if let Some(trial) = trials.get_mut(&row.trial_id) {
                trial.allocation = Some(shown);
                started = trial.row.state != TrialState::Starting;
            }
            agents
                .entry(row.agent_id.clone())
                .or_insert_with(|| AgentEntry::new(row.agent_id.clone(), AgentMode::Enabled, now))
                .allocations
                .insert(row.id.clone());
            allocations.insert(row.id.clone(), LiveAllocation::new(row, started, now)?);
        }
        let (events, _) = broadcast::channel(4096);
        let sweep = SweepState::new(now, settings.sweep_interval);
        let mut cluster = Self {
            store,
            settings,
            handle,
            agents,
            experiments,
            trials,
            allocations,
            events,
            next_session: 0,
            needs_schedule: true,
            clock,
            waiting: HashMap::new(),
            refusals_logged: HashMap::new(),
            deletions_in_flight: Default::default(),
            gangs,
            sweep,
            gc_due: BTreeSet::new(),
        };
        cluster.load_metric_summaries()?;
        cluster.resume_searches();
        cluster.resume_deletions();
        cluster.resume_experiment_deletions();
        // Commits recorded before the restart may not have been collected yet.
        let ids: Vec<u64> = cluster.experiments.keys().copied().collect();
        ids.into_iter().for_each(|id| cluster.mark_gc_due(id));
        Ok(cluster)
    }

    /// Periodic reconciliation: lost agents, unconfirmed commands and deadlines, pending work, the
    /// storage sweep when due.
    pub fn reconcile(&mut self) {
        self.expire_agents();
        let now = self.now();
        self.reconcile_allocations(now);
        self.sweep_if_due(now);
        self.collect_due_garbage();
        self.needs_schedule = true;
    }

    /// The cluster's current time.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Subscribes to cluster events.
    pub fn subscribe(&self) -> broadcast::Receiver<ClusterEvent> {
        self.events.subscribe()
    }
}

impl AgentEntry {
    /// A known agent that is not connected.
    pub fn new(id: String, mode: AgentMode, last_seen: Instant) -> Self {
        Self {
            id,
            mode,
            slots: Vec::new(),
            version: String::new(),
            address: String::new(),
            link: None,
            last_seen,
            allocations: BTreeSet::new(),
        }
    }

    /// Sends a command if connected and says where it went; a lost command is healed by
    /// reconciliation.
    pub fn send(&mut self, message: MasterMessage) -> Option<SentAt> {
        let link = self.link.as_mut()?;
        link.sender.send(Ok(message)).ok()?;
        link.sent += 1;
        Some(SentAt {
            session: link.session,
            seq: link.sent,
        })
    }
}

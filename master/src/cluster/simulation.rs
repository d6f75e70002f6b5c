//! The cluster in one process: the real cluster state machine on a manual clock, driven by
//! simulated agents that speak the agent protocol over links a test can delay, cut and heal.
//!
//! A simulated agent behaves as `baton-agent` does: it starts, suspends and kills allocations on
//! the master's word (repeats are no-ops), reports each step, checkpoint and exit in order, lists
//! its allocations in each heartbeat, replays undelivered reports after reconnecting, keeps its
//! trials through a daemon restart, and fences itself (suspend, then kill) when the master has
//! been silent too long. A trial's state is a hash chain over its steps, so a trial that resumes
//! from the right checkpoint ends in exactly the state of an undisturbed run.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use baton_common::proto::{
    AgentMessage, AllocationExited, AllocationPhase, AllocationStarted, AllocationStatus,
    CheckpointCompleted, ExitKind, Heartbeat, Hello, MasterMessage, Slot, TrainingReport,
    ValidationReport, agent_message::Body, master_message,
};
use tokio::sync::mpsc;

use super::clock::{Clock, ManualClock};
use super::state::Cluster;

/// One simulated tick; trials take one step per tick.
pub const TICK: Duration = Duration::from_millis(250);
/// Agents heartbeat this often.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// The simulated agents' fence window.
const FENCE_WINDOW: Duration = Duration::from_secs(2);
/// The master's agent timeout in the simulation.
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(4);
/// Trials' length in steps.
pub const MAX_LENGTH: u64 = 40;
/// Trials checkpoint every this many steps.
const CHECKPOINT_PERIOD: u64 = 10;

/// The state an undisturbed run of `trial` reaches after `step` steps.
pub fn chained_state(trial: u64, step: u64) -> u64 {
    (1..=step).fold(trial, mix)
}

/// The loss a trial in `state` validates with: a function of the state alone, so a trial that
/// resumed from the right checkpoint reports what an undisturbed run reports.
pub fn validation_loss(state: u64) -> f64 {
    (state % 1000) as f64 / 1000.0
}

fn mix(state: u64, step: u64) -> u64 {
    (state ^ step)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17)
}

/// A committed checkpoint in the simulated storage.
#[derive(Debug, Clone, Copy)]
pub struct SimCheckpoint {
    /// Its trial.
    pub trial: u64,
    /// Its step.
    pub step: u64,
    /// The trial's state at that step.
    pub state: u64,
}

/// A trial process on a simulated agent.
#[derive(Debug, Clone)]
pub struct SimTrial {
    /// Its allocation.
    pub allocation: String,
    /// Its trial.
    pub trial: u64,
    step: u64,
    /// The step it completes at (its start's `max_length`).
    max_length: u64,
    state: u64,
    suspend: bool,
    started_reported: bool,
    exit: Option<ExitKind>,
    fenced: u8,
}

/// The live stream of one agent session.
struct Link {
    session: u64,
    inbox: mpsc::UnboundedReceiver<Result<MasterMessage, tonic::Status>>,
    received: u64,
}

/// A simulated agent daemon and its trials.
pub struct SimAgent {
    /// Agent id.
    pub id: String,
    link: Option<Link>,
    /// Whether its network works.
    pub up: bool,
    /// Ticks during which it reads nothing from the master (a slow link).
    pub delayed: u32,
    /// Its trial processes by allocation id.
    pub running: BTreeMap<String, SimTrial>,
    unsent: VecDeque<AgentMessage>,
    ended: Vec<String>,
    last_contact: Instant,
    next_beat: Instant,
}

/// A runtime for the tasks the cluster spawns (storage deletions); they never run here, so a
/// deletion stays DELETING until a test finishes it.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

/// The cluster and its simulated agents.
pub struct World {
    /// The real cluster state machine.
    pub cluster: Cluster,
    /// Its clock.
    pub clock: ManualClock,
    /// The agents.
    pub agents: Vec<SimAgent>,
    /// Committed checkpoints by uuid.
    pub storage: HashMap<String, SimCheckpoint>,
    next_uuid: u64,
    _commands: mpsc::Receiver<super::Command>,
    /// The directory of the master's database file, when it survives a master restart.
    database: Option<tempfile::TempDir>,
}

impl World {
    /// A cluster with `agents` one-slot agents, all connected, its state in memory.
    pub fn new(agents: usize) -> Self {
        Self::start(agents, None)
    }

    /// A cluster whose master keeps its state in a database file, so that it can restart.
    pub fn on_disk(agents: usize) -> Self {
        Self::start(
            agents,
            Some(tempfile::tempdir().expect("temporary directory")),
        )
    }

    fn start(agents: usize, database: Option<tempfile::TempDir>) -> Self {
        let clock = ManualClock::new();
        let (cluster, commands) = setup::load(&clock, database.as_ref());
        let now = clock.now();
        let mut world = Self {
            cluster,
            clock,
            agents: (0..agents)
                .map(|i| SimAgent {
                    id: format!("agent-{i}"),
                    link: None,
                    up: true,
                    delayed: 0,
                    running: BTreeMap::new(),
                    unsent: VecDeque::new(),
                    ended: Vec::new(),
                    last_contact: now,
                    next_beat: now,
                })
                .collect(),
            storage: HashMap::new(),
            next_uuid: 0,
            _commands: commands,
            database,
        };
        for index in 0..agents {
            world.connect(index);
        }
        world
    }

    /// Replaces the master by a new one loaded from its database file; the agents keep their
    /// trials and reconnect.
    pub fn restart_master(&mut self) {
        let (cluster, commands) = setup::load(&self.clock, self.database.as_ref());
        self.cluster = cluster;
        self._commands = commands;
        for index in 0..self.agents.len() {
            self.agents[index].link = None;
            self.connect(index);
        }
    }

    /// Ticks until `done` holds; fails naming `what` after `limit` ticks.
    pub fn tick_until(&mut self, limit: u32, what: &str, done: impl Fn(&World) -> bool) {
        for _ in 0..limit {
            if done(self) {
                return;
            }
            self.tick();
        }
        panic!("{what} did not happen in {limit} ticks");
    }

    /// Advances the world by one tick.
    pub fn tick(&mut self) {
        self.clock.advance(TICK);
        for index in 0..self.agents.len() {
            self.run_agent(index);
        }
        self.cluster.reconcile();
        self.cluster.schedule_if_needed();
    }

    /// Cuts an agent's network; when `noticed`, the master sees its stream end at once.
    pub fn cut(&mut self, index: usize, noticed: bool) {
        let agent = &mut self.agents[index];
        agent.up = false;
        if noticed && let Some(link) = agent.link.take() {
            self.cluster.agent_disconnected(&agent.id, link.session);
        }
    }

    /// Restores an agent's network; it reconnects with a new session.
    pub fn heal(&mut self, index: usize) {
        self.agents[index].up = true;
        self.agents[index].delayed = 0;
        let stale = self.agents[index].link.take();
        if let Some(link) = stale {
            self.cluster
                .agent_disconnected(&self.agents[index].id, link.session);
        }
        self.connect(index);
    }

    /// Restarts an agent daemon: its trials run on; what it had not sent is lost, except the
    /// checkpoint reports and the latest validation (a trial's only one here) it keeps on disk.
    pub fn restart_agent(&mut self, index: usize) {
        let agent = &mut self.agents[index];
        if let Some(link) = agent.link.take() {
            self.cluster.agent_disconnected(&agent.id, link.session);
        }
        agent.unsent.retain(|m| {
            matches!(
                m.body,
                Some(
                    Body::Validation(_) | Body::CheckpointCompleted(_) | Body::AllocationExited(_)
                )
            )
        });
        agent.ended.clear();
        // The new daemon reports each adopted trial started, as `baton-agent` does.
        for trial in agent.running.values_mut() {
            trial.started_reported = false;
        }
        if agent.up {
            self.connect(index);
        }
    }

    /// Makes the first running trial of an agent exit with a failure.
    pub fn crash_trial(&mut self, index: usize) {
        if let Some(trial) = self.agents[index]
            .running
            .values_mut()
            .find(|t| t.exit.is_none())
        {
            trial.exit = Some(ExitKind::Failed);
        }
    }

    /// Trial processes that run (have not exited) on any agent, with their agent index.
    pub fn live_trials(&self) -> Vec<(usize, &SimTrial)> {
        self.agents
            .iter()
            .enumerate()
            .flat_map(|(i, a)| a.running.values().map(move |t| (i, t)))
            .filter(|(_, t)| t.exit.is_none())
            .collect()
    }

    fn connect(&mut self, index: usize) {
        let agent = &mut self.agents[index];
        if !agent.up {
            return;
        }
        agent
            .unsent
            .retain(|m| !matches!(m.body, Some(Body::Heartbeat(_))));
        let mut allocations: Vec<AllocationStatus> = agent
            .running
            .values()
            .map(|t| status(t, t.exit.is_some()))
            .collect();
        for message in &agent.unsent {
            if let Some(Body::AllocationExited(exited)) = &message.body
                && !allocations
                    .iter()
                    .any(|s| s.allocation_id == exited.allocation_id)
            {
                allocations.push(AllocationStatus {
                    allocation_id: exited.allocation_id.clone(),
                    phase: AllocationPhase::Exiting as i32,
                    last_step: 0,
                });
            }
        }
        let hello = Hello {
            protocol_version: baton_common::proto::PROTOCOL_VERSION,
            agent_id: agent.id.clone(),
            slots: vec![Slot {
                id: "cpu0".into(),
                kind: "cpu".into(),
                name: "cpu".into(),
            }],
            token: String::new(),
            allocations,
            instance_id: agent.id.clone(),
            ..Default::default()
        };
        let (sender, inbox) = mpsc::unbounded_channel();
        let session = self
            .cluster
            .agent_connected(hello, sender, "simulated")
            .expect("the agent is accepted");
        let agent = &mut self.agents[index];
        agent.link = Some(Link {
            session,
            inbox,
            received: 0,
        });
        agent.last_contact = self.clock.now();
    }

    fn run_agent(&mut self, index: usize) {
        let now = self.clock.now();
        let agent = &self.agents[index];
        // An agent that hears nothing from the master drops its session and connects again.
        if agent.up && now.saturating_duration_since(agent.last_contact) >= FENCE_WINDOW {
            self.fence(index, now);
            self.heal(index);
        }
        self.read_commands(index, now);
        self.step_trials(index);
        self.fence(index, now);
        let agent = &mut self.agents[index];
        if now >= agent.next_beat {
            agent.next_beat = now + HEARTBEAT;
            let allocations = agent.running.values().map(|t| status(t, false)).collect();
            let received = agent.link.as_ref().map_or(0, |l| l.received);
            agent.unsent.push_back(AgentMessage {
                body: Some(Body::Heartbeat(Heartbeat {
                    allocations,
                    commands_received: received,
                })),
            });
        }
        self.deliver(index);
    }

    fn read_commands(&mut self, index: usize, now: Instant) {
        let agent = &mut self.agents[index];
        if !agent.up {
            return;
        }
        if agent.delayed > 0 {
            agent.delayed -= 1;
            return;
        }
        let Some(link) = agent.link.as_mut() else {
            return;
        };
        let mut messages = Vec::new();
        while let Ok(Ok(message)) = link.inbox.try_recv() {
            link.received += 1;
            messages.push(message);
        }
        if !messages.is_empty() {
            agent.last_contact = now;
        }
        for message in messages {
            self.handle(index, message);
        }
    }

    fn handle(&mut self, index: usize, message: MasterMessage) {
        let agent = &mut self.agents[index];
        match message.body {
            Some(master_message::Body::Start(start)) => {
                if agent.running.contains_key(&start.allocation_id)
                    || agent.ended.contains(&start.allocation_id)
                {
                    return;
                }
                let (step, state) = if start.latest_checkpoint_uuid.is_empty() {
                    (0, start.trial_id)
                } else {
                    let checkpoint = self.storage[&start.latest_checkpoint_uuid];
                    assert_eq!(
                        (checkpoint.trial, checkpoint.step),
                        (start.trial_id, start.latest_checkpoint_step),
                        "the master resumes a trial from its own checkpoint, at its step"
                    );
                    (checkpoint.step, checkpoint.state)
                };
                agent.running.insert(
                    start.allocation_id.clone(),
                    SimTrial {
                        allocation: start.allocation_id,
                        trial: start.trial_id,
                        step,
                        max_length: start.policy.map_or(MAX_LENGTH, |p| p.max_length),
                        state,
                        suspend: false,
                        started_reported: false,
                        exit: None,
                        fenced: 0,
                    },
                );
            }
            Some(master_message::Body::Suspend(suspend)) => {
                if let Some(trial) = agent.running.get_mut(&suspend.allocation_id) {
                    trial.suspend = true;
                }
            }
            Some(master_message::Body::Kill(kill)) => {
                if let Some(trial) = agent.running.get_mut(&kill.allocation_id)
                    && trial.exit.is_none()
                {
                    trial.exit = Some(ExitKind::Killed);
                }
            }
            _ => {}
        }
    }

    fn step_trials(&mut self, index: usize) {
        let ids: Vec<String> = self.agents[index].running.keys().cloned().collect();
        for id in ids {
            let mut reports = Vec::new();
            let trial = self.agents[index].running.get_mut(&id).expect("trial");
            if !trial.started_reported {
                trial.started_reported = true;
                reports.push(Body::AllocationStarted(AllocationStarted {
                    allocation_id: id.clone(),
                    start_step: trial.step,
                }));
            }
            // A trial started at its length has nothing to train: it completes at once.
            if trial.exit.is_none() && trial.step >= trial.max_length {
                trial.exit = Some(ExitKind::Completed);
            }
            if trial.exit.is_none() {
                trial.step += 1;
                trial.state = mix(trial.state, trial.step);
                reports.push(Body::Training(TrainingReport {
                    allocation_id: id.clone(),
                    step: trial.step,
                    metrics_json: "{\"loss\": 1}".into(),
                }));
                let done = trial.step >= trial.max_length;
                if done {
                    reports.push(Body::Validation(ValidationReport {
                        allocation_id: id.clone(),
                        step: trial.step,
                        metrics_json: format!("{{\"loss\": {}}}", validation_loss(trial.state)),
                    }));
                }
                if done || trial.suspend || trial.step.is_multiple_of(CHECKPOINT_PERIOD) {
                    self.next_uuid += 1;
                    let uuid = format!("00000000-0000-4000-8000-{:012}", self.next_uuid);
                    self.storage.insert(
                        uuid.clone(),
                        SimCheckpoint {
                            trial: trial.trial,
                            step: trial.step,
                            state: trial.state,
                        },
                    );
                    reports.push(Body::CheckpointCompleted(CheckpointCompleted {
                        allocation_id: id.clone(),
                        uuid,
                        step: trial.step,
                        size_bytes: 1,
                        metadata_json: "{}".into(),
                    }));
                }
                if done {
                    trial.exit = Some(ExitKind::Completed);
                } else if trial.suspend {
                    trial.exit = Some(ExitKind::Suspended);
                }
            }
            if let Some(kind) = trial.exit {
                reports.push(Body::AllocationExited(AllocationExited {
                    allocation_id: id.clone(),
                    kind: kind as i32,
                    exit_code: if kind == ExitKind::Failed { 1 } else { 0 },
                    end_step: trial.step,
                    message: String::new(),
                }));
                let agent = &mut self.agents[index];
                agent.running.remove(&id);
                agent.ended.push(id.clone());
            }
            let agent = &mut self.agents[index];
            agent.unsent.extend(
                reports
                    .into_iter()
                    .map(|body| AgentMessage { body: Some(body) }),
            );
        }
    }

    /// Suspends, then kills, the agent's trials when the master has been silent too long.
    fn fence(&mut self, index: usize, now: Instant) {
        let agent = &mut self.agents[index];
        let silent = now.saturating_duration_since(agent.last_contact);
        let level = if silent >= AGENT_TIMEOUT - Duration::from_secs(1) {
            2
        } else if silent >= FENCE_WINDOW {
            1
        } else {
            0
        };
        for trial in agent.running.values_mut() {
            if trial.fenced >= level || trial.exit.is_some() {
                continue;
            }
            trial.fenced = level;
            if level == 2 {
                trial.exit = Some(ExitKind::Killed);
            } else {
                trial.suspend = true;
            }
        }
    }

    fn deliver(&mut self, index: usize) {
        let agent = &mut self.agents[index];
        if !agent.up {
            return;
        }
        let Some(session) = agent.link.as_ref().map(|l| l.session) else {
            return;
        };
        let messages: Vec<AgentMessage> = agent.unsent.drain(..).collect();
        let id = agent.id.clone();
        for message in messages {
            self.cluster.agent_message(&id, session, message);
        }
    }
}

fn status(trial: &SimTrial, exiting: bool) -> AllocationStatus {
    let phase = if exiting {
        AllocationPhase::Exiting
    } else if trial.suspend {
        AllocationPhase::Suspending
    } else {
        AllocationPhase::Running
    };
    AllocationStatus {
        allocation_id: trial.allocation.clone(),
        phase: phase as i32,
        last_step: trial.step,
    }
}

mod setup;

#[cfg(test)]
mod adaptive;
#[cfg(test)]
mod promotion_rule;
#[cfg(test)]
mod tests;

//! One simulated agent: a real session stream to the master speaking the agent protocol (hello,
//! heartbeats at the Welcome's interval listing its allocations, commands obeyed), with
//! simulated trials on its slots stepping at a fixed rate.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use baton_common::proto::agent_service_client::AgentServiceClient;
use baton_common::proto::{
    AgentMessage, Heartbeat, Hello, MasterMessage, PROTOCOL_VERSION, Slot, agent_message::Body,
    master_message,
};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::Streaming;

use crate::fleet::Fleet;
use crate::trial::{SimTrial, wrap};

/// Who a simulated agent is and how its trials step.
pub struct AgentSpec {
    /// Agent id.
    pub id: String,
    /// Its slots, with GPU-UUID-like ids.
    pub slots: Vec<Slot>,
    /// Time between two steps of each of its trials.
    pub step_period: Duration,
    /// Delay of its first step, spreading the fleet's steps over the period.
    pub phase: Duration,
}

impl AgentSpec {
    /// Agent number `index` of the fleet with `slots` simulated GPUs.
    pub fn new(index: usize, agents: usize, slots: usize, step_period: Duration) -> Self {
        let slots = (0..slots)
            .map(|_| Slot {
                id: format!("GPU-{}", uuid::Uuid::new_v4()),
                kind: "gpu".into(),
                name: "NVIDIA H100 80GB HBM3".into(),
            })
            .collect();
        Self {
            id: format!("sim-{index:05}"),
            slots,
            step_period,
            phase: step_period.mul_f64(index as f64 / agents.max(1) as f64),
        }
    }
}

/// Runs the agent's session until `stop` turns true; counts into `fleet`.
pub async fn run(
    url: String,
    spec: AgentSpec,
    fleet: Arc<Fleet>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut attempt = 0;
    let (mut agent, mut inbound, period) = loop {
        match register(&url, &spec, fleet.clone()).await {
            Ok(session) => break session,
            Err(e) if attempt >= REGISTER_ATTEMPTS => return Err(e),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
        }
    };
    let mut heartbeat = tokio::time::interval(period);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut step = tokio::time::interval_at(Instant::now() + spec.phase, spec.step_period);
    step.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = inbound.message() => match message? {
                Some(message) => {
                    agent.handle(message);
                }
                None => anyhow::bail!("{}: the master ended the session", spec.id),
            },
            _ = heartbeat.tick() => agent.heartbeat()?,
            _ = step.tick() => agent.step()?,
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// Tries to register this many times more, backing off, as a real agent reconnects.
const REGISTER_ATTEMPTS: u32 = 5;

/// A session whose hello the master welcomed, and the heartbeat interval it asked for.
async fn register(
    url: &str,
    spec: &AgentSpec,
    fleet: Arc<Fleet>,
) -> anyhow::Result<(SimAgent, Streaming<MasterMessage>, Duration)> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())?
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(10))
        .connect()
        .await?;
    let mut client = AgentServiceClient::new(channel);
    let (outbox, outbound) = mpsc::unbounded_channel();
    outbox.send(wrap(Body::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        agent_id: spec.id.clone(),
        slots: spec.slots.clone(),
        instance_id: uuid::Uuid::new_v4().to_string(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Hello::default()
    })))?;
    let mut inbound = client
        .session(UnboundedReceiverStream::new(outbound))
        .await?
        .into_inner();
    let mut agent = SimAgent {
        outbox,
        fleet,
        trials: BTreeMap::new(),
        ended: HashSet::new(),
        received: 0,
        beats: VecDeque::new(),
    };
    let welcome = inbound
        .message()
        .await?
        .ok_or_else(|| anyhow::anyhow!("{}: no answer to the hello", spec.id))?;
    let period = agent
        .handle(welcome)
        .ok_or_else(|| anyhow::anyhow!("{}: the master's first message is no Welcome", spec.id))?;
    Ok((agent, inbound, period))
}

struct SimAgent {
    outbox: mpsc::UnboundedSender<AgentMessage>,
    fleet: Arc<Fleet>,
    trials: BTreeMap<String, SimTrial>,
    /// Allocations that ended here: a repeated start of one is ignored.
    ended: HashSet<String>,
    /// Master messages handled in this session, the Welcome included.
    received: u64,
    /// When each heartbeat not yet acknowledged was sent, oldest first.
    beats: VecDeque<Instant>,
}

impl SimAgent {
    /// Obeys one master message; returns the heartbeat interval a Welcome sets.
    fn handle(&mut self, message: MasterMessage) -> Option<Duration> {
        self.received += 1;
        match message.body? {
            master_message::Body::Welcome(welcome) => {
                Fleet::add(&self.fleet.registered, 1);
                return Some(Duration::from_millis(
                    welcome.heartbeat_interval_ms.max(100),
                ));
            }
            master_message::Body::HeartbeatAck(_) => {
                if let Some(sent) = self.beats.pop_front() {
                    self.fleet.ack(sent.elapsed());
                }
            }
            master_message::Body::Start(start) => {
                if self.trials.contains_key(&start.allocation_id)
                    || self.ended.contains(&start.allocation_id)
                {
                    return None;
                }
                let trial = SimTrial::start(&start);
                Fleet::add(&self.fleet.starts, 1);
                self.fleet.running.fetch_add(1, Ordering::Relaxed);
                let _ = self.outbox.send(trial.started());
                self.trials.insert(start.allocation_id, trial);
            }
            master_message::Body::Suspend(suspend) => {
                if let Some(trial) = self.trials.get_mut(&suspend.allocation_id) {
                    trial.suspend();
                }
            }
            master_message::Body::Kill(kill) => {
                if let Some(trial) = self.trials.remove(&kill.allocation_id) {
                    let _ = self.outbox.send(trial.killed());
                    self.ended(kill.allocation_id);
                }
            }
        }
        None
    }

    /// Sends a heartbeat listing every allocation, in order with the reports.
    fn heartbeat(&mut self) -> anyhow::Result<()> {
        let beat = Heartbeat {
            allocations: self.trials.values().map(SimTrial::status).collect(),
            commands_received: self.received,
        };
        self.beats.push_back(Instant::now());
        self.send(wrap(Body::Heartbeat(beat)))
    }

    /// One step boundary of every trial.
    fn step(&mut self) -> anyhow::Result<()> {
        let mut exited = Vec::new();
        let mut reports = 0;
        for (id, trial) in &mut self.trials {
            let outcome = trial.advance();
            Fleet::add(&self.fleet.checkpoints, outcome.checkpoints);
            reports += (outcome.reports.len() - usize::from(outcome.exited)) as u64;
            for report in outcome.reports {
                self.outbox
                    .send(report)
                    .map_err(|_| anyhow::anyhow!("session closed"))?;
            }
            if outcome.exited {
                exited.push(id.clone());
            }
        }
        Fleet::add(&self.fleet.reports, reports);
        for id in exited {
            self.trials.remove(&id);
            self.ended(id);
        }
        Ok(())
    }

    fn ended(&mut self, allocation_id: String) {
        self.ended.insert(allocation_id);
        self.fleet.running.fetch_sub(1, Ordering::Relaxed);
    }

    fn send(&self, message: AgentMessage) -> anyhow::Result<()> {
        self.outbox
            .send(message)
            .map_err(|_| anyhow::anyhow!("session closed"))
    }
}

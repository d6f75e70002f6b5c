//! The agent's session with the master: connect, register, heartbeat, run commands, reconnect.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_common::master_list::MasterList;
use baton_common::proto::agent_service_client::AgentServiceClient;
use baton_common::proto::{
    AgentMessage, AllocationPhase, AllocationStatus, Heartbeat, Hello, MasterMessage,
    PROTOCOL_VERSION, Slot, agent_message, master_message,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use crate::allocation::record::{AllocationDir, recorded_allocations, write_atomic};
use crate::allocation::{
    AllocationEnv, AllocationProgress, Control, adopt_allocation, find_orphan, run_allocation,
};
use crate::fence::{Fence, FenceLevel};
use crate::harness_files::install_harness;
use crate::metrics::{AgentMetrics, ConnectedGauge};
use crate::replay::Recent;
use crate::rotation::{OPEN_TIMEOUT, Outcome, Rotation, SilentMaster, silence_limit};

/// The file in the work directory holding when the daemon last heard from the master.
const LAST_CONTACT_FILE: &str = "last-contact";

/// The id of the agent instance that owns `work_dir`, created there on first use.
fn instance_id(work_dir: &std::path::Path) -> std::io::Result<String> {
    let path = work_dir.join("agent-instance");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        _ => {
            let id = uuid::Uuid::new_v4().to_string();
            write_atomic(&path, id.as_bytes())?;
            Ok(id)
        }
    }
}

/// A fence that counts from the predecessor daemon's last contact, when it recorded one.
fn resume_fence(work_dir: &std::path::Path, window: Duration) -> Fence {
    let recorded = std::fs::read_to_string(work_dir.join(LAST_CONTACT_FILE))
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok());
    match recorded {
        Some(at_ms) => {
            let since = Duration::from_millis((crate::now_ms() - at_ms).max(0) as u64);
            Fence::resumed(window, Instant::now(), since)
        }
        None => Fence::new(window, Instant::now()),
    }
}

/// How often lack of contact with the master is checked.
const FENCE_CHECK: Duration = Duration::from_millis(250);

/// How many ended allocations are remembered, so that a repeated start never runs one twice.
const ENDED_MEMORY: usize = 4096;

/// What an agent needs to run.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The masters' URLs, tried in turn to find the leader.
    pub masters: MasterList,
    /// This agent's id.
    pub id: String,
    /// The slots it offers.
    pub slots: Vec<Slot>,
    /// Its work directory.
    pub work_dir: PathBuf,
    /// Cluster join token.
    pub token: String,
    /// Time between SIGTERM and SIGKILL of a trial.
    pub kill_grace: Duration,
    /// How long a trial keeps running while no daemon renews its lease (a daemon restart must
    /// take less); keep it below the master's agent timeout.
    pub trial_lease: Duration,
    /// After this long without contact with the master the agent suspends its trials; keep it
    /// below the master's agent timeout.
    pub fence_window: Duration,
    /// Lines of output per second each trial may ship to the master.
    pub log_lines_per_second: u32,
    /// TLS towards an `https://` master.
    pub tls: baton_common::tls::ClientTls,
    /// Where to serve Prometheus metrics (`GET /metrics`), if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Host other agents reach this one at for distributed trials (None: the address the master
    /// sees).
    pub advertise_address: Option<String>,
}

/// Runs the agent until `shutdown` resolves, reconnecting to the leading master whenever the
/// stream breaks.
pub async fn run_agent(
    mut options: AgentOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.work_dir)?;
    // Trials and their supervisors run elsewhere than the daemon's working directory: every
    // path handed to them (allocation directory, harness socket, PYTHONPATH) must be absolute.
    options.work_dir = std::path::absolute(&options.work_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot resolve --work-dir {}: {e}",
            options.work_dir.display()
        )
    })?;
    let harness_path = install_harness(&options.work_dir)?;
    let instance_id = instance_id(&options.work_dir)?;
    let metrics = Arc::new(AgentMetrics::new(&options.slots));
    let metrics_server = match options.metrics_listen {
        Some(address) => {
            let listener = baton_common::metrics::bind(address, "--metrics-listen").await?;
            Some(tokio::spawn(baton_common::metrics::serve(
                listener,
                metrics.registry.clone(),
                baton_common::metrics::no_refresh(),
                futures::future::pending(),
            )))
        }
        None => None,
    };
    let _stop_metrics = metrics_server.map(AbortOnDrop);
    let env = AllocationEnv {
        work_dir: options.work_dir.clone(),
        harness_path,
        kill_grace: options.kill_grace,
        trial_lease: options.trial_lease,
        log_lines_per_second: options.log_lines_per_second,
        metrics,
    };
    let (outbox, mut reports) = mpsc::unbounded_channel::<AgentMessage>();
    let fence_window = options.fence_window;
    let work_dir = options.work_dir.clone();
    let mut agent = Agent {
        options,
        env,
        outbox,
        running: HashMap::new(),
        ended: VecDeque::new(),
        unsent: VecDeque::new(),
        recent: Recent::default(),
        received: 0,
        fence: resume_fence(&work_dir, fence_window),
        instance_id,
        contact_written: None,
    };
    agent.adopt_orphans();
    // Ready once its trials are adopted, whether or not the master answers yet: the agent
    // reconnects by itself, so a master that is down must not fail `systemctl start`.
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    tokio::pin!(shutdown);
    let mut rotation = Rotation::new(&agent.options.masters);
    loop {
        let url = rotation.current().to_string();
        let outcome = tokio::select! {
            outcome = agent.attempt(&url, &rotation, &mut reports) => outcome,
            _ = &mut shutdown => return Ok(()),
        };
        let pause = rotation.record(outcome);
        if pause.is_zero() {
            continue;
        }
        tokio::select! {
            _ = agent.with_fence(tokio::time::sleep(pause)) => {}
            _ = &mut shutdown => return Ok(()),
        }
    }
}

struct Agent {
    options: AgentOptions,
    env: AllocationEnv,
    outbox: mpsc::UnboundedSender<AgentMessage>,
    running: HashMap<String, Running>,
    /// Allocations that ended here, most recent last.
    ended: VecDeque<String>,
    /// Reports not yet handed to a live stream.
    unsent: VecDeque<AgentMessage>,
    /// Reports handed to a stream lately, replayed after a reconnect in case the stream lost them.
    recent: Recent,
    /// Master messages handled in the current session.
    received: u64,
    /// Contact with the master, and what its loss calls for.
    fence: Fence,
    /// When the last contact was last written to the work directory.
    contact_written: Option<Instant>,
    /// This work directory's agent instance, sent in every hello.
    instance_id: String,
}

/// A running allocation as the session sees it.
struct Running {
    control: mpsc::UnboundedSender<Control>,
    progress: AllocationProgress,
    /// The slots it holds.
    slot_ids: Vec<String>,
    /// How far the agent went in stopping it for lack of contact.
    fenced: FenceLevel,
}

impl Agent {
    /// One attempt on the master at `url`: a session until its stream ends, or why none opened.
    async fn attempt(
        &mut self,
        url: &str,
        rotation: &Rotation,
        reports: &mut mpsc::UnboundedReceiver<AgentMessage>,
    ) -> Outcome {
        let (stream, inbound) = match self.open(url).await {
            Ok(opened) => opened,
            Err(Refused::Status(status)) => {
                let outcome = Outcome::refused(&status);
                match &outcome {
                    Outcome::Standby {
                        leader: Some(leader),
                    } if rotation.is_listed(leader) => {
                        tracing::info!(master = %url, leader = %leader, "standby master; trying the leader it names");
                    }
                    Outcome::Standby {
                        leader: Some(leader),
                    } => {
                        tracing::info!(master = %url, leader = %leader, "standby master; trying the leader it names, which --master does not list");
                    }
                    Outcome::Standby { leader: None } => {
                        tracing::info!(master = %url, "standby master without a leader yet");
                    }
                    _ => {
                        let error = baton_common::tls::explain(url, status.message());
                        tracing::warn!(master = %url, error = %error, "the master refused the session");
                    }
                }
                return outcome;
            }
            Err(Refused::Other(e)) => {
                tracing::warn!(master = %url, error = %e, "cannot open a session with the master");
                return Outcome::Failed;
            }
        };
        let ended = self.converse(url, stream, inbound, reports).await;
        if let Some(silent) = ended
            .as_ref()
            .err()
            .and_then(|e| e.downcast_ref::<SilentMaster>())
        {
            tracing::warn!(master = %url, error = %silent, "the master fell silent");
            return Outcome::Failed;
        }
        if let Err(e) = &ended {
            tracing::warn!(master = %url, error = %e, "session with the master ended");
        }
        Outcome::ended(ended.as_ref().err().and_then(|e| e.downcast_ref()))
    }

    /// Connects to the master at `url` and opens the session stream with a hello; with other
    /// masters to try, a master that does not answer within [`OPEN_TIMEOUT`] is passed over.
    async fn open(&mut self, url: &str) -> Result<Opened, Refused> {
        if self.options.masters.urls().len() == 1 {
            return self.open_session(url).await;
        }
        match tokio::time::timeout(OPEN_TIMEOUT, self.open_session(url)).await {
            Ok(opened) => opened,
            Err(_) => Err(Refused::Other(anyhow::anyhow!(
                "no answer within {OPEN_TIMEOUT:?}"
            ))),
        }
    }

    /// Connects to the master at `url` and opens the session stream with a hello.
    async fn open_session(&mut self, url: &str) -> Result<Opened, Refused> {
        let endpoint = baton_common::tls::endpoint(url, &self.options.tls)
            .map_err(|e| Refused::Other(anyhow::Error::msg(e)))?
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(10));
        let channel = self.with_fence(endpoint.connect()).await.map_err(|e| {
            let failure = baton_common::error_chain(&e);
            Refused::Other(anyhow::anyhow!(baton_common::tls::explain(url, &failure)))
        })?;
        let mut client = AgentServiceClient::new(channel)
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024);
        let (stream, outbound) = mpsc::channel::<AgentMessage>(1024);
        // A heartbeat counts the messages of its own session: an old one would mislead the master.
        self.unsent
            .retain(|m| !matches!(m.body, Some(agent_message::Body::Heartbeat(_))));
        self.recent.replay_into(&mut self.unsent);
        self.received = 0;
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            agent_id: self.options.id.clone(),
            slots: self.options.slots.clone(),
            token: self.options.token.clone(),
            allocations: self.hello_statuses(),
            instance_id: self.instance_id.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            advertise_address: self.options.advertise_address.clone().unwrap_or_default(),
        };
        stream
            .send(wrap(agent_message::Body::Hello(hello)))
            .await
            .map_err(|e| Refused::Other(e.into()))?;
        let inbound = self
            .with_fence(client.session(ReceiverStream::new(outbound)))
            .await
            .map_err(Refused::Status)?
            .into_inner();
        Ok((stream, inbound))
    }

    /// Runs an open session: returns when the stream ends.
    async fn converse(
        &mut self,
        url: &str,
        stream: mpsc::Sender<AgentMessage>,
        mut inbound: Streaming<MasterMessage>,
        reports: &mut mpsc::UnboundedReceiver<AgentMessage>,
    ) -> anyhow::Result<()> {
        // The master accepted the stream: that is contact.
        self.note_contact();
        tracing::info!(master = %url, agent = %self.options.id, "connected to master");
        let _connected = ConnectedGauge::set(&self.env.metrics);
        let mut heartbeat = tokio::time::interval(Duration::from_secs(2));
        let mut silent_after = silence_limit(heartbeat.period());
        let mut fence_check = tokio::time::interval(FENCE_CHECK);
        loop {
            while let Some(message) = self.unsent.pop_front() {
                match stream.try_send(message.clone()) {
                    Ok(()) => self.recent.remember(message, Instant::now()),
                    Err(e) => {
                        self.unsent.push_front(e.into_inner());
                        break;
                    }
                }
            }
            tokio::select! {
                message = inbound.message() => match message? {
                    Some(message) => {
                        self.received += 1;
                        self.note_contact();
                        if let Some(interval) = self.handle(message) {
                            heartbeat = tokio::time::interval(interval);
                            silent_after = silence_limit(interval);
                        }
                    }
                    None => return Ok(()),
                },
                Some(report) = reports.recv() => {
                    self.track(&report);
                    self.unsent.push_back(report);
                }
                _ = heartbeat.tick() => {
                    // In order with the reports: an exit always reaches the master before the
                    // first heartbeat that no longer lists its allocation.
                    let beat = Heartbeat {
                        allocations: self.statuses(),
                        commands_received: self.received,
                    };
                    self.unsent.push_back(wrap(agent_message::Body::Heartbeat(beat)));
                }
                _ = fence_check.tick() => {
                    self.apply_fence();
                    let now = Instant::now();
                    let silent = self.fence.cut_off_for(now);
                    if self.fence.level(now) != FenceLevel::Clear {
                        anyhow::bail!("no message from the master for {silent:?}; reconnecting");
                    }
                    if self.options.masters.urls().len() > 1 && silent >= silent_after {
                        return Err(SilentMaster(silent).into());
                    }
                }
            }
        }
    }

    /// Notes contact with the master, and records it (at most every second) for a successor
    /// daemon.
    fn note_contact(&mut self) {
        let now = Instant::now();
        self.fence.contact(now);
        if self
            .contact_written
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
        {
            self.contact_written = Some(now);
            let path = self.env.work_dir.join(LAST_CONTACT_FILE);
            if let Err(e) = write_atomic(&path, crate::now_ms().to_string().as_bytes()) {
                tracing::warn!(path = %path.display(), error = %e, "cannot record the last contact with the master");
            }
        }
    }

    /// Awaits `future` while checking, every so often, whether lack of contact calls for fencing.
    async fn with_fence<F: std::future::Future>(&mut self, future: F) -> F::Output {
        tokio::pin!(future);
        let mut fence_check = tokio::time::interval(FENCE_CHECK);
        loop {
            tokio::select! {
                output = &mut future => return output,
                _ = fence_check.tick() => self.apply_fence(),
            }
        }
    }

    /// Suspends (then kills) the running allocations when the master has been silent too long.
    fn apply_fence(&mut self) {
        let now = Instant::now();
        let level = self.fence.level(now);
        if level == FenceLevel::Clear {
            return;
        }
        let cut_off = self.fence.cut_off_for(now);
        for (id, running) in self.running.iter_mut() {
            if running.fenced >= level {
                continue;
            }
            running.fenced = level;
            running.progress.mark_self_fenced();
            let control = if level == FenceLevel::Kill {
                tracing::warn!(allocation = %id, cut_off = ?cut_off, "no contact with the master: killing the trial before the master restarts it elsewhere");
                Control::Kill
            } else {
                tracing::warn!(allocation = %id, cut_off = ?cut_off, "no contact with the master: suspending the trial (checkpoint, commit, stop)");
                Control::Suspend
            };
            let _ = running.control.send(control);
        }
    }

    /// Applies a master command; returns a new heartbeat interval when the master sets one.
    fn handle(&mut self, message: MasterMessage) -> Option<Duration> {
        match message.body? {
            master_message::Body::HeartbeatAck(_) => {}
            master_message::Body::Welcome(welcome) => {
                self.fence.learn_deadline(
                    Duration::from_millis(welcome.agent_timeout_ms),
                    Duration::from_millis(welcome.heartbeat_interval_ms),
                );
                return Some(Duration::from_millis(
                    welcome.heartbeat_interval_ms.max(100),
                ));
            }
            master_message::Body::Start(start) => {
                if self.running.contains_key(&start.allocation_id)
                    || self.ended.contains(&start.allocation_id)
                {
                    return None;
                }
                tracing::info!(allocation = %start.allocation_id, trial = start.trial_id, "starting allocation");
                let (control, commands) = mpsc::unbounded_channel();
                let dir = AllocationDir::new(&self.env.work_dir, &start.allocation_id);
                let progress = AllocationProgress::new(&start, &dir);
                self.running.insert(
                    start.allocation_id.clone(),
                    Running {
                        control,
                        progress: progress.clone(),
                        slot_ids: start.slot_ids.clone(),
                        fenced: FenceLevel::Clear,
                    },
                );
                self.count_running();
                tokio::spawn(run_allocation(
                    start,
                    self.env.clone(),
                    progress,
                    commands,
                    self.outbox.clone(),
                ));
            }
            master_message::Body::Suspend(suspend) => {
                if let Some(running) = self.running.get(&suspend.allocation_id) {
                    tracing::info!(allocation = %suspend.allocation_id, reason = %suspend.reason, "suspend requested");
                    let _ = running.control.send(Control::Suspend);
                }
            }
            master_message::Body::Kill(kill) => {
                if let Some(running) = self.running.get(&kill.allocation_id) {
                    tracing::info!(allocation = %kill.allocation_id, reason = %kill.reason, "kill requested");
                    let _ = running.control.send(Control::Kill);
                }
            }
        }
        None
    }

    /// Takes over the trials a previous daemon left running in the work directory.
    fn adopt_orphans(&mut self) {
        for id in recorded_allocations(&self.env.work_dir) {
            let Some(orphan) = find_orphan(&self.env.work_dir, &id) else {
                continue;
            };
            let dir = AllocationDir::new(&self.env.work_dir, &id);
            let (control, commands) = mpsc::unbounded_channel();
            let progress = AllocationProgress::new(&orphan.start, &dir);
            self.running.insert(
                id,
                Running {
                    control,
                    progress: progress.clone(),
                    slot_ids: orphan.start.slot_ids.clone(),
                    fenced: FenceLevel::Clear,
                },
            );
            self.count_running();
            tokio::spawn(adopt_allocation(
                orphan,
                self.env.clone(),
                progress,
                commands,
                self.outbox.clone(),
            ));
        }
    }

    /// Forgets allocations whose exit is being reported.
    fn track(&mut self, report: &AgentMessage) {
        if let Some(agent_message::Body::AllocationExited(exited)) = &report.body {
            self.running.remove(&exited.allocation_id);
            self.count_running();
            self.ended.push_back(exited.allocation_id.clone());
            if self.ended.len() > ENDED_MEMORY {
                self.ended.pop_front();
            }
        }
    }

    /// Sets the running-allocation and slot gauges from the allocations now running.
    fn count_running(&self) {
        let metrics = &self.env.metrics;
        metrics.allocations_running.set(self.running.len() as i64);
        let used: HashSet<&str> = self
            .running
            .values()
            .flat_map(|r| r.slot_ids.iter().map(String::as_str))
            .collect();
        metrics.set_slots_in_use(&self.options.slots, &used);
    }

    /// Every running allocation, for a heartbeat.
    fn statuses(&self) -> Vec<AllocationStatus> {
        self.running
            .iter()
            .map(|(id, running)| running.progress.status(id))
            .collect()
    }

    /// For a hello: the running allocations, and those whose exit report the master may not have
    /// received yet (queued or replayed), so that it waits for that report instead of calling
    /// them lost.
    fn hello_statuses(&self) -> Vec<AllocationStatus> {
        let mut statuses = self.statuses();
        let pending: HashSet<&str> = self
            .unsent
            .iter()
            .filter_map(|message| match &message.body {
                Some(agent_message::Body::AllocationExited(exited)) => {
                    Some(exited.allocation_id.as_str())
                }
                _ => None,
            })
            .collect();
        statuses.extend(pending.into_iter().map(|id| AllocationStatus {
            allocation_id: id.to_string(),
            phase: AllocationPhase::Exiting as i32,
            last_step: 0,
        }));
        statuses
    }
}

/// The session stream: reports go into the sender, master messages come out of the stream.
type Opened = (mpsc::Sender<AgentMessage>, Streaming<MasterMessage>);

/// Why no session opened.
enum Refused {
    /// The master answered the session call with this status.
    Status(tonic::Status),
    /// The master could not be reached.
    Other(anyhow::Error),
}

fn wrap(body: agent_message::Body) -> AgentMessage {
    AgentMessage { body: Some(body) }
}

/// Aborts a spawned task when dropped (the metrics endpoint, when the agent stops).
struct AbortOnDrop(tokio::task::JoinHandle<std::io::Result<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

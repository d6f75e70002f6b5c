//! The agent's session with the master: connect, register, heartbeat, run commands, reconnect.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use baton_common::proto::agent_service_client::AgentServiceClient;
use baton_common::proto::{
    AgentMessage, Heartbeat, Hello, MasterMessage, PROTOCOL_VERSION, Slot, agent_message,
    master_message,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::allocation::{AllocationEnv, Control, run_allocation};
use crate::harness_files::install_harness;

/// How long sent reports are kept for replay after a reconnect.
const REPLAY_WINDOW: Duration = Duration::from_secs(30);

/// What an agent needs to run.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The master's URL.
    pub master: String,
    /// This agent's id.
    pub id: String,
    /// The slots it offers.
    pub slots: Vec<Slot>,
    /// Its work directory.
    pub work_dir: PathBuf,
    /// Cluster join token.
    pub token: String,
    /// Seconds between SIGTERM and SIGKILL of a trial.
    pub kill_grace: Duration,
}

/// Runs the agent until `shutdown` resolves, reconnecting to the master whenever the stream breaks.
pub async fn run_agent(
    options: AgentOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.work_dir)?;
    let harness_path = install_harness(&options.work_dir)?;
    let env = AllocationEnv {
        work_dir: options.work_dir.clone(),
        harness_path,
        kill_grace: options.kill_grace,
    };
    let (outbox, mut reports) = mpsc::unbounded_channel::<AgentMessage>();
    let mut agent = Agent {
        options,
        env,
        outbox,
        running: HashMap::new(),
        unsent: VecDeque::new(),
        recent: VecDeque::new(),
    };
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(200);
    loop {
        tokio::select! {
            result = agent.session(&mut reports) => match result {
                Ok(()) => backoff = Duration::from_millis(200),
                Err(e) => tracing::warn!(error = %e, "session with the master ended"),
            },
            _ = &mut shutdown => return Ok(()),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = &mut shutdown => return Ok(()),
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

struct Agent {
    options: AgentOptions,
    env: AllocationEnv,
    outbox: mpsc::UnboundedSender<AgentMessage>,
    running: HashMap<String, mpsc::UnboundedSender<Control>>,
    /// Reports not yet handed to a live stream.
    unsent: VecDeque<AgentMessage>,
    /// Reports handed to a stream lately, replayed after a reconnect in case the stream lost them.
    recent: VecDeque<(Instant, AgentMessage)>,
}

impl Agent {
    /// One connection: returns when the stream ends.
    async fn session(
        &mut self,
        reports: &mut mpsc::UnboundedReceiver<AgentMessage>,
    ) -> anyhow::Result<()> {
        let endpoint = tonic::transport::Endpoint::from_shared(self.options.master.clone())?
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(10));
        let channel = endpoint.connect().await?;
        let mut client = AgentServiceClient::new(channel)
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024);
        let (stream, outbound) = mpsc::channel::<AgentMessage>(1024);
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            agent_id: self.options.id.clone(),
            slots: self.options.slots.clone(),
            running_allocation_ids: self.running.keys().cloned().collect(),
            token: self.options.token.clone(),
        };
        stream.send(wrap(agent_message::Body::Hello(hello))).await?;
        self.replay_recent();
        let mut inbound = client
            .session(ReceiverStream::new(outbound))
            .await?
            .into_inner();
        tracing::info!(master = %self.options.master, agent = %self.options.id, "connected to master");
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        let mut heartbeat = tokio::time::interval(Duration::from_secs(2));
        loop {
            while let Some(message) = self.unsent.pop_front() {
                match stream.try_send(message.clone()) {
                    Ok(()) => self.remember(message),
                    Err(e) => {
                        self.unsent.push_front(e.into_inner());
                        break;
                    }
                }
            }
            tokio::select! {
                message = inbound.message() => match message? {
                    Some(message) => {
                        if let Some(interval) = self.handle(message) {
                            heartbeat = tokio::time::interval(interval);
                        }
                    }
                    None => return Ok(()),
                },
                Some(report) = reports.recv() => {
                    self.track(&report);
                    self.unsent.push_back(report);
                }
                _ = heartbeat.tick() => {
                    if stream.send(wrap(agent_message::Body::Heartbeat(Heartbeat {}))).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Applies a master command; returns a new heartbeat interval when the master sets one.
    fn handle(&mut self, message: MasterMessage) -> Option<Duration> {
        match message.body? {
            master_message::Body::Welcome(welcome) => {
                return Some(Duration::from_millis(
                    welcome.heartbeat_interval_ms.max(100),
                ));
            }
            master_message::Body::Start(start) => {
                if self.running.contains_key(&start.allocation_id) {
                    return None;
                }
                tracing::info!(allocation = %start.allocation_id, trial = start.trial_id, "starting allocation");
                let (control, commands) = mpsc::unbounded_channel();
                self.running.insert(start.allocation_id.clone(), control);
                tokio::spawn(run_allocation(
                    start,
                    self.env.clone(),
                    commands,
                    self.outbox.clone(),
                ));
            }
            master_message::Body::Suspend(suspend) => {
                tracing::info!(allocation = %suspend.allocation_id, reason = %suspend.reason, "suspend requested");
                if let Some(control) = self.running.get(&suspend.allocation_id) {
                    let _ = control.send(Control::Suspend);
                }
            }
            master_message::Body::Kill(kill) => {
                tracing::info!(allocation = %kill.allocation_id, reason = %kill.reason, "kill requested");
                if let Some(control) = self.running.get(&kill.allocation_id) {
                    let _ = control.send(Control::Kill);
                }
            }
        }
        None
    }

    /// Keeps a sent report for replay; log lines are not replayed (the master would store them twice).
    fn remember(&mut self, message: AgentMessage) {
        let now = Instant::now();
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > REPLAY_WINDOW)
        {
            self.recent.pop_front();
        }
        if !matches!(message.body, Some(agent_message::Body::Logs(_))) {
            self.recent.push_back((now, message));
        }
    }

    /// Queues the recently sent reports again, ahead of new ones; the master applies them idempotently.
    fn replay_recent(&mut self) {
        for (_, message) in self.recent.drain(..).rev() {
            self.unsent.push_front(message);
        }
    }

    /// Forgets allocations whose exit is being reported.
    fn track(&mut self, report: &AgentMessage) {
        if let Some(agent_message::Body::AllocationExited(exited)) = &report.body {
            self.running.remove(&exited.allocation_id);
        }
    }
}

fn wrap(body: agent_message::Body) -> AgentMessage {
    AgentMessage { body: Some(body) }
}

//! Agent sessions: registration, fencing of stale allocations, loss, enable/disable.

use baton_common::proto::{Hello, KillAllocation, MasterMessage, Welcome, master_message::Body};
use tokio::sync::mpsc;

use super::desired::Desired;
use super::state::{AgentEntry, AgentLink, AgentMode, Cluster, StopReason};
use crate::error::{MasterError, MasterResult};

impl Cluster {
    /// Registers a connecting agent; returns its session number. Refusals are logged at most
    /// once a minute per peer host.
    pub fn agent_connected(
        &mut self,
        hello: Hello,
        sender: mpsc::UnboundedSender<Result<MasterMessage, tonic::Status>>,
        peer: &str,
    ) -> MasterResult<u64> {
        let agent_id = hello.agent_id.clone();
        let accepted = self.accept_agent(hello, sender, peer);
        if let Err(e) = &accepted {
            let now = self.now();
            // Each retry comes from a new port: the host is the peer.
            let host = peer_host(peer);
            let due = self
                .refusals_logged
                .get(&host)
                .is_none_or(|at| now.saturating_duration_since(*at) >= REFUSAL_LOG_PERIOD);
            if due {
                self.refusals_logged.insert(host, now);
                tracing::warn!(agent = %agent_id, %peer, error = %e, "agent refused");
            }
        }
        accepted
    }

    fn accept_agent(
        &mut self,
        hello: Hello,
        sender: mpsc::UnboundedSender<Result<MasterMessage, tonic::Status>>,
        peer: &str,
    ) -> MasterResult<u64> {
        if hello.protocol_version != baton_common::proto::PROTOCOL_VERSION {
            return Err(MasterError::FailedPrecondition(format!(
                "agent protocol version {} does not match the master's {}: upgrade the agent",
                hello.protocol_version,
                baton_common::proto::PROTOCOL_VERSION
            )));
        }
        self.settings
            .agent_tokens
            .check(&hello.agent_id, &hello.token)
            .map_err(MasterError::Unauthenticated)?;
        if hello.agent_id.is_empty() {
            return Err(MasterError::InvalidArgument(
                "agent id must not be empty".into(),
            ));
        }
        if let Some(live) = self
            .agents
            .get(&hello.agent_id)
            .and_then(|a| a.link.as_ref())
            .filter(|link| link.instance != hello.instance_id)
        {
            return Err(MasterError::FailedPrecondition(format!(
                "agent id {:?} already has a live session from {} (another agent process); refused the connection from {peer}: give each agent its own --id",
                hello.agent_id, live.peer
            )));
        }
        self.next_session += 1;
        let session = self.next_session;
        let now = self.now();
        let agent = self
            .agents
            .entry(hello.agent_id.clone())
            .or_insert_with(|| AgentEntry::new(hello.agent_id.clone(), AgentMode::Enabled, now));
        agent.slots = hello.slots;
        agent.version = hello.version.clone();
        agent.address = if hello.advertise_address.is_empty() {
            peer_host(peer)
        } else {
            hello.advertise_address.clone()
        };
        agent.last_seen = now;
        agent.link = Some(AgentLink {
            session,
            sender,
            sent: 0,
            instance: hello.instance_id.clone(),
            peer: peer.to_string(),
        });
        agent.send(MasterMessage {
            body: Some(Body::Welcome(Welcome {
                protocol_version: baton_common::proto::PROTOCOL_VERSION,
                heartbeat_interval_ms: self.settings.heartbeat_interval.as_millis() as u64,
                agent_timeout_ms: self.settings.agent_timeout.as_millis() as u64,
            })),
        });
        tracing::info!(agent = %hello.agent_id, session, slots = agent.slots.len(), version = %hello.version, "agent connected");
        self.heal_agent(&hello.agent_id, session, &hello.allocations, None);
        self.resend_to_agent(&hello.agent_id);
        self.needs_schedule = true;
        Ok(session)
    }

    /// Notes a closed agent stream (the agent may come back before its deadline).
    pub fn agent_disconnected(&mut self, agent_id: &str, session: u64) {
        if let Some(agent) = self.agents.get_mut(agent_id)
            && agent.link.as_ref().is_some_and(|l| l.session == session)
        {
            agent.link = None;
            tracing::warn!(agent = %agent_id, "agent disconnected");
        }
    }

    /// Whether a message comes from the agent's current session; refreshes its liveness.
    pub fn touch_agent(&mut self, agent_id: &str, session: u64) -> bool {
        let now = self.now();
        match self.agents.get_mut(agent_id) {
            Some(agent) if agent.link.as_ref().is_some_and(|l| l.session == session) => {
                agent.last_seen = now;
                true
            }
            _ => false,
        }
    }

    /// Declares agents lost when silent past the deadline; their trials restart elsewhere.
    pub(super) fn expire_agents(&mut self) {
        let deadline = self.settings.agent_timeout;
        let now = self.now();
        let lost: Vec<String> = self
            .agents
            .values()
            .filter(|a| a.link.is_some() || !a.allocations.is_empty())
            .filter(|a| now.saturating_duration_since(a.last_seen) > deadline)
            .map(|a| a.id.clone())
            .collect();
        for agent_id in lost {
            tracing::warn!(agent = %agent_id, "agent lost: no heartbeat within the deadline");
            let agent = self.agents.get_mut(&agent_id).expect("lost agent exists");
            agent.link = None;
            let allocations: Vec<String> = agent.allocations.iter().cloned().collect();
            for id in allocations {
                self.end_lost_allocation(&id, "agent missed its heartbeat deadline");
            }
        }
    }

    /// Stops new work on an agent; suspends its trials (or lets them finish when draining).
    pub fn disable_agent(&mut self, agent_id: &str, drain: bool) -> MasterResult<()> {
        let agent = self.agent_mut(agent_id)?;
        agent.mode = if drain {
            AgentMode::Draining
        } else {
            AgentMode::Disabled
        };
        let mode = agent.mode.as_str();
        let allocations: Vec<String> = agent.allocations.iter().cloned().collect();
        self.store.set_agent_state(agent_id, mode)?;
        if !drain {
            for id in allocations {
                self.set_desired(&id, Desired::Suspend(StopReason::Disabled));
            }
        }
        Ok(())
    }

    /// Lets an agent take new work again.
    pub fn enable_agent(&mut self, agent_id: &str) -> MasterResult<()> {
        let agent = self.agent_mut(agent_id)?;
        agent.mode = AgentMode::Enabled;
        self.store.set_agent_state(agent_id, "enabled")?;
        self.needs_schedule = true;
        Ok(())
    }

    pub(super) fn agent_mut(&mut self, agent_id: &str) -> MasterResult<&mut AgentEntry> {
        let known: Vec<String> = self.agents.keys().cloned().collect();
        self.agents.get_mut(agent_id).ok_or_else(|| {
            MasterError::NotFound(format!(
                "agent {agent_id:?} is not known (known agents: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })
    }
}

/// Refused agents are logged at most this often per peer.
const REFUSAL_LOG_PERIOD: std::time::Duration = std::time::Duration::from_secs(60);

/// A command to kill an allocation.
pub(super) fn kill_message(allocation_id: &str, reason: &str) -> MasterMessage {
    MasterMessage {
        body: Some(Body::Kill(KillAllocation {
            allocation_id: allocation_id.to_string(),
            reason: reason.to_string(),
        })),
    }
}

/// The host part of a peer address (`10.0.0.5:41234` → `10.0.0.5`, `[::1]:41234` → `::1`).
fn peer_host(peer: &str) -> String {
    let host = peer.rsplit_once(':').map_or(peer, |(host, _)| host);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_string()
}

//! A cluster fed arbitrary agent messages, checked after each: the entry point through which
//! property tests and fuzzing try the master's handling of what agents send.
//!
//! Must run inside a Tokio runtime (checkpoint deletions are spawned on it).

use std::sync::Arc;

use baton_common::proto::agent_message::Body;
use baton_common::proto::{AgentMessage, Context, ContextFile, Hello, MasterMessage, Slot};
use tokio::sync::mpsc;

use super::clock::ManualClock;
use super::command::{AgentSender, Command};
use super::handle::ClusterHandle;
use super::state::{Cluster, ClusterSettings};
use crate::prepare::prepare_experiment;
use crate::store::Store;

/// One experiment of two trials, running on one connected two-slot agent.
pub struct AgentReplay {
    cluster: Cluster,
    clock: ManualClock,
    session: u64,
    _commands: mpsc::Receiver<Command>,
    to_agent: mpsc::UnboundedReceiver<Result<MasterMessage, tonic::Status>>,
}

/// The replayed agent's id.
pub const AGENT_ID: &str = "replayed";

impl AgentReplay {
    /// A cluster with its experiment created and its trials started on the agent.
    pub fn new() -> Self {
        let clock = ManualClock::new();
        let (handle, commands) = ClusterHandle::detached();
        let store = Store::in_memory().expect("in-memory store");
        let settings = ClusterSettings::default();
        let mut cluster =
            Cluster::load_with_clock(store, settings, handle, Arc::new(clock.clone()))
                .expect("cluster loads");
        let yaml = "name: replay\nentrypoint: python3 train.py\n\
             hyperparameters:\n  seed: {type: categorical, vals: [1, 2]}\n\
             searcher: {name: grid, metric: loss, max_length: 50}\n\
             min_checkpoint_period: 5\n\
             checkpoint_storage: {type: shared_fs, host_path: /nonexistent/baton-replay}\n";
        let context = Context {
            files: vec![ContextFile {
                path: "train.py".into(),
                content: b"pass\n".to_vec(),
                mode: 0o644,
            }],
        };
        let prepared = prepare_experiment(yaml.into(), context).expect("replay config");
        cluster.create_experiment(prepared).expect("experiment");
        let (sender, to_agent): (AgentSender, _) = mpsc::unbounded_channel();
        let hello = Hello {
            protocol_version: baton_common::proto::PROTOCOL_VERSION,
            agent_id: AGENT_ID.into(),
            slots: (0..2)
                .map(|i| Slot {
                    id: format!("cpu{i}"),
                    ..Default::default()
                })
                .collect(),
            instance_id: "replay".into(),
            ..Default::default()
        };
        let session = cluster
            .agent_connected(hello, sender, "127.0.0.1:1")
            .expect("agent joins");
        cluster.schedule_if_needed();
        Self {
            cluster,
            clock,
            session,
            _commands: commands,
            to_agent,
        }
    }

    /// The ids of the allocations the master has started, for messages that name real ones.
    fn allocation_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.cluster.allocations.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Delivers one message from the agent, lets a second pass and reconciles; then checks that
    /// the cluster still holds together. An allocation id `#N` stands for the N-th live allocation
    /// (by id), so that generated messages reach real allocations.
    pub fn feed(&mut self, mut message: AgentMessage) -> Result<(), String> {
        let ids = self.allocation_ids();
        for id in allocation_ids_of(&mut message) {
            if let Some(index) = id.strip_prefix('#').and_then(|n| n.parse::<usize>().ok())
                && let Some(live) = ids.get(index)
            {
                *id = live.clone();
            }
        }
        self.cluster.agent_message(AGENT_ID, self.session, message);
        self.clock.advance(std::time::Duration::from_secs(1));
        self.cluster.reconcile();
        self.cluster.schedule_if_needed();
        while self.to_agent.try_recv().is_ok() {}
        self.check()
    }

    /// The cluster, for tests that look inside it.
    #[cfg(test)]
    pub(super) fn cluster_mut(&mut self) -> &mut Cluster {
        &mut self.cluster
    }

    /// Every view builds, and trials and live allocations point at each other one to one.
    fn check(&self) -> Result<(), String> {
        let cluster = &self.cluster;
        for experiment in cluster.list_experiments() {
            cluster
                .experiment_view(experiment.id, true)
                .map_err(|e| format!("experiment {} has no view: {e}", experiment.id))?;
        }
        for (id, trial) in &cluster.trials {
            cluster
                .trial_detail(*id)
                .map_err(|e| format!("trial {id} has no view: {e}"))?;
            if let Some(allocation) = &trial.allocation {
                let part = cluster.parts_of(allocation).into_iter().next();
                let live = part
                    .and_then(|p| cluster.allocations.get(&p))
                    .ok_or_else(|| {
                        format!("trial {id} names allocation {allocation}, which is not live")
                    })?;
                if live.row.trial_id != *id {
                    return Err(format!(
                        "allocation {allocation} belongs to trial {}, not {id}",
                        live.row.trial_id
                    ));
                }
                if trial.row.state.is_terminal() {
                    return Err(format!(
                        "trial {id} is {} but has allocation {allocation}",
                        trial.row.state
                    ));
                }
            }
        }
        for (id, live) in &cluster.allocations {
            let owner = cluster
                .trials
                .get(&live.row.trial_id)
                .and_then(|t| t.allocation.as_ref());
            let shown = if live.row.gang.is_empty() {
                id
            } else {
                &live.row.gang
            };
            if owner != Some(shown) {
                return Err(format!(
                    "allocation {id} is live but its trial does not name it"
                ));
            }
        }
        cluster.list_agents();
        Ok(())
    }
}

/// The allocation ids a message names.
fn allocation_ids_of(message: &mut AgentMessage) -> Vec<&mut String> {
    match &mut message.body {
        None => Vec::new(),
        Some(Body::Hello(hello)) => hello
            .allocations
            .iter_mut()
            .map(|a| &mut a.allocation_id)
            .collect(),
        Some(Body::Heartbeat(beat)) => beat
            .allocations
            .iter_mut()
            .map(|a| &mut a.allocation_id)
            .collect(),
        Some(Body::Training(report)) => vec![&mut report.allocation_id],
        Some(Body::Validation(report)) => vec![&mut report.allocation_id],
        Some(Body::CheckpointCompleted(report)) => vec![&mut report.allocation_id],
        Some(Body::Logs(logs)) => vec![&mut logs.allocation_id],
        Some(Body::AllocationStarted(started)) => vec![&mut started.allocation_id],
        Some(Body::AllocationExited(exited)) => vec![&mut exited.allocation_id],
        Some(Body::RendezvousReady(ready)) => vec![&mut ready.allocation_id],
        Some(Body::CheckpointPart(part)) => vec![&mut part.allocation_id],
    }
}

impl Default for AgentReplay {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_common::proto::{
        AllocationExited, AllocationStarted, AllocationStatus, CheckpointCompleted, Heartbeat,
        LogLine, LogLines, TrainingReport, ValidationReport,
    };
    use proptest::prelude::*;

    /// Texts for the string fields: valid, malformed, hostile.
    const TEXTS: &[&str] = &[
        r#"{"loss": 0.5}"#,
        r#"{"validation_loss": 0.25}"#,
        "",
        "not json",
        "[1, 2, 3]",
        r#"{"loss": "low"}"#,
        r#"{"validation_loss": 1e400}"#,
        "0e5f7c1e-6a3b-4d7e-9b1a-2f4c8d9e0a11",
        "../../etc/passwd",
        r#"{"uuid": "0e5f7c1e-6a3b-4d7e-9b1a-2f4c8d9e0a11", "files": [{"path": "/etc/shadow", "size": 1, "blake3": "00"}]}"#,
    ];

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(TEXTS).prop_map(str::to_string),
            ".{0,40}",
        ]
    }

    fn allocation() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (0usize..3).prop_map(|n| format!("#{n}")),
            1 => "[a-z0-9-]{0,12}",
        ]
    }

    fn step() -> impl Strategy<Value = u64> {
        prop_oneof![8 => 0u64..60, 1 => Just(u64::MAX), 1 => any::<u64>()]
    }

    fn message() -> impl Strategy<Value = AgentMessage> {
        let body = prop_oneof![
            (allocation(), step(), text()).prop_map(|(allocation_id, step, metrics_json)| {
                Body::Training(TrainingReport {
                    allocation_id,
                    step,
                    metrics_json,
                })
            }),
            (allocation(), step(), text()).prop_map(|(allocation_id, step, metrics_json)| {
                Body::Validation(ValidationReport {
                    allocation_id,
                    step,
                    metrics_json,
                })
            }),
            (allocation(), text(), step(), any::<u64>(), text()).prop_map(
                |(allocation_id, uuid, step, size_bytes, metadata_json)| {
                    Body::CheckpointCompleted(CheckpointCompleted {
                        allocation_id,
                        uuid,
                        step,
                        size_bytes,
                        metadata_json,
                    })
                }
            ),
            (allocation(), text()).prop_map(|(allocation_id, text)| Body::Logs(LogLines {
                allocation_id,
                lines: vec![LogLine {
                    stream: "stdout".into(),
                    text,
                    timestamp_ms: -1
                }],
                ..Default::default()
            })),
            (allocation(), step()).prop_map(|(allocation_id, start_step)| {
                Body::AllocationStarted(AllocationStarted {
                    allocation_id,
                    start_step,
                })
            }),
            (allocation(), 0i32..7, any::<i32>(), step(), text()).prop_map(
                |(allocation_id, kind, exit_code, end_step, message)| {
                    Body::AllocationExited(AllocationExited {
                        allocation_id,
                        kind,
                        exit_code,
                        end_step,
                        message,
                    })
                }
            ),
            prop::collection::vec((allocation(), 0i32..6, step()), 0..3).prop_map(|statuses| {
                Body::Heartbeat(Heartbeat {
                    allocations: statuses
                        .into_iter()
                        .map(|(allocation_id, phase, last_step)| AllocationStatus {
                            allocation_id,
                            phase,
                            last_step,
                        })
                        .collect(),
                    commands_received: 0,
                })
            }),
        ];
        prop::option::weighted(0.97, body).prop_map(|body| AgentMessage { body })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn any_agent_messages_leave_the_cluster_consistent(
            messages in prop::collection::vec(message(), 1..40)
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let _entered = runtime.enter();
            let mut replay = AgentReplay::new();
            prop_assert_eq!(replay.allocation_ids().len(), 2, "both trials started");
            for message in messages {
                let described = format!("{message:?}");
                if let Err(broken) = replay.feed(message) {
                    prop_assert!(false, "after {}: {}", described, broken);
                }
            }
        }
    }
}

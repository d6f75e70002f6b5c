//! The master's Prometheus metrics. Labels stay bounded: states, reasons, backends, command names,
//! agent ids and experiment ids, never trial or checkpoint ids.

use std::fmt;

use baton_common::metrics::{
    DURATION_BUCKETS, FAST_BUCKETS, counter, counter_vec, float_gauge_vec, gauge, gauge_vec,
    histogram, histogram_vec,
};
use prometheus::{
    GaugeVec, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry,
};

use crate::store::{Database, StoreResult};

/// Histogram buckets for a scheduling pass, in seconds: 100 µs to 2.5 s.
const SCHEDULE_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Every metric the master exports, registered in `registry`.
#[derive(Clone)]
pub struct MasterMetrics {
    /// What `/metrics` renders.
    pub registry: Registry,
    /// Agents by state (`enabled`, `disabled`, `draining`, `disconnected`).
    pub agents: IntGaugeVec,
    /// Slots of each agent.
    pub agent_slots: IntGaugeVec,
    /// Slots of each agent that current allocations hold.
    pub agent_slots_used: IntGaugeVec,
    /// Seconds since each agent was last heard from.
    pub agent_heartbeat_age: GaugeVec,
    /// Trials by state.
    pub trials: IntGaugeVec,
    /// Experiments by state.
    pub experiments: IntGaugeVec,
    /// Allocations ended, by exit reason.
    pub allocations_ended: IntCounterVec,
    /// From the request that suspends a trial to its first step on its next allocation.
    pub move_duration: Histogram,
    /// Checkpoints reported committed, by storage backend.
    pub checkpoints_committed: IntCounterVec,
    /// Bytes of the checkpoints reported committed, by storage backend.
    pub checkpoint_committed_bytes: IntCounterVec,
    /// Checkpoints deleted from storage (GC, experiment deletion, fenced allocations).
    pub checkpoints_deleted: IntCounter,
    /// Bytes those deletions freed.
    pub deleted_bytes: IntCounter,
    /// Storage deletions that failed (they are retried).
    pub deletion_failures: IntCounter,
    /// Bytes of checkpoints kept in storage, per experiment.
    pub storage_kept_bytes: IntGaugeVec,
    /// Messages received from agents, by kind.
    pub agent_reports: IntCounterVec,
    /// Commands waiting for the cluster task.
    pub queue_depth: IntGauge,
    /// Time the cluster task spent on each command, by command.
    pub command_duration: HistogramVec,
    /// Time of each scheduling pass of the cluster task.
    pub schedule_duration: Histogram,
}

impl MasterMetrics {
    /// Registers every metric in a new registry.
    pub fn new() -> Self {
        let r = Registry::new();
        Self {
            agents: gauge_vec(&r, "baton_agents", "Agents by state.", &["state"]),
            agent_slots: gauge_vec(&r, "baton_agent_slots", "Slots of each agent.", &["agent"]),
            agent_slots_used: gauge_vec(
                &r,
                "baton_agent_slots_used",
                "Slots of each agent held by current allocations.",
                &["agent"],
            ),
            agent_heartbeat_age: float_gauge_vec(
                &r,
                "baton_agent_heartbeat_age_seconds",
                "Seconds since the master last heard from each agent.",
                &["agent"],
            ),
            trials: gauge_vec(&r, "baton_trials", "Trials by state.", &["state"]),
            experiments: gauge_vec(&r, "baton_experiments", "Experiments by state.", &["state"]),
            allocations_ended: counter_vec(
                &r,
                "baton_allocations_ended_total",
                "Allocations ended, by exit reason.",
                &["reason"],
            ),
            move_duration: histogram(
                &r,
                "baton_trial_move_duration_seconds",
                "From the request that suspends a trial (move, disable, preemption) to its first \
                 step on its next allocation.",
                &DURATION_BUCKETS,
            ),
            checkpoints_committed: counter_vec(
                &r,
                "baton_checkpoints_committed_total",
                "Checkpoints reported committed by agents, by storage backend.",
                &["backend"],
            ),
            checkpoint_committed_bytes: counter_vec(
                &r,
                "baton_checkpoint_committed_bytes_total",
                "Bytes of the checkpoints reported committed, by storage backend.",
                &["backend"],
            ),
            checkpoints_deleted: counter(
                &r,
                "baton_checkpoints_deleted_total",
                "Checkpoints deleted from storage (GC, experiment deletion, fenced allocations).",
            ),
            deleted_bytes: counter(
                &r,
                "baton_checkpoint_deleted_bytes_total",
                "Bytes freed in storage by checkpoint deletions.",
            ),
            deletion_failures: counter(
                &r,
                "baton_checkpoint_deletion_failures_total",
                "Checkpoint deletions from storage that failed (each is retried).",
            ),
            storage_kept_bytes: gauge_vec(
                &r,
                "baton_storage_kept_bytes",
                "Bytes of checkpoints kept in storage, per experiment.",
                &["experiment"],
            ),
            agent_reports: counter_vec(
                &r,
                "baton_agent_reports_received_total",
                "Messages received from agents, by kind.",
                &["kind"],
            ),
            queue_depth: gauge(
                &r,
                "baton_master_command_queue_depth",
                "Commands waiting for the cluster task.",
            ),
            command_duration: histogram_vec(
                &r,
                "baton_master_command_duration_seconds",
                "Time the cluster task spent applying each command, by command.",
                &["command"],
                &FAST_BUCKETS,
            ),
            schedule_duration: histogram(
                &r,
                "baton_master_schedule_pass_duration_seconds",
                "Time of each scheduling pass of the cluster task (placement, preemption, why \
                 queued trials wait).",
                &SCHEDULE_BUCKETS,
            ),
            registry: r,
        }
    }

    /// Sets the kept-bytes gauge from `database`, through a short-lived connection of its own
    /// (never the cluster task's).
    pub fn refresh_storage(&self, database: &Database) -> StoreResult<()> {
        let kept = crate::store::kept_bytes_by_experiment(database)?;
        self.storage_kept_bytes.reset();
        for (experiment, bytes) in kept {
            self.storage_kept_bytes
                .with_label_values(&[&experiment.to_string()])
                .set(bytes);
        }
        Ok(())
    }
}

impl Default for MasterMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MasterMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterMetrics")
    }
}

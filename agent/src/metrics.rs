//! The agent's Prometheus metrics. Labels stay bounded: slot ids (GPU UUIDs), slot kinds and
//! storage backends, never trial, allocation or checkpoint ids.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use baton_common::metrics::{DURATION_BUCKETS, counter_vec, gauge, gauge_vec, histogram_vec};
use baton_common::proto::Slot;
use prometheus::{HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Registry};

/// Every metric the agent exports, registered in `registry`.
#[derive(Clone)]
pub struct AgentMetrics {
    /// What `/metrics` renders.
    pub registry: Registry,
    /// 1 while a session with the master is open.
    pub connected: IntGauge,
    /// Allocations this daemon runs or supervises.
    pub allocations_running: IntGauge,
    /// 1 for each offered slot a running allocation holds, by slot id (the GPU UUID) and kind.
    slot_in_use: IntGaugeVec,
    /// Offered slots, by kind.
    slots: IntGaugeVec,
    /// Checkpoint transfers done (`commit`, `restore`), by direction and backend.
    transfers: IntCounterVec,
    /// Bytes moved by those transfers.
    transfer_bytes: IntCounterVec,
    /// Durations of those transfers.
    transfer_duration: HistogramVec,
    /// Checkpoint transfers that failed, by direction and backend.
    transfer_failures: IntCounterVec,
}

/// The storage backends, as `backend` labels.
const BACKENDS: [&str; 4] = ["shared_fs", "s3", "gcs", "azure"];

/// Which way a checkpoint moved.
#[derive(Debug, Clone, Copy)]
pub enum Transfer {
    /// Uploaded (or, in place, hashed) and committed to storage.
    Commit,
    /// Downloaded and verified for a trial to resume from.
    Restore,
}

impl Transfer {
    fn label(self) -> &'static str {
        match self {
            Transfer::Commit => "commit",
            Transfer::Restore => "restore",
        }
    }
}

impl AgentMetrics {
    /// Registers every metric in a new registry; `slots` are the offered slots, all free.
    pub fn new(slots: &[Slot]) -> Self {
        let r = Registry::new();
        let labels = ["direction", "backend"];
        let metrics = Self {
            connected: gauge(
                &r,
                "baton_agent_master_connected",
                "1 while a session with the master is open.",
            ),
            allocations_running: gauge(
                &r,
                "baton_agent_allocations_running",
                "Allocations this daemon runs or supervises.",
            ),
            slot_in_use: gauge_vec(
                &r,
                "baton_agent_slot_in_use",
                "1 when a running allocation holds the slot (GPU slots are labelled by UUID).",
                &["slot", "kind"],
            ),
            slots: gauge_vec(
                &r,
                "baton_agent_slots",
                "Offered slots, by kind.",
                &["kind"],
            ),
            transfers: counter_vec(
                &r,
                "baton_agent_checkpoint_transfers_total",
                "Checkpoints committed to or restored from storage, by direction and backend.",
                &labels,
            ),
            transfer_bytes: counter_vec(
                &r,
                "baton_agent_checkpoint_transfer_bytes_total",
                "Bytes of checkpoints committed or restored, by direction and backend.",
                &labels,
            ),
            transfer_duration: histogram_vec(
                &r,
                "baton_agent_checkpoint_transfer_duration_seconds",
                "Time to commit or restore one checkpoint, by direction and backend.",
                &labels,
                &DURATION_BUCKETS,
            ),
            transfer_failures: counter_vec(
                &r,
                "baton_agent_checkpoint_transfer_failures_total",
                "Checkpoint commits or restores that failed, by direction and backend.",
                &labels,
            ),
            registry: r,
        };
        for slot in slots {
            metrics.slots.with_label_values(&[&slot.kind]).inc();
        }
        // Failures start at 0 for every backend, so `increase()` sees the first one.
        for direction in [Transfer::Commit, Transfer::Restore] {
            for backend in BACKENDS {
                metrics
                    .transfer_failures
                    .with_label_values(&[direction.label(), backend]);
            }
        }
        metrics.set_slots_in_use(slots, &HashSet::new());
        metrics
    }

    /// Marks the slots whose ids are in `used` as held, the other offered ones as free.
    pub fn set_slots_in_use(&self, slots: &[Slot], used: &HashSet<&str>) {
        for slot in slots {
            let held = used.contains(slot.id.as_str());
            self.slot_in_use
                .with_label_values(&[&slot.id, &slot.kind])
                .set(i64::from(held));
        }
    }

    /// Counts a finished transfer of `bytes` that took `took`.
    pub fn transferred(&self, direction: Transfer, backend: &str, bytes: u64, took: Duration) {
        let labels = [direction.label(), backend];
        self.transfers.with_label_values(&labels).inc();
        self.transfer_bytes.with_label_values(&labels).inc_by(bytes);
        self.transfer_duration
            .with_label_values(&labels)
            .observe(took.as_secs_f64());
    }

    /// Counts a failed transfer.
    pub fn transfer_failed(&self, direction: Transfer, backend: &str) {
        self.transfer_failures
            .with_label_values(&[direction.label(), backend])
            .inc();
    }
}

impl fmt::Debug for AgentMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgentMetrics")
    }
}

/// Holds the connected gauge at 1 for as long as a session lives.
pub struct ConnectedGauge(prometheus::IntGauge);

impl ConnectedGauge {
    /// Sets the gauge to 1 until the returned guard is dropped.
    pub fn set(metrics: &AgentMetrics) -> Self {
        metrics.connected.set(1);
        Self(metrics.connected.clone())
    }
}

impl Drop for ConnectedGauge {
    fn drop(&mut self) {
        self.0.set(0);
    }
}

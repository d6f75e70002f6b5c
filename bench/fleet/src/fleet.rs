//! What the simulated agents of one run share: counters and the heartbeat acknowledgement samples.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Counters of a fleet of simulated agents, updated by every agent task.
#[derive(Default)]
pub struct Fleet {
    /// Agents that received their Welcome.
    pub registered: AtomicU64,
    /// Agent sessions that failed or ended before the run stopped them.
    pub sessions_failed: AtomicU64,
    /// Start requests received (repeats of a known allocation not counted).
    pub starts: AtomicU64,
    /// Allocations running now.
    pub running: AtomicI64,
    /// Training, validation and checkpoint reports sent.
    pub reports: AtomicU64,
    /// Checkpoints reported.
    pub checkpoints: AtomicU64,
    /// Whether acknowledgement round trips are being recorded.
    pub measuring: AtomicBool,
    /// Heartbeat to acknowledgement round trips recorded while measuring.
    acks: Mutex<Vec<Duration>>,
}

impl Fleet {
    /// Records one heartbeat's round trip if measuring.
    pub fn ack(&self, round_trip: Duration) {
        if self.measuring.load(Ordering::Relaxed) {
            self.acks.lock().expect("ack samples").push(round_trip);
        }
    }

    /// Takes the round trips recorded so far.
    pub fn take_acks(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.acks.lock().expect("ack samples"))
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

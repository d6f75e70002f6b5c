//! The Baton agent: a session with the master, trial processes, the harness socket and transfers.

pub mod allocation;
pub mod fence;
pub mod harness;
pub mod harness_files;
pub mod metrics;
pub mod policy;
pub mod replay;
pub mod rotation;
pub mod session;
pub mod slots;
pub mod supervisor;

pub use session::{AgentOptions, run_agent};

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

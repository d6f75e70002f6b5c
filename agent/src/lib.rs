//! The Baton agent: a session with the master, trial processes, the harness socket and transfers.

pub mod allocation;
pub mod harness;
pub mod harness_files;
pub mod policy;
pub mod session;
pub mod slots;

pub use session::{AgentOptions, run_agent};

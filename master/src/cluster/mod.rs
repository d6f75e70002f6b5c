//! The one owner of the master's cluster state: agents, experiments, trials and allocations.

mod agents;
mod checkpoints;
mod clock;
mod command;
mod deletion;
mod desired;
mod experiments;
mod explain;
mod gangs;
mod gauges;
mod gc;
mod handle;
mod lifecycle;
mod log_seqs;
mod metric_summary;
mod pins;
mod reconcile;
mod replay;
mod reports;
mod running_gc;
mod scheduling;
mod search;
#[cfg(test)]
mod simulation;
mod starting;
mod state;
mod storage_use;
mod sweep;
mod trials;
mod views;

pub use clock::{Clock, ManualClock, SystemClock};
pub use command::{Command, LogWindow};
pub use desired::Deadlines;
pub use handle::{ClusterHandle, run_cluster};
pub use replay::{AGENT_ID, AgentReplay};
pub use state::{Cluster, ClusterEvent, ClusterSettings};

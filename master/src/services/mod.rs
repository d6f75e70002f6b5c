//! gRPC services: they decode requests, call the cluster handle and encode replies.

mod admin;
mod agent;

pub use admin::AdminApi;
pub use agent::AgentApi;

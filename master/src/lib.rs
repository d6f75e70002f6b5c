//! The Baton master: admin and agent gRPC services, scheduler, searchers, store and GC.

pub mod auth;
pub mod cluster;
pub mod error;
pub mod http;
pub mod leadership;
pub mod metrics;
pub mod prepare;
pub mod scheduler;
pub mod searcher;
pub mod server;
pub mod services;
pub mod standby;
pub mod states;
pub mod status_codes;
pub mod stopping;
pub mod store;

pub use server::{MasterOptions, serve};

//! Shared pieces of Baton: the gRPC protocol, the experiment config schema, the GC policy and
//! checkpoint storage.

pub mod config;
pub mod daemon;
pub mod gc;
pub mod layered_args;
pub mod proto;
pub mod storage;
pub mod tls;

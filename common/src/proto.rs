//! Generated gRPC code for the `baton.v1` protocol.

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("baton.v1");

/// Version of the agent protocol; agents and master must agree.
pub const PROTOCOL_VERSION: u32 = 2;

/// Encoded file descriptor set, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("baton_descriptor");

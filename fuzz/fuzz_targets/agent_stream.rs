//! A stream of agent messages (length-delimited protobuf) fed to a cluster with two running
//! trials; allocation ids `#0`, `#1` name the live allocations. The cluster must stay consistent.
#![no_main]

use baton_common::proto::AgentMessage;
use baton_master::cluster::AgentReplay;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let mut replay = AgentReplay::new();
    let mut buffer = data;
    for _ in 0..64 {
        let Ok(message) = AgentMessage::decode_length_delimited(&mut buffer) else {
            break;
        };
        if let Err(broken) = replay.feed(message) {
            panic!("{broken}");
        }
    }
});

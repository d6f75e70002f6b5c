//! Shared pieces of Baton: the gRPC protocol, the experiment config schema, the GC policy and
//! checkpoint storage.

pub mod config;
pub mod daemon;
pub mod gc;
pub mod json_shapes;
pub mod layered_args;
pub mod master_list;
pub mod metrics;
pub mod proto;
pub mod storage;
pub mod tls;

/// An error and its causes joined with `: `, skipping causes whose text is already included.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

//! Transport refusals with the codes callers expect: a request that is not valid protobuf is
//! `INVALID_ARGUMENT` (tonic answers `INTERNAL`), one over the size limit `RESOURCE_EXHAUSTED`
//! (tonic answers `OUT_OF_RANGE`).

use tonic::{Code, Status};
use tower::util::MapResponseLayer;

/// Prefix of prost's decode errors, as tonic reports them.
const DECODE_ERROR: &str = "failed to decode Protobuf message";
/// Prefix of tonic's refusal of a message over the size limit.
const TOO_LARGE: &str = "Error, decoded message length too large";

/// The status a transport refusal should have had; None for any other status.
pub fn remapped(status: &Status) -> Option<Status> {
    let message = status.message();
    let code = match status.code() {
        Code::Internal if message.starts_with(DECODE_ERROR) => Code::InvalidArgument,
        Code::OutOfRange if message.starts_with(TOO_LARGE) => Code::ResourceExhausted,
        _ => return None,
    };
    Some(Status::new(
        code,
        format!("the request was refused: {message}"),
    ))
}

/// `status` with its transport refusal code corrected.
pub fn corrected(status: Status) -> Status {
    remapped(&status).unwrap_or(status)
}

/// A layer correcting the codes of refusals sent in response headers (unary calls and the first
/// message of streams).
pub fn layer<B>() -> MapResponseLayer<fn(http::Response<B>) -> http::Response<B>> {
    MapResponseLayer::new(correct_response::<B>)
}

fn correct_response<B>(mut response: http::Response<B>) -> http::Response<B> {
    if let Some(fixed) = Status::from_header_map(response.headers()).and_then(|s| remapped(&s)) {
        let headers = response.headers_mut();
        headers.remove("grpc-status");
        headers.remove("grpc-message");
        if fixed.add_header(headers).is_err() {
            tracing::warn!("cannot rewrite a refusal's status");
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transport_refusals_are_remapped() {
        let decode = Status::internal("failed to decode Protobuf message: invalid wire type");
        assert_eq!(remapped(&decode).unwrap().code(), Code::InvalidArgument);
        let large = Status::out_of_range(
            "Error, decoded message length too large: found 9 bytes, the limit is: 8 bytes",
        );
        assert_eq!(remapped(&large).unwrap().code(), Code::ResourceExhausted);
        assert!(remapped(&Status::internal("the store failed")).is_none());
        assert!(remapped(&Status::out_of_range("step 9 is past the end")).is_none());
    }

    #[test]
    fn response_headers_are_rewritten() {
        let response: http::Response<()> =
            Status::internal("failed to decode Protobuf message: x").into_http();
        let fixed = correct_response(response);
        let status = Status::from_header_map(fixed.headers()).unwrap();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("failed to decode"),
            "{}",
            status.message()
        );
    }
}

//! The AESM (aesmd) IPC protocol, as spoken on `/var/run/aesmd/aesm.socket` by Intel's
//! `libsgx_quote_ex`, Gramine, Open Enclave and Fortanix's `aesm-client`.
//!
//! One connection carries one request and one response. Each is a 4-byte little-endian length
//! followed by a proto2 `aesm.message.Request` / `Response`. This crate holds no sockets: it works on
//! byte slices and on any `std::io::Read`/`Write` or tokio `AsyncRead`/`AsyncWrite`.
//!
//! - [`wire`]: the protobuf messages (prost derives written from the field numbers; no `protoc`).
//! - [`decode_request`] / [`encode_request`]: a typed, validated view ([`AesmRequest`]) that checks
//!   proto2 `required` fields by hand.
//! - [`encode_response`] / [`decode_response`]: typed responses ([`AesmResponse`]); `errorCode` is
//!   always emitted.
//! - [`frame`]: length-prefixed framing with a maximum size checked before allocating.
//! - [`codes`]: `aesm_error_t`, `sgx_status_t`, `quote3_error_t` and the client-side mappings.
//! - [`att_key_id`]: sizes and the `SelectAttKeyID` key-id list.
//!
//! # Example
//!
//! ```
//! use aesm_protocol::{
//!     AesmCode, AesmRequest, AesmResponse, GetQuoteSizeExRequest, GetQuoteSizeExResponse,
//!     RequestKind, decode_request, decode_response, encode_request, encode_response,
//!     frame::{read_frame, write_frame, DEFAULT_MAX_FRAME},
//! };
//!
//! // Client side: frame a request.
//! let request = AesmRequest::GetQuoteSizeEx(GetQuoteSizeExRequest {
//!     att_key_id: Some(vec![0u8; 256]),
//!     timeout: Some(15_000),
//! });
//! let mut wire = Vec::new();
//! write_frame(&mut wire, &encode_request(&request))?;
//!
//! // Server side: read the frame, decode, answer.
//! let body = read_frame(&mut wire.as_slice(), DEFAULT_MAX_FRAME)?.expect("a frame");
//! let decoded = decode_request(&body)?;
//! assert_eq!(decoded, request);
//! let reply = AesmResponse::error(decoded.kind(), AesmCode::AttKeyNotInitialized);
//! let reply_bytes = encode_response(&reply);
//!
//! // Client side: decode the answer to the request it sent.
//! let answer = decode_response(&reply_bytes, RequestKind::GetQuoteSizeEx)?;
//! assert_eq!(
//!     answer,
//!     AesmResponse::GetQuoteSizeEx(GetQuoteSizeExResponse { error_code: 42, quote_size: None })
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod att_key_id;
pub mod codes;
pub mod error;
pub mod frame;
mod request;
mod response;
pub mod wire;

pub use att_key_id::{AttKeyIdSelection, encode_att_key_id_list, parse_att_key_id_list};
pub use codes::{
    AesmCode, QuoteExApi, TransportStatus, aesm_code_for_quote3_error, describe_aesm_code,
    generic_sgx_status, quote3_error, quote3_error_for_sgx_status, sgx_status, sgx_status_for,
    sgx_status_for_transport,
};
pub use error::{DecodeError, FrameError, ProtocolError};
pub use request::{
    AesmRequest, GetQuoteExRequest, GetQuoteSizeExRequest, GetSupportedAttKeyIdNumRequest,
    GetSupportedAttKeyIdsRequest, InitQuoteExRequest, LegacyKind, RequestKind,
    SelectAttKeyIdRequest, decode_request, encode_request,
};
pub use response::{
    AesmResponse, GetQuoteExResponse, GetQuoteSizeExResponse, GetSupportedAttKeyIdNumResponse,
    GetSupportedAttKeyIdsResponse, InitQuoteExResponse, SelectAttKeyIdResponse, decode_response,
    encode_response, response_field_name,
};

/// Decodes a buffer holding exactly one frame (length prefix + body, at most
/// [`frame::DEFAULT_MAX_FRAME`] bytes of body, nothing after it) into a request.
///
/// This is the entry point for fuzzing the daemon's input path: it must return an error, never
/// panic, for any input.
pub fn decode_frame_and_request(bytes: &[u8]) -> Result<AesmRequest, ProtocolError> {
    let body = frame::parse_frame(bytes, frame::DEFAULT_MAX_FRAME)?;
    Ok(decode_request(body)?)
}

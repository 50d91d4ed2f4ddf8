//! Error types of the protocol crate: one per domain (framing, message decoding).

use std::io;

/// A length-prefixed frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more bytes than the caller allows; nothing was allocated.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// The announced body length.
        len: u64,
        /// The caller's maximum.
        max: u32,
    },
    /// The peer closed the stream in the middle of the 4-byte length prefix.
    #[error("connection closed after {got} of 4 length-prefix bytes")]
    TruncatedPrefix {
        /// Prefix bytes received.
        got: usize,
    },
    /// The peer closed the stream before the whole body arrived.
    #[error("connection closed after {got} of {expected} body bytes")]
    TruncatedBody {
        /// The announced body length.
        expected: u32,
        /// Body bytes received.
        got: usize,
    },
    /// Bytes follow the frame in a buffer that must hold exactly one frame.
    #[error("{extra} unexpected bytes after the frame")]
    TrailingBytes {
        /// Number of bytes after the frame.
        extra: usize,
    },
    /// An I/O error from the underlying stream (including timeouts).
    #[error("i/o error on the AESM stream: {0}")]
    Io(#[from] io::Error),
}

/// Bytes that are not a valid AESM request or response.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a well-formed protobuf message of the expected type.
    #[error("malformed protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A proto2 `required` field is absent.
    #[error("{message} lacks its required field `{field}`")]
    MissingRequiredField {
        /// The protobuf message name, e.g. `GetQuoteExRequest`.
        message: &'static str,
        /// The field name, e.g. `buf_size`.
        field: &'static str,
    },
    /// The `Request` wrapper sets none of the known sub-messages.
    #[error("request sets no known sub-message")]
    NoKnownRequest,
    /// The `Response` wrapper lacks the sub-message answering the request that was sent.
    #[error("response lacks the expected `{expected}` field")]
    MissingResponseField {
        /// The expected response field name, e.g. `getQuoteExRes`.
        expected: &'static str,
    },
}

/// Either a framing or a decoding failure (the fuzz entry point reports both).
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The frame itself was bad.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The frame body was not a valid message.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

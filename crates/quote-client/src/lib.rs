//! Synchronous client for the AESM socket (`/var/run/aesmd/aesm.socket`), speaking the quote-ex
//! requests exactly as Intel's `libsgx_quote_ex` does: one connection per request, a client timeout
//! (15000 ms by default) on connect, write and read, and typed errors that map 1:1 onto the
//! transport statuses of Intel's client ([`ClientError::sgx_status`]).
//!
//! Unlike Intel's client it survives a quote helper that starts after the app (a node reboot, a
//! helper rollout): while the socket is absent or refuses connections (a stale socket file), each
//! request waits for the service with backoff, for at most [`DEFAULT_SERVICE_WAIT`]
//! (`CONFCOM_AESM_WAIT_SECS` changes it, `0` turns it off), and then fails as Intel's does. Every
//! other connect error is returned at once, and a request whose connection was accepted is never
//! sent again.
//!
//! No async runtime is needed: the C library `libsgx_quote_ex.so.1` and the CLI call it directly.
//! Replies are untrusted: short, oversized or malformed ones, and ones answering the wrong request,
//! become [`ClientError::BadResponse`], never a panic.
//!
//! # Example
//!
//! ```no_run
//! use quote_client::AesmClient;
//!
//! # fn main() -> Result<(), quote_client::ClientError> {
//! let client = AesmClient::new(quote_client::default_socket_path());
//! let num = client.get_supported_att_key_id_num()?;
//! let ids = client.get_supported_att_key_ids(num)?;
//! let key_id = &ids[..256];
//! client.init_quote_ex(key_id, None)?; // size query
//! let init = client.init_quote_ex(key_id, Some(32))?; // QE target info + public key id
//! let qe_target_info = init.target_info.unwrap_or_default();
//! # let report = vec![0u8; 432];
//! // ... the enclave makes a report for `qe_target_info` ...
//! let size = client.get_quote_size_ex(Some(key_id))?;
//! let quote = client.get_quote_ex(&report, key_id, None, size)?.quote;
//! # let _ = (qe_target_info, quote);
//! # Ok(())
//! # }
//! ```

mod error;

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use aesm_protocol::att_key_id::{ATT_KEY_ID_SIZE, QE_REPORT_INFO_SIZE, TARGET_INFO_SIZE};
use aesm_protocol::frame::{read_frame, write_frame};
use aesm_protocol::{
    AesmRequest, AesmResponse, FrameError, GetQuoteExRequest, GetQuoteExResponse,
    GetQuoteSizeExRequest, GetSupportedAttKeyIdNumRequest, GetSupportedAttKeyIdsRequest,
    InitQuoteExRequest, InitQuoteExResponse, SelectAttKeyIdRequest, decode_response,
    encode_request,
};
use socket2::{Domain, SockAddr, Socket, Type};

pub use error::{ClientError, Stage, Unavailable};

/// Where Intel's client and daemon put the socket.
pub const DEFAULT_SOCKET_PATH: &str = "/var/run/aesmd/aesm.socket";
/// Environment variable that overrides [`DEFAULT_SOCKET_PATH`] (for tests and non-standard nodes).
pub const SOCKET_ENV: &str = "CONFCOM_AESM_SOCKET";
/// Intel's client timeout (`IPC_LATENCY` in release builds).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(15_000);
/// How long a request waits for a service that is not up yet (socket absent or refusing).
pub const DEFAULT_SERVICE_WAIT: Duration = Duration::from_secs(30);
/// Environment variable that overrides [`DEFAULT_SERVICE_WAIT`], in seconds (`0`: do not wait).
pub const SERVICE_WAIT_ENV: &str = "CONFCOM_AESM_WAIT_SECS";
/// The longest pause between two connection attempts while waiting for the service.
const SERVICE_WAIT_MAX_BACKOFF: Duration = Duration::from_millis(500);
/// Largest response accepted by default (a `GetQuoteEx` reply may be bigger when the caller's quote
/// buffer is: see [`AesmClient::get_quote_ex`]).
pub const DEFAULT_MAX_RESPONSE: u32 = 1024 * 1024;

/// Slack on top of the quote buffer for the rest of a `GetQuoteEx` reply (errorCode, echoed
/// `qe_report_info`, protobuf overhead).
const GET_QUOTE_EX_OVERHEAD: u32 = QE_REPORT_INFO_SIZE as u32 + 1024;

/// The socket path to use: `$CONFCOM_AESM_SOCKET` if set and non-empty, else
/// [`DEFAULT_SOCKET_PATH`]. `SGX_AESM_ADDR` is deliberately not read: consumers only test its
/// presence, its value is not a path.
pub fn default_socket_path() -> PathBuf {
    socket_path_from(std::env::var_os(SOCKET_ENV))
}

fn socket_path_from(value: Option<OsString>) -> PathBuf {
    match value {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_SOCKET_PATH),
    }
}

/// How long to wait for the service: `$CONFCOM_AESM_WAIT_SECS` if it is a number of seconds
/// (fractions allowed, `0` for no wait, at most a day), else [`DEFAULT_SERVICE_WAIT`].
pub fn service_wait_from_env() -> Duration {
    service_wait_from(std::env::var_os(SERVICE_WAIT_ENV).as_deref())
}

/// [`service_wait_from_env`] for a given value of the variable.
pub fn service_wait_from(value: Option<&OsStr>) -> Duration {
    const MAX: Duration = Duration::from_secs(24 * 60 * 60);
    value
        .and_then(OsStr::to_str)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .map_or(DEFAULT_SERVICE_WAIT, |wait| wait.min(MAX))
}

/// A client for one AESM socket. Cheap to clone; each request opens its own connection.
#[derive(Debug, Clone)]
pub struct AesmClient {
    path: PathBuf,
    timeout: Duration,
    service_wait: Duration,
    max_response: u32,
}

impl AesmClient {
    /// A client for the socket at `path` with Intel's 15000 ms timeout, waiting up to
    /// [`DEFAULT_SERVICE_WAIT`] for a service that is not up yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            timeout: DEFAULT_TIMEOUT,
            service_wait: DEFAULT_SERVICE_WAIT,
            max_response: DEFAULT_MAX_RESPONSE,
        }
    }

    /// A client for [`default_socket_path`], waiting for the service as long as
    /// [`service_wait_from_env`] says.
    pub fn from_env() -> Self {
        Self::new(default_socket_path()).with_service_wait(service_wait_from_env())
    }

    /// Sets the timeout of each request (connect + write + read together), clamped to
    /// 1 ms ..= `u32::MAX` ms (what the request's `timeout` field can carry).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.clamp(
            Duration::from_millis(1),
            Duration::from_millis(u64::from(u32::MAX)),
        );
        self
    }

    /// Sets how long each request waits for a service that is not up yet: while the socket is
    /// absent or refuses connections, the client retries with backoff (10 ms doubling to 500 ms)
    /// and gives up with [`ClientError::ServiceUnavailable`] once `wait` has passed. The request
    /// timeout starts once the service accepts. `Duration::ZERO` fails at the first refusal.
    pub fn with_service_wait(mut self, wait: Duration) -> Self {
        self.service_wait = wait;
        self
    }

    /// How long each request waits for a service that is not up yet.
    pub fn service_wait(&self) -> Duration {
        self.service_wait
    }

    /// Sets the largest response accepted (before allocating it).
    pub fn with_max_response(mut self, max: u32) -> Self {
        self.max_response = max;
        self
    }

    /// The socket path.
    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// The timeout of each request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The `timeout` field Intel's client puts into requests: the client timeout in milliseconds.
    fn timeout_field(&self) -> Option<u32> {
        Some(u32::try_from(self.timeout.as_millis()).unwrap_or(u32::MAX))
    }

    /// Opens and closes a connection without sending anything (a liveness probe).
    pub fn try_connect(&self) -> Result<(), ClientError> {
        self.connect().map(drop)
    }

    /// Sends one request on a fresh connection and returns the decoded reply to it, whatever its
    /// `errorCode`. The typed methods below also check `errorCode` and the reply's fields.
    pub fn transact(&self, request: &AesmRequest) -> Result<AesmResponse, ClientError> {
        self.transact_with_max(request, self.max_response)
    }

    fn transact_with_max(
        &self,
        request: &AesmRequest,
        max_response: u32,
    ) -> Result<AesmResponse, ClientError> {
        let (stream, deadline) = self.connect()?;
        // From here on the request is never retried: the service may already have acted on it.
        let mut stream = DeadlineStream { stream, deadline };

        write_frame(&mut stream, &encode_request(request))
            .map_err(|e| self.frame_error(e, Stage::Write))?;
        let body = read_frame(&mut stream, max_response)
            .map_err(|e| self.frame_error(e, Stage::Read))?
            .ok_or_else(|| {
                ClientError::BadResponse("connection closed without a response".into())
            })?;
        decode_response(&body, request.kind()).map_err(|e| ClientError::BadResponse(e.to_string()))
    }

    fn frame_error(&self, error: FrameError, stage: Stage) -> ClientError {
        match error {
            FrameError::Io(e) if is_timeout(&e) => ClientError::Timeout {
                stage,
                timeout: self.timeout,
            },
            FrameError::Io(e) => ClientError::Io(e),
            other => ClientError::BadResponse(other.to_string()),
        }
    }

    /// Connects, and returns the socket with the request's deadline.
    ///
    /// Two kinds of refusal are retried, each within its own bound:
    /// - a full listen backlog (`EAGAIN` on a Unix socket): the service is up but busy, so the
    ///   wait counts against the request timeout;
    /// - a service that is not up yet (socket absent, or a socket file nobody listens on): retried
    ///   for [`AesmClient::service_wait`], and the request timeout restarts after each pause.
    fn connect(&self) -> Result<(Socket, Instant), ClientError> {
        let unavailable = |source| ClientError::ServiceUnavailable {
            path: self.path.clone(),
            source,
        };
        let addr = SockAddr::unix(&self.path).map_err(unavailable)?;
        let mut deadline = Instant::now() + self.timeout;
        let mut busy_backoff = Duration::from_millis(1);
        let mut absent_backoff = Duration::from_millis(10);
        let mut wait_until: Option<Instant> = None;
        loop {
            let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(ClientError::Io)?;
            socket.set_nonblocking(true).map_err(ClientError::Io)?;
            match socket.connect(&addr) {
                Ok(()) => {
                    socket.set_nonblocking(false).map_err(ClientError::Io)?;
                    return Ok((socket, deadline));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A Unix socket reports a full backlog as EAGAIN: wait for room, within the timeout.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(ClientError::Timeout {
                            stage: Stage::Connect,
                            timeout: self.timeout,
                        });
                    }
                    thread::sleep(busy_backoff.min(deadline - now));
                    busy_backoff = (busy_backoff * 2).min(Duration::from_millis(50));
                }
                Err(e) if Unavailable::classify(&e, &self.path).is_not_up_yet() => {
                    let now = Instant::now();
                    let until = *wait_until.get_or_insert(now + self.service_wait);
                    if now >= until {
                        return Err(unavailable(e));
                    }
                    thread::sleep(absent_backoff.min(until - now));
                    absent_backoff = (absent_backoff * 2).min(SERVICE_WAIT_MAX_BACKOFF);
                    deadline = Instant::now() + self.timeout;
                }
                Err(e) => return Err(unavailable(e)),
            }
        }
    }

    /// `SelectAttKeyID`: picks a key id from `att_key_id_list` (a `sgx_ql_att_key_id_list_header_t`
    /// followed by key ids, see [`aesm_protocol::encode_att_key_id_list`]), or the platform default
    /// when `None`. Returns the selected 256-byte key id.
    pub fn select_att_key_id(
        &self,
        att_key_id_list: Option<&[u8]>,
    ) -> Result<Vec<u8>, ClientError> {
        let request = AesmRequest::SelectAttKeyId(SelectAttKeyIdRequest {
            att_key_id_list: att_key_id_list.map(<[u8]>::to_vec),
            timeout: self.timeout_field(),
        });
        let AesmResponse::SelectAttKeyId(r) = self.transact(&request)? else {
            return Err(mismatched());
        };
        check_code(r.error_code)?;
        let id = r
            .selected_att_key_id
            .ok_or_else(|| bad("no selected_att_key_id in the reply"))?;
        if id.len() != ATT_KEY_ID_SIZE {
            return Err(bad(format!(
                "selected_att_key_id has {} bytes, expected {ATT_KEY_ID_SIZE}",
                id.len()
            )));
        }
        Ok(id)
    }

    /// `InitQuoteEx`. `pub_key_id_buf_size: None` is the size-query mode (`p_pub_key_id == NULL`):
    /// the reply carries `pub_key_id_size`. `Some(n)` is the full mode with an `n`-byte buffer for
    /// the public key id (1 ..= `u32::MAX - 1`, as Intel's client checks): the reply carries the
    /// QE's target info and the public key id.
    pub fn init_quote_ex(
        &self,
        att_key_id: &[u8],
        pub_key_id_buf_size: Option<u64>,
    ) -> Result<InitQuoteExResponse, ClientError> {
        if pub_key_id_buf_size.is_some_and(|size| size == 0 || size >= u64::from(u32::MAX)) {
            return Err(ClientError::InvalidParameter(
                "pub_key_id buffer size must be between 1 and 2^32 - 2",
            ));
        }
        let request = AesmRequest::InitQuoteEx(InitQuoteExRequest {
            att_key_id: Some(att_key_id.to_vec()),
            b_pub_key_id: pub_key_id_buf_size.is_some(),
            buf_size: pub_key_id_buf_size,
            timeout: self.timeout_field(),
        });
        let AesmResponse::InitQuoteEx(r) = self.transact(&request)? else {
            return Err(mismatched());
        };
        check_code(r.error_code)?;
        let target_info_len = r.target_info.as_ref().map_or(0, Vec::len);
        if target_info_len > TARGET_INFO_SIZE {
            return Err(bad(format!(
                "target_info has {target_info_len} bytes, at most {TARGET_INFO_SIZE} expected"
            )));
        }
        if let Some(id) = &r.pub_key_id {
            let consistent = r.pub_key_id_size == Some(id.len() as u64)
                && pub_key_id_buf_size.is_some_and(|buf| id.len() as u64 <= buf);
            if !consistent {
                return Err(bad(format!(
                    "pub_key_id of {} bytes does not match pub_key_id_size {:?} and buffer {:?}",
                    id.len(),
                    r.pub_key_id_size,
                    pub_key_id_buf_size
                )));
            }
        }
        Ok(r)
    }

    /// `GetQuoteSizeEx`: the size of a quote made with `att_key_id` (`None` sends no key id, which
    /// the service rejects, as Intel's client allows).
    pub fn get_quote_size_ex(&self, att_key_id: Option<&[u8]>) -> Result<u32, ClientError> {
        let request = AesmRequest::GetQuoteSizeEx(GetQuoteSizeExRequest {
            att_key_id: att_key_id.map(<[u8]>::to_vec),
            timeout: self.timeout_field(),
        });
        let AesmResponse::GetQuoteSizeEx(r) = self.transact(&request)? else {
            return Err(mismatched());
        };
        check_code(r.error_code)?;
        r.quote_size
            .ok_or_else(|| bad("no quote_size in the reply"))
    }

    /// `GetQuoteEx`: a quote for the app enclave's `report` (432 bytes), in a `buf_size`-byte
    /// buffer (the reply's quote is zero-padded to it). With `qe_report_info` (960 bytes: nonce,
    /// app target info, space for the QE report) the reply echoes it with the QE report filled in.
    pub fn get_quote_ex(
        &self,
        report: &[u8],
        att_key_id: &[u8],
        qe_report_info: Option<&[u8]>,
        buf_size: u32,
    ) -> Result<GetQuoteExResponse, ClientError> {
        if buf_size == 0 {
            return Err(ClientError::InvalidParameter(
                "quote buffer size must not be 0",
            ));
        }
        let request = AesmRequest::GetQuoteEx(GetQuoteExRequest {
            report: report.to_vec(),
            att_key_id: Some(att_key_id.to_vec()),
            qe_report_info: qe_report_info.map(<[u8]>::to_vec),
            buf_size,
            timeout: self.timeout_field(),
        });
        let max = self
            .max_response
            .max(buf_size.saturating_add(GET_QUOTE_EX_OVERHEAD));
        let AesmResponse::GetQuoteEx(r) = self.transact_with_max(&request, max)? else {
            return Err(mismatched());
        };
        check_code(r.error_code)?;
        let quote = r
            .quote
            .as_ref()
            .ok_or_else(|| bad("no quote in the reply"))?;
        if quote.len() > buf_size as usize {
            return Err(bad(format!(
                "quote of {} bytes exceeds the {buf_size}-byte buffer",
                quote.len()
            )));
        }
        match (&r.qe_report_info, qe_report_info) {
            (Some(info), Some(_)) if info.len() != QE_REPORT_INFO_SIZE => {
                return Err(bad(format!(
                    "qe_report_info has {} bytes, expected {QE_REPORT_INFO_SIZE}",
                    info.len()
                )));
            }
            (None, Some(_)) => return Err(bad("qe_report_info was not echoed")),
            _ => {}
        }
        Ok(r)
    }

    /// `GetSupportedAttKeyIDNum`: how many attestation key ids the service supports.
    pub fn get_supported_att_key_id_num(&self) -> Result<u32, ClientError> {
        let request = AesmRequest::GetSupportedAttKeyIdNum(GetSupportedAttKeyIdNumRequest {
            timeout: self.timeout_field(),
        });
        let AesmResponse::GetSupportedAttKeyIdNum(r) = self.transact(&request)? else {
            return Err(mismatched());
        };
        check_code(r.error_code)?;
        r.att_key_id_num
            .ok_or_else(|| bad("no att_key_id_num in the reply"))
    }

    /// `GetSupportedAttKeyIDs`: `num` key ids of 256 bytes each, concatenated.
    pub fn get_supported_att_key_ids(&self, num: u32) -> Result<Vec<u8>, ClientError> {
        let buf_size = num
            .checked_mul(ATT_KEY_ID_SIZE as u32)
            .ok_or(ClientError::InvalidParameter("too many key ids"))?;
        let request = AesmRequest::GetSupportedAttKeyIds(GetSupportedAttKeyIdsRequest {
            buf_size,
            timeout: self.timeout_field(),
        });
        let AesmResponse::GetSupportedAttKeyIds(r) = self.transact(&request)? else {
            return Err(mismatched());
        };
        check_code(r.error_code)?;
        let ids = r
            .att_key_ids
            .ok_or_else(|| bad("no att_key_ids in the reply"))?;
        if ids.len() != buf_size as usize {
            return Err(bad(format!(
                "att_key_ids has {} bytes, expected {buf_size}",
                ids.len()
            )));
        }
        Ok(ids)
    }
}

fn check_code(code: u32) -> Result<(), ClientError> {
    match code {
        0 => Ok(()),
        other => Err(ClientError::Aesm(other)),
    }
}

fn bad(what: impl Into<String>) -> ClientError {
    ClientError::BadResponse(what.into())
}

/// `decode_response` returns the variant of the request's kind; anything else is a bug guard.
fn mismatched() -> ClientError {
    bad("reply does not answer the request")
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A connected socket whose every read and write is bounded by one overall deadline.
///
/// Writes use `send(MSG_NOSIGNAL)`: this client runs inside arbitrary C programs (through
/// `libsgx_quote_ex.so.1`) that may not ignore `SIGPIPE`, so a service that closes early must yield
/// `EPIPE`, not kill the process.
struct DeadlineStream {
    stream: Socket,
    deadline: Instant,
}

impl DeadlineStream {
    fn remaining(&self) -> io::Result<Duration> {
        match self.deadline.checked_duration_since(Instant::now()) {
            Some(d) if !d.is_zero() => Ok(d),
            _ => Err(io::ErrorKind::TimedOut.into()),
        }
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.remaining()?;
        self.stream.set_read_timeout(Some(remaining))?;
        (&self.stream).read(buf)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let remaining = self.remaining()?;
        self.stream.set_write_timeout(Some(remaining))?;
        self.stream.send_with_flags(buf, libc::MSG_NOSIGNAL)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_comes_from_the_env_value_or_the_default() {
        assert_eq!(
            socket_path_from(None),
            PathBuf::from("/var/run/aesmd/aesm.socket")
        );
        assert_eq!(
            socket_path_from(Some(OsString::new())),
            PathBuf::from(DEFAULT_SOCKET_PATH)
        );
        assert_eq!(
            socket_path_from(Some(OsString::from("/tmp/x/aesm.socket"))),
            PathBuf::from("/tmp/x/aesm.socket")
        );
    }

    #[test]
    fn service_wait_is_seconds_from_the_env_value_or_the_default() {
        fn os(v: &str) -> Option<&OsStr> {
            Some(OsStr::new(v))
        }
        assert_eq!(service_wait_from(None), Duration::from_secs(30));
        assert_eq!(service_wait_from(os("0")), Duration::ZERO);
        assert_eq!(service_wait_from(os(" 5 ")), Duration::from_secs(5));
        assert_eq!(service_wait_from(os("0.25")), Duration::from_millis(250));
        assert_eq!(service_wait_from(os("1e9")), Duration::from_secs(86_400));
        for bad in ["", "-1", "abc", "NaN", "inf", "5s"] {
            assert_eq!(service_wait_from(os(bad)), DEFAULT_SERVICE_WAIT, "{bad}");
        }
    }

    #[test]
    fn timeout_field_is_milliseconds() {
        let c = AesmClient::new("/nonexistent");
        assert_eq!(c.timeout_field(), Some(15_000));
        let c = c.with_timeout(Duration::from_millis(250));
        assert_eq!(c.timeout_field(), Some(250));
        let c = c.with_timeout(Duration::ZERO);
        assert_eq!(c.timeout(), Duration::from_millis(1));
        // Huge timeouts are clamped instead of overflowing the deadline arithmetic.
        let c = c
            .with_timeout(Duration::MAX)
            .with_service_wait(Duration::ZERO);
        assert_eq!(c.timeout_field(), Some(u32::MAX));
        assert!(matches!(
            c.try_connect(),
            Err(ClientError::ServiceUnavailable { .. })
        ));
    }
}

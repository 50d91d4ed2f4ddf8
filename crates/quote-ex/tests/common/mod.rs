//! An in-test AESM service on a short temp socket path: answers each request with what a handler
//! decides, and records every request it decoded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use aesm_protocol::frame::{read_frame, write_frame};
use aesm_protocol::{
    AesmRequest, AesmResponse, GetQuoteExResponse, GetQuoteSizeExResponse,
    GetSupportedAttKeyIdNumResponse, GetSupportedAttKeyIdsResponse, InitQuoteExResponse,
    RequestKind, SelectAttKeyIdResponse, decode_request, encode_response,
};
use tempfile::TempDir;

pub mod cprog;

/// What the service does with one request.
pub enum Reply {
    /// Sends this response.
    Respond(AesmResponse),
    /// Sends these raw bytes (a frame or anything else), then closes.
    Raw(Vec<u8>),
    /// Closes without answering.
    Close,
    /// Never answers; waits until the client gives up and closes its end.
    Hang,
}

/// A short temp directory for a socket.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("qx")
        .tempdir_in("/tmp")
        .unwrap()
}

/// Where [`Server::start_in`] listens in `dir`.
pub fn socket_in(dir: &Path) -> PathBuf {
    dir.join("s")
}

pub type Handler = dyn Fn(&AesmRequest) -> Reply + Send + Sync;

pub struct Server {
    dir: TempDir,
    path: PathBuf,
    requests: Arc<Mutex<Vec<AesmRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    /// Serves connections one after another (as aesmd's quoting queue does) until dropped.
    pub fn start(handler: impl Fn(&AesmRequest) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_in(temp_dir(), handler)
    }

    /// [`Server::start`] on `dir/s`, replacing a stale socket file there.
    pub fn start_in(
        dir: TempDir,
        handler: impl Fn(&AesmRequest) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let path = socket_in(dir.path());
        assert!(path.as_os_str().len() < 107);
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let requests = Arc::clone(&requests);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    serve_one(stream, &handler, &requests);
                }
            })
        };
        Server {
            dir,
            path,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// A service that answers every request with `code` in `errorCode` and no other field.
    pub fn answering(code: u32) -> Self {
        Self::start(move |request| Reply::Respond(error_reply(request.kind(), code)))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The requests decoded so far, in arrival order.
    pub fn requests(&self) -> Vec<AesmRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_one(mut stream: UnixStream, handler: &Handler, requests: &Mutex<Vec<AesmRequest>>) {
    let Ok(Some(body)) = read_frame(&mut stream, 1 << 20) else {
        return;
    };
    let Ok(request) = decode_request(&body) else {
        return;
    };
    let reply = handler(&request);
    requests.lock().unwrap().push(request);
    match reply {
        Reply::Respond(response) => {
            let _ = write_frame(&mut stream, &encode_response(&response));
        }
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes);
        }
        Reply::Close => {}
        Reply::Hang => {
            // Blocks until the client closes the connection after its timeout.
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink);
        }
    }
}

/// A response to `kind` that carries only `errorCode` = `code` (any `u32`, defined or not).
pub fn error_reply(kind: RequestKind, code: u32) -> AesmResponse {
    match kind {
        RequestKind::InitQuoteEx => AesmResponse::InitQuoteEx(InitQuoteExResponse {
            error_code: code,
            ..Default::default()
        }),
        RequestKind::GetQuoteSizeEx => AesmResponse::GetQuoteSizeEx(GetQuoteSizeExResponse {
            error_code: code,
            ..Default::default()
        }),
        RequestKind::GetQuoteEx => AesmResponse::GetQuoteEx(GetQuoteExResponse {
            error_code: code,
            ..Default::default()
        }),
        RequestKind::SelectAttKeyId => AesmResponse::SelectAttKeyId(SelectAttKeyIdResponse {
            error_code: code,
            ..Default::default()
        }),
        RequestKind::GetSupportedAttKeyIdNum => {
            AesmResponse::GetSupportedAttKeyIdNum(GetSupportedAttKeyIdNumResponse {
                error_code: code,
                ..Default::default()
            })
        }
        RequestKind::GetSupportedAttKeyIds => {
            AesmResponse::GetSupportedAttKeyIds(GetSupportedAttKeyIdsResponse {
                error_code: code,
                ..Default::default()
            })
        }
        RequestKind::Legacy(kind) => AesmResponse::Legacy {
            kind,
            error_code: code,
        },
    }
}

/// Intel's QE3 ECDSA-P256 key id (256 bytes).
pub fn intel_key_id() -> Vec<u8> {
    let mut id = vec![0u8; 256];
    id[4] = 32;
    id[6..38].copy_from_slice(&sgx_types_mrsigner());
    id[54] = 1;
    id[154] = 2;
    id
}

fn sgx_types_mrsigner() -> [u8; 32] {
    [
        0x8c, 0x4f, 0x57, 0x75, 0xd7, 0x96, 0x50, 0x3e, 0x96, 0x13, 0x7f, 0x77, 0xc6, 0x8a, 0x82,
        0x9a, 0x00, 0x56, 0xac, 0x8d, 0xed, 0x70, 0x14, 0x0b, 0x08, 0x1b, 0x09, 0x44, 0x90, 0xc5,
        0x7b, 0xff,
    ]
}

/// The `sgx_status_t` Intel's `libsgx_quote_ex` returns for each function when the service answers
/// `code`, written out from the table of `aesm-protocol.md` §1.7 (generic mapping, then the
/// per-function overrides when the generic result is `SGX_ERROR_UNEXPECTED`).
pub fn expected_status(function: &str, code: u32) -> u32 {
    let generic = match code {
        0 => 0x0000,
        1 => 0x0001,
        2 => 0x2006,
        3 => 0x0002,
        12..=14 => 0x4007,
        17 | 30 | 46 | 48 => 0x4001,
        18 => 0x400a,
        20 => 0x4006,
        21 => 0x0003,
        31 => 0x4012,
        _ => 0x0001,
    };
    if generic != 0x0001 {
        return generic;
    }
    let quoting_common = |code| match code {
        4 => Some(0x4003),
        5 => Some(0x4005),
        19 => Some(0x400a),
        16 => Some(0x0001),
        29 => Some(0x2005),
        _ => None,
    };
    let overridden = match function {
        "sgx_select_att_key_id" => match code {
            38 => Some(0x8001),
            _ => None,
        },
        "sgx_init_quote_ex" => match code {
            38 => Some(0x8001),
            50 => Some(0x8002),
            44 => Some(0x8005),
            other => quoting_common(other),
        },
        "sgx_get_quote_size_ex" => match code {
            42 => Some(0x8003),
            43 => Some(0x0001),
            38 => Some(0x8001),
            _ => None,
        },
        "sgx_get_quote_ex" => match code {
            42 => Some(0x8003),
            43 => Some(0x0001),
            38 => Some(0x8001),
            45 | 47 => Some(0x3001),
            49 => Some(0x0001),
            other => quoting_common(other),
        },
        "sgx_get_supported_att_key_id_num" | "sgx_get_supported_att_key_ids" => None,
        other => panic!("unknown function {other}"),
    };
    overridden.unwrap_or(0x0001)
}

/// The `libsgx_quote_ex.so` that cargo built for this test run. Cargo builds the package's library
/// (cdylib and rlib in one unit) before its integration tests and leaves the shared object in
/// `target/<profile>/deps/`, next to the test executable. Only `cargo build` copies it up to
/// `target/<profile>/`, so that copy may be stale or missing during `cargo test`: it is not used.
pub fn built_library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let library = deps.join("libsgx_quote_ex.so");
    assert!(
        library.is_file(),
        "{} not found (cargo builds it for this package's tests)",
        library.display()
    );
    library
}

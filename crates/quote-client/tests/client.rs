//! The client against in-test servers on temp Unix sockets: every method on the happy path, every
//! error class, and hostile or broken replies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use aesm_protocol::frame::{DEFAULT_MAX_FRAME, encode_frame, read_frame, write_frame};
use aesm_protocol::{
    AesmCode, AesmRequest, AesmResponse, GetQuoteExRequest, GetQuoteExResponse,
    GetQuoteSizeExResponse, GetSupportedAttKeyIdNumResponse, GetSupportedAttKeyIdsResponse,
    InitQuoteExRequest, InitQuoteExResponse, QuoteExApi, RequestKind, SelectAttKeyIdResponse,
    decode_request, encode_att_key_id_list, encode_response, sgx_status, wire,
};
use prost::Message;
use quote_client::{AesmClient, ClientError, Stage, Unavailable};
use tempfile::TempDir;

type Handler = Box<dyn FnOnce(UnixStream, &AesmRequest) + Send>;

struct Server {
    _dir: TempDir,
    path: PathBuf,
    thread: thread::JoinHandle<Vec<AesmRequest>>,
}

impl Server {
    /// Serves one connection per handler, in order: reads and decodes the request, then lets the
    /// handler answer (or not).
    fn start(handlers: Vec<Handler>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("qc")
            .tempdir_in("/tmp")
            .unwrap();
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let thread = thread::spawn(move || {
            let mut seen = Vec::new();
            for handler in handlers {
                let (mut stream, _) = listener.accept().unwrap();
                let body = read_frame(&mut stream, DEFAULT_MAX_FRAME).unwrap().unwrap();
                let request = decode_request(&body).unwrap();
                handler(stream, &request);
                seen.push(request);
            }
            seen
        });
        Server {
            _dir: dir,
            path,
            thread,
        }
    }

    fn client(&self) -> AesmClient {
        AesmClient::new(&self.path)
    }

    fn requests(self) -> Vec<AesmRequest> {
        self.thread.join().unwrap()
    }
}

fn reply(response: AesmResponse) -> Handler {
    Box::new(move |mut stream, _| write_frame(&mut stream, &encode_response(&response)).unwrap())
}

fn raw(bytes: Vec<u8>) -> Handler {
    Box::new(move |mut stream, _| {
        stream.write_all(&bytes).unwrap();
    })
}

fn key_id() -> Vec<u8> {
    (0..=255u8).rev().collect()
}

fn bad_response(result: Result<impl std::fmt::Debug, ClientError>) -> String {
    match result {
        Err(ClientError::BadResponse(what)) => what,
        other => panic!("expected BadResponse, got {other:?}"),
    }
}

// --- happy paths ---------------------------------------------------------------------------------

#[test]
fn all_six_requests_round_trip() {
    let mut quote = vec![7u8; 1200];
    quote.resize(4096, 0);
    let info: Vec<u8> = (0..960).map(|i| (i % 256) as u8).collect();
    let server = Server::start(vec![
        reply(AesmResponse::GetSupportedAttKeyIdNum(
            GetSupportedAttKeyIdNumResponse {
                error_code: 0,
                att_key_id_num: Some(2),
            },
        )),
        reply(AesmResponse::GetSupportedAttKeyIds(
            GetSupportedAttKeyIdsResponse {
                error_code: 0,
                att_key_ids: Some([key_id(), vec![1; 256]].concat()),
            },
        )),
        reply(AesmResponse::SelectAttKeyId(SelectAttKeyIdResponse {
            error_code: 0,
            selected_att_key_id: Some(key_id()),
        })),
        reply(AesmResponse::InitQuoteEx(InitQuoteExResponse {
            error_code: 0,
            target_info: Some(vec![0; 512]),
            pub_key_id_size: Some(32),
            pub_key_id: None,
        })),
        reply(AesmResponse::InitQuoteEx(InitQuoteExResponse {
            error_code: 0,
            target_info: Some(vec![9; 512]),
            pub_key_id_size: Some(32),
            pub_key_id: Some(vec![3; 32]),
        })),
        reply(AesmResponse::GetQuoteSizeEx(GetQuoteSizeExResponse {
            error_code: 0,
            quote_size: Some(1200),
        })),
        reply(AesmResponse::GetQuoteEx(GetQuoteExResponse {
            error_code: 0,
            quote: Some(quote.clone()),
            qe_report_info: Some(info.clone()),
        })),
    ]);
    let client = server.client();

    assert_eq!(client.get_supported_att_key_id_num().unwrap(), 2);
    assert_eq!(
        client.get_supported_att_key_ids(2).unwrap(),
        [key_id(), vec![1; 256]].concat()
    );
    let list = encode_att_key_id_list(&[key_id().try_into().unwrap()]);
    assert_eq!(client.select_att_key_id(Some(&list)).unwrap(), key_id());
    let size_query = client.init_quote_ex(&key_id(), None).unwrap();
    assert_eq!(size_query.pub_key_id_size, Some(32));
    assert_eq!(size_query.pub_key_id, None);
    let full = client.init_quote_ex(&key_id(), Some(32)).unwrap();
    assert_eq!(full.target_info, Some(vec![9; 512]));
    assert_eq!(full.pub_key_id, Some(vec![3; 32]));
    assert_eq!(client.get_quote_size_ex(Some(&key_id())).unwrap(), 1200);
    let report = vec![4u8; 432];
    let sent_info = vec![0u8; 960];
    let got = client
        .get_quote_ex(&report, &key_id(), Some(&sent_info), 4096)
        .unwrap();
    assert_eq!(got.quote, Some(quote));
    assert_eq!(got.qe_report_info, Some(info));

    let seen = server.requests();
    let kinds: Vec<_> = seen.iter().map(AesmRequest::kind).collect();
    assert_eq!(
        kinds,
        [
            RequestKind::GetSupportedAttKeyIdNum,
            RequestKind::GetSupportedAttKeyIds,
            RequestKind::SelectAttKeyId,
            RequestKind::InitQuoteEx,
            RequestKind::InitQuoteEx,
            RequestKind::GetQuoteSizeEx,
            RequestKind::GetQuoteEx,
        ]
    );
    // What the C API passes through arrives as Intel's client would send it.
    assert!(matches!(
        &seen[1],
        AesmRequest::GetSupportedAttKeyIds(r) if r.buf_size == 512 && r.timeout == Some(15_000)
    ));
    assert!(matches!(
        &seen[2],
        AesmRequest::SelectAttKeyId(r) if r.att_key_id_list.as_deref() == Some(list.as_slice())
    ));
    assert_eq!(
        seen[3],
        AesmRequest::InitQuoteEx(InitQuoteExRequest {
            att_key_id: Some(key_id()),
            b_pub_key_id: false,
            buf_size: None,
            timeout: Some(15_000),
        })
    );
    assert!(matches!(
        &seen[4],
        AesmRequest::InitQuoteEx(r) if r.b_pub_key_id && r.buf_size == Some(32)
    ));
    assert_eq!(
        seen[6],
        AesmRequest::GetQuoteEx(GetQuoteExRequest {
            report,
            att_key_id: Some(key_id()),
            qe_report_info: Some(sent_info),
            buf_size: 4096,
            timeout: Some(15_000),
        })
    );
}

#[test]
fn select_with_platform_default_and_quote_size_without_key_id() {
    let server = Server::start(vec![
        reply(AesmResponse::SelectAttKeyId(SelectAttKeyIdResponse {
            error_code: 0,
            selected_att_key_id: Some(key_id()),
        })),
        reply(AesmResponse::GetQuoteSizeEx(GetQuoteSizeExResponse {
            error_code: 3,
            quote_size: Some(0),
        })),
    ]);
    let client = server.client();
    assert_eq!(client.select_att_key_id(None).unwrap(), key_id());
    let err = client.get_quote_size_ex(None).unwrap_err();
    assert!(matches!(err, ClientError::Aesm(3)));
    assert_eq!(
        err.sgx_status(QuoteExApi::GetQuoteSizeEx),
        sgx_status::INVALID_PARAMETER
    );
    let seen = server.requests();
    assert!(matches!(&seen[0], AesmRequest::SelectAttKeyId(r) if r.att_key_id_list.is_none()));
    assert!(matches!(&seen[1], AesmRequest::GetQuoteSizeEx(r) if r.att_key_id.is_none()));
}

// --- error classes -------------------------------------------------------------------------------

#[test]
fn missing_socket_is_service_unavailable() {
    let dir = tempfile::Builder::new()
        .prefix("qc")
        .tempdir_in("/tmp")
        .unwrap();
    let client = AesmClient::new(dir.path().join("absent")).with_service_wait(Duration::ZERO);
    for err in [
        client.get_supported_att_key_id_num().unwrap_err(),
        client.try_connect().unwrap_err(),
    ] {
        assert!(
            matches!(err, ClientError::ServiceUnavailable { .. }),
            "{err:?}"
        );
        assert_eq!(
            err.sgx_status(QuoteExApi::InitQuoteEx),
            sgx_status::SERVICE_UNAVAILABLE
        );
    }
}

#[test]
fn refused_connection_is_service_unavailable() {
    let dir = tempfile::Builder::new()
        .prefix("qc")
        .tempdir_in("/tmp")
        .unwrap();
    let path = dir.path().join("s");
    drop(UnixListener::bind(&path).unwrap()); // the socket file stays, nobody listens
    assert!(path.exists());
    let err = AesmClient::new(&path)
        .with_service_wait(Duration::ZERO)
        .get_quote_size_ex(Some(&key_id()))
        .unwrap_err();
    assert_eq!(err.unavailable(), Some(Unavailable::Stale));
    match &err {
        ClientError::ServiceUnavailable { path: p, source } => {
            assert_eq!(p, &path);
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_regular_file_is_service_unavailable() {
    let dir = tempfile::Builder::new()
        .prefix("qc")
        .tempdir_in("/tmp")
        .unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, b"not a socket").unwrap();
    // Not a service that is starting: returned at once, however long the client would wait (a
    // regression here hangs the test for an hour).
    let err = AesmClient::new(&path)
        .with_service_wait(Duration::from_secs(3600))
        .try_connect()
        .unwrap_err();
    assert!(
        matches!(err, ClientError::ServiceUnavailable { .. }),
        "{err:?}"
    );
    assert_eq!(err.unavailable(), Some(Unavailable::NotASocket));
    // A file where a directory should be (ENOTDIR) is not waited for either.
    let err = AesmClient::new(path.join("aesm.socket"))
        .with_service_wait(Duration::from_secs(3600))
        .try_connect()
        .unwrap_err();
    assert_eq!(err.unavailable(), Some(Unavailable::Other), "{err:?}");
}

// --- a service that starts after the app --------------------------------------------------------

/// Binds `path` after `delay` (removing a stale socket file first) and answers one
/// GetSupportedAttKeyIDNum; returns the requests of every connection it accepted.
fn late_service(path: PathBuf, delay: Duration) -> thread::JoinHandle<Vec<AesmRequest>> {
    thread::spawn(move || {
        thread::sleep(delay);
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        let body = read_frame(&mut stream, DEFAULT_MAX_FRAME).unwrap().unwrap();
        let request = decode_request(&body).unwrap();
        let res = AesmResponse::GetSupportedAttKeyIdNum(GetSupportedAttKeyIdNumResponse {
            error_code: 0,
            att_key_id_num: Some(3),
        });
        write_frame(&mut stream, &encode_response(&res)).unwrap();
        drop(stream);
        // Nothing else connects: the request was sent once.
        listener.set_nonblocking(true).unwrap();
        thread::sleep(Duration::from_millis(50));
        let mut seen = vec![request];
        while let Ok((mut extra, _)) = listener.accept() {
            extra.set_nonblocking(false).unwrap();
            let body = read_frame(&mut extra, DEFAULT_MAX_FRAME).unwrap().unwrap();
            seen.push(decode_request(&body).unwrap());
        }
        seen
    })
}

fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("qc")
        .tempdir_in("/tmp")
        .unwrap()
}

#[test]
fn a_service_that_starts_after_the_app_is_waited_for() {
    let dir = temp_dir();
    let path = dir.path().join("s");
    let service = late_service(path.clone(), Duration::from_millis(300));
    let client = AesmClient::new(&path).with_service_wait(Duration::from_secs(60));
    assert_eq!(client.get_supported_att_key_id_num().unwrap(), 3);
    assert_eq!(service.join().unwrap().len(), 1);
}

#[test]
fn a_stale_socket_file_is_waited_for_until_a_service_replaces_it() {
    let dir = temp_dir();
    let path = dir.path().join("s");
    drop(UnixListener::bind(&path).unwrap());
    assert_eq!(
        AesmClient::new(&path)
            .with_service_wait(Duration::ZERO)
            .try_connect()
            .unwrap_err()
            .unavailable(),
        Some(Unavailable::Stale)
    );
    let service = late_service(path.clone(), Duration::from_millis(300));
    let client = AesmClient::new(&path).with_service_wait(Duration::from_secs(60));
    assert_eq!(client.get_supported_att_key_id_num().unwrap(), 3);
    assert_eq!(service.join().unwrap().len(), 1);
}

#[test]
fn waiting_ends_with_the_status_of_an_absent_service() {
    let dir = temp_dir();
    let absent = dir.path().join("absent");
    let stale = dir.path().join("stale");
    drop(UnixListener::bind(&stale).unwrap());
    for (path, why) in [(absent, Unavailable::Absent), (stale, Unavailable::Stale)] {
        let client = AesmClient::new(&path).with_service_wait(Duration::from_millis(200));
        let err = client.get_quote_size_ex(Some(&key_id())).unwrap_err();
        assert_eq!(err.unavailable(), Some(why), "{err:?}");
        assert_eq!(
            err.sgx_status(QuoteExApi::GetQuoteSizeEx),
            sgx_status::SERVICE_UNAVAILABLE
        );
    }
}

#[test]
fn a_request_whose_connection_was_accepted_is_never_sent_again() {
    let dir = temp_dir();
    let path = dir.path().join("s");
    let listener = UnixListener::bind(&path).unwrap();
    let service = thread::spawn(move || {
        // Take the request, then vanish without replying, leaving a stale socket file.
        let (mut stream, _) = listener.accept().unwrap();
        let body = read_frame(&mut stream, DEFAULT_MAX_FRAME).unwrap().unwrap();
        decode_request(&body).unwrap()
    });
    let err = AesmClient::new(&path)
        .with_service_wait(Duration::from_secs(3600))
        .get_supported_att_key_id_num()
        .unwrap_err();
    assert!(matches!(err, ClientError::BadResponse(_)), "{err:?}");
    assert!(matches!(
        service.join().unwrap(),
        AesmRequest::GetSupportedAttKeyIdNum(_)
    ));
}

#[test]
fn try_connect_succeeds_against_a_listener() {
    let dir = tempfile::Builder::new()
        .prefix("qc")
        .tempdir_in("/tmp")
        .unwrap();
    let path = dir.path().join("s");
    let listener = UnixListener::bind(&path).unwrap();
    AesmClient::new(&path).try_connect().unwrap();
    // The probe connected and closed without sending a byte.
    let (mut stream, _) = listener.accept().unwrap();
    assert!(read_frame(&mut stream, 16).unwrap().is_none());
}

#[test]
fn aesm_error_codes_and_their_sgx_status() {
    let server = Server::start(vec![
        reply(AesmResponse::error(
            RequestKind::GetQuoteSizeEx,
            AesmCode::AttKeyNotInitialized,
        )),
        reply(AesmResponse::GetQuoteEx(GetQuoteExResponse {
            error_code: AesmCode::InvalidReport.code(),
            quote: None,
            qe_report_info: Some(vec![0; 960]),
        })),
        reply(AesmResponse::error(
            RequestKind::InitQuoteEx,
            AesmCode::UnsupportedAttKeyId,
        )),
        reply(AesmResponse::error(
            RequestKind::GetSupportedAttKeyIdNum,
            AesmCode::ServiceUnavailable,
        )),
    ]);
    let client = server.client();

    let err = client.get_quote_size_ex(Some(&key_id())).unwrap_err();
    assert!(matches!(err, ClientError::Aesm(42)));
    assert_eq!(
        err.sgx_status(QuoteExApi::GetQuoteSizeEx),
        sgx_status::ATT_KEY_UNINITIALIZED
    );
    assert!(err.to_string().contains("AESM_ATT_KEY_NOT_INITIALIZED"));

    let err = client
        .get_quote_ex(&[0; 432], &key_id(), Some(&[0; 960]), 5000)
        .unwrap_err();
    assert!(matches!(err, ClientError::Aesm(47)));
    assert_eq!(
        err.sgx_status(QuoteExApi::GetQuoteEx),
        sgx_status::MAC_MISMATCH
    );

    let err = client.init_quote_ex(&key_id(), Some(32)).unwrap_err();
    assert!(matches!(err, ClientError::Aesm(38)));
    assert_eq!(
        err.sgx_status(QuoteExApi::InitQuoteEx),
        sgx_status::UNSUPPORTED_ATT_KEY_ID
    );

    let err = client.get_supported_att_key_id_num().unwrap_err();
    assert!(matches!(err, ClientError::Aesm(30)));
    assert_eq!(
        err.sgx_status(QuoteExApi::GetSupportedAttKeyIdNum),
        sgx_status::SERVICE_UNAVAILABLE
    );
    assert_eq!(server.requests().len(), 4);
}

#[test]
fn reply_never_sent_times_out() {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let server = Server::start(vec![Box::new(move |stream, _| {
        // Hold the connection open without answering until the client has given up.
        let _ = done_rx.recv();
        drop(stream);
    })]);
    let client = server.client().with_timeout(Duration::from_millis(200));
    let err = client.get_quote_size_ex(Some(&key_id())).unwrap_err();
    done_tx.send(()).unwrap();
    match &err {
        ClientError::Timeout { stage, timeout } => {
            assert_eq!(*stage, Stage::Read);
            assert_eq!(*timeout, Duration::from_millis(200));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(
        err.sgx_status(QuoteExApi::GetQuoteSizeEx),
        sgx_status::SERVICE_TIMEOUT
    );
    // The request itself carried the configured timeout in milliseconds.
    assert!(matches!(
        &server.requests()[0],
        AesmRequest::GetQuoteSizeEx(r) if r.timeout == Some(200)
    ));
}

#[test]
fn half_a_reply_then_silence_times_out() {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let server = Server::start(vec![Box::new(move |mut stream, _| {
        stream.write_all(&[50, 0, 0, 0, 1, 2]).unwrap();
        let _ = done_rx.recv();
    })]);
    let client = server.client().with_timeout(Duration::from_millis(200));
    let err = client.get_supported_att_key_id_num().unwrap_err();
    done_tx.send(()).unwrap();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                stage: Stage::Read,
                ..
            }
        ),
        "{err:?}"
    );
    server.requests();
}

#[test]
fn full_backlog_times_out_connecting() {
    use socket2::{Domain, SockAddr, Socket, Type};
    let dir = tempfile::Builder::new()
        .prefix("qc")
        .tempdir_in("/tmp")
        .unwrap();
    let path = dir.path().join("s");
    let addr = SockAddr::unix(&path).unwrap();
    let listener = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
    listener.bind(&addr).unwrap();
    listener.listen(0).unwrap();
    // Fill the backlog of a listener that never accepts.
    let mut fillers = Vec::new();
    loop {
        let s = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        match s.connect(&addr) {
            Ok(()) => fillers.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the backlog: {e}"),
        }
        assert!(fillers.len() < 1000, "backlog never filled");
    }
    let client = AesmClient::new(&path).with_timeout(Duration::from_millis(100));
    let err = client.get_supported_att_key_id_num().unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                stage: Stage::Connect,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.sgx_status(QuoteExApi::GetSupportedAttKeyIdNum),
        sgx_status::SERVICE_TIMEOUT
    );
}

#[test]
fn server_closing_without_reply_is_a_bad_response() {
    let server = Server::start(vec![Box::new(|stream, _| drop(stream))]);
    let err = server.client().init_quote_ex(&key_id(), None).unwrap_err();
    assert!(
        err.to_string().contains("closed without a response"),
        "{err}"
    );
    assert_eq!(
        err.sgx_status(QuoteExApi::InitQuoteEx),
        sgx_status::UNEXPECTED
    );
    server.requests();
}

#[test]
fn short_oversized_and_malformed_replies() {
    let server = Server::start(vec![
        raw(vec![5, 0]),                           // half a prefix
        raw(vec![100, 0, 0, 0, 1, 2, 3]),          // half a body
        raw(u32::MAX.to_le_bytes().to_vec()),      // 4 GiB announced
        raw(encode_frame(&[0x7F, 0x01]).unwrap()), // not protobuf
    ]);
    let client = server.client();
    assert!(bad_response(client.get_supported_att_key_id_num()).contains("length-prefix"));
    assert!(bad_response(client.get_supported_att_key_id_num()).contains("body bytes"));
    assert!(bad_response(client.get_supported_att_key_id_num()).contains("exceeds the maximum"));
    assert!(bad_response(client.get_supported_att_key_id_num()).contains("protobuf"));
    server.requests();
}

#[test]
fn client_maximum_response_is_enforced() {
    let server = Server::start(vec![reply(AesmResponse::GetSupportedAttKeyIds(
        GetSupportedAttKeyIdsResponse {
            error_code: 0,
            att_key_ids: Some(vec![0; 256]),
        },
    ))]);
    let client = server.client().with_max_response(64);
    assert!(
        bad_response(client.get_supported_att_key_ids(1)).contains("exceeds the maximum of 64")
    );
    server.requests();
}

#[test]
fn replies_to_the_wrong_request_or_without_error_code() {
    let no_error_code = wire::Response {
        get_quote_size_ex_res: Some(wire::GetQuoteSizeExResponse {
            error_code: None,
            quote_size: Some(10),
        }),
        ..Default::default()
    }
    .encode_to_vec();
    let server = Server::start(vec![
        reply(AesmResponse::GetQuoteSizeEx(GetQuoteSizeExResponse {
            error_code: 0,
            quote_size: Some(1),
        })),
        raw(encode_frame(&no_error_code).unwrap()),
        raw(encode_frame(&[]).unwrap()),
    ]);
    let client = server.client();
    assert!(
        bad_response(client.get_quote_ex(&[0; 432], &key_id(), None, 100))
            .contains("getQuoteExRes")
    );
    assert!(bad_response(client.get_quote_size_ex(Some(&key_id()))).contains("errorCode"));
    assert!(bad_response(client.select_att_key_id(None)).contains("selectAttKeyIDRes"));
    server.requests();
}

#[test]
fn success_replies_with_missing_or_inconsistent_fields() {
    let server = Server::start(vec![
        reply(AesmResponse::GetQuoteSizeEx(GetQuoteSizeExResponse {
            error_code: 0,
            quote_size: None,
        })),
        reply(AesmResponse::GetSupportedAttKeyIdNum(
            GetSupportedAttKeyIdNumResponse {
                error_code: 0,
                att_key_id_num: None,
            },
        )),
        reply(AesmResponse::GetSupportedAttKeyIds(
            GetSupportedAttKeyIdsResponse {
                error_code: 0,
                att_key_ids: Some(vec![0; 255]),
            },
        )),
        reply(AesmResponse::SelectAttKeyId(SelectAttKeyIdResponse {
            error_code: 0,
            selected_att_key_id: Some(vec![0; 100]),
        })),
        reply(AesmResponse::InitQuoteEx(InitQuoteExResponse {
            error_code: 0,
            target_info: Some(vec![0; 513]),
            pub_key_id_size: Some(32),
            pub_key_id: None,
        })),
        reply(AesmResponse::InitQuoteEx(InitQuoteExResponse {
            error_code: 0,
            target_info: Some(vec![0; 512]),
            pub_key_id_size: Some(32),
            pub_key_id: Some(vec![0; 64]),
        })),
        reply(AesmResponse::GetQuoteEx(GetQuoteExResponse {
            error_code: 0,
            quote: Some(vec![0; 101]),
            qe_report_info: None,
        })),
        reply(AesmResponse::GetQuoteEx(GetQuoteExResponse {
            error_code: 0,
            quote: Some(vec![0; 100]),
            qe_report_info: None,
        })),
        reply(AesmResponse::GetQuoteEx(GetQuoteExResponse {
            error_code: 0,
            quote: Some(vec![0; 100]),
            qe_report_info: Some(vec![0; 959]),
        })),
        reply(AesmResponse::GetQuoteEx(GetQuoteExResponse {
            error_code: 0,
            quote: None,
            qe_report_info: None,
        })),
    ]);
    let client = server.client();
    assert!(bad_response(client.get_quote_size_ex(Some(&key_id()))).contains("quote_size"));
    assert!(bad_response(client.get_supported_att_key_id_num()).contains("att_key_id_num"));
    assert!(bad_response(client.get_supported_att_key_ids(1)).contains("255 bytes"));
    assert!(bad_response(client.select_att_key_id(None)).contains("100 bytes"));
    assert!(bad_response(client.init_quote_ex(&key_id(), None)).contains("target_info"));
    assert!(bad_response(client.init_quote_ex(&key_id(), Some(32))).contains("pub_key_id"));
    let report = [0u8; 432];
    let info = [0u8; 960];
    assert!(bad_response(client.get_quote_ex(&report, &key_id(), None, 100)).contains("101 bytes"));
    assert!(
        bad_response(client.get_quote_ex(&report, &key_id(), Some(&info), 100))
            .contains("not echoed")
    );
    assert!(
        bad_response(client.get_quote_ex(&report, &key_id(), Some(&info), 100)).contains("959")
    );
    assert!(bad_response(client.get_quote_ex(&report, &key_id(), None, 100)).contains("no quote"));
    assert_eq!(server.requests().len(), 10);
}

#[test]
fn invalid_parameters_are_rejected_before_connecting() {
    // The socket does not exist: an InvalidParameter result proves nothing was attempted.
    let client = AesmClient::new(Path::new("/nonexistent/aesm.socket"));
    for err in [
        client.init_quote_ex(&key_id(), Some(0)).unwrap_err(),
        client
            .init_quote_ex(&key_id(), Some(u64::from(u32::MAX)))
            .unwrap_err(),
        client
            .get_quote_ex(&[0; 432], &key_id(), None, 0)
            .unwrap_err(),
        client.get_supported_att_key_ids(u32::MAX).unwrap_err(),
    ] {
        assert!(matches!(err, ClientError::InvalidParameter(_)), "{err:?}");
        assert_eq!(
            err.sgx_status(QuoteExApi::InitQuoteEx),
            sgx_status::INVALID_PARAMETER
        );
    }
}

#[test]
fn large_quote_buffers_raise_the_response_limit() {
    // A 2 MiB quote buffer (above the default 1 MiB response maximum) is still accepted.
    let size = 2 * 1024 * 1024;
    let server = Server::start(vec![Box::new(move |mut stream, req: &AesmRequest| {
        let AesmRequest::GetQuoteEx(r) = req else {
            panic!("unexpected {req:?}")
        };
        let res = AesmResponse::GetQuoteEx(GetQuoteExResponse {
            error_code: 0,
            quote: Some(vec![1; r.buf_size as usize]),
            qe_report_info: None,
        });
        write_frame(&mut stream, &encode_response(&res)).unwrap();
        // Drain until the client closes, so that the write is never cut short.
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    })]);
    let got = server
        .client()
        .get_quote_ex(&[0; 432], &key_id(), None, size)
        .unwrap();
    assert_eq!(got.quote.map(|q| q.len()), Some(size as usize));
    server.requests();
}

#[test]
fn service_closing_while_the_request_is_sent_is_an_io_error() {
    let dir = tempfile::Builder::new()
        .prefix("qc")
        .tempdir_in("/tmp")
        .unwrap();
    let path = dir.path().join("s");
    let listener = UnixListener::bind(&path).unwrap();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        drop(stream); // close without reading: the client's large write hits a closed peer
    });
    // 1 MiB does not fit into the socket buffer, so the write cannot complete before the close.
    let report = vec![0u8; 1024 * 1024];
    let err = AesmClient::new(&path)
        .get_quote_ex(&report, &key_id(), None, 100)
        .unwrap_err();
    server.join().unwrap();
    match &err {
        ClientError::Io(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "{e:?}"
        ),
        other => panic!("expected an i/o error, got {other:?}"),
    }
    assert_eq!(
        err.sgx_status(QuoteExApi::GetQuoteEx),
        sgx_status::UNEXPECTED
    );
}

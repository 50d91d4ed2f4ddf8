//! Hostile and heavy clients: empty connections, half frames, oversized prefixes, idle clients
//! holding every slot, 200 concurrent clients, shutdown with clients connected. None may crash the
//! service, block other clients for long, or lose the persisted state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use aesm_service::ServerConfig;
use aesm_service::client_flow::quote_via_socket;
use aesm_service::metrics::DropReason;
use common::{Helper, connect, read_to_close, verifier_inputs, write_raw};
use sgx_sim::{CollateralOptions, EnclaveIdentity};

fn quote_once(helper: &Helper, tag: u8) -> Vec<u8> {
    quote_via_socket(
        &helper.client(),
        &helper.cpu(),
        &EnclaveIdentity::default(),
        &[tag; 64],
    )
    .unwrap()
    .quote
}

#[test]
fn empty_connections_half_frames_and_oversized_prefixes_are_closed() {
    let helper = Helper::start();
    let s = &helper.socket;

    // Connect and close (aesm-client's try_connect).
    drop(connect(s));
    // Two bytes of the length prefix, then close.
    let mut c = connect(s);
    write_raw(&mut c, &[10, 0]);
    c.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(read_to_close(&mut c).is_empty());
    // A prefix announcing 100 bytes, 50 sent, then close.
    let mut c = connect(s);
    write_raw(&mut c, &100u32.to_le_bytes());
    write_raw(&mut c, &[0x7a; 50]);
    c.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(read_to_close(&mut c).is_empty());
    // 4 GiB announced, and one byte over the cap: closed at once, nothing allocated.
    for len in [u32::MAX, 16 * 1024 + 1] {
        let mut c = connect(s);
        write_raw(&mut c, &len.to_le_bytes());
        assert!(read_to_close(&mut c).is_empty(), "prefix {len}");
    }

    // The service still answers, and counted each case.
    assert_eq!(
        quote_once(&helper, 1).len(),
        helper.platform.quote_size().unwrap() as usize
    );
    assert!(helper.metrics.dropped_count(DropReason::Empty) >= 1);
    assert_eq!(helper.metrics.dropped_count(DropReason::Truncated), 2);
    assert_eq!(helper.metrics.dropped_count(DropReason::FrameTooLarge), 2);
}

#[test]
fn half_frame_held_open_does_not_block_others_and_is_timed_out() {
    let config = ServerConfig {
        request_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let helper = Helper::start_with(config, None);
    let s = &helper.socket;
    let mut stalled = connect(s);
    write_raw(&mut stalled, &1000u32.to_le_bytes());
    write_raw(&mut stalled, &[0; 10]);
    // Others are served while it stalls.
    for tag in 0..5 {
        quote_once(&helper, tag);
    }
    // It is closed without a reply once the request timeout passes.
    assert!(read_to_close(&mut stalled).is_empty());
    assert_eq!(helper.metrics.dropped_count(DropReason::Timeout), 1);
}

#[test]
fn idle_clients_holding_every_slot_are_closed_to_make_room() {
    let config = ServerConfig {
        max_connections: 4,
        request_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let helper = Helper::start_with(config, None);
    let s = &helper.socket;
    let mut idle: Vec<_> = (0..4).map(|_| connect(s)).collect();
    // Every slot is held by a client that sends nothing; a real client gets its quote at once,
    // its connections taking the place of the idle ones that waited longest.
    let quote = quote_once(&helper, 9);
    assert_eq!(quote.len(), helper.platform.quote_size().unwrap() as usize);
    assert!(helper.metrics.dropped_count(DropReason::Evicted) >= 1);
    for c in &mut idle {
        assert!(read_to_close(c).is_empty());
    }
    // Each idle client was either evicted or timed out, once.
    let closed = helper.metrics.dropped_count(DropReason::Evicted)
        + helper.metrics.dropped_count(DropReason::Timeout);
    assert_eq!(closed, 4);
}

#[test]
fn idle_clients_below_the_limit_leave_room_for_others() {
    let config = ServerConfig {
        max_connections: 8,
        request_timeout: Duration::from_secs(3600),
        ..ServerConfig::default()
    };
    let helper = Helper::start_with(config, None);
    let idle: Vec<_> = (0..6).map(|_| connect(&helper.socket)).collect();
    // With an hour-long request timeout, these can only succeed because free slots remain.
    for tag in 0..10 {
        quote_once(&helper, tag);
    }
    assert_eq!(helper.metrics.dropped_count(DropReason::Timeout), 0);
    drop(idle);
}

fn concurrent_clients(config: ServerConfig, clients: usize) {
    let helper = Arc::new(Helper::start_with(config, None));
    // One full-mode InitQuoteEx first, so that the key is created once.
    quote_once(&helper, 0);
    let barrier = Arc::new(Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let helper = Arc::clone(&helper);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let enclave = EnclaveIdentity {
                    isv_svn: i as u16,
                    ..EnclaveIdentity::default()
                };
                let cpu = helper.cpu();
                let client = helper.client();
                barrier.wait();
                quote_via_socket(&client, &cpu, &enclave, &[(i % 256) as u8; 64]).unwrap()
            })
        })
        .collect();
    let quotes: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(quotes.len(), clients);

    let (root, collateral) = verifier_inputs(&helper.platform, &CollateralOptions::default());
    let verifier = dcap_qvl::verify::QuoteVerifier::new(root);
    let now = common::now_secs();
    for (i, q) in quotes.iter().enumerate() {
        let verified = verifier.verify(&q.quote, &collateral, now).unwrap();
        assert_eq!(verified.status, "UpToDate");
        let sgx_types::quote::Quote { report_body, .. } =
            sgx_types::quote::Quote::parse(&q.quote).unwrap();
        assert_eq!(report_body.isv_svn, i as u16);
        assert_eq!(report_body.report_data, [(i % 256) as u8; 64]);
    }
    let ok = helper.metrics.requests_answered("GetQuoteEx", 0);
    assert_eq!(ok, clients as u64 + 1);
}

#[test]
fn two_hundred_concurrent_clients_all_get_verifying_quotes() {
    concurrent_clients(ServerConfig::default(), 200);
}

#[test]
fn two_hundred_clients_through_sixteen_slots() {
    concurrent_clients(
        ServerConfig {
            max_connections: 16,
            ..ServerConfig::default()
        },
        200,
    );
}

#[test]
fn shutdown_closes_waiting_clients_and_removes_the_socket() {
    let config = ServerConfig {
        request_timeout: Duration::from_secs(3600),
        ..ServerConfig::default()
    };
    let helper = Helper::start_with(config, None);
    let socket = helper.socket.clone();
    quote_once(&helper, 1);
    // The quote's connection is gone first, so that the count below is of the two clients only
    // (one still in the listen backlog when the listener closes would see a reset, not an EOF).
    while helper.metrics.open_connections() > 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut waiting = connect(&socket);
    write_raw(&mut waiting, &[5, 0]);
    let mut idle = connect(&socket);
    // Both have been accepted and wait for their requests.
    while helper.metrics.open_connections() < 2 {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Stopping must not wait for the hour-long request timeout of the two clients.
    let (result, dir) = helper.stop();
    result.unwrap();
    assert!(read_to_close(&mut waiting).is_empty());
    assert!(read_to_close(&mut idle).is_empty());
    assert!(!socket.exists());
    // The published CPU material stays for the next start; only the socket goes.
    assert!(dir.path().join("aesmd/sim").exists());
}

#[test]
fn abstract_and_path_listeners_serve_side_by_side() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixStream};

    use aesm_protocol::frame::{read_frame, write_frame};
    use aesm_protocol::{
        AesmRequest, AesmResponse, GetSupportedAttKeyIdNumRequest, RequestKind, decode_response,
        encode_request,
    };
    use aesm_service::{Dispatcher, Metrics, SimBackend, listen, serve};

    let dir = common::short_tempdir();
    let socket = dir.path().join("aesm.socket");
    let name = format!("confcom-qh-test-{}", std::process::id());
    let platform = Arc::new(
        sgx_sim::SimPlatform::open_or_init(&dir.path().join("state"), &Default::default()).unwrap(),
    );
    let (path_listener, _file) = listen::bind_socket(&socket, 0o777).unwrap();
    let abstract_listener = listen::bind_abstract(&name).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listeners = vec![
                tokio::net::UnixListener::from_std(path_listener).unwrap(),
                tokio::net::UnixListener::from_std(abstract_listener).unwrap(),
            ];
            serve(
                listeners,
                Dispatcher::new(Arc::new(SimBackend::new(platform))),
                ServerConfig::default(),
                Metrics::default(),
                async move {
                    let _ = stopped.await;
                },
            )
            .await
        })
    });
    let request =
        AesmRequest::GetSupportedAttKeyIdNum(GetSupportedAttKeyIdNumRequest { timeout: None });
    let ask = |mut stream: UnixStream| {
        write_frame(&mut stream, &encode_request(&request)).unwrap();
        let body = read_frame(&mut stream, 1 << 16).unwrap().unwrap();
        decode_response(&body, RequestKind::GetSupportedAttKeyIdNum).unwrap()
    };
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    for reply in [
        ask(UnixStream::connect_addr(&addr).unwrap()),
        ask(UnixStream::connect(&socket).unwrap()),
    ] {
        let AesmResponse::GetSupportedAttKeyIdNum(r) = reply else {
            panic!("{reply:?}")
        };
        assert_eq!((r.error_code, r.att_key_id_num), (0, Some(1)));
    }
    stop.send(()).unwrap();
    server.join().unwrap().unwrap();
    // The abstract name is free again once the service stopped.
    drop(listen::bind_abstract(&name).unwrap());
}

/// A backend whose quotes wait until the test lets them go, and that says so.
#[derive(Debug)]
struct Held {
    inner: aesm_service::SimBackend,
    entered: std::sync::Mutex<std::sync::mpsc::Sender<()>>,
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl aesm_service::QuoteBackend for Held {
    fn name(&self) -> &'static str {
        "held"
    }
    fn is_simulated(&self) -> bool {
        true
    }
    fn runs_inline(&self) -> bool {
        false
    }
    fn init_attestation_key(&self) -> Result<[u8; 32], aesm_service::BackendError> {
        self.inner.init_attestation_key()
    }
    fn qe_target_info(&self) -> Result<sgx_types::TargetInfo, aesm_service::BackendError> {
        self.inner.qe_target_info()
    }
    fn quote_size(&self) -> Result<u32, aesm_service::BackendError> {
        self.inner.quote_size()
    }
    fn quote(&self, report: &sgx_types::Report) -> Result<Vec<u8>, aesm_service::BackendError> {
        self.entered.lock().unwrap().send(()).unwrap();
        self.release.lock().unwrap().recv().unwrap();
        self.inner.quote(report)
    }
    fn qe_report_for_app(
        &self,
        quote: &[u8],
        nonce: &[u8; 16],
        app_target: &sgx_types::TargetInfo,
    ) -> Result<sgx_types::Report, aesm_service::BackendError> {
        self.inner.qe_report_for_app(quote, nonce, app_target)
    }
}

#[test]
fn a_slow_backend_runs_off_the_workers_and_never_stalls_other_clients() {
    use aesm_service::{Dispatcher, Metrics};

    let dir = common::short_tempdir();
    let socket = dir.path().join("aesm.socket");
    let platform = Arc::new(
        sgx_sim::SimPlatform::open_or_init(&dir.path().join("state"), &Default::default()).unwrap(),
    );
    platform.init_attestation_key().unwrap();
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    let backend = Arc::new(Held {
        inner: aesm_service::SimBackend::new(Arc::clone(&platform)),
        entered: std::sync::Mutex::new(entered_tx),
        release: std::sync::Mutex::new(release_rx),
    });
    // One thread for the whole runtime: a quote blocking inline would stall everything.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = aesm_service::BackgroundServer::start_on(
        runtime,
        &socket,
        Dispatcher::new(backend),
        ServerConfig::default(),
        Metrics::default(),
    )
    .unwrap();
    let report = platform.cpu().create_report(
        &EnclaveIdentity::default(),
        &platform.qe_target_info(),
        &[1; 64],
    );
    let client = quote_client::AesmClient::new(&socket);
    let key = sgx_types::AttKeyId::intel_qe3_ecdsa();
    let size = platform.quote_size().unwrap();
    let slow = {
        let client = client.clone();
        let report = sgx_types::structs::Wire::to_vec(&report);
        let key = sgx_types::structs::Wire::to_vec(&key);
        std::thread::spawn(move || client.get_quote_ex(&report, &key, None, size).unwrap())
    };
    // The quote is inside the backend, held; other requests are still answered.
    entered_rx.recv().unwrap();
    assert_eq!(client.get_supported_att_key_id_num().unwrap(), 1);
    assert_eq!(
        client
            .get_quote_size_ex(Some(&sgx_types::structs::Wire::to_vec(&key)))
            .unwrap(),
        size
    );
    release_tx.send(()).unwrap();
    let reply = slow.join().unwrap();
    assert_eq!(reply.quote.unwrap().len(), size as usize);
    server.stop().unwrap();
}

#[test]
fn byte_by_byte_requests_are_served_and_vanishing_clients_are_survived() {
    use aesm_protocol::frame::{encode_frame, read_frame};
    use aesm_protocol::{
        AesmRequest, AesmResponse, GetQuoteExRequest, RequestKind, decode_response, encode_request,
    };
    use sgx_types::structs::Wire;

    let helper = Helper::start();
    quote_once(&helper, 1);
    let report = helper.cpu().create_report(
        &EnclaveIdentity::default(),
        &helper.platform.qe_target_info(),
        &[4; 64],
    );
    let frame = encode_frame(&encode_request(&AesmRequest::GetQuoteEx(
        GetQuoteExRequest {
            report: report.to_vec(),
            att_key_id: Some(sgx_types::AttKeyId::intel_qe3_ecdsa().to_vec()),
            qe_report_info: None,
            buf_size: 8192,
            timeout: None,
        },
    )))
    .unwrap();

    // A complete request, then gone before the reply: the write fails, nothing else happens.
    for _ in 0..20 {
        let mut c = connect(&helper.socket);
        write_raw(&mut c, &frame);
        drop(c);
    }
    // A request dribbled in one byte per write is reassembled and answered.
    let mut c = connect(&helper.socket);
    for byte in &frame {
        write_raw(&mut c, std::slice::from_ref(byte));
    }
    let body = read_frame(&mut c, 1 << 20).unwrap().unwrap();
    let AesmResponse::GetQuoteEx(reply) = decode_response(&body, RequestKind::GetQuoteEx).unwrap()
    else {
        panic!()
    };
    assert_eq!(reply.error_code, 0);
    assert_eq!(reply.quote.unwrap().len(), 8192);
    assert_eq!(
        quote_once(&helper, 2).len(),
        helper.platform.quote_size().unwrap() as usize
    );
}

#[test]
fn replies_end_in_a_clean_close_whether_the_request_came_whole_or_in_pieces() {
    use aesm_protocol::frame::{encode_frame, parse_frame};
    use aesm_protocol::{AesmRequest, AesmResponse, RequestKind, decode_response, encode_request};
    use sgx_types::structs::Wire;

    let helper = Helper::start();
    let frame = encode_frame(&encode_request(&AesmRequest::GetQuoteSizeEx(
        aesm_protocol::GetQuoteSizeExRequest {
            att_key_id: Some(sgx_types::AttKeyId::intel_qe3_ecdsa().to_vec()),
            timeout: None,
        },
    )))
    .unwrap();
    // Whole (answered as soon as accepted), then split after the prefix and mid-body (answered
    // once the rest arrives). Either way the request is taken off the socket before it closes: a
    // Unix socket closed with unread bytes would reset the client instead of ending cleanly.
    for split in [frame.len(), 4, frame.len() - 3] {
        let mut c = connect(&helper.socket);
        write_raw(&mut c, &frame[..split]);
        if split < frame.len() {
            std::thread::sleep(Duration::from_millis(50));
            write_raw(&mut c, &frame[split..]);
        }
        let all = read_to_close(&mut c);
        let body = parse_frame(&all, 1 << 20).unwrap();
        assert!(
            matches!(
                decode_response(body, RequestKind::GetQuoteSizeEx).unwrap(),
                AesmResponse::GetQuoteSizeEx(r) if r.error_code == 42
            ),
            "split at {split}"
        );
    }
}

//! `/readyz` of the quote helper: ready only while the socket accepts and answers a request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::net::UnixListener;
use std::time::Duration;

use aesm_service::readiness::{check, watch};
use common::{Helper, short_tempdir};
use quote_client::{ClientError, Unavailable};

#[test]
fn only_a_socket_that_answers_passes_the_check() {
    let dir = short_tempdir();
    let absent = dir.path().join("absent");
    let err = check(absent).unwrap_err();
    assert_eq!(err.unavailable(), Some(Unavailable::Absent), "{err:?}");

    let stale = dir.path().join("stale");
    drop(UnixListener::bind(&stale).unwrap());
    let err = check(stale).unwrap_err();
    assert_eq!(err.unavailable(), Some(Unavailable::Stale), "{err:?}");

    // Accepting is not answering: a listener that takes the request and closes fails the check.
    let mute = dir.path().join("mute");
    let listener = UnixListener::bind(&mute).unwrap();
    let closer = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        aesm_protocol::frame::read_frame(&mut stream, 1 << 20).unwrap();
    });
    let err = check(mute).unwrap_err();
    assert!(matches!(err, ClientError::BadResponse(_)), "{err:?}");
    closer.join().unwrap();

    let helper = Helper::start();
    check(helper.socket.clone()).unwrap();
}

/// Polls `readiness` until it equals `want` (at most 30 s).
fn wait_for(readiness: &ops_http::Readiness, want: bool) -> bool {
    for _ in 0..600 {
        if readiness.is_ready() == want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn the_watch_follows_the_socket() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let helper = Helper::start();
    let readiness = ops_http::Readiness::new();
    // The socket is replaced by a stale file before the watch starts: not ready.
    let socket = helper.socket.clone();
    let stale_dir = short_tempdir();
    let stale = stale_dir.path().join("s");
    drop(UnixListener::bind(&stale).unwrap());
    let watching_stale = runtime.spawn(watch(
        stale.clone(),
        readiness.clone(),
        Duration::from_millis(50),
    ));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!readiness.is_ready());
    watching_stale.abort();

    // The live helper: ready.
    let watching = runtime.spawn(watch(socket, readiness.clone(), Duration::from_millis(50)));
    assert!(wait_for(&readiness, true));
    let served = helper.metrics_text();
    assert!(
        served.contains("GetSupportedAttKeyIdNum"),
        "the check is a real request: {served}"
    );

    // The helper stops (its socket goes away): not ready any more.
    let (result, _dir) = helper.stop();
    result.unwrap();
    assert!(wait_for(&readiness, false));
    watching.abort();
}

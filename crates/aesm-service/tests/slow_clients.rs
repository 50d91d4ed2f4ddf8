//! Clients that connect and send nothing (or half a frame) beyond the connection cap: a real
//! client's quote is answered while they are held, and the ones that waited longest for their
//! request are the ones closed to make room.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read;
use std::time::Duration;

use aesm_service::ServerConfig;
use aesm_service::client_flow::quote_via_socket;
use aesm_service::metrics::DropReason;
use common::{Helper, connect, write_raw};
use sgx_sim::EnclaveIdentity;

#[test]
fn a_quote_is_answered_while_idle_clients_beyond_the_cap_are_held() {
    const CAP: usize = 16;
    const HELD: usize = 200;
    let config = ServerConfig {
        max_connections: CAP,
        // Far beyond the test: only the cap closes connections here.
        request_timeout: Duration::from_secs(3600),
        ..ServerConfig::default()
    };
    let helper = Helper::start_with(config, None);
    let mut held = Vec::with_capacity(HELD);
    for i in 0..HELD {
        let mut c = connect(&helper.socket);
        if i % 2 == 1 {
            // Half a frame: a prefix announcing 1000 bytes, and 10 of them.
            write_raw(&mut c, &1000u32.to_le_bytes());
            write_raw(&mut c, &[0; 10]);
        }
        held.push(c);
    }
    // Every one of them has been taken in (all but CAP closed again to make room).
    while helper.metrics.dropped_count(DropReason::Evicted) < (HELD - CAP) as u64 {
        std::thread::sleep(Duration::from_millis(5));
    }

    let quote = quote_via_socket(
        &helper.client(),
        &helper.cpu(),
        &EnclaveIdentity::default(),
        &[7; 64],
    )
    .unwrap()
    .quote;
    assert_eq!(quote.len(), helper.platform.quote_size().unwrap() as usize);

    // The oldest were closed without a reply (a reset when the server left bytes unread); the
    // newest is still held.
    for stream in &mut held[..2] {
        let mut rest = Vec::new();
        match stream.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty()),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
        }
    }
    let newest = held.last_mut().unwrap();
    newest.set_nonblocking(true).unwrap();
    let err = newest.read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    assert!(helper.metrics.dropped_count(DropReason::Evicted) > (HELD - CAP) as u64);
    assert_eq!(helper.metrics.dropped_count(DropReason::Timeout), 0);
    drop(held);
}

//! Interop with Fortanix's `aesm-client` 0.6.3 (Intel's schema compiled by rust-protobuf): a small
//! server built only from this crate's framing, decoder and encoder answers it on a temp socket.
//! The client must accept every answer, and the server must see exactly the request sequence that
//! the client is known to send (`aesm-protocol.md` §2.5).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::thread;

use aesm_client::AesmClient;
use aesm_client::unix::AesmClientExt;
use aesm_protocol::att_key_id::{QE_REPORT_INFO_REPORT_OFFSET, QE_REPORT_INFO_SIZE};
use aesm_protocol::frame::{DEFAULT_MAX_FRAME, read_frame, write_frame};
use aesm_protocol::{
    AesmCode, AesmRequest, AesmResponse, GetQuoteExRequest, GetQuoteExResponse,
    GetQuoteSizeExRequest, GetQuoteSizeExResponse, GetSupportedAttKeyIdNumRequest,
    GetSupportedAttKeyIdNumResponse, GetSupportedAttKeyIdsRequest, GetSupportedAttKeyIdsResponse,
    InitQuoteExRequest, InitQuoteExResponse, decode_request, encode_request, encode_response,
};

const TIMEOUT_US: u32 = 30_000_000;
const QUOTE_SIZE: u32 = 5000;
const QUOTE_LEN: usize = 4734;

/// Intel's QE3 ECDSA attestation key id (`sgx_att_key_id_ext_t`), from the published field values.
fn qe3_key_id() -> Vec<u8> {
    let mrsigner = hex_literal("8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff");
    let mut k = Vec::with_capacity(256);
    k.extend_from_slice(&0u16.to_le_bytes()); // id
    k.extend_from_slice(&0u16.to_le_bytes()); // version
    k.extend_from_slice(&32u16.to_le_bytes()); // mrsigner_length
    k.extend_from_slice(&mrsigner);
    k.extend_from_slice(&[0; 16]);
    k.extend_from_slice(&1u32.to_le_bytes()); // prod_id
    k.extend_from_slice(&[0; 96]); // extended_prod_id, config_id, family_id
    k.extend_from_slice(&2u32.to_le_bytes()); // algorithm_id: ECDSA P-256
    k.extend_from_slice(&[0; 98]); // spid, att_key_type, reserved
    assert_eq!(k.len(), 256);
    k
}

fn hex_literal(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn target_info() -> Vec<u8> {
    (0..512).map(|i| (i % 251) as u8).collect()
}

fn pub_key_id() -> Vec<u8> {
    (100..132).collect()
}

fn quote_body() -> Vec<u8> {
    (0..QUOTE_LEN).map(|i| (i % 199) as u8 + 1).collect()
}

fn qe_report() -> Vec<u8> {
    vec![0x5A; 432]
}

/// What the test server saw on one connection.
#[derive(Debug, PartialEq)]
enum Seen {
    /// The client closed without sending anything.
    Empty,
    /// A request: its body length and decoded form.
    Request(usize, AesmRequest),
}

/// The answers of a well-behaved daemon with one ECDSA key id.
fn answer(request: &AesmRequest) -> AesmResponse {
    match request {
        AesmRequest::GetSupportedAttKeyIdNum(_) => {
            AesmResponse::GetSupportedAttKeyIdNum(GetSupportedAttKeyIdNumResponse {
                error_code: 0,
                att_key_id_num: Some(1),
            })
        }
        AesmRequest::GetSupportedAttKeyIds(r) => {
            assert_eq!(r.buf_size, 256);
            AesmResponse::GetSupportedAttKeyIds(GetSupportedAttKeyIdsResponse {
                error_code: 0,
                att_key_ids: Some(qe3_key_id()),
            })
        }
        AesmRequest::InitQuoteEx(r) if !r.b_pub_key_id => {
            AesmResponse::InitQuoteEx(InitQuoteExResponse {
                error_code: 0,
                target_info: Some(vec![0; 512]),
                pub_key_id_size: Some(32),
                pub_key_id: None,
            })
        }
        AesmRequest::InitQuoteEx(_) => AesmResponse::InitQuoteEx(InitQuoteExResponse {
            error_code: 0,
            target_info: Some(target_info()),
            pub_key_id_size: Some(32),
            pub_key_id: Some(pub_key_id()),
        }),
        AesmRequest::GetQuoteSizeEx(_) => AesmResponse::GetQuoteSizeEx(GetQuoteSizeExResponse {
            error_code: 0,
            quote_size: Some(QUOTE_SIZE),
        }),
        AesmRequest::GetQuoteEx(r) => {
            let mut quote = quote_body();
            quote.resize(r.buf_size as usize, 0);
            let mut info = r.qe_report_info.clone().unwrap();
            info[QE_REPORT_INFO_REPORT_OFFSET..].copy_from_slice(&qe_report());
            AesmResponse::GetQuoteEx(GetQuoteExResponse {
                error_code: 0,
                quote: Some(quote),
                qe_report_info: Some(info),
            })
        }
        other => AesmResponse::error(other.kind(), AesmCode::ServiceUnavailable),
    }
}

/// Serves `connections` connections, one request each, answering with `respond`.
fn serve(
    path: &Path,
    connections: usize,
    respond: fn(&AesmRequest) -> AesmResponse,
) -> thread::JoinHandle<Vec<Seen>> {
    let listener = UnixListener::bind(path).unwrap();
    thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..connections {
            let (mut stream, _) = listener.accept().unwrap();
            let Some(body) = read_frame(&mut stream, DEFAULT_MAX_FRAME).unwrap() else {
                seen.push(Seen::Empty);
                continue;
            };
            let request = decode_request(&body).unwrap();
            write_frame(&mut stream, &encode_response(&respond(&request))).unwrap();
            seen.push(Seen::Request(body.len(), request));
        }
        seen
    })
}

#[test]
fn aesm_client_full_quote_ex_flow() {
    let dir = tempfile::Builder::new()
        .prefix("aesm")
        .tempdir_in("/tmp")
        .unwrap();
    let path = dir.path().join("s");
    let server = serve(&path, 7, answer);
    let client = AesmClient::with_path(&path);

    client.try_connect().unwrap();

    let ids = client.get_supported_att_key_ids().unwrap();
    assert_eq!(ids, vec![qe3_key_id()]);

    let info = client.init_quote_ex(ids[0].clone()).unwrap();
    assert_eq!(info.target_info(), target_info().as_slice());
    assert_eq!(info.pub_key_id(), pub_key_id().as_slice());

    let report: Vec<u8> = (0..432).map(|i| (i % 7) as u8).collect();
    let nonce: Vec<u8> = (1..=16).collect();
    let app_target_info = vec![0xA5; 512];
    let result = client
        .get_quote_ex(
            ids[0].clone(),
            report.clone(),
            Some(app_target_info.clone()),
            nonce.clone(),
        )
        .unwrap();
    let mut padded = quote_body();
    padded.resize(QUOTE_SIZE as usize, 0);
    assert_eq!(result.quote(), padded.as_slice());
    assert_eq!(result.qe_report(), qe_report().as_slice());

    let mut expected_info = nonce;
    expected_info.extend_from_slice(&app_target_info);
    expected_info.resize(QE_REPORT_INFO_SIZE, 0);
    let key = Some(qe3_key_id());
    let expected = vec![
        Seen::Empty,
        Seen::Request(
            8,
            AesmRequest::GetSupportedAttKeyIdNum(GetSupportedAttKeyIdNumRequest {
                timeout: Some(TIMEOUT_US),
            }),
        ),
        Seen::Request(
            11,
            AesmRequest::GetSupportedAttKeyIds(GetSupportedAttKeyIdsRequest {
                buf_size: 256,
                timeout: Some(TIMEOUT_US),
            }),
        ),
        Seen::Request(
            269,
            AesmRequest::InitQuoteEx(InitQuoteExRequest {
                att_key_id: key.clone(),
                b_pub_key_id: false,
                buf_size: None,
                timeout: Some(TIMEOUT_US),
            }),
        ),
        Seen::Request(
            266,
            AesmRequest::InitQuoteEx(InitQuoteExRequest {
                att_key_id: key.clone(),
                b_pub_key_id: true,
                buf_size: Some(32),
                timeout: None,
            }),
        ),
        Seen::Request(
            268,
            AesmRequest::GetQuoteSizeEx(GetQuoteSizeExRequest {
                att_key_id: key.clone(),
                timeout: Some(TIMEOUT_US),
            }),
        ),
        Seen::Request(
            1669,
            AesmRequest::GetQuoteEx(GetQuoteExRequest {
                report,
                att_key_id: key,
                qe_report_info: Some(expected_info),
                buf_size: QUOTE_SIZE,
                timeout: Some(TIMEOUT_US),
            }),
        ),
    ];
    let seen = server.join().unwrap();
    assert_eq!(seen, expected);

    // Our encoder reproduces the client's bytes exactly: re-encode what was decoded.
    for s in &seen {
        if let Seen::Request(len, req) = s {
            assert_eq!(encode_request(req).len(), *len);
        }
    }
}

#[test]
fn aesm_client_sees_our_error_codes() {
    fn refuse(request: &AesmRequest) -> AesmResponse {
        match request {
            AesmRequest::GetQuoteSizeEx(_) => {
                AesmResponse::GetQuoteSizeEx(GetQuoteSizeExResponse {
                    error_code: AesmCode::AttKeyNotInitialized.code(),
                    quote_size: Some(0),
                })
            }
            other => AesmResponse::error(other.kind(), AesmCode::UnsupportedAttKeyId),
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("aesm")
        .tempdir_in("/tmp")
        .unwrap();
    let path = dir.path().join("s");
    let server = serve(&path, 2, refuse);
    let client = AesmClient::with_path(&path);

    match client.init_quote_ex(qe3_key_id()) {
        Err(aesm_client::Error::AesmCode(code)) => {
            assert_eq!(format!("{code:?}"), "UnsupportedAttKeyId_38");
        }
        other => panic!("expected AESM code 38, got {other:?}"),
    }
    match client.get_quote_ex(qe3_key_id(), vec![0; 432], Some(vec![0; 512]), vec![0; 16]) {
        Err(aesm_client::Error::AesmCode(code)) => {
            assert_eq!(format!("{code:?}"), "AttKeyNotInitialized_42");
        }
        other => panic!("expected AESM code 42, got {other:?}"),
    }
    let seen = server.join().unwrap();
    assert_eq!(seen.len(), 2);
}

//! Whatever the service answers, every function returns a status (never panics or hangs) and writes
//! nothing outside the caller's buffers: random bytes, random frames, and well-formed replies whose
//! fields have random lengths. Guard bytes after each output buffer must survive every call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aesm_protocol::frame::encode_frame;
use aesm_protocol::{
    AesmResponse, GetQuoteExResponse, GetQuoteSizeExResponse, GetSupportedAttKeyIdNumResponse,
    GetSupportedAttKeyIdsResponse, InitQuoteExResponse, QuoteExApi, RequestKind,
    SelectAttKeyIdResponse, encode_response, sgx_status_for,
};
use common::{Reply, Server, intel_key_id};
use proptest::prelude::*;
use sgx_quote_ex::types::*;
use sgx_quote_ex::{Config, api};

const GUARD: usize = 64;
const GUARD_BYTE: u8 = 0xcd;

/// What the service sends back, whatever the request.
#[derive(Debug, Clone)]
enum Answer {
    /// Raw bytes on the connection, then close.
    Bytes(Vec<u8>),
    /// A response of the request's kind with these field values.
    Fields {
        code: u32,
        a: Option<usize>,
        b: Option<usize>,
        n: Option<u64>,
    },
}

fn respond(kind: RequestKind, answer: &Answer) -> Reply {
    let Answer::Fields { code, a, b, n } = answer else {
        let Answer::Bytes(bytes) = answer else {
            unreachable!()
        };
        return Reply::Raw(bytes.clone());
    };
    let blob = |len: &Option<usize>| len.map(|l| vec![0x5a; l]);
    let error_code = *code;
    let response = match kind {
        RequestKind::InitQuoteEx => AesmResponse::InitQuoteEx(InitQuoteExResponse {
            error_code,
            target_info: blob(a),
            pub_key_id_size: *n,
            pub_key_id: blob(b),
        }),
        RequestKind::GetQuoteSizeEx => AesmResponse::GetQuoteSizeEx(GetQuoteSizeExResponse {
            error_code,
            quote_size: n.map(|v| v as u32),
        }),
        RequestKind::GetQuoteEx => AesmResponse::GetQuoteEx(GetQuoteExResponse {
            error_code,
            quote: blob(a),
            qe_report_info: blob(b),
        }),
        RequestKind::SelectAttKeyId => AesmResponse::SelectAttKeyId(SelectAttKeyIdResponse {
            error_code,
            selected_att_key_id: blob(a),
        }),
        RequestKind::GetSupportedAttKeyIdNum => {
            AesmResponse::GetSupportedAttKeyIdNum(GetSupportedAttKeyIdNumResponse {
                error_code,
                att_key_id_num: n.map(|v| v as u32),
            })
        }
        RequestKind::GetSupportedAttKeyIds => {
            AesmResponse::GetSupportedAttKeyIds(GetSupportedAttKeyIdsResponse {
                error_code,
                att_key_ids: blob(a),
            })
        }
        RequestKind::Legacy(_) => return Reply::Close,
    };
    Reply::Respond(response)
}

/// A buffer of `len` bytes followed by guard bytes.
struct Guarded {
    bytes: Vec<u8>,
    len: usize,
}

impl Guarded {
    fn new(len: usize) -> Self {
        let mut bytes = vec![0u8; len + GUARD];
        bytes[len..].fill(GUARD_BYTE);
        Self { bytes, len }
    }

    fn ptr<T>(&mut self) -> *mut T {
        self.bytes.as_mut_ptr().cast()
    }

    fn intact(&self) -> bool {
        self.bytes[self.len..].iter().all(|b| *b == GUARD_BYTE)
    }
}

/// Calls every function once; returns (function, status) pairs after checking the guards.
fn call_everything(config: &Config) -> Vec<(QuoteExApi, u32)> {
    let key = sgx_att_key_id_t {
        att_key_id: intel_key_id().try_into().unwrap(),
    };
    // SAFETY: every bit pattern is a valid report.
    let report: sgx_report_t = unsafe { std::mem::zeroed() };
    let mut out = Vec::new();

    let mut selected = Guarded::new(256);
    // SAFETY: NULL list of size 0; the output holds 256 bytes.
    let st = unsafe { api::select_att_key_id(config, std::ptr::null(), 0, selected.ptr()) };
    assert!(selected.intact(), "select overflowed");
    out.push((QuoteExApi::SelectAttKeyId, st));

    for full in [false, true] {
        let mut target = Guarded::new(512);
        let mut size = Guarded::new(std::mem::size_of::<usize>());
        let mut pub_key_id = Guarded::new(32);
        size.bytes[..8].copy_from_slice(&(if full { 32usize } else { 0 }).to_ne_bytes());
        let id_ptr = if full {
            pub_key_id.ptr()
        } else {
            std::ptr::null_mut()
        };
        // SAFETY: key id, 512-byte target info, a size_t and (in full mode) a 32-byte buffer.
        let st = unsafe { api::init_quote_ex(config, &key, target.ptr(), size.ptr(), id_ptr) };
        assert!(target.intact(), "target info overflowed");
        assert!(size.intact(), "size overflowed");
        assert!(pub_key_id.intact(), "public key id overflowed");
        out.push((QuoteExApi::InitQuoteEx, st));
    }

    let mut quote_size = Guarded::new(4);
    // SAFETY: key id and a u32.
    let st = unsafe { api::get_quote_size_ex(config, &key, quote_size.ptr()) };
    assert!(quote_size.intact());
    out.push((QuoteExApi::GetQuoteSizeEx, st));

    let mut quote = Guarded::new(700);
    let mut info = Guarded::new(960);
    // SAFETY: report, key id, 960-byte report info and a 700-byte quote buffer.
    let st = unsafe { api::get_quote_ex(config, &report, &key, info.ptr(), quote.ptr(), 700) };
    assert!(quote.intact(), "quote overflowed");
    assert!(info.intact(), "report info overflowed");
    out.push((QuoteExApi::GetQuoteEx, st));

    let mut num = Guarded::new(4);
    // SAFETY: a u32.
    let st = unsafe { api::get_supported_att_key_id_num(config, num.ptr()) };
    assert!(num.intact());
    out.push((QuoteExApi::GetSupportedAttKeyIdNum, st));

    let mut ids = Guarded::new(512);
    // SAFETY: room for two key ids.
    let st = unsafe { api::get_supported_att_key_ids(config, ids.ptr(), 2) };
    assert!(ids.intact(), "key ids overflowed");
    out.push((QuoteExApi::GetSupportedAttKeyIds, st));
    out
}

/// Whether the fields of `answer` fit the buffers of `call_everything` for the `index`-th call.
fn fits(index: usize, a: Option<usize>, b: Option<usize>, n: Option<u64>) -> bool {
    let a = a.unwrap_or(0);
    match index {
        0 => a <= 256,
        // Size query: a public key id is never copied without a buffer.
        1 => a <= 512,
        // Full mode: the key id is copied (and must fit) only when its length equals the size.
        2 => a <= 512 && !(b.is_some_and(|b| Some(b as u64) == n.or(Some(32)) && b > 32)),
        4 => a <= 700 && b.unwrap_or(0) <= 960,
        6 => a <= 512,
        _ => true,
    }
}

fn server() -> (Server, Arc<Mutex<Answer>>) {
    let answer = Arc::new(Mutex::new(Answer::Bytes(Vec::new())));
    let shared = Arc::clone(&answer);
    let server = Server::start(move |request| respond(request.kind(), &shared.lock().unwrap()));
    (server, answer)
}

fn config(server: &Server) -> Config {
    Config {
        socket: server.path().to_path_buf(),
        timeout: Duration::from_secs(10),
        service_wait: Duration::ZERO,
        log: false,
    }
}

fn field_len() -> impl Strategy<Value = Option<usize>> {
    prop::option::of(prop_oneof![0usize..40, 250usize..270, 500usize..1100])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes_are_unexpected_and_harmless(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            // A plausible length prefix followed by random protobuf.
            prop::collection::vec(any::<u8>(), 0..300).prop_map(|body| encode_frame(&body).unwrap()),
        ]
    ) {
        let (server, answer) = server();
        *answer.lock().unwrap() = Answer::Bytes(bytes);
        for (api_fn, status) in call_everything(&config(&server)) {
            // Random bytes that happen to decode as a reply still get a status of the mapping.
            let possible: Vec<u32> = (0..=60).map(|code| sgx_status_for(api_fn, code)).collect();
            prop_assert!(possible.contains(&status), "{:?}: 0x{:04x}", api_fn, status);
        }
    }

    #[test]
    fn replies_with_random_field_lengths_never_overflow(
        code in prop_oneof![Just(0u32), 0u32..60, any::<u32>()],
        a in field_len(),
        b in field_len(),
        n in prop::option::of(prop_oneof![Just(32u64), 0u64..2000, any::<u64>()]),
    ) {
        let (server, answer) = server();
        *answer.lock().unwrap() = Answer::Fields { code, a, b, n };
        let results = call_everything(&config(&server));
        for (index, (api_fn, status)) in results.into_iter().enumerate() {
            let mapped = sgx_status_for(api_fn, code);
            if fits(index, a, b, n) {
                prop_assert_eq!(status, mapped, "call {} {:?}", index, api_fn);
            } else {
                prop_assert_eq!(status, SGX_ERROR_UNEXPECTED, "call {} {:?}", index, api_fn);
            }
        }
    }
}

#[test]
fn a_reply_frame_cut_short_is_unexpected() {
    let reply = encode_frame(&encode_response(&AesmResponse::GetSupportedAttKeyIdNum(
        GetSupportedAttKeyIdNumResponse {
            error_code: 0,
            att_key_id_num: Some(1),
        },
    )))
    .unwrap();
    for cut in 1..reply.len() {
        let (server, answer) = server();
        *answer.lock().unwrap() = Answer::Bytes(reply[..cut].to_vec());
        let mut num = 9u32;
        // SAFETY: a u32.
        let st = unsafe { api::get_supported_att_key_id_num(&config(&server), &mut num) };
        assert_eq!((st, num), (SGX_ERROR_UNEXPECTED, 9), "cut at {cut}");
    }
}

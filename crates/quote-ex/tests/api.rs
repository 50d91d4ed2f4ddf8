//! What each function writes into the caller's buffers for each shape of reply, in-process through
//! `sgx_quote_ex::api` (the exported functions are these with the settings from the environment).
//! Intel's client copies reply fields whatever `errorCode` says, copies only what fits, and fails
//! with `SGX_ERROR_UNEXPECTED` when a field is longer than its buffer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::Duration;

use aesm_protocol::frame::encode_frame;
use aesm_protocol::{
    AesmRequest, AesmResponse, GetQuoteExResponse, GetQuoteSizeExResponse,
    GetSupportedAttKeyIdNumResponse, GetSupportedAttKeyIdsResponse, InitQuoteExResponse,
    SelectAttKeyIdResponse, encode_att_key_id_list, encode_response,
};
use common::{Reply, Server, intel_key_id};
use sgx_quote_ex::types::*;
use sgx_quote_ex::{Config, api};

fn config(socket: &Path) -> Config {
    Config {
        socket: socket.to_path_buf(),
        timeout: Duration::from_secs(10),
        service_wait: Duration::ZERO,
        log: false,
    }
}

fn respond(response: AesmResponse) -> Server {
    Server::start(move |_| Reply::Respond(response.clone()))
}

fn key_id() -> sgx_att_key_id_t {
    sgx_att_key_id_t {
        att_key_id: intel_key_id().try_into().unwrap(),
    }
}

fn target_info(fill: u8) -> sgx_target_info_t {
    sgx_target_info_t {
        mr_enclave: [fill; 32],
        attributes: sgx_attributes_t {
            flags: u64::from_ne_bytes([fill; 8]),
            xfrm: u64::from_ne_bytes([fill; 8]),
        },
        reserved1: [fill; 2],
        config_svn: u16::from_ne_bytes([fill; 2]),
        misc_select: u32::from_ne_bytes([fill; 4]),
        reserved2: [fill; 8],
        config_id: [fill; 64],
        reserved3: [fill; 384],
    }
}

fn target_info_bytes(t: &sgx_target_info_t) -> Vec<u8> {
    // SAFETY: a plain-old-data struct of 512 bytes without padding.
    unsafe { std::slice::from_raw_parts((t as *const sgx_target_info_t).cast::<u8>(), 512) }
        .to_vec()
}

fn init(
    server: &Server,
    size: &mut usize,
    buffer: Option<&mut [u8]>,
    ti: &mut sgx_target_info_t,
) -> sgx_status_t {
    let id = key_id();
    let p = buffer.map_or(std::ptr::null_mut(), |b| b.as_mut_ptr());
    // SAFETY: valid key id, target info and size; the buffer (if any) holds `*size` bytes.
    unsafe { api::init_quote_ex(&config(server.path()), &id, ti, size, p) }
}

#[test]
fn size_query_writes_the_size_and_the_zero_target_info() {
    let server = respond(AesmResponse::InitQuoteEx(InitQuoteExResponse {
        error_code: 0,
        target_info: Some(vec![0; 512]),
        pub_key_id_size: Some(32),
        pub_key_id: None,
    }));
    let mut ti = target_info(0xee);
    let mut size = 0usize;
    assert_eq!(init(&server, &mut size, None, &mut ti), SGX_SUCCESS);
    assert_eq!(size, 32);
    assert_eq!(target_info_bytes(&ti), vec![0; 512]);
}

#[test]
fn a_public_key_id_that_disagrees_with_its_size_is_not_copied() {
    let server = respond(AesmResponse::InitQuoteEx(InitQuoteExResponse {
        error_code: 0,
        target_info: None,
        pub_key_id_size: Some(32),
        pub_key_id: Some(vec![7; 31]),
    }));
    let mut ti = target_info(0xee);
    let mut size = 32usize;
    let mut buffer = [0u8; 32];
    assert_eq!(
        init(&server, &mut size, Some(&mut buffer), &mut ti),
        SGX_SUCCESS
    );
    assert_eq!(buffer, [0; 32]);
    assert_eq!(
        target_info_bytes(&ti),
        vec![0xee; 512],
        "no target_info sent"
    );
}

#[test]
fn a_public_key_id_longer_than_the_buffer_is_unexpected() {
    let server = respond(AesmResponse::InitQuoteEx(InitQuoteExResponse {
        error_code: 0,
        target_info: Some(vec![1; 512]),
        pub_key_id_size: Some(64),
        pub_key_id: Some(vec![7; 64]),
    }));
    let mut ti = target_info(0xee);
    let mut size = 32usize;
    let mut buffer = [0u8; 32];
    assert_eq!(
        init(&server, &mut size, Some(&mut buffer), &mut ti),
        SGX_ERROR_UNEXPECTED
    );
    assert_eq!(buffer, [0; 32], "nothing written past or into the buffer");
}

#[test]
fn a_target_info_longer_than_512_bytes_is_unexpected() {
    let server = respond(AesmResponse::InitQuoteEx(InitQuoteExResponse {
        error_code: 0,
        target_info: Some(vec![1; 513]),
        pub_key_id_size: Some(32),
        pub_key_id: None,
    }));
    let mut ti = target_info(0xee);
    let mut size = 0usize;
    assert_eq!(
        init(&server, &mut size, None, &mut ti),
        SGX_ERROR_UNEXPECTED
    );
    assert_eq!(target_info_bytes(&ti), vec![0xee; 512]);
}

#[test]
fn the_size_is_written_even_with_an_error_code() {
    let server = respond(AesmResponse::InitQuoteEx(InitQuoteExResponse {
        error_code: 38,
        target_info: None,
        pub_key_id_size: Some(32),
        pub_key_id: None,
    }));
    let mut ti = target_info(0);
    let mut size = 5usize;
    assert_eq!(
        init(&server, &mut size, None, &mut ti),
        SGX_ERROR_UNSUPPORTED_ATT_KEY_ID
    );
    assert_eq!(size, 32);
}

#[test]
fn quote_size_is_written_whatever_the_result() {
    for (reply, code, expected_size, expected_status) in [
        (Some(4321), 0, 4321, SGX_SUCCESS),
        (Some(77), 42, 77, SGX_ERROR_ATT_KEY_UNINITIALIZED),
        (None, 0, 0, SGX_SUCCESS),
    ] {
        let server = respond(AesmResponse::GetQuoteSizeEx(GetQuoteSizeExResponse {
            error_code: code,
            quote_size: reply,
        }));
        let id = key_id();
        let mut size = 9u32;
        // SAFETY: valid key id and output.
        let status = unsafe { api::get_quote_size_ex(&config(server.path()), &id, &mut size) };
        assert_eq!((status, size), (expected_status, expected_size));
    }
}

#[test]
fn a_null_key_id_for_the_quote_size_is_sent_as_no_key_id() {
    let server = Server::answering(3);
    let mut size = 0u32;
    // SAFETY: NULL key id is allowed; valid output.
    let status =
        unsafe { api::get_quote_size_ex(&config(server.path()), std::ptr::null(), &mut size) };
    assert_eq!(status, SGX_ERROR_INVALID_PARAMETER);
    let AesmRequest::GetQuoteSizeEx(request) = &server.requests()[0] else {
        panic!()
    };
    assert_eq!(request.att_key_id, None);
}

fn report() -> sgx_report_t {
    // SAFETY: every bit pattern is a valid `sgx_report_t` (integers and byte arrays only).
    let mut r: sgx_report_t = unsafe { std::mem::zeroed() };
    r.body.report_data = [0x42; 64];
    r.mac = [9; 16];
    r
}

fn get_quote(
    server: &Server,
    info: Option<&mut sgx_qe_report_info_t>,
    quote: &mut [u8],
) -> sgx_status_t {
    let (r, id) = (report(), key_id());
    let info = info.map_or(std::ptr::null_mut(), |i| i as *mut _);
    // SAFETY: valid report and key id; `quote` holds `quote.len()` bytes; `info` is NULL or valid.
    unsafe {
        api::get_quote_ex(
            &config(server.path()),
            &r,
            &id,
            info,
            quote.as_mut_ptr(),
            quote.len() as u32,
        )
    }
}

#[test]
fn the_quote_and_the_qe_report_info_are_copied() {
    let server = Server::start(|request| {
        let AesmRequest::GetQuoteEx(r) = request else {
            panic!()
        };
        let mut info = r.qe_report_info.clone().unwrap();
        info[528..].fill(0x77);
        Reply::Respond(AesmResponse::GetQuoteEx(GetQuoteExResponse {
            error_code: 0,
            quote: Some(vec![0x33; 100]),
            qe_report_info: Some(info),
        }))
    });
    // SAFETY: every bit pattern is a valid `sgx_qe_report_info_t`.
    let mut info: sgx_qe_report_info_t = unsafe { std::mem::zeroed() };
    info.nonce.rand = [5; 16];
    let mut quote = vec![0xffu8; 200];
    assert_eq!(get_quote(&server, Some(&mut info), &mut quote), SGX_SUCCESS);
    assert_eq!(&quote[..100], &[0x33; 100][..]);
    assert_eq!(
        &quote[100..],
        &[0xff; 100][..],
        "only the reply's bytes are written"
    );
    assert_eq!(info.nonce.rand, [5; 16]);
    assert_eq!(info.qe_report.mac, [0x77; 16]);

    let AesmRequest::GetQuoteEx(sent) = &server.requests()[0] else {
        panic!()
    };
    assert_eq!(sent.report.len(), 432);
    assert_eq!(&sent.report[320..384], &[0x42; 64][..]);
    assert_eq!(sent.buf_size, 200);
    assert_eq!(sent.qe_report_info.as_ref().map(Vec::len), Some(960));
}

#[test]
fn a_quote_longer_than_the_buffer_is_unexpected() {
    let server = respond(AesmResponse::GetQuoteEx(GetQuoteExResponse {
        error_code: 0,
        quote: Some(vec![1; 101]),
        qe_report_info: None,
    }));
    let mut quote = vec![0u8; 100];
    assert_eq!(get_quote(&server, None, &mut quote), SGX_ERROR_UNEXPECTED);
    assert_eq!(quote, vec![0; 100]);
}

#[test]
fn a_quote_buffer_larger_than_the_default_reply_limit_works() {
    // aesmd pads the quote to the caller's buffer; a 2 MiB buffer makes a 2 MiB reply.
    let server = Server::start(|request| {
        let AesmRequest::GetQuoteEx(r) = request else {
            panic!()
        };
        let mut quote = vec![0x11; 1300];
        quote.resize(r.buf_size as usize, 0);
        Reply::Respond(AesmResponse::GetQuoteEx(GetQuoteExResponse {
            error_code: 0,
            quote: Some(quote),
            qe_report_info: None,
        }))
    });
    let mut quote = vec![0xffu8; 2 << 20];
    assert_eq!(get_quote(&server, None, &mut quote), SGX_SUCCESS);
    assert_eq!(&quote[..1300], &[0x11; 1300][..]);
    assert!(quote[1300..].iter().all(|b| *b == 0));
}

#[test]
fn select_sends_the_list_verbatim_and_copies_the_choice() {
    let server = respond(AesmResponse::SelectAttKeyId(SelectAttKeyIdResponse {
        error_code: 0,
        selected_att_key_id: Some(intel_key_id()),
    }));
    let list = encode_att_key_id_list(&[[3; 256], intel_key_id().try_into().unwrap()]);
    let mut selected = sgx_att_key_id_t {
        att_key_id: [0; 256],
    };
    let c = config(server.path());
    // SAFETY: the list holds `list.len()` bytes; valid output.
    let status =
        unsafe { api::select_att_key_id(&c, list.as_ptr(), list.len() as u32, &mut selected) };
    assert_eq!(status, SGX_SUCCESS);
    assert_eq!(selected.att_key_id.to_vec(), intel_key_id());
    // SAFETY: NULL list with size 0 is the platform default; valid output.
    let status = unsafe { api::select_att_key_id(&c, std::ptr::null(), 0, &mut selected) };
    assert_eq!(status, SGX_SUCCESS);
    let requests = server.requests();
    let lists: Vec<_> = requests
        .iter()
        .map(|r| match r {
            AesmRequest::SelectAttKeyId(s) => s.att_key_id_list.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(lists, [Some(list), None]);
}

#[test]
fn supported_ids_copy_what_fits_and_reject_what_does_not() {
    for (sent, expected) in [
        (512, SGX_SUCCESS),
        (256, SGX_SUCCESS),
        (768, SGX_ERROR_UNEXPECTED),
    ] {
        let server = respond(AesmResponse::GetSupportedAttKeyIds(
            GetSupportedAttKeyIdsResponse {
                error_code: 0,
                att_key_ids: Some(vec![0xab; sent]),
            },
        ));
        let mut buffer = vec![0u8; 512];
        // SAFETY: the buffer holds two 256-byte key ids.
        let status = unsafe {
            api::get_supported_att_key_ids(&config(server.path()), buffer.as_mut_ptr().cast(), 2)
        };
        assert_eq!(status, expected, "{sent} bytes");
        let copied = if expected == SGX_SUCCESS { sent } else { 0 };
        assert!(buffer[..copied].iter().all(|b| *b == 0xab));
        assert!(buffer[copied..].iter().all(|b| *b == 0));
        let AesmRequest::GetSupportedAttKeyIds(r) = &server.requests()[0] else {
            panic!()
        };
        assert_eq!(r.buf_size, 512);
    }
}

#[test]
fn key_id_count_is_zero_when_absent() {
    let server = respond(AesmResponse::GetSupportedAttKeyIdNum(
        GetSupportedAttKeyIdNumResponse {
            error_code: 0,
            att_key_id_num: None,
        },
    ));
    let mut num = 5u32;
    // SAFETY: valid output.
    let status = unsafe { api::get_supported_att_key_id_num(&config(server.path()), &mut num) };
    assert_eq!((status, num), (SGX_SUCCESS, 0));
}

#[test]
fn a_reply_to_another_request_is_unexpected() {
    let wrong = encode_response(&AesmResponse::InitQuoteEx(InitQuoteExResponse {
        error_code: 0,
        ..Default::default()
    }));
    let server = Server::start(move |_| Reply::Raw(encode_frame(&wrong).unwrap()));
    let mut num = 5u32;
    // SAFETY: valid output.
    let status = unsafe { api::get_supported_att_key_id_num(&config(server.path()), &mut num) };
    assert_eq!((status, num), (SGX_ERROR_UNEXPECTED, 5));
}

#[test]
fn an_oversized_reply_frame_is_unexpected_without_allocating_it() {
    let server = Server::start(|_| Reply::Raw(vec![0xff, 0xff, 0xff, 0x7f, 0, 0]));
    let mut num = 5u32;
    // SAFETY: valid output.
    let status = unsafe { api::get_supported_att_key_id_num(&config(server.path()), &mut num) };
    assert_eq!(status, SGX_ERROR_UNEXPECTED);
}

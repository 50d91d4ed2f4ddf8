//! Raw AESM sessions against the running service: the request sequences of Intel's DCAP library,
//! Open Enclave and Gramine (`aesm-protocol.md` §4), the bytes of Gramine's requests written out
//! by hand, and every error path of §1.6 with aesmd's codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use aesm_protocol::wire;
use aesm_protocol::{
    AesmRequest, AesmResponse, GetQuoteExRequest, GetQuoteSizeExRequest,
    GetSupportedAttKeyIdNumRequest, GetSupportedAttKeyIdsRequest, InitQuoteExRequest, LegacyKind,
    RequestKind, SelectAttKeyIdRequest, decode_response, encode_att_key_id_list, encode_request,
};
use common::{Helper, raw_exchange, transact, verify_with_qvl};
use prost::Message;
use sgx_sim::EnclaveIdentity;
use sgx_types::quote::Quote;
use sgx_types::structs::Wire;
use sgx_types::{AttKeyId, QeReportInfo, Report, TargetInfo};

fn key() -> Vec<u8> {
    AttKeyId::intel_qe3_ecdsa().to_vec()
}

fn init(full: bool, buf_size: Option<u64>, att_key_id: Option<Vec<u8>>) -> AesmRequest {
    AesmRequest::InitQuoteEx(InitQuoteExRequest {
        att_key_id,
        b_pub_key_id: full,
        buf_size,
        timeout: Some(15_000),
    })
}

fn quote_size(att_key_id: Option<Vec<u8>>) -> AesmRequest {
    AesmRequest::GetQuoteSizeEx(GetQuoteSizeExRequest {
        att_key_id,
        timeout: Some(15_000),
    })
}

fn get_quote(report: Vec<u8>, info: Option<Vec<u8>>, buf_size: u32) -> AesmRequest {
    AesmRequest::GetQuoteEx(GetQuoteExRequest {
        report,
        att_key_id: Some(key()),
        qe_report_info: info,
        buf_size,
        timeout: Some(15_000),
    })
}

fn init_ok(socket: &std::path::Path, request: &AesmRequest) -> aesm_protocol::InitQuoteExResponse {
    match transact(socket, request) {
        AesmResponse::InitQuoteEx(r) if r.error_code == 0 => r,
        other => panic!("InitQuoteEx failed: {other:?}"),
    }
}

fn size_of(socket: &std::path::Path) -> (u32, Option<u32>) {
    match transact(socket, &quote_size(Some(key()))) {
        AesmResponse::GetQuoteSizeEx(r) => (r.error_code, r.quote_size),
        other => panic!("{other:?}"),
    }
}

fn quote_reply(
    socket: &std::path::Path,
    request: &AesmRequest,
) -> aesm_protocol::GetQuoteExResponse {
    match transact(socket, request) {
        AesmResponse::GetQuoteEx(r) => r,
        other => panic!("{other:?}"),
    }
}

fn app_report(helper: &Helper, report_data: u8) -> Report {
    helper.cpu().create_report(
        &EnclaveIdentity::default(),
        &helper.platform.qe_target_info(),
        &[report_data; 64],
    )
}

/// `libsgx_dcap_ql` out of process: `sgx_qe_get_target_info` (InitQuoteEx size query with an
/// uninitialised `size_t` as buf_size, then full mode with 32), `sgx_qe_get_quote_size`,
/// `sgx_qe_get_quote` (no report info).
#[test]
fn intel_dcap_library_sequence() {
    let helper = Helper::start();
    let s = &helper.socket;
    let sizing = init_ok(s, &init(false, Some(0x7ffc_9a3e_51d0), Some(key())));
    assert_eq!(sizing.pub_key_id_size, Some(32));
    assert_eq!(sizing.pub_key_id, None);
    // Size queries do no key work: still 42 afterwards.
    assert_eq!(size_of(s), (42, Some(0)));

    let full = init_ok(s, &init(true, Some(32), Some(key())));
    let target = TargetInfo::parse(full.target_info.as_deref().unwrap()).unwrap();
    assert_eq!(target, helper.platform.qe_target_info());
    assert_eq!(full.pub_key_id_size, Some(32));
    assert_eq!(full.pub_key_id.as_deref().unwrap().len(), 32);

    let (code, size) = size_of(s);
    assert_eq!(code, 0);
    let size = size.unwrap();
    assert_eq!(size, helper.platform.quote_size().unwrap());
    let report = app_report(&helper, 0x33);
    let reply = quote_reply(s, &get_quote(report.to_vec(), None, size));
    assert_eq!(reply.error_code, 0);
    assert_eq!(reply.qe_report_info, None);
    let quote = reply.quote.unwrap();
    assert_eq!(quote.len(), size as usize);
    assert_eq!(Quote::parse(&quote).unwrap().report_body, report.body);
    assert_eq!(
        verify_with_qvl(&helper.platform, &quote).unwrap(),
        "UpToDate"
    );
}

/// Open Enclave with `SGX_AESM_ADDR`: key ids first, then InitQuoteEx twice (no buf_size in the
/// size query), GetQuoteSizeEx, GetQuoteEx without report info.
#[test]
fn open_enclave_sequence() {
    let helper = Helper::start();
    let s = &helper.socket;
    let num = match transact(
        s,
        &AesmRequest::GetSupportedAttKeyIdNum(GetSupportedAttKeyIdNumRequest {
            timeout: Some(15_000),
        }),
    ) {
        AesmResponse::GetSupportedAttKeyIdNum(r) => {
            assert_eq!(r.error_code, 0);
            r.att_key_id_num.unwrap()
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(num, 1);
    let ids = match transact(
        s,
        &AesmRequest::GetSupportedAttKeyIds(GetSupportedAttKeyIdsRequest {
            buf_size: num * 256,
            timeout: Some(15_000),
        }),
    ) {
        AesmResponse::GetSupportedAttKeyIds(r) => {
            assert_eq!(r.error_code, 0);
            r.att_key_ids.unwrap()
        }
        other => panic!("{other:?}"),
    };
    let base = sgx_types::QlAttKeyId::parse(&ids[..158]).unwrap();
    assert_eq!(base.algorithm_id, 2, "OE maps algorithm 2 to ECDSA-P256");
    let sizing = init_ok(s, &init(false, None, Some(ids.clone())));
    let full = init_ok(
        s,
        &init(
            true,
            Some(sizing.pub_key_id_size.unwrap()),
            Some(ids.clone()),
        ),
    );
    let target = TargetInfo::parse(full.target_info.as_deref().unwrap()).unwrap();
    let (code, size) = size_of(s);
    assert_eq!(code, 0);
    let report = helper
        .cpu()
        .create_report(&EnclaveIdentity::default(), &target, &[5; 64]);
    let reply = quote_reply(s, &get_quote(report.to_vec(), None, size.unwrap()));
    assert_eq!(reply.error_code, 0);
    assert_eq!(
        verify_with_qvl(&helper.platform, &reply.quote.unwrap()).unwrap(),
        "UpToDate"
    );
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field_bytes(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
    varint(field << 3 | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn field_varint(field: u64, v: u64, out: &mut Vec<u8>) {
    varint(field << 3, out);
    varint(v, out);
}

/// Gramine: one full-mode InitQuoteEx (buf_size 32), then GetQuoteEx with an 8192-byte buffer and
/// no size query; it trims the quote to 436 + signature_data_len. The request bytes are written
/// out by hand here, as protobuf-c lays them out.
#[test]
fn gramine_sequence_with_hand_written_bytes() {
    let helper = Helper::start();
    let s = &helper.socket;

    let mut inner = Vec::new();
    field_bytes(1, &key(), &mut inner);
    field_varint(3, 1, &mut inner);
    field_varint(4, 32, &mut inner);
    let mut request = Vec::new();
    field_bytes(15, &inner, &mut request);
    assert_eq!(&request[..3], &[0x7a, 0x87, 0x02], "tag 15, length 263");
    assert_eq!(request.len(), 266, "the size seen from real clients");
    let reply = raw_exchange(s, &request).unwrap();
    let AesmResponse::InitQuoteEx(init) =
        decode_response(&reply, RequestKind::InitQuoteEx).unwrap()
    else {
        panic!()
    };
    assert_eq!(init.error_code, 0);
    let target = TargetInfo::parse(init.target_info.as_deref().unwrap()).unwrap();

    let report = helper
        .cpu()
        .create_report(&EnclaveIdentity::default(), &target, &[0x6b; 64]);
    let mut inner = Vec::new();
    field_bytes(1, &report.to_vec(), &mut inner);
    field_bytes(2, &key(), &mut inner);
    field_varint(4, 8192, &mut inner);
    let mut request = Vec::new();
    field_bytes(17, &inner, &mut request);
    assert_eq!(&request[..2], &[0x8a, 0x01], "tag 17 is a two-byte varint");
    let reply = raw_exchange(s, &request).unwrap();
    let AesmResponse::GetQuoteEx(got) = decode_response(&reply, RequestKind::GetQuoteEx).unwrap()
    else {
        panic!()
    };
    assert_eq!(got.error_code, 0);
    let padded = got.quote.unwrap();
    assert_eq!(padded.len(), 8192);
    let sig_len = u32::from_le_bytes(padded[432..436].try_into().unwrap()) as usize;
    let trimmed = &padded[..436 + sig_len];
    assert_eq!(trimmed.len() as u32, helper.platform.quote_size().unwrap());
    assert!(padded[436 + sig_len..].iter().all(|&b| b == 0));
    assert_eq!(
        verify_with_qvl(&helper.platform, trimmed).unwrap(),
        "UpToDate"
    );
}

#[test]
fn error_code_zero_is_on_the_wire() {
    let helper = Helper::start();
    let body = raw_exchange(
        &helper.socket,
        &encode_request(&init(false, None, Some(key()))),
    )
    .unwrap();
    let raw = wire::Response::decode(body.as_slice()).unwrap();
    let res = raw.init_quote_ex_res.unwrap();
    assert_eq!(res.error_code, Some(0));
    // Response field 15, a two-byte length (the 512-byte target info is inside), then field 1
    // (errorCode) = 0 explicitly.
    assert_eq!(body[0], 0x7a);
    assert_eq!(&body[3..5], &[0x08, 0x00]);
}

#[test]
fn init_quote_ex_errors() {
    let helper = Helper::start();
    let s = &helper.socket;
    let code = |req: AesmRequest| transact(s, &req).error_code();
    assert_eq!(code(init(true, Some(32), None)), 3, "no key id");
    assert_eq!(
        code(init(true, Some(32), Some(key()[..200].to_vec()))),
        3,
        "short key id"
    );
    let mut debug_qe = key();
    debug_qe[6] ^= 0xff; // MRSIGNER of another QE
    assert_eq!(code(init(true, Some(32), Some(debug_qe.clone()))), 38);
    assert_eq!(
        code(init(false, None, Some(debug_qe))),
        38,
        "also in size-query mode"
    );
    assert_eq!(
        code(init(true, None, Some(key()))),
        3,
        "full mode without buf_size"
    );
    assert_eq!(
        code(init(true, Some(64), Some(key()))),
        3,
        "full mode with 64"
    );
    // None of these created the key.
    assert!(!helper.platform.attestation_key_initialized());
    assert_eq!(code(init(true, Some(32), Some(key()))), 0);
    assert!(helper.platform.attestation_key_initialized());
}

#[test]
fn quote_requests_before_the_key_exists_get_42() {
    let helper = Helper::start();
    let s = &helper.socket;
    assert_eq!(size_of(s), (42, Some(0)));
    let reply = quote_reply(s, &get_quote(app_report(&helper, 1).to_vec(), None, 8192));
    assert_eq!((reply.error_code, reply.quote), (42, None));
    assert_eq!(transact(s, &quote_size(None)).error_code(), 3);
    let mut other = key();
    other[154] = 3; // ECDSA-P384
    assert_eq!(transact(s, &quote_size(Some(other))).error_code(), 38);
}

#[test]
fn get_quote_ex_errors_and_report_info_echo() {
    let helper = Helper::start();
    let s = &helper.socket;
    init_ok(s, &init(true, Some(32), Some(key())));
    let size = helper.platform.quote_size().unwrap();
    let report = app_report(&helper, 2);
    let info = QeReportInfo {
        nonce: [0xAA; 16],
        app_enclave_target_info: EnclaveIdentity::default().target_info(),
        qe_report: Report::default(),
    }
    .to_vec();

    // Buffer one byte short, above the 64 KiB cap, report and info of the wrong size.
    for (request, what) in [
        (get_quote(report.to_vec(), None, size - 1), "short buffer"),
        (
            get_quote(report.to_vec(), None, 64 * 1024 + 1),
            "buffer above the cap",
        ),
        (
            get_quote(report.to_vec()[..431].to_vec(), None, size),
            "431-byte report",
        ),
        (
            get_quote(report.to_vec(), Some(info[..959].to_vec()), size),
            "959-byte info",
        ),
    ] {
        let reply = quote_reply(s, &request);
        assert_eq!(reply.error_code, 3, "{what}");
        assert_eq!(reply.quote, None, "{what}");
    }
    let reply = quote_reply(
        s,
        &get_quote(report.to_vec(), Some(info[..959].to_vec()), size),
    );
    assert_eq!(
        reply.qe_report_info,
        Some(info[..959].to_vec()),
        "echoed even when wrong"
    );

    // The exact size and the cap itself are fine.
    assert_eq!(
        quote_reply(s, &get_quote(report.to_vec(), None, size)).error_code,
        0
    );
    let big = quote_reply(s, &get_quote(report.to_vec(), None, 64 * 1024));
    assert_eq!((big.error_code, big.quote.unwrap().len()), (0, 64 * 1024));

    // A report whose MAC does not verify: 47, with the info echoed unchanged.
    let mut tampered = report;
    tampered.body.report_data[0] ^= 1;
    let reply = quote_reply(s, &get_quote(tampered.to_vec(), Some(info.clone()), size));
    assert_eq!(reply.error_code, 47);
    assert_eq!(reply.qe_report_info, Some(info.clone()));

    // Success with report info: the QE report is filled in for the app enclave.
    let reply = quote_reply(
        s,
        &get_quote(app_report(&helper, 3).to_vec(), Some(info), size),
    );
    assert_eq!(reply.error_code, 0);
    let back = QeReportInfo::parse(reply.qe_report_info.as_deref().unwrap()).unwrap();
    assert_eq!(back.nonce, [0xAA; 16]);
    assert!(
        helper
            .cpu()
            .verify_report(&back.qe_report, &EnclaveIdentity::default().target_info())
    );
    let text = helper.metrics_text();
    assert!(text.contains(
        "confcom_quote_helper_requests_total{type=\"GetQuoteEx\",result=\"invalid_report\"} 1"
    ));
    assert!(text.contains(
        "confcom_quote_helper_requests_total{type=\"GetQuoteEx\",result=\"parameter_error\"} 5"
    ));
}

#[test]
fn key_id_selection_and_listing() {
    let helper = Helper::start();
    let s = &helper.socket;
    let select = |list: Option<Vec<u8>>| match transact(
        s,
        &AesmRequest::SelectAttKeyId(SelectAttKeyIdRequest {
            att_key_id_list: list,
            timeout: None,
        }),
    ) {
        AesmResponse::SelectAttKeyId(r) => (r.error_code, r.selected_att_key_id),
        other => panic!("{other:?}"),
    };
    assert_eq!(select(None), (0, Some(key())));
    let ours: [u8; 256] = key().try_into().unwrap();
    let mut epid = ours;
    epid[154] = 0;
    assert_eq!(
        select(Some(encode_att_key_id_list(&[epid, ours]))),
        (0, Some(key()))
    );
    assert_eq!(select(Some(encode_att_key_id_list(&[epid]))).0, 38);
    let mut bad_header = encode_att_key_id_list(&[ours]);
    bad_header[2] = 1;
    assert_eq!(select(Some(bad_header)).0, 3);

    for buf_size in [0, 128, 512] {
        let code = transact(
            s,
            &AesmRequest::GetSupportedAttKeyIds(GetSupportedAttKeyIdsRequest {
                buf_size,
                timeout: None,
            }),
        )
        .error_code();
        assert_eq!(code, 3, "buf_size {buf_size}");
    }
}

#[test]
fn legacy_requests_get_30_in_their_own_response_field() {
    let helper = Helper::start();
    for kind in LegacyKind::ALL {
        let reply = transact(&helper.socket, &AesmRequest::Legacy(kind));
        assert_eq!(
            reply,
            AesmResponse::error(
                RequestKind::Legacy(kind),
                aesm_protocol::AesmCode::ServiceUnavailable
            )
        );
    }
}

#[test]
fn undecodable_and_unknown_requests_are_closed_without_a_reply() {
    let helper = Helper::start();
    let s = &helper.socket;
    let mut unknown = Vec::new();
    field_bytes(99, &[], &mut unknown);
    let mut no_b_pub_key_id = Vec::new();
    let mut inner = Vec::new();
    field_bytes(1, &key(), &mut inner);
    field_bytes(15, &inner, &mut no_b_pub_key_id);
    let mut no_buf_size = Vec::new();
    let mut inner = Vec::new();
    field_bytes(1, &[0; 432], &mut inner);
    field_bytes(17, &inner, &mut no_buf_size);
    let cases: [(&str, Vec<u8>); 5] = [
        ("empty wrapper", Vec::new()),
        ("unknown field 99", unknown),
        ("garbage", vec![0xff; 40]),
        ("InitQuoteEx without b_pub_key_id", no_b_pub_key_id),
        ("GetQuoteEx without buf_size", no_buf_size),
    ];
    for (what, body) in cases {
        assert_eq!(raw_exchange(s, &body), None, "{what}");
    }
    // The service is still fine.
    assert_eq!(size_of(s).0, 42);
    assert_eq!(
        helper
            .metrics
            .dropped_count(aesm_service::metrics::DropReason::Undecodable),
        5
    );
}

//! Exact bytes of the request sequence Fortanix's `aesm-client` sends (`aesm-protocol.md` §2.5),
//! built by hand from the field numbers and protobuf's wire rules, against our encoder and decoder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aesm_protocol::{
    AesmCode, AesmRequest, AesmResponse, GetQuoteExRequest, GetQuoteExResponse,
    GetQuoteSizeExRequest, GetSupportedAttKeyIdNumRequest, GetSupportedAttKeyIdsRequest,
    InitQuoteExRequest, InitQuoteExResponse, LegacyKind, RequestKind, decode_frame_and_request,
    decode_request, encode_request, encode_response, frame::encode_frame,
};

// --- a minimal hand encoder: varints, tags, length-delimited fields ---------------------------

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn tag(field: u64, wire_type: u64) -> Vec<u8> {
    varint((field << 3) | wire_type)
}

/// A varint field (wire type 0).
fn vfield(field: u64, value: u64) -> Vec<u8> {
    [tag(field, 0), varint(value)].concat()
}

/// A length-delimited field (wire type 2).
fn lfield(field: u64, bytes: &[u8]) -> Vec<u8> {
    [tag(field, 2), varint(bytes.len() as u64), bytes.to_vec()].concat()
}

const TIMEOUT_US: u32 = 30_000_000;

fn key_id() -> Vec<u8> {
    (0..=255u8).collect()
}

// --- the sequence ------------------------------------------------------------------------------

#[test]
fn tags_of_high_field_numbers_are_two_bytes() {
    assert_eq!(tag(21, 2), [0xAA, 0x01]);
    assert_eq!(tag(22, 2), [0xB2, 0x01]);
    assert_eq!(tag(15, 2), [0x7A]);
}

#[test]
fn get_supported_att_key_id_num_is_8_bytes() {
    let expected = lfield(21, &vfield(9, u64::from(TIMEOUT_US)));
    assert_eq!(expected.len(), 8);
    let req = AesmRequest::GetSupportedAttKeyIdNum(GetSupportedAttKeyIdNumRequest {
        timeout: Some(TIMEOUT_US),
    });
    assert_eq!(encode_request(&req), expected);
    assert_eq!(decode_request(&expected).unwrap(), req);
}

#[test]
fn get_supported_att_key_ids_is_11_bytes() {
    let expected = lfield(
        22,
        &[vfield(1, 256), vfield(9, u64::from(TIMEOUT_US))].concat(),
    );
    assert_eq!(expected.len(), 11);
    let req = AesmRequest::GetSupportedAttKeyIds(GetSupportedAttKeyIdsRequest {
        buf_size: 256,
        timeout: Some(TIMEOUT_US),
    });
    assert_eq!(encode_request(&req), expected);
    assert_eq!(decode_request(&expected).unwrap(), req);
}

#[test]
fn init_quote_ex_size_query_is_269_bytes() {
    let inner = [
        lfield(1, &key_id()),
        vfield(3, 0),
        vfield(9, u64::from(TIMEOUT_US)),
    ]
    .concat();
    let expected = lfield(15, &inner);
    assert_eq!(expected.len(), 269);
    let req = AesmRequest::InitQuoteEx(InitQuoteExRequest {
        att_key_id: Some(key_id()),
        b_pub_key_id: false,
        buf_size: None,
        timeout: Some(TIMEOUT_US),
    });
    assert_eq!(encode_request(&req), expected);
    assert_eq!(decode_request(&expected).unwrap(), req);
}

#[test]
fn init_quote_ex_full_mode_is_266_bytes() {
    let inner = [lfield(1, &key_id()), vfield(3, 1), vfield(4, 32)].concat();
    let expected = lfield(15, &inner);
    assert_eq!(expected.len(), 266);
    let req = AesmRequest::InitQuoteEx(InitQuoteExRequest {
        att_key_id: Some(key_id()),
        b_pub_key_id: true,
        buf_size: Some(32),
        timeout: None,
    });
    assert_eq!(encode_request(&req), expected);
    assert_eq!(decode_request(&expected).unwrap(), req);
}

#[test]
fn get_quote_size_ex_is_268_bytes() {
    let inner = [lfield(1, &key_id()), vfield(9, u64::from(TIMEOUT_US))].concat();
    let expected = lfield(16, &inner);
    assert_eq!(expected.len(), 268);
    assert_eq!(&expected[..2], &[0x82, 0x01]);
    let req = AesmRequest::GetQuoteSizeEx(GetQuoteSizeExRequest {
        att_key_id: Some(key_id()),
        timeout: Some(TIMEOUT_US),
    });
    assert_eq!(encode_request(&req), expected);
    assert_eq!(decode_request(&expected).unwrap(), req);
}

#[test]
fn get_quote_ex_is_1669_bytes() {
    let report = vec![0x11; 432];
    let qe_report_info = vec![0x22; 960];
    let inner = [
        lfield(1, &report),
        lfield(2, &key_id()),
        lfield(3, &qe_report_info),
        vfield(4, 5000),
        vfield(9, u64::from(TIMEOUT_US)),
    ]
    .concat();
    let expected = lfield(17, &inner);
    assert_eq!(expected.len(), 1669);
    let req = AesmRequest::GetQuoteEx(GetQuoteExRequest {
        report,
        att_key_id: Some(key_id()),
        qe_report_info: Some(qe_report_info),
        buf_size: 5000,
        timeout: Some(TIMEOUT_US),
    });
    assert_eq!(encode_request(&req), expected);
    assert_eq!(decode_request(&expected).unwrap(), req);

    // And as a frame: 4-byte little-endian prefix.
    let frame = encode_frame(&expected).unwrap();
    assert_eq!(&frame[..4], &1669u32.to_le_bytes());
    assert_eq!(decode_frame_and_request(&frame).unwrap(), req);
}

// --- responses ---------------------------------------------------------------------------------

#[test]
fn success_response_carries_error_code_zero_explicitly() {
    let res = AesmResponse::InitQuoteEx(InitQuoteExResponse {
        error_code: 0,
        target_info: Some(vec![0; 512]),
        pub_key_id_size: Some(32),
        pub_key_id: None,
    });
    let inner = [vfield(1, 0), lfield(2, &[0; 512]), vfield(3, 32)].concat();
    assert_eq!(encode_response(&res), lfield(15, &inner));
}

#[test]
fn error_response_bytes() {
    let res = AesmResponse::error(RequestKind::GetQuoteEx, AesmCode::InvalidReport);
    assert_eq!(encode_response(&res), lfield(17, &vfield(1, 47)));
    let res = AesmResponse::GetQuoteEx(GetQuoteExResponse {
        error_code: 3,
        quote: None,
        qe_report_info: Some(vec![9; 960]),
    });
    let inner = [vfield(1, 3), lfield(3, &[9; 960])].concat();
    assert_eq!(encode_response(&res), lfield(17, &inner));
}

#[test]
fn legacy_responses_use_the_matching_field() {
    for kind in LegacyKind::ALL {
        let res = AesmResponse::error(RequestKind::Legacy(kind), AesmCode::ServiceUnavailable);
        let expected = lfield(u64::from(kind.field_number()), &vfield(1, 30));
        assert_eq!(encode_response(&res), expected, "{kind:?}");
    }
}

//! Request/response decoding: required fields, unknown and empty wrappers, precedence, round trips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aesm_protocol::{
    AesmCode, AesmRequest, AesmResponse, DecodeError, FrameError, GetQuoteExRequest,
    GetQuoteExResponse, GetQuoteSizeExResponse, GetSupportedAttKeyIdNumResponse,
    GetSupportedAttKeyIdsResponse, InitQuoteExRequest, InitQuoteExResponse, LegacyKind,
    ProtocolError, RequestKind, SelectAttKeyIdRequest, SelectAttKeyIdResponse,
    decode_frame_and_request, decode_request, decode_response, encode_request, encode_response,
    frame::encode_frame, wire,
};
use prost::Message;

fn missing(message: &'static str, field: &'static str) -> DecodeError {
    DecodeError::MissingRequiredField { message, field }
}

fn wrap(req: wire::Request) -> Vec<u8> {
    req.encode_to_vec()
}

#[test]
fn init_quote_ex_without_b_pub_key_id_is_rejected() {
    let bytes = wrap(wire::Request {
        init_quote_ex_req: Some(wire::InitQuoteExRequest {
            att_key_id: Some(vec![0; 256]),
            ..Default::default()
        }),
        ..Default::default()
    });
    assert_eq!(
        decode_request(&bytes),
        Err(missing("InitQuoteExRequest", "b_pub_key_id"))
    );
}

#[test]
fn init_quote_ex_without_buf_size_is_accepted() {
    // aesmd 2.30 briefly required buf_size and broke every older client; it is optional.
    let bytes = wrap(wire::Request {
        init_quote_ex_req: Some(wire::InitQuoteExRequest {
            att_key_id: Some(vec![1; 256]),
            b_pub_key_id: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    });
    assert_eq!(
        decode_request(&bytes),
        Ok(AesmRequest::InitQuoteEx(InitQuoteExRequest {
            att_key_id: Some(vec![1; 256]),
            b_pub_key_id: true,
            buf_size: None,
            timeout: None,
        }))
    );
}

#[test]
fn get_quote_ex_required_fields() {
    let full = wire::GetQuoteExRequest {
        report: Some(vec![0; 432]),
        buf_size: Some(4096),
        ..Default::default()
    };
    let without_report = wire::GetQuoteExRequest {
        report: None,
        ..full.clone()
    };
    let without_size = wire::GetQuoteExRequest {
        buf_size: None,
        ..full.clone()
    };
    let req = |m| {
        wrap(wire::Request {
            get_quote_ex_req: Some(m),
            ..Default::default()
        })
    };
    assert_eq!(
        decode_request(&req(without_report)),
        Err(missing("GetQuoteExRequest", "report"))
    );
    assert_eq!(
        decode_request(&req(without_size)),
        Err(missing("GetQuoteExRequest", "buf_size"))
    );
    // An empty report is present (length 0): decodable; the server rejects its size.
    let empty_report = wire::GetQuoteExRequest {
        report: Some(Vec::new()),
        ..full
    };
    assert!(matches!(
        decode_request(&req(empty_report)),
        Ok(AesmRequest::GetQuoteEx(GetQuoteExRequest { report, buf_size: 4096, .. })) if report.is_empty()
    ));
}

#[test]
fn get_supported_att_key_ids_requires_buf_size() {
    let bytes = wrap(wire::Request {
        get_supported_att_key_ids_req: Some(wire::GetSupportedAttKeyIdsRequest {
            buf_size: None,
            timeout: Some(1),
        }),
        ..Default::default()
    });
    assert_eq!(
        decode_request(&bytes),
        Err(missing("GetSupportedAttKeyIDsRequest", "buf_size"))
    );
}

#[test]
fn empty_and_unknown_wrappers_are_rejected() {
    assert_eq!(decode_request(&[]), Err(DecodeError::NoKnownRequest));
    // Field 20 exists only on the response side; field 99 not at all. Both are skipped as unknown.
    let field_20 = [0xA2, 0x01, 0x00];
    assert_eq!(decode_request(&field_20), Err(DecodeError::NoKnownRequest));
    let field_99 = [0x9A, 0x06, 0x02, 0x08, 0x01];
    assert_eq!(decode_request(&field_99), Err(DecodeError::NoKnownRequest));
}

#[test]
fn malformed_protobuf_is_rejected() {
    // A length-delimited field 15 claiming 100 bytes with 1 present.
    assert!(matches!(
        decode_request(&[0x7A, 100, 0]),
        Err(DecodeError::Protobuf(_))
    ));
    // A wire type that does not exist (7).
    assert!(matches!(
        decode_request(&[0x7F]),
        Err(DecodeError::Protobuf(_))
    ));
    // Field 15 with the varint wire type instead of a message.
    assert!(matches!(
        decode_request(&[0x78, 1]),
        Err(DecodeError::Protobuf(_))
    ));
}

#[test]
fn legacy_requests_are_recognised() {
    for kind in LegacyKind::ALL {
        let bytes = encode_request(&AesmRequest::Legacy(kind));
        assert_eq!(
            decode_request(&bytes),
            Ok(AesmRequest::Legacy(kind)),
            "{kind:?}"
        );
        assert_eq!(
            bytes.first().copied(),
            Some(((kind.field_number() << 3) | 2) as u8)
        );
    }
    // A legacy request missing a required field is undecodable, as in a proto2 parser.
    let bytes = wrap(wire::Request {
        get_lic_token_req: Some(wire::GetLaunchTokenRequest {
            mr_enclave: Some(vec![0; 32]),
            ..Default::default()
        }),
        ..Default::default()
    });
    assert_eq!(
        decode_request(&bytes),
        Err(missing("GetLaunchTokenRequest", "mr_signer"))
    );
}

#[test]
fn several_sub_messages_follow_aesmd_dispatch_order() {
    let get_quote_ex = Some(wire::GetQuoteExRequest {
        report: Some(vec![0; 432]),
        buf_size: Some(1),
        ..Default::default()
    });
    let init_quote_ex = Some(wire::InitQuoteExRequest {
        b_pub_key_id: Some(false),
        ..Default::default()
    });
    // initQuoteExReq is checked before getQuoteExReq.
    let bytes = wrap(wire::Request {
        init_quote_ex_req: init_quote_ex.clone(),
        get_quote_ex_req: get_quote_ex.clone(),
        ..Default::default()
    });
    assert_eq!(
        decode_request(&bytes).unwrap().kind(),
        RequestKind::InitQuoteEx
    );
    // Legacy requests come first in the chain, and getLicTokenReq before initQuoteReq.
    let bytes = wrap(wire::Request {
        init_quote_req: Some(wire::InitQuoteRequest::default()),
        check_update_status_req: Some(wire::Opaque {}),
        init_quote_ex_req: init_quote_ex.clone(),
        ..Default::default()
    });
    assert_eq!(
        decode_request(&bytes).unwrap().kind(),
        RequestKind::Legacy(LegacyKind::InitQuote)
    );
    let bytes = wrap(wire::Request {
        init_quote_req: Some(wire::InitQuoteRequest::default()),
        get_lic_token_req: Some(wire::GetLaunchTokenRequest {
            mr_enclave: Some(vec![]),
            mr_signer: Some(vec![]),
            se_attributes: Some(vec![]),
            timeout: None,
        }),
        ..Default::default()
    });
    assert_eq!(
        decode_request(&bytes).unwrap().kind(),
        RequestKind::Legacy(LegacyKind::GetLaunchToken)
    );
    // selectAttKeyIDReq before the supported-key-id requests.
    let bytes = wrap(wire::Request {
        get_supported_att_key_id_num_req: Some(wire::GetSupportedAttKeyIdNumRequest::default()),
        select_att_key_id_req: Some(wire::SelectAttKeyIdRequest::default()),
        ..Default::default()
    });
    assert_eq!(
        decode_request(&bytes).unwrap().kind(),
        RequestKind::SelectAttKeyId
    );
    // A later sub-message missing a required field spoils the whole request, even if an earlier
    // one would have been chosen.
    let bytes = wrap(wire::Request {
        init_quote_ex_req: init_quote_ex,
        get_quote_ex_req: Some(wire::GetQuoteExRequest::default()),
        ..Default::default()
    });
    assert_eq!(
        decode_request(&bytes),
        Err(missing("GetQuoteExRequest", "report"))
    );
}

#[test]
fn select_att_key_id_timeout_is_field_2() {
    let req = AesmRequest::SelectAttKeyId(SelectAttKeyIdRequest {
        att_key_id_list: None,
        timeout: Some(5),
    });
    // 19 LEN, 2 bytes: field 2 varint 5.
    assert_eq!(encode_request(&req), [0x9A, 0x01, 0x02, 0x10, 0x05]);
}

#[test]
fn response_round_trips() {
    let responses = [
        AesmResponse::InitQuoteEx(InitQuoteExResponse {
            error_code: 0,
            target_info: Some(vec![3; 512]),
            pub_key_id_size: Some(32),
            pub_key_id: Some(vec![4; 32]),
        }),
        AesmResponse::GetQuoteSizeEx(GetQuoteSizeExResponse {
            error_code: 42,
            quote_size: Some(0),
        }),
        AesmResponse::GetQuoteEx(GetQuoteExResponse {
            error_code: 0,
            quote: Some(vec![5; 5000]),
            qe_report_info: Some(vec![6; 960]),
        }),
        AesmResponse::SelectAttKeyId(SelectAttKeyIdResponse {
            error_code: 0,
            selected_att_key_id: Some(vec![7; 256]),
        }),
        AesmResponse::GetSupportedAttKeyIdNum(GetSupportedAttKeyIdNumResponse {
            error_code: 0,
            att_key_id_num: Some(1),
        }),
        AesmResponse::GetSupportedAttKeyIds(GetSupportedAttKeyIdsResponse {
            error_code: 3,
            att_key_ids: None,
        }),
        AesmResponse::Legacy {
            kind: LegacyKind::GetQuote,
            error_code: 30,
        },
    ];
    for res in responses {
        let bytes = encode_response(&res);
        assert_eq!(decode_response(&bytes, res.kind()).unwrap(), res);
    }
}

#[test]
fn response_with_wrong_field_or_no_error_code_is_rejected() {
    let bytes = encode_response(&AesmResponse::error(
        RequestKind::GetQuoteSizeEx,
        AesmCode::Success,
    ));
    assert_eq!(
        decode_response(&bytes, RequestKind::GetQuoteEx),
        Err(DecodeError::MissingResponseField {
            expected: "getQuoteExRes"
        })
    );
    // getQuoteExRes present but without errorCode (its proto2 default would mislead).
    let bytes = wire::Response {
        get_quote_ex_res: Some(wire::GetQuoteExResponse {
            quote: Some(vec![1]),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    assert_eq!(
        decode_response(&bytes, RequestKind::GetQuoteEx),
        Err(missing("getQuoteExRes", "errorCode"))
    );
    assert_eq!(
        decode_response(&[], RequestKind::InitQuoteEx),
        Err(DecodeError::MissingResponseField {
            expected: "initQuoteExRes"
        })
    );
}

#[test]
fn frame_entry_point_reports_both_layers() {
    assert!(matches!(
        decode_frame_and_request(&[1, 0]),
        Err(ProtocolError::Frame(FrameError::TruncatedPrefix { got: 2 }))
    ));
    assert!(matches!(
        decode_frame_and_request(&[0x01, 0x00, 0x01, 0x00]),
        Err(ProtocolError::Frame(FrameError::FrameTooLarge {
            len: 65537,
            ..
        }))
    ));
    let mut trailing = encode_frame(&[]).unwrap();
    trailing.push(0);
    assert!(matches!(
        decode_frame_and_request(&trailing),
        Err(ProtocolError::Frame(FrameError::TrailingBytes { extra: 1 }))
    ));
    assert!(matches!(
        decode_frame_and_request(&encode_frame(&[]).unwrap()),
        Err(ProtocolError::Decode(DecodeError::NoKnownRequest))
    ));
}

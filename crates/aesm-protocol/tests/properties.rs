//! Property tests: random bytes never panic the decoders; typed messages round-trip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aesm_protocol::{
    AesmRequest, AesmResponse, GetQuoteExRequest, GetQuoteExResponse, GetQuoteSizeExRequest,
    GetQuoteSizeExResponse, GetSupportedAttKeyIdNumRequest, GetSupportedAttKeyIdsRequest,
    InitQuoteExRequest, InitQuoteExResponse, LegacyKind, RequestKind, SelectAttKeyIdRequest,
    decode_frame_and_request, decode_request, decode_response, encode_request, encode_response,
    frame::{encode_frame, read_frame},
    parse_att_key_id_list,
};
use proptest::prelude::*;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn opt_bytes(max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(bytes(max))
}

fn legacy() -> impl Strategy<Value = LegacyKind> {
    prop::sample::select(LegacyKind::ALL.to_vec())
}

fn request() -> impl Strategy<Value = AesmRequest> {
    prop_oneof![
        (
            opt_bytes(300),
            any::<bool>(),
            any::<Option<u64>>(),
            any::<Option<u32>>()
        )
            .prop_map(|(att_key_id, b_pub_key_id, buf_size, timeout)| {
                AesmRequest::InitQuoteEx(InitQuoteExRequest {
                    att_key_id,
                    b_pub_key_id,
                    buf_size,
                    timeout,
                })
            }),
        (opt_bytes(300), any::<Option<u32>>()).prop_map(|(att_key_id, timeout)| {
            AesmRequest::GetQuoteSizeEx(GetQuoteSizeExRequest {
                att_key_id,
                timeout,
            })
        }),
        (
            bytes(500),
            opt_bytes(300),
            opt_bytes(1000),
            any::<u32>(),
            any::<Option<u32>>()
        )
            .prop_map(|(report, att_key_id, qe_report_info, buf_size, timeout)| {
                AesmRequest::GetQuoteEx(GetQuoteExRequest {
                    report,
                    att_key_id,
                    qe_report_info,
                    buf_size,
                    timeout,
                })
            }),
        (opt_bytes(600), any::<Option<u32>>()).prop_map(|(att_key_id_list, timeout)| {
            AesmRequest::SelectAttKeyId(SelectAttKeyIdRequest {
                att_key_id_list,
                timeout,
            })
        }),
        any::<Option<u32>>().prop_map(|timeout| {
            AesmRequest::GetSupportedAttKeyIdNum(GetSupportedAttKeyIdNumRequest { timeout })
        }),
        (any::<u32>(), any::<Option<u32>>()).prop_map(|(buf_size, timeout)| {
            AesmRequest::GetSupportedAttKeyIds(GetSupportedAttKeyIdsRequest { buf_size, timeout })
        }),
        legacy().prop_map(AesmRequest::Legacy),
    ]
}

fn response() -> impl Strategy<Value = AesmResponse> {
    prop_oneof![
        (
            any::<u32>(),
            opt_bytes(600),
            any::<Option<u64>>(),
            opt_bytes(40)
        )
            .prop_map(|(error_code, target_info, pub_key_id_size, pub_key_id)| {
                AesmResponse::InitQuoteEx(InitQuoteExResponse {
                    error_code,
                    target_info,
                    pub_key_id_size,
                    pub_key_id,
                })
            }),
        (any::<u32>(), any::<Option<u32>>()).prop_map(|(error_code, quote_size)| {
            AesmResponse::GetQuoteSizeEx(GetQuoteSizeExResponse {
                error_code,
                quote_size,
            })
        }),
        (any::<u32>(), opt_bytes(2000), opt_bytes(1000)).prop_map(
            |(error_code, quote, qe_report_info)| {
                AesmResponse::GetQuoteEx(GetQuoteExResponse {
                    error_code,
                    quote,
                    qe_report_info,
                })
            }
        ),
        (legacy(), any::<u32>())
            .prop_map(|(kind, error_code)| AesmResponse::Legacy { kind, error_code }),
    ]
}

fn kind() -> impl Strategy<Value = RequestKind> {
    prop_oneof![
        Just(RequestKind::InitQuoteEx),
        Just(RequestKind::GetQuoteSizeEx),
        Just(RequestKind::GetQuoteEx),
        Just(RequestKind::SelectAttKeyId),
        Just(RequestKind::GetSupportedAttKeyIdNum),
        Just(RequestKind::GetSupportedAttKeyIds),
        legacy().prop_map(RequestKind::Legacy),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(data in bytes(2048), k in kind()) {
        let _ = decode_request(&data);
        let _ = decode_frame_and_request(&data);
        let _ = decode_response(&data, k);
        let _ = read_frame(&mut data.as_slice(), 1024);
        let _ = parse_att_key_id_list(Some(&data));
    }

    #[test]
    fn framed_random_bodies_never_panic(data in bytes(2048)) {
        let framed = encode_frame(&data).unwrap();
        let _ = decode_frame_and_request(&framed);
    }

    #[test]
    fn requests_round_trip(req in request()) {
        let bytes = encode_request(&req);
        prop_assert_eq!(decode_request(&bytes).unwrap(), req.clone());
        prop_assert_eq!(decode_frame_and_request(&encode_frame(&bytes).unwrap()).unwrap(), req);
    }

    #[test]
    fn responses_round_trip(res in response()) {
        let bytes = encode_response(&res);
        prop_assert_eq!(decode_response(&bytes, res.kind()).unwrap(), res);
    }

    /// Mutating a valid request never panics the decoder.
    #[test]
    fn mutated_requests_never_panic(req in request(), pos in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = encode_request(&req);
        if !bytes.is_empty() {
            let i = pos % bytes.len();
            bytes[i] = byte;
            let _ = decode_request(&bytes);
            bytes.truncate(i);
            let _ = decode_request(&bytes);
        }
    }
}

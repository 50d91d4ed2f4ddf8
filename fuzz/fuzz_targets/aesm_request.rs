//! Any bytes as they would arrive on the AESM socket: framing and request decoding return a request
//! or an error, and a decoded request encodes back to a request that decodes to the same value.
#![no_main]

use aesm_protocol::{decode_frame_and_request, decode_request, encode_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = decode_frame_and_request(data) {
        let again = decode_request(&encode_request(&request)).expect("re-encoded request decodes");
        assert_eq!(again, request);
    }
});

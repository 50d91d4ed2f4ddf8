//! Any bytes: the quote parser returns a value or an error, and whatever parses encodes back to the
//! bytes it was parsed from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sgx_types::pck::{PckExtension, parse_pem_chain};
use sgx_types::quote::Quote;

fuzz_target!(|data: &[u8]| {
    if let Ok(quote) = Quote::parse(data) {
        assert_eq!(quote.to_bytes(), &data[..quote.quote_len()]);
        if let Some(pem) = quote.signature.certification_data.pck_chain_pem() {
            if let Ok(chain) = parse_pem_chain(pem) {
                if let Some(leaf) = chain.first() {
                    let _ = PckExtension::from_certificate(leaf);
                }
            }
        }
    }
    let _ = PckExtension::from_der(data);
});

//! Any text as collateral: the dcap-qvl collateral JSON, a TCB info (v2 or v3) and a QE identity
//! either decode or give an error, and TCB level matching on whatever decoded never panics.
#![no_main]

use dcap_verify::{Collateral, QeIdentity, TcbInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Collateral::from_json(text);
    if let Ok(info) = TcbInfo::from_json(text) {
        let _ = info.match_level(&[0; 16], 0);
        let _ = info.match_level(&[0xff; 16], u16::MAX);
    }
    if let Ok(identity) = QeIdentity::from_json(text) {
        let _ = identity.match_level(0);
        let _ = identity.match_level(u16::MAX);
    }
});

//! The operator's view of a failure: one log line at error level naming the cause and the fix, not
//! repeated while the same failure persists, and the AESM code for the client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use aesm_protocol::AesmCode;
use aesm_service::QuoteBackend;
use common::{Fake, GET_QUOTE_SIZE, INIT_QUOTE};
use dcap_ql::quote3;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn error_lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("ERROR"))
            .map(str::to_owned)
            .collect()
    }
}

fn capture<T>(f: impl FnOnce() -> T) -> (T, Captured) {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let value = tracing::subscriber::with_default(subscriber, f);
    (value, out)
}

#[test]
fn each_failure_class_is_one_error_line_with_cause_and_fix() {
    let fake = Fake::new();
    let backend = fake.backend();
    let cases = [
        (
            quote3::NO_DEVICE,
            AesmCode::NoDeviceError,
            "no SGX device",
            "sgx.intel.com/enclave",
        ),
        (
            quote3::ERROR_INVALID_PRIVILEGE,
            AesmCode::SgxProvisionFailed,
            "provisioning certification enclave",
            "/dev/sgx_provision",
        ),
        (
            quote3::NO_PLATFORM_CERT_DATA,
            AesmCode::NoPlatformCertData,
            "could not fetch PCK certificates",
            "sgx_default_qcnl.conf",
        ),
        (
            quote3::NETWORK_FAILURE,
            AesmCode::NetworkError,
            "could not reach its PCK certificate service",
            "sgx_default_qcnl.conf",
        ),
    ];
    for (code, aesm, cause, fix) in cases {
        fake.fail(INIT_QUOTE, code, 0);
        let (results, log) = capture(|| {
            (0..3)
                .map(|_| backend.init_attestation_key().unwrap_err())
                .collect::<Vec<_>>()
        });
        for e in &results {
            assert_eq!(e.code, aesm, "{code:#x}");
            assert!(e.message.contains(cause) && e.message.contains(fix), "{e}");
        }
        let lines = log.error_lines();
        assert_eq!(lines.len(), 1, "{code:#x}: {lines:#?}");
        let line = &lines[0];
        assert!(line.contains(cause), "{line}");
        assert!(line.contains("; fix: "), "{line}");
        assert!(line.contains(fix), "{line}");
        assert!(line.contains(&format!("{code:#06x}")), "{line}");
        fake.clear(INIT_QUOTE);
    }

    // A success ends the failure: the same failure afterwards is logged again.
    backend.init_attestation_key().unwrap();
    fake.fail(GET_QUOTE_SIZE, quote3::NO_PLATFORM_CERT_DATA, 1);
    let (_, log) = capture(|| backend.quote_size().unwrap_err());
    assert_eq!(log.error_lines().len(), 1);
    backend.quote_size().unwrap();
    fake.fail(GET_QUOTE_SIZE, quote3::NO_PLATFORM_CERT_DATA, 1);
    let (_, log) = capture(|| backend.quote_size().unwrap_err());
    assert_eq!(log.error_lines().len(), 1);
}

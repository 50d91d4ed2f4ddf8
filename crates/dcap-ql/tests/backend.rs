//! The dcap backend over the fake `libsgx_dcap_ql.so.1`, end to end through the quote helper's
//! socket: quotes that dcap-qvl verifies, every `quote3_error_t` reaching the client as its AESM
//! code, BUSY retried, and the QE report that this library cannot produce.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use aesm_protocol::{AesmCode, AesmRequest, AesmResponse, GetQuoteExRequest};
use common::{
    Fake, GET_QUOTE, GET_QUOTE_SIZE, GET_TARGET_INFO, Helper, INIT_QUOTE, verify_with_qvl,
};
use dcap_ql::quote3;
use dcap_ql::{DcapBackend, DcapOptions};
use quote_client::ClientError;
use sgx_sim::EnclaveIdentity;
use sgx_types::quote::Quote;
use sgx_types::structs::Wire;
use sgx_types::{AttKeyId, QeReportInfo, Report, TargetInfo};

fn key_id() -> Vec<u8> {
    AttKeyId::intel_qe3_ecdsa().to_vec()
}

fn aesm_code_of(result: Result<impl std::fmt::Debug, ClientError>) -> u32 {
    match result {
        Err(ClientError::Aesm(code)) => code,
        other => panic!("expected an AESM error code, got {other:?}"),
    }
}

fn enclave() -> EnclaveIdentity {
    EnclaveIdentity {
        mr_enclave: [0x5a; 32],
        ..EnclaveIdentity::default()
    }
}

/// InitQuoteEx in full mode; the QE's target info.
fn init(client: &quote_client::AesmClient) -> TargetInfo {
    let r = client.init_quote_ex(&key_id(), Some(32)).unwrap();
    TargetInfo::parse(r.target_info.as_deref().unwrap()).unwrap()
}

#[test]
fn quotes_flow_through_the_socket_and_verify_with_dcap_qvl() {
    let fake = Fake::new();
    let helper = Helper::start(fake.dir.path(), fake.backend());
    let client = helper.client();

    // Before InitQuoteEx the library has no attestation key: 0xE00F → 42.
    assert_eq!(
        aesm_code_of(client.get_quote_size_ex(Some(&key_id()))),
        AesmCode::AttKeyNotInitialized.code()
    );

    // The flow of Intel's DCAP library out of process: size query, then full mode.
    let sizing = client.init_quote_ex(&key_id(), None).unwrap();
    assert_eq!(sizing.pub_key_id_size, Some(32));
    let full = client.init_quote_ex(&key_id(), Some(32)).unwrap();
    let qe_target = TargetInfo::parse(full.target_info.as_deref().unwrap()).unwrap();
    assert_eq!(qe_target, fake.platform.qe_target_info());
    // sgx_ql_init_quote returns the ECDSA_ID: SHA-256(attestation key ‖ QE auth data).
    assert_eq!(
        full.pub_key_id.unwrap(),
        fake.platform.init_attestation_key().unwrap().to_vec()
    );

    let size = client.get_quote_size_ex(Some(&key_id())).unwrap();
    assert_eq!(size, fake.platform.quote_size().unwrap());

    let report = fake
        .platform
        .cpu()
        .create_report(&enclave(), &qe_target, &[0x42; 64]);
    // Gramine asks for 8 KiB without a size query; the reply is the whole buffer, zero-padded.
    let reply = client
        .get_quote_ex(&report.to_vec(), &key_id(), None, 8192)
        .unwrap();
    let quote_bytes = reply.quote.unwrap();
    assert_eq!(quote_bytes.len(), 8192);
    let quote = Quote::parse(&quote_bytes).unwrap();
    assert_eq!(quote.quote_len(), size as usize);
    assert!(quote_bytes[size as usize..].iter().all(|b| *b == 0));
    assert_eq!(quote.report_body, report.body);
    assert_eq!(
        verify_with_qvl(&fake.platform, &quote_bytes[..size as usize]).unwrap(),
        "UpToDate"
    );

    // A report not MACed for the QE: 0xE015 → 47.
    let mut forged = report;
    forged.mac = [0; 16];
    assert_eq!(
        aesm_code_of(client.get_quote_ex(&forged.to_vec(), &key_id(), None, size)),
        AesmCode::InvalidReport.code()
    );
    // Too small a buffer never reaches the library's copy: 3.
    assert_eq!(
        aesm_code_of(client.get_quote_ex(&report.to_vec(), &key_id(), None, size - 1)),
        AesmCode::ParameterError.code()
    );
}

#[test]
fn a_qe_report_request_is_answered_49_with_qe_report_info_echoed() {
    let fake = Fake::new();
    let helper = Helper::start(fake.dir.path(), fake.backend());
    let client = helper.client();
    let qe_target = init(&client);
    let report = fake
        .platform
        .cpu()
        .create_report(&enclave(), &qe_target, &[1; 64]);
    let info = QeReportInfo {
        nonce: [7; 16],
        app_enclave_target_info: enclave().target_info(),
        qe_report: Report::default(),
    }
    .to_vec();
    let response = client
        .transact(&AesmRequest::GetQuoteEx(GetQuoteExRequest {
            report: report.to_vec(),
            att_key_id: Some(key_id()),
            qe_report_info: Some(info.clone()),
            buf_size: 8192,
            timeout: None,
        }))
        .unwrap();
    let AesmResponse::GetQuoteEx(r) = response else {
        panic!("not a GetQuoteEx response: {response:?}");
    };
    assert_eq!(r.error_code, AesmCode::UnableToGenerateQeReport.code());
    assert_eq!(r.qe_report_info, Some(info));
    assert_eq!(r.quote, None);
}

/// Every `quote3_error_t` the library can return, from each quoting function, reaches the client
/// as the AESM code of `quote3::aesm_code`.
#[test]
fn each_quote3_error_reaches_the_client_as_its_aesm_code() {
    let fake = Fake::new();
    let helper = Helper::start(fake.dir.path(), fake.backend());
    let client = helper.client();
    let qe_target = init(&client);
    let report = fake
        .platform
        .cpu()
        .create_report(&enclave(), &qe_target, &[2; 64])
        .to_vec();
    let codes: Vec<u32> = (0xE001..=0xE04F)
        .filter(|c| *c != quote3::ERROR_BUSY)
        .collect();
    let mut named = 0;
    for &code in &codes {
        named += usize::from(quote3::name(code).is_some());
        let expected = quote3::aesm_code(code).code();
        fake.fail(INIT_QUOTE, code, 1);
        assert_eq!(
            aesm_code_of(client.init_quote_ex(&key_id(), Some(32))),
            expected,
            "sgx_ql_init_quote {code:#x}"
        );
        fake.fail(GET_QUOTE_SIZE, code, 1);
        assert_eq!(
            aesm_code_of(client.get_quote_size_ex(Some(&key_id()))),
            expected,
            "sgx_qe_get_quote_size {code:#x}"
        );
        fake.fail(GET_QUOTE, code, 1);
        assert_eq!(
            aesm_code_of(client.get_quote_ex(&report, &key_id(), None, 8192)),
            expected,
            "sgx_qe_get_quote {code:#x}"
        );
    }
    assert!(named >= 38, "{named} named codes");
    // The failure classes of the operator's list, spelled out.
    for (code, aesm) in [
        (quote3::NO_DEVICE, AesmCode::NoDeviceError),
        (
            quote3::ERROR_INVALID_PRIVILEGE,
            AesmCode::SgxProvisionFailed,
        ),
        (
            quote3::KEY_CERTIFCATION_ERROR,
            AesmCode::KeyCertificationError,
        ),
        (quote3::NO_PLATFORM_CERT_DATA, AesmCode::NoPlatformCertData),
        (quote3::NETWORK_ERROR, AesmCode::NetworkError),
        (quote3::NETWORK_FAILURE, AesmCode::NetworkError),
    ] {
        fake.fail(INIT_QUOTE, code, 1);
        assert_eq!(
            aesm_code_of(client.init_quote_ex(&key_id(), Some(32))),
            aesm.code(),
            "{code:#x}"
        );
    }
    // And the service still works afterwards.
    let quote = client
        .get_quote_ex(&report, &key_id(), None, 8192)
        .unwrap()
        .quote
        .unwrap();
    assert!(Quote::parse(&quote).is_ok());
}

#[test]
fn busy_is_retried_and_reported_as_busy_when_it_persists() {
    let fake = Fake::new();
    let helper = Helper::start(fake.dir.path(), fake.backend());
    let client = helper.client();
    let qe_target = init(&client);
    let report = fake
        .platform
        .cpu()
        .create_report(&enclave(), &qe_target, &[3; 64])
        .to_vec();

    // Busy twice, then it works: one GetQuoteEx, three calls of sgx_qe_get_quote.
    let before = fake.calls(GET_QUOTE);
    fake.fail(GET_QUOTE, quote3::ERROR_BUSY, 2);
    let quote = client
        .get_quote_ex(&report, &key_id(), None, 8192)
        .unwrap()
        .quote
        .unwrap();
    assert!(Quote::parse(&quote).is_ok());
    assert_eq!(fake.calls(GET_QUOTE) - before, 3);

    // Busy for good: the four attempts of the policy, then AESM_BUSY (18).
    let before = fake.calls(INIT_QUOTE);
    fake.fail(INIT_QUOTE, quote3::ERROR_BUSY, 0);
    assert_eq!(
        aesm_code_of(client.init_quote_ex(&key_id(), Some(32))),
        AesmCode::Busy.code()
    );
    assert_eq!(fake.calls(INIT_QUOTE) - before, 4);
    fake.clear(INIT_QUOTE);
    init(&client);
}

#[test]
fn without_an_sgx_device_the_client_gets_no_device() {
    let fake = Fake::new();
    {
        use aesm_service::QuoteBackend;
        let backend = fake.backend();
        assert_eq!(backend.name(), "dcap");
        assert!(!backend.is_simulated());
        // Enclave calls and PCK fetches block: the server moves them off its async workers.
        assert!(!backend.runs_inline());
    }
    fake.set_sim_dir(None);
    let helper = Helper::start(fake.dir.path(), fake.backend());
    let client = helper.client();
    assert_eq!(
        aesm_code_of(client.init_quote_ex(&key_id(), Some(32))),
        AesmCode::NoDeviceError.code()
    );
    // Requests that need no library call still work.
    assert_eq!(client.get_supported_att_key_id_num().unwrap(), 1);
}

#[test]
fn calls_from_many_clients_are_serialised_and_all_succeed() {
    let fake = Fake::new();
    let helper = Helper::start(fake.dir.path(), fake.backend());
    let qe_target = init(&helper.client());
    let threads: Vec<_> = (0..8u8)
        .map(|i| {
            let client = helper.client();
            let report = fake
                .platform
                .cpu()
                .create_report(&enclave(), &qe_target, &[i; 64])
                .to_vec();
            std::thread::spawn(move || {
                (0..4)
                    .map(|_| {
                        let q = client
                            .get_quote_ex(&report, &key_id(), None, 8192)
                            .unwrap()
                            .quote
                            .unwrap();
                        Quote::parse(&q).unwrap().report_body.report_data[0]
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        assert_eq!(t.join().unwrap(), vec![i as u8; 4]);
    }
}

/// Where the library lacks `sgx_ql_init_quote` (or it is turned off), InitQuoteEx goes through
/// `sgx_qe_get_target_info`; the ECDSA_ID is learned from the first quote.
#[test]
fn without_the_core_init_the_ecdsa_id_is_learned_from_the_first_quote() {
    let fake = Fake::new();
    let backend = DcapBackend::start(
        &fake.library,
        DcapOptions {
            core_init: false,
            ..common::options()
        },
    )
    .unwrap();
    let helper = Helper::start(fake.dir.path(), backend);
    let client = helper.client();

    fake.fail(GET_TARGET_INFO, quote3::NO_PLATFORM_CERT_DATA, 1);
    assert_eq!(
        aesm_code_of(client.init_quote_ex(&key_id(), Some(32))),
        AesmCode::NoPlatformCertData.code()
    );
    let before = (fake.calls(GET_TARGET_INFO), fake.calls(INIT_QUOTE));
    let first = client.init_quote_ex(&key_id(), Some(32)).unwrap();
    assert_eq!(fake.calls(GET_TARGET_INFO) - before.0, 1);
    assert_eq!(fake.calls(INIT_QUOTE), before.1);
    assert_eq!(first.pub_key_id.unwrap(), vec![0u8; 32]);
    let qe_target = TargetInfo::parse(first.target_info.as_deref().unwrap()).unwrap();
    let report = fake
        .platform
        .cpu()
        .create_report(&enclave(), &qe_target, &[4; 64]);
    let quote = client
        .get_quote_ex(&report.to_vec(), &key_id(), None, 8192)
        .unwrap()
        .quote
        .unwrap();
    assert_eq!(
        verify_with_qvl(
            &fake.platform,
            &quote[..Quote::parse(&quote).unwrap().quote_len()]
        )
        .unwrap(),
        "UpToDate"
    );
    let again = client.init_quote_ex(&key_id(), Some(32)).unwrap();
    assert_eq!(
        again.pub_key_id.unwrap(),
        fake.platform.init_attestation_key().unwrap().to_vec()
    );
}

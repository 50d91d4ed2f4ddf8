//! The built `libsgx_quote_ex.so` from C: a program compiled here with the system C compiler makes
//! the call sequences of Intel's DCAP quote library and of Open Enclave, both linked against the
//! library (by its soname) and loading it with `dlopen("libsgx_quote_ex.so.1")` + `dlsym`, against
//! in-test AESM services that answer each error code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use aesm_protocol::{
    AesmRequest, AesmResponse, GetQuoteExResponse, GetQuoteSizeExResponse,
    GetSupportedAttKeyIdNumResponse, GetSupportedAttKeyIdsResponse, InitQuoteExRequest,
    InitQuoteExResponse, QuoteExApi, sgx_status_for,
};
use common::cprog::{BOTH, Loading, command, field, finish, hex, lines, run, status};
use common::{Reply, Server, error_reply, expected_status, intel_key_id, socket_in, temp_dir};

/// A scripted AESM service with one Intel ECDSA key id, a fixed target info, public key id and
/// quote: enough to run both call sequences to their end and check every byte that crosses.
struct FakeQuoting {
    target_info: Vec<u8>,
    pub_key_id: Vec<u8>,
    quote: Vec<u8>,
}

impl FakeQuoting {
    fn new() -> Self {
        Self {
            target_info: (0..512).map(|i| (i * 7 % 251) as u8).collect(),
            pub_key_id: (0..32).map(|i| 0xc0 ^ i as u8).collect(),
            quote: (0..1300).map(|i| (i * 13 % 256) as u8).collect(),
        }
    }

    fn answer(&self, request: &AesmRequest) -> Reply {
        let response = match request {
            AesmRequest::GetSupportedAttKeyIdNum(_) => {
                AesmResponse::GetSupportedAttKeyIdNum(GetSupportedAttKeyIdNumResponse {
                    error_code: 0,
                    att_key_id_num: Some(2),
                })
            }
            AesmRequest::GetSupportedAttKeyIds(r) => {
                // An EPID key id first (algorithm 0), which Open Enclave must skip.
                let mut epid = vec![0u8; 256];
                epid[0] = 9;
                let ids = [epid, intel_key_id()].concat();
                assert_eq!(r.buf_size as usize, ids.len());
                AesmResponse::GetSupportedAttKeyIds(GetSupportedAttKeyIdsResponse {
                    error_code: 0,
                    att_key_ids: Some(ids),
                })
            }
            AesmRequest::InitQuoteEx(r) if !r.b_pub_key_id => {
                AesmResponse::InitQuoteEx(InitQuoteExResponse {
                    error_code: 0,
                    target_info: Some(vec![0; 512]),
                    pub_key_id_size: Some(32),
                    pub_key_id: None,
                })
            }
            AesmRequest::InitQuoteEx(r) => {
                if r.buf_size != Some(32) {
                    return Reply::Respond(error_reply(request.kind(), 3));
                }
                AesmResponse::InitQuoteEx(InitQuoteExResponse {
                    error_code: 0,
                    target_info: Some(self.target_info.clone()),
                    pub_key_id_size: Some(32),
                    pub_key_id: Some(self.pub_key_id.clone()),
                })
            }
            AesmRequest::GetQuoteSizeEx(_) => {
                AesmResponse::GetQuoteSizeEx(GetQuoteSizeExResponse {
                    error_code: 0,
                    quote_size: Some(self.quote.len() as u32),
                })
            }
            AesmRequest::GetQuoteEx(r) => {
                // aesmd returns the whole buffer, zero-padded.
                let mut quote = self.quote.clone();
                quote.resize(r.buf_size as usize, 0);
                AesmResponse::GetQuoteEx(GetQuoteExResponse {
                    error_code: 0,
                    quote: Some(quote),
                    qe_report_info: r.qe_report_info.clone(),
                })
            }
            other => error_reply(other.kind(), 1),
        };
        Reply::Respond(response)
    }
}

fn report_file(dir: &Path) -> (PathBuf, Vec<u8>) {
    let report: Vec<u8> = (0..432).map(|i| (i % 199) as u8).collect();
    let path = dir.join("report.bin");
    std::fs::write(&path, &report).unwrap();
    (path, report)
}

fn init_requests(requests: &[AesmRequest]) -> Vec<InitQuoteExRequest> {
    requests
        .iter()
        .filter_map(|r| match r {
            AesmRequest::InitQuoteEx(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn intel_dcap_sequence_gets_a_quote() {
    for loading in BOTH {
        let fake = FakeQuoting::new();
        let (target_info, pub_key_id, quote) = (
            fake.target_info.clone(),
            fake.pub_key_id.clone(),
            fake.quote.clone(),
        );
        let server = Server::start(move |r| fake.answer(r));
        let (report_path, report) = report_file(server.dir());
        let quote_out = server.dir().join("quote.bin");
        let out = run(
            loading,
            server.path(),
            None,
            &[
                "dcap",
                report_path.to_str().unwrap(),
                quote_out.to_str().unwrap(),
            ],
        );
        let l = lines(&out);
        let mode = match loading {
            Loading::Linked => "linked",
            Loading::Dlopen => "dlopen",
        };
        assert_eq!(field(&l, "load", "mode"), mode);
        assert_eq!(status(&l, "init1"), 0);
        assert_eq!(field(&l, "init1", "size"), "32");
        assert_eq!(status(&l, "init2"), 0);
        assert_eq!(field(&l, "init2", "pub_key_id"), hex(&pub_key_id));
        assert_eq!(field(&l, "init2", "target_info"), hex(&target_info));
        assert_eq!(status(&l, "size"), 0);
        assert_eq!(field(&l, "size", "quote_size"), quote.len().to_string());
        assert_eq!(status(&l, "quote"), 0);
        assert_eq!(std::fs::read(&quote_out).unwrap(), quote);

        // What crossed the socket: exactly Intel's requests, in Intel's order.
        let requests = server.requests();
        let kinds: Vec<_> = requests.iter().map(|r| r.kind().name()).collect();
        assert_eq!(
            kinds,
            ["InitQuoteEx", "InitQuoteEx", "GetQuoteSizeEx", "GetQuoteEx"],
            "{loading:?}"
        );
        let inits = init_requests(&requests);
        // The size query: no buffer, and the never-initialised size forwarded as Intel does.
        assert!(!inits[0].b_pub_key_id);
        assert_eq!(inits[0].buf_size, Some(0xa5a5_a5a5_a5a5_a5a5));
        assert_eq!(inits[0].att_key_id.as_deref(), Some(&intel_key_id()[..]));
        assert_eq!(inits[0].timeout, Some(15_000));
        assert!(inits[1].b_pub_key_id);
        assert_eq!(inits[1].buf_size, Some(32));
        let AesmRequest::GetQuoteSizeEx(size) = &requests[2] else {
            unreachable!()
        };
        assert_eq!(size.att_key_id.as_deref(), Some(&intel_key_id()[..]));
        let AesmRequest::GetQuoteEx(get) = &requests[3] else {
            unreachable!()
        };
        assert_eq!(get.report, report);
        assert_eq!(
            get.qe_report_info, None,
            "libsgx_dcap_ql passes no report info"
        );
        assert_eq!(get.buf_size as usize, quote.len());
    }
}

#[test]
fn open_enclave_sequence_picks_the_ecdsa_key_and_gets_a_quote() {
    for loading in BOTH {
        let fake = FakeQuoting::new();
        let (pub_key_id, quote) = (fake.pub_key_id.clone(), fake.quote.clone());
        let server = Server::start(move |r| fake.answer(r));
        let (report_path, _) = report_file(server.dir());
        let quote_out = server.dir().join("quote.bin");
        let out = run(
            loading,
            server.path(),
            None,
            &[
                "oe",
                report_path.to_str().unwrap(),
                quote_out.to_str().unwrap(),
            ],
        );
        let l = lines(&out);
        assert_eq!(status(&l, "num"), 0);
        assert_eq!(field(&l, "num", "num"), "2");
        assert_eq!(status(&l, "ids"), 0);
        assert_eq!(field(&l, "pick", "index"), "1");
        assert_eq!(status(&l, "init1"), 0);
        assert_eq!(status(&l, "init2"), 0);
        assert_eq!(field(&l, "init2", "pub_key_id"), hex(&pub_key_id));
        assert_eq!(status(&l, "quote"), 0);
        assert_eq!(std::fs::read(&quote_out).unwrap(), quote);

        let requests = server.requests();
        let kinds: Vec<_> = requests.iter().map(|r| r.kind().name()).collect();
        assert_eq!(
            kinds,
            [
                "GetSupportedAttKeyIdNum",
                "GetSupportedAttKeyIds",
                "InitQuoteEx",
                "InitQuoteEx",
                "GetQuoteSizeEx",
                "GetQuoteEx"
            ]
        );
        let inits = init_requests(&requests);
        // A zero size is not sent.
        assert!(!inits[0].b_pub_key_id);
        assert_eq!(inits[0].buf_size, None);
    }
}

/// Every function against a service answering each AESM code (all defined codes, the unused 27 and
/// an unknown one): the result is the spec's mapping, overrides included.
#[test]
fn every_aesm_code_maps_as_intels_library_maps_it() {
    let functions = [
        (
            "select",
            "sgx_select_att_key_id",
            QuoteExApi::SelectAttKeyId,
        ),
        ("init_size", "sgx_init_quote_ex", QuoteExApi::InitQuoteEx),
        ("init_full", "sgx_init_quote_ex", QuoteExApi::InitQuoteEx),
        (
            "quote_size",
            "sgx_get_quote_size_ex",
            QuoteExApi::GetQuoteSizeEx,
        ),
        ("quote", "sgx_get_quote_ex", QuoteExApi::GetQuoteEx),
        (
            "num",
            "sgx_get_supported_att_key_id_num",
            QuoteExApi::GetSupportedAttKeyIdNum,
        ),
        (
            "ids",
            "sgx_get_supported_att_key_ids",
            QuoteExApi::GetSupportedAttKeyIds,
        ),
    ];
    let codes: Vec<u32> = (0..=52).chain([9999]).collect();
    for code in codes {
        // Alternate the two builds to cover both without doubling the run time.
        let loading = BOTH[code as usize % 2];
        let server = Server::answering(code);
        let l = lines(&run(loading, server.path(), None, &["each"]));
        for (line, function, api) in functions {
            let expected = expected_status(function, code);
            assert_eq!(
                status(&l, line),
                expected,
                "{function} ({line}) with AESM code {code}: expected 0x{expected:04x}"
            );
            assert_eq!(sgx_status_for(api, code), expected, "aesm-protocol agrees");
        }
        assert_eq!(server.requests().len(), functions.len());
    }
}

/// The named cases of the spec's table, spelled out.
#[test]
fn named_error_cases() {
    let cases: [(u32, &str, u32); 8] = [
        (38, "init_full", 0x8001),  // unsupported key id
        (38, "quote", 0x8001),      // unsupported key id
        (42, "quote_size", 0x8003), // attestation key not initialised
        (42, "quote", 0x8003),      // attestation key not initialised
        (45, "quote", 0x3001),      // report MAC mismatch (error report)
        (47, "quote", 0x3001),      // report MAC mismatch (invalid report)
        (3, "init_size", 0x0002),   // bad parameters
        (30, "num", 0x4001),        // service unavailable inside aesmd
    ];
    for (code, line, expected) in cases {
        let server = Server::answering(code);
        let l = lines(&run(Loading::Dlopen, server.path(), None, &["each"]));
        assert_eq!(status(&l, line), expected, "{line} with AESM code {code}");
    }
}

#[test]
fn no_service_is_service_unavailable() {
    let dir = tempfile::Builder::new()
        .prefix("qx")
        .tempdir_in("/tmp")
        .unwrap();
    // Nothing at the path.
    let missing = dir.path().join("missing.socket");
    // A socket file nobody listens on any more (connection refused).
    let stale = dir.path().join("stale.socket");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    for socket in [&missing, &stale] {
        for loading in BOTH {
            let out = finish(
                command(loading, socket, None, &["each"])
                    .env("CONFCOM_AESM_WAIT_SECS", "0")
                    .output()
                    .unwrap(),
                &["each"],
            );
            let l = lines(&out);
            for line in [
                "select",
                "init_size",
                "init_full",
                "quote_size",
                "quote",
                "num",
                "ids",
            ] {
                assert_eq!(status(&l, line), 0x4001, "{line} {socket:?}");
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("libsgx_quote_ex: sgx_get_quote_ex: AESM service unavailable"),
                "{stderr}"
            );
        }
    }
}

#[test]
fn an_app_started_before_the_quote_helper_gets_its_quote() {
    // Linked: the socket file is stale (a helper that stopped); dlopen: there is none yet.
    for loading in BOTH {
        let dir = temp_dir();
        let socket = socket_in(dir.path());
        if loading == Loading::Linked {
            drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        }
        let (report_path, _) = report_file(dir.path());
        let quote_out = dir.path().join("quote.bin");
        let args = [
            "dcap",
            report_path.to_str().unwrap(),
            quote_out.to_str().unwrap(),
        ];
        let app = command(loading, &socket, None, &args)
            .env("CONFCOM_AESM_WAIT_SECS", "60")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let fake = FakeQuoting::new();
        let quote = fake.quote.clone();
        let server = Server::start_in(dir, move |r| fake.answer(r));
        let l = lines(&finish(app.wait_with_output().unwrap(), &args));
        assert_eq!(status(&l, "init1"), 0, "{loading:?}");
        assert_eq!(status(&l, "quote"), 0, "{loading:?}");
        assert_eq!(std::fs::read(&quote_out).unwrap(), quote);
        // Each call sent its request once.
        let kinds: Vec<_> = server.requests().iter().map(|r| r.kind().name()).collect();
        assert_eq!(
            kinds,
            ["InitQuoteEx", "InitQuoteEx", "GetQuoteSizeEx", "GetQuoteEx"]
        );
    }
}

#[test]
fn a_silent_service_is_a_timeout_after_the_configured_time() {
    let server = Server::start(|_| Reply::Hang);
    let out = run(Loading::Linked, server.path(), Some(150), &["each"]);
    let l = lines(&out);
    for line in [
        "select",
        "init_size",
        "init_full",
        "quote_size",
        "quote",
        "num",
        "ids",
    ] {
        assert_eq!(status(&l, line), 0x4002, "{line}");
    }
    // The request went out with the configured timeout in milliseconds.
    let requests = server.requests();
    assert_eq!(requests.len(), 7);
    let AesmRequest::GetSupportedAttKeyIdNum(num) = &requests[5] else {
        panic!("{requests:?}")
    };
    assert_eq!(num.timeout, Some(150));
}

#[test]
fn a_service_that_closes_or_babbles_is_unexpected() {
    for reply in [0u8, 1] {
        let server = Server::start(move |_| match reply {
            0 => Reply::Close,
            _ => Reply::Raw(vec![5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff]),
        });
        let l = lines(&run(Loading::Dlopen, server.path(), None, &["each"]));
        for line in [
            "select",
            "init_size",
            "init_full",
            "quote_size",
            "quote",
            "num",
            "ids",
        ] {
            assert_eq!(status(&l, line), 0x0001, "{line}");
        }
    }
}

#[test]
fn client_side_checks_reject_before_connecting() {
    for loading in BOTH {
        let server = Server::answering(0);
        let l = lines(&run(loading, server.path(), None, &["params"]));
        let names: Vec<_> = l.keys().filter(|k| *k != "load").cloned().collect();
        assert_eq!(names.len(), 17, "{names:?}");
        for name in names {
            assert_eq!(status(&l, &name), 0x0002, "{name}");
        }
        assert!(server.requests().is_empty(), "nothing was sent");
    }
}

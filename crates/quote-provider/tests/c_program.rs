//! The built `libdcap_quoteprov.so` from C: `tests/c/qpl_client.c`, compiled here with the system C
//! compiler, loads it with `dlopen("libdcap_quoteprov.so.1", RTLD_LAZY)` + `dlsym` as Intel's DCAP
//! libraries do, and calls every export against a PCCS served in-process over a simulated
//! platform. Every buffer is compared byte for byte with what the PCCS serves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::{Lines, Pccs, Sim, command, field, lines, run, status};
use pccs::api::{self, Reply};
use pccs::source::PckCert;

const SUCCESS: u32 = 0x0000;
const INVALID_PARAMETER: u32 = 0xE002;
const NO_PLATFORM_CERT_DATA: u32 = 0xE011;
const NETWORK_ERROR: u32 = 0xE019;
const NO_QUOTE_COLLATERAL_DATA: u32 = 0xE01B;
const NO_QVE_IDENTITY_DATA: u32 = 0xE037;

const QE_ID: &str = "00112233445566778899aabbccddeeff";

/// What the PCCS serves for the simulated platform, fetched through its request handler.
struct Served {
    pck: PckCert,
    pck_cert_body: Vec<u8>,
    pck_cert_chain: String,
    parts: Vec<(&'static str, Vec<u8>)>,
    root_ca_crl_der: Vec<u8>,
    pck_crl_der: Vec<u8>,
}

fn get(sim: &Sim, path_and_query: &str) -> Reply {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let reply = api::handle(sim.source.as_ref(), path, Some(query)).unwrap();
    assert_eq!(reply.status, 200, "{path_and_query}");
    reply
}

fn chain(reply: &Reply, name: &str) -> String {
    percent_encoding::percent_decode_str(reply.header(name).unwrap())
        .decode_utf8()
        .unwrap()
        .into_owned()
}

fn served(sim: &Sim) -> Served {
    let pck = PckCert::from_chain_pem(sim.platform.pck_cert_chain()).unwrap();
    let v4 = "/sgx/certification/v4/";
    let cert = get(
        sim,
        &format!(
            "{v4}pckcert?qeid={QE_ID}&cpusvn={}&pcesvn={}&pceid={}",
            hex::encode(&pck.tcbm[..16]),
            hex::encode(&pck.tcbm[16..]),
            hex::encode(pck.pce_id)
        ),
    );
    let crl = get(
        sim,
        &format!("{v4}pckcrl?ca={}&encoding=der", pck.ca.as_str()),
    );
    let tcb = get(sim, &format!("{v4}tcb?fmspc={}", hex::encode(pck.fmspc)));
    let qe = get(sim, &format!("{v4}qe/identity"));
    let root_hex = get(sim, &format!("{v4}rootcacrl"));
    let root_ca_crl_der = hex::decode(&root_hex.body).unwrap();
    Served {
        pck_cert_chain: chain(&cert, "SGX-PCK-Certificate-Issuer-Chain"),
        pck_cert_body: cert.body,
        parts: vec![
            (
                "pck_crl_issuer_chain",
                chain(&crl, "SGX-PCK-CRL-Issuer-Chain").into_bytes(),
            ),
            ("root_ca_crl", root_ca_crl_der.clone()),
            ("pck_crl", crl.body.clone()),
            (
                "tcb_info_issuer_chain",
                chain(&tcb, "TCB-Info-Issuer-Chain").into_bytes(),
            ),
            ("tcb_info", tcb.body),
            (
                "qe_identity_issuer_chain",
                chain(&qe, "SGX-Enclave-Identity-Issuer-Chain").into_bytes(),
            ),
            ("qe_identity", qe.body),
        ],
        pck_crl_der: crl.body,
        root_ca_crl_der,
        pck,
    }
}

/// A test's files: the QCNL configuration and the cache parent directory; and environment
/// variables the program gets besides.
struct Setup {
    dir: tempfile::TempDir,
    env: Vec<(&'static str, PathBuf)>,
}

impl Setup {
    fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("cache")).unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let setup = Self {
            dir,
            env: Vec::new(),
        };
        setup.configure(config);
        setup
    }

    /// This setup, with `name=value` in the program's environment.
    fn with_env(mut self, name: &'static str, value: &Path) -> Self {
        self.env.push((name, value.to_owned()));
        self
    }

    fn configure(&self, config: &str) {
        std::fs::write(self.conf(), config).unwrap();
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("sgx_default_qcnl.conf")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// The program with this test's configuration and `AZDCAP_CACHE`.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = command(args);
        command
            .env("QCNL_CONF_PATH", self.conf())
            .env("AZDCAP_CACHE", self.dir.path().join("cache"))
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs `command` for the served platform's FMSPC and CA, writing its buffers into `out`.
    fn run_for(&self, command: &str, served: &Served, out: &Path) -> Lines {
        let fmspc = hex::encode(served.pck.fmspc);
        self.run(&[
            command,
            &fmspc,
            served.pck.ca.as_str(),
            out.to_str().unwrap(),
        ])
    }

    fn run(&self, args: &[&str]) -> Lines {
        lines(&run(self.command(args)))
    }
}

fn conf(url: &str, extra: &str) -> String {
    format!("{{\n  // test configuration\n  \"pccs_url\": \"{url}\"{extra}\n}}\n")
}

fn with_nul(bytes: &[u8]) -> Vec<u8> {
    [bytes, &[0]].concat()
}

fn config_args(pck: &PckCert, out: &Path) -> Vec<String> {
    vec![
        "config".into(),
        QE_ID.into(),
        hex::encode(&pck.tcbm[..16]),
        u16::from_le_bytes([pck.tcbm[16], pck.tcbm[17]]).to_string(),
        u16::from_le_bytes(pck.pce_id).to_string(),
        out.to_str().unwrap().into(),
    ]
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn check_collateral(lines: &Lines, out: &Path, served: &Served) {
    assert_eq!(status(lines, "collateral"), SUCCESS, "{lines:?}");
    assert_eq!(field(lines, "collateral", "version"), "0x00010003");
    assert_eq!(field(lines, "collateral", "major"), "3");
    assert_eq!(field(lines, "collateral", "minor"), "1");
    assert_eq!(field(lines, "collateral", "tee_type"), "0");
    assert_eq!(field(lines, "collateral", "free"), "0x0000");
    for (name, bytes) in &served.parts {
        let got = std::fs::read(out.join(name)).unwrap();
        assert_eq!(got, with_nul(bytes), "{name}");
        assert_eq!(
            field(lines, "collateral", &format!("{name}_size")),
            (bytes.len() + 1).to_string(),
            "{name}: the size counts the NUL"
        );
    }
}

#[test]
fn quote_config_is_leaf_then_chain_then_nul_with_the_certificates_tcb() {
    let sim = Sim::new();
    let served = served(&sim);
    let pccs = Pccs::start(sim.source.clone());
    let setup = Setup::new(&conf(&pccs.url(), ""));
    let out = setup.out().join("cert_data");
    let lines = setup.run(&as_strs(&config_args(&served.pck, &out)));
    assert_eq!(status(&lines, "quote_config"), SUCCESS, "{lines:?}");
    assert_eq!(field(&lines, "quote_config", "version"), "1");
    let expected = with_nul(
        &[
            served.pck_cert_body.as_slice(),
            served.pck_cert_chain.as_bytes(),
        ]
        .concat(),
    );
    let data = std::fs::read(&out).unwrap();
    assert_eq!(data, expected);
    assert!(data.starts_with(served.pck.cert_pem.as_bytes()));
    assert_eq!(
        field(&lines, "quote_config", "size"),
        expected.len().to_string()
    );
    assert_eq!(field(&lines, "quote_config", "last_byte"), "0");
    assert_eq!(field(&lines, "quote_config", "data_follows_struct"), "1");
    assert_eq!(
        field(&lines, "quote_config", "cpusvn"),
        hex::encode(&served.pck.tcbm[..16])
    );
    assert_eq!(
        field(&lines, "quote_config", "pcesvn"),
        u16::from_le_bytes([served.pck.tcbm[16], served.pck.tcbm[17]]).to_string()
    );
    assert_eq!(field(&lines, "quote_config", "free"), "0x0000");

    // Another PCE id is not this platform: 404, which is "no platform cert data".
    let mut args = config_args(&served.pck, &out);
    args[4] = (u16::from_le_bytes(served.pck.pce_id) ^ 0x5555).to_string();
    let lines = setup.run(&as_strs(&args));
    assert_eq!(status(&lines, "quote_config"), NO_PLATFORM_CERT_DATA);
}

#[test]
fn collateral_matches_what_the_pccs_serves_byte_for_byte() {
    let sim = Sim::new();
    let served = served(&sim);
    let pccs = Pccs::start(sim.source.clone());
    let setup = Setup::new(&conf(&pccs.url(), ""));
    let out = setup.out();
    let fmspc = hex::encode(served.pck.fmspc);
    let ca = served.pck.ca.as_str();
    for mode in ["collateral", "collateral_params"] {
        let lines = setup.run(&[mode, &fmspc, ca, out.to_str().unwrap()]);
        check_collateral(&lines, &out, &served);
    }
    // The CA name is read without regard to case, as Intel's PCCS reads it.
    let lines = setup.run(&[
        "collateral",
        &fmspc,
        &ca.to_uppercase(),
        out.to_str().unwrap(),
    ]);
    check_collateral(&lines, &out, &served);

    // Collateral version 3.0: the CRLs as hex text, what Intel's PCCS serves without encoding=der.
    setup.configure(&conf(&pccs.url(), ",\n  \"pccs_api_version\": \"3.0\""));
    let lines = setup.run(&["collateral", &fmspc, ca, out.to_str().unwrap()]);
    assert_eq!(status(&lines, "collateral"), SUCCESS, "{lines:?}");
    assert_eq!(field(&lines, "collateral", "version"), "0x00000003");
    assert_eq!(field(&lines, "collateral", "minor"), "0");
    let hex_crl = get(&sim, &format!("/sgx/certification/v4/pckcrl?ca={ca}")).body;
    assert_eq!(hex_crl, hex::encode(&served.pck_crl_der).into_bytes());
    assert_eq!(
        std::fs::read(out.join("pck_crl")).unwrap(),
        with_nul(&hex_crl)
    );
    let hex_root = get(&sim, "/sgx/certification/v4/rootcacrl").body;
    assert_eq!(
        std::fs::read(out.join("root_ca_crl")).unwrap(),
        with_nul(&hex_root)
    );
    assert_eq!(
        std::fs::read(out.join("tcb_info")).unwrap(),
        with_nul(&served.parts[4].1)
    );
}

#[test]
fn unknown_fmspc_or_ca_is_no_quote_collateral_data() {
    let sim = Sim::new();
    let served = served(&sim);
    let pccs = Pccs::start(sim.source.clone());
    let setup = Setup::new(&conf(&pccs.url(), ""));
    let out = setup.out();
    let mut other = served.pck.fmspc;
    other[0] ^= 0xff;
    let lines = setup.run(&[
        "collateral",
        &hex::encode(other),
        served.pck.ca.as_str(),
        out.to_str().unwrap(),
    ]);
    assert_eq!(status(&lines, "collateral"), NO_QUOTE_COLLATERAL_DATA);
    let other_ca = match served.pck.ca {
        pccs::CaType::Processor => "platform",
        pccs::CaType::Platform => "processor",
    };
    let lines = setup.run(&[
        "collateral",
        &hex::encode(served.pck.fmspc),
        other_ca,
        out.to_str().unwrap(),
    ]);
    assert_eq!(status(&lines, "collateral"), NO_QUOTE_COLLATERAL_DATA);
}

#[test]
fn root_ca_crl_is_the_der_without_a_nul() {
    let sim = Sim::new();
    let served = served(&sim);
    let pccs = Pccs::start(sim.source.clone());
    let setup = Setup::new(&conf(&pccs.url(), ""));
    let out = setup.out().join("root.crl");
    let lines = setup.run(&["rootcrl", out.to_str().unwrap()]);
    assert_eq!(status(&lines, "root_ca_crl"), SUCCESS, "{lines:?}");
    assert_eq!(std::fs::read(&out).unwrap(), served.root_ca_crl_der);
    assert_eq!(
        field(&lines, "root_ca_crl", "size"),
        served.root_ca_crl_der.len().to_string()
    );
    assert_eq!(field(&lines, "root_ca_crl", "free"), "0x0000");
}

#[test]
fn qve_identity_not_served_is_no_qve_identity_data() {
    let sim = Sim::new();
    let pccs = Pccs::start(sim.source.clone());
    let setup = Setup::new(&conf(&pccs.url(), ""));
    let lines = setup.run(&["qve", setup.out().to_str().unwrap()]);
    assert_eq!(status(&lines, "qve_identity"), NO_QVE_IDENTITY_DATA);
}

#[test]
fn qve_identity_from_an_offline_directory_is_json_and_chain_with_nuls() {
    // An offline directory with a QvE identity: the simulated QE identity stands in for it.
    let sim = Sim::new();
    let served = served(&sim);
    let dir = tempfile::tempdir().unwrap();
    let qe = &served.parts[6].1;
    let chain = &served.parts[5].1;
    std::fs::write(dir.path().join(pccs::source::QVE_IDENTITY_FILE), qe).unwrap();
    std::fs::write(
        dir.path().join(sgx_sim::files::QE_IDENTITY_ISSUER_CHAIN),
        chain,
    )
    .unwrap();
    let pccs = Pccs::start(Arc::new(pccs::DirSource::new(dir.path())));
    let setup = Setup::new(&conf(&pccs.url(), ""));
    let out = setup.out();
    let lines = setup.run(&["qve", out.to_str().unwrap()]);
    assert_eq!(status(&lines, "qve_identity"), SUCCESS, "{lines:?}");
    assert_eq!(
        std::fs::read(out.join("qve_identity")).unwrap(),
        with_nul(qe)
    );
    assert_eq!(
        std::fs::read(out.join("qve_identity_issuer_chain")).unwrap(),
        with_nul(chain)
    );
    assert_eq!(
        field(&lines, "qve_identity", "size"),
        (qe.len() + 1).to_string()
    );
    assert_eq!(
        field(&lines, "qve_identity", "chain_size"),
        (chain.len() + 1).to_string()
    );
}

/// A URL where nothing listens: a server's port after it stopped.
fn dead_url() -> String {
    let sim = Sim::new();
    let mut pccs = Pccs::start(sim.source.clone());
    let url = pccs.url();
    pccs.stop();
    url
}

#[test]
fn server_down_is_a_network_error() {
    let sim = Sim::new();
    let served = served(&sim);
    let setup = Setup::new(&conf(&dead_url(), ""));
    let out = setup.out();
    let lines = setup.run(&as_strs(&config_args(&served.pck, &out.join("c"))));
    assert_eq!(status(&lines, "quote_config"), NETWORK_ERROR);
    let lines = setup.run_for("collateral", &served, &out);
    assert_eq!(status(&lines, "collateral"), NETWORK_ERROR);
    let lines = setup.run(&["qve", out.to_str().unwrap()]);
    assert_eq!(status(&lines, "qve_identity"), NETWORK_ERROR);
    let lines = setup.run(&["rootcrl", out.join("r").to_str().unwrap()]);
    assert_eq!(status(&lines, "root_ca_crl"), NETWORK_ERROR);
}

/// Runs every fetching mode, expecting success; returns the collateral lines.
fn fetch_all(setup: &Setup, served: &Served) -> Lines {
    let out = setup.out();
    let lines = setup.run(&as_strs(&config_args(&served.pck, &out.join("cert_data"))));
    assert_eq!(status(&lines, "quote_config"), SUCCESS, "{lines:?}");
    let lines = setup.run(&["rootcrl", out.join("root.crl").to_str().unwrap()]);
    assert_eq!(status(&lines, "root_ca_crl"), SUCCESS, "{lines:?}");
    assert_eq!(
        std::fs::read(out.join("root.crl")).unwrap(),
        served.root_ca_crl_der
    );
    let lines = setup.run_for("collateral", served, &out);
    check_collateral(&lines, &out, served);
    lines
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
            })
            .count()
        })
        .unwrap_or(0)
}

const CACHING: &str =
    ",\n  \"pck_cache_expire_hours\": 24,\n  \"verify_collateral_cache_expire_hours\": 24";

#[test]
fn second_calls_are_served_from_the_cache_with_the_server_stopped() {
    let sim = Sim::new();
    let served = served(&sim);
    let mut pccs = Pccs::start(sim.source.clone());
    let setup = Setup::new(&conf(&pccs.url(), CACHING));
    fetch_all(&setup, &served);
    let cache = setup.dir.path().join("cache/.dcap-qcnl");
    assert_eq!(
        entries(&cache),
        3,
        "PCK certificate, root CA CRL, collateral"
    );
    pccs.stop();
    fetch_all(&setup, &served);

    // Without caching configured, the stopped server is a network error again.
    setup.configure(&conf(&pccs.url(), ""));
    let lines = setup.run(&["rootcrl", setup.out().join("r").to_str().unwrap()]);
    assert_eq!(status(&lines, "root_ca_crl"), NETWORK_ERROR);

    // local_cache_only serves what the cache holds and never the network.
    setup.configure(&conf(&pccs.url(), ",\n  \"local_cache_only\": true"));
    fetch_all(&setup, &served);
    std::fs::remove_dir_all(&cache).unwrap();
    let out = setup.out();
    let lines = setup.run(&as_strs(&config_args(&served.pck, &out.join("c"))));
    assert_eq!(status(&lines, "quote_config"), NO_PLATFORM_CERT_DATA);
    let lines = setup.run_for("collateral", &served, &out);
    assert_eq!(status(&lines, "collateral"), NO_QUOTE_COLLATERAL_DATA);
}

#[test]
fn no_home_and_a_read_only_azdcap_cache_still_cache_under_tmpdir() {
    let sim = Sim::new();
    let served = served(&sim);
    let mut pccs = Pccs::start(sim.source.clone());
    let setup = Setup::new(&conf(&pccs.url(), CACHING));
    let read_only = setup.dir.path().join("read-only");
    std::fs::create_dir(&read_only).unwrap();
    std::fs::set_permissions(
        &read_only,
        std::os::unix::fs::PermissionsExt::from_mode(0o555),
    )
    .unwrap();
    // Root writes anyway; /proc takes no new directories from anyone.
    let read_only = if tempfile::tempfile_in(&read_only).is_ok() {
        PathBuf::from("/proc")
    } else {
        read_only
    };
    let tmpdir = setup.dir.path().join("tmp");
    std::fs::create_dir(&tmpdir).unwrap();
    let run_with = |args: &[&str]| {
        let mut command = setup.command(args);
        command
            .env("AZDCAP_CACHE", &read_only)
            .env("TMPDIR", &tmpdir);
        lines(&run(command))
    };
    let fmspc = hex::encode(served.pck.fmspc);
    let out = setup.out();
    let args = [
        "collateral",
        &fmspc,
        served.pck.ca.as_str(),
        out.to_str().unwrap(),
    ];
    check_collateral(&run_with(&args), &out, &served);
    assert_eq!(entries(&tmpdir.join(".dcap-qcnl")), 1);
    assert_eq!(entries(&read_only.join(".dcap-qcnl")), 0);
    pccs.stop();
    check_collateral(&run_with(&args), &out, &served);
}

#[test]
fn azdcap_base_cert_url_replaces_the_configured_service() {
    let sim = Sim::new();
    let served = served(&sim);
    let pccs = Pccs::start(sim.source.clone());
    let setup = Setup::new(&conf(&dead_url(), ""));
    let out = setup.out();
    let mut command = setup.command(&[
        "collateral",
        &hex::encode(served.pck.fmspc),
        served.pck.ca.as_str(),
        out.to_str().unwrap(),
    ]);
    command
        .env(
            "AZDCAP_BASE_CERT_URL",
            format!("http://{}/sgx/certification", pccs.addr),
        )
        .env("AZDCAP_COLLATERAL_VERSION", "v4");
    check_collateral(&lines(&run(command)), &out, &served);
}

#[test]
fn broken_json_configuration_is_config_invalid_json() {
    let sim = Sim::new();
    let served = served(&sim);
    let setup = Setup::new("{ \"pccs_url\": ");
    let out = setup.out();
    let lines = setup.run_for("collateral", &served, &out);
    assert_eq!(status(&lines, "collateral"), 0xE067);
}

#[test]
fn null_arguments_and_bad_sizes_are_invalid_parameters() {
    let setup = Setup::new(&conf(&dead_url(), ""));
    let lines = setup.run(&["params"]);
    let mut checked = 0;
    for (name, fields) in &lines {
        let Some(value) = fields.get("status") else {
            continue;
        };
        let expected = if name.starts_with("free_") {
            "0x0000"
        } else {
            "0xe002"
        };
        assert_eq!(value, expected, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 29, "{lines:?}");
    assert_eq!(status(&lines, "config_short_ppid"), INVALID_PARAMETER);
    assert_eq!(field(&lines, "outputs", "untouched"), "1");
}

#[test]
fn logging_callback_receives_messages_in_both_calling_conventions() {
    let sim = Sim::new();
    let served = served(&sim);
    let setup = Setup::new(&conf(&dead_url(), ",\n  \"use_secure_cert\": false"));
    let output = run(setup.command(&["logging", &hex::encode(served.pck.fmspc)]));
    let lines = lines(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let count = |key: &str| field(&lines, "logging", key).parse::<u32>().unwrap();
    assert_eq!(field(&lines, "logging", "set2"), "0x0000");
    assert_eq!(field(&lines, "logging", "status"), "0xe019");
    assert!(count("after_two_arg") >= 1, "{lines:?}");
    assert_eq!(field(&lines, "logging", "set1"), "0x0000");
    assert!(count("after_one_arg") > count("after_two_arg"), "{lines:?}");
    assert_eq!(field(&lines, "logging", "setfn"), "0x0000");
    assert!(
        count("after_function") > count("after_one_arg"),
        "{lines:?}"
    );
    assert_eq!(field(&lines, "logging", "unset"), "0x0000");
    assert_eq!(
        count("after_unset"),
        count("after_function"),
        "NULL stops the messages"
    );
    assert_eq!(count("bad"), 0);
    assert!(
        stderr.contains("QPLLOG 0 libdcap_quoteprov: sgx_ql_get_quote_verification_collateral: ")
            && stderr.contains("-> 0xe019"),
        "{stderr}"
    );
    assert!(stderr.contains("use_secure_cert is false"), "{stderr}");
}

/// Intel's `sgx_default_qcnl_azure.conf`, as Azure users copy it to /etc.
const INTEL_AZURE_CONF: &str = r#"{ "pccs_url": "https://global.acccache.azure.net/sgx/certification/v4/",
  "use_secure_cert": true,
  "collateral_service": "https://api.trustedservices.intel.com/sgx/certification/v4/",
  "pccs_api_version": "3.1", "retry_times": 6, "retry_delay": 5,
  "local_pck_url": "http://169.254.169.254/metadata/THIM/sgx/certification/v4/",
  "pck_cache_expire_hours": 48, "verify_collateral_cache_expire_hours": 48,
  "custom_request_options" : { "get_cert" : { "headers": { "metadata": "true" }, "params": { "api-version": "2021-07-22-preview" } } } }"#;

/// Intel's Azure configuration with its three URLs pointing at local servers.
fn azure_conf(pccs_url: &str, collateral: &str, local_pck_url: &str) -> String {
    let conf = INTEL_AZURE_CONF
        .replace(
            "https://global.acccache.azure.net/sgx/certification/v4/",
            pccs_url,
        )
        .replace(
            "https://api.trustedservices.intel.com/sgx/certification/v4/",
            collateral,
        )
        .replace(
            "http://169.254.169.254/metadata/THIM/sgx/certification/v4/",
            local_pck_url,
        );
    assert_eq!(conf.matches("http://127.0.0.1:").count(), 3, "{conf}");
    conf
}

fn thim_url(thim: &Pccs) -> String {
    format!("http://{}{}", thim.addr, common::THIM_PREFIX)
}

/// The quote configuration lines and certificate data of one `config` run.
fn quote_config(setup: &Setup, pck: &PckCert, name: &str) -> (Lines, Vec<u8>) {
    let out = setup.out().join(name);
    let lines = setup.run(&as_strs(&config_args(pck, &out)));
    assert_eq!(status(&lines, "quote_config"), SUCCESS, "{lines:?}");
    (lines, std::fs::read(&out).unwrap())
}

#[test]
fn intels_azure_configuration_takes_the_certificate_from_thim_byte_for_byte() {
    let sim = Sim::new();
    let served = served(&sim);
    let pccs = Pccs::start(sim.source.clone());
    let thim = Pccs::serve(common::thim_routes(sim.source.clone()));

    // The PEM + headers path, from the PCCS.
    let plain = Setup::new(&conf(&pccs.url(), ""));
    let (plain_lines, plain_data) = quote_config(&plain, &served.pck, "plain");
    assert_eq!(pccs.seen_at("/pckcert").len(), 1);
    pccs.forget();

    // Intel's Azure file: the certificate comes from THIM's JSON answer, and is the same.
    let setup = Setup::new(&azure_conf(&pccs.url(), &pccs.url(), &thim_url(&thim)));
    let (lines, data) = quote_config(&setup, &served.pck, "azure");
    assert_eq!(data, plain_data);
    assert_eq!(lines["quote_config"], plain_lines["quote_config"]);
    let asked = thim.seen_at("/pckcert");
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].header("metadata"), Some("true"));
    assert_eq!(
        asked[0].param("api-version").as_deref(),
        Some(common::THIM_API_VERSION)
    );
    assert_eq!(
        asked[0].param("qeid").as_deref(),
        Some(&*QE_ID.to_uppercase())
    );
    assert!(pccs.seen_at("/pckcert").is_empty(), "THIM answered");

    // Collateral from the collateral service, without update= (tcb_update_type is unset).
    let out = setup.out();
    let lines = setup.run_for("collateral", &served, &out);
    check_collateral(&lines, &out, &served);
    let tcb = pccs.seen_at("/tcb");
    assert_eq!(tcb.len(), 1);
    assert_eq!(tcb[0].param("update"), None);
    assert!(thim.seen_at("/tcb").is_empty());

    // Without custom_request_options THIM refuses (400): the request fails over to pccs_url,
    // with the same result.
    let bare = azure_conf(&pccs.url(), &pccs.url(), &thim_url(&thim));
    let start = bare.find(",\n  \"custom_request_options\"").unwrap();
    setup.configure(&format!("{} }}", &bare[..start]));
    thim.forget();
    pccs.forget();
    let (_, data) = quote_config(&setup, &served.pck, "bare");
    assert_eq!(data, plain_data);
    let asked = thim.seen_at("/pckcert");
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].header("metadata"), None);
    assert_eq!(pccs.seen_at("/pckcert").len(), 1);
}

#[test]
fn the_thim_stand_in_wants_the_metadata_header_and_the_api_version() {
    let sim = Sim::new();
    let served = served(&sim);
    let thim = Pccs::serve(common::thim_routes(sim.source.clone()));
    let client =
        pccs::client::PccsClient::new(&thim_url(&thim), std::time::Duration::from_secs(10))
            .unwrap();
    let pck = &served.pck;
    let request = pccs::client::PckCertRequest {
        qe_id: hex::decode(QE_ID).unwrap(),
        cpu_svn: pck.tcbm[..16].try_into().unwrap(),
        pce_svn: u16::from_le_bytes([pck.tcbm[16], pck.tcbm[17]]),
        pce_id: u16::from_le_bytes(pck.pce_id),
        ..Default::default()
    };
    let header = vec![("metadata".to_owned(), "true".to_owned())];
    let param = vec![(
        "api-version".to_owned(),
        common::THIM_API_VERSION.to_owned(),
    )];
    for (params, headers) in [
        (Vec::new(), Vec::new()),
        (param.clone(), Vec::new()),
        (Vec::new(), header.clone()),
    ] {
        let request = pccs::client::PckCertRequest {
            extra_params: params,
            extra_headers: headers,
            ..request.clone()
        };
        match client.pck_cert(&request) {
            Err(pccs::client::FetchError::Status { status: 400, .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    let fetched = client
        .pck_cert(&pccs::client::PckCertRequest {
            extra_params: param,
            extra_headers: header,
            ..request
        })
        .unwrap();
    assert_eq!(fetched.cert_pem, pck.cert_pem);
    assert_eq!(fetched.issuer_chain, pck.issuer_chain);
    assert_eq!(fetched.tcbm, pck.tcbm);
}

#[test]
fn a_dead_local_pck_url_fails_over_to_pccs_url() {
    let sim = Sim::new();
    let served = served(&sim);
    let pccs = Pccs::start(sim.source.clone());
    let plain = Setup::new(&conf(&pccs.url(), ""));
    let (_, plain_data) = quote_config(&plain, &served.pck, "plain");
    let dead = dead_url();
    let setup = Setup::new(&conf(
        &pccs.url(),
        &format!(",\n  \"local_pck_url\": \"{dead}\""),
    ));
    let out = setup.out().join("cert_data");
    let mut command = setup.command(&as_strs(&config_args(&served.pck, &out)));
    command.env("CONFCOM_QPL_LOG", "1");
    let output = run(command);
    assert_eq!(status(&lines(&output), "quote_config"), SUCCESS);
    assert_eq!(std::fs::read(&out).unwrap(), plain_data);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("local_pck_url failed")
            && stderr.contains(&dead)
            && stderr.contains(&format!("failing over to pccs_url {}", pccs.url())),
        "{stderr}"
    );
}

#[test]
fn clear_cache_removes_the_entries_of_its_bits() {
    let sim = Sim::new();
    let served = served(&sim);
    let mut pccs = Pccs::start(sim.source.clone());
    let setup = Setup::new(&conf(&pccs.url(), CACHING));
    fetch_all(&setup, &served);
    let cache = setup.dir.path().join("cache/.dcap-qcnl");
    assert_eq!(entries(&cache), 3);
    pccs.stop();
    let clear = |bits: &str| status(&setup.run(&["clear", bits]), "clear_cache");
    let out = setup.out();
    let fmspc = hex::encode(served.pck.fmspc);
    let collateral_args = [
        "collateral",
        &fmspc,
        served.pck.ca.as_str(),
        out.to_str().unwrap(),
    ];
    let root_crl = out.join("root.crl");
    let root_args = ["rootcrl", root_crl.to_str().unwrap()];

    assert_eq!(clear("0"), SUCCESS, "nothing asked, nothing removed");
    assert_eq!(clear("8"), INVALID_PARAMETER, "an unknown bit");
    assert_eq!(clear("12"), INVALID_PARAMETER);
    assert_eq!(entries(&cache), 3);
    assert_eq!(clear("4"), SUCCESS, "multi-certs: never stored here");
    // With the server stopped everything is still served, from the cache.
    fetch_all(&setup, &served);

    // Certificates: the PCK certificate now fails; collateral is still cached.
    assert_eq!(clear("1"), SUCCESS);
    assert_eq!(entries(&cache), 2);
    let lines = setup.run(&as_strs(&config_args(&served.pck, &out.join("c"))));
    assert_eq!(status(&lines, "quote_config"), NETWORK_ERROR);
    check_collateral(&setup.run(&collateral_args), &out, &served);
    assert_eq!(status(&setup.run(&root_args), "root_ca_crl"), SUCCESS);

    // Collateral: the collateral and root CA CRL now fail too. The configuration is not read.
    setup.configure("{ broken");
    assert_eq!(clear("2"), SUCCESS);
    assert_eq!(entries(&cache), 0);
    setup.configure(&conf(&pccs.url(), CACHING));
    let lines = setup.run(&collateral_args);
    assert_eq!(status(&lines, "collateral"), NETWORK_ERROR);
    assert_eq!(status(&setup.run(&root_args), "root_ca_crl"), NETWORK_ERROR);
    assert_eq!(clear("7"), SUCCESS, "nothing left to clear");
}

#[test]
fn global_init_and_cleanup_succeed_in_any_order_and_change_nothing() {
    let sim = Sim::new();
    let served = served(&sim);
    let pccs = Pccs::start(sim.source.clone());
    let setup = Setup::new(&conf(&pccs.url(), ""));
    let lines = setup.run(&["global"]);
    for key in [
        "cleanup0", "init1", "init2", "cleanup1", "cleanup2", "init3",
    ] {
        assert_eq!(field(&lines, "global", key), "0x0000", "{key}");
    }
    let out = setup.out();
    let lines = setup.run_for("global", &served, &out);
    check_collateral(&lines, &out, &served);
}

/// TDX documents for the stand-in route: small signed-looking JSON with the simulated chains.
fn tdx_docs(served: &Served) -> common::TdxDocs {
    let fmspc = hex::encode_upper(served.pck.fmspc);
    common::TdxDocs {
        fmspc: served.pck.fmspc,
        tcb_info: format!(
            r#"{{"tcbInfo":{{"id":"TDX","version":3,"fmspc":"{fmspc}","tdxModule":{{}}}},"signature":"00"}}"#
        )
        .into_bytes(),
        tcb_info_issuer_chain: String::from_utf8(served.parts[3].1.clone()).unwrap(),
        qe_identity: br#"{"enclaveIdentity":{"id":"TD_QE","version":2},"signature":"00"}"#.to_vec(),
        qe_identity_issuer_chain: String::from_utf8(served.parts[5].1.clone()).unwrap(),
    }
}

#[test]
fn tdx_collateral_takes_tcb_info_and_qe_identity_from_the_tdx_routes() {
    let sim = Sim::new();
    let served = served(&sim);
    let docs = tdx_docs(&served);
    let expected_tcb_info = docs.tcb_info.clone();
    let expected_qe_identity = docs.qe_identity.clone();
    let server = Pccs::serve(common::tdx_routes(sim.source.clone(), docs));
    let setup = Setup::new(&conf(&server.url(), ""));
    let out = setup.out();
    let fmspc = hex::encode(served.pck.fmspc);
    let ca = served.pck.ca.as_str();
    let lines = setup.run(&["tdx", &fmspc, ca, out.to_str().unwrap()]);
    assert_eq!(status(&lines, "tdx_collateral"), SUCCESS, "{lines:?}");
    assert_eq!(field(&lines, "tdx_collateral", "tee_type"), "129");
    assert_eq!(field(&lines, "tdx_collateral", "version"), "0x00010003");
    assert_eq!(field(&lines, "tdx_collateral", "free"), "0x0000");
    let mut expected = served.parts.clone();
    expected[4].1 = expected_tcb_info;
    expected[6].1 = expected_qe_identity;
    for (name, bytes) in &expected {
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            with_nul(bytes),
            "{name}"
        );
        assert_eq!(
            field(&lines, "tdx_collateral", &format!("{name}_size")),
            (bytes.len() + 1).to_string()
        );
    }
    let paths: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    assert!(
        paths.contains(&"/tdx/certification/v4/tcb".to_owned()),
        "{paths:?}"
    );
    assert!(paths.contains(&"/tdx/certification/v4/qe/identity".to_owned()));
    assert!(paths.contains(&"/sgx/certification/v4/pckcrl".to_owned()));
    assert!(
        !paths
            .iter()
            .any(|p| p.starts_with("/sgx/") && p.ends_with("/tcb"))
    );

    // The SGX collateral of the same server is still SGX's.
    let lines = setup.run(&["collateral", &fmspc, ca, out.to_str().unwrap()]);
    check_collateral(&lines, &out, &served);

    // An FMSPC without TDX TCB info: 404, no collateral data, nothing handed out.
    let mut other = served.pck.fmspc;
    other[5] ^= 1;
    let lines = setup.run(&["tdx", &hex::encode(other), ca, out.to_str().unwrap()]);
    assert_eq!(status(&lines, "tdx_collateral"), NO_QUOTE_COLLATERAL_DATA);
    assert_eq!(field(&lines, "tdx_collateral", "untouched"), "1");

    // A PCCS that does not serve TDX (confcom pccs): 404 as well.
    let pccs = Pccs::start(sim.source.clone());
    setup.configure(&conf(&pccs.url(), ""));
    let lines = setup.run(&["tdx", &fmspc, ca, out.to_str().unwrap()]);
    assert_eq!(status(&lines, "tdx_collateral"), NO_QUOTE_COLLATERAL_DATA);

    // TDX collateral needs API v4: a v3 URL is an invalid parameter, and nothing is asked.
    server.forget();
    setup.configure(&conf(&server.url().replace("/v4/", "/v3/"), ""));
    let lines = setup.run(&["tdx", &fmspc, ca, out.to_str().unwrap()]);
    assert_eq!(status(&lines, "tdx_collateral"), INVALID_PARAMETER);
    assert!(server.seen().is_empty());
}

// ---- HTTPS ----

const ROOT_CA_UNTRUSTED: u32 = 0xE065;

/// The PCCS API over a simulated platform, served over HTTPS with a certificate for `localhost`
/// under a private CA that neither Mozilla's roots nor the system's store hold.
struct HttpsPccs {
    sim: Sim,
    served: Served,
    certs: common::LocalhostCerts,
    pccs: Pccs,
    /// TLS handshakes the server has begun.
    handshakes: Arc<std::sync::atomic::AtomicUsize>,
}

impl HttpsPccs {
    fn start() -> Self {
        let sim = Sim::new();
        let served = served(&sim);
        let certs = common::LocalhostCerts::new();
        let (tls, handshakes) = certs.server_config();
        let routes = pccs::routes(sim.source.clone(), pccs::RouteOptions::default(), |_| {});
        let pccs = Pccs::serve_tls(routes, tls);
        Self {
            sim,
            served,
            certs,
            pccs,
            handshakes,
        }
    }

    /// The handshakes since the last call.
    fn take_handshakes(&self) -> usize {
        self.handshakes.swap(0, std::sync::atomic::Ordering::SeqCst)
    }
}

/// Every fetching call of the program, in that order, with `setup`: the PCK certificate, the
/// root CA CRL, the collateral and the QvE identity. Yields each call's line name and status as
/// the call is made.
fn statuses_of_every_call<'a>(
    setup: &'a Setup,
    served: &Served,
) -> impl Iterator<Item = (&'static str, u32)> + 'a {
    let out = setup.out();
    let fmspc = hex::encode(served.pck.fmspc);
    let collateral = |mode| {
        vec![
            String::from(mode),
            fmspc.clone(),
            served.pck.ca.as_str().to_owned(),
            out.to_str().unwrap().to_owned(),
        ]
    };
    [
        ("quote_config", config_args(&served.pck, &out.join("c"))),
        (
            "root_ca_crl",
            vec!["rootcrl".into(), out.join("r").to_str().unwrap().into()],
        ),
        ("collateral", collateral("collateral")),
        ("collateral", collateral("collateral_params")),
        (
            "qve_identity",
            vec!["qve".into(), out.to_str().unwrap().into()],
        ),
    ]
    .into_iter()
    .map(|(name, args)| (name, status(&setup.run(&as_strs(&args)), name)))
}

#[test]
fn https_under_an_unknown_ca_is_root_ca_untrusted_and_not_retried() {
    let https = HttpsPccs::start();
    // Retries are configured: a refused certificate is not worth one.
    let setup = Setup::new(&conf(
        &https.pccs.https_url(),
        ",\n  \"use_secure_cert\": true,\n  \"retry_times\": 3,\n  \"retry_delay\": 1",
    ));
    for (name, status) in statuses_of_every_call(&setup, &https.served) {
        assert_eq!(status, ROOT_CA_UNTRUSTED, "{name}");
        assert_eq!(https.take_handshakes(), 1, "{name}: one attempt, no retry");
    }
    assert!(
        https.pccs.seen().is_empty(),
        "no request got past the handshake"
    );

    // The log names the refused certificate.
    let mut command = setup.command(&["rootcrl", setup.out().join("r").to_str().unwrap()]);
    command.env("CONFCOM_QPL_LOG", "1");
    let output = run(command);
    assert_eq!(status(&lines(&output), "root_ca_crl"), ROOT_CA_UNTRUSTED);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&https.pccs.https_url()) && stderr.contains("UnknownIssuer"),
        "{stderr}"
    );
}

#[test]
fn https_under_a_ca_named_by_ssl_cert_file_serves_what_http_serves() {
    let https = HttpsPccs::start();
    let plain = Pccs::start(https.sim.source.clone());
    let over_http = Setup::new(&conf(&plain.url(), ""));
    let over_https = Setup::new(&conf(
        &https.pccs.https_url(),
        ",\n  \"use_secure_cert\": true",
    ))
    .with_env("SSL_CERT_FILE", &https.certs.ca());
    let served = &https.served;
    for setup in [&over_http, &over_https] {
        fetch_all(setup, served);
        let lines = setup.run(&["qve", setup.out().to_str().unwrap()]);
        // The simulated platform has no QvE identity: a 404 that came over the connection.
        assert_eq!(status(&lines, "qve_identity"), NO_QVE_IDENTITY_DATA);
    }
    assert!(https.take_handshakes() >= 4, "every call went over TLS");
    for route in [
        "pckcert",
        "pckcrl",
        "tcb",
        "qe/identity",
        "qve/identity",
        "rootcacrl",
    ] {
        assert!(!https.pccs.seen_at(route).is_empty(), "{route} over HTTPS");
    }
    // Every buffer the program wrote, over HTTPS as over HTTP; over HTTP each one was compared
    // with what the PCCS serves (and the certificate data here).
    let cert_data = with_nul(
        &[
            served.pck_cert_body.as_slice(),
            served.pck_cert_chain.as_bytes(),
        ]
        .concat(),
    );
    assert_eq!(
        std::fs::read(over_http.out().join("cert_data")).unwrap(),
        cert_data
    );
    let files = |setup: &Setup| {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(setup.out())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                (name, std::fs::read(e.path()).unwrap())
            })
            .collect();
        files.sort();
        files
    };
    let http_files = files(&over_http);
    assert_eq!(
        http_files
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        [
            "cert_data",
            "pck_crl",
            "pck_crl_issuer_chain",
            "qe_identity",
            "qe_identity_issuer_chain",
            "root.crl",
            "root_ca_crl",
            "tcb_info",
            "tcb_info_issuer_chain",
        ]
    );
    assert_eq!(files(&over_https), http_files);
}

#[test]
fn https_without_secure_cert_accepts_the_unknown_ca() {
    let https = HttpsPccs::start();
    let setup = Setup::new(&conf(
        &https.pccs.https_url(),
        ",\n  \"use_secure_cert\": false",
    ));
    fetch_all(&setup, &https.served);
    assert_eq!(
        std::fs::read(setup.out().join("cert_data")).unwrap(),
        with_nul(
            &[
                https.served.pck_cert_body.as_slice(),
                https.served.pck_cert_chain.as_bytes(),
            ]
            .concat(),
        )
    );
    assert!(https.take_handshakes() >= 3, "every call went over TLS");
    assert!(!https.pccs.seen_at("pckcert").is_empty());
}

#[test]
fn https_to_a_name_the_certificate_does_not_carry_is_root_ca_untrusted() {
    let https = HttpsPccs::start();
    // The CA is trusted, but the certificate names `localhost`, not the address.
    let url = format!(
        "https://127.0.0.1:{}/sgx/certification/v4/",
        https.pccs.addr.port()
    );
    let setup = Setup::new(&conf(
        &url,
        ",\n  \"retry_times\": 2,\n  \"retry_delay\": 1",
    ))
    .with_env("SSL_CERT_FILE", &https.certs.ca());
    for (name, status) in statuses_of_every_call(&setup, &https.served) {
        assert_eq!(status, ROOT_CA_UNTRUSTED, "{name}");
        assert_eq!(https.take_handshakes(), 1, "{name}: one attempt, no retry");
    }
    assert!(https.pccs.seen().is_empty());
}

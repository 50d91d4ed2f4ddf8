#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Attributes from attestation on a simulated node: the quote helper (aesm-service with the
//! simulated backend, on a temp socket, publishing its CPU material as `confcom quote-helper
//! --backend sim` does) and a simulated PCCS (`confcom pccs --sim-state`: the PCCS routes over
//! the simulated platform's collateral) in-process; the driver takes its own quote and verifies
//! it. And the hardware path, where the driver has no enclave: the platform evidence the helper
//! publishes with the quotes it makes for apps.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aesm_service::{BackgroundServer, Dispatcher, Metrics, ServerConfig, SimBackend};
use dcap_verify::{TcbStatus, TrustAnchor};
use dra_driver::attest::{self, AttestConfig, AttestError, Attestation, CollateralConfig};
use dra_driver::{devices, slices};
use sgx_sim::CollateralOptions;
use sgx_sim::{InitOptions, SimPlatform};
use tokio::sync::watch;

const FMSPC: [u8; 6] = [0x30, 0x60, 0x6a, 0x00, 0x00, 0x00];
const TCB: [u8; 16] = [9, 9, 3, 3, 255, 255, 1, 0, 13, 0, 0, 0, 0, 0, 0, 0];
const PCE_SVN: u16 = 13;

fn short_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("dra")
        .tempdir_in("/tmp")
        .unwrap()
}

fn platform(dir: &Path) -> Arc<SimPlatform> {
    let options = InitOptions {
        fmspc: FMSPC,
        tcb_components: TCB,
        pce_svn: PCE_SVN,
        ..InitOptions::default()
    };
    Arc::new(SimPlatform::open_or_init(&dir.join("state"), &options).unwrap())
}

/// The simulated quote helper on `<dir>/aesmd/aesm.socket`.
fn start_helper(dir: &Path, platform: &Arc<SimPlatform>) -> (PathBuf, BackgroundServer) {
    let socket = dir.join("aesmd/aesm.socket");
    let backend = Arc::new(SimBackend::new(Arc::clone(platform)));
    // Looking for a removed file at every quote (the test removes it).
    let recorder = aesm_service::evidence::EvidenceRecorder::new(
        aesm_service::evidence::evidence_path_for_socket(&socket),
    )
    .with_recheck(Duration::ZERO);
    let server = BackgroundServer::start(
        &socket,
        Dispatcher::new(backend).with_evidence(Arc::new(recorder)),
        ServerConfig::default(),
        Metrics::default(),
    )
    .unwrap();
    platform
        .publish_cpu(&aesm_service::sim::sim_dir_for_socket(&socket))
        .unwrap();
    (socket, server)
}

/// The simulated PCCS over HTTP on 127.0.0.1; its URL.
async fn start_pccs(platform: &Arc<SimPlatform>, options: CollateralOptions) -> String {
    let source = Arc::new(pccs::SimSource::with_options(Arc::clone(platform), options));
    let routes = pccs::routes(source, pccs::RouteOptions::default(), |_| {});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(ops_http::serve(
        listener,
        Arc::new(prometheus_client::registry::Registry::default()),
        ops_http::Readiness::new(),
        Some(routes),
        std::future::pending(),
    ));
    format!("http://{addr}")
}

fn config(socket: &Path, pccs_url: Option<String>, platform: &SimPlatform) -> AttestConfig {
    let collateral = match pccs_url {
        Some(url) => CollateralConfig::Pccs {
            url,
            ca_files: Vec::new(),
            timeout: Duration::from_secs(30),
        },
        None => CollateralConfig::None,
    };
    let mut config = AttestConfig::new(socket, collateral);
    config.root = Some(TrustAnchor::from_pem_or_der(platform.root_ca_der()).unwrap());
    config.retry = Duration::from_millis(20);
    config.max_retry = Duration::from_millis(100);
    config
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn attest_once(config: AttestConfig) -> Result<attest::Attested, AttestError> {
    tokio::task::spawn_blocking(move || attest::attest_once(&config, now))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sim_platform_is_up_to_date_under_the_sim_pccs() {
    let dir = short_tempdir();
    let platform = platform(dir.path());
    let (socket, _helper) = start_helper(dir.path(), &platform);
    let url = start_pccs(&platform, CollateralOptions::default()).await;
    let attested = attest_once(config(&socket, Some(url), &platform))
        .await
        .unwrap();
    assert!(
        attested.collateral_error.is_none(),
        "{:?}",
        attested.collateral_error
    );
    let a = &attested.attestation;
    assert_eq!(a.fmspc, Some(FMSPC));
    assert_eq!(a.pce_svn, Some(PCE_SVN));
    assert_eq!(a.cpu_svn, Some(TCB));
    assert_eq!(a.tcb_status, Some(TcbStatus::UpToDate));
    let date = a.tcb_date.as_deref().unwrap();
    assert!(dcap_verify::time::parse_rfc3339(date).is_some(), "{date}");
    // The refresh is due when the collateral's nextUpdate comes.
    assert!(attested.refresh_at.unwrap() > now());

    // The slice carries them, and stays valid.
    let inventory = devices::simulated(64 << 20).unwrap();
    let spec = slices::desired_spec("sgx.confcom-rs.github.io", "n", &inventory, a, 0);
    let slice = slices::slice_object("uid", spec);
    slices::validate_slice(&slice).unwrap();
    let json = serde_json::to_value(&slice).unwrap();
    let attrs = &json["spec"]["devices"][0]["attributes"];
    assert_eq!(attrs["fmspc"]["string"], "30606a000000");
    assert_eq!(attrs["tcbStatus"]["string"], "UpToDate");
    assert_eq!(attrs["pceSvn"]["int"], 13);
    assert_eq!(
        attrs["cpuSvn"]["string"],
        "09090303ffff01000d00000000000000"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_platforms_get_intel_s_status_names() {
    let dir = short_tempdir();
    let platform = platform(dir.path());
    let (socket, _helper) = start_helper(dir.path(), &platform);
    for status in [TcbStatus::SWHardeningNeeded, TcbStatus::OutOfDate] {
        let url = start_pccs(
            &platform,
            CollateralOptions {
                tcb_status: Some(status),
                ..CollateralOptions::default()
            },
        )
        .await;
        let attested = attest_once(config(&socket, Some(url), &platform))
            .await
            .unwrap();
        assert_eq!(attested.attestation.tcb_status, Some(status));
        assert_eq!(attested.attestation.fmspc, Some(FMSPC));
    }
    assert_eq!(TcbStatus::SWHardeningNeeded.name(), "SWHardeningNeeded");
    assert_eq!(TcbStatus::OutOfDate.name(), "OutOfDate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_collateral_only_the_platform_is_published() {
    let dir = short_tempdir();
    let platform = platform(dir.path());
    let (socket, _helper) = start_helper(dir.path(), &platform);
    // No collateral configured.
    let attested = attest_once(config(&socket, None, &platform)).await.unwrap();
    assert_eq!(attested.attestation.fmspc, Some(FMSPC));
    assert_eq!(attested.attestation.tcb_status, None);
    assert!(attested.collateral_error.is_none());
    // A PCCS that is not up: the platform still, and why the status is missing.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut cfg = config(&socket, Some(format!("http://{closed}")), &platform);
    if let CollateralConfig::Pccs { timeout, .. } = &mut cfg.collateral {
        *timeout = Duration::from_secs(5);
    }
    let attested = attest_once(cfg).await.unwrap();
    assert_eq!(attested.attestation.fmspc, Some(FMSPC));
    assert_eq!(attested.attestation.tcb_status, None);
    let err = attested.collateral_error.unwrap();
    assert!(err.to_string().contains("306"), "{err}");
    assert!(err.is_transient());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collateral_from_a_directory_gives_the_status_too() {
    let dir = short_tempdir();
    let platform = platform(dir.path());
    let (socket, _helper) = start_helper(dir.path(), &platform);
    let collateral_dir = dir.path().join("collateral");
    platform
        .collateral(&CollateralOptions {
            tcb_status: Some(TcbStatus::ConfigurationNeeded),
            ..CollateralOptions::default()
        })
        .unwrap()
        .write_to(&collateral_dir)
        .unwrap();
    let mut cfg = config(&socket, None, &platform);
    cfg.collateral = CollateralConfig::Dir(collateral_dir);
    let attested = attest_once(cfg).await.unwrap();
    assert_eq!(
        attested.attestation.tcb_status,
        Some(TcbStatus::ConfigurationNeeded)
    );
    assert_eq!(attested.attestation.fmspc, Some(FMSPC));

    // Under another root the quote does not verify: no status, and why.
    let other =
        SimPlatform::open_or_init(&dir.path().join("other"), &InitOptions::default()).unwrap();
    let mut cfg = config(&socket, None, &other);
    cfg.collateral = CollateralConfig::Dir(dir.path().join("collateral"));
    let attested = attest_once(cfg).await.unwrap();
    assert_eq!(attested.attestation.tcb_status, None);
    assert!(matches!(
        attested.collateral_error,
        Some(AttestError::Verify(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helper_that_is_not_up_is_a_transient_failure() {
    let dir = short_tempdir();
    let platform = platform(dir.path());
    let socket = dir.path().join("aesmd/aesm.socket");
    let err = attest_once(config(&socket, None, &platform))
        .await
        .unwrap_err();
    assert!(matches!(err, AttestError::Unavailable { .. }), "{err}");
    assert!(err.is_transient());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_publishes_once_the_helper_comes_up() {
    let dir = short_tempdir();
    let platform = platform(dir.path());
    let url = start_pccs(&platform, CollateralOptions::default()).await;
    let socket = dir.path().join("aesmd/aesm.socket");
    let mut running = RunningLoop::start(config(&socket, Some(url), &platform));
    // Not up yet: nothing is published.
    assert_eq!(*running.attributes.borrow(), Attestation::default());
    let (_socket, _helper) = start_helper(dir.path(), &platform);
    let published = running
        .published_with_status("no attributes were published")
        .await;
    assert_eq!(published.fmspc, Some(FMSPC));
    assert_eq!(published.tcb_status, Some(TcbStatus::UpToDate));
    running.stop().await;
}

/// [`attest::run`] on its own task, until [`RunningLoop::stop`].
struct RunningLoop {
    attributes: watch::Receiver<Attestation>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningLoop {
    fn start(config: AttestConfig) -> Self {
        let (tx, attributes) = watch::channel(Attestation::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(attest::run(config, tx, async {
            let _ = stopped.await;
        }));
        Self {
            attributes,
            stop,
            task,
        }
    }

    /// The first attributes published with a TCB status (bounded only so that a broken test
    /// fails instead of hanging; `what` says what did not happen).
    async fn published_with_status(&mut self, what: &str) -> Attestation {
        tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                self.attributes.changed().await.unwrap();
                let a = self.attributes.borrow_and_update().clone();
                if a.tcb_status.is_some() {
                    return a;
                }
            }
        })
        .await
        .expect(what)
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

#[test]
fn refreshes_follow_next_update_within_bounds() {
    let cfg = AttestConfig::new("/nonexistent", CollateralConfig::None);
    assert_eq!(
        attest::refresh_wait(&cfg, Some(1_000 + 3_600), 1_000),
        Duration::from_secs(3_600)
    );
    // Past due: the minimum, not a busy loop.
    assert_eq!(attest::refresh_wait(&cfg, Some(10), 1_000), cfg.min_refresh);
    // Far away or unknown: at most the maximum.
    assert_eq!(
        attest::refresh_wait(&cfg, Some(u64::MAX), 1_000),
        cfg.max_refresh
    );
    assert_eq!(attest::refresh_wait(&cfg, None, 1_000), cfg.max_refresh);
}

/// An app's quote through the helper on `socket` (what makes a hardware helper publish its
/// platform evidence).
fn app_quote(socket: &Path) -> Vec<u8> {
    let cpu = sgx_sim::SimCpu::load(&aesm_service::sim::sim_dir_for_socket(socket)).unwrap();
    let client = quote_client::AesmClient::new(socket);
    let app = sgx_sim::EnclaveIdentity {
        mr_enclave: [0x42; 32],
        ..sgx_sim::EnclaveIdentity::default()
    };
    aesm_service::client_flow::quote_via_socket(&client, &cpu, &app, &[7; 64])
        .unwrap()
        .quote
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_enclave_the_helper_s_platform_evidence_gives_the_same_attributes() {
    let dir = short_tempdir();
    let platform = platform(dir.path());
    let (socket, _helper) = start_helper(dir.path(), &platform);
    let url = start_pccs(&platform, CollateralOptions::default()).await;
    // The driver's own quote, as on a simulated node.
    let own = attest_once(config(&socket, Some(url.clone()), &platform))
        .await
        .unwrap();
    // As on hardware: no CPU material for the driver.
    let mut hardware = config(&socket, Some(url), &platform);
    hardware.cpu_dir = Some(dir.path().join("no-cpu-material"));
    let evidence = aesm_service::evidence::evidence_path_for_socket(&socket);
    std::fs::remove_file(&evidence).unwrap();
    // Before the helper has quoted for an app: none yet, said as such, not retried soon.
    let err = attest_once(hardware.clone()).await.unwrap_err();
    assert!(matches!(err, AttestError::NoEvidence { .. }), "{err}");
    assert!(!err.is_transient());
    assert!(err.to_string().contains("platform-quote.dat"), "{err}");
    // An app quotes: the helper publishes the platform part, without the app's report.
    let quote = app_quote(&socket);
    let published = std::fs::read(&evidence).unwrap();
    assert!(
        !published.windows(32).any(|w| w == [0x42; 32]),
        "the app's MRENCLAVE is not in the evidence"
    );
    assert_eq!(
        published,
        aesm_service::evidence::redact(&quote).unwrap(),
        "the evidence is the quote's platform part"
    );
    let from_evidence = attest_once(hardware.clone()).await.unwrap();
    assert!(
        from_evidence.collateral_error.is_none(),
        "{:?}",
        from_evidence.collateral_error
    );
    assert_eq!(from_evidence.attestation, own.attestation);
    assert_eq!(
        from_evidence.attestation.tcb_status,
        Some(TcbStatus::UpToDate)
    );
    assert_eq!(from_evidence.attestation.cpu_svn, Some(TCB));
    assert_eq!(from_evidence.refresh_at, own.refresh_at);

    // Evidence under another root does not verify: the platform without a status, and why.
    let other =
        SimPlatform::open_or_init(&dir.path().join("other"), &InitOptions::default()).unwrap();
    hardware.root = Some(TrustAnchor::from_pem_or_der(other.root_ca_der()).unwrap());
    let attested = attest_once(hardware.clone()).await.unwrap();
    assert_eq!(attested.attestation.fmspc, Some(FMSPC));
    assert_eq!(attested.attestation.tcb_status, None);
    assert!(matches!(
        attested.collateral_error,
        Some(AttestError::Verify(_))
    ));

    // A whole quote put where evidence belongs is refused, not verified without its signature.
    hardware.root = Some(TrustAnchor::from_pem_or_der(platform.root_ca_der()).unwrap());
    std::fs::write(&evidence, &quote).unwrap();
    let attested = attest_once(hardware.clone()).await.unwrap();
    assert_eq!(attested.attestation.tcb_status, None);
    assert!(
        matches!(
            attested.collateral_error,
            Some(AttestError::Verify(
                dcap_verify::VerifyError::NotPlatformEvidence(_)
            ))
        ),
        "{:?}",
        attested.collateral_error
    );
    // Garbage is a clear error.
    std::fs::write(&evidence, b"garbage").unwrap();
    let err = attest_once(hardware).await.unwrap_err();
    assert!(matches!(err, AttestError::Malformed(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_hardware_the_loop_attests_once_the_helper_publishes_its_evidence() {
    let dir = short_tempdir();
    let platform = platform(dir.path());
    let url = start_pccs(&platform, CollateralOptions::default()).await;
    let (socket, _helper) = start_helper(dir.path(), &platform);
    let evidence = aesm_service::evidence::evidence_path_for_socket(&socket);
    assert!(!evidence.exists());
    let mut hardware = config(&socket, Some(url), &platform);
    hardware.cpu_dir = Some(dir.path().join("no-cpu-material"));
    // Without the evidence, the next full attempt would be an hour away: only the driver
    // looking for the file (every `retry`) can publish within the test's bound.
    hardware.max_retry = Duration::from_secs(3600);
    let mut running = RunningLoop::start(hardware);
    // The first attempt finds no evidence; then an app quotes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(*running.attributes.borrow(), Attestation::default());
    let socket_for_app = socket.clone();
    tokio::task::spawn_blocking(move || app_quote(&socket_for_app))
        .await
        .unwrap();
    assert!(evidence.exists());
    let published = running
        .published_with_status("the attributes were not published once the evidence appeared")
        .await;
    assert_eq!(published.fmspc, Some(FMSPC));
    assert_eq!(published.tcb_status, Some(TcbStatus::UpToDate));
    running.stop().await;
}

//! A quote helper on a temp socket, served by a runtime on its own thread, plus raw-frame helpers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aesm_protocol::frame::{read_frame, write_frame};
use aesm_protocol::{AesmRequest, AesmResponse, decode_response, encode_request};
use aesm_service::{BackgroundServer, Dispatcher, Metrics, ServerConfig, SimBackend};
use sgx_sim::{CollateralOptions, InitOptions, SimCpu, SimPlatform};

pub struct Helper {
    pub dir: Option<tempfile::TempDir>,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub platform: Arc<SimPlatform>,
    pub metrics: Metrics,
    registry: prometheus_client::registry::Registry,
    server: Option<BackgroundServer>,
}

pub fn short_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("qh")
        .tempdir_in("/tmp")
        .unwrap()
}

impl Helper {
    /// A helper with a fresh state dir and default limits.
    pub fn start() -> Self {
        Self::start_with(ServerConfig::default(), None)
    }

    /// A helper with `config`, reusing `state_dir` when given (else a fresh one in the temp dir).
    pub fn start_with(config: ServerConfig, state_dir: Option<&Path>) -> Self {
        let dir = short_tempdir();
        let socket = dir.path().join("aesmd/aesm.socket");
        let state_dir = state_dir
            .map(Path::to_owned)
            .unwrap_or_else(|| dir.path().join("state"));
        let platform =
            Arc::new(SimPlatform::open_or_init(&state_dir, &InitOptions::default()).unwrap());
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Metrics::new(&mut registry);
        let dispatcher = Dispatcher::new(Arc::new(SimBackend::new(Arc::clone(&platform))));
        let server = BackgroundServer::start(&socket, dispatcher, config, metrics.clone()).unwrap();
        platform
            .publish_cpu(&aesm_service::sim::sim_dir_for_socket(&socket))
            .unwrap();
        Self {
            dir: Some(dir),
            socket,
            state_dir,
            platform,
            metrics,
            registry,
            server: Some(server),
        }
    }

    pub fn cpu(&self) -> SimCpu {
        SimCpu::load(&aesm_service::sim::sim_dir_for_socket(&self.socket)).unwrap()
    }

    /// The metrics in Prometheus text form.
    pub fn metrics_text(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        text
    }

    pub fn client(&self) -> quote_client::AesmClient {
        quote_client::AesmClient::new(&self.socket)
    }

    /// Stops the server and waits for it; returns what `serve` returned and the temp dir (still
    /// there, so that what the server left behind can be inspected).
    pub fn stop(mut self) -> (std::io::Result<()>, tempfile::TempDir) {
        let result = self.shutdown();
        (result, self.dir.take().unwrap())
    }

    fn shutdown(&mut self) -> std::io::Result<()> {
        self.server.take().map_or(Ok(()), BackgroundServer::stop)
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Sends `request` on a fresh connection and decodes the reply to it.
pub fn transact(socket: &Path, request: &AesmRequest) -> AesmResponse {
    let body = raw_exchange(socket, &encode_request(request)).expect("a reply");
    decode_response(&body, request.kind()).unwrap()
}

/// Writes one frame with `body`, then reads one reply frame (`None` if the server closed without
/// replying).
pub fn raw_exchange(socket: &Path, body: &[u8]) -> Option<Vec<u8>> {
    let mut stream = connect(socket);
    write_frame(&mut stream, body).unwrap();
    read_frame(&mut stream, 1 << 20).unwrap()
}

pub fn connect(socket: &Path) -> UnixStream {
    let stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection; returns what arrived.
pub fn read_to_close(stream: &mut UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    out
}

pub fn write_raw(stream: &mut UnixStream, bytes: &[u8]) {
    stream.write_all(bytes).unwrap();
}

/// The sim collateral in dcap-qvl's form and the sim root.
pub fn verifier_inputs(
    platform: &SimPlatform,
    options: &CollateralOptions,
) -> (Vec<u8>, dcap_qvl::QuoteCollateralV3) {
    let collateral = platform.collateral(options).unwrap();
    let qvl = serde_json::from_str(&collateral.qvl_json()).unwrap();
    (collateral.root_ca_der.clone(), qvl)
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Verifies `quote` with dcap-qvl against the sim root and collateral; returns the TCB status.
pub fn verify_with_qvl(platform: &SimPlatform, quote: &[u8]) -> Result<String, String> {
    let (root, collateral) = verifier_inputs(platform, &CollateralOptions::default());
    dcap_qvl::verify::QuoteVerifier::new(root)
        .verify(quote, &collateral, now_secs())
        .map(|v| v.status)
        .map_err(|e| format!("{e:?}"))
}

/// Verifies with Intel's production root: must fail for simulated quotes.
pub fn verify_with_intel_root(platform: &SimPlatform, quote: &[u8]) -> Result<String, String> {
    let (_, collateral) = verifier_inputs(platform, &CollateralOptions::default());
    dcap_qvl::verify::QuoteVerifier::new_prod()
        .verify(quote, &collateral, now_secs())
        .map(|v| v.status)
        .map_err(|e| format!("{e:?}"))
}

//! Test helpers: the built library, an in-process PCCS over a simulated platform (and stand-ins
//! for Azure's THIM and for TDX collateral), each recording the requests it saw, and the C test
//! program.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use pccs::{CollateralSource, SimSource};
use sgx_sim::{InitOptions, SimPlatform};

/// `target/<profile>/deps/libdcap_quoteprov.so`, built by cargo for this package's tests.
pub fn built_library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let library = deps.join("libdcap_quoteprov.so");
    assert!(
        library.is_file(),
        "{} not found (cargo builds it for this package's tests)",
        library.display()
    );
    library
}

/// A simulated platform and the collateral source over it.
pub struct Sim {
    pub dir: tempfile::TempDir,
    pub platform: Arc<SimPlatform>,
    pub source: Arc<SimSource>,
}

impl Sim {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let platform = Arc::new(
            SimPlatform::open_or_init(&dir.path().join("state"), &InitOptions::default()).unwrap(),
        );
        let source = Arc::new(SimSource::new(Arc::clone(&platform)));
        Self {
            dir,
            platform,
            source,
        }
    }
}

/// A request a test server saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub query: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<String> {
        query_param(&self.query, name)
    }
}

/// The first value of `name` in a percent-encoded query.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(&text.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key) == name).then(|| decode(value))
    })
}

/// The PCCS API served over HTTP on 127.0.0.1 from a runtime thread, as `confcom pccs` serves it
/// (or other routes, see [`Pccs::serve`]); every request is recorded. Stopped by [`Pccs::stop`]
/// or on drop.
pub struct Pccs {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pccs {
    pub fn start(source: Arc<dyn CollateralSource>) -> Self {
        Self::serve(pccs::routes(source, pccs::RouteOptions::default(), |_| {}))
    }

    /// Serves `routes`, recording each request.
    pub fn serve(routes: ops_http::ExtraRoutes) -> Self {
        Self::serve_with(routes, None)
    }

    /// Serves `routes` over TLS with `tls` (see [`LocalhostCerts`]), recording each request.
    pub fn serve_tls(routes: ops_http::ExtraRoutes, tls: Arc<rustls::ServerConfig>) -> Self {
        Self::serve_with(routes, Some(tls))
    }

    fn serve_with(routes: ops_http::ExtraRoutes, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let routes = ops_http::ExtraRoutes::new(move |path, query, headers| {
            log.lock().unwrap().push(Seen {
                path: path.to_owned(),
                query: query.unwrap_or_default().to_owned(),
                headers: headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
            });
            routes.call(path, query, headers)
        });
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let readiness = ops_http::Readiness::new();
                readiness.set_ready(true);
                let registry = Arc::new(prometheus_client::registry::Registry::default());
                let stopped = async {
                    let _ = stop_rx.await;
                };
                match tls {
                    None => ops_http::serve(listener, registry, readiness, Some(routes), stopped)
                        .await
                        .unwrap(),
                    Some(tls) => ops_http::serve_tls(
                        listener,
                        tls,
                        registry,
                        readiness,
                        Some(routes),
                        ops_http::Limits::default(),
                        stopped,
                    )
                    .await
                    .unwrap(),
                }
            });
        });
        let addr = addr_rx.recv().unwrap();
        Self {
            addr,
            seen,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The v4 base URL.
    pub fn url(&self) -> String {
        format!("http://{}/sgx/certification/v4/", self.addr)
    }

    /// The v4 base URL over HTTPS, naming the server `localhost` (the name of [`LocalhostCerts`]).
    pub fn https_url(&self) -> String {
        format!(
            "https://localhost:{}/sgx/certification/v4/",
            self.addr.port()
        )
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The requests seen so far whose path ends with `route`.
    pub fn seen_at(&self, route: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path.ends_with(route))
            .collect()
    }

    /// Forgets the requests seen so far.
    pub fn forget(&self) {
        self.seen.lock().unwrap().clear();
    }

    /// Stops serving; the port refuses connections afterwards.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Pccs {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private CA and a serving certificate for `localhost` under it, made as `confcom pccs certs`
/// makes them for a Service (`ca.crt`, `tls.crt`, `tls.key`).
pub struct LocalhostCerts {
    pub dir: tempfile::TempDir,
}

impl LocalhostCerts {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let request = addon::certs::CertRequest {
            service: "localhost".to_owned(),
            ..addon::certs::CertRequest::default()
        };
        assert!(request.dns_names().contains(&"localhost".to_owned()));
        addon::certs::ensure_dir(dir.path(), &request, time::OffsetDateTime::now_utc(), false)
            .unwrap();
        Self { dir }
    }

    /// The CA certificate, PEM.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The server's TLS configuration, and the count of TLS handshakes it has begun (each client
    /// connection, whether or not the client then trusts the certificate).
    pub fn server_config(&self) -> (Arc<rustls::ServerConfig>, Arc<AtomicUsize>) {
        let mut config = addon::server::tls_config_from_pem_files(
            &self.dir.path().join("tls.crt"),
            &self.dir.path().join("tls.key"),
        )
        .unwrap();
        let handshakes = Arc::new(AtomicUsize::new(0));
        config.cert_resolver = Arc::new(CountingResolver {
            inner: Arc::clone(&config.cert_resolver),
            count: Arc::clone(&handshakes),
        });
        (Arc::new(config), handshakes)
    }
}

/// Counts the client hellos a server answers with its certificate.
#[derive(Debug)]
struct CountingResolver {
    inner: Arc<dyn rustls::server::ResolvesServerCert>,
    count: Arc<AtomicUsize>,
}

impl rustls::server::ResolvesServerCert for CountingResolver {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.inner.resolve(hello)
    }
}

/// Where Azure's THIM serves PCK certificates (on the host's metadata address).
pub const THIM_PREFIX: &str = "/metadata/THIM/sgx/certification/v4/";
/// What THIM wants: a `metadata: true` header and this `api-version`.
pub const THIM_API_VERSION: &str = "2021-07-22-preview";

/// A stand-in for Azure's THIM over `source`: `pckcert` under [`THIM_PREFIX`], refused (`400`)
/// without the `metadata: true` header or the `api-version` parameter; the certificate comes as
/// THIM's JSON body (`pckCert`, the percent-encoded `sgx-Pck-Certificate-Issuer-Chain`,
/// `sgx-Tcbm`, …), without the PCS headers.
pub fn thim_routes(source: Arc<dyn CollateralSource>) -> ops_http::ExtraRoutes {
    ops_http::ExtraRoutes::new(move |path, query, headers| {
        let route = path.strip_prefix(THIM_PREFIX)?;
        if route != "pckcert" {
            return None;
        }
        let metadata = headers.get("metadata").and_then(|v| v.to_str().ok());
        let version = query_param(query.unwrap_or_default(), "api-version");
        if metadata != Some("true") || version.as_deref() != Some(THIM_API_VERSION) {
            return Some(ops_http::Response::new(
                400,
                "application/json",
                br#"{"error":"metadata header or api-version missing"}"#.to_vec(),
            ));
        }
        let reply = pccs::api::handle(source.as_ref(), "/sgx/certification/v4/pckcert", query)?;
        if reply.status != 200 {
            return Some(reply.into_response());
        }
        let header = |name: &str| reply.header(name).unwrap_or_default().to_owned();
        let body = serde_json::json!({
            "pckCert": String::from_utf8(reply.body.clone()).unwrap(),
            "sgx-Pck-Certificate-Issuer-Chain": header("SGX-PCK-Certificate-Issuer-Chain"),
            "sgx-Tcbm": header("SGX-TCBm"),
            "sgx-Fmspc": header("SGX-FMSPC"),
            "sgx-Pck-Certificate-Ca-Type": header("SGX-PCK-Certificate-CA-Type"),
            "cacheMaxAge": "86400",
        });
        Some(ops_http::Response::ok(
            "application/json",
            body.to_string().into_bytes(),
        ))
    })
}

/// The TDX documents of the stand-in of [`tdx_routes`].
pub struct TdxDocs {
    pub fmspc: [u8; 6],
    pub tcb_info: Vec<u8>,
    pub tcb_info_issuer_chain: String,
    pub qe_identity: Vec<u8>,
    pub qe_identity_issuer_chain: String,
}

/// The PCCS API over `source`, plus a stand-in for TDX collateral: `/tdx/certification/v4/tcb`
/// (for `docs.fmspc` only; `404` for any other) and `/tdx/certification/v4/qe/identity`.
pub fn tdx_routes(source: Arc<dyn CollateralSource>, docs: TdxDocs) -> ops_http::ExtraRoutes {
    let sgx = pccs::routes(source, pccs::RouteOptions::default(), |_| {});
    ops_http::ExtraRoutes::new(move |path, query, headers| {
        let Some(route) = path.strip_prefix("/tdx/certification/v4/") else {
            return sgx.call(path, query, headers);
        };
        let chain = |pem: &str| pccs::api::encode_chain(pem);
        let mut response = match route {
            "tcb" => {
                let fmspc = query_param(query.unwrap_or_default(), "fmspc").unwrap_or_default();
                if !fmspc.eq_ignore_ascii_case(&hex::encode(docs.fmspc)) {
                    return Some(ops_http::Response::new(
                        404,
                        "text/plain",
                        b"No cache data for this platform.".to_vec(),
                    ));
                }
                let mut r = ops_http::Response::ok("application/json", docs.tcb_info.clone());
                r.headers
                    .push(("TCB-Info-Issuer-Chain", chain(&docs.tcb_info_issuer_chain)));
                r
            }
            "qe/identity" => {
                let mut r = ops_http::Response::ok("application/json", docs.qe_identity.clone());
                r.headers.push((
                    "SGX-Enclave-Identity-Issuer-Chain",
                    chain(&docs.qe_identity_issuer_chain),
                ));
                r
            }
            _ => return None,
        };
        response.headers.push(("Request-ID", "tdx".into()));
        Some(response)
    })
}

/// The C program, compiled once per test process.
pub struct Build {
    /// Holds `libdcap_quoteprov.so.1` (a symlink to the built library) for `LD_LIBRARY_PATH`.
    pub lib_dir: PathBuf,
    pub exe: PathBuf,
}

pub fn build() -> &'static Build {
    static BUILD: OnceLock<Build> = OnceLock::new();
    BUILD.get_or_init(|| {
        let library = built_library();
        let deps = library.parent().unwrap();
        let dir = deps.parent().unwrap().join("quote-provider-c");
        std::fs::create_dir_all(&dir).unwrap();
        // Test processes may run at once: each writes under a private name and renames into place.
        let private = |name: &str| dir.join(format!(".{name}.{}", std::process::id()));
        let soname_link = dir.join("libdcap_quoteprov.so.1");
        let _ = std::fs::remove_file(private("libdcap_quoteprov.so.1"));
        std::os::unix::fs::symlink(&library, private("libdcap_quoteprov.so.1")).unwrap();
        std::fs::rename(private("libdcap_quoteprov.so.1"), &soname_link).unwrap();

        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let exe = dir.join("qpl_client");
        let output = Command::new(&cc)
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1"])
            .arg("-I")
            .arg(crate_dir.join("include"))
            .arg(crate_dir.join("tests/c/qpl_client.c"))
            .arg("-o")
            .arg(private("qpl_client"))
            .arg("-ldl")
            .output()
            .unwrap_or_else(|e| panic!("running {cc}: {e}"));
        assert!(
            output.status.success(),
            "{cc} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::rename(private("qpl_client"), &exe).unwrap();
        Build { lib_dir: dir, exe }
    })
}

/// The C program with the library found through `LD_LIBRARY_PATH` only and an environment with
/// nothing of the caller's QCNL or az-dcap-client settings (the test adds its own).
pub fn command(args: &[&str]) -> Command {
    let build = build();
    let mut command = Command::new(&build.exe);
    command.args(args).env("LD_LIBRARY_PATH", &build.lib_dir);
    for name in [
        "QCNL_CONF_PATH",
        "AZDCAP_BASE_CERT_URL",
        "AZDCAP_COLLATERAL_VERSION",
        "AZDCAP_CACHE",
        "XDG_CACHE_HOME",
        "HOME",
        "TMPDIR",
        "CONFCOM_QPL_LOG",
        // The system's certificate store as rustls-native-certs reads it.
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ] {
        command.env_remove(name);
    }
    command
}

/// Runs the command; the program must reach its end.
pub fn run(mut command: Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub type Lines = BTreeMap<String, BTreeMap<String, String>>;

/// The program's `name key=value ...` lines, by name.
pub fn lines(output: &Output) -> Lines {
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let mut out = BTreeMap::new();
    for line in stdout.lines() {
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else { continue };
        let fields = words
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        out.insert(name.to_owned(), fields);
    }
    out
}

pub fn field<'a>(lines: &'a Lines, name: &str, key: &str) -> &'a str {
    lines
        .get(name)
        .and_then(|l| l.get(key))
        .unwrap_or_else(|| panic!("no {key} for {name} in {lines:?}"))
}

pub fn status(lines: &Lines, name: &str) -> u32 {
    let text = field(lines, name, "status");
    u32::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}

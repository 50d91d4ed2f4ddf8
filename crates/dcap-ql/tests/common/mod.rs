//! The fake DCAP library built for this test run, loaded as `libsgx_dcap_ql.so.1`; its test
//! controls; a quote helper with the dcap backend on a temp socket.
#![allow(dead_code)]

use std::ffi::{CString, c_char};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aesm_service::{BackgroundServer, Dispatcher, Metrics, ServerConfig};
use dcap_ql::{DcapBackend, DcapOptions, RetryPolicy};
use sgx_sim::{CollateralOptions, InitOptions, SimPlatform};

/// Function numbers of the fake's controls.
pub const GET_TARGET_INFO: u32 = 0;
pub const GET_QUOTE_SIZE: u32 = 1;
pub const GET_QUOTE: u32 = 2;
pub const SET_POLICY: u32 = 4;
pub const INIT_QUOTE: u32 = 6;

/// `libfake_dcap_ql.so` as cargo built it for this run: a dev-dependency's cdylib lands in
/// `target/<profile>/deps/`, next to the test executable.
pub fn built_fake() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let lib = deps.join("libfake_dcap_ql.so");
    assert!(lib.is_file(), "{} was not built", lib.display());
    lib
}

pub fn short_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("dq")
        .tempdir_in("/tmp")
        .unwrap()
}

/// A private copy of the fake library named `libsgx_dcap_ql.so.1` (a copy, not a link: the dynamic
/// loader keys loaded objects by file, so each copy has its own state), a simulated platform for
/// it, and a handle on it for the test controls.
pub struct Fake {
    pub dir: tempfile::TempDir,
    pub library: PathBuf,
    pub sim_dir: PathBuf,
    pub platform: Arc<SimPlatform>,
    controls: libloading::Library,
}

impl Fake {
    pub fn new() -> Self {
        let dir = short_tempdir();
        let library = dir.path().join("lib/libsgx_dcap_ql.so.1");
        std::fs::create_dir_all(library.parent().unwrap()).unwrap();
        std::fs::copy(built_fake(), &library).unwrap();
        let sim_dir = dir.path().join("sim");
        let platform =
            Arc::new(SimPlatform::open_or_init(&sim_dir, &InitOptions::default()).unwrap());
        // SAFETY: the fake's initialisers only set up Rust statics.
        let controls = unsafe { libloading::Library::new(&library) }.unwrap();
        let fake = Self {
            dir,
            library,
            sim_dir,
            platform,
            controls,
        };
        fake.set_sim_dir(Some(&fake.sim_dir.clone()));
        fake
    }

    /// Points the fake at a simulated platform (`None`: no device).
    pub fn set_sim_dir(&self, dir: Option<&Path>) {
        let c = dir.map(|d| CString::new(d.as_os_str().as_bytes()).unwrap());
        // SAFETY: the fake exports this control with this signature.
        let f = unsafe {
            self.controls
                .get::<unsafe extern "C" fn(*const c_char) -> u32>(b"fake_dcap_ql_set_sim_dir\0")
        }
        .unwrap();
        let ptr = c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        // SAFETY: NULL or a NUL-terminated string alive for the call.
        assert_eq!(unsafe { f(ptr) }, 0);
    }

    /// The next `times` calls of `function` (0: every call) return `code`.
    pub fn fail(&self, function: u32, code: u32, times: u32) {
        // SAFETY: the fake exports this control with this signature.
        let f = unsafe {
            self.controls
                .get::<extern "C" fn(u32, u32, u32) -> u32>(b"fake_dcap_ql_fail\0")
        }
        .unwrap();
        assert_eq!(f(function, code, times), 0);
    }

    /// Clears the injected failures of `function`.
    pub fn clear(&self, function: u32) {
        self.fail(function, 0, 0);
    }

    /// How often `function` was called.
    pub fn calls(&self, function: u32) -> u64 {
        // SAFETY: the fake exports this control with this signature.
        let f = unsafe {
            self.controls
                .get::<extern "C" fn(u32) -> u64>(b"fake_dcap_ql_calls\0")
        }
        .unwrap();
        f(function)
    }

    /// The enclave load policy last set.
    pub fn policy(&self) -> u32 {
        // SAFETY: the fake exports this control with this signature.
        let f = unsafe {
            self.controls
                .get::<extern "C" fn() -> u32>(b"fake_dcap_ql_policy\0")
        }
        .unwrap();
        f()
    }

    /// Calls the library's own `sgx_qe_set_enclave_load_policy`.
    pub fn set_policy_directly(&self, policy: u32) -> u32 {
        // SAFETY: Intel's signature of the function.
        let f = unsafe {
            self.controls
                .get::<extern "C" fn(u32) -> u32>(b"sgx_qe_set_enclave_load_policy\0")
        }
        .unwrap();
        f(policy)
    }

    /// The backend over this copy, with quick retries.
    pub fn backend(&self) -> DcapBackend {
        DcapBackend::start(&self.library, options()).unwrap()
    }
}

/// Quick BUSY retries: 4 calls, 1 ms apart.
pub fn options() -> DcapOptions {
    DcapOptions {
        retry: RetryPolicy {
            attempts: 4,
            initial_delay: std::time::Duration::from_millis(1),
            max_delay: std::time::Duration::from_millis(1),
        },
        paths: Vec::new(),
        core_init: true,
    }
}

/// A quote helper serving `backend` on `<dir>/aesmd/aesm.socket`, on a runtime of its own thread.
pub struct Helper {
    pub socket: PathBuf,
    _server: BackgroundServer,
}

impl Helper {
    pub fn start(dir: &Path, backend: DcapBackend) -> Self {
        let socket = dir.join("aesmd/aesm.socket");
        let server = BackgroundServer::start(
            &socket,
            Dispatcher::new(Arc::new(backend)),
            ServerConfig::default(),
            Metrics::default(),
        )
        .unwrap();
        Self {
            socket,
            _server: server,
        }
    }

    pub fn client(&self) -> quote_client::AesmClient {
        quote_client::AesmClient::new(&self.socket)
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Verifies `quote` with dcap-qvl against the sim root and collateral; returns the TCB status.
pub fn verify_with_qvl(platform: &SimPlatform, quote: &[u8]) -> Result<String, String> {
    let collateral = platform.collateral(&CollateralOptions::default()).unwrap();
    let qvl: dcap_qvl::QuoteCollateralV3 = serde_json::from_str(&collateral.qvl_json()).unwrap();
    dcap_qvl::verify::QuoteVerifier::new(collateral.root_ca_der.clone())
        .verify(quote, &qvl, now_secs())
        .map(|v| v.status)
        .map_err(|e| format!("{e:?}"))
}

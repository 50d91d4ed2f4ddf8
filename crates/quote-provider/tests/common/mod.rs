//! Test helpers: the built library, an in-process PCCS over a simulated platform, and the C test
//! program.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

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

/// The PCCS API served over HTTP on 127.0.0.1 from a runtime thread, as `confcom pccs` serves it;
/// stopped by [`Pccs::stop`] or on drop.
pub struct Pccs {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pccs {
    pub fn start(source: Arc<dyn CollateralSource>) -> Self {
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
                let routes = pccs::routes(source, pccs::RouteOptions::default(), |_| {});
                let readiness = ops_http::Readiness::new();
                readiness.set_ready(true);
                ops_http::serve(
                    listener,
                    Arc::new(prometheus_client::registry::Registry::default()),
                    readiness,
                    Some(routes),
                    async {
                        let _ = stop_rx.await;
                    },
                )
                .await
                .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        Self {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The v4 base URL.
    pub fn url(&self) -> String {
        format!("http://{}/sgx/certification/v4/", self.addr)
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

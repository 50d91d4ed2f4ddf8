//! Shared by the doctor tests: a quote helper on a temp socket (any backend) and a fake node.
#![allow(dead_code)]

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aesm_service::{BackgroundServer, Dispatcher, Metrics, QuoteBackend, ServerConfig, SimBackend};
use doctor::Options;
use sgx_sim::{InitOptions, SimPlatform};

pub fn short_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("dr")
        .tempdir_in("/tmp")
        .unwrap()
}

/// A quote helper on `<dir>/aesmd/aesm.socket`, served by a runtime on its own thread.
pub struct Helper {
    pub socket: PathBuf,
    pub platform: Arc<SimPlatform>,
    server: Option<BackgroundServer>,
}

impl Helper {
    /// The simulated helper, as `confcom quote-helper --backend sim` runs it.
    pub fn start(dir: &Path) -> Self {
        let platform = Arc::new(
            SimPlatform::open_or_init(&dir.join("state"), &InitOptions::default()).unwrap(),
        );
        let backend = Arc::new(SimBackend::new(Arc::clone(&platform)));
        Self::start_with(dir, backend, platform, true)
    }

    /// Serves `backend`; publishes `platform`'s CPU material next to the socket when `publish`
    /// (what the simulated helper does).
    pub fn start_with(
        dir: &Path,
        backend: Arc<dyn QuoteBackend>,
        platform: Arc<SimPlatform>,
        publish: bool,
    ) -> Self {
        let socket = dir.join("aesmd/aesm.socket");
        let server = BackgroundServer::start(
            &socket,
            Dispatcher::new(backend),
            ServerConfig::default(),
            Metrics::default(),
        )
        .unwrap();
        if publish {
            platform
                .publish_cpu(&aesm_service::sim::sim_dir_for_socket(&socket))
                .unwrap();
        }
        Self {
            socket,
            platform,
            server: Some(server),
        }
    }

    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().unwrap();
        }
    }
}

/// A fake node: in-tree device nodes (plain files stand for them), 64 MiB of EPC on node 0, a
/// cgroup v2 misc controller without `sgx_epc`, and a plugin dir with kubelet's and our sockets.
pub struct FakeNode {
    pub dev: PathBuf,
    pub sys: PathBuf,
    pub plugins: PathBuf,
    _listeners: Vec<UnixListener>,
}

pub fn fake_node(dir: &Path) -> FakeNode {
    let dev = dir.join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::write(dev.join("sgx_enclave"), b"").unwrap();
    std::fs::write(dev.join("sgx_provision"), b"").unwrap();
    let sys = dir.join("sys");
    let node0 = sys.join("devices/system/node/node0/x86");
    std::fs::create_dir_all(&node0).unwrap();
    std::fs::write(node0.join("sgx_total_bytes"), format!("{}\n", 64 << 20)).unwrap();
    std::fs::create_dir_all(sys.join("fs/cgroup")).unwrap();
    std::fs::write(sys.join("fs/cgroup/misc.capacity"), "res_a 10\n").unwrap();
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let listeners = [
        "kubelet.sock",
        "confcom-sgx_epc_mem_in_MiB.sock",
        "confcom-enclave.sock",
        "confcom-provision.sock",
    ]
    .iter()
    .map(|n| UnixListener::bind(plugins.join(n)).unwrap())
    .collect();
    std::fs::write(
        plugins.join("kubelet_internal_checkpoint"),
        r#"{"Data":{"PodDeviceEntries":null,"RegisteredDevices":{"kubernetes.azure.com/sgx_epc_mem_in_MiB":["1"]}},"Checksum":1}"#,
    )
    .unwrap();
    FakeNode {
        dev,
        sys,
        plugins,
        _listeners: listeners,
    }
}

pub fn options(node: &FakeNode, socket: &Path) -> Options {
    Options {
        dev_root: node.dev.clone(),
        sysfs_root: node.sys.clone(),
        socket: socket.to_owned(),
        plugin_dir: node.plugins.clone(),
        ..Options::default()
    }
}

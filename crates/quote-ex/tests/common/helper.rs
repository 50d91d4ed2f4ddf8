//! The quote helper (`aesm_service` with the simulated platform) on a temp socket, served by a
//! tokio runtime on its own thread. Shared by the end-to-end tests and the benchmark.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use aesm_service::{BackgroundServer, Dispatcher, Metrics, ServerConfig, SimBackend};
use sgx_sim::{InitOptions, SimCpu, SimPlatform};

/// The quote helper on a temp socket, served by a runtime on its own thread.
pub struct Helper {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub platform: Arc<SimPlatform>,
    _server: BackgroundServer,
}

impl Helper {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("qx")
            .tempdir_in("/tmp")
            .unwrap();
        let socket = dir.path().join("aesmd/aesm.socket");
        let platform = Arc::new(
            SimPlatform::open_or_init(&dir.path().join("state"), &InitOptions::default()).unwrap(),
        );
        let server = BackgroundServer::start(
            &socket,
            Dispatcher::new(Arc::new(SimBackend::new(Arc::clone(&platform)))),
            ServerConfig::default(),
            Metrics::default(),
        )
        .unwrap();
        platform
            .publish_cpu(&aesm_service::sim::sim_dir_for_socket(&socket))
            .unwrap();
        Helper {
            dir,
            socket,
            platform,
            _server: server,
        }
    }

    /// The simulated CPU as an app on the node sees it (published next to the socket).
    pub fn cpu(&self) -> SimCpu {
        SimCpu::load(&aesm_service::sim::sim_dir_for_socket(&self.socket)).unwrap()
    }
}

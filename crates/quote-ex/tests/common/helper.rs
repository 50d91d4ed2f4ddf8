//! The quote helper (`aesm_service` with the simulated platform) on a temp socket, served by a
//! tokio runtime on its own thread. Shared by the end-to-end tests and the benchmark.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use aesm_service::{Dispatcher, Metrics, ServerConfig, SimBackend, listen, serve};
use sgx_sim::{InitOptions, SimCpu, SimPlatform};
use tokio::sync::oneshot;

/// The quote helper on a temp socket, served by a runtime on its own thread.
pub struct Helper {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub platform: Arc<SimPlatform>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
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
        let (std_listener, socket_file) = listen::bind_socket(&socket, 0o777).unwrap();
        platform
            .publish_cpu(&aesm_service::sim::sim_dir_for_socket(&socket))
            .unwrap();
        let dispatcher = Dispatcher::new(Arc::new(SimBackend::new(Arc::clone(&platform))));
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime
                .block_on(async move {
                    let listener = tokio::net::UnixListener::from_std(std_listener)?;
                    serve(
                        vec![listener],
                        dispatcher,
                        ServerConfig::default(),
                        Metrics::default(),
                        async move {
                            let _ = stopped.await;
                        },
                    )
                    .await
                })
                .unwrap();
            drop(socket_file);
        });
        Helper {
            dir,
            socket,
            platform,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The simulated CPU as an app on the node sees it (published next to the socket).
    pub fn cpu(&self) -> SimCpu {
        SimCpu::load(&aesm_service::sim::sim_dir_for_socket(&self.socket)).unwrap()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

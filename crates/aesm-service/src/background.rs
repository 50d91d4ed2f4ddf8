//! The quote helper on a thread of its own, for synchronous callers that need a live AESM socket:
//! `confcom demo`, and the tests of the crates built around the socket.

use std::io;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::listen::{self, ListenError};
use crate::{Dispatcher, Metrics, ServerConfig, serve};

/// A running quote helper; dropping it stops the server.
#[derive(Debug)]
pub struct BackgroundServer {
    socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl BackgroundServer {
    /// Binds `socket` (its directory created with mode 0755, the socket 0777, as aesmd does) and
    /// serves `dispatcher` on a two-worker tokio runtime of a new thread.
    pub fn start(
        socket: &Path,
        dispatcher: Dispatcher,
        config: ServerConfig,
        metrics: Metrics,
    ) -> Result<Self, ListenError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|source| ListenError::Io {
                action: "cannot start the runtime for",
                path: socket.to_owned(),
                source,
            })?;
        Self::start_on(runtime, socket, dispatcher, config, metrics)
    }

    /// As [`BackgroundServer::start`], on `runtime` (driven from a new thread).
    pub fn start_on(
        runtime: tokio::runtime::Runtime,
        socket: &Path,
        dispatcher: Dispatcher,
        config: ServerConfig,
        metrics: Metrics,
    ) -> Result<Self, ListenError> {
        let (std_listener, socket_file) = listen::bind_socket(socket, 0o777)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("aesm-server".into())
            .spawn(move || {
                let result = runtime.block_on(async move {
                    let listener = tokio::net::UnixListener::from_std(std_listener)?;
                    serve(vec![listener], dispatcher, config, metrics, async move {
                        let _ = stopped.await;
                    })
                    .await
                });
                // Removes the socket file once nothing serves it any more.
                drop(socket_file);
                result
            })
            .map_err(|source| ListenError::Io {
                action: "cannot start the server thread for",
                path: socket.to_owned(),
                source,
            })?;
        Ok(Self {
            socket: socket.to_owned(),
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The socket it serves.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Stops accepting, finishes the requests in flight, removes the socket and returns what the
    /// server returned.
    pub fn stop(mut self) -> io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the AESM server thread panicked")),
        }
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

//! Unix sockets: our listening sockets (bounded accept), the inotify watch on their directories,
//! and the client side of kubelet.sock.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use hyper_util::rt::TokioIo;
use inotify::{EventStream, Inotify, WatchMask};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tonic::transport::server::{Connected, Router, UdsConnectInfo};
use tonic::transport::{Endpoint, Uri};

use crate::Error;
use crate::proto::RegisterRequest;
use crate::proto::registration_client::RegistrationClient;

/// Longest Unix socket path (`sun_path` holds 108 bytes with the terminating NUL).
pub const MAX_SOCKET_PATH: usize = 107;
/// Connections served at once on one plugin socket (kubelet uses one).
pub const MAX_CONNECTIONS: usize = 16;

/// Identity of a file: device, inode and change time. A socket that was deleted and recreated has a
/// new one even when the file system hands out the same inode number again.
pub type FileId = (u64, u64, i64, i64);

/// The identity of `path`, if it exists.
pub fn file_id(path: &Path) -> Option<FileId> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.ctime(), m.ctime_nsec()))
}

/// Check a socket path's length.
pub fn check_socket_path(path: &Path) -> Result<(), Error> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(Error::SocketPathTooLong {
            path: path.to_owned(),
            len,
        });
    }
    Ok(())
}

/// Listen on `path`. A stale socket (nobody accepting) is replaced; a live one, or a file that is
/// not a socket, is an error.
pub async fn bind(path: &Path) -> Result<UnixListener, Error> {
    check_socket_path(path)?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).await.is_ok() {
                return Err(Error::SocketInUse {
                    path: path.to_owned(),
                });
            }
            tracing::info!(path = %path.display(), "removing stale socket");
            std::fs::remove_file(path).map_err(|source| Error::Listen {
                path: path.to_owned(),
                source,
            })?;
        }
        Ok(_) => {
            return Err(Error::NotASocket {
                path: path.to_owned(),
            });
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(Error::Listen {
                path: path.to_owned(),
                source,
            });
        }
    }
    UnixListener::bind(path).map_err(|source| Error::Listen {
        path: path.to_owned(),
        source,
    })
}

/// Remove `path` if it is still the file `id` (never someone else's newer socket).
pub fn remove_if_same(path: &Path, id: Option<FileId>) {
    if id.is_some()
        && file_id(path) == id
        && let Err(err) = std::fs::remove_file(path)
    {
        tracing::warn!(path = %path.display(), error = %err, "cannot remove our socket");
    }
}

/// A connection holding one of the listener's connection slots.
pub struct LimitedStream {
    stream: UnixStream,
    _slot: OwnedSemaphorePermit,
}

impl Connected for LimitedStream {
    type ConnectInfo = UdsConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Accepted connections of `listener`, at most `max` at once (more wait in the backlog). Accept
/// errors are logged and retried, so the stream never ends on its own.
pub fn incoming(
    listener: UnixListener,
    max: usize,
) -> impl Stream<Item = io::Result<LimitedStream>> + Send + 'static {
    let slots = Arc::new(Semaphore::new(max.max(1)));
    futures_util::stream::unfold((listener, slots), |(listener, slots)| async move {
        loop {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return None;
            };
            match listener.accept().await {
                Ok((stream, _)) => {
                    return Some((
                        Ok(LimitedStream {
                            stream,
                            _slot: slot,
                        }),
                        (listener, slots),
                    ));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "accept on plugin socket failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    })
}

/// Serve `router` on `listener` (at most [`MAX_CONNECTIONS`] connections at once) until
/// `stopping` turns true or is dropped; a server failure is logged as the `what` gRPC server's.
pub async fn serve_until_stopped(
    router: Router,
    listener: UnixListener,
    mut stopping: watch::Receiver<bool>,
    what: &str,
) {
    let result = router
        .serve_with_incoming_shutdown(incoming(listener, MAX_CONNECTIONS), async move {
            let _ = stopping.wait_for(|s| *s).await;
        })
        .await;
    if let Err(err) = result {
        tracing::error!(error = %err, "{what} gRPC server failed");
    }
}

/// An inotify event stream for `dirs` (events in `mask`), or `None` when `enabled` is false,
/// inotify is unavailable or none of the directories can be watched: the caller then relies on
/// its periodic checks, and may try again later.
pub fn open_watch(
    enabled: bool,
    dirs: &[PathBuf],
    mask: WatchMask,
) -> Option<EventStream<[u8; 4096]>> {
    if !enabled {
        return None;
    }
    let inotify = match Inotify::init() {
        Ok(inotify) => inotify,
        Err(err) => {
            tracing::warn!(error = %err, "inotify unavailable; relying on periodic checks");
            return None;
        }
    };
    let watching = dirs
        .iter()
        .filter(|dir| inotify.watches().add(dir, mask).is_ok())
        .count();
    if watching == 0 {
        return None;
    }
    inotify.into_event_stream([0u8; 4096]).ok()
}

/// A gRPC channel over the Unix socket `path` (kubelet dials with `:authority localhost`; so do we).
pub async fn unix_channel(
    path: PathBuf,
    connect_timeout: Duration,
) -> Result<tonic::transport::Channel, Error> {
    let connector = tower::service_fn(move |_: Uri| {
        let path = path.clone();
        async move { Ok::<_, io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
    });
    Endpoint::from_static("http://localhost")
        .connect_timeout(connect_timeout)
        .connect_with_connector(connector)
        .await
        .map_err(|err| Error::KubeletUnreachable {
            reason: error_chain(&err),
        })
}

/// Register with kubelet on `kubelet_sock`, waiting at most `timeout` for the whole call.
pub async fn register(
    kubelet_sock: &Path,
    request: RegisterRequest,
    timeout: Duration,
) -> Result<(), Error> {
    let call = async {
        let channel = unix_channel(kubelet_sock.to_owned(), timeout).await?;
        RegistrationClient::new(channel)
            .register(request)
            .await
            .map(|_| ())
            .map_err(|status| Error::RegistrationRejected {
                code: status.code(),
                message: status.message().to_owned(),
            })
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| Error::RegistrationTimeout { timeout })?
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

//! The AESM socket server: [`serve`].
//!
//! One request per connection, as aesmd: read one length-prefixed request, answer it, close.
//! Undecodable or unknown requests and empty connections are closed without a reply.
//!
//! Bounds: a frame cap checked before allocating, a deadline for the whole request to arrive and
//! one for the reply to leave, and a semaphore bounding open connections (further clients wait in
//! the listen backlog, which the kernel serves in arrival order). An idle client holds its slot at
//! most [`ServerConfig::request_timeout`].
//!
//! Requests are answered inline on the runtime's worker threads when the backend allows it
//! ([`QuoteBackend::runs_inline`](crate::QuoteBackend::runs_inline)): a simulated quote costs one
//! ECDSA signature, cheaper than a hand-off to the blocking pool. Slow backends run on the blocking
//! pool instead.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aesm_protocol::frame::{read_frame_async, write_frame_async};
use aesm_protocol::{AesmRequest, FrameError, decode_request, encode_response};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::dispatch::Dispatcher;
use crate::metrics::{DropReason, Metrics};

/// Limits of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Connections open at once, over all listeners.
    pub max_connections: usize,
    /// Largest request body accepted (checked on the length prefix, before allocating).
    pub max_request_frame: u32,
    /// Largest `GetQuoteEx` buffer served; larger gets `AESM_PARAMETER_ERROR`.
    pub max_quote_buffer: u32,
    /// Time from accepting a connection until its whole request has arrived.
    pub request_timeout: Duration,
    /// Time allowed to write the reply.
    pub write_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_connections: 256,
            // The largest legitimate request (GetQuoteEx with report info) is about 1.7 KB.
            max_request_frame: 16 * 1024,
            max_quote_buffer: crate::dispatch::DEFAULT_MAX_QUOTE_BUFFER,
            request_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
        }
    }
}

/// Serves AESM requests on `listeners` with `dispatcher` until `shutdown` completes.
///
/// After `shutdown`, no connection is accepted; connections still waiting for their request are
/// closed, requests being answered are finished, and the function returns. It returns an error
/// only if a listener fails for good (transient accept errors such as a full file table are logged
/// and survived).
pub async fn serve(
    listeners: Vec<UnixListener>,
    dispatcher: Dispatcher,
    config: ServerConfig,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    if listeners.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no listener to serve",
        ));
    }
    let dispatcher = dispatcher.with_max_quote_buffer(config.max_quote_buffer);
    let inline = dispatcher.backend().runs_inline();
    let shared = Arc::new(Shared {
        dispatcher,
        config,
        metrics,
        inline,
    });
    let max = config.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut loops = JoinSet::new();
    for listener in listeners {
        loops.spawn(accept_loop(
            listener,
            Arc::clone(&shared),
            Arc::clone(&slots),
            stop_rx.clone(),
        ));
    }

    let mut shutdown = std::pin::pin!(shutdown);
    let mut result = Ok(());
    tokio::select! {
        () = &mut shutdown => {}
        Some(ended) = loops.join_next() => {
            result = match ended {
                Ok(r) => r,
                Err(e) => Err(io::Error::other(format!("accept loop failed: {e}"))),
            };
        }
    }
    let _ = stop_tx.send(true);
    while let Some(ended) = loops.join_next().await {
        if let Ok(Err(e)) = ended {
            tracing::warn!(error = %e, "AESM listener failed during shutdown");
        }
    }
    // Every connection holds a slot until it is done: taking them all waits for in-flight requests.
    let u32_max = u32::try_from(max).unwrap_or(u32::MAX);
    let _all = slots.acquire_many(u32_max).await;
    result
}

struct Shared {
    dispatcher: Dispatcher,
    config: ServerConfig,
    metrics: Metrics,
    /// Whether the backend's calls run on the worker threads (else on the blocking pool).
    inline: bool,
}

async fn accept_loop(
    listener: UnixListener,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    loop {
        // `biased`: the work comes first, so that the shutdown signal is only registered with
        // when there is nothing to do (registering costs a lock shared by every connection).
        let permit = tokio::select! {
            biased;
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return Ok(()),
            },
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        if *stop.borrow() {
            return Ok(());
        }
        let accepted = tokio::select! {
            biased;
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if is_transient(&e) => {
                tracing::warn!(error = %e, "AESM accept failed, retrying");
                if is_resource_exhaustion(&e) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        let shared = Arc::clone(&shared);
        let stop = stop.clone();
        tokio::spawn(async move {
            shared.metrics.connection_opened();
            handle_connection(stream, &shared, stop).await;
            shared.metrics.connection_closed();
            drop(permit);
        });
    }
}

async fn handle_connection(
    mut stream: UnixStream,
    shared: &Shared,
    mut stop: watch::Receiver<bool>,
) {
    let (uid, pid) = match stream.peer_cred() {
        Ok(cred) => (Some(cred.uid()), cred.pid()),
        Err(_) => (None, None),
    };
    let config = &shared.config;
    let metrics = &shared.metrics;

    let read = tokio::time::timeout(
        config.request_timeout,
        read_frame_async(&mut stream, config.max_request_frame),
    );
    let frame = tokio::select! {
        biased;
        frame = read => frame,
        _ = stop.wait_for(|s| *s) => {
            metrics.dropped(DropReason::Shutdown);
            return;
        }
    };
    let body = match frame {
        Ok(Ok(Some(body))) => body,
        Ok(Ok(None)) => {
            metrics.dropped(DropReason::Empty);
            tracing::trace!(peer.uid = uid, peer.pid = pid, "empty AESM connection");
            return;
        }
        Ok(Err(e)) => {
            let reason = match &e {
                FrameError::FrameTooLarge { .. } => DropReason::FrameTooLarge,
                FrameError::TruncatedPrefix { .. } | FrameError::TruncatedBody { .. } => {
                    DropReason::Truncated
                }
                FrameError::Io(_) | FrameError::TrailingBytes { .. } => DropReason::Io,
            };
            metrics.dropped(reason);
            tracing::debug!(peer.uid = uid, peer.pid = pid, error = %e, "AESM request not read");
            return;
        }
        Err(_) => {
            metrics.dropped(DropReason::Timeout);
            tracing::debug!(
                peer.uid = uid,
                peer.pid = pid,
                timeout = ?config.request_timeout,
                "AESM request did not arrive in time"
            );
            return;
        }
    };
    let request = match decode_request(&body) {
        Ok(r) => r,
        Err(e) => {
            metrics.dropped(DropReason::Undecodable);
            tracing::debug!(
                peer.uid = uid,
                peer.pid = pid,
                error = %e,
                len = body.len(),
                "undecodable AESM request; closing without a reply"
            );
            return;
        }
    };
    metrics.uid(uid);

    let kind = request.kind();
    let is_quote = matches!(request, AesmRequest::GetQuoteEx(_));
    let started = Instant::now();
    let outcome = if shared.inline {
        shared.dispatcher.handle(&request)
    } else {
        let dispatcher = shared.dispatcher.clone();
        match tokio::task::spawn_blocking(move || dispatcher.handle(&request)).await {
            Ok(outcome) => outcome,
            Err(e) => {
                // The backend panicked: answer as aesmd does when a service call fails.
                tracing::error!(rpc = kind.name(), error = %e, "AESM backend call failed");
                crate::dispatch::Outcome {
                    response: aesm_protocol::AesmResponse::error(
                        kind,
                        aesm_protocol::AesmCode::UnexpectedError,
                    ),
                    detail: Some(format!("backend call failed: {e}")),
                }
            }
        }
    };
    let elapsed = started.elapsed();
    let code = outcome.response.error_code();
    if code == 0 && is_quote {
        metrics.quote_duration(elapsed);
    }
    metrics.request(kind.name(), code);
    match &outcome.detail {
        Some(detail) => tracing::debug!(
            rpc = kind.name(),
            peer.uid = uid,
            peer.pid = pid,
            result = code,
            detail = %detail,
            "AESM request refused"
        ),
        None => tracing::debug!(
            rpc = kind.name(),
            peer.uid = uid,
            peer.pid = pid,
            result = code,
            elapsed_us = elapsed.as_micros() as u64,
            "AESM request served"
        ),
    }

    let reply = encode_response(&outcome.response);
    match tokio::time::timeout(config.write_timeout, write_frame_async(&mut stream, &reply)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::debug!(rpc = kind.name(), peer.uid = uid, error = %e, "AESM reply not sent")
        }
        Err(_) => tracing::debug!(rpc = kind.name(), peer.uid = uid, "AESM reply timed out"),
    }
}

fn is_transient(err: &io::Error) -> bool {
    use io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted, WouldBlock};
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || is_resource_exhaustion(err)
}

fn is_resource_exhaustion(err: &io::Error) -> bool {
    // ENOMEM, ENFILE, EMFILE, ENOBUFS on Linux.
    matches!(err.raw_os_error(), Some(12 | 23 | 24 | 105))
}

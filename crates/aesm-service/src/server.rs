//! The AESM socket server: [`serve`].
//!
//! One request per connection, as aesmd: read one length-prefixed request, answer it, close.
//! Undecodable or unknown requests and empty connections are closed without a reply.
//!
//! Bounds: a frame cap checked before allocating, a deadline for the whole request to arrive and
//! one for the reply to leave, and a cap on open connections ([`ServerConfig::max_connections`]).
//! At the cap, the connection that has waited longest for its request is closed to make room
//! (counted as `evicted`), so clients that connect and send nothing cannot make honest ones wait
//! in the listen backlog; a connection being answered is never closed, and only when every one is
//! being answered does a new connection wait for a slot.
//!
//! Each listener is served by one accept loop per worker thread (up to four). A client writes its
//! request right after connecting, so by the time a loop accepts the connection the request has
//! usually arrived whole: the loop then peeks at it with one non-waiting read, answers it, writes
//! the reply and only then takes the request off the socket (so that freeing it wakes no one), all
//! on the spot, with no task, wakeup or timer. Connections whose request is not all there yet, or
//! whose reply does not fit the socket at once, continue in a task of their own under the timeouts
//! above.
//!
//! Requests are answered on the runtime's worker threads when the backend allows it
//! ([`QuoteBackend::runs_inline`](crate::QuoteBackend::runs_inline)): a simulated quote costs one
//! ECDSA signature, cheaper than a hand-off to the blocking pool. Slow backends run on the blocking
//! pool instead.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aesm_protocol::frame::{LEN_PREFIX, complete_frame, encode_frame, read_frame_async};
use aesm_protocol::{
    AesmCode, AesmRequest, AesmResponse, FrameError, decode_request, encode_response,
};
use ops_http::guard::{ConnHandle, ConnLimits, ConnMetrics, Governor, Phase};
use rustix::io::Errno;
use rustix::net::{self, RecvFlags, SendFlags};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::dispatch::{Dispatcher, Outcome};
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
    // The registry that picks which waiting connection to close at the cap. The socket has no
    // client addresses, and the timeouts here are only a backstop behind the server's own.
    let backstop = config.request_timeout.saturating_mul(4);
    let governor = Governor::new(
        "aesm",
        ConnLimits {
            max_connections: max,
            max_pending_per_address: max,
            handshake_timeout: backstop,
            header_timeout: backstop,
            idle_timeout: backstop,
        },
        ConnMetrics::default(),
    );
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut loops = JoinSet::new();
    for listener in listeners {
        let listener = Arc::new(listener);
        for _ in 0..loops_per_listener() {
            loops.spawn(accept_loop(
                Arc::clone(&listener),
                Arc::clone(&shared),
                Arc::clone(&slots),
                governor.clone(),
                stop_rx.clone(),
            ));
        }
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

/// Who is on the other end of a connection (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy)]
struct Peer {
    uid: Option<u32>,
    pid: Option<i32>,
}

impl Peer {
    fn of(stream: &UnixStream) -> Self {
        match stream.peer_cred() {
            Ok(cred) => Self {
                uid: Some(cred.uid()),
                pid: cred.pid(),
            },
            Err(_) => Self {
                uid: None,
                pid: None,
            },
        }
    }
}

/// How many accept loops serve each listener: one per worker thread, so that every worker accepts
/// and answers on its own, but at most [`MAX_ACCEPT_LOOPS`].
fn loops_per_listener() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_workers()
        .clamp(1, MAX_ACCEPT_LOOPS)
}

/// A new connection wakes every loop waiting on its listener, and all but one of them find nothing
/// to accept; four cores' worth of signing is already far beyond what a node asks for.
const MAX_ACCEPT_LOOPS: usize = 4;

/// Size of an accept loop's buffer: a whole frame of the largest request allowed, up to 64 KiB
/// (larger requests, were they allowed, take the task path).
fn first_look_capacity(max_request_frame: u32) -> usize {
    LEN_PREFIX
        .saturating_add(max_request_frame as usize)
        .min(64 * 1024)
}

async fn accept_loop(
    listener: Arc<UnixListener>,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    governor: Governor,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut buf = vec![0u8; first_look_capacity(shared.config.max_request_frame)];
    // Accepting and waiting for a slot both draw on tokio's cooperative budget, so a loop that
    // always finds a connection waiting still yields to the other tasks of its worker.
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        // `biased`: the work comes first, so that the shutdown signal is only registered with
        // when there is nothing to do (registering costs a lock shared by every connection).
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
        // At the cap this closes the connection that has waited longest for its request (its
        // task then ends and frees its slot); with every connection being answered, the new one
        // waits for a slot as before.
        let conn = governor.admit(IpAddr::V4(Ipv4Addr::UNSPECIFIED), Phase::ReadingHead);
        let permit = tokio::select! {
            biased;
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return Ok(()),
            },
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        let conn = match conn {
            Some(conn) => conn,
            None => match governor.admit(IpAddr::V4(Ipv4Addr::UNSPECIFIED), Phase::ReadingHead) {
                Some(conn) => conn,
                // Still every registered connection is being answered: this one waits no more.
                None => {
                    drop(permit);
                    continue;
                }
            },
        };
        shared.metrics.connection_opened();
        let peer = Peer::of(&stream);
        // Clients send their request right after connecting, so it is usually all there by now:
        // then it is answered here, on this worker, without a task, a wakeup or a timer.
        let rest = match first_look(&stream, &mut buf, &shared, peer) {
            FirstLook::Done => None,
            FirstLook::NotYet => Some(Rest::Read),
            FirstLook::Whole(len) => {
                let body = buf.get(LEN_PREFIX..LEN_PREFIX + len).unwrap_or_default();
                let rest = match decode(&shared, body, peer) {
                    None => None,
                    Some(request) if shared.inline => {
                        let reply = answer(&shared, request, peer);
                        send_now(&stream, reply, peer)
                    }
                    Some(request) => Some(Rest::Answer(request)),
                };
                // The request was only peeked at so far. Taking it off the socket now, after the
                // reply, frees its buffer while the client is reading the reply rather than
                // sleeping on the socket: the kernel's "room to write" wakeup of the client, a
                // context switch for nothing on every request, then finds no one to wake.
                consume(&stream, &mut buf, LEN_PREFIX + len);
                rest
            }
        };
        match rest {
            None => {
                shared.metrics.connection_closed();
                drop(conn);
                drop(permit);
            }
            Some(rest) => {
                let shared = Arc::clone(&shared);
                let stop = stop.clone();
                let handle = conn.handle();
                // A request already read is being answered: never evicted.
                let busy = (!matches!(rest, Rest::Read)).then(|| handle.busy());
                tokio::spawn(async move {
                    let work = finish_connection(stream, rest, &shared, peer, stop, handle);
                    if conn.run(work).await.is_none() {
                        shared.metrics.dropped(DropReason::Evicted);
                    }
                    drop(busy);
                    shared.metrics.connection_closed();
                    drop(permit);
                });
            }
        }
    }
}

/// What a first, non-waiting look at a connection's request found.
enum FirstLook {
    /// A whole frame is there, its body `len` bytes after the prefix; it is still on the socket.
    Whole(usize),
    /// The request has not fully arrived; nothing was taken off the socket.
    NotYet,
    /// The connection ends here (closed by the peer, refused frame, error); counted and logged.
    Done,
}

/// What is left to do for a connection that could not be answered at once.
enum Rest {
    /// Read the request, then answer it.
    Read,
    /// Answer this request (off the worker threads: the backend is slow).
    Answer(AesmRequest),
    /// Send the rest of this reply.
    Send(Vec<u8>),
}

/// Peeks at the request without taking it off the socket (`MSG_PEEK`), and without waiting.
fn first_look(stream: &UnixStream, buf: &mut [u8], shared: &Shared, peer: Peer) -> FirstLook {
    let max = shared.config.max_request_frame;
    match net::recv(stream, &mut *buf, RecvFlags::PEEK | RecvFlags::DONTWAIT) {
        Ok((_, 0)) => {
            not_read(shared, peer, None);
            FirstLook::Done
        }
        Ok((n, _)) => match complete_frame(buf.get(..n).unwrap_or_default(), max) {
            Ok(Some(body)) => FirstLook::Whole(body.len()),
            Ok(None) => FirstLook::NotYet,
            Err(e) => {
                // Too large: taken off is the prefix, as a reader that refuses it after reading it
                // would, so that a client that sent nothing more sees a clean close.
                consume(stream, buf, LEN_PREFIX);
                not_read(shared, peer, Some(e));
                FirstLook::Done
            }
        },
        Err(e) if e == Errno::AGAIN || e == Errno::INTR => FirstLook::NotYet,
        Err(e) => {
            not_read(shared, peer, Some(FrameError::Io(e.into())));
            FirstLook::Done
        }
    }
}

/// Takes the `len` bytes of a request looked at with [`first_look`] off the socket, so that the
/// connection closes cleanly (a Unix socket closed with unread data resets its peer).
///
/// Freeing a request's buffer wakes whoever sleeps on the client's socket, because its send
/// buffer has room again. Read at once, the request would wake the client that waits there for
/// the reply, for nothing: a context switch out and back in on every request, and on a busy node
/// an inter-processor interrupt. Taken off after the reply was sent, it finds the client awake.
fn consume(stream: &UnixStream, buf: &mut [u8], len: usize) {
    let dest = match buf.get_mut(..len) {
        Some(dest) => dest,
        None => buf,
    };
    if let Err(e) = net::recv(stream, dest, RecvFlags::DONTWAIT) {
        tracing::trace!(error = %e, "AESM request not taken off the socket");
    }
}

/// Counts and logs a connection closed without a request: `None` when the peer closed it before
/// sending a byte.
fn not_read(shared: &Shared, peer: Peer, error: Option<FrameError>) {
    let Some(e) = error else {
        shared.metrics.dropped(DropReason::Empty);
        tracing::trace!(
            peer.uid = peer.uid,
            peer.pid = peer.pid,
            "empty AESM connection"
        );
        return;
    };
    let reason = match &e {
        FrameError::FrameTooLarge { .. } => DropReason::FrameTooLarge,
        FrameError::TruncatedPrefix { .. } | FrameError::TruncatedBody { .. } => {
            DropReason::Truncated
        }
        FrameError::Io(_) | FrameError::TrailingBytes { .. } => DropReason::Io,
    };
    shared.metrics.dropped(reason);
    tracing::debug!(peer.uid = peer.uid, peer.pid = peer.pid, error = %e, "AESM request not read");
}

/// The rest of a connection that was not answered in the accept loop.
async fn finish_connection(
    mut stream: UnixStream,
    rest: Rest,
    shared: &Shared,
    peer: Peer,
    mut stop: watch::Receiver<bool>,
    guard: ConnHandle,
) {
    // Held while the request is answered, so that the connection is not evicted then.
    let mut _busy = None;
    let request = match rest {
        Rest::Send(reply) => {
            return send(&mut stream, &reply, peer, shared.config.write_timeout).await;
        }
        Rest::Answer(request) => request,
        Rest::Read => {
            let config = &shared.config;
            let read = tokio::time::timeout(
                config.request_timeout,
                read_frame_async(&mut stream, config.max_request_frame),
            );
            let frame = tokio::select! {
                biased;
                frame = read => frame,
                _ = stop.wait_for(|s| *s) => {
                    shared.metrics.dropped(DropReason::Shutdown);
                    return;
                }
            };
            let body = match frame {
                Ok(Ok(Some(body))) => body,
                Ok(Ok(None)) => return not_read(shared, peer, None),
                Ok(Err(e)) => return not_read(shared, peer, Some(e)),
                Err(_) => {
                    shared.metrics.dropped(DropReason::Timeout);
                    tracing::debug!(
                        peer.uid = peer.uid,
                        peer.pid = peer.pid,
                        timeout = ?config.request_timeout,
                        "AESM request did not arrive in time"
                    );
                    return;
                }
            };
            _busy = Some(guard.busy());
            match decode(shared, &body, peer) {
                Some(request) => request,
                None => return,
            }
        }
    };
    let reply = if shared.inline {
        answer(shared, request, peer)
    } else {
        answer_off_workers(shared, request, peer).await
    };
    send(&mut stream, &reply, peer, shared.config.write_timeout).await;
}

/// Decodes a request; an undecodable one is counted, logged and gets no reply.
fn decode(shared: &Shared, body: &[u8], peer: Peer) -> Option<AesmRequest> {
    match decode_request(body) {
        Ok(request) => {
            shared.metrics.uid(peer.uid);
            Some(request)
        }
        Err(e) => {
            shared.metrics.dropped(DropReason::Undecodable);
            tracing::debug!(
                peer.uid = peer.uid,
                peer.pid = peer.pid,
                error = %e,
                len = body.len(),
                "undecodable AESM request; closing without a reply"
            );
            None
        }
    }
}

/// Answers `request` on this thread; returns the framed reply.
fn answer(shared: &Shared, request: AesmRequest, peer: Peer) -> Vec<u8> {
    let started = Instant::now();
    let outcome = shared.dispatcher.handle(&request);
    reply(shared, &request, outcome, started.elapsed(), peer)
}

/// Answers `request` on the blocking pool; returns the framed reply.
async fn answer_off_workers(shared: &Shared, request: AesmRequest, peer: Peer) -> Vec<u8> {
    let dispatcher = shared.dispatcher.clone();
    let request = Arc::new(request);
    let call = Arc::clone(&request);
    let started = Instant::now();
    let outcome = match tokio::task::spawn_blocking(move || dispatcher.handle(&call)).await {
        Ok(outcome) => outcome,
        Err(e) => {
            // The backend panicked: answer as aesmd does when a service call fails.
            let kind = request.kind();
            tracing::error!(rpc = kind.name(), error = %e, "AESM backend call failed");
            Outcome {
                response: AesmResponse::error(kind, AesmCode::UnexpectedError),
                detail: Some(format!("backend call failed: {e}")),
            }
        }
    };
    reply(shared, &request, outcome, started.elapsed(), peer)
}

/// Counts and logs an answered request; returns its framed reply.
fn reply(
    shared: &Shared,
    request: &AesmRequest,
    outcome: Outcome,
    elapsed: Duration,
    peer: Peer,
) -> Vec<u8> {
    let metrics = &shared.metrics;
    let kind = request.kind();
    let code = outcome.response.error_code();
    if code == 0 && matches!(request, AesmRequest::GetQuoteEx(_)) {
        metrics.quote_duration(elapsed);
    }
    metrics.request(kind.name(), code);
    match &outcome.detail {
        Some(detail) => tracing::debug!(
            rpc = kind.name(),
            peer.uid = peer.uid,
            peer.pid = peer.pid,
            result = code,
            detail = %detail,
            "AESM request refused"
        ),
        None => tracing::debug!(
            rpc = kind.name(),
            peer.uid = peer.uid,
            peer.pid = peer.pid,
            result = code,
            elapsed_us = elapsed.as_micros() as u64,
            "AESM request served"
        ),
    }
    // A response is at most the quote buffer cap plus a few hundred bytes, far below the 4 GiB a
    // frame can carry; were it not, the connection would close without a reply.
    encode_frame(&encode_response(&outcome.response)).unwrap_or_default()
}

/// Sends as much of `reply` as the socket takes now, without waiting; what is left, if anything,
/// is for [`send`].
fn send_now(stream: &UnixStream, reply: Vec<u8>, peer: Peer) -> Option<Rest> {
    match net::send(stream, &reply, SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
        Ok(n) if n >= reply.len() => None,
        Ok(n) => Some(Rest::Send(reply.get(n..).unwrap_or_default().to_vec())),
        Err(e) if e == Errno::AGAIN || e == Errno::INTR => Some(Rest::Send(reply)),
        Err(e) => {
            not_sent(peer, &e.to_string());
            None
        }
    }
}

/// Sends `reply`, waiting at most the write timeout.
async fn send(stream: &mut UnixStream, reply: &[u8], peer: Peer, timeout: Duration) {
    let write = async {
        stream.write_all(reply).await?;
        stream.flush().await
    };
    match tokio::time::timeout(timeout, write).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => not_sent(peer, &e.to_string()),
        Err(_) => not_sent(peer, "timed out"),
    }
}

fn not_sent(peer: Peer, why: &str) {
    tracing::debug!(
        peer.uid = peer.uid,
        peer.pid = peer.pid,
        error = why,
        "AESM reply not sent"
    );
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_reply_larger_than_the_socket_takes_is_finished_asynchronously() {
        let (mut server, mut client) = UnixStream::pair().unwrap();
        socket2::SockRef::from(&server)
            .set_send_buffer_size(4096)
            .unwrap();
        let reply: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let peer = Peer::of(&server);
        let Some(Rest::Send(rest)) = send_now(&server, reply.clone(), peer) else {
            panic!("a 300 KB reply fitted a 4 KiB socket buffer");
        };
        assert!(rest.len() < reply.len() && reply.ends_with(&rest));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        send(&mut server, &rest, peer, Duration::from_secs(30)).await;
        drop(server);
        assert_eq!(reader.await.unwrap(), reply);
    }

    #[tokio::test]
    async fn a_reply_to_a_vanished_client_is_dropped_quietly() {
        let (server, client) = UnixStream::pair().unwrap();
        drop(client);
        // EPIPE ends the connection: nothing is left to send.
        assert!(send_now(&server, vec![1; 100], Peer::of(&server)).is_none());
    }
}

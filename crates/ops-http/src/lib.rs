//! The operations endpoint that every confcom daemon serves on `--metrics-addr`.
//!
//! Routes (GET or HEAD; every other method gets `405`, except POST on the paths an [`ExtraRoutes`]
//! opted in with [`ExtraRoutes::with_post`]):
//!
//! | path | answer |
//! |---|---|
//! | `/metrics` | the caller's [`prometheus_client`] registry in OpenMetrics text |
//! | `/healthz` | `200 ok` while the process runs |
//! | `/readyz` | `200 ready` once the component called [`Readiness::set_ready`]`(true)`, else `503 not ready` |
//! | anything else | the caller's [`ExtraRoutes`] if it answers, else `404` |
//!
//! The built-in routes ignore the query string; the extra routes see the path, the query (still
//! percent-encoded) and the request headers, may add response headers, and run inline or, when they may wait on a remote
//! service, on the blocking pool ([`ExtraRoutes::blocking`]).
//! Request bodies are read only for those POST routes: at most their cap (a larger body gets `413`
//! and the connection is closed, without reading the rest), and within
//! [`Limits::header_read_timeout`] (while it arrives the connection is timed and evictable as one
//! reading its head, see [`guard::ConnHandle::reading_body`]). The server is bounded by a [`guard::Governor`]: at most [`Limits::max_connections`]
//! connections at once (at the cap the oldest idle or incomplete one is closed, so new clients never
//! wait behind slow ones), at most [`Limits::max_pending_per_address`] incomplete ones per client
//! address, TLS handshakes within [`Limits::handshake_timeout`], request headers within
//! [`Limits::header_read_timeout`] and at most 16 KiB, keep-alive waits within
//! [`Limits::idle_timeout`], and a connection lives at most [`Limits::connection_timeout`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use prometheus_client::{metrics::counter::Counter, registry::Registry};
//!
//! # async fn example() -> std::io::Result<()> {
//! let mut registry = Registry::default();
//! let requests: Counter = Counter::default();
//! registry.register("confcom_example_requests", "Requests served", requests.clone());
//! let readiness = ops_http::Readiness::new();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9101").await?;
//! let extra = ops_http::ExtraRoutes::new(|path: &str, _query: Option<&str>, _headers: &ops_http::HeaderMap| {
//!     (path == "/version").then(|| ops_http::Response::ok("text/plain; charset=utf-8", b"1.0\n".to_vec()))
//! });
//! readiness.set_ready(true);
//! ops_http::serve(listener, Arc::new(registry), readiness, Some(extra), async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```

pub mod guard;
#[cfg(feature = "test-support")]
pub mod testing;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::guard::{ConnHandle, ConnLimits, ConnMetrics, Governor};

/// Content type of `/metrics` (what `prometheus_client::encoding::text` produces).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
/// Largest request head (request line + headers) accepted, in bytes.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long in-flight requests may finish after the shutdown future completed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Whether the component is ready to do its job; `/readyz` reports it. Cheap to clone: all clones
/// share one flag. Starts not ready.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// A new flag, not ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the flag seen by `/readyz`.
    pub fn set_ready(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    /// The current value of the flag.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// An answer of an extra route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code; an invalid code is answered as `500`.
    pub status: u16,
    /// Value of the `Content-Type` header.
    pub content_type: &'static str,
    /// Body bytes.
    pub body: Vec<u8>,
    /// More headers (name, value); pairs that are not valid header text are left out.
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    /// A `200` answer.
    pub fn ok(content_type: &'static str, body: Vec<u8>) -> Self {
        Self::new(200, content_type, body)
    }

    /// An answer with `status`.
    pub fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            status,
            content_type,
            body,
            headers: Vec::new(),
        }
    }
}

/// The function behind [`ExtraRoutes`].
pub type RouteFn = dyn Fn(&str, Option<&str>, &HeaderMap) -> Option<Response> + Send + Sync;

/// The request headers extra routes see.
pub use hyper::HeaderMap;

/// The function behind the POST routes of [`ExtraRoutes::with_post`]: path, query, headers and the
/// whole request body.
pub type PostFn = dyn Fn(&str, Option<&str>, &HeaderMap, &[u8]) -> Option<Response> + Send + Sync;

/// The POST routes of an [`ExtraRoutes`].
#[derive(Clone)]
struct PostRoutes {
    accepts: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    handler: Arc<PostFn>,
    max_body: usize,
    /// Bodies read at once, so that they hold at most [`POST_BODY_BUDGET`] bytes together.
    bodies: Arc<tokio::sync::Semaphore>,
}

/// The memory all request bodies being read at once may take: bodies beyond it wait (within the
/// same timeout) for one to finish.
pub const POST_BODY_BUDGET: usize = 16 * 1024 * 1024;

/// Extra GET routes: called with the request path and query string (without `?`); `None` means
/// "not mine" (`404`). Cheap to clone.
#[derive(Clone)]
pub struct ExtraRoutes {
    handler: Arc<RouteFn>,
    post: Option<PostRoutes>,
    blocking: bool,
    access_log: bool,
}

/// The `tracing` target of access-log events ([`ExtraRoutes::with_access_log`]).
pub const ACCESS_LOG_TARGET: &str = "access";

impl ExtraRoutes {
    /// Routes that answer at once (from memory or local files): called on the connection's task.
    pub fn new(
        handler: impl Fn(&str, Option<&str>, &HeaderMap) -> Option<Response> + Send + Sync + 'static,
    ) -> Self {
        Self {
            handler: Arc::new(handler),
            post: None,
            blocking: false,
            access_log: false,
        }
    }

    /// Routes that may wait (on a remote service): called on the blocking pool, so that they never
    /// stall the other connections. The hop costs a thread switch per request.
    pub fn blocking(
        handler: impl Fn(&str, Option<&str>, &HeaderMap) -> Option<Response> + Send + Sync + 'static,
    ) -> Self {
        Self {
            handler: Arc::new(handler),
            post: None,
            blocking: true,
            access_log: false,
        }
    }

    /// Logs every request the server answers (these routes and the built-in ones) as one `info`
    /// event of target [`ACCESS_LOG_TARGET`], after the answer is made: `method`, `uri` (path and
    /// query), `status`, `bytes` (of the body), `duration_us`, `request_id` (the answer's
    /// `Request-ID` header, `-` without one) and `client` (the peer address).
    pub fn with_access_log(mut self, on: bool) -> Self {
        self.access_log = on;
        self
    }

    /// Also answers POST on the paths `accepts` says yes to, with `handler` (called as the GET
    /// routes are: inline or on the blocking pool). The body is read whole before the call: at
    /// most `max_body` bytes (a larger one is answered `413` and its connection closed) and within
    /// [`Limits::header_read_timeout`] (else the connection is closed); at most
    /// [`POST_BODY_BUDGET`] / `max_body` bodies are read at once. POST on other paths stays `405`.
    pub fn with_post(
        mut self,
        max_body: usize,
        accepts: impl Fn(&str) -> bool + Send + Sync + 'static,
        handler: impl Fn(&str, Option<&str>, &HeaderMap, &[u8]) -> Option<Response>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.post = Some(PostRoutes {
            accepts: Arc::new(accepts),
            handler: Arc::new(handler),
            max_body,
            bodies: Arc::new(tokio::sync::Semaphore::new(
                (POST_BODY_BUDGET / max_body.max(1)).max(1),
            )),
        });
        self
    }

    /// Answers `path` (with `query` and `headers`) directly, on the caller's thread.
    pub fn call(&self, path: &str, query: Option<&str>, headers: &HeaderMap) -> Option<Response> {
        (self.handler)(path, query, headers)
    }
}

impl std::fmt::Debug for ExtraRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtraRoutes")
            .field("blocking", &self.blocking)
            .field("post_max_body", &self.post.as_ref().map(|p| p.max_body))
            .field("access_log", &self.access_log)
            .finish_non_exhaustive()
    }
}

/// The default connection cap of an operations endpoint: it serves probes and scrapes, and its
/// daemon's memory limit is small (128 MiB for the device plugin), so its cap is budgeted at
/// 4,096 × [`guard::BYTES_PER_CONNECTION`] = 96 MiB at most; at the cap the oldest idle or
/// incomplete connection is closed, so a flood delays no probe.
pub const DEFAULT_OPS_MAX_CONNECTIONS: usize = 4_096;

/// Bounds of the server; [`serve`] uses [`Limits::default`] (see [`guard`] for the reasoning).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections held at once; at the cap the oldest idle or incomplete one is closed.
    pub max_connections: usize,
    /// Connections from one client address that have not sent a complete request yet.
    pub max_pending_per_address: usize,
    /// Time allowed for a TLS handshake ([`serve_tls`]).
    pub handshake_timeout: Duration,
    /// Time allowed for a request head to arrive.
    pub header_read_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Longest life of one connection.
    pub connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        let conn = ConnLimits::default();
        Self {
            max_connections: DEFAULT_OPS_MAX_CONNECTIONS,
            max_pending_per_address: conn.max_pending_per_address,
            handshake_timeout: conn.handshake_timeout,
            header_read_timeout: conn.header_timeout,
            idle_timeout: conn.idle_timeout,
            connection_timeout: Duration::from_secs(60),
        }
    }
}

impl Limits {
    /// The governor's share of the limits.
    pub fn conn_limits(&self) -> ConnLimits {
        ConnLimits {
            max_connections: self.max_connections,
            max_pending_per_address: self.max_pending_per_address,
            handshake_timeout: self.handshake_timeout,
            header_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
        }
    }
}

struct State {
    registry: Arc<Registry>,
    readiness: Readiness,
    extra: Option<ExtraRoutes>,
}

/// Serve the endpoint on `listener` until `shutdown` completes, with the default [`Limits`].
///
/// After `shutdown` completes no new connection is accepted, requests in flight get up to five
/// seconds to finish, and the function returns. It returns an error only when the listener itself
/// fails (per-connection accept failures such as a reset or a full file table are logged and
/// survived).
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    readiness: Readiness,
    extra: Option<ExtraRoutes>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with_limits(
        listener,
        registry,
        readiness,
        extra,
        Limits::default(),
        shutdown,
    )
    .await
}

/// [`serve`] with explicit [`Limits`].
pub async fn serve_with_limits(
    listener: TcpListener,
    registry: Arc<Registry>,
    readiness: Readiness,
    extra: Option<ExtraRoutes>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let metrics = ConnMetrics::default();
    let server = (registry, readiness, extra, limits, metrics);
    serve_inner(listener, None, server, shutdown).await
}

/// [`serve_with_limits`] over TLS (rustls): the handshake must complete within
/// [`Limits::handshake_timeout`].
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    registry: Arc<Registry>,
    readiness: Readiness,
    extra: Option<ExtraRoutes>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let metrics = ConnMetrics::default();
    let server = (registry, readiness, extra, limits, metrics);
    serve_inner(listener, Some(tls), server, shutdown).await
}

/// [`serve_with_limits`], or [`serve_tls`] when `tls` is given, counting connections in `metrics`
/// (see [`ConnMetrics::register`]).
#[allow(clippy::too_many_arguments)]
pub async fn serve_guarded(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    registry: Arc<Registry>,
    readiness: Readiness,
    extra: Option<ExtraRoutes>,
    limits: Limits,
    metrics: ConnMetrics,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let server = (registry, readiness, extra, limits, metrics);
    serve_inner(listener, tls, server, shutdown).await
}

type Server = (
    Arc<Registry>,
    Readiness,
    Option<ExtraRoutes>,
    Limits,
    ConnMetrics,
);

async fn serve_inner(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    (registry, readiness, extra, limits, metrics): Server,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let state = Arc::new(State {
        registry,
        readiness,
        extra,
    });
    let governor = Governor::new("ops-http", limits.conn_limits(), metrics);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = governor.accept(&listener, tls.is_some()) => accepted,
        };
        let (stream, peer, conn) = accepted?;
        let state = Arc::clone(&state);
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let handle = conn.handle();
        let stream = handle.io(stream);
        let lifetime = limits.connection_timeout;
        tokio::spawn(conn.run(async move {
            let started = tokio::time::Instant::now();
            match tls {
                None => {
                    let conn = serve_connection(stream, state, watcher, &handle, peer);
                    finish(conn, lifetime).await;
                }
                // Boxed, as the connection in `finish`: an idle task then holds only what its
                // phase needs (the task's own state stays small).
                Some(acceptor) => {
                    let stream = match Box::pin(acceptor.accept(stream)).await {
                        Ok(stream) => Box::new(stream),
                        Err(err) => {
                            tracing::debug!(error = %err, "ops-http: TLS handshake failed");
                            return;
                        }
                    };
                    handle.handshake_done();
                    let conn = serve_connection(stream, state, watcher, &handle, peer);
                    finish(conn, lifetime.saturating_sub(started.elapsed())).await;
                }
            }
        }));
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::debug!("ops-http: connections still open after the shutdown grace period");
        }
    }
    Ok(())
}

/// Drives one connection for at most `lifetime`.
fn finish(
    conn: impl Future<Output = hyper::Result<()>>,
    lifetime: Duration,
) -> impl Future<Output = ()> {
    let conn = Box::pin(conn);
    async move { finish_boxed(conn, lifetime).await }
}

async fn finish_boxed(conn: impl Future<Output = hyper::Result<()>>, lifetime: Duration) {
    match tokio::time::timeout(lifetime, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::debug!(error = %err, "ops-http: connection ended with an error"),
        Err(_) => tracing::debug!("ops-http: connection closed after its maximum lifetime"),
    }
}

/// One HTTP/1.1 connection over `stream`, watched for graceful shutdown; its head, idle and
/// busy phases are reported to the governor through `guard`.
fn serve_connection<S>(
    stream: S,
    state: Arc<State>,
    watcher: hyper_util::server::graceful::Watcher,
    guard: &ConnHandle,
    peer: std::net::SocketAddr,
) -> impl Future<Output = hyper::Result<()>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn_handle = guard.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let state = Arc::clone(&state);
        let conn_handle = conn_handle.clone();
        async move {
            let log = state.extra.as_ref().is_some_and(|e| e.access_log);
            let started = log.then(std::time::Instant::now);
            let (parts, body) = req.into_parts();
            let resp = match post_route(&state, &parts) {
                Some(post) => answer_post(post, &state, &parts, body, &conn_handle).await,
                None => route(&state, &parts).await,
            };
            if let Some(started) = started {
                access_log(&parts, &resp, peer, started);
            }
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        // The governor times heads out (and counts it).
        .header_read_timeout(None)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(stream), guard.service(service));
    watcher.watch(conn)
}

/// The POST routes that take `req`, when it is a POST they accept.
fn post_route<'a>(state: &'a State, req: &hyper::http::request::Parts) -> Option<&'a PostRoutes> {
    let post = state.extra.as_ref()?.post.as_ref()?;
    (req.method == Method::POST && (post.accepts)(req.uri.path())).then_some(post)
}

/// Reads the body of a POST (bounded in size and, through the governor, in time) and answers it.
async fn answer_post(
    post: &PostRoutes,
    state: &State,
    req: &hyper::http::request::Parts,
    body: Incoming,
    conn: &ConnHandle,
) -> hyper::Response<Full<Bytes>> {
    use http_body_util::BodyExt;
    let too_large = || {
        let mut resp = reply(413, TEXT, b"request body too large\n".to_vec());
        resp.headers_mut()
            .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
        resp
    };
    let declared = req
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > post.max_body as u64) {
        return too_large();
    }
    let bytes = {
        let _timed = conn.reading_body();
        // The semaphore is never closed.
        let Ok(_permit) = post.bodies.acquire().await else {
            return reply(503, TEXT, b"busy\n".to_vec());
        };
        match http_body_util::Limited::new(body, post.max_body)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => return too_large(),
            Err(err) => {
                tracing::debug!(error = %err, "ops-http: reading a request body failed");
                let mut resp = reply(400, TEXT, b"bad request body\n".to_vec());
                resp.headers_mut()
                    .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
                return resp;
            }
        }
    };
    let path = req.uri.path();
    let query = req.uri.query();
    let answer = if state.extra.as_ref().is_some_and(|e| e.blocking) {
        let handler = Arc::clone(&post.handler);
        let (path, query, headers) = (
            path.to_owned(),
            query.map(str::to_owned),
            req.headers.clone(),
        );
        match tokio::task::spawn_blocking(move || {
            handler(&path, query.as_deref(), &headers, &bytes)
        })
        .await
        {
            Ok(answer) => answer,
            Err(_) => Some(Response::new(500, TEXT, b"internal error\n".to_vec())),
        }
    } else {
        (post.handler)(path, query, &req.headers, &bytes)
    };
    match answer {
        Some(resp) => extra_reply(resp),
        None => reply(404, TEXT, b"not found\n".to_vec()),
    }
}

/// An extra route's answer as hyper sends it.
fn extra_reply(resp: Response) -> hyper::Response<Full<Bytes>> {
    let mut out = reply(resp.status, resp.content_type, resp.body);
    for (name, value) in resp.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            out.headers_mut().append(name, value);
        }
    }
    out
}

async fn route(state: &State, req: &hyper::http::request::Parts) -> hyper::Response<Full<Bytes>> {
    if req.method != Method::GET && req.method != Method::HEAD {
        let mut resp = reply(405, TEXT, b"method not allowed\n".to_vec());
        resp.headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    match req.uri.path() {
        "/healthz" => reply(200, TEXT, b"ok\n".to_vec()),
        "/readyz" if state.readiness.is_ready() => reply(200, TEXT, b"ready\n".to_vec()),
        "/readyz" => reply(503, TEXT, b"not ready\n".to_vec()),
        "/metrics" => {
            let mut text = String::new();
            match prometheus_client::encoding::text::encode(&mut text, &state.registry) {
                Ok(()) => reply(200, METRICS_CONTENT_TYPE, text.into_bytes()),
                Err(_) => reply(500, TEXT, b"metrics encoding failed\n".to_vec()),
            }
        }
        path => match extra_route(state, path, req.uri.query(), &req.headers).await {
            Some(resp) => extra_reply(resp),
            None => reply(404, TEXT, b"not found\n".to_vec()),
        },
    }
}

/// Runs the caller's extra routes: inline, or on the blocking pool when they may wait.
async fn extra_route(
    state: &State,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<Response> {
    let extra = state.extra.as_ref()?;
    if !extra.blocking {
        return extra.call(path, query, headers);
    }
    let extra = extra.clone();
    let (path, query, headers) = (path.to_owned(), query.map(str::to_owned), headers.clone());
    match tokio::task::spawn_blocking(move || extra.call(&path, query.as_deref(), &headers)).await {
        Ok(answer) => answer,
        // The route panicked: answer as a server error rather than dropping the connection.
        Err(_) => Some(Response::new(500, TEXT, b"internal error\n".to_vec())),
    }
}

/// One access-log event (see [`ExtraRoutes::with_access_log`]); fields only, formatted by the
/// subscriber (text or JSON).
fn access_log(
    req: &hyper::http::request::Parts,
    resp: &hyper::Response<Full<Bytes>>,
    peer: std::net::SocketAddr,
    started: std::time::Instant,
) {
    let bytes = hyper::body::Body::size_hint(resp.body())
        .exact()
        .unwrap_or_default();
    let request_id = resp
        .headers()
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::info!(
        target: ACCESS_LOG_TARGET,
        method = %req.method,
        uri = %req.uri,
        status = resp.status().as_u16(),
        bytes,
        duration_us,
        request_id,
        client = %peer,
        "request"
    );
}

fn reply(status: u16, content_type: &'static str, body: Vec<u8>) -> hyper::Response<Full<Bytes>> {
    let mut resp = hyper::Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // A caller-supplied content type that is not a valid header value degrades to raw bytes.
    let content_type = HeaderValue::from_str(content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    resp.headers_mut().insert(CONTENT_TYPE, content_type);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_clones_share_one_flag() {
        let a = Readiness::new();
        let b = a.clone();
        assert!(!b.is_ready());
        a.set_ready(true);
        assert!(b.is_ready());
        b.set_ready(false);
        assert!(!a.is_ready());
    }

    #[test]
    fn invalid_status_becomes_500() {
        let resp = reply(1000, TEXT, Vec::new());
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}

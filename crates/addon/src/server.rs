//! The webhook's HTTPS server: rustls (ring provider) + hyper HTTP/1.1.
//!
//! Routes: `POST` [`WEBHOOK_PATH_POD`], [`WEBHOOK_PATH_NAMESPACE`] and [`WEBHOOK_PATH_INTEL_EPC`]
//! answer AdmissionReviews,
//! `GET /healthz` answers `ok`. Connections are governed by [`ops_http::guard::Governor`]: a cap
//! at which the oldest idle or incomplete connection is closed (new clients never wait behind slow
//! ones), a per-address cap on incomplete connections, and TLS handshake, request header and
//! keep-alive idle timeouts; request bodies are bounded in time and size. While a body arrives
//! its connection is timed and evictable as one reading its head, and the bodies being read at
//! once share a byte budget ([`Limits::body_budget_bytes`]).

use std::convert::Infallible;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use ops_http::guard::{ConnHandle, ConnLimits, ConnMetrics, Governor};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::admission::{Decision, Mutator, OptIn, Skip};
use crate::names::{WEBHOOK_PATH_INTEL_EPC, WEBHOOK_PATH_NAMESPACE, WEBHOOK_PATH_POD};

/// Errors setting up or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A certificate or key file could not be read or parsed.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// rustls rejected the certificate/key pair.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// Accepting connections failed.
    #[error("accept: {0}")]
    Accept(std::io::Error),
}

/// Limits of the server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections held at once; at the cap the oldest idle or incomplete one is closed.
    pub max_connections: usize,
    /// Connections from one client address that have not sent a complete request yet.
    pub max_pending_per_address: usize,
    /// Largest request body accepted (the API server sends the whole pod).
    pub max_body_bytes: usize,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time allowed for request headers.
    pub header_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Time allowed to receive a request body (including the wait for [`Self::body_budget_bytes`]).
    pub body_timeout: Duration,
    /// The memory all request bodies being read at once may take: each request takes its
    /// declared length (at most, and without one, [`Self::max_body_bytes`]) from this budget before
    /// its body is read, and requests beyond it wait for one to finish.
    pub body_budget_bytes: usize,
    /// Time in-flight connections get to finish after shutdown.
    pub shutdown_grace: Duration,
}

/// The default [`Limits::body_budget_bytes`]: eight bodies of the default 4 MiB cap.
pub const BODY_BUDGET_BYTES: usize = 32 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        let conn = ConnLimits::default();
        Self {
            max_connections: conn.max_connections,
            max_pending_per_address: conn.max_pending_per_address,
            max_body_bytes: 4 * 1024 * 1024,
            handshake_timeout: conn.handshake_timeout,
            header_timeout: conn.header_timeout,
            idle_timeout: conn.idle_timeout,
            body_timeout: Duration::from_secs(10),
            body_budget_bytes: BODY_BUDGET_BYTES,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// The connection governor's share of the limits.
    pub fn conn_limits(&self) -> ConnLimits {
        ConnLimits {
            max_connections: self.max_connections,
            max_pending_per_address: self.max_pending_per_address,
            handshake_timeout: self.handshake_timeout,
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
        }
    }
}

/// Reads a PEM certificate chain and private key and builds a rustls server configuration (ring
/// provider, TLS 1.2 and 1.3, ALPN `http/1.1`).
pub fn tls_config_from_pem_files(
    cert: &Path,
    key: &Path,
) -> Result<rustls::ServerConfig, ServerError> {
    let pem_err = |path: &Path| {
        let path = path.display().to_string();
        move |e: rustls_pki_types::pem::Error| ServerError::Pem {
            path: path.clone(),
            reason: e.to_string(),
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(pem_err(cert))?
        .collect::<Result<_, _>>()
        .map_err(pem_err(cert))?;
    if chain.is_empty() {
        return Err(ServerError::Pem {
            path: cert.display().to_string(),
            reason: "no certificate".to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(pem_err(key))?;
    tls_config(chain, key)
}

/// Builds the rustls server configuration from DER values.
pub fn tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig, ServerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Labels of `confcom_webhook_reviews_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct ReviewLabels {
    /// `pod` or `namespace`: which webhook entry was called.
    entry: &'static str,
    /// `patched`, a skip reason, or `malformed`.
    outcome: &'static str,
}

/// The webhook's metrics. [`WebhookMetrics::default`] counts without exporting; register them to
/// export.
#[derive(Clone, Debug, Default)]
pub struct WebhookMetrics {
    reviews: prometheus_client::metrics::family::Family<
        ReviewLabels,
        prometheus_client::metrics::counter::Counter,
    >,
    connections: ConnMetrics,
}

impl WebhookMetrics {
    /// Metrics registered in `registry` as `confcom_webhook_reviews_total{entry, outcome}`,
    /// `confcom_webhook_connections_open` and `confcom_webhook_connections_dropped_total{limit}`.
    pub fn register(registry: &mut prometheus_client::registry::Registry) -> Self {
        let reviews = prometheus_client::metrics::family::Family::default();
        registry.register(
            "confcom_webhook_reviews",
            "AdmissionReviews answered, by webhook entry and outcome",
            Clone::clone(&reviews),
        );
        let connections = ConnMetrics::register(registry, "confcom_webhook");
        Self {
            reviews,
            connections,
        }
    }

    /// The connection governor's metrics.
    pub fn connections(&self) -> &ConnMetrics {
        &self.connections
    }

    fn count(&self, opt_in: OptIn, outcome: &'static str) {
        let entry = match opt_in {
            OptIn::PodLabel => "pod",
            OptIn::Namespace => "namespace",
            OptIn::IntelEpc => "intel_epc",
        };
        self.reviews
            .get_or_create(&ReviewLabels { entry, outcome })
            .inc();
    }
}

fn outcome(decision: &Decision) -> &'static str {
    match decision {
        Decision::Patch(_) => "patched",
        Decision::Skip(Skip::NotPodCreate) => "not_pod_create",
        Decision::Skip(Skip::OwnPod) => "own_pod",
        Decision::Skip(Skip::NotOptedIn) => "not_opted_in",
        Decision::Skip(Skip::NoEpcRequest) => "no_epc_request",
        Decision::Skip(Skip::AlreadyWired) => "already_wired",
        Decision::Skip(Skip::Unreadable(_)) => "unreadable",
        Decision::Deny(_) => "denied",
    }
}

struct Shared {
    mutator: Mutator,
    limits: Limits,
    metrics: WebhookMetrics,
    /// Bytes of the request bodies being read at once ([`Limits::body_budget_bytes`] permits).
    bodies: Semaphore,
    /// The permits of the whole budget (what one request takes at most).
    budget_permits: u32,
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Reads the request body: within [`Limits::body_timeout`] and [`Limits::max_body_bytes`], after
/// taking its length from the body budget, with the connection marked as reading (timed and
/// evictable by the governor) meanwhile. `Err` is the answer to send instead.
async fn read_body(
    shared: &Shared,
    conn: &ConnHandle,
    request: Request<Incoming>,
) -> Result<Bytes, Response<Full<Bytes>>> {
    let max_body = shared.limits.max_body_bytes;
    let too_large = || text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
    let declared = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A longer declared body is read up to the cap and answered 413, as one that does not declare
    // its length (the connection stays usable once the rest has been drained).
    let need = declared.map_or(max_body as u64, |len| len.min(max_body as u64));
    let permits = u32::try_from(need)
        .unwrap_or(u32::MAX)
        .min(shared.budget_permits);
    let _reading = conn.reading_body();
    let limited = Limited::new(request.into_body(), max_body);
    let read = async {
        let permit = if permits == 0 {
            None
        } else {
            // The semaphore is never closed.
            match shared.bodies.acquire_many(permits).await {
                Ok(permit) => Some(permit),
                Err(_) => return Err(text(StatusCode::SERVICE_UNAVAILABLE, "busy\n")),
            }
        };
        let collected = limited.collect().await;
        drop(permit);
        match collected {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Err(_) => Err(text(StatusCode::BAD_REQUEST, "request body unreadable\n")),
        }
    };
    match tokio::time::timeout(shared.limits.body_timeout, read).await {
        Err(_) => Err(text(StatusCode::REQUEST_TIMEOUT, "request body too slow\n")),
        Ok(result) => result,
    }
}

async fn handle(
    shared: Arc<Shared>,
    conn: ConnHandle,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let opt_in = match request.uri().path() {
        "/healthz" if request.method() == Method::GET => {
            return Ok(text(StatusCode::OK, "ok\n"));
        }
        "/healthz" => return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n")),
        WEBHOOK_PATH_POD => OptIn::PodLabel,
        WEBHOOK_PATH_NAMESPACE => OptIn::Namespace,
        WEBHOOK_PATH_INTEL_EPC => OptIn::IntelEpc,
        _ => return Ok(text(StatusCode::NOT_FOUND, "not found\n")),
    };
    if request.method() != Method::POST {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "POST only\n"));
    }
    let body = match read_body(&shared, &conn, request).await {
        Ok(body) => body,
        Err(answer) => return Ok(answer),
    };
    match shared.mutator.review(&body, opt_in) {
        Ok((reply, decision)) => {
            shared.metrics.count(opt_in, outcome(&decision));
            match &decision {
                Decision::Patch(ops) => {
                    tracing::info!(path = ?opt_in, ops = ops.len(), "pod mutated");
                }
                Decision::Deny(message) => {
                    tracing::info!(path = ?opt_in, %message, "pod refused");
                }
                Decision::Skip(reason) => tracing::debug!(path = ?opt_in, ?reason, "pod unchanged"),
            }
            let mut response = Response::new(Full::new(Bytes::from(reply)));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            Ok(response)
        }
        Err(e) => {
            shared.metrics.count(opt_in, "malformed");
            tracing::warn!(error = %e, "rejected malformed AdmissionReview");
            Ok(text(StatusCode::BAD_REQUEST, format!("{e}\n")))
        }
    }
}

/// Serves the webhook on `listener` until `shutdown` completes, then lets in-flight connections
/// finish (up to [`Limits::shutdown_grace`]).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    mutator: Mutator,
    limits: Limits,
    metrics: WebhookMetrics,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let acceptor = TlsAcceptor::from(tls);
    let governor = Governor::new("webhook", limits.conn_limits(), metrics.connections.clone());
    // At least one byte, so that a request can always proceed.
    let budget_permits = u32::try_from(limits.body_budget_bytes)
        .unwrap_or(u32::MAX)
        .clamp(1, u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
    let shared = Arc::new(Shared {
        mutator,
        limits,
        metrics,
        bodies: Semaphore::new(budget_permits as usize),
        budget_permits,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Failures of single accepts are survived inside the governor (paced, logged once a
        // minute); an error here is the listener's own.
        let (stream, peer, conn) = tokio::select! {
            () = &mut shutdown => break,
            accepted = governor.accept(&listener, true) => accepted.map_err(ServerError::Accept)?,
        };
        // Reap finished connection tasks so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
        let acceptor = acceptor.clone();
        let shared = Arc::clone(&shared);
        let mut stop_rx = stop_rx.clone();
        let guard = conn.handle();
        connections.spawn(conn.run(async move {
            // The governor bounds the handshake and the header and idle waits. The handshake,
            // the TLS stream and the connection are boxed so that the task holds only what its
            // phase needs (a few hundred bytes instead of kilobytes per slow client).
            let tls_stream = match Box::pin(acceptor.accept(guard.io(stream))).await {
                Ok(s) => Box::new(s),
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            guard.handshake_done();
            let body_guard = guard.clone();
            let service = hyper::service::service_fn(move |req| {
                handle(Arc::clone(&shared), body_guard.clone(), req)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(None)
                .keep_alive(true);
            let mut conn = Box::pin(
                builder.serve_connection(TokioIo::new(tls_stream), guard.service(service)),
            );
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                () = async { let _ = stop_rx.wait_for(|stop| *stop).await; } => {
                    conn.as_mut().graceful_shutdown();
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
            }
        }));
    }
    // Stop accepting, ask keep-alive connections to close after their current request.
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(shared.limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        connections.abort_all();
    }
    Ok(())
}

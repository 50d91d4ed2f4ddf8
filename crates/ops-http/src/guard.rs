//! The connection governor of confcom's TCP servers (the operations endpoints, the PCCS, the
//! admission webhook).
//!
//! A [`Governor`] keeps an ordered registry of the server's connections and the phase each is in:
//! [`Phase::Handshaking`] (TLS), [`Phase::ReadingHead`], [`Phase::Idle`] (keep-alive, between
//! requests) or [`Phase::Busy`] (a request is being answered). It holds four limits:
//!
//! - **a connection cap** ([`ConnLimits::max_connections`]): when a new connection arrives at the
//!   cap, the connection that has been idle or incomplete the longest is closed to make room; busy
//!   connections are never evicted. Accepting never stops, so honest clients are not left waiting in
//!   the listen backlog behind slow ones. Only when every connection is busy is the new one closed.
//! - **a per-address cap** ([`ConnLimits::max_pending_per_address`]) on connections that have not
//!   yet sent a complete request (handshaking or reading their first head): one client address
//!   (an IPv6 /64) reaching it loses its own oldest such connection, never another client's.
//! - **a handshake timeout** and **a header timeout**, and an idle timeout between keep-alive
//!   requests; a busy connection has no deadline here (the server bounds it otherwise).
//!
//! Connections dropped by each limit and the open connections are counted in [`ConnMetrics`]; each
//! limit logs at most one warning a minute.
//!
//! A server accepts with [`Governor::accept`], runs each connection inside [`Conn::run`], wraps the
//! byte stream in [`ConnHandle::io`] (which notices the first bytes of the next request on a
//! keep-alive connection) and its hyper service in [`ConnHandle::service`] (which marks the
//! connection busy from the request head until the response body is handed over).
//!
//! ```no_run
//! use ops_http::guard::{ConnLimits, ConnMetrics, Governor};
//!
//! # async fn example() -> std::io::Result<()> {
//! let mut registry = prometheus_client::registry::Registry::default();
//! let metrics = ConnMetrics::register(&mut registry, "confcom_example");
//! let governor = Governor::new("example", ConnLimits::default(), metrics);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! loop {
//!     let (stream, _peer, conn) = governor.accept(&listener, false).await?;
//!     let io = conn.handle().io(stream);
//!     tokio::spawn(conn.run(async move {
//!         // serve `io` here (hyper, with `conn.handle().service(..)`)
//!         drop(io);
//!     }));
//! }
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Errors of the governor's process-level setup.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The open-file limit could not be read or raised.
    #[error("open-file limit (RLIMIT_NOFILE): {0}")]
    NofileLimit(io::Error),
}

/// The connection limits of one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections held at once; at the cap the oldest idle or incomplete one is closed.
    pub max_connections: usize,
    /// Connections from one client address (an IPv4 address, an IPv6 /64) that have not yet sent a
    /// complete request; beyond it that address's oldest such connection is closed.
    pub max_pending_per_address: usize,
    /// Time allowed for a TLS handshake.
    pub handshake_timeout: Duration,
    /// Time allowed for a request head, from the connection's start (or the first byte of a
    /// later request on a keep-alive connection).
    pub header_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
}

/// Default connection cap of the cluster services (the PCCS, the webhook): at least 10,000
/// connections held while honest clients are answered.
///
/// What a held connection costs the server (RSS growth per connection, measured by
/// `cargo bench -p ops-http --bench slowloris`): about 16 KiB with half a request line, 12 KiB idle
/// after a request, 8 KiB for a TCP connection that has not started its TLS handshake and 20 KiB
/// idle after a TLS request — hyper's 8 KiB read and write buffers dominate. Counting the kernel's
/// share of each socket, the cap is budgeted at [`BYTES_PER_CONNECTION`]: 10,240 connections take
/// at most about 240 MiB, which the rendered PCCS and webhook memory limits include
/// (deploy/README.md).
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_240;
/// The memory budgeted per held connection (user space and kernel), for sizing caps and memory
/// limits.
pub const BYTES_PER_CONNECTION: usize = 24 * 1024;
/// Default per-address cap on connections without a complete request yet.
pub const DEFAULT_MAX_PENDING_PER_ADDRESS: usize = 128;
/// Default TLS handshake timeout.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default request head timeout.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Default keep-alive idle timeout.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_pending_per_address: DEFAULT_MAX_PENDING_PER_ADDRESS,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// What a connection is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// The TLS handshake is under way.
    Handshaking = 0,
    /// A request head is being read.
    ReadingHead = 1,
    /// Between requests on a keep-alive connection.
    Idle = 2,
    /// A request is being answered; never evicted.
    Busy = 3,
}

impl Phase {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Handshaking,
            1 => Self::ReadingHead,
            2 => Self::Idle,
            _ => Self::Busy,
        }
    }
}

/// The limit that closed a connection (the `limit` label of
/// `<prefix>_connections_dropped_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// The connection cap: the oldest idle or incomplete connection made room (or, with every
    /// connection busy, the new one was closed).
    Cap,
    /// The per-address cap on connections without a complete request.
    PerAddress,
    /// The request head did not arrive in time.
    HeaderTimeout,
    /// The TLS handshake did not finish in time.
    HandshakeTimeout,
    /// A keep-alive connection stayed idle too long.
    IdleTimeout,
}

impl Limit {
    const ALL: [Limit; 5] = [
        Limit::Cap,
        Limit::PerAddress,
        Limit::HeaderTimeout,
        Limit::HandshakeTimeout,
        Limit::IdleTimeout,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Cap => "cap",
            Limit::PerAddress => "per_address",
            Limit::HeaderTimeout => "header_timeout",
            Limit::HandshakeTimeout => "handshake_timeout",
            Limit::IdleTimeout => "idle_timeout",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

/// The governor's metrics. [`ConnMetrics::default`] counts without exporting.
#[derive(Clone, Debug, Default)]
pub struct ConnMetrics {
    open: Gauge,
    dropped: Family<LimitLabels, Counter>,
}

impl ConnMetrics {
    /// Metrics registered in `registry` as `<prefix>_connections_open` and
    /// `<prefix>_connections_dropped_total{limit}` (`limit` is `cap`, `per_address`,
    /// `header_timeout`, `handshake_timeout` or `idle_timeout`).
    pub fn register(registry: &mut Registry, prefix: &str) -> Self {
        let metrics = Self::default();
        registry.register(
            format!("{prefix}_connections_open"),
            "TCP connections open on the server",
            metrics.open.clone(),
        );
        registry.register(
            format!("{prefix}_connections_dropped"),
            "Connections the server closed, by the limit that closed them",
            metrics.dropped.clone(),
        );
        // Every label value exists from the start, at zero.
        for limit in Limit::ALL {
            drop(metrics.dropped.get_or_create(&LimitLabels {
                limit: limit.as_str(),
            }));
        }
        metrics
    }

    /// Connections open now.
    pub fn open(&self) -> i64 {
        self.open.get()
    }

    /// Connections closed by `limit` so far.
    pub fn dropped(&self, limit: Limit) -> u64 {
        self.dropped
            .get_or_create(&LimitLabels {
                limit: limit.as_str(),
            })
            .get()
    }
}

/// At most one log line per limit and per minute, with the number of events since the last one.
#[derive(Debug)]
struct LogGate {
    /// Milliseconds since the governor's epoch before which nothing is logged (0: log now).
    next_ms: AtomicU64,
    /// Events since the last line.
    pending: AtomicU64,
}

const LOG_EVERY: Duration = Duration::from_secs(60);

/// A client address as the per-address cap counts it: IPv4 as is, IPv6 by its /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct AddrKey(IpAddr);

impl AddrKey {
    fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                AddrKey(IpAddr::V6(bits.into()))
            }
            v4 => AddrKey(v4),
        }
    }
}

/// Per-connection state shared by the registry, the connection task and its stream.
#[derive(Debug)]
struct Shared {
    phase: AtomicU8,
    /// Milliseconds since the governor's epoch when the phase began.
    since_ms: AtomicU64,
}

#[derive(Debug)]
struct Entry {
    addr: AddrKey,
    /// Position in `Table::evictable` while not busy.
    seq: Option<u64>,
    /// Whether the connection is in `Table::pending` (no complete request yet).
    pending: bool,
    kill: Option<oneshot::Sender<()>>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    next_seq: u64,
    conns: HashMap<u64, Entry>,
    /// Connections that may be evicted, oldest (longest not busy) first: seq -> id.
    evictable: BTreeMap<u64, u64>,
    /// Per address, the connections without a complete request, oldest first.
    pending: HashMap<AddrKey, BTreeSet<u64>>,
}

impl Table {
    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Removes `id`; returns its kill switch when it was still registered.
    fn remove(&mut self, id: u64) -> Option<Option<oneshot::Sender<()>>> {
        let entry = self.conns.remove(&id)?;
        if let Some(seq) = entry.seq {
            self.evictable.remove(&seq);
        }
        if entry.pending {
            self.unpend(entry.addr, id);
        }
        Some(entry.kill)
    }

    fn unpend(&mut self, addr: AddrKey, id: u64) {
        if let Some(set) = self.pending.get_mut(&addr) {
            set.remove(&id);
            if set.is_empty() {
                self.pending.remove(&addr);
            }
        }
    }
}

struct Inner {
    name: &'static str,
    limits: ConnLimits,
    metrics: ConnMetrics,
    epoch: Instant,
    table: Mutex<Table>,
    logs: [LogGate; 5],
    accept_log: LogGate,
}

/// The connection governor of one server. Cheap to clone: clones share one registry.
#[derive(Clone)]
pub struct Governor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Governor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governor")
            .field("name", &self.inner.name)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

fn gate() -> LogGate {
    LogGate {
        next_ms: AtomicU64::new(0),
        pending: AtomicU64::new(0),
    }
}

impl Governor {
    /// A governor for the server `name` (used in log lines) with `limits`, counting in `metrics`.
    /// Caps below 1 count as 1.
    pub fn new(name: &'static str, limits: ConnLimits, metrics: ConnMetrics) -> Self {
        let limits = ConnLimits {
            max_connections: limits.max_connections.max(1),
            max_pending_per_address: limits.max_pending_per_address.max(1),
            ..limits
        };
        ensure_descriptors(name, &limits);
        Self {
            inner: Arc::new(Inner {
                name,
                limits,
                metrics,
                epoch: Instant::now(),
                table: Mutex::new(Table::default()),
                logs: [gate(), gate(), gate(), gate(), gate()],
                accept_log: gate(),
            }),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> ConnLimits {
        self.inner.limits
    }

    /// The metrics the governor counts in.
    pub fn metrics(&self) -> &ConnMetrics {
        &self.inner.metrics
    }

    /// Accepts the next connection, registered in phase [`Phase::Handshaking`] when `tls`, else
    /// [`Phase::ReadingHead`], after closing whatever the limits require.
    ///
    /// Failures of single accepts (a reset, a full file table) are survived: logged at most once a
    /// minute, and followed by a short pause; when the process is out of file descriptors the
    /// oldest idle or incomplete connection is also closed to free one. Returns an error only when
    /// the listener itself fails.
    pub async fn accept(
        &self,
        listener: &TcpListener,
        tls: bool,
    ) -> io::Result<(TcpStream, SocketAddr, Conn)> {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let phase = if tls {
                        Phase::Handshaking
                    } else {
                        Phase::ReadingHead
                    };
                    match self.admit(peer.ip(), phase) {
                        Some(conn) => return Ok((stream, peer, conn)),
                        None => drop(stream),
                    }
                }
                Err(err) if is_resource_exhaustion(&err) => {
                    self.inner.log_accept_error(&err);
                    self.inner.evict_oldest(Limit::Cap);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) if is_transient(&err) => {
                    self.inner.log_accept_error(&err);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Registers a connection from `ip` in `phase`, closing others as the limits require; `None`
    /// when the cap is reached and every connection is busy.
    pub fn admit(&self, ip: IpAddr, phase: Phase) -> Option<Conn> {
        let inner = &self.inner;
        let addr = AddrKey::of(ip);
        let mut kills = Vec::new();
        let admitted = {
            let mut table = inner.lock();
            // The per-address cap: this address's oldest incomplete connection goes.
            let over = table
                .pending
                .get(&addr)
                .filter(|set| set.len() >= inner.limits.max_pending_per_address)
                .and_then(|set| set.first().copied());
            if let Some(oldest) = over
                && let Some(kill) = table.remove(oldest)
            {
                kills.push((Limit::PerAddress, kill));
            }
            // The connection cap: the oldest idle or incomplete connection goes.
            let mut admitted = true;
            if table.conns.len() >= inner.limits.max_connections {
                match table.evictable.first_key_value().map(|(_, id)| *id) {
                    Some(oldest) => {
                        if let Some(kill) = table.remove(oldest) {
                            kills.push((Limit::Cap, kill));
                        }
                    }
                    None => admitted = false,
                }
            }
            if admitted {
                table.next_id += 1;
                let id = table.next_id;
                let seq = table.seq();
                let (kill_tx, kill_rx) = oneshot::channel();
                table.evictable.insert(seq, id);
                table.pending.entry(addr).or_default().insert(id);
                table.conns.insert(
                    id,
                    Entry {
                        addr,
                        seq: Some(seq),
                        pending: true,
                        kill: Some(kill_tx),
                    },
                );
                Some((id, kill_rx))
            } else {
                None
            }
        };
        for (limit, kill) in kills {
            inner.dropped(limit);
            if let Some(kill) = kill {
                let _ = kill.send(());
            }
        }
        match admitted {
            Some((id, kill)) => {
                inner.metrics.open.inc();
                let shared = Arc::new(Shared {
                    phase: AtomicU8::new(phase as u8),
                    since_ms: AtomicU64::new(inner.now_ms()),
                });
                Some(Conn {
                    handle: ConnHandle {
                        inner: Arc::clone(inner),
                        id,
                        shared,
                    },
                    kill,
                })
            }
            None => {
                inner.dropped(Limit::Cap);
                None
            }
        }
    }

    /// Connections registered now.
    pub fn open(&self) -> usize {
        self.inner.lock().conns.len()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Table> {
        // The table stays consistent across a panic of a holder (every update is a few map
        // operations), so a poisoned lock is used as is.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Closes the oldest idle or incomplete connection, counted under `limit`.
    fn evict_oldest(&self, limit: Limit) {
        let kill = {
            let mut table = self.lock();
            let oldest = table.evictable.first_key_value().map(|(_, id)| *id);
            oldest.and_then(|id| table.remove(id))
        };
        if let Some(kill) = kill {
            self.dropped(limit);
            if let Some(kill) = kill {
                let _ = kill.send(());
            }
        }
    }

    fn dropped(&self, limit: Limit) {
        self.metrics
            .dropped
            .get_or_create(&LimitLabels {
                limit: limit.as_str(),
            })
            .inc();
        if let Some(count) = self.gate_open(&self.logs[limit.index()]) {
            let limits = &self.limits;
            tracing::warn!(
                server = self.name,
                limit = limit.as_str(),
                connections_closed = count,
                max_connections = limits.max_connections,
                max_pending_per_address = limits.max_pending_per_address,
                header_timeout_ms = limits.header_timeout.as_millis() as u64,
                handshake_timeout_ms = limits.handshake_timeout.as_millis() as u64,
                idle_timeout_ms = limits.idle_timeout.as_millis() as u64,
                "connection limit reached; closing connections (logged at most once a minute)"
            );
        }
    }

    fn log_accept_error(&self, err: &io::Error) {
        if let Some(count) = self.gate_open(&self.accept_log) {
            tracing::warn!(
                server = self.name,
                error = %err,
                failures = count,
                "accepting a connection failed; retrying after a pause (logged at most once a minute)"
            );
        }
    }

    /// Counts an event at `gate`; returns the number of events to report when a line is due.
    fn gate_open(&self, gate: &LogGate) -> Option<u64> {
        gate.pending.fetch_add(1, Ordering::Relaxed);
        let now = self.now_ms();
        let next = gate.next_ms.load(Ordering::Relaxed);
        if now < next {
            return None;
        }
        let after = now.saturating_add(u64::try_from(LOG_EVERY.as_millis()).unwrap_or(u64::MAX));
        gate.next_ms
            .compare_exchange(next, after, Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        Some(gate.pending.swap(0, Ordering::Relaxed))
    }

    fn timeout_of(&self, phase: Phase) -> Option<(Duration, Limit)> {
        match phase {
            Phase::Handshaking => Some((self.limits.handshake_timeout, Limit::HandshakeTimeout)),
            Phase::ReadingHead => Some((self.limits.header_timeout, Limit::HeaderTimeout)),
            Phase::Idle => Some((self.limits.idle_timeout, Limit::IdleTimeout)),
            Phase::Busy => None,
        }
    }
}

/// One registered connection: run its work with [`Conn::run`]. Dropping it unregisters the
/// connection.
#[derive(Debug)]
pub struct Conn {
    handle: ConnHandle,
    kill: oneshot::Receiver<()>,
}

impl Conn {
    /// A handle to report the connection's phases.
    pub fn handle(&self) -> ConnHandle {
        self.handle.clone()
    }

    /// Runs `work` (the connection) until it completes, the governor evicts the connection, or the
    /// deadline of its phase passes; `None` when it was cut short (`work` is dropped, closing the
    /// connection).
    pub async fn run<F: Future>(mut self, work: F) -> Option<F::Output> {
        let mut work = std::pin::pin!(work);
        let handle = &self.handle;
        let inner = &handle.inner;
        loop {
            let phase = handle.shared.phase.load(Ordering::Acquire);
            let since = handle.shared.since_ms.load(Ordering::Acquire);
            let limit = inner.timeout_of(Phase::from_u8(phase));
            let deadline = match limit {
                Some((timeout, _)) => inner.epoch + Duration::from_millis(since) + timeout,
                // Busy: look again later (the phase may have changed by then).
                None => Instant::now() + inner.limits.header_timeout,
            };
            tokio::select! {
                out = &mut work => return Some(out),
                _ = &mut self.kill => return None,
                () = tokio::time::sleep_until(deadline) => {
                    let unchanged = handle.shared.phase.load(Ordering::Acquire) == phase
                        && handle.shared.since_ms.load(Ordering::Acquire) == since;
                    if let (true, Some((_, limit))) = (unchanged, limit) {
                        let removed = inner.lock().remove(handle.id).is_some();
                        if removed {
                            inner.dropped(limit);
                        }
                        return None;
                    }
                }
            }
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let inner = &self.handle.inner;
        inner.lock().remove(self.handle.id);
        inner.metrics.open.dec();
    }
}

/// Reports a connection's phases to its governor. Cheap to clone.
#[derive(Clone)]
pub struct ConnHandle {
    inner: Arc<Inner>,
    id: u64,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ConnHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnHandle")
            .field("id", &self.id)
            .field("phase", &self.phase())
            .finish_non_exhaustive()
    }
}

impl ConnHandle {
    /// The connection's current phase.
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.shared.phase.load(Ordering::Acquire))
    }

    fn set_phase(&self, phase: Phase) {
        self.shared
            .since_ms
            .store(self.inner.now_ms(), Ordering::Release);
        self.shared.phase.store(phase as u8, Ordering::Release);
    }

    /// The TLS handshake finished: the request head is awaited now.
    pub fn handshake_done(&self) {
        self.set_phase(Phase::ReadingHead);
    }

    /// Marks the connection busy until the returned guard is dropped (then it is idle).
    pub fn busy(&self) -> BusyGuard {
        {
            let mut table = self.inner.lock();
            if let Some(entry) = table.conns.get_mut(&self.id) {
                let seq = entry.seq.take();
                let addr = entry.addr;
                let was_pending = std::mem::replace(&mut entry.pending, false);
                if let Some(seq) = seq {
                    table.evictable.remove(&seq);
                }
                if was_pending {
                    table.unpend(addr, self.id);
                }
            }
        }
        self.set_phase(Phase::Busy);
        BusyGuard {
            handle: self.clone(),
        }
    }

    /// The request's body is being read: until the returned guard is dropped the connection is
    /// timed and evictable as one reading its head ([`Phase::ReadingHead`], its header timeout
    /// counting from now), so that a slow body cannot hold a slot. Dropping the guard makes the
    /// connection busy again.
    pub fn reading_body(&self) -> BodyGuard {
        {
            let mut table = self.inner.lock();
            let seq = table.seq();
            if let Some(entry) = table.conns.get_mut(&self.id) {
                let old = entry.seq.replace(seq);
                if let Some(old) = old {
                    table.evictable.remove(&old);
                }
                table.evictable.insert(seq, self.id);
            }
        }
        self.set_phase(Phase::ReadingHead);
        BodyGuard {
            handle: self.clone(),
        }
    }

    fn idle(&self) {
        {
            let mut table = self.inner.lock();
            let seq = table.seq();
            if let Some(entry) = table.conns.get_mut(&self.id) {
                let old = entry.seq.replace(seq);
                if let Some(old) = old {
                    table.evictable.remove(&old);
                }
                table.evictable.insert(seq, self.id);
            }
        }
        self.set_phase(Phase::Idle);
    }

    /// `stream`, watched for the first bytes of a request on an idle keep-alive connection (which
    /// start its header timeout).
    pub fn io<S>(&self, stream: S) -> GuardedIo<S> {
        GuardedIo {
            stream,
            handle: self.clone(),
        }
    }

    /// `service`, marking the connection busy from each request head until the response body has
    /// been handed over (or dropped).
    pub fn service<S>(&self, service: S) -> GuardedService<S> {
        GuardedService {
            service,
            handle: self.clone(),
        }
    }
}

/// Keeps a connection [`Phase::Busy`]; dropping it makes the connection idle.
#[derive(Debug)]
pub struct BusyGuard {
    handle: ConnHandle,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.handle.idle();
    }
}

/// Keeps a connection timed while its request body is read; dropping it makes the connection busy
/// again. See [`ConnHandle::reading_body`].
#[derive(Debug)]
pub struct BodyGuard {
    handle: ConnHandle,
}

impl Drop for BodyGuard {
    fn drop(&mut self) {
        let handle = &self.handle;
        {
            let mut table = handle.inner.lock();
            if let Some(entry) = table.conns.get_mut(&handle.id)
                && let Some(seq) = entry.seq.take()
            {
                table.evictable.remove(&seq);
            }
        }
        handle.set_phase(Phase::Busy);
    }
}

/// A byte stream that reports the start of a request on an idle connection; see
/// [`ConnHandle::io`].
#[derive(Debug)]
pub struct GuardedIo<S> {
    stream: S,
    handle: ConnHandle,
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let shared = &this.handle.shared;
            if shared.phase.load(Ordering::Acquire) == Phase::Idle as u8 {
                this.handle.set_phase(Phase::ReadingHead);
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A hyper service that keeps its connection busy while answering; see [`ConnHandle::service`].
#[derive(Debug, Clone)]
pub struct GuardedService<S> {
    service: S,
    handle: ConnHandle,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, Req, B> hyper::service::Service<Req> for GuardedService<S>
where
    S: hyper::service::Service<Req, Response = hyper::Response<B>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    B: Body + Unpin + 'static,
{
    type Response = hyper::Response<GuardedBody<B>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn call(&self, req: Req) -> Self::Future {
        let busy = self.handle.busy();
        let answer = self.service.call(req);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| GuardedBody {
                body,
                busy: Some(busy),
            }))
        })
    }
}

/// A response body that keeps its connection busy until it has been read to the end or dropped.
#[derive(Debug)]
pub struct GuardedBody<B> {
    body: B,
    busy: Option<BusyGuard>,
}

impl<B: Body + Unpin> Body for GuardedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) || this.body.is_end_stream() {
            this.busy = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Raises the process's soft open-file limit to its hard limit (each connection holds a file
/// descriptor); returns the soft limit now in force.
pub fn raise_nofile_limit() -> Result<u64, GuardError> {
    rlimit::increase_nofile_limit(u64::MAX).map_err(GuardError::NofileLimit)
}

/// File descriptors kept for everything but the connections (listeners, files, clients).
const RESERVED_DESCRIPTORS: u64 = 256;

/// Raises the soft open-file limit as far as the hard limit allows, and warns when `limits` could
/// hold more connections than descriptors remain (the server then closes idle connections when
/// accepting fails for want of descriptors).
fn ensure_descriptors(name: &'static str, limits: &ConnLimits) {
    match raise_nofile_limit() {
        Ok(soft) => {
            let wanted = u64::try_from(limits.max_connections)
                .unwrap_or(u64::MAX)
                .saturating_add(RESERVED_DESCRIPTORS);
            if soft < wanted {
                tracing::warn!(
                    server = name,
                    nofile = soft,
                    max_connections = limits.max_connections,
                    "the open-file limit is below the connection cap; raise the hard RLIMIT_NOFILE"
                );
            }
        }
        Err(err) => tracing::warn!(server = name, error = %err, "cannot raise the open-file limit"),
    }
}

/// The soft open-file limit in force.
pub fn nofile_limit() -> Result<u64, GuardError> {
    rlimit::Resource::NOFILE
        .get()
        .map(|(soft, _hard)| soft)
        .map_err(GuardError::NofileLimit)
}

fn is_transient(err: &io::Error) -> bool {
    use io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted, WouldBlock};
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || is_resource_exhaustion(err)
        // EPROTO, EPERM (a firewall refused it), ENETDOWN and friends end one accept, not the listener.
        || matches!(err.raw_os_error(), Some(1 | 71 | 100 | 101 | 104 | 110 | 113))
}

fn is_resource_exhaustion(err: &io::Error) -> bool {
    // ENOMEM, ENFILE, EMFILE, ENOBUFS on Linux.
    matches!(err.raw_os_error(), Some(12 | 23 | 24 | 105))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn governor(max: usize, per_address: usize) -> Governor {
        let limits = ConnLimits {
            max_connections: max,
            max_pending_per_address: per_address,
            ..ConnLimits::default()
        };
        Governor::new("test", limits, ConnMetrics::default())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_non_busy_connection_is_evicted() {
        let gov = governor(3, 100);
        let mut a = gov.admit(ip("127.0.0.1"), Phase::ReadingHead).unwrap();
        let b = gov.admit(ip("127.0.0.1"), Phase::ReadingHead).unwrap();
        let _busy = b.handle().busy();
        let mut c = gov.admit(ip("127.0.0.1"), Phase::ReadingHead).unwrap();
        // Full: the oldest non-busy (a) goes, b is busy and stays.
        let _d = gov.admit(ip("127.0.0.1"), Phase::ReadingHead).unwrap();
        assert!(a.kill.try_recv().is_ok());
        assert!(c.kill.try_recv().is_err());
        assert_eq!(gov.open(), 3);
        assert_eq!(gov.metrics().dropped(Limit::Cap), 1);
    }

    #[tokio::test]
    async fn a_connection_idle_again_is_younger_than_those_waiting_since() {
        let gov = governor(2, 100);
        let a = gov.admit(ip("127.0.0.1"), Phase::ReadingHead).unwrap();
        let mut b = gov.admit(ip("127.0.0.1"), Phase::ReadingHead).unwrap();
        drop(a.handle().busy()); // a answered a request: idle, newest in the order
        let mut a = a;
        let _c = gov.admit(ip("127.0.0.1"), Phase::ReadingHead).unwrap();
        assert!(b.kill.try_recv().is_ok());
        assert!(a.kill.try_recv().is_err());
    }

    #[tokio::test]
    async fn with_every_connection_busy_the_new_one_is_refused() {
        let gov = governor(1, 100);
        let a = gov.admit(ip("127.0.0.1"), Phase::ReadingHead).unwrap();
        let _busy = a.handle().busy();
        assert!(gov.admit(ip("127.0.0.1"), Phase::ReadingHead).is_none());
        assert_eq!(gov.metrics().dropped(Limit::Cap), 1);
    }

    #[tokio::test]
    async fn the_per_address_cap_closes_that_address_s_oldest_incomplete_connection() {
        let gov = governor(100, 2);
        let mut other = gov.admit(ip("127.0.0.1"), Phase::ReadingHead).unwrap();
        let mut a = gov.admit(ip("127.0.0.2"), Phase::ReadingHead).unwrap();
        let mut b = gov.admit(ip("127.0.0.2"), Phase::ReadingHead).unwrap();
        let _c = gov.admit(ip("127.0.0.2"), Phase::ReadingHead).unwrap();
        assert!(a.kill.try_recv().is_ok());
        assert!(b.kill.try_recv().is_err());
        assert!(other.kill.try_recv().is_err());
        assert_eq!(gov.metrics().dropped(Limit::PerAddress), 1);
        // A connection that completed a request no longer counts.
        let _busy = b.handle().busy();
        let _d = gov.admit(ip("127.0.0.2"), Phase::ReadingHead).unwrap();
        assert!(b.kill.try_recv().is_err());
        assert_eq!(gov.metrics().dropped(Limit::PerAddress), 1);
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        assert_eq!(
            AddrKey::of(ip("2001:db8::1")),
            AddrKey::of(ip("2001:db8::ffff:2"))
        );
        assert_ne!(
            AddrKey::of(ip("2001:db8::1")),
            AddrKey::of(ip("2001:db8:0:1::1"))
        );
        assert_eq!(
            AddrKey::of(ip("::ffff:127.0.0.1")),
            AddrKey::of(ip("127.0.0.1"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_incomplete_head_times_out_and_is_counted() {
        let gov = governor(10, 10);
        let conn = gov.admit(ip("127.0.0.1"), Phase::ReadingHead).unwrap();
        let out = conn.run(std::future::pending::<()>()).await;
        assert!(out.is_none());
        assert_eq!(gov.metrics().dropped(Limit::HeaderTimeout), 1);
        assert_eq!(gov.open(), 0);
        assert_eq!(gov.metrics().open(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_does_not_time_out() {
        let gov = governor(10, 10);
        let conn = gov.admit(ip("127.0.0.1"), Phase::Handshaking).unwrap();
        let handle = conn.handle();
        handle.handshake_done();
        let busy = handle.busy();
        let work = async move {
            tokio::time::sleep(DEFAULT_IDLE_TIMEOUT * 3).await;
            drop(busy);
            7
        };
        assert_eq!(conn.run(work).await, Some(7));
        assert_eq!(gov.metrics().dropped(Limit::HeaderTimeout), 0);
    }

    #[test]
    fn the_log_gate_opens_once_a_minute() {
        let gov = governor(1, 1);
        let gate = gate();
        assert_eq!(gov.inner.gate_open(&gate), Some(1));
        assert_eq!(gov.inner.gate_open(&gate), None);
        assert_eq!(gov.inner.gate_open(&gate), None);
        assert_eq!(gate.pending.load(Ordering::Relaxed), 2);
    }
}

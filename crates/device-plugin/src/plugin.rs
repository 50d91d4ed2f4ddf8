//! The running plugin: one socket + gRPC server + kubelet registration per resource, the watch of
//! the plugin directory (kubelet restarts) and of the device nodes (health).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use inotify::{EventStream, WatchMask};
use ops_http::Readiness;
use tokio::net::UnixListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::metrics::Metrics;
use crate::platform::{DeviceNodes, MIB, SgxPlatform};
use crate::proto::device_plugin_server::DevicePluginServer;
use crate::proto::{DevicePluginOptions, RegisterRequest};
use crate::resource::{Resource, ResourceKind, socket_file_name, validate_resource_name};
use crate::service::DevicePluginService;
use crate::transport::{self, FileId};
use crate::{Error, listing};

/// The kubelet API version we speak.
pub const API_VERSION: &str = "v1beta1";
/// kubelet's registration socket file name in the plugin directory.
pub const KUBELET_SOCKET: &str = "kubelet.sock";
/// Default plugin directory on a node.
pub const DEFAULT_PLUGIN_DIR: &str = "/var/lib/kubelet/device-plugins/";
/// Default number of enclave and provision slots (kubelet's default pod limit per node).
pub const DEFAULT_SLOTS: u64 = 110;
/// EPC advertised in simulate mode when no size is configured.
pub const DEFAULT_SIMULATED_EPC_MIB: u64 = 8192;

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// kubelet's device-plugin directory (holds `kubelet.sock` and our sockets).
    pub plugin_dir: PathBuf,
    /// The resources to serve and their names.
    pub resources: Vec<(ResourceKind, String)>,
    /// Advertise resources without SGX device nodes and grant none (`SGX_SIMULATION=1` instead).
    pub simulate: bool,
    /// EPC size overriding discovery, in MiB.
    pub epc_mib: Option<u64>,
    /// Enclave slots.
    pub enclave_limit: u64,
    /// Provision slots.
    pub provision_limit: u64,
    /// Period of the fallback checks: our sockets and kubelet.sock (re-registration), device nodes
    /// and EPC size (health). Only changes are sent to kubelet.
    pub recheck_interval: Duration,
    /// Watch the plugin directory and the dev root with inotify (else only the periodic re-check
    /// notices changes, as happens when a re-mounted hostPath loses its watches).
    pub inotify: bool,
    /// Time allowed for one Register call (kubelet dials us back inside it).
    pub register_timeout: Duration,
    /// Longest wait between Register attempts.
    pub max_backoff: Duration,
}

impl Config {
    /// All three resources under their default names, real-node defaults.
    pub fn new(plugin_dir: impl Into<PathBuf>) -> Self {
        Self {
            plugin_dir: plugin_dir.into(),
            resources: [
                ResourceKind::Epc,
                ResourceKind::Enclave,
                ResourceKind::Provision,
            ]
            .into_iter()
            .map(|kind| (kind, kind.default_name().to_owned()))
            .collect(),
            simulate: false,
            epc_mib: None,
            enclave_limit: DEFAULT_SLOTS,
            provision_limit: DEFAULT_SLOTS,
            recheck_interval: Duration::from_secs(5),
            inotify: true,
            register_timeout: Duration::from_secs(10),
            max_backoff: Duration::from_secs(5),
        }
    }

    /// Check names, uniqueness, socket paths and the plugin directory.
    pub fn validate(&self) -> Result<(), Error> {
        if self.resources.is_empty() {
            return Err(Error::NoResources);
        }
        let mut names = HashSet::new();
        let mut kinds = HashSet::new();
        let mut sockets = HashSet::new();
        for (kind, name) in &self.resources {
            validate_resource_name(name)?;
            if !kinds.insert(*kind) {
                return Err(Error::DuplicateResource(kind.as_str().to_owned()));
            }
            if !names.insert(name.as_str()) {
                return Err(Error::DuplicateResource(name.clone()));
            }
            let socket = socket_file_name(name);
            transport::check_socket_path(&self.plugin_dir.join(&socket))?;
            if !sockets.insert(socket.clone()) {
                return Err(Error::DuplicateSocket(socket));
            }
        }
        transport::check_socket_path(&self.plugin_dir.join(KUBELET_SOCKET))?;
        match std::fs::metadata(&self.plugin_dir) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(Error::PluginDirNotADirectory {
                path: self.plugin_dir.clone(),
            }),
            Err(source) => Err(Error::PluginDir {
                path: self.plugin_dir.clone(),
                source,
            }),
        }
    }
}

/// The EPC size last read, kept when a later read fails.
#[derive(Clone, Debug, Default)]
struct EpcState {
    mib: u64,
    numa: Vec<(i64, u64)>,
}

/// The EPC size in bytes as the plugin knows it: `None` until it is known (configured, simulated
/// or discovered once), then the latest size. Changes only when the size does.
pub type EpcBytes = watch::Sender<Option<u64>>;

struct Shared {
    config: Config,
    platform: Arc<dyn SgxPlatform>,
    metrics: Metrics,
    readiness: Readiness,
    resources: Vec<Arc<Resource>>,
    registered: Mutex<Vec<bool>>,
    epc: Mutex<Option<EpcState>>,
    epc_bytes: EpcBytes,
    recheck: Arc<Notify>,
    kubelet_sock: PathBuf,
}

impl Shared {
    fn set_registered(&self, index: usize, registered: bool) {
        let mut flags = self
            .registered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(flag) = flags.get_mut(index) {
            *flag = registered;
        }
        self.readiness.set_ready(flags.iter().all(|f| *f));
    }

    /// Report a known EPC size in bytes; watchers wake only when it changed.
    fn report_epc_bytes(&self, bytes: u64) {
        self.epc_bytes.send_if_modified(|known| {
            let changed = *known != Some(bytes);
            *known = Some(bytes);
            changed
        });
    }

    fn current_epc(&self) -> EpcState {
        if let Some(mib) = self.config.epc_mib {
            self.report_epc_bytes(mib.saturating_mul(MIB));
            return EpcState {
                mib,
                numa: Vec::new(),
            };
        }
        if self.config.simulate {
            self.report_epc_bytes(DEFAULT_SIMULATED_EPC_MIB * MIB);
            return EpcState {
                mib: DEFAULT_SIMULATED_EPC_MIB,
                numa: Vec::new(),
            };
        }
        let mut last = self
            .epc
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match self.platform.epc() {
            Ok(epc) => {
                let state = EpcState {
                    mib: epc.total_mib(),
                    numa: epc.numa_mib().unwrap_or_default(),
                };
                if last.as_ref().is_none_or(|l| l.mib != state.mib) {
                    if state.mib == 0 {
                        tracing::warn!(
                            "no SGX EPC found (sysfs sgx_total_bytes, CPUID leaf 0x12): EPC resource has 0 devices"
                        );
                    } else {
                        tracing::info!(epc_mib = state.mib, source = ?epc.source, "EPC discovered");
                    }
                }
                *last = Some(state.clone());
                self.report_epc_bytes(epc.total_bytes());
                state
            }
            Err(err) => {
                tracing::error!(error = %err, "EPC discovery failed; keeping the last known size");
                last.clone().unwrap_or_default()
            }
        }
    }

    /// Look at the machine and update every resource; kubelet hears only of changes.
    fn refresh(&self) {
        let nodes = if self.config.simulate {
            DeviceNodes::ALL
        } else {
            self.platform.device_nodes()
        };
        let epc = self.current_epc();
        let cap = listing::max_devices(listing::LIST_AND_WATCH_BUDGET);
        for resource in &self.resources {
            let kind = resource.kind();
            let (wanted, numa) = match kind {
                ResourceKind::Epc => (epc.mib, epc.numa.clone()),
                ResourceKind::Enclave => (self.config.enclave_limit, Vec::new()),
                ResourceKind::Provision => (self.config.provision_limit, Vec::new()),
            };
            let present = kind.nodes_present(&nodes) && wanted > 0;
            let adv = resource.update(wanted, present, numa);
            if !adv.changed {
                continue;
            }
            let unadvertised = wanted.saturating_sub(cap);
            self.metrics.set_devices(
                resource.name(),
                adv.healthy,
                adv.unhealthy,
                adv.encoded_len,
                unadvertised,
            );
            if unadvertised > 0 {
                tracing::warn!(
                    resource = %resource.name(),
                    wanted,
                    advertised = cap,
                    unadvertised,
                    "more devices than one ListAndWatch message (4 MiB) can carry; the rest is not advertised"
                );
            }
            if present {
                tracing::info!(resource = %resource.name(), healthy = adv.healthy, bytes = adv.encoded_len, "devices healthy");
            } else {
                tracing::warn!(
                    resource = %resource.name(),
                    unhealthy = adv.unhealthy,
                    left_out = adv.omitted,
                    nodes = ?nodes,
                    "SGX device node for this resource is missing (or the EPC is empty): no device can be allocated"
                );
            }
        }
    }
}

/// Run the plugin until `shutdown` completes; then stop serving and remove our sockets.
///
/// Fails before serving anything if the configuration is invalid, the plugin directory is missing,
/// or a socket cannot be created (in use by a live plugin, read-only directory, …). After that it
/// keeps going: failed registrations are retried with backoff, and kubelet restarts are followed.
pub async fn run(
    config: Config,
    platform: Arc<dyn SgxPlatform>,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    run_with_epc_watch(
        config,
        platform,
        metrics,
        readiness,
        watch::Sender::new(None),
        shutdown,
    )
    .await
}

/// [`run`], also reporting the EPC size in bytes on `epc_bytes` (subscribe before calling): the
/// configured size (`epc_mib`), the simulated one, or the discovered one, re-read on every device
/// change and every recheck period. A failed discovery keeps the last size.
pub async fn run_with_epc_watch(
    config: Config,
    platform: Arc<dyn SgxPlatform>,
    metrics: Metrics,
    readiness: Readiness,
    epc_bytes: EpcBytes,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    config.validate()?;
    if config.simulate {
        tracing::warn!(
            "SIMULATE MODE: advertising SGX resources without SGX hardware; containers get no device node and SGX_SIMULATION=1"
        );
    }
    readiness.set_ready(false);
    let resources: Vec<Arc<Resource>> = config
        .resources
        .iter()
        .map(|(kind, name)| Arc::new(Resource::new(*kind, name.clone(), config.simulate)))
        .collect();
    let shared = Arc::new(Shared {
        kubelet_sock: config.plugin_dir.join(KUBELET_SOCKET),
        registered: Mutex::new(vec![false; resources.len()]),
        config,
        platform,
        metrics,
        readiness,
        resources,
        epc: Mutex::new(None),
        epc_bytes,
        recheck: Arc::new(Notify::new()),
    });
    shared.refresh();

    // Listen on every socket before anything else, so that setup errors surface now.
    let mut listeners = Vec::new();
    for resource in &shared.resources {
        let path = shared
            .config
            .plugin_dir
            .join(socket_file_name(resource.name()));
        match transport::bind(&path).await {
            Ok(listener) => listeners.push((listener, transport::file_id(&path))),
            Err(err) => {
                for (resource, (_, id)) in shared.resources.iter().zip(&listeners) {
                    transport::remove_if_same(
                        &shared
                            .config
                            .plugin_dir
                            .join(socket_file_name(resource.name())),
                        *id,
                    );
                }
                return Err(err);
            }
        }
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let (wake_tx, _) = watch::channel(0u64);
    let mut tasks = JoinSet::new();
    tasks.spawn(watch_plugin_dir(
        Arc::clone(&shared),
        wake_tx.clone(),
        stop_rx.clone(),
    ));
    if !shared.config.simulate {
        tasks.spawn(watch_devices(Arc::clone(&shared), stop_rx.clone()));
    }
    for (index, (listener, _)) in listeners.into_iter().enumerate() {
        tasks.spawn(resource_loop(
            Arc::clone(&shared),
            index,
            listener,
            wake_tx.subscribe(),
            stop_rx.clone(),
        ));
    }
    shutdown.await;
    tracing::info!("shutting down: closing plugin sockets");
    let _ = stop_tx.send(true);
    while let Some(result) = tasks.join_next().await {
        if let Err(err) = result {
            tracing::error!(error = %err, "plugin task failed");
        }
    }
    shared.readiness.set_ready(false);
    Ok(())
}

/// Exponential backoff from 100 ms up to a maximum.
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const INITIAL: Duration = Duration::from_millis(100);

    fn new(max: Duration) -> Self {
        Self {
            next: Self::INITIAL,
            max,
        }
    }

    fn next(&mut self) -> Duration {
        let now = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        now
    }

    fn reset(&mut self) {
        self.next = Self::INITIAL;
    }
}

enum Wait {
    Elapsed,
    Woken,
    Stop,
}

/// Sleep `delay`, cut short by a plugin-directory event or the stop signal.
async fn wait(
    delay: Duration,
    wake: &mut watch::Receiver<u64>,
    stop: &mut watch::Receiver<bool>,
) -> Wait {
    tokio::select! {
        _ = stop.wait_for(|s| *s) => Wait::Stop,
        _ = wake.changed() => Wait::Woken,
        () = tokio::time::sleep(delay) => Wait::Elapsed,
    }
}

enum Ended {
    /// Shut down.
    Stop,
    /// Our socket was deleted or replaced (kubelet restarted and cleaned the directory).
    SocketGone,
    /// kubelet.sock was recreated (kubelet restarted).
    KubeletRestarted,
    /// Our gRPC server stopped by itself.
    ServerExited,
}

async fn resource_loop(
    shared: Arc<Shared>,
    index: usize,
    first_listener: UnixListener,
    mut wake: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(resource) = shared.resources.get(index).cloned() else {
        return;
    };
    let name = resource.name().to_owned();
    let socket_name = socket_file_name(&name);
    let socket = shared.config.plugin_dir.join(&socket_name);
    let mut listener = Some(first_listener);
    let mut backoff = Backoff::new(shared.config.max_backoff);
    loop {
        let listener = match listener.take() {
            Some(listener) => listener,
            None => match transport::bind(&socket).await {
                Ok(listener) => listener,
                Err(err) => {
                    tracing::warn!(resource = %name, error = %err, "cannot listen again; retrying");
                    if let Wait::Stop = wait(backoff.next(), &mut wake, &mut stop).await {
                        return;
                    }
                    continue;
                }
            },
        };
        let socket_id = transport::file_id(&socket);
        let (server_stop_tx, server_stop_rx) = watch::channel(false);
        let service = DevicePluginService::new(
            Arc::clone(&resource),
            Arc::clone(&shared.platform),
            shared.metrics.clone(),
            Arc::clone(&shared.recheck),
            server_stop_rx.clone(),
        );
        let mut server = tokio::spawn(serve(listener, service, server_stop_rx));

        let ended = 'session: {
            // Register until kubelet accepts us.
            let kubelet_id = loop {
                if *stop.borrow() {
                    break 'session Ended::Stop;
                }
                if transport::file_id(&socket) != socket_id {
                    break 'session Ended::SocketGone;
                }
                wake.borrow_and_update();
                let kubelet_id = transport::file_id(&shared.kubelet_sock);
                let request = RegisterRequest {
                    version: API_VERSION.to_owned(),
                    endpoint: socket_name.clone(),
                    resource_name: name.clone(),
                    options: Some(DevicePluginOptions {
                        pre_start_required: false,
                        get_preferred_allocation_available: false,
                    }),
                };
                // A kubelet that accepts but never answers must not hold up shutdown.
                let attempt = tokio::select! {
                    _ = stop.wait_for(|s| *s) => break 'session Ended::Stop,
                    attempt = transport::register(&shared.kubelet_sock, request, shared.config.register_timeout) => attempt,
                };
                match attempt {
                    Ok(()) => {
                        shared.metrics.registration(&name, true);
                        tracing::info!(resource = %name, endpoint = %socket_name, "registered with kubelet");
                        break kubelet_id;
                    }
                    Err(err) => {
                        shared.metrics.registration(&name, false);
                        let delay = backoff.next();
                        if let Error::RegistrationRejected { .. } = err {
                            // kubelet refuses (name taken by another plugin, unsupported version):
                            // keep retrying, since the other plugin may go away, but say it loudly.
                            tracing::error!(resource = %name, error = %err, retry_in = ?delay, "kubelet rejected the registration");
                        } else {
                            tracing::warn!(resource = %name, error = %err, retry_in = ?delay, "registration with kubelet failed");
                        }
                        // Retry early only when kubelet.sock or our socket changed; other
                        // events in the directory do not make a retry more likely to succeed.
                        let deadline = tokio::time::Instant::now() + delay;
                        loop {
                            let left =
                                deadline.saturating_duration_since(tokio::time::Instant::now());
                            match wait(left, &mut wake, &mut stop).await {
                                Wait::Stop => break 'session Ended::Stop,
                                Wait::Elapsed => break,
                                Wait::Woken => {
                                    if transport::file_id(&shared.kubelet_sock) != kubelet_id
                                        || transport::file_id(&socket) != socket_id
                                    {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                }
            };
            backoff.reset();
            shared.set_registered(index, true);
            // Serve until something changes.
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break 'session Ended::Stop,
                    _ = &mut server => break 'session Ended::ServerExited,
                    changed = wake.changed() => if changed.is_err() { break 'session Ended::Stop },
                }
                if transport::file_id(&socket) != socket_id {
                    break 'session Ended::SocketGone;
                }
                if transport::file_id(&shared.kubelet_sock).is_some_and(|id| Some(id) != kubelet_id)
                {
                    break 'session Ended::KubeletRestarted;
                }
            }
        };
        shared.set_registered(index, false);
        let _ = server_stop_tx.send(true);
        if !server.is_finished()
            && tokio::time::timeout(Duration::from_secs(5), &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
        transport::remove_if_same(&socket, socket_id);
        match ended {
            Ended::Stop => {
                tracing::info!(resource = %name, "stopped");
                return;
            }
            Ended::SocketGone => {
                tracing::info!(resource = %name, "our socket was removed (kubelet restart?): listening again")
            }
            Ended::KubeletRestarted => {
                tracing::info!(resource = %name, "kubelet restarted: registering again")
            }
            Ended::ServerExited => {
                tracing::warn!(resource = %name, "gRPC server stopped: listening again");
                if let Wait::Stop = wait(backoff.next(), &mut wake, &mut stop).await {
                    return;
                }
            }
        }
    }
}

async fn serve(
    listener: UnixListener,
    service: DevicePluginService,
    stopping: watch::Receiver<bool>,
) {
    let router = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(32)
        .http2_keepalive_interval(Some(Duration::from_secs(60)))
        .add_service(DevicePluginServer::new(service));
    transport::serve_until_stopped(router, listener, stopping, "plugin").await;
}

/// The next inotify event name, or `None` when the watch is gone (and must be reopened).
async fn next_event(
    events: &mut Option<EventStream<[u8; 4096]>>,
) -> Option<Option<std::ffi::OsString>> {
    match events {
        Some(stream) => match stream.next().await {
            Some(Ok(event)) if event.mask.contains(inotify::EventMask::IGNORED) => None,
            Some(Ok(event)) => Some(event.name),
            Some(Err(err)) => {
                tracing::warn!(error = %err, "inotify read failed");
                None
            }
            None => None,
        },
        None => std::future::pending().await,
    }
}

/// Wake the resource loops on every change in the plugin directory and every recheck period, and
/// count kubelet restarts (kubelet.sock replaced).
async fn watch_plugin_dir(
    shared: Arc<Shared>,
    wake: watch::Sender<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let dir = shared.config.plugin_dir.clone();
    let mask = WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::DELETE_SELF;
    let mut events = transport::open_watch(shared.config.inotify, std::slice::from_ref(&dir), mask);
    let mut last_kubelet: Option<FileId> = transport::file_id(&shared.kubelet_sock);
    let mut tick = tokio::time::interval(shared.config.recheck_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => {
                if events.is_none() {
                    events = transport::open_watch(shared.config.inotify, std::slice::from_ref(&dir), mask);
                }
            }
            event = next_event(&mut events) => match event {
                Some(name) => {
                    if name.as_deref() == Some(OsStr::new(KUBELET_SOCKET)) {
                        tracing::debug!("kubelet.sock changed");
                    }
                }
                None => events = None,
            },
        }
        let now = transport::file_id(&shared.kubelet_sock);
        if let Some(id) = now {
            if last_kubelet.is_some_and(|last| last != id) {
                shared.metrics.kubelet_restart();
                tracing::info!("kubelet restart seen (kubelet.sock recreated)");
            }
            last_kubelet = Some(id);
        }
        wake.send_modify(|generation| *generation = generation.wrapping_add(1));
    }
}

/// Re-check device nodes and EPC on every change under the dev root, on request, and every recheck
/// period.
async fn watch_devices(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let dirs = shared.platform.watch_dirs();
    let mask = WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::ATTRIB
        | WatchMask::DELETE_SELF;
    let mut events = transport::open_watch(shared.config.inotify, &dirs, mask);
    let mut tick = tokio::time::interval(shared.config.recheck_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = shared.recheck.notified() => {}
            _ = tick.tick() => {}
            event = next_event(&mut events) => if event.is_none() { events = None },
        }
        // Subdirectories (the DCAP driver's `sgx/`) may appear later; watching an already watched
        // directory again is harmless.
        match &events {
            Some(stream) => {
                for dir in &dirs {
                    let _ = stream.watches().add(dir, mask);
                }
            }
            None => events = transport::open_watch(shared.config.inotify, &dirs, mask),
        }
        shared.refresh();
    }
}

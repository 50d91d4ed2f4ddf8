//! The kubelet side of the driver: registration with kubelet's plugin watcher, the DRA gRPC
//! service (v1 and v1beta1), CDI specs per claim and the checkpoint.
//!
//! [`run`] serves, until its shutdown future completes:
//!
//! - the DRA service on `<plugins dir>/<driver>/dra.sock` (started first), and
//! - the registration service on `<registry dir>/<driver>-reg.sock`, answering `GetInfo` with
//!   type `DRAPlugin`, the driver name, the absolute `dra.sock` path and
//!   `["v1.DRAPlugin", "v1beta1.DRAPlugin", "v1alpha1.DRAResourceHealth"]`; the DRA socket also
//!   serves the resource health stream kubelet watches ([`health`]).
//!
//! Stale sockets are replaced when listening; both sockets are removed on shutdown. A socket that
//! disappears (kubelet may clean its directories) is created again, so kubelet's plugin watcher
//! registers the driver again (inotify on both directories, plus a periodic check).
//!
//! Claims come from a [`ClaimReader`] (the API server in production: [`KubeClaimReader`]); what
//! the node has comes from a [`tokio::sync::watch`] channel of [`Inventory`], fed by whoever scans
//! the platform.
//!
//! ```no_run
//! use std::sync::Arc;
//! use dra_driver::inventory::Inventory;
//! use dra_driver::kubelet::{self, Config, KubeClaimReader, Metrics};
//!
//! # async fn example(client: kube::Client, inventory: Inventory) -> Result<(), kubelet::Error> {
//! let mut registry = prometheus_client::registry::Registry::default();
//! let metrics = Metrics::new(&mut registry);
//! let (_feed, inventory) = tokio::sync::watch::channel(inventory);
//! let claims = Arc::new(KubeClaimReader::new(client, KubeClaimReader::DEFAULT_TIMEOUT));
//! kubelet::run(Config::new("node-a"), inventory, claims, metrics, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```

pub mod atomic;
pub mod cdi;
pub mod checkpoint;
pub mod claims;
pub mod health;
pub mod metrics;
pub mod opaque;
pub mod prepare;
pub mod proto;
pub mod service;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use device_plugin::transport::{self, FileId};
use futures_util::StreamExt;
use inotify::{EventStream, WatchMask};
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::server::Router;

pub use claims::{ClaimReadError, ClaimReader, KubeClaimReader};
pub use metrics::Metrics;
pub use prepare::{ClaimRef, Preparer, PreparerConfig};

use crate::inventory::Inventory;
use crate::names;
use health::HealthService;
use proto::pluginregistration::registration_server::RegistrationServer;
use service::{DraService, RegistrationService};

/// Where the kubelet side lives and who it is.
#[derive(Clone, Debug)]
pub struct Config {
    /// The driver name (a DNS subdomain of at most 63 characters).
    pub driver_name: String,
    /// The node name: this node's pool name in allocation results.
    pub node_name: String,
    /// Kubelet's plugin registration directory.
    pub registry_dir: PathBuf,
    /// Parent of the driver's own directory (`dra.sock`, checkpoint).
    pub plugins_dir: PathBuf,
    /// The CDI spec directory the container runtime reads.
    pub cdi_root: PathBuf,
    /// The node's boot ID file.
    pub boot_id_path: PathBuf,
    /// How often the sockets are checked besides inotify (at least every millisecond: zero is
    /// taken as one).
    pub recheck_interval: Duration,
    /// Watch the directories with inotify (else only the periodic check).
    pub inotify: bool,
}

/// The default boot ID file.
pub const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

impl Config {
    /// The defaults of a standard node for `node_name`.
    pub fn new(node_name: impl Into<String>) -> Self {
        Self {
            driver_name: names::DEFAULT_DRIVER_NAME.to_owned(),
            node_name: node_name.into(),
            registry_dir: names::paths::KUBELET_REGISTRY_DIR.into(),
            plugins_dir: names::paths::KUBELET_PLUGINS_DIR.into(),
            cdi_root: names::cdi::DEFAULT_ROOT.into(),
            boot_id_path: BOOT_ID_PATH.into(),
            recheck_interval: Duration::from_secs(5),
            inotify: true,
        }
    }

    /// The driver's directory: `<plugins dir>/<driver>`.
    pub fn plugin_dir(&self) -> PathBuf {
        self.plugins_dir.join(&self.driver_name)
    }

    /// The DRA service socket: `<plugins dir>/<driver>/dra.sock`.
    pub fn dra_socket(&self) -> PathBuf {
        self.plugin_dir().join(names::paths::DRA_SOCKET)
    }

    /// The registration socket: `<registry dir>/<driver>-reg.sock`.
    pub fn registration_socket(&self) -> PathBuf {
        self.registry_dir
            .join(format!("{}-reg.sock", self.driver_name))
    }

    /// The checkpoint: `<plugins dir>/<driver>/checkpoint.json`.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.plugin_dir().join(names::paths::CHECKPOINT)
    }

    /// What the [`Preparer`] needs.
    pub fn preparer_config(&self) -> PreparerConfig {
        PreparerConfig {
            driver: self.driver_name.clone(),
            node: self.node_name.clone(),
            cdi_root: self.cdi_root.clone(),
            checkpoint: self.checkpoint_path(),
            boot_id: self.boot_id_path.clone(),
        }
    }
}

/// Why the kubelet side cannot run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The driver name is not a DNS subdomain of at most 63 characters.
    #[error("driver name {0:?} must be a lowercase DNS subdomain of at most 63 characters")]
    InvalidDriverName(String),
    /// The node name is empty.
    #[error("the node name is empty")]
    NoNodeName,
    /// A directory could not be created.
    #[error("creating {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A path could not be made absolute.
    #[error("cannot make {path} absolute: {source}")]
    NotAbsolute {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Listening on a socket failed (the cause names the socket: said once, not twice).
    #[error("{source}")]
    Listen {
        /// The socket.
        path: PathBuf,
        /// The cause.
        source: device_plugin::Error,
    },
}

/// Check a driver name as the API server does (`spec.driver`: a DNS subdomain, ≤ 63 characters).
pub fn validate_driver_name(name: &str) -> Result<(), Error> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.is_empty() || name.len() > names::DRIVER_NAME_MAX_LEN || !name.split('.').all(label_ok)
    {
        return Err(Error::InvalidDriverName(name.to_owned()));
    }
    cdi::validate_vendor(&cdi::vendor(name)).map_err(|_| Error::InvalidDriverName(name.to_owned()))
}

/// How long a stopping server may take to finish its calls.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// One served socket: its file identity, and the server task with its stop signal.
struct Served {
    path: PathBuf,
    id: Option<FileId>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Served {
    async fn stop(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
            task.abort();
        }
        transport::remove_if_same(&self.path, self.id);
    }
}

/// Run the kubelet side until `shutdown` completes, then remove the sockets.
pub async fn run(
    config: Config,
    inventory: watch::Receiver<Inventory>,
    claims: Arc<dyn ClaimReader>,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    validate_driver_name(&config.driver_name)?;
    if config.node_name.is_empty() {
        return Err(Error::NoNodeName);
    }
    for dir in [&config.plugin_dir(), &config.registry_dir, &config.cdi_root] {
        std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
            path: dir.clone(),
            source,
        })?;
    }
    let dra_path =
        std::path::absolute(config.dra_socket()).map_err(|source| Error::NotAbsolute {
            path: config.dra_socket(),
            source,
        })?;
    let reg_path = config.registration_socket();
    let health = HealthService::new(&config.node_name, inventory.clone());
    let preparer = Arc::new(Preparer::new(
        config.preparer_config(),
        inventory,
        claims,
        metrics.clone(),
    ));
    let dra_service = DraService::new(preparer);
    let registration = RegistrationService::new(
        &config.driver_name,
        &dra_path.to_string_lossy(),
        metrics.clone(),
    );

    // The DRA socket first: kubelet may call it as soon as it has seen the registration socket.
    let dra = serve_dra(&dra_path, dra_service.clone(), health.clone()).await?;
    let reg = match serve_registration(&reg_path, registration.clone()).await {
        Ok(reg) => reg,
        Err(err) => {
            dra.stop().await;
            return Err(err);
        }
    };
    let (mut dra, mut reg) = (Some(dra), Some(reg));
    tracing::info!(
        driver = %config.driver_name,
        node = %config.node_name,
        dra_socket = %dra_path.display(),
        registration_socket = %reg_path.display(),
        "DRA kubelet plugin serving"
    );

    let dirs = [config.registry_dir.clone(), config.plugin_dir()];
    let mask = WatchMask::DELETE | WatchMask::MOVED_FROM | WatchMask::DELETE_SELF;
    let mut events = transport::open_watch(config.inotify, &dirs, mask);
    // A zero period would make `interval` panic.
    let mut tick = tokio::time::interval(config.recheck_interval.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = tick.tick() => {
                if events.is_none() {
                    events = transport::open_watch(config.inotify, &dirs, mask);
                }
            }
            event = next_event(&mut events) => {
                if !event {
                    events = None;
                }
            }
        }
        // A removed socket is served again; a failure (e.g. the directory itself is gone and
        // cannot be made again yet) is retried on the next event or check, never fatal.
        if dra
            .as_ref()
            .is_none_or(|d| transport::file_id(&d.path) != d.id)
        {
            if let Some(old) = dra.take() {
                tracing::warn!(path = %old.path.display(), "DRA socket removed; serving it again");
                old.stop().await;
            }
            dra = serve_again(
                &dra_path,
                serve_dra(&dra_path, dra_service.clone(), health.clone()),
            )
            .await;
        }
        if reg
            .as_ref()
            .is_none_or(|r| transport::file_id(&r.path) != r.id)
        {
            if let Some(old) = reg.take() {
                tracing::warn!(
                    path = %old.path.display(),
                    "registration socket removed; serving it again so kubelet registers the driver again"
                );
                old.stop().await;
            }
            reg = serve_again(
                &reg_path,
                serve_registration(&reg_path, registration.clone()),
            )
            .await;
        }
    }
    tracing::info!("stopping the DRA kubelet plugin");
    for served in [reg, dra].into_iter().flatten() {
        served.stop().await;
    }
    Ok(())
}

/// Serve a socket again after its removal, making its directory again if needed.
async fn serve_again(
    path: &Path,
    serve: impl Future<Output = Result<Served, Error>>,
) -> Option<Served> {
    if let Some(dir) = path.parent()
        && let Err(err) = std::fs::create_dir_all(dir)
    {
        tracing::error!(dir = %dir.display(), error = %err, "cannot make the socket directory again; retrying");
        return None;
    }
    match serve.await {
        Ok(served) => Some(served),
        Err(err) => {
            tracing::error!(error = %err, "cannot serve the socket again; retrying");
            None
        }
    }
}

async fn listen(path: &Path) -> Result<(UnixListener, Option<FileId>), Error> {
    let listener = transport::bind(path)
        .await
        .map_err(|source| Error::Listen {
            path: path.to_owned(),
            source,
        })?;
    Ok((listener, transport::file_id(path)))
}

async fn serve_dra(
    path: &Path,
    service: DraService,
    health: HealthService,
) -> Result<Served, Error> {
    let router = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(64)
        .add_service(proto::v1::dra_plugin_server::DraPluginServer::new(
            service.clone(),
        ))
        .add_service(proto::v1beta1::dra_plugin_server::DraPluginServer::new(
            service,
        ))
        .add_service(
            proto::health::dra_resource_health_server::DraResourceHealthServer::new(health),
        );
    serve(path, router, "DRA").await
}

async fn serve_registration(path: &Path, service: RegistrationService) -> Result<Served, Error> {
    let router = tonic::transport::Server::builder().add_service(RegistrationServer::new(service));
    serve(path, router, "registration").await
}

/// Listen on `path` and serve `router` there (the `what` gRPC server, as the log names it) until
/// the returned [`Served`] is stopped.
async fn serve(path: &Path, router: Router, what: &'static str) -> Result<Served, Error> {
    let (listener, id) = listen(path).await?;
    let (stop, stopping) = watch::channel(false);
    let task = tokio::spawn(transport::serve_until_stopped(
        router, listener, stopping, what,
    ));
    Ok(Served {
        path: path.to_owned(),
        id,
        stop,
        task,
    })
}

/// Wait for the next inotify event; `false` when the watch is gone (a watched directory was
/// removed) and must be reopened.
async fn next_event(events: &mut Option<EventStream<[u8; 4096]>>) -> bool {
    match events {
        Some(stream) => match stream.next().await {
            Some(Ok(event)) => !event.mask.contains(inotify::EventMask::IGNORED),
            Some(Err(err)) => {
                tracing::warn!(error = %err, "inotify read failed");
                false
            }
            None => false,
        },
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_zero_recheck_interval_does_not_stop_the_plugin() {
        let dir = tempfile::Builder::new()
            .prefix("k")
            .tempdir_in("/tmp")
            .unwrap();
        let mut config = Config::new("node-a");
        config.registry_dir = dir.path().join("reg");
        config.plugins_dir = dir.path().join("plugins");
        config.cdi_root = dir.path().join("cdi");
        config.boot_id_path = dir.path().join("boot_id");
        config.recheck_interval = Duration::ZERO;
        config.inotify = false;
        let (_feed, inventory) = watch::channel(crate::devices::simulated(1 << 30).unwrap());
        // Without inotify the periodic check is what serves a removed socket again: with a zero
        // period it runs as often as it can, until the shutdown, and never panics.
        let shutdown = tokio::time::sleep(Duration::from_millis(20));
        run(
            config,
            inventory,
            Arc::new(claims::NoClaims),
            Metrics::default(),
            shutdown,
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_socket_that_cannot_be_listened_on_is_named_once() {
        let path = PathBuf::from(format!("/tmp/{}.sock", "x".repeat(110)));
        let err = listen(&path).await.unwrap_err();
        let text = err.to_string();
        assert_eq!(text.matches(path.to_str().unwrap()).count(), 1, "{text}");
    }
}

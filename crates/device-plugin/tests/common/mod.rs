//! An in-process kubelet stand-in: a `v1beta1.Registration` server on `kubelet.sock` that, like
//! kubelet, dials the plugin back inside Register, calls GetDevicePluginOptions, then follows
//! ListAndWatch with grpc-go's default 4 MiB receive limit.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use device_plugin::proto::device_plugin_client::DevicePluginClient;
use device_plugin::proto::registration_server::{Registration, RegistrationServer};
use device_plugin::proto::{DevicePluginOptions, Empty, ListAndWatchResponse, RegisterRequest};
use device_plugin::{Config, HostPlatform, Metrics, SgxPlatform};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// Deadline against hangs only; never a performance bound.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// grpc-go's default receive limit, which kubelet keeps.
pub const KUBELET_RECV_LIMIT: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub enum Event {
    Registered(RegisterRequest),
    Options {
        resource: String,
        options: DevicePluginOptions,
    },
    List {
        resource: String,
        list: ListAndWatchResponse,
    },
    StreamEnded {
        resource: String,
        error: Option<String>,
    },
}

type Clients = Arc<Mutex<HashMap<String, DevicePluginClient<Channel>>>>;

struct Stub {
    dir: PathBuf,
    events: mpsc::UnboundedSender<Event>,
    clients: Clients,
}

#[tonic::async_trait]
impl Registration for Stub {
    async fn register(&self, request: Request<RegisterRequest>) -> Result<Response<Empty>, Status> {
        let request = request.into_inner();
        if request.version != "v1beta1" {
            return Err(Status::invalid_argument(format!(
                "unsupported version {}",
                request.version
            )));
        }
        let _ = self.events.send(Event::Registered(request.clone()));
        // kubelet dials the endpoint synchronously inside Register.
        let channel = device_plugin::transport::unix_channel(
            self.dir.join(&request.endpoint),
            Duration::from_secs(10),
        )
        .await
        .map_err(|err| Status::unavailable(err.to_string()))?;
        let mut client =
            DevicePluginClient::new(channel).max_decoding_message_size(KUBELET_RECV_LIMIT);
        let options = client
            .get_device_plugin_options(Empty {})
            .await?
            .into_inner();
        let resource = request.resource_name.clone();
        let _ = self.events.send(Event::Options {
            resource: resource.clone(),
            options,
        });
        self.clients
            .lock()
            .unwrap()
            .insert(resource.clone(), client.clone());
        let events = self.events.clone();
        tokio::spawn(async move {
            let error = match client.list_and_watch(Empty {}).await {
                Ok(stream) => {
                    let mut stream = stream.into_inner();
                    loop {
                        match stream.message().await {
                            Ok(Some(list)) => {
                                let _ = events.send(Event::List {
                                    resource: resource.clone(),
                                    list,
                                });
                            }
                            Ok(None) => break None,
                            Err(status) => break Some(status.to_string()),
                        }
                    }
                }
                Err(status) => Some(status.to_string()),
            };
            let _ = events.send(Event::StreamEnded { resource, error });
        });
        Ok(Response::new(Empty {}))
    }
}

pub struct Kubelet {
    pub dir: PathBuf,
    pub events: mpsc::UnboundedReceiver<Event>,
    sender: mpsc::UnboundedSender<Event>,
    clients: Clients,
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Kubelet {
    /// A stand-in serving `dir/kubelet.sock`.
    pub fn start(dir: &Path) -> Self {
        let (sender, events) = mpsc::unbounded_channel();
        let mut kubelet = Self {
            dir: dir.to_owned(),
            events,
            sender,
            clients: Arc::default(),
            server: None,
        };
        kubelet.serve();
        kubelet
    }

    /// A stand-in that is not listening yet.
    pub fn not_started(dir: &Path) -> Self {
        let (sender, events) = mpsc::unbounded_channel();
        Self {
            dir: dir.to_owned(),
            events,
            sender,
            clients: Arc::default(),
            server: None,
        }
    }

    pub fn serve(&mut self) {
        let path = self.dir.join("kubelet.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let stub = Stub {
            dir: self.dir.clone(),
            events: self.sender.clone(),
            clients: Arc::clone(&self.clients),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(RegistrationServer::new(stub))
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        self.server = Some((stop, task));
    }

    /// What kubelet does when it restarts: stop, delete every socket in the directory
    /// (CleanupPluginDirectory), listen on a new kubelet.sock.
    pub async fn restart(&mut self) {
        self.stop().await;
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let entry = entry.unwrap();
            use std::os::unix::fs::FileTypeExt;
            if entry.file_type().unwrap().is_socket() {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
        self.clients.lock().unwrap().clear();
        self.serve();
    }

    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.server.take() {
            let _ = stop.send(());
            // Open ListAndWatch streams keep a graceful shutdown waiting; kubelet just goes away.
            task.abort();
            let _ = task.await;
        }
    }

    pub fn client(&self, resource: &str) -> DevicePluginClient<Channel> {
        self.clients
            .lock()
            .unwrap()
            .get(resource)
            .cloned()
            .expect("plugin registered")
    }

    /// The next event, or a panic after the deadline.
    pub async fn next(&mut self) -> Event {
        tokio::time::timeout(DEADLINE, self.events.recv())
            .await
            .expect("an event before the deadline")
            .unwrap()
    }

    /// Skip events until one matches; returns it.
    pub async fn until(&mut self, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} before the deadline"))
                .unwrap();
            if pred(&event) {
                return event;
            }
        }
    }

    /// The next device list of `resource`.
    pub async fn list_of(&mut self, resource: &str) -> ListAndWatchResponse {
        match self
            .until(
                &format!("list of {resource}"),
                |e| matches!(e, Event::List { resource: r, .. } if r == resource),
            )
            .await
        {
            Event::List { list, .. } => list,
            _ => unreachable!(),
        }
    }
}

pub struct Plugin {
    pub registry: prometheus_client::registry::Registry,
    pub metrics: Metrics,
    pub readiness: ops_http::Readiness,
    /// The EPC size in bytes the plugin reports.
    pub epc_bytes: tokio::sync::watch::Receiver<Option<u64>>,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<Result<(), device_plugin::Error>>,
}

impl Plugin {
    pub fn start(config: Config, platform: Arc<dyn SgxPlatform>) -> Self {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Metrics::new(&mut registry);
        let readiness = ops_http::Readiness::new();
        let (stop, stopped) = oneshot::channel::<()>();
        let (epc_sender, epc_bytes) = tokio::sync::watch::channel(None);
        let task = tokio::spawn(device_plugin::run_with_epc_watch(
            config,
            platform,
            metrics.clone(),
            readiness.clone(),
            epc_sender,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            registry,
            metrics,
            readiness,
            epc_bytes,
            stop: Some(stop),
            task,
        }
    }

    /// The metrics text as `/metrics` serves it.
    pub fn metrics_text(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        text
    }

    /// SIGTERM: stop and wait for the plugin to finish.
    pub async fn shutdown(mut self) -> Result<(), device_plugin::Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(DEADLINE, &mut self.task)
            .await
            .expect("plugin stops before the deadline")
            .unwrap()
    }
}

/// A short temp dir (Unix socket paths hold at most 107 bytes).
pub fn short_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .unwrap()
}

/// Fake machine: `dev/` with the given nodes (relative paths like `sgx_enclave`, `sgx/enclave`),
/// `sys/` with per-NUMA-node EPC sizes in MiB.
pub struct FakeMachine {
    pub root: tempfile::TempDir,
}

impl FakeMachine {
    pub fn new(nodes: &[&str], numa_mib: &[u64]) -> Self {
        let root = short_dir("dpm");
        std::fs::create_dir(root.path().join("dev")).unwrap();
        let machine = Self { root };
        for node in nodes {
            machine.add_node(node);
        }
        for (index, mib) in numa_mib.iter().enumerate() {
            let x86 = machine
                .root
                .path()
                .join(format!("sys/devices/system/node/node{index}/x86"));
            std::fs::create_dir_all(&x86).unwrap();
            std::fs::write(
                x86.join("sgx_total_bytes"),
                format!("{}\n", mib * 1024 * 1024),
            )
            .unwrap();
        }
        machine
    }

    pub fn dev(&self) -> PathBuf {
        self.root.path().join("dev")
    }

    pub fn add_node(&self, node: &str) {
        let path = self.dev().join(node);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    pub fn set_numa_mib(&self, node: usize, mib: u64) {
        let x86 = self
            .root
            .path()
            .join(format!("sys/devices/system/node/node{node}/x86"));
        std::fs::create_dir_all(&x86).unwrap();
        std::fs::write(
            x86.join("sgx_total_bytes"),
            format!("{}\n", mib * 1024 * 1024),
        )
        .unwrap();
    }

    pub fn remove_node(&self, node: &str) {
        std::fs::remove_file(self.dev().join(node)).unwrap();
    }

    pub fn platform(&self) -> Arc<dyn SgxPlatform> {
        Arc::new(HostPlatform::new(self.dev(), self.root.path().join("sys")).without_cpuid())
    }
}

/// A config for `plugin_dir` with a short recheck period (the fallback must work too).
pub fn config(plugin_dir: &Path) -> Config {
    let mut config = Config::new(plugin_dir);
    config.recheck_interval = Duration::from_millis(500);
    config.max_backoff = Duration::from_millis(500);
    config
}

/// Wait (polling, generous deadline) until `cond` holds.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen before the deadline"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

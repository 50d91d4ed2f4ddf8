//! SGX device plugin for the kubelet device-plugin API v1beta1.
//!
//! Three resources, each served by its own gRPC server on its own socket in kubelet's plugin
//! directory (`confcom-<name>.sock`) and registered with `kubelet.sock`:
//!
//! | resource (default name) | devices | Allocate grants |
//! |---|---|---|
//! | `kubernetes.azure.com/sgx_epc_mem_in_MiB` | one per MiB of EPC | the enclave device node(s) |
//! | `sgx.intel.com/enclave` | shareable slots (110) | the enclave device node(s) |
//! | `sgx.intel.com/provision` | shareable slots (110) | the provision device node(s) |
//!
//! # Representation choices
//!
//! (The reasoning behind each is in `DESIGN.md` beside this crate's `Cargo.toml`.)
//!
//! * **Ids** are [compact](ids): bijective base 64 over `[0-9A-Za-z_-]`, 1–3 characters up to
//!   266 304 devices. 256 GiB of EPC (262 144 devices) then encodes to 4 190 080 bytes, under
//!   kubelet's 4 194 304-byte ListAndWatch limit (decimal ids: 4 869 626 bytes, rejected).
//! * **The budget holds for every message.** Each message is built by [`listing::build`], which
//!   includes the extras – `Unhealthy` entries and NUMA topology – only when the whole message
//!   still fits; otherwise unhealthy devices are left out (kubelet then drops them from capacity as
//!   well as from allocatable) and topology is dropped. The device count is capped at
//!   [`listing::max_devices`] (262 408 at 4 MiB): EPC beyond it is not advertised, logged, and
//!   exported as `confcom_device_plugin_unadvertised_devices`.
//! * **Health** is per resource: all devices are healthy while the device node the resource grants
//!   exists. A resource whose node is absent when the plugin starts advertises no device; one whose
//!   node disappears later lists its devices `Unhealthy` (within the budget) and fails Allocate
//!   with `FAILED_PRECONDITION`. Changes (inotify on the dev root, plus a periodic re-check) are
//!   sent at once; nothing is ever sent periodically, because kubelet rewrites its checkpoint on
//!   every message.
//! * **Topology** comes from the per-NUMA-node sysfs EPC sizes: EPC devices are numbered node by
//!   node. It is sent only where it fits (not at 256 GiB), and never for CPUID-discovered or
//!   configured sizes.
//! * **GetPreferredAllocation** is not advertised: EPC MiB are fungible, and kubelet would send all
//!   available ids (over 4 MiB at 256 GiB).
//! * **The EPC size in bytes** is reported on a [`tokio::sync::watch`] channel by
//!   [`run_with_epc_watch`] (configured, simulated or discovered; changes only), for whoever
//!   advertises it elsewhere – `confcom device-plugin` puts it in the node's status capacity as
//!   Intel's `sgx.intel.com/epc` (the `node-capacity` crate). This crate does not talk to the API
//!   server.
//!
//! # Kubelet restarts
//!
//! kubelet deletes every socket in the plugin directory when it starts and then recreates
//! `kubelet.sock`. Each resource watches (inotify on the directory, plus a periodic `stat`) both
//! its own socket and `kubelet.sock` by inode: a deleted socket means listen again and register; a
//! new `kubelet.sock` means register again. Failed registrations are retried with exponential
//! backoff (100 ms up to [`Config::max_backoff`]), cut short by any event in the directory.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use device_plugin::{Config, HostPlatform, Metrics};
//!
//! # async fn example() -> Result<(), device_plugin::Error> {
//! let mut registry = prometheus_client::registry::Registry::default();
//! let metrics = Metrics::new(&mut registry);
//! let readiness = ops_http::Readiness::new();
//! let config = Config::new(device_plugin::DEFAULT_PLUGIN_DIR);
//! let platform = Arc::new(HostPlatform::new("/dev", "/sys"));
//! device_plugin::run(config, platform, metrics, readiness, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```

use std::path::PathBuf;
use std::time::Duration;

pub mod ids;
pub mod listing;
pub mod metrics;
pub mod platform;
mod plugin;
pub mod resource;
pub mod service;
pub mod transport;

pub use metrics::Metrics;
pub use platform::{DeviceNodes, Epc, HostPlatform, SgxPlatform};
pub use plugin::{
    API_VERSION, Config, DEFAULT_PLUGIN_DIR, DEFAULT_SIMULATED_EPC_MIB, DEFAULT_SLOTS, EpcBytes,
    KUBELET_SOCKET, run, run_with_epc_watch,
};
pub use resource::{ENCLAVE_RESOURCE, EPC_RESOURCE, PROVISION_RESOURCE, ResourceKind};

/// Kubelet device-plugin API v1beta1 messages, client and server (generated from `proto/`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    tonic::include_proto!("v1beta1");
}

/// Errors of the device plugin.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A resource name kubelet would refuse.
    #[error("invalid resource name {name:?}: {reason}")]
    InvalidResourceName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The same resource (kind or name) twice.
    #[error("resource {0:?} is configured twice")]
    DuplicateResource(String),
    /// Two resources whose names map to the same socket file.
    #[error("two resources would use the same socket file {0:?}")]
    DuplicateSocket(String),
    /// Every resource is switched off.
    #[error("no resource is enabled")]
    NoResources,
    /// The plugin directory cannot be used.
    #[error("plugin directory {path}: {source}")]
    PluginDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The plugin directory is a file.
    #[error("plugin directory {path} is not a directory")]
    PluginDirNotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A socket path longer than a Unix socket address holds.
    #[error("socket path {path} is {len} bytes long; a Unix socket path holds at most 107")]
    SocketPathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// Another live process accepts connections on our socket path.
    #[error("socket {path} is in use by a running process (another device plugin?)")]
    SocketInUse {
        /// The path.
        path: PathBuf,
    },
    /// Something that is not a socket sits at our socket path.
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Creating or listening on our socket failed (e.g. read-only directory).
    #[error("cannot listen on {path}: {source}")]
    Listen {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// kubelet.sock could not be reached.
    #[error("cannot reach kubelet: {reason}")]
    KubeletUnreachable {
        /// The transport error chain.
        reason: String,
    },
    /// kubelet answered Register with an error.
    #[error("kubelet rejected the registration ({code:?}): {message}")]
    RegistrationRejected {
        /// gRPC status code.
        code: tonic::Code,
        /// kubelet's message.
        message: String,
    },
    /// Register did not complete in time.
    #[error("registration did not complete within {timeout:?}")]
    RegistrationTimeout {
        /// The limit.
        timeout: Duration,
    },
}

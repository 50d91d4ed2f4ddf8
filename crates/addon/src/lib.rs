//! The confcom Kubernetes add-on: cluster manifests rendered from typed Kubernetes objects, and the
//! mutating admission webhook that wires SGX pods to the node's quote helper.
//!
//! - [`render`]: `confcom addon render` – the device plugin DaemonSet with its ServiceAccount and
//!   the RBAC to patch `nodes/status` (it advertises `sgx.intel.com/epc` there), the quote helper
//!   DaemonSet (opt-in), the webhook objects (opt-in), and with `--dra` the SGX DRA driver
//!   (kubelet-plugin DaemonSet, slice RBAC and admission policy, DeviceClasses) as deterministic
//!   YAML.
//! - [`admission`]: the AdmissionReview → JSONPatch logic of `confcom webhook`.
//! - [`quantity`]: Kubernetes quantities as bytes, and back in the API server's binary-SI form.
//! - [`server`]: the webhook's HTTPS server (rustls with the ring provider, hyper HTTP/1.1).
//! - [`certs`]: `confcom webhook certs` – a private CA and the serving certificate.
//!
//! ```
//! use addon::render::{render, to_yaml, RenderOptions};
//!
//! let options = RenderOptions { enable_quote_helper: true, simulate: true, ..Default::default() };
//! let yaml = to_yaml(&render(&options)?)?;
//! assert!(yaml.contains("kind: DaemonSet"));
//! assert!(yaml.contains("--backend\n"));
//! # Ok::<(), addon::render::RenderError>(())
//! ```

pub mod admission;
pub mod certs;
pub mod names;
pub mod quantity;
pub mod render;
pub mod server;

//! The SGX quote helper service: an aesmd-compatible server for the AESM socket
//! (`/var/run/aesmd/aesm.socket`) that answers the quote-ex requests of Intel's `libsgx_quote_ex`,
//! Open Enclave, Gramine and Fortanix's `aesm-client` from a pluggable quoting backend.
//!
//! - [`backend`]: the [`QuoteBackend`] trait (simulated platform, Intel's DCAP library on hardware).
//! - [`dispatch`]: one request in, one response out, with aesmd's checks and error codes.
//! - [`server`]: [`serve`] – tokio, one request per connection, bounded and timed.
//! - [`listen`]: the socket file (directory 0755, socket 0777, stale-socket replacement) and the
//!   abstract name.
//! - [`metrics`]: Prometheus metrics for `ops-http`.
//! - [`readiness`]: `/readyz` turns ready once the socket answers a request, as apps see it.
//! - [`sim`]: the simulated backend over `sgx-sim`, and the `/collateral/<name>` routes.
//! - [`background`]: the service on a thread of its own, for synchronous callers.
//! - [`bench`]: the throughput benchmark of `confcom bench quote-helper` and `cargo bench`.
//! - [`client_flow`]: an enclave app's out-of-process quoting flow on the simulated platform
//!   (used by `confcom quote` and `confcom demo`).
//!
//! # Example
//!
//! ```no_run
//! # async fn example(backend: std::sync::Arc<dyn aesm_service::QuoteBackend>) -> Result<(), Box<dyn std::error::Error>> {
//! use aesm_service::{Dispatcher, Metrics, ServerConfig, listen, serve};
//!
//! let (std_listener, _socket_file) = listen::bind_socket("/var/run/aesmd/aesm.socket".as_ref(), 0o777)?;
//! let listener = tokio::net::UnixListener::from_std(std_listener)?;
//! serve(
//!     vec![listener],
//!     Dispatcher::new(backend),
//!     ServerConfig::default(),
//!     Metrics::default(),
//!     async { let _ = tokio::signal::ctrl_c().await; },
//! )
//! .await?;
//! # Ok(()) }
//! ```

pub mod backend;
pub mod background;
pub mod bench;
pub mod client_flow;
pub mod dispatch;
pub mod evidence;
pub mod listen;
pub mod metrics;
pub mod readiness;
pub mod server;
pub mod sim;

pub use backend::{BackendError, QuoteBackend};
pub use background::BackgroundServer;
pub use dispatch::{Dispatcher, Outcome};
pub use metrics::Metrics;
pub use server::{ServerConfig, serve};
pub use sim::SimBackend;

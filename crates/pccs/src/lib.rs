//! The PCCS REST API that Intel's quote provider library, dcap-qvl and Open Enclave talk to, over a
//! [`CollateralSource`]: the routes of Intel's Provisioning Certificate Caching Service under
//! `/sgx/certification/v3/` and `/sgx/certification/v4/`, with its header names, encodings, status
//! codes and messages.
//!
//! - [`api`]: one request (path and query) in, one [`Reply`] out; no sockets.
//! - [`source`]: where the collateral comes from: [`SimSource`] (a simulated platform, so that a
//!   simulated cluster has a real PCCS endpoint) and [`DirSource`] (an offline directory in the
//!   layout `confcom sim collateral` writes).
//! - [`upstream`]: [`UpstreamSource`], collateral from an upstream PCS/PCCS/THIM, cached in LAZY
//!   mode in a [`store::Store`] that survives restarts.
//! - [`client`]: fetching a quote's collateral from a PCCS or Intel's PCS.
//! - [`quote`]: the platform a quote names (FMSPC, PCK CA, SVNs) and its collateral in the
//!   verifier's form, shared by `confcom verify` and the DRA driver.
//! - [`tls`]: which HTTPS servers the client trusts.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let platform = sgx_sim::SimPlatform::open_or_init(dir.path(), &Default::default())?;
//! let source = pccs::SimSource::new(std::sync::Arc::new(platform));
//! let reply = pccs::api::handle(&source, "/sgx/certification/v4/qe/identity", None).unwrap();
//! assert_eq!(reply.status, 200);
//! assert!(reply.header("SGX-Enclave-Identity-Issuer-Chain").is_some());
//! # Ok(()) }
//! ```

pub mod api;
pub mod client;
pub mod quote;
pub mod source;
pub mod store;
pub mod tls;
pub mod upstream;

pub use api::{AdminToken, ApiVersion, Reply, RouteOptions, handle, handle_post, routes};
pub use source::{CaType, CollateralSource, DirSource, PckCert, Signed, SimSource, SourceError};
pub use upstream::UpstreamSource;

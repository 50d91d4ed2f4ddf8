//! The simulated backend: [`SimBackend`] over [`sgx_sim::SimPlatform`], the published CPU material
//! next to the socket, and the `/collateral/<name>` routes of the ops endpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aesm_protocol::AesmCode;
pub use sgx_sim::{COLLATERAL_REFRESH, CollateralCache};
use sgx_sim::{Collateral, SimError, SimPlatform};
use sgx_types::{Report, TargetInfo};

use crate::backend::{BackendError, QuoteBackend};

/// Name of the directory, next to the socket, where the helper publishes the simulated CPU
/// material (`<socket dir>/sim/`).
pub const SIM_DIR_NAME: &str = "sim";

/// Where the simulated CPU material of the helper serving `socket` lives: `<socket dir>/sim/`.
pub fn sim_dir_for_socket(socket: &Path) -> PathBuf {
    socket
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(SIM_DIR_NAME)
}

/// The simulated quoting enclave.
#[derive(Debug, Clone)]
pub struct SimBackend {
    platform: Arc<SimPlatform>,
}

impl SimBackend {
    /// A backend over `platform`.
    pub fn new(platform: Arc<SimPlatform>) -> Self {
        Self { platform }
    }

    /// The platform.
    pub fn platform(&self) -> &Arc<SimPlatform> {
        &self.platform
    }
}

/// Maps a simulator failure to what aesmd would answer.
pub fn backend_error(e: SimError) -> BackendError {
    let code = match &e {
        SimError::AttKeyNotInitialized => AesmCode::AttKeyNotInitialized,
        SimError::InvalidReport => AesmCode::InvalidReport,
        // A sealed key blob that does not read back is aesmd's ATT_KEY_BLOB_ERROR.
        SimError::Corrupt { .. } => AesmCode::AttKeyBlobError,
        SimError::Io { .. } => AesmCode::FileAccessError,
        _ => AesmCode::UnexpectedError,
    };
    BackendError::new(code, e.to_string())
}

impl QuoteBackend for SimBackend {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn is_simulated(&self) -> bool {
        true
    }

    fn init_attestation_key(&self) -> Result<[u8; 32], BackendError> {
        self.platform.init_attestation_key().map_err(backend_error)
    }

    fn qe_target_info(&self) -> Result<TargetInfo, BackendError> {
        Ok(self.platform.qe_target_info())
    }

    fn quote_size(&self) -> Result<u32, BackendError> {
        self.platform.quote_size().map_err(backend_error)
    }

    fn quote(&self, app_report: &Report) -> Result<Vec<u8>, BackendError> {
        self.platform.quote(app_report).map_err(backend_error)
    }

    fn qe_report_for_app(
        &self,
        quote: &[u8],
        nonce: &[u8; 16],
        app_target: &TargetInfo,
    ) -> Result<Report, BackendError> {
        Ok(self.platform.qe_report_for_app(quote, nonce, app_target))
    }
}

/// The ops-endpoint routes of `cache`: `/collateral/` lists the files, `/collateral/<name>` serves
/// one (`collateral.json`, `root-ca.pem`, `root-ca.der`, `tcb_info.json`, …).
pub fn collateral_routes(cache: Arc<CollateralCache>) -> ops_http::ExtraRoutes {
    ops_http::ExtraRoutes::new(
        move |path: &str, _query: Option<&str>, _headers: &ops_http::HeaderMap| {
            let name = path.strip_prefix("/collateral")?;
            let name = name.strip_prefix('/').unwrap_or(name);
            let collateral = match cache.get() {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot issue the simulated collateral");
                    return Some(ops_http::Response::new(
                        500,
                        "text/plain; charset=utf-8",
                        format!("cannot issue the simulated collateral: {e}\n").into_bytes(),
                    ));
                }
            };
            if name.is_empty() {
                let mut index = String::new();
                for (file, _) in collateral.files() {
                    index.push_str(file);
                    index.push('\n');
                }
                return Some(ops_http::Response::ok(
                    "text/plain; charset=utf-8",
                    index.into_bytes(),
                ));
            }
            collateral
                .file(name)
                .map(|bytes| ops_http::Response::ok(Collateral::content_type(name), bytes.to_vec()))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_dir_is_next_to_the_socket() {
        assert_eq!(
            sim_dir_for_socket(Path::new("/var/run/aesmd/aesm.socket")),
            PathBuf::from("/var/run/aesmd/sim")
        );
        assert_eq!(
            sim_dir_for_socket(Path::new("aesm.socket")),
            PathBuf::from("sim")
        );
    }

    #[test]
    fn simulator_errors_map_to_aesm_codes() {
        assert_eq!(
            backend_error(SimError::AttKeyNotInitialized).code,
            AesmCode::AttKeyNotInitialized
        );
        assert_eq!(
            backend_error(SimError::InvalidReport).code,
            AesmCode::InvalidReport
        );
        assert_eq!(
            backend_error(SimError::Crypto("x")).code,
            AesmCode::UnexpectedError
        );
    }

    #[test]
    fn collateral_routes_serve_every_file_and_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let platform = Arc::new(
            SimPlatform::open_or_init(dir.path(), &sgx_sim::InitOptions::default()).unwrap(),
        );
        let cache = Arc::new(CollateralCache::new(
            Arc::clone(&platform),
            sgx_sim::CollateralOptions::default(),
        ));
        let routes = collateral_routes(Arc::clone(&cache));
        let routes = |path: &str| routes.call(path, None, &ops_http::HeaderMap::new());
        let index = routes("/collateral/").unwrap();
        let names = String::from_utf8(index.body).unwrap();
        assert!(names.lines().any(|l| l == "collateral.json"));
        for name in names.lines() {
            let resp = routes(&format!("/collateral/{name}")).unwrap();
            assert_eq!(resp.status, 200, "{name}");
            assert!(!resp.body.is_empty(), "{name}");
        }
        let root = routes("/collateral/root-ca.der").unwrap();
        assert_eq!(root.body, platform.root_ca_der());
        assert_eq!(root.content_type, "application/pkix-cert");
        assert!(routes("/collateral/nope.json").is_none());
        assert!(routes("/metricsx").is_none());
        // Served twice from the cache: the same bytes (signatures are randomised, so a re-issue
        // would differ).
        let a = routes("/collateral/tcb_info.json").unwrap().body;
        let b = routes("/collateral/tcb_info.json").unwrap().body;
        assert_eq!(a, b);
    }
}

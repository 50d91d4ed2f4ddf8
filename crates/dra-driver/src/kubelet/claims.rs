//! Reading ResourceClaims: the [`ClaimReader`] seam and its API-server implementation.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use k8s_openapi::api::resource::v1::ResourceClaim;

/// A boxed future, as trait objects return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a claim could not be read.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ClaimReadError {
    /// The claim does not exist.
    #[error("ResourceClaim {namespace}/{name} not found")]
    NotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The API server did not answer in time.
    #[error("reading ResourceClaim {namespace}/{name} timed out after {timeout:?}")]
    Timeout {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The bound.
        timeout: Duration,
    },
    /// The API server refused or the request failed.
    #[error("reading ResourceClaim {namespace}/{name}: {reason}")]
    Api {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What went wrong.
        reason: String,
    },
}

/// Where the driver reads claims from.
pub trait ClaimReader: Send + Sync + 'static {
    /// The current ResourceClaim `namespace/name`.
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<ResourceClaim, ClaimReadError>>;
}

/// Claims read from the API server (`GET /apis/resource.k8s.io/v1/namespaces/<ns>/resourceclaims/<name>`),
/// each read bounded by a timeout well under kubelet's 45 s per call.
#[derive(Clone)]
pub struct KubeClaimReader {
    client: kube::Client,
    timeout: Duration,
}

impl KubeClaimReader {
    /// The default bound of one read.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// Read through `client`, each read bounded by `timeout`.
    pub fn new(client: kube::Client, timeout: Duration) -> Self {
        Self { client, timeout }
    }
}

impl ClaimReader for KubeClaimReader {
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<ResourceClaim, ClaimReadError>> {
        Box::pin(async move {
            let api: kube::Api<ResourceClaim> =
                kube::Api::namespaced(self.client.clone(), namespace);
            match tokio::time::timeout(self.timeout, api.get_opt(name)).await {
                Err(_) => Err(ClaimReadError::Timeout {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    timeout: self.timeout,
                }),
                Ok(Ok(Some(claim))) => Ok(claim),
                Ok(Ok(None)) => Err(ClaimReadError::NotFound {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                }),
                Ok(Err(err)) => Err(ClaimReadError::Api {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    reason: err.to_string(),
                }),
            }
        })
    }
}

/// A reader that finds no claim (for tests that never read one).
#[cfg(test)]
pub(crate) struct NoClaims;

#[cfg(test)]
impl ClaimReader for NoClaims {
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<ResourceClaim, ClaimReadError>> {
        Box::pin(async move {
            Err(ClaimReadError::NotFound {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })
        })
    }
}

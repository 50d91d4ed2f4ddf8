//! The gRPC services kubelet calls: plugin registration, and the DRA service in v1 and v1beta1
//! (the same logic; v1beta1 has no `share_id`).

use std::collections::BTreeMap;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::checkpoint::PreparedDevice;
use super::metrics::Metrics;
use super::prepare::{ClaimRef, Preparer};
use super::proto::pluginregistration::registration_server::Registration;
use super::proto::pluginregistration::{
    InfoRequest, PluginInfo, RegistrationStatus, RegistrationStatusResponse,
};
use super::proto::{v1, v1beta1};

/// The plugin type kubelet's DRA handler registers.
pub const PLUGIN_TYPE: &str = "DRAPlugin";
/// The DRA services offered, preferred first (kubelet takes the first it knows; v1 has
/// `share_id`).
pub const SUPPORTED_VERSIONS: [&str; 2] = ["v1.DRAPlugin", "v1beta1.DRAPlugin"];
/// What the registration announces: the DRA services, then the health service (kubelet skips
/// entries it does not know when it picks the DRA version, as the upstream helper announces it).
pub const ANNOUNCED_VERSIONS: [&str; 3] = [
    SUPPORTED_VERSIONS[0],
    SUPPORTED_VERSIONS[1],
    super::health::HEALTH_SERVICE,
];
/// Most claims accepted in one call (a pod has at most a few dozen).
pub const MAX_CLAIMS_PER_CALL: usize = 1024;

/// The registration service on `<registry dir>/<driver>-reg.sock`.
#[derive(Clone, Debug)]
pub struct RegistrationService {
    info: PluginInfo,
    metrics: Metrics,
}

impl RegistrationService {
    /// Announce `driver` with its DRA socket at `endpoint` (an absolute path).
    pub fn new(driver: &str, endpoint: &str, metrics: Metrics) -> Self {
        Self {
            info: PluginInfo {
                r#type: PLUGIN_TYPE.to_owned(),
                name: driver.to_owned(),
                endpoint: endpoint.to_owned(),
                supported_versions: ANNOUNCED_VERSIONS.map(str::to_owned).to_vec(),
            },
            metrics,
        }
    }
}

#[tonic::async_trait]
impl Registration for RegistrationService {
    async fn get_info(&self, _: Request<InfoRequest>) -> Result<Response<PluginInfo>, Status> {
        tracing::debug!(rpc = "GetInfo", "kubelet asked for plugin info");
        Ok(Response::new(self.info.clone()))
    }

    async fn notify_registration_status(
        &self,
        request: Request<RegistrationStatus>,
    ) -> Result<Response<RegistrationStatusResponse>, Status> {
        let status = request.into_inner();
        self.metrics.registration(status.plugin_registered);
        if status.plugin_registered {
            tracing::info!(driver = %self.info.name, "registered with kubelet");
            Ok(Response::new(RegistrationStatusResponse {}))
        } else {
            tracing::error!(
                driver = %self.info.name,
                error = %status.error,
                "kubelet rejected the registration"
            );
            Err(Status::unavailable(format!(
                "kubelet rejected the registration of {}: {}",
                self.info.name, status.error
            )))
        }
    }
}

/// The DRA service (both versions), over one [`Preparer`].
#[derive(Clone)]
pub struct DraService {
    preparer: Arc<Preparer>,
}

impl DraService {
    /// Serve `preparer`.
    pub fn new(preparer: Arc<Preparer>) -> Self {
        Self { preparer }
    }
}

fn refs<'a>(
    claims: impl ExactSizeIterator<Item = (&'a str, &'a str, &'a str)>,
) -> Result<Vec<ClaimRef>, Status> {
    if claims.len() > MAX_CLAIMS_PER_CALL {
        return Err(Status::invalid_argument(format!(
            "{} claims in one call; at most {MAX_CLAIMS_PER_CALL} are accepted",
            claims.len()
        )));
    }
    Ok(claims
        .map(|(namespace, uid, name)| ClaimRef {
            namespace: namespace.to_owned(),
            uid: uid.to_owned(),
            name: name.to_owned(),
        })
        .collect())
}

/// The DRA service of one generated API version: the same calls over the same [`Preparer`],
/// differing only in the generated types and in how a prepared device is described (`$device`).
macro_rules! dra_service {
    ($version:ident, $device:expr) => {
        #[tonic::async_trait]
        impl $version::dra_plugin_server::DraPlugin for DraService {
            async fn node_prepare_resources(
                &self,
                request: Request<$version::NodePrepareResourcesRequest>,
            ) -> Result<Response<$version::NodePrepareResourcesResponse>, Status> {
                let request = request.into_inner();
                let claims = refs(
                    request
                        .claims
                        .iter()
                        .map(|c| (c.namespace.as_str(), c.uid.as_str(), c.name.as_str())),
                )?;
                let claims: BTreeMap<_, _> = self
                    .preparer
                    .prepare(&claims)
                    .await
                    .into_iter()
                    .map(|(uid, outcome)| {
                        let response = match outcome {
                            Ok(devices) => $version::NodePrepareResourceResponse {
                                devices: devices.iter().map($device).collect(),
                                error: String::new(),
                            },
                            Err(err) => $version::NodePrepareResourceResponse {
                                devices: Vec::new(),
                                error: err.to_string(),
                            },
                        };
                        (uid, response)
                    })
                    .collect();
                Ok(Response::new($version::NodePrepareResourcesResponse {
                    claims,
                }))
            }

            async fn node_unprepare_resources(
                &self,
                request: Request<$version::NodeUnprepareResourcesRequest>,
            ) -> Result<Response<$version::NodeUnprepareResourcesResponse>, Status> {
                let request = request.into_inner();
                let claims = refs(
                    request
                        .claims
                        .iter()
                        .map(|c| (c.namespace.as_str(), c.uid.as_str(), c.name.as_str())),
                )?;
                let claims = self
                    .preparer
                    .unprepare(&claims)
                    .await
                    .into_iter()
                    .map(|(uid, outcome)| {
                        let error = outcome.err().map(|e| e.to_string()).unwrap_or_default();
                        (uid, $version::NodeUnprepareResourceResponse { error })
                    })
                    .collect();
                Ok(Response::new($version::NodeUnprepareResourcesResponse {
                    claims,
                }))
            }
        }
    };
}

dra_service!(v1, |d: &PreparedDevice| v1::Device {
    request_names: vec![d.request.clone()],
    pool_name: d.pool.clone(),
    device_name: d.device.clone(),
    cdi_device_ids: vec![d.cdi_id.clone()],
    share_id: d.share_id.clone(),
});

// v1beta1 has no share ID.
dra_service!(v1beta1, |d: &PreparedDevice| v1beta1::Device {
    request_names: vec![d.request.clone()],
    pool_name: d.pool.clone(),
    device_name: d.device.clone(),
    cdi_device_ids: vec![d.cdi_id.clone()],
});

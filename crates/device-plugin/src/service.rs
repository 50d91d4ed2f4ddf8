//! The `v1beta1.DevicePlugin` gRPC service of one resource.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use tokio::sync::{Notify, watch};
use tokio_stream::wrappers::WatchStream;
use tonic::{Request, Response, Status};

use crate::metrics::Metrics;
use crate::platform::{DeviceNodes, SgxPlatform};
use crate::proto::device_plugin_server::DevicePlugin;
use crate::proto::{
    AllocateRequest, AllocateResponse, DevicePluginOptions, Empty, ListAndWatchResponse,
    PreStartContainerRequest, PreStartContainerResponse, PreferredAllocationRequest,
    PreferredAllocationResponse,
};
use crate::resource::{AllocateError, Resource};

/// Serves one resource to kubelet.
pub struct DevicePluginService {
    resource: Arc<Resource>,
    platform: Arc<dyn SgxPlatform>,
    metrics: Metrics,
    /// Asks the health watch to look at the device nodes again.
    recheck: Arc<Notify>,
    /// Becomes `true` when this server instance stops: open ListAndWatch streams then end.
    stopping: watch::Receiver<bool>,
}

impl DevicePluginService {
    /// A service for `resource`.
    pub fn new(
        resource: Arc<Resource>,
        platform: Arc<dyn SgxPlatform>,
        metrics: Metrics,
        recheck: Arc<Notify>,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        Self {
            resource,
            platform,
            metrics,
            recheck,
            stopping,
        }
    }

    fn refuse(&self, err: &AllocateError) -> Status {
        let reason = match err {
            AllocateError::NoContainers => "no_containers",
            AllocateError::NoDevices { .. } => "no_devices",
            AllocateError::UnknownDevice { .. } => "unknown_device",
            AllocateError::DuplicateDevice { .. } => "duplicate_device",
            AllocateError::UnhealthyDevice { .. } => "unhealthy_device",
        };
        self.metrics.allocation_error(self.resource.name(), reason);
        tracing::warn!(rpc = "Allocate", resource = %self.resource.name(), error = %err, "allocation refused");
        match err {
            AllocateError::UnhealthyDevice { .. } => Status::failed_precondition(err.to_string()),
            _ => Status::invalid_argument(err.to_string()),
        }
    }
}

type ListAndWatchStream = Pin<Box<dyn Stream<Item = Result<ListAndWatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl DevicePlugin for DevicePluginService {
    async fn get_device_plugin_options(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<DevicePluginOptions>, Status> {
        // EPC MiB are fungible and kubelet would send every available id to GetPreferredAllocation
        // (over 4 MiB at 256 GiB): it is not advertised for any resource. No PreStartContainer work.
        Ok(Response::new(DevicePluginOptions {
            pre_start_required: false,
            get_preferred_allocation_available: false,
        }))
    }

    type ListAndWatchStream = ListAndWatchStream;

    async fn list_and_watch(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<Self::ListAndWatchStream>, Status> {
        let name = self.resource.name().to_owned();
        tracing::info!(rpc = "ListAndWatch", resource = %name, "kubelet is watching");
        let mut stopping = self.stopping.clone();
        let stop = async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        };
        let stream = WatchStream::new(self.resource.subscribe())
            .map(move |message| {
                tracing::debug!(rpc = "ListAndWatch", resource = %name, devices = message.devices.len(), "sending device list");
                Ok(ListAndWatchResponse::clone(&message))
            })
            .take_until(stop);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_preferred_allocation(
        &self,
        _: Request<PreferredAllocationRequest>,
    ) -> Result<Response<PreferredAllocationResponse>, Status> {
        Err(Status::unimplemented(
            "GetPreferredAllocation is not offered (get_preferred_allocation_available is false)",
        ))
    }

    async fn allocate(
        &self,
        request: Request<AllocateRequest>,
    ) -> Result<Response<AllocateResponse>, Status> {
        let request = request.into_inner();
        if request.container_requests.is_empty() {
            return Err(self.refuse(&AllocateError::NoContainers));
        }
        for (container, req) in request.container_requests.iter().enumerate() {
            self.resource
                .check_ids(container, &req.devices_ids)
                .map_err(|err| self.refuse(&err))?;
        }
        let nodes = if self.resource.simulate() {
            DeviceNodes::ALL
        } else {
            self.platform.device_nodes()
        };
        if !self.resource.kind().nodes_present(&nodes) {
            // The node vanished since the last health check: have the watch send the update kubelet
            // expects, and fail this allocation.
            self.recheck.notify_one();
            let first = request
                .container_requests
                .iter()
                .flat_map(|c| c.devices_ids.first())
                .next();
            let err = AllocateError::UnhealthyDevice {
                resource: self.resource.name().to_owned(),
                id: first.cloned().unwrap_or_default(),
            };
            return Err(self.refuse(&err));
        }
        let container_responses = request
            .container_requests
            .iter()
            .map(|req| {
                self.metrics
                    .allocated(self.resource.name(), req.devices_ids.len());
                self.resource.container_response(&nodes)
            })
            .collect();
        tracing::info!(
            rpc = "Allocate",
            resource = %self.resource.name(),
            containers = request.container_requests.len(),
            devices = request.container_requests.iter().map(|c| c.devices_ids.len()).sum::<usize>(),
            "allocated"
        );
        Ok(Response::new(AllocateResponse {
            container_responses,
        }))
    }

    async fn pre_start_container(
        &self,
        _: Request<PreStartContainerRequest>,
    ) -> Result<Response<PreStartContainerResponse>, Status> {
        Ok(Response::new(PreStartContainerResponse {}))
    }
}

//! The DRA resource health service kubelet watches (`v1alpha1.DRAResourceHealth`, feature gate
//! ResourceHealthStatus, beta and on by default in Kubernetes 1.36): a stream of every EPC
//! device's health, shown in the pods that use them (`status.containerStatuses[].
//! allocatedResourcesStatus`).
//!
//! A device is healthy while containers can be given what it stands for: the node's enclave
//! device node (or, on a simulated node, always). When the enclave device node goes away (the
//! SGX driver unloaded or not loaded) the devices become unhealthy, with the reason. The full list
//! goes out when the stream opens, whenever the inventory changes, and every [`RESEND`] (kubelet
//! takes a device's health as unknown after [`HEALTH_TIMEOUT`] without an update).

use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::Stream;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::proto::health::dra_resource_health_server::DraResourceHealth;
use super::proto::health::{
    DeviceHealth, DeviceIdentifier, HealthStatus, NodeWatchResourcesRequest,
    NodeWatchResourcesResponse,
};
use crate::inventory::Inventory;

/// The service's entry in the registration's supported versions.
pub const HEALTH_SERVICE: &str = "v1alpha1.DRAResourceHealth";
/// How long kubelet keeps a device's reported health before it counts as unknown.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the full list is sent again while nothing changes.
pub const RESEND: Duration = Duration::from_secs(20);

/// The health of every device of `inventory` in pool `pool`, at `now` (Unix seconds).
pub fn device_health(inventory: &Inventory, pool: &str, now: i64) -> Vec<DeviceHealth> {
    let (health, message) = if inventory.simulated {
        (HealthStatus::Healthy, "simulated EPC".to_owned())
    } else if let Some(layout) = inventory.layout {
        (
            HealthStatus::Healthy,
            format!("enclave device node present ({})", layout.as_str()),
        )
    } else {
        (
            HealthStatus::Unhealthy,
            "no SGX enclave device node on the node (/dev/sgx_enclave, /dev/sgx/enclave or \
             /dev/isgx): is the SGX driver loaded?"
                .to_owned(),
        )
    };
    let timeout = i64::try_from(HEALTH_TIMEOUT.as_secs()).unwrap_or(i64::MAX);
    inventory
        .devices
        .iter()
        .map(|device| DeviceHealth {
            device: Some(DeviceIdentifier {
                pool_name: pool.to_owned(),
                device_name: device.name.clone(),
            }),
            health: health.into(),
            last_updated_time: now,
            health_check_timeout_seconds: timeout,
            message: message.clone(),
        })
        .collect()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The health service over the node's inventory.
#[derive(Clone, Debug)]
pub struct HealthService {
    pool: String,
    inventory: watch::Receiver<Inventory>,
    resend: Duration,
}

impl HealthService {
    /// The devices of `inventory`, in the pool `pool` (the node's name).
    pub fn new(pool: impl Into<String>, inventory: watch::Receiver<Inventory>) -> Self {
        Self {
            pool: pool.into(),
            inventory,
            resend: RESEND,
        }
    }

    /// Sends the list again every `resend` while nothing changes (tests).
    pub fn with_resend(mut self, resend: Duration) -> Self {
        self.resend = resend.max(Duration::from_millis(1));
        self
    }
}

type HealthStream = Pin<Box<dyn Stream<Item = Result<NodeWatchResourcesResponse, Status>> + Send>>;

#[tonic::async_trait]
impl DraResourceHealth for HealthService {
    type NodeWatchResourcesStream = HealthStream;

    async fn node_watch_resources(
        &self,
        _: Request<NodeWatchResourcesRequest>,
    ) -> Result<Response<Self::NodeWatchResourcesStream>, Status> {
        tracing::debug!(rpc = "NodeWatchResources", "kubelet watches device health");
        let mut inventory = self.inventory.clone();
        inventory.mark_changed();
        let (pool, resend) = (self.pool.clone(), self.resend);
        // Ends when kubelet closes the stream (it is dropped then).
        let stream = futures_util::stream::unfold(inventory, move |mut inventory| {
            let pool = pool.clone();
            async move {
                if !inventory.has_changed().unwrap_or(false) {
                    tokio::select! {
                        changed = inventory.changed() => {
                            // The inventory's feed is gone (the driver is stopping): the timer
                            // paces the stream until kubelet closes it.
                            if changed.is_err() {
                                tokio::time::sleep(resend).await;
                            }
                        }
                        () = tokio::time::sleep(resend) => {}
                    }
                }
                let devices = device_health(&inventory.borrow_and_update(), &pool, unix_now());
                Some((Ok(NodeWatchResourcesResponse { devices }), inventory))
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::DriverLayout;

    #[test]
    fn every_device_is_reported_with_its_pool_and_the_reason() {
        let mut inventory = crate::devices::simulated(1 << 30).unwrap();
        let simulated = device_health(&inventory, "node-a", 1_700_000_000);
        assert_eq!(simulated.len(), 1);
        assert_eq!(simulated[0].health(), HealthStatus::Healthy);
        assert_eq!(simulated[0].last_updated_time, 1_700_000_000);
        assert_eq!(simulated[0].health_check_timeout_seconds, 60);
        assert_eq!(
            simulated[0].device,
            Some(DeviceIdentifier {
                pool_name: "node-a".into(),
                device_name: "epc".into(),
            })
        );
        inventory.simulated = false;
        inventory.layout = Some(DriverLayout::Dcap);
        inventory.devices.push(crate::inventory::EpcDevice {
            name: "epc-numa1".into(),
            numa_node: Some(1),
            bytes: 1 << 30,
        });
        let dcap = device_health(&inventory, "node-a", 1);
        assert_eq!(dcap.len(), 2);
        assert!(dcap.iter().all(|d| d.health() == HealthStatus::Healthy));
        assert!(dcap[0].message.contains("dcap"), "{}", dcap[0].message);
        inventory.layout = None;
        let none = device_health(&inventory, "node-a", 1);
        assert!(none.iter().all(|d| d.health() == HealthStatus::Unhealthy));
        assert!(none[1].message.len() < 1024);
        // A resend period of zero would be a busy loop.
        let (_tx, rx) = watch::channel(inventory);
        let service = HealthService::new("node-a", rx).with_resend(Duration::ZERO);
        assert_eq!(service.resend, Duration::from_millis(1));
    }
}

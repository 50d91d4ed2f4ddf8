//! `confcom_device_plugin_*` metrics, registered in the caller's registry (served by `ops-http`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The plugin's metrics. Cheap to clone: clones share the values.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    devices: Family<Labels, Gauge>,
    message_bytes: Family<Labels, Gauge>,
    unadvertised: Family<Labels, Gauge>,
    allocations: Family<Labels, Counter>,
    allocated_devices: Family<Labels, Counter>,
    allocation_errors: Family<Labels, Counter>,
    registrations: Family<Labels, Counter>,
    kubelet_restarts: Counter,
}

impl Metrics {
    /// Metrics registered in `registry` under `confcom_device_plugin_*`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let sub = registry.sub_registry_with_prefix("confcom_device_plugin");
        sub.register(
            "devices",
            "Devices advertised to kubelet, by resource and health",
            metrics.devices.clone(),
        );
        sub.register(
            "listandwatch_message_bytes",
            "Encoded size of the last ListAndWatch message, by resource (kubelet's limit is 4194304)",
            metrics.message_bytes.clone(),
        );
        sub.register(
            "unadvertised_devices",
            "Devices not advertised because they do not fit one ListAndWatch message, by resource",
            metrics.unadvertised.clone(),
        );
        sub.register(
            "allocations",
            "Container allocations granted, by resource",
            metrics.allocations.clone(),
        );
        sub.register(
            "allocated_devices",
            "Devices granted to containers, by resource",
            metrics.allocated_devices.clone(),
        );
        sub.register(
            "allocation_errors",
            "Allocate requests refused, by resource and reason",
            metrics.allocation_errors.clone(),
        );
        sub.register(
            "registrations",
            "Register calls to kubelet, by resource and result",
            metrics.registrations.clone(),
        );
        sub.register(
            "kubelet_restarts",
            "kubelet restarts seen (kubelet.sock recreated)",
            metrics.kubelet_restarts.clone(),
        );
        metrics
    }

    pub(crate) fn set_devices(
        &self,
        resource: &str,
        healthy: u64,
        unhealthy: u64,
        bytes: usize,
        unadvertised: u64,
    ) {
        let gauge = |family: &Family<Labels, Gauge>, labels: Labels, value: u64| {
            family
                .get_or_create(&labels)
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        };
        gauge(
            &self.devices,
            vec![
                ("resource", resource.to_owned()),
                ("health", "healthy".to_owned()),
            ],
            healthy,
        );
        gauge(
            &self.devices,
            vec![
                ("resource", resource.to_owned()),
                ("health", "unhealthy".to_owned()),
            ],
            unhealthy,
        );
        gauge(
            &self.message_bytes,
            vec![("resource", resource.to_owned())],
            bytes as u64,
        );
        gauge(
            &self.unadvertised,
            vec![("resource", resource.to_owned())],
            unadvertised,
        );
    }

    pub(crate) fn allocated(&self, resource: &str, devices: usize) {
        let labels = vec![("resource", resource.to_owned())];
        self.allocations.get_or_create(&labels).inc();
        self.allocated_devices
            .get_or_create(&labels)
            .inc_by(devices as u64);
    }

    pub(crate) fn allocation_error(&self, resource: &str, reason: &'static str) {
        self.allocation_errors
            .get_or_create(&vec![
                ("resource", resource.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }

    pub(crate) fn registration(&self, resource: &str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.registrations
            .get_or_create(&vec![
                ("resource", resource.to_owned()),
                ("result", result.to_owned()),
            ])
            .inc();
    }

    pub(crate) fn kubelet_restart(&self) {
        self.kubelet_restarts.inc();
    }

    /// Registrations that succeeded for `resource` (tests and the benchmark read it).
    pub fn registrations_ok(&self, resource: &str) -> u64 {
        self.registrations
            .get_or_create(&vec![
                ("resource", resource.to_owned()),
                ("result", "ok".to_owned()),
            ])
            .get()
    }

    /// kubelet restarts seen.
    pub fn kubelet_restarts(&self) -> u64 {
        self.kubelet_restarts.get()
    }
}

//! `confcom_dra_driver_*` metrics of the kubelet side, registered in the caller's registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The gRPC call a duration belongs to.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `prepare` or `unprepare`.
    pub call: &'static str,
}

/// The kubelet side's metrics. Cheap to clone: clones share the values.
#[derive(Clone, Debug)]
pub struct Metrics {
    prepare_claims: Counter,
    unprepare_claims: Counter,
    prepare_errors: Counter,
    unprepare_errors: Counter,
    prepared_claims: Gauge,
    registrations: Family<RegistrationLabels, Counter>,
    duration: Family<CallLabels, Histogram>,
}

/// Kubelet's registration verdict.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegistrationLabels {
    /// `registered` or `rejected`.
    pub result: &'static str,
}

fn duration_histogram() -> Histogram {
    // 0.5 ms … about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            prepare_claims: Counter::default(),
            unprepare_claims: Counter::default(),
            prepare_errors: Counter::default(),
            unprepare_errors: Counter::default(),
            prepared_claims: Gauge::default(),
            registrations: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
        }
    }
}

impl Metrics {
    /// Metrics registered in `registry` under `confcom_dra_driver_*`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let sub = registry.sub_registry_with_prefix("confcom_dra_driver");
        sub.register(
            "prepare_claims",
            "Claims in NodePrepareResources calls",
            metrics.prepare_claims.clone(),
        );
        sub.register(
            "unprepare_claims",
            "Claims in NodeUnprepareResources calls",
            metrics.unprepare_claims.clone(),
        );
        sub.register(
            "prepare_errors",
            "Claims whose preparation failed",
            metrics.prepare_errors.clone(),
        );
        sub.register(
            "unprepare_errors",
            "Claims whose unpreparation failed",
            metrics.unprepare_errors.clone(),
        );
        sub.register(
            "prepared_claims",
            "Claims prepared on this node (in the checkpoint)",
            metrics.prepared_claims.clone(),
        );
        sub.register(
            "registrations",
            "Registration verdicts from kubelet, by result",
            metrics.registrations.clone(),
        );
        sub.register(
            "request_duration_seconds",
            "Duration of NodePrepareResources and NodeUnprepareResources calls, by call",
            metrics.duration.clone(),
        );
        metrics
    }

    pub(crate) fn prepared(&self, claims: u64, errors: u64, seconds: f64) {
        self.prepare_claims.inc_by(claims);
        self.prepare_errors.inc_by(errors);
        self.duration
            .get_or_create(&CallLabels { call: "prepare" })
            .observe(seconds);
    }

    pub(crate) fn unprepared(&self, claims: u64, errors: u64, seconds: f64) {
        self.unprepare_claims.inc_by(claims);
        self.unprepare_errors.inc_by(errors);
        self.duration
            .get_or_create(&CallLabels { call: "unprepare" })
            .observe(seconds);
    }

    pub(crate) fn set_prepared_claims(&self, n: usize) {
        self.prepared_claims
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn registration(&self, registered: bool) {
        let result = if registered { "registered" } else { "rejected" };
        self.registrations
            .get_or_create(&RegistrationLabels { result })
            .inc();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_exported_as_documented() {
        let mut registry = Registry::default();
        let metrics = Metrics::new(&mut registry);
        metrics.prepared(3, 1, 0.01);
        metrics.unprepared(2, 0, 0.002);
        metrics.set_prepared_claims(2);
        metrics.registration(true);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "confcom_dra_driver_prepare_claims_total 3",
            "confcom_dra_driver_prepare_errors_total 1",
            "confcom_dra_driver_unprepare_claims_total 2",
            "confcom_dra_driver_unprepare_errors_total 0",
            "confcom_dra_driver_prepared_claims 2",
            "confcom_dra_driver_registrations_total{result=\"registered\"} 1",
            "confcom_dra_driver_request_duration_seconds_count{call=\"prepare\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }
}

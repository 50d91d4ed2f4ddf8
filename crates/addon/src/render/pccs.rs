//! The in-cluster PCCS (`--enable-pccs`): a Deployment running `confcom pccs` and its Service, and
//! the Secret holding a simulated cluster's shared CA (`--sim-ca`).
//!
//! On hardware the PCCS caches an upstream service (Intel's PCS by default) in an `emptyDir`; the
//! hardware quote helpers' quote provider is pointed at it. In simulation it serves the collateral
//! of a platform created under the cluster's simulated CA, which every node's quote helper shares,
//! so one PCCS answers for every node.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, ResourceRequirements, Secret, SecretVolumeSource, Service,
    ServicePort, ServiceSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::RenderOptions;
use super::parts::*;
use crate::names::*;

/// Where the simulated CA Secret is mounted in the quote helper and the PCCS.
pub(super) const SIM_CA_MOUNT: &str = "/etc/confcom/sim-ca";
/// The PCCS's writable directory (cache or simulated platform state), an `emptyDir`.
const PCCS_DATA_DIR: &str = "/var/lib/confcom-pccs";

/// The URL of the in-cluster PCCS, as the quote provider library takes it.
pub(super) fn in_cluster_url(opts: &RenderOptions) -> String {
    format!(
        "http://{PCCS_NAME}.{}.svc:{PCCS_PORT}/sgx/certification/v4/",
        opts.namespace
    )
}

/// The volume of the simulated CA Secret.
pub(super) fn sim_ca_volume() -> Volume {
    Volume {
        name: s("sim-ca"),
        secret: Some(SecretVolumeSource {
            secret_name: Some(s(SIM_CA_SECRET_NAME)),
            default_mode: Some(0o440),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

pub(super) fn sim_ca_secret(opts: &RenderOptions, files: &BTreeMap<String, Vec<u8>>) -> Secret {
    Secret {
        metadata: meta(SIM_CA_SECRET_NAME, Some(&opts.namespace), COMPONENT_PCCS),
        type_: Some(s("Opaque")),
        data: Some(
            files
                .iter()
                .map(|(name, bytes)| (name.clone(), ByteString(bytes.clone())))
                .collect(),
        ),
        ..Secret::default()
    }
}

pub(super) fn pccs_service(opts: &RenderOptions) -> Service {
    Service {
        metadata: meta(PCCS_NAME, Some(&opts.namespace), COMPONENT_PCCS),
        spec: Some(ServiceSpec {
            type_: Some(s("ClusterIP")),
            selector: Some(selector_labels(COMPONENT_PCCS)),
            ports: Some(vec![ServicePort {
                name: Some(s("http")),
                port: i32::from(PCCS_PORT),
                target_port: Some(IntOrString::String(s("http"))),
                protocol: Some(s("TCP")),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

pub(super) fn pccs_deployment(opts: &RenderOptions) -> Deployment {
    let mut args = vec![s("pccs")];
    let mut mounts = vec![mount("data", PCCS_DATA_DIR, false)];
    let mut volumes = vec![Volume {
        name: s("data"),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity(s("256Mi"))),
            ..EmptyDirVolumeSource::default()
        }),
        ..Volume::default()
    }];
    if opts.simulate {
        args.extend([
            s("--sim-state"),
            format!("{PCCS_DATA_DIR}/state"),
            s("--sim-ca-dir"),
            s(SIM_CA_MOUNT),
        ]);
        mounts.push(mount("sim-ca", SIM_CA_MOUNT, true));
        volumes.push(sim_ca_volume());
    } else {
        args.extend([
            s("--upstream"),
            opts.pccs_upstream.clone(),
            s("--cache-dir"),
            s(PCCS_DATA_DIR),
        ]);
    }
    args.extend([s("--listen"), format!("0.0.0.0:{PCCS_PORT}")]);
    let container = Container {
        name: s("pccs"),
        image: Some(opts.image.clone()),
        image_pull_policy: Some(s("IfNotPresent")),
        args: Some(args),
        ports: Some(vec![named_port("http", PCCS_PORT)]),
        liveness_probe: Some(http_probe("/healthz", "http", None, 20)),
        readiness_probe: Some(http_probe("/readyz", "http", None, 10)),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&[("cpu", "10m"), ("memory", "32Mi")])),
            limits: Some(quantities(&[("cpu", "500m"), ("memory", "128Mi")])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(hardened(false)),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    // One cache file, one writer: the old pod goes before the new one comes.
    let strategy = DeploymentStrategy {
        type_: Some(s("Recreate")),
        ..DeploymentStrategy::default()
    };
    cluster_deployment(
        opts,
        PCCS_NAME,
        COMPONENT_PCCS,
        container,
        volumes,
        1,
        Some(strategy),
    )
}

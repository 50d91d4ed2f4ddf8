//! The in-cluster PCCS (`--enable-pccs`): a Deployment running `confcom pccs` and its Service, and
//! the Secret holding a simulated cluster's shared CA (`--sim-ca`).
//!
//! On hardware the PCCS caches an upstream service (Intel's PCS by default) in an `emptyDir`; the
//! hardware quote helpers' quote provider is pointed at it. In simulation it serves the collateral
//! of a platform created under the cluster's simulated CA, which every node's quote helper shares,
//! so one PCCS answers for every node.
//!
//! With `--pccs-certs` (a directory written by `confcom pccs certs`) it serves HTTPS, as Intel's
//! PCCS does: the serving certificate and key in the Secret `sgx-pccs-tls`, the CA that issued them
//! in the ConfigMap `sgx-pccs-ca` for its clients. The hardware quote helpers mount that CA and name
//! it in `SSL_CERT_FILE`, which the quote provider library adds to the roots it trusts.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar,
    ResourceRequirements, Secret, SecretVolumeSource, Service, ServicePort, ServiceSpec, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::RenderOptions;
use super::parts::*;
use crate::certs::CertBundle;
use crate::names::*;

/// Where the simulated CA Secret is mounted in the quote helper and the PCCS.
pub(super) const SIM_CA_MOUNT: &str = "/etc/confcom/sim-ca";
/// The PCCS's writable directory (cache or simulated platform state), an `emptyDir`.
const PCCS_DATA_DIR: &str = "/var/lib/confcom-pccs";
/// Where the PCCS's serving certificate and key are mounted.
const PCCS_TLS_MOUNT: &str = "/etc/confcom/pccs-tls";
/// Where the PCCS's CA is mounted in its clients.
const PCCS_CA_MOUNT: &str = "/etc/confcom/pccs-ca";

/// The URL of the in-cluster PCCS, as the quote provider library takes it.
pub(super) fn in_cluster_url(opts: &RenderOptions) -> String {
    let scheme = if opts.pccs_tls.is_some() {
        "https"
    } else {
        "http"
    };
    format!(
        "{scheme}://{PCCS_NAME}.{}.svc:{PCCS_PORT}/sgx/certification/v4/",
        opts.namespace
    )
}

/// The name of the PCCS's port: `https` when it serves TLS, else `http`.
fn port_name(opts: &RenderOptions) -> &'static str {
    if opts.pccs_tls.is_some() {
        "https"
    } else {
        "http"
    }
}

/// The PCCS's serving certificate and key.
pub(super) fn pccs_tls_secret(opts: &RenderOptions, certs: &CertBundle) -> Secret {
    tls_secret(opts, PCCS_TLS_SECRET_NAME, COMPONENT_PCCS, certs)
}

/// The CA of the PCCS's serving certificate (public: no key), for the PCCS's clients.
pub(super) fn pccs_ca_config_map(opts: &RenderOptions, certs: &CertBundle) -> ConfigMap {
    ConfigMap {
        metadata: meta(
            PCCS_CA_CONFIG_MAP_NAME,
            Some(&opts.namespace),
            COMPONENT_PCCS,
        ),
        data: Some(BTreeMap::from([(s(PCCS_CA_KEY), certs.ca_pem.clone())])),
        ..ConfigMap::default()
    }
}

/// What a client of the in-cluster HTTPS PCCS needs to trust it: the CA's volume, its mount, and
/// `SSL_CERT_FILE` naming it.
pub(super) fn pccs_ca_trust() -> (Volume, VolumeMount, EnvVar) {
    let volume = Volume {
        name: s("pccs-ca"),
        config_map: Some(ConfigMapVolumeSource {
            name: s(PCCS_CA_CONFIG_MAP_NAME),
            default_mode: Some(0o444),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    };
    let env = EnvVar {
        name: s("SSL_CERT_FILE"),
        value: Some(format!("{PCCS_CA_MOUNT}/{PCCS_CA_KEY}")),
        ..EnvVar::default()
    };
    (volume, mount("pccs-ca", PCCS_CA_MOUNT, true), env)
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
                name: Some(s(port_name(opts))),
                port: i32::from(PCCS_PORT),
                target_port: Some(IntOrString::String(s(port_name(opts)))),
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
    args.extend(opts.server_limits.args());
    let port = port_name(opts);
    let mut scheme = None;
    if opts.pccs_tls.is_some() {
        args.extend([
            s("--tls-cert"),
            format!("{PCCS_TLS_MOUNT}/tls.crt"),
            s("--tls-key"),
            format!("{PCCS_TLS_MOUNT}/tls.key"),
        ]);
        mounts.push(mount("tls", PCCS_TLS_MOUNT, true));
        volumes.push(Volume {
            name: s("tls"),
            secret: Some(SecretVolumeSource {
                secret_name: Some(s(PCCS_TLS_SECRET_NAME)),
                default_mode: Some(0o440),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
        // Probes go through TLS, so a broken serving certificate shows.
        scheme = Some("HTTPS");
    }
    let container = Container {
        name: s("pccs"),
        image: Some(opts.image.clone()),
        image_pull_policy: Some(s("IfNotPresent")),
        args: Some(args),
        ports: Some(vec![named_port(port, PCCS_PORT)]),
        liveness_probe: Some(http_probe("/healthz", port, scheme, 20)),
        readiness_probe: Some(http_probe("/readyz", port, scheme, 10)),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&[("cpu", "10m"), ("memory", "32Mi")])),
            limits: Some(quantities(&[
                ("cpu", "500m"),
                ("memory", &opts.server_limits.memory_limit(128)),
            ])),
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

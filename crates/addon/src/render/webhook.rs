//! The admission webhook's objects: TLS Secret, Service, Deployment and the
//! MutatingWebhookConfiguration with its two entries (pod label, namespace label).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations,
    ServiceReference, WebhookClientConfig,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    Container, ResourceRequirements, Secret, SecretVolumeSource, Service, ServicePort, ServiceSpec,
    Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::RenderOptions;
use super::parts::*;
use crate::certs::CertBundle;
use crate::names::*;

pub(super) fn webhook_secret(opts: &RenderOptions, certs: &CertBundle) -> Secret {
    tls_secret(opts, WEBHOOK_TLS_SECRET_NAME, COMPONENT_WEBHOOK, certs)
}

pub(super) fn webhook_service(opts: &RenderOptions) -> Service {
    Service {
        metadata: meta(WEBHOOK_NAME, Some(&opts.namespace), COMPONENT_WEBHOOK),
        spec: Some(ServiceSpec {
            type_: Some(s("ClusterIP")),
            selector: Some(selector_labels(COMPONENT_WEBHOOK)),
            ports: Some(vec![ServicePort {
                name: Some(s("https")),
                port: 443,
                target_port: Some(IntOrString::String(s("https"))),
                protocol: Some(s("TCP")),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

pub(super) fn webhook_deployment(opts: &RenderOptions) -> Deployment {
    let cert_dir = "/etc/confcom/webhook";
    let mut args = vec![
        s("webhook"),
        s("--tls-cert"),
        format!("{cert_dir}/tls.crt"),
        s("--tls-key"),
        format!("{cert_dir}/tls.key"),
        s("--listen"),
        format!("0.0.0.0:{WEBHOOK_PORT}"),
        s("--metrics-addr"),
        format!("0.0.0.0:{WEBHOOK_METRICS_PORT}"),
    ];
    args.extend(opts.server_limits.args());
    let container = Container {
        name: s("webhook"),
        image: Some(opts.image.clone()),
        image_pull_policy: Some(s("IfNotPresent")),
        args: Some(args),
        ports: Some(vec![
            named_port("https", WEBHOOK_PORT),
            named_port("metrics", WEBHOOK_METRICS_PORT),
        ]),
        // Liveness goes through TLS so a broken serving certificate restarts the pod.
        liveness_probe: Some(http_probe("/healthz", "https", Some("HTTPS"), 20)),
        readiness_probe: Some(http_probe("/readyz", "metrics", None, 10)),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&[("cpu", "10m"), ("memory", "16Mi")])),
            limits: Some(quantities(&[
                ("cpu", "200m"),
                ("memory", &opts.server_limits.memory_limit(64)),
            ])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(hardened(false)),
        volume_mounts: Some(vec![mount("tls", cert_dir, true)]),
        ..Container::default()
    };
    let volumes = vec![Volume {
        name: s("tls"),
        secret: Some(SecretVolumeSource {
            secret_name: Some(s(WEBHOOK_TLS_SECRET_NAME)),
            default_mode: Some(0o440),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }];
    cluster_deployment(
        opts,
        WEBHOOK_NAME,
        COMPONENT_WEBHOOK,
        container,
        volumes,
        2,
        None,
    )
}

fn not_own_pods() -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: s(LABEL_PART_OF),
        operator: s("NotIn"),
        values: Some(vec![s(PART_OF)]),
    }
}

fn mutating_webhook(
    opts: &RenderOptions,
    certs: &CertBundle,
    name: &str,
    path: &str,
) -> MutatingWebhook {
    MutatingWebhook {
        name: s(name),
        admission_review_versions: vec![s("v1")],
        client_config: WebhookClientConfig {
            ca_bundle: Some(ByteString(certs.ca_pem.as_bytes().to_vec())),
            service: Some(ServiceReference {
                name: s(WEBHOOK_NAME),
                namespace: opts.namespace.clone(),
                path: Some(s(path)),
                port: Some(443),
            }),
            url: None,
        },
        rules: Some(vec![RuleWithOperations {
            api_groups: Some(vec![s("")]),
            api_versions: Some(vec![s("v1")]),
            operations: Some(vec![s("CREATE")]),
            resources: Some(vec![s("pods")]),
            scope: Some(s("Namespaced")),
        }]),
        // Fail open: a webhook outage must never block pod creation cluster-wide.
        failure_policy: Some(s("Ignore")),
        match_policy: Some(s("Equivalent")),
        side_effects: s("None"),
        timeout_seconds: Some(5),
        reinvocation_policy: Some(s("IfNeeded")),
        ..MutatingWebhook::default()
    }
}

pub(super) fn webhook_configuration(
    opts: &RenderOptions,
    certs: &CertBundle,
) -> MutatingWebhookConfiguration {
    // Pods labelled `confcom.sgx/quote-helper=true` anywhere, except the add-on's own.
    let mut by_pod = mutating_webhook(
        opts,
        certs,
        "pod-opt-in.quote-helper.confcom.sgx",
        WEBHOOK_PATH_POD,
    );
    by_pod.object_selector = Some(LabelSelector {
        match_labels: Some(BTreeMap::from([(s(LABEL_QUOTE_HELPER_OPT_IN), s("true"))])),
        match_expressions: Some(vec![not_own_pods()]),
    });
    // Pods in namespaces labelled `confcom.sgx/quote-helper=true`, except pods that carry the label
    // themselves (handled above, or opted out with "false") and the add-on's own.
    let mut by_namespace = mutating_webhook(
        opts,
        certs,
        "namespace-opt-in.quote-helper.confcom.sgx",
        WEBHOOK_PATH_NAMESPACE,
    );
    by_namespace.namespace_selector = Some(LabelSelector {
        match_labels: Some(BTreeMap::from([(s(LABEL_QUOTE_HELPER_OPT_IN), s("true"))])),
        match_expressions: None,
    });
    by_namespace.object_selector = Some(LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![
            not_own_pods(),
            LabelSelectorRequirement {
                key: s(LABEL_QUOTE_HELPER_OPT_IN),
                operator: s("NotIn"),
                values: Some(vec![s("false"), s("true")]),
            },
        ]),
    });
    // Pods written Intel's way (a container requesting `sgx.intel.com/epc`), wherever they are and
    // whatever their labels: Intel's resources, and the wiring when annotated
    // `sgx.intel.com/quote-provider: aesmd`. The match condition keeps every other pod away from
    // the webhook.
    let mut by_intel_epc = mutating_webhook(
        opts,
        certs,
        "sgx-epc.quote-helper.confcom.sgx",
        WEBHOOK_PATH_INTEL_EPC,
    );
    by_intel_epc.object_selector = Some(LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![not_own_pods()]),
    });
    by_intel_epc.match_conditions = Some(vec![MatchCondition {
        name: s("requests-sgx-intel-epc"),
        expression: requests_resource_cel(RESOURCE_INTEL_EPC),
    }]);
    MutatingWebhookConfiguration {
        metadata: meta(WEBHOOK_NAME, None, COMPONENT_WEBHOOK),
        webhooks: Some(vec![by_pod, by_namespace, by_intel_epc]),
    }
}

/// A CEL expression over the admitted pod: does a container or init container request `resource`
/// (in its limits or requests)?
fn requests_resource_cel(resource: &str) -> String {
    let container = format!(
        "(has(c.resources) && ((has(c.resources.limits) && '{resource}' in c.resources.limits) || \
         (has(c.resources.requests) && '{resource}' in c.resources.requests)))"
    );
    format!(
        "object.spec.containers.exists(c, {container}) || \
         (has(object.spec.initContainers) && object.spec.initContainers.exists(c, {container}))"
    )
}

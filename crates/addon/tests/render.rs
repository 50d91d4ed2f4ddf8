#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Rendered manifests: schema validity (kubernetes-validate, strict), round trip through the
//! k8s-openapi types, determinism, and the security / placement / wiring properties.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use addon::certs::{self, CertBundle, CertRequest};
use addon::names::*;
use addon::render::{Object, RenderError, RenderOptions, from_yaml, render, to_yaml};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};

/// The Kubernetes release the k8s-openapi feature `v1_37` describes.
const K8S_VERSION: &str = "1.37.0";

fn certs_for(namespace: &str) -> CertBundle {
    static KUBE_SYSTEM: OnceLock<CertBundle> = OnceLock::new();
    static OTHER: OnceLock<CertBundle> = OnceLock::new();
    static PCCS: OnceLock<CertBundle> = OnceLock::new();
    let make = |ns: &str| {
        let dir = tempfile::tempdir().unwrap();
        let req = CertRequest {
            namespace: ns.to_owned(),
            ..CertRequest::default()
        };
        certs::ensure_dir(dir.path(), &req, time::OffsetDateTime::now_utc(), false).unwrap();
        certs::load_dir(dir.path()).unwrap()
    };
    match namespace {
        "kube-system" => KUBE_SYSTEM.get_or_init(|| make("kube-system")).clone(),
        "confcom-sgx" => OTHER.get_or_init(|| make("confcom-sgx")).clone(),
        "pccs" => PCCS.get_or_init(pccs_certs).clone(),
        other => panic!("no certificates prepared for {other}"),
    }
}

/// Serving certificates of the in-cluster PCCS in kube-system, as `confcom pccs certs` makes them.
fn pccs_certs() -> CertBundle {
    let dir = tempfile::tempdir().unwrap();
    let req = CertRequest {
        service: "sgx-pccs".to_owned(),
        ..CertRequest::default()
    };
    certs::ensure_dir(dir.path(), &req, time::OffsetDateTime::now_utc(), false).unwrap();
    certs::load_dir(dir.path()).unwrap()
}

/// Every meaningful combination of the flags.
fn combinations() -> Vec<(&'static str, RenderOptions)> {
    let base = RenderOptions::default();
    let pccs = Some("https://pccs.example.net:8081/sgx/certification/v4/".to_owned());
    vec![
        ("default", base.clone()),
        (
            "quote-helper",
            RenderOptions {
                enable_quote_helper: true,
                ..base.clone()
            },
        ),
        (
            "quote-helper-pccs",
            RenderOptions {
                enable_quote_helper: true,
                pccs_url: pccs.clone(),
                ..base.clone()
            },
        ),
        (
            "simulate",
            RenderOptions {
                simulate: true,
                ..base.clone()
            },
        ),
        (
            "simulate-quote-helper-epc",
            RenderOptions {
                simulate: true,
                enable_quote_helper: true,
                epc_mib: Some(1024),
                ..base.clone()
            },
        ),
        (
            "webhook",
            RenderOptions {
                webhook: Some(certs_for("kube-system")),
                ..base.clone()
            },
        ),
        (
            "everything-hardware",
            RenderOptions {
                enable_quote_helper: true,
                pccs_url: pccs,
                webhook: Some(certs_for("kube-system")),
                ..base.clone()
            },
        ),
        (
            "pccs-hardware",
            RenderOptions {
                enable_quote_helper: true,
                enable_pccs: true,
                ..base.clone()
            },
        ),
        (
            "pccs-hardware-https",
            RenderOptions {
                enable_quote_helper: true,
                enable_pccs: true,
                pccs_tls: Some(certs_for("pccs")),
                ..base.clone()
            },
        ),
        (
            "azure-thim",
            RenderOptions {
                enable_quote_helper: true,
                azure_thim: true,
                ..base.clone()
            },
        ),
        (
            "azure-thim-pccs",
            RenderOptions {
                enable_quote_helper: true,
                enable_pccs: true,
                azure_thim: true,
                ..base.clone()
            },
        ),
        (
            "pccs-simulated",
            RenderOptions {
                simulate: true,
                enable_quote_helper: true,
                enable_pccs: true,
                sim_ca: Some(sim_ca()),
                ..base.clone()
            },
        ),
        (
            "dra-simulated",
            RenderOptions {
                dra: true,
                simulate: true,
                enable_quote_helper: true,
                ..base.clone()
            },
        ),
        (
            "dra-hardware",
            RenderOptions {
                dra: true,
                enable_quote_helper: true,
                enable_pccs: true,
                ..base.clone()
            },
        ),
        (
            "dra-pools",
            RenderOptions {
                dra: true,
                dra_node_selector: BTreeMap::from([(
                    "confcom.sgx/dra".to_owned(),
                    "true".to_owned(),
                )]),
                enable_quote_helper: true,
                ..base.clone()
            },
        ),
        (
            "dra-pools-selected-no-extended-resources",
            RenderOptions {
                dra: true,
                dra_node_selector: BTreeMap::from([
                    ("agentpool".to_owned(), "sgxdra".to_owned()),
                    ("confcom.sgx/dra".to_owned(), "true".to_owned()),
                ]),
                node_selector: BTreeMap::from([("tee".to_owned(), "sgx".to_owned())]),
                dra_extended_resources: false,
                epc_mib: Some(64),
                ..base.clone()
            },
        ),
        (
            "everything-simulated-custom",
            RenderOptions {
                namespace: "confcom-sgx".to_owned(),
                image: "registry.example/confcom@sha256:0123".to_owned(),
                simulate: true,
                enable_quote_helper: true,
                webhook: Some(certs_for("confcom-sgx")),
                node_selector: BTreeMap::from([
                    ("agentpool".to_owned(), "sgxpool".to_owned()),
                    ("kubernetes.azure.com/sku".to_owned(), "DC4s_v3".to_owned()),
                ]),
                ..base
            },
        ),
    ]
}

/// The files of a simulated CA directory, as `confcom sim init --ca-dir` writes them.
fn sim_ca() -> BTreeMap<String, Vec<u8>> {
    addon::render::SIM_CA_FILES
        .iter()
        .map(|name| {
            (
                (*name).to_owned(),
                format!("contents of {name}").into_bytes(),
            )
        })
        .collect()
}

fn render_all() -> Vec<(&'static str, RenderOptions, Vec<Object>)> {
    combinations()
        .into_iter()
        .map(|(name, opts)| {
            let objects = render(&opts).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, opts, objects)
        })
        .collect()
}

fn pod_spec(template: &PodTemplateSpec) -> &PodSpec {
    template.spec.as_ref().unwrap()
}

fn daemon_set<'a>(objects: &'a [Object], name: &str) -> Option<&'a PodTemplateSpec> {
    objects
        .iter()
        .find(|o| o.kind() == "DaemonSet" && o.name() == name)
        .and_then(Object::pod_template)
}

fn args(container: &Container) -> Vec<&str> {
    container
        .args
        .iter()
        .flatten()
        .map(String::as_str)
        .collect()
}

fn flag<'a>(container: &'a Container, name: &str) -> Option<&'a str> {
    let args = container.args.as_ref().unwrap();
    args.iter()
        .position(|a| a == name)
        .map(|i| args[i + 1].as_str())
}

#[test]
fn every_combination_validates_strictly_against_the_kubernetes_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, _, objects) in render_all() {
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, to_yaml(&objects).unwrap()).unwrap();
        files.push((name, file, objects.len()));
    }
    // One validator run for all files (each run starts a Python interpreter).
    let output = Command::new("kubernetes-validate")
        .args(["--strict", "-k", K8S_VERSION])
        .args(files.iter().map(|(_, file, _)| file))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "kubernetes-validate could not be run ({e}); install it with \
                 `pip install kubernetes-validate==1.37.0`"
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schema validation failed:\n{stdout}\n{stderr}"
    );
    for (name, file, count) in &files {
        let passed = format!("{} passed for resource", file.display());
        assert_eq!(
            stdout.matches(&passed).count(),
            *count,
            "{name}: every object must be validated, got:\n{stdout}\n{stderr}"
        );
    }
}

#[test]
fn the_validator_rejects_an_unknown_field() {
    // Guards the schema test above: a strict validator must refuse what Kubernetes would refuse.
    let dir = tempfile::tempdir().unwrap();
    let objects = render(&RenderOptions::default()).unwrap();
    let yaml = to_yaml(&objects).unwrap().replacen(
        "readOnlyRootFilesystem: true",
        "readOnlyRootFilesytem: true",
        1,
    );
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, yaml).unwrap();
    let output = Command::new("kubernetes-validate")
        .args(["--strict", "-k", K8S_VERSION])
        .arg(&file)
        .output()
        .expect("kubernetes-validate must be installed: pip install kubernetes-validate==1.37.0");
    assert!(!output.status.success());
}

#[test]
fn yaml_round_trips_through_the_typed_objects_and_is_deterministic() {
    for (name, opts, objects) in render_all() {
        let yaml = to_yaml(&objects).unwrap();
        let parsed = from_yaml(&yaml).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed, objects, "{name}: round trip changed the objects");
        let again = to_yaml(&render(&opts).unwrap()).unwrap();
        assert_eq!(again, yaml, "{name}: same options must give the same bytes");
        assert_eq!(
            yaml.matches("\n---\n").count() + 1,
            objects.len(),
            "{name}: one document per object"
        );
    }
}

#[test]
fn every_object_carries_the_add_on_labels_and_namespace() {
    for (name, opts, objects) in render_all() {
        for object in &objects {
            let labels = object.metadata().labels.as_ref().unwrap();
            assert_eq!(labels.get(LABEL_PART_OF).map(String::as_str), Some(PART_OF));
            let component = labels.get(LABEL_COMPONENT).unwrap();
            assert!(
                [
                    COMPONENT_DEVICE_PLUGIN,
                    COMPONENT_QUOTE_HELPER,
                    COMPONENT_WEBHOOK,
                    COMPONENT_PCCS,
                    COMPONENT_DRA_DRIVER
                ]
                .contains(&component.as_str()),
                "{name}: {} has component {component}",
                object.name()
            );
            let cluster_scoped = [
                "MutatingWebhookConfiguration",
                "ClusterRole",
                "ClusterRoleBinding",
                "ValidatingAdmissionPolicy",
                "ValidatingAdmissionPolicyBinding",
                "DeviceClass",
            ];
            let expected_ns =
                (!cluster_scoped.contains(&object.kind())).then_some(opts.namespace.as_str());
            assert_eq!(object.metadata().namespace.as_deref(), expected_ns);
            if let Some(template) = object.pod_template() {
                let pod_labels = template.metadata.as_ref().unwrap().labels.as_ref().unwrap();
                assert_eq!(pod_labels.get(LABEL_PART_OF), labels.get(LABEL_PART_OF));
                assert_eq!(pod_labels.get(LABEL_COMPONENT), Some(component));
            }
        }
    }
}

#[test]
fn workloads_are_hardened() {
    for (name, _, objects) in render_all() {
        for object in &objects {
            let Some(template) = object.pod_template() else {
                continue;
            };
            let spec = pod_spec(template);
            let what = format!("{name}/{}", object.name());
            // Only the device plugin (to patch its node's status) and the DRA driver (to publish
            // its node's ResourceSlices) get an API token, each its own.
            let account = match object.name() {
                DEVICE_PLUGIN_NAME => Some(DEVICE_PLUGIN_SERVICE_ACCOUNT),
                DRA_DRIVER_NAME => Some(DRA_DRIVER_SERVICE_ACCOUNT),
                _ => None,
            };
            let token = account.is_some();
            assert_eq!(spec.automount_service_account_token, Some(token), "{what}");
            assert_eq!(spec.service_account_name.as_deref(), account, "{what}");
            assert_eq!(spec.host_network, None, "{what}");
            assert_eq!(spec.host_pid, None, "{what}");
            assert_eq!(spec.host_ipc, None, "{what}");
            let expected_priority = if object.kind() == "DaemonSet" {
                "system-node-critical"
            } else {
                "system-cluster-critical"
            };
            assert_eq!(
                spec.priority_class_name.as_deref(),
                Some(expected_priority),
                "{what}"
            );
            let pod_seccomp = spec
                .security_context
                .as_ref()
                .and_then(|s| s.seccomp_profile.as_ref());
            assert_eq!(pod_seccomp.unwrap().type_, "RuntimeDefault", "{what}");
            for container in spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
            {
                let sc = container.security_context.as_ref().unwrap();
                assert_eq!(sc.privileged, Some(false), "{what}");
                assert_eq!(sc.allow_privilege_escalation, Some(false), "{what}");
                assert_eq!(sc.read_only_root_filesystem, Some(true), "{what}");
                let caps = sc.capabilities.as_ref().unwrap();
                assert_eq!(
                    caps.drop.as_deref(),
                    Some(&["ALL".to_owned()][..]),
                    "{what}"
                );
                assert_eq!(caps.add, None, "{what}");
                assert_eq!(
                    sc.seccomp_profile.as_ref().unwrap().type_,
                    "RuntimeDefault",
                    "{what}"
                );
                let resources = container.resources.as_ref().unwrap();
                for key in ["cpu", "memory"] {
                    assert!(
                        resources.requests.as_ref().unwrap().contains_key(key),
                        "{what}"
                    );
                    assert!(
                        resources.limits.as_ref().unwrap().contains_key(key),
                        "{what}"
                    );
                }
                let annotation = template
                    .metadata
                    .as_ref()
                    .and_then(|m| m.annotations.as_ref())
                    .and_then(|a| a.get(ANNOTATION_RUNS_AS_ROOT));
                let pod_uid = spec.security_context.as_ref().and_then(|s| s.run_as_user);
                let root = sc.run_as_user.or(pod_uid) == Some(0);
                if root {
                    assert_eq!(sc.run_as_non_root, Some(false), "{what}");
                    assert!(
                        annotation.is_some_and(|a| a.len() > 20),
                        "{what}: uid 0 needs the {ANNOTATION_RUNS_AS_ROOT} annotation"
                    );
                } else {
                    assert!(sc.run_as_user.or(pod_uid).unwrap() > 0, "{what}");
                    assert_eq!(annotation, None, "{what}: no root, no root annotation");
                }
            }
        }
    }
}

/// hostPath volumes of a pod: name → (path, type).
fn host_paths(spec: &PodSpec) -> BTreeMap<String, (String, String)> {
    spec.volumes
        .iter()
        .flatten()
        .filter_map(|v| {
            v.host_path.as_ref().map(|h| {
                (
                    v.name.clone(),
                    (h.path.clone(), h.type_.clone().unwrap_or_default()),
                )
            })
        })
        .collect()
}

fn mounts(container: &Container) -> BTreeMap<String, (String, bool)> {
    container
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| {
            (
                m.name.clone(),
                (m.mount_path.clone(), m.read_only.unwrap_or(false)),
            )
        })
        .collect()
}

#[test]
fn device_plugin_mounts_and_flags() {
    for (name, opts, objects) in render_all() {
        if !opts.device_plugin_pool() {
            assert!(daemon_set(&objects, DEVICE_PLUGIN_NAME).is_none(), "{name}");
            continue;
        }
        let template = daemon_set(&objects, DEVICE_PLUGIN_NAME).unwrap();
        let spec = pod_spec(template);
        let container = &spec.containers[0];
        let hp = host_paths(spec);
        let m = mounts(container);
        assert_eq!(
            hp["device-plugins"],
            ("/var/lib/kubelet/device-plugins".into(), "Directory".into())
        );
        assert_eq!(
            m["device-plugins"],
            ("/var/lib/kubelet/device-plugins".into(), false)
        );
        assert_eq!(args(container)[0], "device-plugin", "{name}");
        assert_eq!(
            flag(container, "--plugin-dir"),
            Some("/var/lib/kubelet/device-plugins/")
        );
        assert_eq!(flag(container, "--metrics-addr"), Some("0.0.0.0:9101"));
        if opts.simulate {
            assert!(args(container).contains(&"--simulate"), "{name}");
            assert_eq!(hp.len(), 1, "{name}: simulation needs no device nodes");
            let expected = opts.epc_mib.unwrap_or(DEFAULT_SIM_EPC_MIB).to_string();
            assert_eq!(flag(container, "--epc-mib"), Some(expected.as_str()));
        } else {
            assert!(!args(container).contains(&"--simulate"), "{name}");
            assert_eq!(hp["host-dev"], ("/dev".into(), "Directory".into()));
            assert_eq!(m["host-dev"], ("/host/dev".into(), true), "/dev read-only");
            assert_eq!(m["host-sys"], ("/host/sys".into(), true), "/sys read-only");
            assert_eq!(flag(container, "--dev-root"), Some("/host/dev"));
            assert_eq!(flag(container, "--sysfs-root"), Some("/host/sys"));
            assert_eq!(hp.len(), 3, "{name}");
        }
        let ds = objects
            .iter()
            .find_map(|o| match o {
                Object::DaemonSet(ds) if o.name() == DEVICE_PLUGIN_NAME => Some(ds),
                _ => None,
            })
            .unwrap();
        let strategy = ds.spec.update_strategy.as_ref().unwrap();
        assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
        assert_eq!(
            strategy.rolling_update.as_ref().unwrap().max_unavailable,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
        );
        let probe = container.readiness_probe.as_ref().unwrap();
        assert_eq!(
            probe.http_get.as_ref().unwrap().path.as_deref(),
            Some("/readyz")
        );
    }
}

#[test]
fn device_plugin_may_patch_node_status_and_nothing_else() {
    use k8s_openapi::api::rbac::v1::PolicyRule;
    for (name, opts, objects) in render_all() {
        if !opts.device_plugin_pool() {
            // --dra without --dra-node-selector: the DRA driver replaces the device plugin.
            assert!(
                objects.iter().all(|o| {
                    o.metadata().labels.as_ref().unwrap()[LABEL_COMPONENT]
                        != COMPONENT_DEVICE_PLUGIN
                }),
                "{name}"
            );
            continue;
        }
        // Apply order: identity and permissions before the pods that use them.
        let kinds: Vec<&str> = objects.iter().take(4).map(Object::kind).collect();
        assert_eq!(
            kinds,
            [
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "DaemonSet"
            ],
            "{name}"
        );
        let Object::ServiceAccount(account) = &objects[0] else {
            unreachable!()
        };
        assert_eq!(
            account.metadata.name.as_deref(),
            Some(DEVICE_PLUGIN_SERVICE_ACCOUNT)
        );
        assert_eq!(
            account.metadata.namespace.as_deref(),
            Some(opts.namespace.as_str())
        );
        let Object::ClusterRole(role) = &objects[1] else {
            unreachable!()
        };
        assert_eq!(
            role.rules.as_deref(),
            Some(
                &[PolicyRule {
                    api_groups: Some(vec![String::new()]),
                    resources: Some(vec!["nodes/status".to_owned()]),
                    verbs: vec!["patch".to_owned()],
                    ..PolicyRule::default()
                }][..]
            ),
            "{name}: patch on nodes/status only"
        );
        assert_eq!(role.aggregation_rule, None);
        let Object::ClusterRoleBinding(binding) = &objects[2] else {
            unreachable!()
        };
        assert_eq!(binding.role_ref.kind, "ClusterRole");
        assert_eq!(
            binding.role_ref.api_group.as_deref(),
            Some("rbac.authorization.k8s.io")
        );
        assert_eq!(Some(&binding.role_ref.name), role.metadata.name.as_ref());
        let subjects = binding.subjects.as_ref().unwrap();
        assert_eq!(subjects.len(), 1, "{name}");
        assert_eq!(subjects[0].kind, "ServiceAccount");
        assert_eq!(Some(&subjects[0].name), account.metadata.name.as_ref());
        assert_eq!(
            subjects[0].namespace.as_deref(),
            Some(opts.namespace.as_str()),
            "{name}"
        );
        // Nothing else is bound (but the DRA driver's own role), and no other workload runs as
        // this account.
        let bindings = objects
            .iter()
            .filter(|o| o.kind() == "ClusterRoleBinding" || o.kind() == "RoleBinding")
            .count();
        assert_eq!(bindings, 1 + usize::from(opts.dra), "{name}");

        let spec = pod_spec(daemon_set(&objects, DEVICE_PLUGIN_NAME).unwrap());
        assert_eq!(spec.automount_service_account_token, Some(true));
        assert_eq!(
            spec.service_account_name.as_deref(),
            Some(DEVICE_PLUGIN_SERVICE_ACCOUNT)
        );
        let env = spec.containers[0].env.as_ref().unwrap();
        let node_name = env.iter().find(|e| e.name == ENV_NODE_NAME).unwrap();
        let field = node_name
            .value_from
            .as_ref()
            .and_then(|v| v.field_ref.as_ref())
            .unwrap();
        assert_eq!(field.field_path, "spec.nodeName");
        assert_eq!(node_name.value, None);
    }
}

#[test]
fn node_daemons_tolerate_sgx_taints_and_select_sgx_nodes() {
    for (name, opts, objects) in render_all() {
        for ds_name in [
            DEVICE_PLUGIN_NAME,
            QUOTE_HELPER_NAME,
            DRA_DRIVER_NAME,
            DRA_QUOTE_HELPER_NAME,
        ] {
            let Some(template) = daemon_set(&objects, ds_name) else {
                continue;
            };
            let spec = pod_spec(template);
            let tolerations = spec.tolerations.as_ref().unwrap();
            assert!(tolerations.iter().any(|t| t.key.as_deref()
                == Some("kubernetes.azure.com/sgx_epc_mem_in_MiB")
                && t.value.as_deref() == Some("true")
                && t.effect.as_deref() == Some("NoSchedule")));
            assert!(
                tolerations
                    .iter()
                    .any(|t| t.key.as_deref() == Some("sgx.intel.com/epc")
                        && t.operator.as_deref() == Some("Exists"))
            );
            let selector = spec.node_selector.as_ref().unwrap();
            assert_eq!(selector["kubernetes.io/os"], "linux");
            if !opts.dra_node_selector.is_empty() {
                // Two pools: see dra_and_device_plugin_pools_are_disjoint.
                continue;
            }
            if !opts.node_selector.is_empty() {
                for (k, v) in &opts.node_selector {
                    assert_eq!(selector.get(k), Some(v), "{name}");
                }
                assert!(
                    spec.affinity.is_none(),
                    "{name}: --node-selector replaces the affinity"
                );
            } else if opts.simulate {
                assert!(
                    spec.affinity.is_none(),
                    "{name}: simulation runs on every node"
                );
                assert_eq!(selector.len(), 1, "{name}");
            } else {
                let terms = &spec
                    .affinity
                    .as_ref()
                    .unwrap()
                    .node_affinity
                    .as_ref()
                    .unwrap()
                    .required_during_scheduling_ignored_during_execution
                    .as_ref()
                    .unwrap()
                    .node_selector_terms;
                let keys: BTreeSet<(&str, Vec<String>)> = terms
                    .iter()
                    .flat_map(|t| t.match_expressions.iter().flatten())
                    .map(|e| (e.key.as_str(), e.values.clone().unwrap()))
                    .collect();
                assert_eq!(terms.len(), 2, "{name}: NFD label OR tee=sgx");
                assert!(keys.contains(&(NFD_SGX_LABEL, vec!["true".to_owned()])));
                assert!(keys.contains(&("tee", vec!["sgx".to_owned()])));
            }
        }
    }
}

#[test]
fn quote_helper_only_when_enabled_and_pinned_to_its_backend() {
    for (name, opts, objects) in render_all() {
        let config_map = objects.iter().find(|o| {
            o.kind() == "ConfigMap" && o.metadata().name.as_deref() == Some("sgx-quote-helper-qcnl")
        });
        if !opts.enable_quote_helper {
            assert!(daemon_set(&objects, QUOTE_HELPER_NAME).is_none(), "{name}");
            assert!(
                daemon_set(&objects, DRA_QUOTE_HELPER_NAME).is_none(),
                "{name}"
            );
            assert!(
                objects.iter().all(|o| {
                    o.metadata().labels.as_ref().unwrap()[LABEL_COMPONENT] != COMPONENT_QUOTE_HELPER
                }),
                "{name}"
            );
            continue;
        }
        // One quote helper per node pool: device-plugin nodes, DRA nodes.
        let pools = [
            (QUOTE_HELPER_NAME, false, opts.device_plugin_pool()),
            (DRA_QUOTE_HELPER_NAME, true, opts.dra),
        ];
        for (ds_name, dra, expected) in pools {
            let template = daemon_set(&objects, ds_name);
            assert_eq!(template.is_some(), expected, "{name}: {ds_name}");
            let Some(template) = template else {
                continue;
            };
            quote_helper_checks(name, &opts, template, dra, config_map);
        }
    }
}

fn quote_helper_checks(
    name: &str,
    opts: &RenderOptions,
    template: &PodTemplateSpec,
    dra: bool,
    config_map: Option<&Object>,
) {
    {
        let spec = pod_spec(template);
        let container = &spec.containers[0];
        assert_eq!(args(container)[0], "quote-helper");
        assert_eq!(
            flag(container, "--socket"),
            Some("/var/run/aesmd/aesm.socket")
        );
        assert_eq!(
            flag(container, "--state-dir"),
            Some("/var/lib/confcom/quote-helper")
        );
        assert_eq!(flag(container, "--metrics-addr"), Some("0.0.0.0:9102"));
        let (backend, image) = if opts.simulate {
            ("sim", &opts.image)
        } else {
            ("dcap", &opts.dcap_image)
        };
        assert_eq!(flag(container, "--backend"), Some(backend), "{name}");
        assert_eq!(container.image.as_ref(), Some(image), "{name}");

        let hp = host_paths(spec);
        assert_eq!(
            hp["aesmd"],
            ("/var/run/aesmd".into(), "DirectoryOrCreate".into())
        );
        assert_eq!(
            hp["state"],
            (
                "/var/lib/confcom/quote-helper".into(),
                "DirectoryOrCreate".into()
            )
        );
        assert_eq!(hp.len(), 2, "{name}: no other host paths");
        let m = mounts(container);
        assert_eq!(m["aesmd"], ("/var/run/aesmd".into(), false));

        let resources = container.resources.as_ref().unwrap();
        if dra {
            // The same devices from a claim of the provision class, no extended resources.
            let claims = resources.claims.as_ref().unwrap();
            assert_eq!(claims.len(), 1, "{name}");
            let pod_claims = spec.resource_claims.as_ref().unwrap();
            assert_eq!(pod_claims.len(), 1, "{name}");
            assert_eq!(pod_claims[0].name, claims[0].name);
            assert_eq!(
                pod_claims[0].resource_claim_template_name.as_deref(),
                Some(DRA_QUOTE_HELPER_CLAIM_TEMPLATE)
            );
            for map in [&resources.requests, &resources.limits] {
                assert!(
                    map.as_ref()
                        .unwrap()
                        .keys()
                        .all(|k| k == "cpu" || k == "memory"),
                    "{name}"
                );
            }
        } else {
            assert_eq!(resources.claims, None, "{name}");
            assert_eq!(spec.resource_claims, None, "{name}");
            for map in [&resources.requests, &resources.limits] {
                let map = map.as_ref().unwrap();
                assert!(map.contains_key("kubernetes.azure.com/sgx_epc_mem_in_MiB"));
                assert_eq!(map["sgx.intel.com/provision"].0, "1");
            }
            assert_eq!(
                resources.requests.as_ref().unwrap()["kubernetes.azure.com/sgx_epc_mem_in_MiB"],
                resources.limits.as_ref().unwrap()["kubernetes.azure.com/sgx_epc_mem_in_MiB"],
                "extended resources need requests == limits"
            );
        }
        let readiness = container.readiness_probe.as_ref().unwrap();
        assert_eq!(
            readiness.http_get.as_ref().unwrap().path.as_deref(),
            Some("/readyz")
        );

        // The quote provider's PCCS: --pccs-url, else the in-cluster PCCS on hardware.
        let collateral_service = opts.pccs_url.clone().or_else(|| {
            (opts.enable_pccs && !opts.simulate).then(|| {
                let scheme = if opts.pccs_tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!(
                    "{scheme}://sgx-pccs.{}.svc:8081/sgx/certification/v4/",
                    opts.namespace
                )
            })
        });
        // With --azure-thim, PCK certificates come from THIM and the rest from that service (or
        // Intel's PCS).
        let (pccs_url, collateral_service) = if opts.azure_thim {
            (
                Some("https://global.acccache.azure.net/sgx/certification/v4/".to_owned()),
                Some(collateral_service.unwrap_or_else(|| {
                    "https://api.trustedservices.intel.com/sgx/certification/v4/".to_owned()
                })),
            )
        } else {
            (collateral_service, None)
        };
        match &pccs_url {
            Some(url) => {
                let Some(Object::ConfigMap(cm)) = config_map else {
                    panic!("{name}: --pccs-url needs the qcnl ConfigMap");
                };
                let conf = &cm.data.as_ref().unwrap()["sgx_default_qcnl.conf"];
                let json: serde_json::Value = serde_json::from_str(conf).unwrap();
                assert_eq!(json["pccs_url"], url.as_str());
                assert_eq!(
                    json.get("collateral_service").and_then(|v| v.as_str()),
                    collateral_service.as_deref(),
                    "{name}"
                );
                assert_eq!(m["qcnl"], ("/etc/sgx_default_qcnl.conf".into(), true));
            }
            None => {
                assert!(config_map.is_none(), "{name}");
                assert!(!m.contains_key("qcnl"), "{name}");
            }
        }
    }
}

#[test]
fn webhook_objects_only_when_enabled_and_they_embed_the_certificates() {
    for (name, opts, objects) in render_all() {
        let webhook_objects: Vec<&Object> = objects
            .iter()
            .filter(|o| o.metadata().labels.as_ref().unwrap()[LABEL_COMPONENT] == COMPONENT_WEBHOOK)
            .collect();
        let Some(certs) = &opts.webhook else {
            assert!(webhook_objects.is_empty(), "{name}");
            continue;
        };
        let kinds: BTreeSet<&str> = webhook_objects.iter().map(|o| o.kind()).collect();
        assert_eq!(
            kinds,
            BTreeSet::from([
                "Secret",
                "Service",
                "Deployment",
                "MutatingWebhookConfiguration"
            ])
        );
        for object in &objects {
            match object {
                Object::Secret(secret) => {
                    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
                    let data = secret.data.as_ref().unwrap();
                    assert_eq!(data["tls.crt"].0, certs.cert_pem.as_bytes());
                    assert_eq!(data["tls.key"].0, certs.key_pem.as_bytes());
                }
                Object::MutatingWebhookConfiguration(config) => {
                    let hooks = config.webhooks.as_ref().unwrap();
                    assert_eq!(hooks.len(), 3);
                    for hook in hooks {
                        assert_eq!(hook.failure_policy.as_deref(), Some("Ignore"));
                        assert_eq!(hook.side_effects, "None");
                        assert_eq!(
                            hook.client_config.ca_bundle.as_ref().unwrap().0,
                            certs.ca_pem.as_bytes()
                        );
                        let svc = hook.client_config.service.as_ref().unwrap();
                        assert_eq!(svc.namespace, opts.namespace);
                        assert_eq!(svc.name, WEBHOOK_NAME);
                        // The add-on's own pods are never sent to the webhook.
                        let exprs = hook
                            .object_selector
                            .as_ref()
                            .unwrap()
                            .match_expressions
                            .as_ref()
                            .unwrap();
                        assert!(exprs.iter().any(|e| e.key == LABEL_PART_OF
                            && e.operator == "NotIn"
                            && e.values.as_deref() == Some(&["confcom".to_owned()][..])));
                        let rule = &hook.rules.as_ref().unwrap()[0];
                        assert_eq!(rule.operations.as_deref(), Some(&["CREATE".to_owned()][..]));
                        assert_eq!(rule.resources.as_deref(), Some(&["pods".to_owned()][..]));
                    }
                    let pod = &hooks[0];
                    assert_eq!(
                        pod.object_selector
                            .as_ref()
                            .unwrap()
                            .match_labels
                            .as_ref()
                            .unwrap()[LABEL_QUOTE_HELPER_OPT_IN],
                        "true"
                    );
                    assert_eq!(
                        pod.client_config.service.as_ref().unwrap().path.as_deref(),
                        Some(WEBHOOK_PATH_POD)
                    );
                    let ns = &hooks[1];
                    assert_eq!(
                        ns.namespace_selector
                            .as_ref()
                            .unwrap()
                            .match_labels
                            .as_ref()
                            .unwrap()[LABEL_QUOTE_HELPER_OPT_IN],
                        "true"
                    );
                    assert_eq!(
                        ns.client_config.service.as_ref().unwrap().path.as_deref(),
                        Some(WEBHOOK_PATH_NAMESPACE)
                    );
                    // Intel-style pods: no label needed, only pods requesting sgx.intel.com/epc.
                    let intel = &hooks[2];
                    assert_eq!(
                        intel
                            .client_config
                            .service
                            .as_ref()
                            .unwrap()
                            .path
                            .as_deref(),
                        Some(WEBHOOK_PATH_INTEL_EPC)
                    );
                    assert!(intel.namespace_selector.is_none());
                    let conditions = intel.match_conditions.as_ref().unwrap();
                    assert_eq!(conditions.len(), 1);
                    assert_cel_selects_intel_epc_pods(&conditions[0].expression);
                }
                Object::Deployment(deployment) => {
                    let spec = deployment.spec.template.spec.as_ref().unwrap();
                    assert!(
                        host_paths(spec).is_empty(),
                        "the webhook needs no host path"
                    );
                    let container = &spec.containers[0];
                    assert_eq!(args(container)[0], "webhook");
                    assert!(flag(container, "--tls-cert").is_some());
                    assert!(flag(container, "--tls-key").is_some());
                    assert_eq!(flag(container, "--listen"), Some("0.0.0.0:8443"));
                    assert_eq!(flag(container, "--metrics-addr"), Some("0.0.0.0:9103"));
                }
                _ => {}
            }
        }
    }
}

/// Evaluates the webhook's match condition as the API server does (CEL over the admitted pod).
fn assert_cel_selects_intel_epc_pods(expression: &str) {
    let program = cel::Program::compile(expression).unwrap();
    let matches = |pod: serde_json::Value| {
        let mut context = cel::Context::default();
        context.add_variable("object", pod).unwrap();
        match program.execute(&context).unwrap() {
            cel::Value::Bool(b) => b,
            other => panic!("not a boolean: {other:?}"),
        }
    };
    let pod = |containers: serde_json::Value, init: Option<serde_json::Value>| {
        let mut pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p"}, "spec": {"containers": containers}});
        if let Some(init) = init {
            pod["spec"]["initContainers"] = init;
        }
        pod
    };
    let epc = |list: &str| serde_json::json!({"resources": {list: {"sgx.intel.com/epc": "5Mi"}}});
    let plain = serde_json::json!({"name": "plain", "image": "x"});
    assert!(matches(pod(serde_json::json!([epc("limits")]), None)));
    assert!(matches(pod(
        serde_json::json!([plain.clone(), epc("requests")]),
        None
    )));
    assert!(matches(pod(
        serde_json::json!([plain.clone()]),
        Some(serde_json::json!([epc("limits")]))
    )));
    assert!(!matches(pod(serde_json::json!([plain.clone()]), None)));
    assert!(!matches(pod(
        serde_json::json!([plain.clone()]),
        Some(serde_json::json!([plain.clone()]))
    )));
    assert!(!matches(pod(
        serde_json::json!([{"resources": {"limits": {"kubernetes.azure.com/sgx_epc_mem_in_MiB": "5"}}},
                           {"resources": {}}, {"resources": {"limits": {"cpu": "1"}}}]),
        None
    )));
}

fn find<'a, T>(objects: &'a [Object], pick: impl Fn(&'a Object) -> Option<&'a T>) -> &'a T {
    objects
        .iter()
        .find_map(pick)
        .expect("the object is rendered")
}

#[test]
fn the_pccs_serves_the_cluster_and_the_quote_helpers_use_it() {
    // Hardware: a cache of Intel's PCS, and the quote provider pointed at it.
    let hw = render(&RenderOptions {
        enable_quote_helper: true,
        enable_pccs: true,
        ..RenderOptions::default()
    })
    .unwrap();
    let deployment = find(&hw, |o| match o {
        Object::Deployment(d) if d.metadata.name.as_deref() == Some("sgx-pccs") => Some(d),
        _ => None,
    });
    let pod = deployment.spec.template.spec.as_ref().unwrap();
    let container = &pod.containers[0];
    assert_eq!(args(container)[0], "pccs");
    assert_eq!(
        flag(container, "--upstream"),
        Some("https://api.trustedservices.intel.com/sgx/certification/v4/")
    );
    assert_eq!(flag(container, "--listen"), Some("0.0.0.0:8081"));
    assert!(flag(container, "--cache-dir").is_some());
    assert!(host_paths(pod).is_empty(), "the cache is an emptyDir");
    let service = find(&hw, |o| match o {
        Object::Service(s) if s.metadata.name.as_deref() == Some("sgx-pccs") => Some(s),
        _ => None,
    });
    assert_eq!(
        service.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port,
        8081
    );
    let qcnl = find(&hw, |o| match o {
        Object::ConfigMap(c) => Some(c),
        _ => None,
    });
    let conf: serde_json::Value =
        serde_json::from_str(&qcnl.data.as_ref().unwrap()["sgx_default_qcnl.conf"]).unwrap();
    assert_eq!(
        conf["pccs_url"],
        "http://sgx-pccs.kube-system.svc:8081/sgx/certification/v4/"
    );
    // --pccs-url still names the quote helpers' service; the PCCS stays for relying parties.
    let own = render(&RenderOptions {
        enable_quote_helper: true,
        enable_pccs: true,
        pccs_url: Some("https://pccs.example:8081/sgx/certification/v4/".into()),
        ..RenderOptions::default()
    })
    .unwrap();
    let qcnl = find(&own, |o| match o {
        Object::ConfigMap(c) => Some(c),
        _ => None,
    });
    assert!(qcnl.data.as_ref().unwrap()["sgx_default_qcnl.conf"].contains("pccs.example"));

    // Simulation: one CA for every node's quote helper and for the PCCS.
    let sim = render(&RenderOptions {
        simulate: true,
        enable_quote_helper: true,
        enable_pccs: true,
        sim_ca: Some(sim_ca()),
        ..RenderOptions::default()
    })
    .unwrap();
    let secret = find(&sim, |o| match o {
        Object::Secret(s) if s.metadata.name.as_deref() == Some("sgx-sim-ca") => Some(s),
        _ => None,
    });
    assert_eq!(secret.data.as_ref().unwrap().len(), 6);
    assert!(!sim.iter().any(|o| matches!(o, Object::ConfigMap(_))));
    for template in [
        daemon_set(&sim, "sgx-quote-helper").unwrap(),
        &find(&sim, |o| match o {
            Object::Deployment(d) => Some(d),
            _ => None,
        })
        .spec
        .template,
    ] {
        let pod = pod_spec(template);
        let container = &pod.containers[0];
        assert_eq!(flag(container, "--sim-ca-dir"), Some("/etc/confcom/sim-ca"));
        assert_eq!(
            mounts(container)["sim-ca"],
            ("/etc/confcom/sim-ca".to_owned(), true)
        );
        let volume = pod
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "sim-ca")
            .unwrap();
        assert_eq!(
            volume.secret.as_ref().unwrap().secret_name.as_deref(),
            Some("sgx-sim-ca")
        );
    }
}

#[test]
fn the_pccs_serves_https_with_given_certificates_and_the_quote_helpers_trust_its_ca() {
    let certs = certs_for("pccs");
    let objects = render(&RenderOptions {
        enable_quote_helper: true,
        enable_pccs: true,
        pccs_tls: Some(certs.clone()),
        ..RenderOptions::default()
    })
    .unwrap();
    let secret = find(&objects, |o| match o {
        Object::Secret(s) if s.metadata.name.as_deref() == Some("sgx-pccs-tls") => Some(s),
        _ => None,
    });
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = secret.data.as_ref().unwrap();
    assert_eq!(data["tls.crt"].0, certs.cert_pem.as_bytes());
    assert_eq!(data["tls.key"].0, certs.key_pem.as_bytes());
    let ca = find(&objects, |o| match o {
        Object::ConfigMap(c) if c.metadata.name.as_deref() == Some("sgx-pccs-ca") => Some(c),
        _ => None,
    });
    assert_eq!(ca.data.as_ref().unwrap()["ca.crt"], certs.ca_pem);
    assert!(
        !ca.data.as_ref().unwrap()["ca.crt"].contains("PRIVATE KEY"),
        "the clients' ConfigMap carries no key"
    );

    let deployment = find(&objects, |o| match o {
        Object::Deployment(d) if d.metadata.name.as_deref() == Some("sgx-pccs") => Some(d),
        _ => None,
    });
    let pod = pod_spec(&deployment.spec.template);
    let container = &pod.containers[0];
    assert_eq!(
        flag(container, "--tls-cert"),
        Some("/etc/confcom/pccs-tls/tls.crt")
    );
    assert_eq!(
        flag(container, "--tls-key"),
        Some("/etc/confcom/pccs-tls/tls.key")
    );
    assert_eq!(
        mounts(container)["tls"],
        ("/etc/confcom/pccs-tls".to_owned(), true)
    );
    for probe in [&container.liveness_probe, &container.readiness_probe] {
        let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.scheme.as_deref(), Some("HTTPS"));
    }
    let service = find(&objects, |o| match o {
        Object::Service(s) if s.metadata.name.as_deref() == Some("sgx-pccs") => Some(s),
        _ => None,
    });
    let port = &service.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
    assert_eq!(port.name.as_deref(), Some("https"));
    assert_eq!(
        container.ports.as_ref().unwrap()[0].name.as_deref(),
        Some("https")
    );

    let qcnl = find(&objects, |o| match o {
        Object::ConfigMap(c) if c.metadata.name.as_deref() == Some("sgx-quote-helper-qcnl") => {
            Some(c)
        }
        _ => None,
    });
    let conf: serde_json::Value =
        serde_json::from_str(&qcnl.data.as_ref().unwrap()["sgx_default_qcnl.conf"]).unwrap();
    assert_eq!(
        conf["pccs_url"],
        "https://sgx-pccs.kube-system.svc:8081/sgx/certification/v4/"
    );
    assert_eq!(conf["use_secure_cert"], true);
    let helper = pod_spec(daemon_set(&objects, "sgx-quote-helper").unwrap());
    let container = &helper.containers[0];
    assert_eq!(
        mounts(container)["pccs-ca"],
        ("/etc/confcom/pccs-ca".to_owned(), true)
    );
    let env = container.env.as_ref().unwrap();
    assert!(
        env.iter().any(|e| e.name == "SSL_CERT_FILE"
            && e.value.as_deref() == Some("/etc/confcom/pccs-ca/ca.crt"))
    );

    // A PCCS of the operator's own (--pccs-url): the quote helpers trust the system's roots only.
    let own = render(&RenderOptions {
        enable_quote_helper: true,
        enable_pccs: true,
        pccs_tls: Some(certs),
        pccs_url: Some("https://pccs.example:8081/sgx/certification/v4/".into()),
        ..RenderOptions::default()
    })
    .unwrap();
    let helper = pod_spec(daemon_set(&own, "sgx-quote-helper").unwrap());
    assert!(!mounts(&helper.containers[0]).contains_key("pccs-ca"));
}

#[test]
fn bad_options_are_typed_errors() {
    let pccs = Some("https://pccs.example/".to_owned());
    type Check = fn(&RenderError) -> bool;
    let mut partial_ca = sim_ca();
    partial_ca.remove("tcb-signing.key");
    let cases: Vec<(RenderOptions, Check)> = vec![
        (
            RenderOptions {
                pccs_url: pccs.clone(),
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::PccsUrlWithoutQuoteHelper),
        ),
        (
            RenderOptions {
                simulate: true,
                enable_pccs: true,
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::PccsWithoutSimCa),
        ),
        (
            RenderOptions {
                enable_pccs: true,
                pccs_upstream: "http://pcs.example/".to_owned(),
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::InvalidPccsUpstream(_)),
        ),
        (
            RenderOptions {
                pccs_tls: Some(certs_for("pccs")),
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::PccsCertsWithoutPccs),
        ),
        (
            RenderOptions {
                azure_thim: true,
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::AzureThimUnused),
        ),
        (
            RenderOptions {
                simulate: true,
                enable_quote_helper: true,
                azure_thim: true,
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::AzureThimUnused),
        ),
        (
            // The webhook's certificate does not name the PCCS Service.
            RenderOptions {
                enable_pccs: true,
                pccs_tls: Some(certs_for("kube-system")),
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::PccsCertificateNamespaceMismatch { .. }),
        ),
        (
            RenderOptions {
                enable_quote_helper: true,
                sim_ca: Some(sim_ca()),
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::SimCaUnused),
        ),
        (
            RenderOptions {
                simulate: true,
                enable_quote_helper: true,
                sim_ca: Some(partial_ca),
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::IncompleteSimCa("tcb-signing.key")),
        ),
        (
            RenderOptions {
                pccs_url: pccs,
                enable_quote_helper: true,
                simulate: true,
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::PccsUrlInSimulation),
        ),
        (
            RenderOptions {
                pccs_url: Some("http://pccs.example/".to_owned()),
                enable_quote_helper: true,
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::InvalidPccsUrl(_)),
        ),
        (
            RenderOptions {
                namespace: "Kube-System".to_owned(),
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::InvalidNamespace(_)),
        ),
        (
            RenderOptions {
                image: "has space".to_owned(),
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::InvalidImage(_)),
        ),
        (
            RenderOptions {
                node_selector: BTreeMap::from([("tee".to_owned(), "sgx node".to_owned())]),
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::InvalidNodeSelector { .. }),
        ),
        (
            RenderOptions {
                epc_mib: Some(0),
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::ZeroEpc),
        ),
        (
            // Certificates issued for kube-system cannot serve another namespace.
            RenderOptions {
                namespace: "confcom-sgx".to_owned(),
                webhook: Some(certs_for("kube-system")),
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::CertificateNamespaceMismatch { .. }),
        ),
    ];
    for (opts, check) in cases {
        let err = render(&opts).unwrap_err();
        assert!(check(&err), "unexpected error {err:?}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn checked_in_default_manifests_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let expected = [
        ("deploy/manifests/confcom.yaml", RenderOptions::default()),
        (
            "deploy/manifests/confcom-quote-helper.yaml",
            RenderOptions {
                enable_quote_helper: true,
                ..RenderOptions::default()
            },
        ),
        (
            "deploy/manifests/confcom-simulate.yaml",
            RenderOptions {
                enable_quote_helper: true,
                simulate: true,
                ..RenderOptions::default()
            },
        ),
        (
            "deploy/manifests/confcom-dra.yaml",
            RenderOptions {
                dra: true,
                enable_quote_helper: true,
                ..RenderOptions::default()
            },
        ),
        (
            "deploy/manifests/confcom-dra-simulate.yaml",
            RenderOptions {
                dra: true,
                enable_quote_helper: true,
                simulate: true,
                ..RenderOptions::default()
            },
        ),
    ];
    let update = std::env::var_os("CONFCOM_UPDATE_MANIFESTS").is_some();
    for (path, opts) in expected {
        let rendered = to_yaml(&render(&opts).unwrap()).unwrap();
        if update {
            std::fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
            std::fs::write(root.join(path), &rendered).unwrap();
        }
        let on_disk =
            std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(
            on_disk == rendered,
            "{path} is stale: regenerate it with `deploy/render-manifests.sh`"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The SGX DRA driver (--dra)

fn dra_renders() -> Vec<(&'static str, RenderOptions, Vec<Object>)> {
    render_all()
        .into_iter()
        .filter(|(_, opts, _)| opts.dra)
        .collect()
}

#[test]
fn dra_objects_only_with_dra() {
    for (name, opts, objects) in render_all() {
        let dra: Vec<&Object> = objects
            .iter()
            .filter(|o| {
                o.metadata().labels.as_ref().unwrap()[LABEL_COMPONENT] == COMPONENT_DRA_DRIVER
            })
            .collect();
        if !opts.dra {
            assert!(dra.is_empty(), "{name}");
            assert!(
                !objects.iter().any(|o| o.kind() == "ResourceClaimTemplate"),
                "{name}"
            );
            continue;
        }
        let kinds: Vec<(&str, &str)> = dra.iter().map(|o| (o.kind(), o.name())).collect();
        assert_eq!(
            kinds,
            [
                ("ServiceAccount", DRA_DRIVER_SERVICE_ACCOUNT),
                ("ClusterRole", DRA_DRIVER_CLUSTER_ROLE),
                ("ClusterRoleBinding", DRA_DRIVER_CLUSTER_ROLE),
                ("ValidatingAdmissionPolicy", DRA_DRIVER_SLICE_POLICY),
                ("ValidatingAdmissionPolicyBinding", DRA_DRIVER_SLICE_POLICY),
                ("DeviceClass", DRA_CLASS_EPC),
                ("DeviceClass", DRA_CLASS_QUOTE_HELPER),
                ("DeviceClass", DRA_CLASS_PROVISION),
                ("DaemonSet", DRA_DRIVER_NAME),
            ],
            "{name}: identity, permissions and classes before the pods"
        );
    }
}

#[test]
fn dra_driver_mounts_only_what_it_needs() {
    for (name, opts, objects) in dra_renders() {
        let spec = pod_spec(daemon_set(&objects, DRA_DRIVER_NAME).unwrap());
        let container = &spec.containers[0];
        assert_eq!(args(container)[0], "dra-driver", "{name}");
        assert_eq!(flag(container, "--node-name"), Some("$(NODE_NAME)"));
        assert_eq!(flag(container, "--metrics-addr"), Some("0.0.0.0:9104"));
        let env = container.env.as_ref().unwrap();
        let field = |var: &str| {
            env.iter()
                .find(|e| e.name == var)
                .and_then(|e| e.value_from.as_ref())
                .and_then(|v| v.field_ref.as_ref())
                .map(|f| f.field_path.clone())
        };
        assert_eq!(field("NODE_NAME").as_deref(), Some("spec.nodeName"));
        assert_eq!(field("POD_UID").as_deref(), Some("metadata.uid"));
        assert_eq!(args(container).contains(&"--simulate"), opts.simulate);
        let epc = opts.epc_mib.or(opts.simulate.then_some(256));
        assert_eq!(
            flag(container, "--epc-mib").map(str::to_owned),
            epc.map(|n| n.to_string()),
            "{name}"
        );

        let plugin_dir = "/var/lib/kubelet/plugins/sgx.confcom-rs.github.io";
        let mut expected_hp = BTreeMap::from([
            (
                "plugins-registry".to_owned(),
                (
                    "/var/lib/kubelet/plugins_registry".to_owned(),
                    "Directory".to_owned(),
                ),
            ),
            (
                "plugin-dir".to_owned(),
                (plugin_dir.to_owned(), "DirectoryOrCreate".to_owned()),
            ),
            (
                "cdi".to_owned(),
                ("/var/run/cdi".to_owned(), "DirectoryOrCreate".to_owned()),
            ),
        ]);
        // Kubelet and the runtime read these at the host's paths: mounted at the same paths.
        let mut expected_mounts = BTreeMap::from([
            (
                "plugins-registry".to_owned(),
                ("/var/lib/kubelet/plugins_registry".to_owned(), false),
            ),
            ("plugin-dir".to_owned(), (plugin_dir.to_owned(), false)),
            ("cdi".to_owned(), ("/var/run/cdi".to_owned(), false)),
        ]);
        if opts.simulate || opts.enable_quote_helper {
            // The quote helper's directory, read-only: the node's own quote through its socket in
            // simulation, the platform evidence it publishes there on hardware.
            expected_hp.insert(
                "aesmd".to_owned(),
                ("/var/run/aesmd".to_owned(), "DirectoryOrCreate".to_owned()),
            );
            expected_mounts.insert("aesmd".to_owned(), ("/var/run/aesmd".to_owned(), true));
        }
        // The in-cluster PCCS over HTTPS: the add-on's CA, as the quote helpers trust it.
        let pccs_ca = opts.enable_pccs
            && opts.pccs_tls.is_some()
            && (opts.simulate || (opts.enable_quote_helper && opts.pccs_url.is_none()));
        if pccs_ca {
            expected_mounts.insert(
                "pccs-ca".to_owned(),
                ("/etc/confcom/pccs-ca".to_owned(), true),
            );
        }
        if !opts.simulate {
            // Discovery exactly as the device plugin does it.
            let dp = render(&RenderOptions {
                dra: false,
                dra_node_selector: BTreeMap::new(),
                dra_extended_resources: true,
                ..opts.clone()
            })
            .unwrap();
            let dp_spec = pod_spec(daemon_set(&dp, DEVICE_PLUGIN_NAME).unwrap());
            let dp_hp = host_paths(dp_spec);
            let dp_m = mounts(&dp_spec.containers[0]);
            for key in ["host-dev", "host-sys"] {
                expected_hp.insert(key.to_owned(), dp_hp[key].clone());
                expected_mounts.insert(key.to_owned(), dp_m[key].clone());
                assert!(dp_m[key].1, "read-only");
            }
            for f in ["--dev-root", "--sysfs-root"] {
                assert_eq!(
                    flag(container, f),
                    flag(&dp_spec.containers[0], f),
                    "{name}"
                );
            }
        }
        assert_eq!(host_paths(spec), expected_hp, "{name}");
        assert_eq!(mounts(container), expected_mounts, "{name}");
        assert!(
            spec.volumes
                .iter()
                .flatten()
                .all(|v| v.host_path.is_some() || (pccs_ca && v.name == "pccs-ca")),
            "{name}: nothing but these host paths (and the PCCS's CA)"
        );

        // Hardened as the device plugin: root for kubelet's directories, nothing more.
        let sc = container.security_context.as_ref().unwrap();
        assert_eq!(sc.run_as_user, Some(0));
        assert_eq!(sc.privileged, Some(false));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(spec.host_network, None);
        let port = &container.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.container_port),
            (Some("metrics"), 9104)
        );
        for probe in [&container.liveness_probe, &container.readiness_probe] {
            let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
            assert_eq!(
                get.port,
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
                    "metrics".to_owned()
                )
            );
        }
        let tolerations = spec.tolerations.as_ref().unwrap();
        assert!(
            tolerations
                .iter()
                .any(|t| t.key.as_deref() == Some("sgx.intel.com/epc"))
        );
        assert_eq!(
            spec.priority_class_name.as_deref(),
            Some("system-node-critical")
        );
    }
}

#[test]
fn dra_driver_rbac_is_exactly_slices_claims_and_nodes() {
    use k8s_openapi::api::rbac::v1::PolicyRule;
    for (name, opts, objects) in dra_renders() {
        let role = find(&objects, |o| match o {
            Object::ClusterRole(r)
                if r.metadata.name.as_deref() == Some(DRA_DRIVER_CLUSTER_ROLE) =>
            {
                Some(r)
            }
            _ => None,
        });
        let rule = |group: &str, resource: &str, verbs: &[&str]| PolicyRule {
            api_groups: Some(vec![group.to_owned()]),
            resources: Some(vec![resource.to_owned()]),
            verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
            ..PolicyRule::default()
        };
        assert_eq!(
            role.rules.as_deref(),
            Some(
                &[
                    rule(
                        "resource.k8s.io",
                        "resourceslices",
                        &["list", "create", "update", "delete"]
                    ),
                    rule("resource.k8s.io", "resourceclaims", &["get"]),
                    rule("", "nodes", &["get"]),
                ][..]
            ),
            "{name}"
        );
        assert_eq!(role.aggregation_rule, None);
        let binding = find(&objects, |o| match o {
            Object::ClusterRoleBinding(b)
                if b.metadata.name.as_deref() == Some(DRA_DRIVER_CLUSTER_ROLE) =>
            {
                Some(b)
            }
            _ => None,
        });
        assert_eq!(binding.role_ref.name, DRA_DRIVER_CLUSTER_ROLE);
        let subjects = binding.subjects.as_ref().unwrap();
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].kind, "ServiceAccount");
        assert_eq!(subjects[0].name, DRA_DRIVER_SERVICE_ACCOUNT);
        assert_eq!(
            subjects[0].namespace.as_deref(),
            Some(opts.namespace.as_str())
        );
    }
}

/// Evaluates one CEL expression over `variables`, as the API server or the scheduler would.
fn eval_cel(expression: &str, variables: &[(&str, serde_json::Value)]) -> cel::Value {
    let program = cel::Program::compile(expression)
        .unwrap_or_else(|e| panic!("{expression} does not compile: {e}"));
    let mut context = cel::Context::default();
    for (name, value) in variables {
        context.add_variable(*name, value.clone()).unwrap();
    }
    program
        .execute(&context)
        .unwrap_or_else(|e| panic!("{expression}: {e}"))
}

fn eval_bool(expression: &str, variables: &[(&str, serde_json::Value)]) -> bool {
    match eval_cel(expression, variables) {
        cel::Value::Bool(b) => b,
        other => panic!("{expression}: not a boolean: {other:?}"),
    }
}

/// Runs the slice policy on one admission request: `None` if it does not apply, else the
/// messages of the failed validations (empty: admitted).
fn run_slice_policy(
    policy: &k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy,
    request: serde_json::Value,
    object: serde_json::Value,
    old_object: serde_json::Value,
) -> Option<Vec<String>> {
    let spec = policy.spec.as_ref().unwrap();
    let mut vars = vec![
        ("request", request),
        ("object", object),
        ("oldObject", old_object),
    ];
    for condition in spec.match_conditions.iter().flatten() {
        if !eval_bool(&condition.expression, &vars) {
            return None;
        }
    }
    let mut variables = serde_json::Map::new();
    for variable in spec.variables.iter().flatten() {
        vars.retain(|(n, _)| *n != "variables");
        vars.push(("variables", serde_json::Value::Object(variables.clone())));
        let value = match eval_cel(&variable.expression, &vars) {
            cel::Value::Bool(b) => serde_json::json!(b),
            cel::Value::String(s) => serde_json::json!(s.as_str()),
            cel::Value::Map(_) => {
                // The object chosen: find which by evaluating the same choice on the name.
                let op = vars.iter().find(|(n, _)| *n == "request").unwrap().1["operation"].clone();
                let pick = if op == "DELETE" {
                    "oldObject"
                } else {
                    "object"
                };
                vars.iter().find(|(n, _)| *n == pick).unwrap().1.clone()
            }
            other => panic!("unexpected variable value {other:?}"),
        };
        variables.insert(variable.name.clone(), value);
    }
    vars.retain(|(n, _)| *n != "variables");
    vars.push(("variables", serde_json::Value::Object(variables)));
    let mut failures = Vec::new();
    for validation in spec.validations.iter().flatten() {
        if !eval_bool(&validation.expression, &vars) {
            let message = match &validation.message_expression {
                Some(e) => match eval_cel(e, &vars) {
                    cel::Value::String(s) => s.to_string(),
                    other => panic!("message is not a string: {other:?}"),
                },
                None => validation.message.clone().unwrap(),
            };
            failures.push(message);
        }
    }
    Some(failures)
}

#[test]
fn dra_slice_policy_keeps_each_driver_pod_to_its_own_node() {
    for (name, opts, objects) in dra_renders() {
        let policy = find(&objects, |o| match o {
            Object::ValidatingAdmissionPolicy(p) => Some(p),
            _ => None,
        });
        let spec = policy.spec.as_ref().unwrap();
        assert_eq!(spec.failure_policy.as_deref(), Some("Fail"));
        let rules = spec
            .match_constraints
            .as_ref()
            .unwrap()
            .resource_rules
            .as_ref()
            .unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(
            rules[0].api_groups.as_deref(),
            Some(&["resource.k8s.io".to_owned()][..])
        );
        assert_eq!(
            rules[0].resources.as_deref(),
            Some(&["resourceslices".to_owned()][..])
        );
        let ops: BTreeSet<&str> = rules[0]
            .operations
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        assert_eq!(ops, BTreeSet::from(["CREATE", "UPDATE", "DELETE"]));
        let binding = find(&objects, |o| match o {
            Object::ValidatingAdmissionPolicyBinding(b) => Some(b),
            _ => None,
        });
        assert_eq!(binding.spec.policy_name, DRA_DRIVER_SLICE_POLICY);
        assert_eq!(binding.spec.validation_actions, ["Deny"]);
        assert_eq!(binding.spec.match_resources, None, "every slice write");

        let user = format!(
            "system:serviceaccount:{}:{DRA_DRIVER_SERVICE_ACCOUNT}",
            opts.namespace
        );
        let request = |op: &str, username: &str, node: Option<&str>| {
            let mut extra = serde_json::json!({
                "authentication.kubernetes.io/pod-name": ["sgx-dra-driver-x"]
            });
            if let Some(node) = node {
                extra[USER_EXTRA_NODE_NAME] = serde_json::json!([node]);
            }
            serde_json::json!({"operation": op, "userInfo": {"username": username, "extra": extra}})
        };
        let slice = |driver: &str, node: Option<&str>| {
            let mut spec = serde_json::json!({"driver": driver, "pool": {"name": "p", "generation": 1, "resourceSliceCount": 1}});
            match node {
                Some(node) => spec["nodeName"] = serde_json::json!(node),
                None => spec["allNodes"] = serde_json::json!(true),
            }
            serde_json::json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "spec": spec})
        };
        let null = serde_json::Value::Null;
        let own = slice(DRA_DRIVER, Some("node-a"));
        let other = slice(DRA_DRIVER, Some("node-b"));
        let run = |req, obj, old| run_slice_policy(policy, req, obj, old);

        for op in ["CREATE", "UPDATE"] {
            assert_eq!(
                run(
                    request(op, &user, Some("node-a")),
                    own.clone(),
                    null.clone()
                ),
                Some(vec![]),
                "{name}: {op} of its own node's slice"
            );
            let denied = run(
                request(op, &user, Some("node-a")),
                other.clone(),
                null.clone(),
            )
            .unwrap();
            assert_eq!(denied.len(), 1, "{name}: {op} of another node's slice");
            assert!(denied[0].contains("node-a") && denied[0].contains("node-b"));
            let all_nodes = run(
                request(op, &user, Some("node-a")),
                slice(DRA_DRIVER, None),
                null.clone(),
            )
            .unwrap();
            assert_eq!(all_nodes.len(), 1, "{name}: a slice for all nodes");
            let foreign = run(
                request(op, &user, Some("node-a")),
                slice("gpu.example.com", Some("node-a")),
                null.clone(),
            )
            .unwrap();
            assert_eq!(foreign.len(), 1, "{name}: another driver's slice");
            assert!(foreign[0].contains(DRA_DRIVER));
        }
        // DELETE has no new object: the stored one decides.
        assert_eq!(
            run(
                request("DELETE", &user, Some("node-a")),
                null.clone(),
                own.clone()
            ),
            Some(vec![])
        );
        assert_eq!(
            run(
                request("DELETE", &user, Some("node-a")),
                null.clone(),
                other.clone()
            )
            .unwrap()
            .len(),
            1
        );
        // A token bound to no node is refused outright.
        let unbound = run(request("CREATE", &user, None), own.clone(), null.clone()).unwrap();
        assert!(unbound.iter().any(|m| m.contains("no node association")));
        // Other users (kubelet, the scheduler, admins) are not this policy's business.
        assert_eq!(
            run(
                request("CREATE", "system:node:node-a", Some("node-a")),
                other.clone(),
                null.clone()
            ),
            None
        );
        assert_eq!(
            run(
                request(
                    "DELETE",
                    "system:serviceaccount:elsewhere:sgx-dra-driver",
                    Some("node-a")
                ),
                null.clone(),
                other.clone()
            ),
            None,
            "{name}: the match names the add-on's namespace"
        );
    }
}

/// A device as the scheduler's CEL sees it: attributes and capacity grouped by domain, an unknown
/// domain reading as an empty map.
fn cel_device(driver: &str, attributes: serde_json::Value) -> serde_json::Value {
    let mut attrs = serde_json::json!({ DRA_DRIVER: {} });
    attrs[driver] = attributes;
    serde_json::json!({
        "driver": driver,
        "attributes": attrs,
        "capacity": { driver: { "epc": "256Mi" } },
        "allowMultipleAllocations": true,
    })
}

#[test]
fn dra_device_classes_select_sgx_devices_and_configure_the_driver() {
    use k8s_openapi::api::resource::v1::DeviceClass;
    let ours_provisioning = cel_device(
        DRA_DRIVER,
        serde_json::json!({"provisioning": true, "sgx2": true, "tcbStatus": "UpToDate"}),
    );
    let ours_no_provisioning = cel_device(
        DRA_DRIVER,
        serde_json::json!({"provisioning": false, "tcbStatus": "OutOfDate"}),
    );
    let ours_unattested = cel_device(DRA_DRIVER, serde_json::json!({"sgx2": true}));
    let foreign = cel_device(
        "gpu.example.com",
        serde_json::json!({"provisioning": true, "model": "x"}),
    );
    let selects = |class: &DeviceClass, device: &serde_json::Value| {
        class
            .spec
            .as_ref()
            .unwrap()
            .selectors
            .iter()
            .flatten()
            .all(|sel| {
                eval_bool(
                    &sel.cel.as_ref().unwrap().expression,
                    &[("device", device.clone())],
                )
            })
    };
    for (name, opts, objects) in dra_renders() {
        let classes: BTreeMap<&str, &DeviceClass> = objects
            .iter()
            .filter_map(|o| match o {
                Object::DeviceClass(c) => Some((o.name(), c)),
                _ => None,
            })
            .collect();
        let epc = classes[DRA_CLASS_EPC];
        let helper = classes[DRA_CLASS_QUOTE_HELPER];
        let provision = classes[DRA_CLASS_PROVISION];
        for class in [epc, helper] {
            assert!(selects(class, &ours_provisioning));
            assert!(selects(class, &ours_no_provisioning));
            assert!(selects(class, &ours_unattested));
            assert!(!selects(class, &foreign));
        }
        assert!(selects(provision, &ours_provisioning));
        assert!(!selects(provision, &ours_no_provisioning));
        assert!(
            !selects(provision, &ours_unattested),
            "an absent attribute selects nothing"
        );
        assert!(!selects(provision, &foreign));
        assert_eq!(
            epc.spec.as_ref().unwrap().selectors.as_ref().unwrap()[0]
                .cel
                .as_ref()
                .unwrap()
                .expression,
            "device.driver == \"sgx.confcom-rs.github.io\""
        );

        let config = |class: &DeviceClass| {
            class.spec.as_ref().unwrap().config.as_ref().map(|c| {
                assert_eq!(c.len(), 1);
                let opaque = c[0].opaque.as_ref().unwrap();
                assert_eq!(opaque.driver, DRA_DRIVER);
                opaque.parameters.0.clone()
            })
        };
        assert_eq!(config(epc), None);
        assert_eq!(
            config(helper),
            Some(serde_json::json!({
                "apiVersion": "sgx.confcom-rs.github.io/v1alpha1",
                "kind": "SgxConfig",
                "quoteHelper": true
            }))
        );
        assert_eq!(
            config(provision),
            Some(serde_json::json!({
                "apiVersion": "sgx.confcom-rs.github.io/v1alpha1",
                "kind": "SgxConfig",
                "provision": true
            }))
        );

        let extended =
            |class: &DeviceClass| class.spec.as_ref().unwrap().extended_resource_name.clone();
        let on = opts.dra_extended_resources;
        assert_eq!(
            extended(epc).as_deref(),
            on.then_some("sgx.intel.com/enclave"),
            "{name}"
        );
        assert_eq!(extended(helper), None);
        assert_eq!(
            extended(provision).as_deref(),
            on.then_some("sgx.intel.com/provision"),
            "{name}"
        );
    }
    // The claim selector the examples and docs show.
    let tcb = addon::render::dra::tcb_up_to_date_selector();
    assert!(eval_bool(&tcb, &[("device", ours_provisioning)]));
    assert!(!eval_bool(&tcb, &[("device", ours_no_provisioning)]));
    assert!(!eval_bool(&tcb, &[("device", ours_unattested)]));
}

#[test]
fn dra_quote_helper_claims_epc_and_on_hardware_provisioning() {
    for (name, opts, objects) in dra_renders() {
        let template = objects.iter().find_map(|o| match o {
            Object::ResourceClaimTemplate(t) => Some(t),
            _ => None,
        });
        if !opts.enable_quote_helper {
            assert!(template.is_none(), "{name}");
            continue;
        }
        let template = template.unwrap();
        assert_eq!(
            template.metadata.name.as_deref(),
            Some(DRA_QUOTE_HELPER_CLAIM_TEMPLATE)
        );
        assert_eq!(
            template.metadata.namespace.as_deref(),
            Some(opts.namespace.as_str())
        );
        let requests = template
            .spec
            .as_ref()
            .unwrap()
            .spec
            .as_ref()
            .unwrap()
            .devices
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap();
        assert_eq!(requests.len(), 1);
        let exactly = requests[0].exactly.as_ref().unwrap();
        // Simulated devices have no provisioning node (and the simulated backend needs none).
        let class = if opts.simulate {
            DRA_CLASS_EPC
        } else {
            DRA_CLASS_PROVISION
        };
        assert_eq!(exactly.device_class_name, class, "{name}");
        assert_eq!(
            exactly
                .capacity
                .as_ref()
                .unwrap()
                .requests
                .as_ref()
                .unwrap()["epc"]
                .0,
            "4Mi"
        );
        let position = |kind: &str, n: &str| {
            objects
                .iter()
                .position(|o| o.kind() == kind && o.name() == n)
                .unwrap()
        };
        assert!(
            position("ResourceClaimTemplate", DRA_QUOTE_HELPER_CLAIM_TEMPLATE)
                < position("DaemonSet", DRA_QUOTE_HELPER_NAME)
        );
    }
}

/// Whether a pod with this placement may run on a node with these labels.
fn schedulable(spec: &PodSpec, node: &BTreeMap<&str, &str>) -> bool {
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| node.get(k.as_str()) == Some(&v.as_str()));
    let affinity_ok = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_none_or(|required| {
            required.node_selector_terms.iter().any(|term| {
                term.match_expressions.iter().flatten().all(|e| {
                    let value = node.get(e.key.as_str());
                    let listed =
                        value.is_some_and(|v| e.values.iter().flatten().any(|x| x.as_str() == *v));
                    match e.operator.as_str() {
                        "In" => listed,
                        "NotIn" => !listed,
                        other => panic!("operator {other} not modelled"),
                    }
                })
            })
        });
    selector_ok && affinity_ok
}

#[test]
fn dra_and_device_plugin_never_share_a_node() {
    let base = [
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
    ];
    let node = |extra: &[(&'static str, &'static str)]| -> BTreeMap<&str, &str> {
        base.iter().chain(extra).copied().collect()
    };
    let nodes = [
        node(&[(NFD_SGX_LABEL, "true")]),
        node(&[("tee", "sgx")]),
        node(&[(NFD_SGX_LABEL, "true"), ("confcom.sgx/dra", "true")]),
        node(&[("tee", "sgx"), ("confcom.sgx/dra", "true")]),
        node(&[("tee", "sgx"), ("confcom.sgx/dra", "false")]),
        node(&[("tee", "sgx"), ("agentpool", "sgxdra")]),
        node(&[
            ("tee", "sgx"),
            ("agentpool", "sgxdra"),
            ("confcom.sgx/dra", "true"),
        ]),
        node(&[]),
    ];
    for (name, opts, objects) in render_all() {
        let spec_of = |ds: &str| daemon_set(&objects, ds).map(pod_spec);
        let dp = spec_of(DEVICE_PLUGIN_NAME);
        let dra = spec_of(DRA_DRIVER_NAME);
        let dp_qh = spec_of(QUOTE_HELPER_NAME);
        let dra_qh = spec_of(DRA_QUOTE_HELPER_NAME);
        for labels in &nodes {
            let on = |spec: Option<&PodSpec>| spec.is_some_and(|s| schedulable(s, labels));
            assert!(
                !(on(dp) && on(dra)),
                "{name}: both the device plugin and the DRA driver on {labels:?}"
            );
            // Each pool's quote helper follows its pool's daemon.
            if opts.enable_quote_helper {
                assert_eq!(on(dp_qh), on(dp), "{name}: {labels:?}");
                assert_eq!(on(dra_qh), on(dra), "{name}: {labels:?}");
            }
            if opts.dra && !opts.dra_node_selector.is_empty() {
                let in_dra_pool = opts
                    .dra_node_selector
                    .iter()
                    .all(|(k, v)| labels.get(k.as_str()) == Some(&v.as_str()));
                assert_eq!(on(dra), in_dra_pool, "{name}: {labels:?}");
                let sgx = if opts.node_selector.is_empty() {
                    labels.get(NFD_SGX_LABEL) == Some(&"true") || labels.get("tee") == Some(&"sgx")
                } else {
                    opts.node_selector
                        .iter()
                        .all(|(k, v)| labels.get(k.as_str()) == Some(&v.as_str()))
                };
                assert_eq!(on(dp), sgx && !in_dra_pool, "{name}: {labels:?}");
            }
        }
    }
}

#[test]
fn dra_option_errors() {
    let pool = || BTreeMap::from([("confcom.sgx/dra".to_owned(), "true".to_owned())]);
    type Check = fn(&RenderError) -> bool;
    let cases: Vec<(RenderOptions, Check)> = vec![
        (
            RenderOptions {
                dra_node_selector: pool(),
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::DraNodeSelectorWithoutDra),
        ),
        (
            RenderOptions {
                dra_extended_resources: false,
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::DraExtendedResourcesWithoutDra),
        ),
        (
            RenderOptions {
                dra: true,
                dra_node_selector: BTreeMap::from([("bad key!".to_owned(), "x".to_owned())]),
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::InvalidDraNodeSelector { .. }),
        ),
        (
            // The device plugin's pool lies inside the DRA pool: it would run nowhere.
            RenderOptions {
                dra: true,
                dra_node_selector: pool(),
                node_selector: BTreeMap::from([
                    ("confcom.sgx/dra".to_owned(), "true".to_owned()),
                    ("tee".to_owned(), "sgx".to_owned()),
                ]),
                ..RenderOptions::default()
            },
            |e| matches!(e, RenderError::DevicePluginPoolInsideDraPool),
        ),
    ];
    for (opts, check) in cases {
        let err = render(&opts).unwrap_err();
        assert!(check(&err), "unexpected error {err:?}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn dra_driver_takes_collateral_from_the_pccs_the_quote_helpers_use() {
    let driver = |opts: RenderOptions| {
        let objects = render(&opts).unwrap();
        let spec = pod_spec(daemon_set(&objects, DRA_DRIVER_NAME).unwrap()).clone();
        spec.containers[0].clone()
    };
    let ssl_cert_file = |c: &Container| {
        c.env
            .iter()
            .flatten()
            .find(|e| e.name == "SSL_CERT_FILE")
            .and_then(|e| e.value.clone())
    };
    // No PCCS rendered or named: platform attributes only.
    let plain = driver(RenderOptions {
        dra: true,
        ..RenderOptions::default()
    });
    assert_eq!(flag(&plain, "--pccs-url"), None);
    // A simulated cluster's PCCS over HTTP serves the simulated platforms' collateral.
    let simulated = driver(RenderOptions {
        dra: true,
        simulate: true,
        enable_pccs: true,
        sim_ca: Some(sim_ca()),
        ..RenderOptions::default()
    });
    assert_eq!(
        flag(&simulated, "--pccs-url"),
        Some("http://sgx-pccs.kube-system.svc:8081/sgx/certification/v4/")
    );
    assert_eq!(ssl_cert_file(&simulated), None);
    assert_eq!(mounts(&simulated).get("pccs-ca"), None);
    // Over HTTPS under the add-on's CA: the driver trusts that CA, as the quote helpers do.
    let https = driver(RenderOptions {
        dra: true,
        simulate: true,
        enable_pccs: true,
        sim_ca: Some(sim_ca()),
        pccs_tls: Some(certs_for("pccs")),
        ..RenderOptions::default()
    });
    assert_eq!(
        flag(&https, "--pccs-url"),
        Some("https://sgx-pccs.kube-system.svc:8081/sgx/certification/v4/")
    );
    assert_eq!(
        ssl_cert_file(&https).as_deref(),
        Some("/etc/confcom/pccs-ca/ca.crt")
    );
    assert_eq!(
        mounts(&https).get("pccs-ca"),
        Some(&("/etc/confcom/pccs-ca".to_owned(), true))
    );
    // On hardware the driver reads the platform evidence the quote helper publishes, and takes
    // collateral from the PCCS the quote helpers' quote provider uses: the operator's, else the
    // in-cluster one (with its CA over HTTPS), else Intel's PCS.
    let in_cluster_https = driver(RenderOptions {
        dra: true,
        enable_quote_helper: true,
        enable_pccs: true,
        pccs_tls: Some(certs_for("pccs")),
        ..RenderOptions::default()
    });
    assert_eq!(
        flag(&in_cluster_https, "--pccs-url"),
        Some("https://sgx-pccs.kube-system.svc:8081/sgx/certification/v4/")
    );
    assert_eq!(
        ssl_cert_file(&in_cluster_https).as_deref(),
        Some("/etc/confcom/pccs-ca/ca.crt")
    );
    assert_eq!(
        mounts(&in_cluster_https).get("aesmd"),
        Some(&("/var/run/aesmd".to_owned(), true))
    );
    let operators = driver(RenderOptions {
        dra: true,
        enable_quote_helper: true,
        pccs_url: Some("https://pccs.example.net:8081/sgx/certification/v4/".to_owned()),
        ..RenderOptions::default()
    });
    assert_eq!(
        flag(&operators, "--pccs-url"),
        Some("https://pccs.example.net:8081/sgx/certification/v4/")
    );
    assert_eq!(ssl_cert_file(&operators), None);
    assert_eq!(mounts(&operators).get("pccs-ca"), None);
    let intel = driver(RenderOptions {
        dra: true,
        enable_quote_helper: true,
        ..RenderOptions::default()
    });
    assert_eq!(
        flag(&intel, "--pccs-url"),
        Some("https://api.trustedservices.intel.com/sgx/certification/v4/")
    );
    // Without a quote helper on hardware there is no evidence: neither the socket's directory
    // nor a PCCS, even one rendered.
    let alone = driver(RenderOptions {
        dra: true,
        enable_pccs: true,
        pccs_tls: Some(certs_for("pccs")),
        ..RenderOptions::default()
    });
    assert_eq!(flag(&alone, "--pccs-url"), None);
    assert_eq!(ssl_cert_file(&alone), None);
    assert_eq!(mounts(&alone).get("pccs-ca"), None);
    assert_eq!(mounts(&alone).get("aesmd"), None);
}

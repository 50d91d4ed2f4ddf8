#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Properties of the admission logic over generated pods: the patch always applies, gives Intel's
//! resources to exactly the `sgx.intel.com/epc` containers, wires exactly the containers that
//! should be wired, touches nothing else, and a second invocation adds nothing. Unreadable
//! quantities are refused. Arbitrary bytes never panic.

use addon::admission::{Decision, Mutator, OptIn, Skip};
use proptest::prelude::*;
use serde_json::{Value, json};

const EPC: &str = "kubernetes.azure.com/sgx_epc_mem_in_MiB";
const INTEL_EPC: &str = "sgx.intel.com/epc";

fn resources() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(json!({}))),
        Just(Some(json!({"limits": {"cpu": "1"}}))),
        Just(Some(json!({"limits": {EPC: "10"}}))),
        Just(Some(
            json!({"requests": {EPC: "4"}, "limits": {EPC: "4", "memory": "1Gi"}})
        )),
        Just(Some(json!({"limits": {INTEL_EPC: "5Mi"}}))),
        Just(Some(
            json!({"limits": {INTEL_EPC: "0.5Gi", "sgx.intel.com/enclave": "1"}})
        )),
        Just(Some(
            json!({"requests": {INTEL_EPC: "4096"}, "limits": {INTEL_EPC: "4096"}})
        )),
        Just(Some(json!({"limits": {INTEL_EPC: "5 MiB"}}))),
        Just(Some(json!({"requests": {"sgx.intel.com/enclave": "1"}}))),
    ]
}

fn env() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        Just(Some(json!([]))),
        Just(Some(json!([{"name": "OTHER", "value": "x"}]))),
        Just(Some(json!([{"name": "SGX_AESM_ADDR", "value": "1"}]))),
    ]
}

fn mounts() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(json!([]))),
        Just(Some(json!([{"name": "data", "mountPath": "/data"}]))),
        Just(Some(
            json!([{"name": "confcom-aesmd", "mountPath": "/var/run/aesmd", "readOnly": true}])
        )),
    ]
}

fn container(index: usize) -> impl Strategy<Value = Value> {
    (resources(), env(), mounts()).prop_map(move |(resources, env, mounts)| {
        let mut c = json!({"name": format!("c{index}"), "image": "app:1"});
        for (key, value) in [
            ("resources", resources),
            ("env", env),
            ("volumeMounts", mounts),
        ] {
            if let Some(value) = value {
                c[key] = value;
            }
        }
        c
    })
}

fn containers(max: usize) -> impl Strategy<Value = Vec<Value>> {
    (0..max).prop_flat_map(|n| (0..=n).map(container).collect::<Vec<_>>())
}

fn pod() -> impl Strategy<Value = Value> {
    let labels = prop_oneof![
        Just(json!({})),
        Just(json!({"confcom.sgx/quote-helper": "true"})),
        Just(json!({"confcom.sgx/quote-helper": "false"})),
        Just(json!({"confcom.sgx/quote-helper": "true", "app.kubernetes.io/part-of": "confcom"})),
    ];
    let annotations = prop_oneof![
        Just(None),
        Just(Some(json!({"other": "x"}))),
        Just(Some(json!({"sgx.intel.com/quote-provider": "aesmd"}))),
        Just(Some(json!({"sgx.intel.com/quote-provider": "c0"}))),
        Just(Some(
            json!({"sgx.intel.com/quote-provider": "aesmd", "sgx.intel.com/epc": "1Ki"})
        )),
    ];
    let volumes = prop_oneof![
        Just(None),
        Just(Some(json!([]))),
        Just(Some(json!([{"name": "data", "emptyDir": {}}]))),
        Just(Some(
            json!([{"name": "aesmd", "hostPath": {"path": "/var/run/aesmd/"}}])
        )),
    ];
    (
        labels,
        annotations,
        volumes,
        containers(3),
        prop::option::of(containers(2)),
        any::<bool>(),
    )
        .prop_map(
            |(labels, annotations, volumes, mut containers, init, aesmd_named)| {
                // Sometimes the first app container is an aesmd of the pod's own.
                if aesmd_named {
                    containers[0]["name"] = json!("aesmd");
                }
                let mut pod = json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "p", "namespace": "ns", "labels": labels},
                    "spec": {"containers": containers},
                });
                if let Some(annotations) = annotations {
                    pod["metadata"]["annotations"] = annotations;
                }
                if let Some(volumes) = volumes {
                    pod["spec"]["volumes"] = volumes;
                }
                if let Some(init) = init {
                    let init = init
                        .into_iter()
                        .map(|mut c| {
                            c["name"] = json!(format!("init-{}", c["name"].as_str().unwrap()));
                            c
                        })
                        .collect();
                    pod["spec"]["initContainers"] = Value::Array(init);
                }
                make_valid(pod)
            },
        )
}

/// The API server only admits pods whose mounts name existing volumes: point generated aesmd
/// mounts at the pod's aesmd volume, adding one when there is none.
fn make_valid(mut pod: Value) -> Value {
    let has_mount = ["containers", "initContainers"].iter().any(|key| {
        list(&pod, key).iter().any(|c| {
            c["volumeMounts"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["mountPath"] == "/var/run/aesmd"))
        })
    });
    if !has_mount {
        return pod;
    }
    let existing = list(&pod, "volumes")
        .iter()
        .find(|v| v["hostPath"]["path"] == "/var/run/aesmd/")
        .map(|v| v["name"].clone());
    let name = match existing {
        Some(name) => name,
        None => {
            let volume = json!({"name": "confcom-aesmd", "hostPath": {"path": "/var/run/aesmd"}});
            match pod["spec"]["volumes"].as_array_mut() {
                Some(volumes) => volumes.push(volume),
                None => pod["spec"]["volumes"] = json!([volume]),
            }
            json!("confcom-aesmd")
        }
    };
    for key in ["containers", "initContainers"] {
        for c in pod["spec"][key].as_array_mut().into_iter().flatten() {
            for m in c["volumeMounts"].as_array_mut().into_iter().flatten() {
                if m["mountPath"] == "/var/run/aesmd" {
                    m["name"] = name.clone();
                }
            }
        }
    }
    pod
}

fn requests_epc(c: &Value) -> bool {
    ["limits", "requests"].iter().any(|k| {
        c["resources"][k]
            .as_object()
            .is_some_and(|m| m.contains_key(EPC) || m.contains_key(INTEL_EPC))
    })
}

/// The container's `sgx.intel.com/epc` (limits first).
fn intel_epc(c: &Value) -> Option<&str> {
    ["limits", "requests"]
        .iter()
        .find_map(|k| c["resources"][k][INTEL_EPC].as_str())
}

fn list(pod: &Value, key: &str) -> Vec<Value> {
    pod["spec"][key].as_array().cloned().unwrap_or_default()
}

fn all_containers(pod: &Value) -> Vec<Value> {
    list(pod, "initContainers")
        .into_iter()
        .chain(list(pod, "containers"))
        .collect()
}

/// The container without what the webhook may add to it.
fn without_additions(c: &Value) -> Value {
    let mut c = c.clone();
    for list in ["limits", "requests"] {
        if let Some(map) = c["resources"][list].as_object_mut() {
            map.remove("sgx.intel.com/enclave");
            map.remove("sgx.intel.com/provision");
        }
    }
    if c["resources"]["limits"] == json!({}) && c["resources"]["requests"].is_null() {
        c["resources"].as_object_mut().unwrap().remove("limits");
    }
    for key in ["env", "volumeMounts"] {
        if let Some(items) = c[key].as_array_mut() {
            items.retain(|i| i["name"] != "SGX_AESM_ADDR" && i["mountPath"] != "/var/run/aesmd");
        }
        // An absent list and an empty one are the same to the API server.
        if c[key].is_null() || c[key] == json!([]) {
            c.as_object_mut().unwrap().remove(key);
        }
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn patches_apply_touch_only_what_they_should_and_are_idempotent(
        pod in pod(),
        entry in 0..3u8,
    ) {
        let opt_in = [OptIn::PodLabel, OptIn::Namespace, OptIn::IntelEpc][entry as usize];
        let mutator = Mutator::default();
        let labels = &pod["metadata"]["labels"];
        let label = labels["confcom.sgx/quote-helper"].as_str();
        let opted_in = match opt_in {
            OptIn::PodLabel => label == Some("true"),
            OptIn::Namespace => label != Some("false"),
            OptIn::IntelEpc => false,
        };
        let provider = pod["metadata"]["annotations"]["sgx.intel.com/quote-provider"].as_str();
        let aesmd = provider == Some("aesmd");
        let all = all_containers(&pod);
        let intel_users = all.iter().filter(|c| intel_epc(c).is_some()).count();
        match mutator.decide(&pod, opt_in) {
            Decision::Skip(Skip::OwnPod) => {
                prop_assert_eq!(&labels["app.kubernetes.io/part-of"], "confcom");
            }
            Decision::Skip(Skip::NotOptedIn) => {
                prop_assert!(!opted_in && intel_users == 0, "label {:?} for {:?}", label, opt_in);
                prop_assert!(!aesmd || all.iter().any(requests_epc));
            }
            Decision::Skip(Skip::NoEpcRequest) => {
                prop_assert!(!all.iter().any(requests_epc));
            }
            Decision::Skip(Skip::AlreadyWired) => {}
            Decision::Skip(other) => prop_assert!(false, "unexpected skip {:?}", other),
            Decision::Deny(message) => {
                let bad = all.iter().find(|c| intel_epc(c) == Some("5 MiB"));
                prop_assert!(bad.is_some(), "refused without a bad quantity: {}", message);
                let name = bad.unwrap()["name"].as_str().unwrap();
                prop_assert!(message.contains(&format!("container {name:?}")), "{}", message);
            }
            Decision::Patch(ops) => {
                prop_assert!(!all.iter().any(|c| intel_epc(c) == Some("5 MiB")));
                let patch: json_patch::Patch =
                    serde_json::from_value(serde_json::to_value(&ops).unwrap()).unwrap();
                let mut patched = pod.clone();
                json_patch::patch(&mut patched, &patch).unwrap();
                let _: k8s_openapi::api::core::v1::Pod =
                    serde_json::from_value(patched.clone()).unwrap();
                prop_assert_eq!(&patched["metadata"]["labels"], &pod["metadata"]["labels"]);
                let annotations = &patched["metadata"]["annotations"];
                let volumes = list(&patched, "volumes");
                let sidecar = aesmd
                    && intel_users >= 2
                    && all.iter().any(|c| c["name"] == "aesmd" && intel_epc(c).is_some());
                for (before, after) in all.iter().zip(all_containers(&patched)) {
                    let name = before["name"].as_str().unwrap();
                    // Everything but what the webhook adds stays as it was.
                    prop_assert_eq!(without_additions(before), without_additions(&after));
                    if intel_epc(before).is_some() {
                        prop_assert!(after["resources"]["limits"]["sgx.intel.com/enclave"].is_string());
                        // Requests, where listed, carry the same.
                        if before["resources"]["requests"].is_object() {
                            prop_assert_eq!(
                                &after["resources"]["requests"]["sgx.intel.com/enclave"],
                                &after["resources"]["limits"]["sgx.intel.com/enclave"]
                            );
                        }
                        let nri = &annotations[format!("epc-limit.nri.io/container.{name}")];
                        prop_assert!(nri.as_str().is_some_and(|b| b.parse::<u64>().is_ok()));
                    } else {
                        prop_assert_eq!(
                            &before["resources"]["limits"]["sgx.intel.com/enclave"],
                            &after["resources"]["limits"]["sgx.intel.com/enclave"]
                        );
                    }
                    prop_assert_eq!(
                        after["resources"]["limits"]["sgx.intel.com/provision"].is_string(),
                        before["resources"]["limits"]["sgx.intel.com/provision"].is_string()
                            || (intel_epc(before).is_some() && provider == Some(name))
                    );
                    let wired = (opted_in && requests_epc(before)) || (aesmd && intel_epc(before).is_some());
                    if !wired {
                        prop_assert_eq!(&before["env"], &after["env"]);
                        prop_assert_eq!(&before["volumeMounts"], &after["volumeMounts"]);
                        continue;
                    }
                    let env = after["env"].as_array().unwrap();
                    prop_assert_eq!(
                        env.iter().filter(|e| e["name"] == "SGX_AESM_ADDR").count(), 1
                    );
                    let mounts = after["volumeMounts"].as_array().unwrap();
                    let aesmd_mounts: Vec<&Value> = mounts.iter()
                        .filter(|m| m["mountPath"] == "/var/run/aesmd").collect();
                    prop_assert_eq!(aesmd_mounts.len(), 1);
                    let volume_name = &aesmd_mounts[0]["name"];
                    let volume = volumes.iter().find(|v| &v["name"] == volume_name);
                    prop_assert!(volume.is_some(), "mount of a missing volume {}", volume_name);
                    let volume = volume.unwrap();
                    if sidecar && volume["hostPath"].is_null() {
                        prop_assert_eq!(&volume["emptyDir"]["medium"], "Memory");
                    } else {
                        let path = volume["hostPath"]["path"].as_str().unwrap();
                        prop_assert_eq!(path.trim_end_matches('/'), "/var/run/aesmd");
                    }
                }
                if intel_users > 0 {
                    prop_assert!(annotations["sgx.intel.com/epc"].is_string());
                }
                prop_assert_eq!(
                    mutator.decide(&patched, opt_in),
                    Decision::Skip(Skip::AlreadyWired)
                );
            }
        }
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Mutator::default().review(&body, OptIn::PodLabel);
    }

    #[test]
    fn arbitrary_json_objects_never_panic(object in arbitrary_json()) {
        let review = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "operation": "CREATE", "object": object}
        });
        let body = serde_json::to_vec(&review).unwrap();
        let (reply, _) = Mutator::default().review(&body, OptIn::Namespace).unwrap();
        let reply: Value = serde_json::from_slice(&reply).unwrap();
        prop_assert_eq!(&reply["response"]["allowed"], true);
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z/._-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("spec".to_owned()),
            Just("metadata".to_owned()),
            Just("containers".to_owned()),
            Just("labels".to_owned()),
            Just("resources".to_owned()),
            Just("limits".to_owned()),
            Just(EPC.to_owned()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

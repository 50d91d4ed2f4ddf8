#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Properties of the admission logic over generated pods: the patch always applies, wires exactly
//! the EPC containers, touches nothing else, and a second invocation adds nothing. Arbitrary bytes
//! never panic.

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
        volumes,
        containers(3),
        prop::option::of(containers(2)),
    )
        .prop_map(|(labels, volumes, containers, init)| {
            let mut pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": "ns", "labels": labels},
                "spec": {"containers": containers},
            });
            if let Some(volumes) = volumes {
                pod["spec"]["volumes"] = volumes;
            }
            if let Some(init) = init {
                pod["spec"]["initContainers"] = Value::Array(init);
            }
            make_valid(pod)
        })
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

fn list(pod: &Value, key: &str) -> Vec<Value> {
    pod["spec"][key].as_array().cloned().unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn patches_apply_wire_only_epc_containers_and_are_idempotent(
        pod in pod(),
        by_namespace in any::<bool>(),
    ) {
        let opt_in = if by_namespace { OptIn::Namespace } else { OptIn::PodLabel };
        let mutator = Mutator::default();
        let labels = &pod["metadata"]["labels"];
        match mutator.decide(&pod, opt_in) {
            Decision::Skip(Skip::OwnPod) => {
                prop_assert_eq!(&labels["app.kubernetes.io/part-of"], "confcom");
            }
            Decision::Skip(Skip::NotOptedIn) => {
                let label = labels["confcom.sgx/quote-helper"].as_str();
                let expected = match opt_in {
                    OptIn::PodLabel => label != Some("true"),
                    OptIn::Namespace => label == Some("false"),
                };
                prop_assert!(expected, "label {:?} for {:?}", label, opt_in);
            }
            Decision::Skip(Skip::NoEpcRequest) => {
                let all = list(&pod, "containers").into_iter().chain(list(&pod, "initContainers"));
                prop_assert!(!all.into_iter().any(|c| requests_epc(&c)));
            }
            Decision::Skip(Skip::AlreadyWired) => {}
            Decision::Skip(other) => prop_assert!(false, "unexpected skip {:?}", other),
            Decision::Patch(ops) => {
                let patch: json_patch::Patch =
                    serde_json::from_value(serde_json::to_value(&ops).unwrap()).unwrap();
                let mut patched = pod.clone();
                json_patch::patch(&mut patched, &patch).unwrap();
                let _: k8s_openapi::api::core::v1::Pod =
                    serde_json::from_value(patched.clone()).unwrap();
                prop_assert_eq!(&patched["metadata"], &pod["metadata"]);
                let volumes = list(&patched, "volumes");
                for key in ["containers", "initContainers"] {
                    for (before, after) in list(&pod, key).iter().zip(list(&patched, key)) {
                        if !requests_epc(before) {
                            prop_assert_eq!(before, &after);
                            continue;
                        }
                        let env = after["env"].as_array().unwrap();
                        prop_assert_eq!(
                            env.iter().filter(|e| e["name"] == "SGX_AESM_ADDR").count(), 1
                        );
                        let mounts = after["volumeMounts"].as_array().unwrap();
                        let aesmd: Vec<&Value> = mounts.iter()
                            .filter(|m| m["mountPath"] == "/var/run/aesmd").collect();
                        prop_assert_eq!(aesmd.len(), 1);
                        let name = &aesmd[0]["name"];
                        let volume = volumes.iter().find(|v| &v["name"] == name);
                        prop_assert!(volume.is_some(), "mount of a missing volume {}", name);
                        let path = volume.unwrap()["hostPath"]["path"].as_str().unwrap();
                        prop_assert_eq!(path.trim_end_matches('/'), "/var/run/aesmd");
                    }
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

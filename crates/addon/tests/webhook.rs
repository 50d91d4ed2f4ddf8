#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Table-driven admission tests with real AdmissionReview JSON: the JSONPatch the webhook returns
//! is applied with the `json-patch` crate and the result compared with the expected pod.

use addon::admission::{Decision, Mutator, OptIn, ReviewError, Skip};
use base64::Engine;
use serde_json::{Value, json};

const FIXTURE: &str = include_str!("reviews/pod-create.json");

fn fixture() -> Value {
    serde_json::from_str(FIXTURE).unwrap()
}

fn object(review: &mut Value) -> &mut Value {
    &mut review["request"]["object"]
}

fn labels(review: &mut Value) -> &mut serde_json::Map<String, Value> {
    object(review)["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
}

/// What the API server would store after the webhook's patch (or the object itself when there is
/// no patch), plus the decision.
fn admit(mutator: &Mutator, review: &Value, opt_in: OptIn) -> (Value, Decision, Value) {
    let body = serde_json::to_vec(review).unwrap();
    let (reply, decision) = mutator.review(&body, opt_in).unwrap();
    let reply: Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(reply["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(reply["kind"], "AdmissionReview");
    let response = &reply["response"];
    assert_eq!(response["uid"], review["request"]["uid"]);
    assert_eq!(response["allowed"], true, "the webhook never denies");
    let mut pod = review["request"]["object"].clone();
    match response.get("patch") {
        Some(patch) => {
            assert_eq!(response["patchType"], "JSONPatch");
            assert!(matches!(decision, Decision::Patch(_)));
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(patch.as_str().unwrap())
                .unwrap();
            let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
            json_patch::patch(&mut pod, &patch).unwrap();
        }
        None => {
            assert!(response.get("patchType").is_none());
            assert!(matches!(decision, Decision::Skip(_)));
        }
    }
    (pod, decision, reply)
}

fn aesmd_volume() -> Value {
    json!({"name": "confcom-aesmd", "hostPath": {"path": "/var/run/aesmd", "type": "DirectoryOrCreate"}})
}

fn aesmd_mount(volume: &str) -> Value {
    json!({"name": volume, "mountPath": "/var/run/aesmd", "readOnly": true})
}

fn aesm_env() -> Value {
    json!({"name": "SGX_AESM_ADDR", "value": "1"})
}

fn push(array: &mut Value, item: Value) {
    array.as_array_mut().unwrap().push(item);
}

/// Expected result for the fixture's single EPC container: volume, env and mount added.
fn wired(pod: &mut Value) {
    push(&mut pod["spec"]["volumes"], aesmd_volume());
    let c = &mut pod["spec"]["containers"][0];
    push(&mut c["env"], aesm_env());
    push(&mut c["volumeMounts"], aesmd_mount("confcom-aesmd"));
}

enum Expect {
    Unchanged(Skip),
    Patched(fn(&mut Value)),
}

struct Case {
    name: &'static str,
    opt_in: OptIn,
    edit: fn(&mut Value),
    expect: Expect,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "EPC container with the pod opt-in label",
            opt_in: OptIn::PodLabel,
            edit: |_| {},
            expect: Expect::Patched(wired),
        },
        Case {
            name: "EPC container without the opt-in label",
            opt_in: OptIn::PodLabel,
            edit: |r| {
                labels(r).remove("confcom.sgx/quote-helper");
            },
            expect: Expect::Unchanged(Skip::NotOptedIn),
        },
        Case {
            name: "opt-in label with a value other than true",
            opt_in: OptIn::PodLabel,
            edit: |r| {
                labels(r).insert("confcom.sgx/quote-helper".into(), json!("yes"));
            },
            expect: Expect::Unchanged(Skip::NotOptedIn),
        },
        Case {
            name: "namespace opt-in, pod without label",
            opt_in: OptIn::Namespace,
            edit: |r| {
                labels(r).remove("confcom.sgx/quote-helper");
            },
            expect: Expect::Patched(wired),
        },
        Case {
            name: "namespace opt-in, pod opted out",
            opt_in: OptIn::Namespace,
            edit: |r| {
                labels(r).insert("confcom.sgx/quote-helper".into(), json!("false"));
            },
            expect: Expect::Unchanged(Skip::NotOptedIn),
        },
        Case {
            name: "opted in but no EPC request",
            opt_in: OptIn::PodLabel,
            edit: |r| {
                object(r)["spec"]["containers"][0]["resources"] =
                    json!({"limits": {"cpu": "1", "sgx.intel.com/enclave": "1"}});
            },
            expect: Expect::Unchanged(Skip::NoEpcRequest),
        },
        Case {
            name: "already mutated pod",
            opt_in: OptIn::PodLabel,
            edit: |r| wired(object(r)),
            expect: Expect::Unchanged(Skip::AlreadyWired),
        },
        Case {
            name: "the AKS sample's own volume, env and mount are reused",
            opt_in: OptIn::PodLabel,
            edit: |r| {
                let spec = &mut object(r)["spec"];
                push(
                    &mut spec["volumes"],
                    json!({"name": "var-run-aesmd", "hostPath": {"path": "/var/run/aesmd"}}),
                );
                let c = &mut spec["containers"][0];
                push(
                    &mut c["env"],
                    json!({"name": "SGX_AESM_ADDR", "value": "1"}),
                );
                push(
                    &mut c["volumeMounts"],
                    json!({"name": "var-run-aesmd", "mountPath": "/var/run/aesmd/"}),
                );
            },
            expect: Expect::Unchanged(Skip::AlreadyWired),
        },
        Case {
            name: "existing aesmd volume reused for a container that lacks the mount",
            opt_in: OptIn::PodLabel,
            edit: |r| {
                let spec = &mut object(r)["spec"];
                push(
                    &mut spec["volumes"],
                    json!({"name": "var-run-aesmd", "hostPath": {"path": "/var/run/aesmd"}}),
                );
            },
            expect: Expect::Patched(|pod| {
                let c = &mut pod["spec"]["containers"][0];
                push(&mut c["env"], aesm_env());
                push(&mut c["volumeMounts"], aesmd_mount("var-run-aesmd"));
            }),
        },
        Case {
            name: "own aesmd sidecar volume at the path: only the env is added, no host path",
            opt_in: OptIn::PodLabel,
            edit: |r| {
                let spec = &mut object(r)["spec"];
                push(
                    &mut spec["volumes"],
                    json!({"name": "aesmd-socket", "emptyDir": {"medium": "Memory"}}),
                );
                push(
                    &mut spec["containers"][0]["volumeMounts"],
                    json!({"name": "aesmd-socket", "mountPath": "/var/run/aesmd"}),
                );
            },
            expect: Expect::Patched(|pod| {
                push(&mut pod["spec"]["containers"][0]["env"], aesm_env());
            }),
        },
        Case {
            name: "init container with Intel's EPC resource, no env/mount lists, no volumes",
            opt_in: OptIn::PodLabel,
            edit: |r| {
                let spec = &mut object(r)["spec"];
                spec.as_object_mut().unwrap().remove("volumes");
                spec["containers"][0]["resources"] = json!({});
                spec["containers"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("volumeMounts");
                spec["initContainers"] = json!([
                    {"name": "provision", "image": "busybox"},
                    {"name": "seal", "image": "enclave-init:1",
                     "resources": {"limits": {"sgx.intel.com/epc": "5Mi"}}}
                ]);
            },
            expect: Expect::Patched(|pod| {
                let spec = &mut pod["spec"];
                let seal = &mut spec["initContainers"][1];
                seal["env"] = json!([aesm_env()]);
                seal["volumeMounts"] = json!([aesmd_mount("confcom-aesmd")]);
                // Intel's resources for a `sgx.intel.com/epc` container, whatever the opt-in.
                seal["resources"]["limits"]["sgx.intel.com/enclave"] = json!("1");
                spec["volumes"] = json!([aesmd_volume()]);
                pod["metadata"]["annotations"] = json!({
                    "epc-limit.nri.io/container.seal": "5242880",
                    "sgx.intel.com/epc": "5Mi",
                });
            }),
        },
        Case {
            name: "init container and two app containers, one without EPC",
            opt_in: OptIn::PodLabel,
            edit: |r| {
                let spec = &mut object(r)["spec"];
                push(
                    &mut spec["containers"],
                    json!({"name": "sidecar", "image": "envoy:1"}),
                );
                push(
                    &mut spec["containers"],
                    json!({"name": "second", "image": "app:2",
                           "resources": {"requests": {"kubernetes.azure.com/sgx_epc_mem_in_MiB": "2"}},
                           "env": null}),
                );
                spec["initContainers"] = json!([{"name": "init", "image": "app:2",
                    "resources": {"limits": {"sgx.intel.com/epc": "1Mi"}}}]);
            },
            expect: Expect::Patched(|pod| {
                let spec = &mut pod["spec"];
                spec["containers"][2]["env"] = json!([aesm_env()]);
                spec["containers"][2]["volumeMounts"] = json!([aesmd_mount("confcom-aesmd")]);
                spec["initContainers"][0]["env"] = json!([aesm_env()]);
                spec["initContainers"][0]["volumeMounts"] = json!([aesmd_mount("confcom-aesmd")]);
                spec["initContainers"][0]["resources"]["limits"]["sgx.intel.com/enclave"] =
                    json!("1");
                pod["metadata"]["annotations"] = json!({
                    "epc-limit.nri.io/container.init": "1048576",
                    "sgx.intel.com/epc": "1Mi",
                });
                wired(pod);
            }),
        },
        Case {
            name: "the add-on's own pod (pod entry)",
            opt_in: OptIn::PodLabel,
            edit: |r| {
                labels(r).insert("app.kubernetes.io/part-of".into(), json!("confcom"));
            },
            expect: Expect::Unchanged(Skip::OwnPod),
        },
        Case {
            name: "the add-on's own pod (namespace entry)",
            opt_in: OptIn::Namespace,
            edit: |r| {
                labels(r).insert("app.kubernetes.io/part-of".into(), json!("confcom"));
            },
            expect: Expect::Unchanged(Skip::OwnPod),
        },
        Case {
            name: "UPDATE is not touched",
            opt_in: OptIn::PodLabel,
            edit: |r| r["request"]["operation"] = json!("UPDATE"),
            expect: Expect::Unchanged(Skip::NotPodCreate),
        },
        Case {
            name: "a subresource is not touched",
            opt_in: OptIn::PodLabel,
            edit: |r| r["request"]["subResource"] = json!("ephemeralcontainers"),
            expect: Expect::Unchanged(Skip::NotPodCreate),
        },
        Case {
            name: "another kind is not touched",
            opt_in: OptIn::PodLabel,
            edit: |r| {
                r["request"]["kind"] =
                    json!({"group": "apps", "version": "v1", "kind": "Deployment"})
            },
            expect: Expect::Unchanged(Skip::NotPodCreate),
        },
    ]
}

#[test]
fn admission_table() {
    let mutator = Mutator::default();
    for case in cases() {
        let mut review = fixture();
        (case.edit)(&mut review);
        let (pod, decision, _) = admit(&mutator, &review, case.opt_in);
        let original = review["request"]["object"].clone();
        match case.expect {
            Expect::Unchanged(skip) => {
                assert_eq!(decision, Decision::Skip(skip), "{}", case.name);
                assert_eq!(pod, original, "{}", case.name);
            }
            Expect::Patched(build) => {
                let mut expected = original.clone();
                build(&mut expected);
                assert_ne!(
                    expected, original,
                    "{}: the case must expect a change",
                    case.name
                );
                assert_eq!(pod, expected, "{}", case.name);
                // The result is still a valid pod, and admitting it again changes nothing.
                let _: k8s_openapi::api::core::v1::Pod =
                    serde_json::from_value(pod.clone()).unwrap();
                let mut again = review.clone();
                again["request"]["object"] = pod.clone();
                let (pod2, decision2, _) = admit(&mutator, &again, case.opt_in);
                assert_eq!(
                    decision2,
                    Decision::Skip(Skip::AlreadyWired),
                    "{}",
                    case.name
                );
                assert_eq!(pod2, pod, "{}: re-invocation must add nothing", case.name);
            }
        }
    }
}

#[test]
fn a_configured_epc_resource_name_counts() {
    let mut review = fixture();
    object(&mut review)["spec"]["containers"][0]["resources"] =
        json!({"limits": {"example.com/sgx-epc": "8"}});
    let (_, decision, _) = admit(&Mutator::default(), &review, OptIn::PodLabel);
    assert_eq!(decision, Decision::Skip(Skip::NoEpcRequest));
    let custom = Mutator::new(["example.com/sgx-epc"]);
    let (pod, decision, _) = admit(&custom, &review, OptIn::PodLabel);
    assert!(matches!(decision, Decision::Patch(_)));
    assert_eq!(pod["spec"]["containers"][0]["env"][1], aesm_env());
}

#[test]
fn an_unreadable_pod_is_admitted_unchanged_with_a_warning() {
    let mut review = fixture();
    object(&mut review)["spec"]["containers"] = json!("not a list");
    let (pod, decision, reply) = admit(&Mutator::default(), &review, OptIn::PodLabel);
    assert!(matches!(decision, Decision::Skip(Skip::Unreadable(_))));
    assert_eq!(pod, review["request"]["object"]);
    let warning = reply["response"]["warnings"][0].as_str().unwrap();
    assert!(warning.contains("unchanged"), "{warning}");
}

#[test]
fn malformed_reviews_are_errors() {
    let mutator = Mutator::default();
    type Check = fn(&ReviewError) -> bool;
    let bodies: Vec<(Vec<u8>, Check)> = vec![
        (b"".to_vec(), |e| matches!(e, ReviewError::Malformed(_))),
        (b"{not json".to_vec(), |e| {
            matches!(e, ReviewError::Malformed(_))
        }),
        (b"[1,2,3]".to_vec(), |e| {
            matches!(e, ReviewError::Malformed(_))
        }),
        (
            {
                let mut r = fixture();
                r["apiVersion"] = json!("admission.k8s.io/v1beta1");
                serde_json::to_vec(&r).unwrap()
            },
            |e| matches!(e, ReviewError::Unsupported { .. }),
        ),
        (
            {
                let mut r = fixture();
                r.as_object_mut().unwrap().remove("request");
                serde_json::to_vec(&r).unwrap()
            },
            |e| matches!(e, ReviewError::MissingRequest),
        ),
        (
            {
                let mut r = fixture();
                r["request"]["uid"] = json!("");
                serde_json::to_vec(&r).unwrap()
            },
            |e| matches!(e, ReviewError::MissingRequest),
        ),
        (
            {
                let mut r = fixture();
                r["request"]["uid"] = json!(42);
                serde_json::to_vec(&r).unwrap()
            },
            |e| matches!(e, ReviewError::Malformed(_)),
        ),
    ];
    for (body, check) in bodies {
        for opt_in in [OptIn::PodLabel, OptIn::Namespace] {
            let err = mutator.review(&body, opt_in).unwrap_err();
            assert!(check(&err), "{err:?}");
        }
    }
}

// --- pods written Intel's way ----------------------------------------------------------------------

const INTEL_FIXTURE: &str = include_str!("reviews/intel-pod-create.json");

/// A Job's pod as the AKS quick start and Intel's samples write it: one container with
/// `sgx.intel.com/epc: 5Mi` in limits and requests, no confcom label.
fn intel_fixture() -> Value {
    serde_json::from_str(INTEL_FIXTURE).unwrap()
}

fn annotate(review: &mut Value, key: &str, value: &str) {
    let metadata = &mut object(review)["metadata"];
    if metadata["annotations"].is_null() {
        metadata["annotations"] = json!({});
    }
    metadata["annotations"][key] = json!(value);
}

/// Admits `review` through the Intel entry, checks the result is a valid pod that a second
/// invocation leaves alone, and returns it.
fn admit_intel(review: &Value) -> Value {
    let mutator = Mutator::default();
    let (pod, decision, _) = admit(&mutator, review, OptIn::IntelEpc);
    assert!(matches!(decision, Decision::Patch(_)), "{decision:?}");
    let _: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod.clone()).unwrap();
    let mut again = review.clone();
    again["request"]["object"] = pod.clone();
    // (The namespace entry would wire the pod: its namespace opted in.)
    for opt_in in [OptIn::IntelEpc, OptIn::PodLabel] {
        let (pod2, decision2, _) = admit(&mutator, &again, opt_in);
        assert_eq!(
            pod2, pod,
            "re-invocation through {opt_in:?} must add nothing"
        );
        assert!(matches!(decision2, Decision::Skip(_)), "{decision2:?}");
    }
    pod
}

#[test]
fn an_intel_epc_pod_gets_the_enclave_device_and_the_epc_annotations() {
    let review = intel_fixture();
    let pod = admit_intel(&review);
    let mut expected = review["request"]["object"].clone();
    let resources = &mut expected["spec"]["containers"][0]["resources"];
    resources["limits"]["sgx.intel.com/enclave"] = json!("1");
    // The pod lists requests too: they get the same, as limits and requests of an extended
    // resource must be equal.
    resources["requests"]["sgx.intel.com/enclave"] = json!("1");
    expected["metadata"]["annotations"] = json!({
        "sgx.intel.com/epc": "5Mi",
        "epc-limit.nri.io/container.sgx-quote-demo": "5242880",
    });
    // No quote provider named: no provision device, no wiring.
    assert_eq!(pod, expected);
}

#[test]
fn quote_provider_aesmd_wires_the_pod_exactly_as_the_opt_in_label_does() {
    let mut review = intel_fixture();
    annotate(&mut review, "sgx.intel.com/quote-provider", "aesmd");
    let pod = admit_intel(&review);
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["env"], json!([aesm_env()]));
    assert_eq!(c["volumeMounts"], json!([aesmd_mount("confcom-aesmd")]));
    assert_eq!(pod["spec"]["volumes"], json!([aesmd_volume()]));
    assert_eq!(c["resources"]["limits"]["sgx.intel.com/enclave"], "1");
    assert!(c["resources"]["limits"]["sgx.intel.com/provision"].is_null());

    // The same pod opted in with the label instead (through its entry) is wired the same way.
    let mut labelled = intel_fixture();
    labels(&mut labelled).insert("confcom.sgx/quote-helper".into(), json!("true"));
    let (by_label, _, _) = admit(&Mutator::default(), &labelled, OptIn::PodLabel);
    for key in ["env", "volumeMounts", "resources"] {
        assert_eq!(by_label["spec"]["containers"][0][key], c[key], "{key}");
    }
    assert_eq!(by_label["spec"]["volumes"], pod["spec"]["volumes"]);
}

#[test]
fn the_container_named_as_quote_provider_gets_the_provision_device() {
    let mut review = intel_fixture();
    annotate(
        &mut review,
        "sgx.intel.com/quote-provider",
        "sgx-quote-demo",
    );
    push(
        &mut object(&mut review)["spec"]["containers"],
        json!({"name": "worker", "image": "w:1",
               "resources": {"limits": {"sgx.intel.com/epc": "1Mi"}}}),
    );
    let pod = admit_intel(&review);
    let limits = |i: usize| pod["spec"]["containers"][i]["resources"]["limits"].clone();
    assert_eq!(limits(0)["sgx.intel.com/provision"], "1");
    assert_eq!(limits(0)["sgx.intel.com/enclave"], "1");
    assert!(limits(1)["sgx.intel.com/provision"].is_null());
    assert_eq!(limits(1)["sgx.intel.com/enclave"], "1");
    // In-process quoting: nothing points at the quote helper.
    assert!(pod["spec"]["containers"][0]["env"].is_null());
    assert!(pod["spec"]["volumes"].is_null());
    assert_eq!(pod["metadata"]["annotations"]["sgx.intel.com/epc"], "6Mi");
}

#[test]
fn intels_aesmd_daemonset_pod_may_create_its_socket() {
    // Intel's aesmd DaemonSet: container `aesmd`, annotation `aesmd`, 1Mi of EPC.
    let mut review = intel_fixture();
    annotate(&mut review, "sgx.intel.com/quote-provider", "aesmd");
    let c = &mut object(&mut review)["spec"]["containers"][0];
    c["name"] = json!("aesmd");
    c["resources"] = json!({"limits": {"sgx.intel.com/epc": "1Mi"}});
    let pod = admit_intel(&review);
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["resources"]["limits"]["sgx.intel.com/provision"], "1");
    assert_eq!(c["resources"]["limits"]["sgx.intel.com/enclave"], "1");
    assert_eq!(
        c["volumeMounts"],
        json!([{"name": "confcom-aesmd", "mountPath": "/var/run/aesmd"}]),
        "the quote provider's own mount is writable"
    );
    assert_eq!(pod["spec"]["volumes"], json!([aesmd_volume()]));
}

#[test]
fn an_aesmd_sidecar_shares_a_memory_volume_with_the_app() {
    let mut review = intel_fixture();
    annotate(&mut review, "sgx.intel.com/quote-provider", "aesmd");
    push(
        &mut object(&mut review)["spec"]["containers"],
        json!({"name": "aesmd", "image": "intel/sgx-aesmd:1",
               "resources": {"limits": {"sgx.intel.com/epc": "1Mi"}}}),
    );
    let pod = admit_intel(&review);
    assert_eq!(
        pod["spec"]["volumes"],
        json!([{"name": "aesmd-socket", "emptyDir": {"medium": "Memory"}}])
    );
    for c in pod["spec"]["containers"].as_array().unwrap() {
        assert_eq!(
            c["volumeMounts"],
            json!([{"name": "aesmd-socket", "mountPath": "/var/run/aesmd"}])
        );
        assert_eq!(c["env"], json!([aesm_env()]));
    }
    let limits = |i: usize| pod["spec"]["containers"][i]["resources"]["limits"].clone();
    assert!(limits(0)["sgx.intel.com/provision"].is_null());
    assert_eq!(limits(1)["sgx.intel.com/provision"], "1");
}

#[test]
fn quantities_in_any_form_add_up_as_the_scheduler_counts_them() {
    let mut review = intel_fixture();
    let spec = &mut object(&mut review)["spec"];
    spec["containers"][0]["resources"] = json!({"limits": {"sgx.intel.com/epc": "5242880"}});
    push(
        &mut spec["containers"],
        json!({"name": "b", "image": "b:1", "resources": {"limits": {"sgx.intel.com/epc": "0.5Gi"}}}),
    );
    // A plain init container runs alone: it counts only if it needs more than the app containers.
    spec["initContainers"] = json!([
        {"name": "small-init", "image": "i:1", "resources": {"limits": {"sgx.intel.com/epc": "1e6"}}}
    ]);
    let pod = admit_intel(&review);
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["sgx.intel.com/epc"], "517Mi");
    assert_eq!(annotations["epc-limit.nri.io/container.b"], "536870912");
    assert_eq!(
        annotations["epc-limit.nri.io/container.small-init"],
        "1000000"
    );
    assert_eq!(
        pod["spec"]["initContainers"][0]["resources"]["limits"]["sgx.intel.com/enclave"],
        "1"
    );

    let mut review = intel_fixture();
    object(&mut review)["spec"]["initContainers"] = json!([
        {"name": "big-init", "image": "i:1", "resources": {"limits": {"sgx.intel.com/epc": "1Gi"}}}
    ]);
    let pod = admit_intel(&review);
    assert_eq!(pod["metadata"]["annotations"]["sgx.intel.com/epc"], "1Gi");
}

#[test]
fn an_enclave_count_already_in_requests_is_copied_to_limits() {
    let mut review = intel_fixture();
    let c = &mut object(&mut review)["spec"]["containers"][0];
    c["resources"]["requests"]["sgx.intel.com/enclave"] = json!("2");
    let pod = admit_intel(&review);
    let resources = &pod["spec"]["containers"][0]["resources"];
    assert_eq!(resources["limits"]["sgx.intel.com/enclave"], "2");
    assert_eq!(resources["requests"]["sgx.intel.com/enclave"], "2");
}

#[test]
fn a_stale_epc_annotation_is_corrected_and_other_annotations_are_kept() {
    let mut review = intel_fixture();
    annotate(&mut review, "sgx.intel.com/epc", "1Ki");
    annotate(&mut review, "team", "enclaves");
    let pod = admit_intel(&review);
    assert_eq!(
        pod["metadata"]["annotations"],
        json!({
            "sgx.intel.com/epc": "5Mi",
            "team": "enclaves",
            "epc-limit.nri.io/container.sgx-quote-demo": "5242880",
        })
    );
}

#[test]
fn an_unreadable_epc_quantity_is_refused_naming_the_container() {
    for bad in ["5 Mi", "-5Mi", "lots", "100Ei"] {
        let mut review = intel_fixture();
        let c = &mut object(&mut review)["spec"]["containers"][0];
        c["resources"]["limits"]["sgx.intel.com/epc"] = json!(bad);
        for opt_in in [OptIn::IntelEpc, OptIn::PodLabel, OptIn::Namespace] {
            let body = serde_json::to_vec(&review).unwrap();
            let (reply, decision) = Mutator::default().review(&body, opt_in).unwrap();
            assert!(matches!(decision, Decision::Deny(_)), "{bad}: {decision:?}");
            let reply: Value = serde_json::from_slice(&reply).unwrap();
            let response = &reply["response"];
            assert_eq!(response["uid"], review["request"]["uid"]);
            assert_eq!(response["allowed"], false);
            assert!(response.get("patch").is_none());
            assert_eq!(response["status"]["code"], 403);
            let message = response["status"]["message"].as_str().unwrap();
            assert!(
                message.contains("container \"sgx-quote-demo\"")
                    && message.contains("sgx.intel.com/epc")
                    && message.contains(bad),
                "{message}"
            );
        }
    }
}

#[test]
fn a_pod_without_intel_epc_is_left_alone_by_the_intel_entry() {
    let mut review = intel_fixture();
    object(&mut review)["spec"]["containers"][0]["resources"] =
        json!({"limits": {"kubernetes.azure.com/sgx_epc_mem_in_MiB": "5"}});
    annotate(&mut review, "sgx.intel.com/quote-provider", "aesmd");
    let (pod, decision, _) = admit(&Mutator::default(), &review, OptIn::IntelEpc);
    assert_eq!(decision, Decision::Skip(Skip::NotOptedIn));
    assert_eq!(pod, review["request"]["object"]);
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `examples/` and `deploy/`: the example manifests validate and do what they say, and the
//! Dockerfiles have the structure the images need (stages, non-root users, copied paths that exist
//! in the repository or are the build outputs the scripts produce). No image is built here.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use addon::admission::{Decision, Mutator, OptIn, Skip};
use addon::names::DEFAULT_IMAGE;
use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every YAML document of a file.
fn yaml_docs(path: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(&read(path))
        .map(|doc| serde_json::to_value(serde_norway::Value::deserialize(doc).unwrap()).unwrap())
        .collect()
}

fn yaml(path: &str) -> Value {
    let value: serde_norway::Value = serde_norway::from_str(&read(path)).unwrap();
    serde_json::to_value(value).unwrap()
}

fn assert_executable(path: &str) {
    let mode = std::fs::metadata(repo().join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .permissions()
        .mode();
    assert!(mode & 0o111 != 0, "{path} must be executable");
}

/// The example manifests and how many objects each holds.
const EXAMPLES: [(&str, usize); 6] = [
    ("examples/sgx-test-job.yaml", 1),
    ("examples/sgx-test-job-simulated.yaml", 1),
    ("examples/sgx-app-deployment.yaml", 1),
    ("examples/sgx-intel-style-job-simulated.yaml", 1),
    ("examples/sgx-dra-job-simulated.yaml", 2),
    ("examples/sgx-dra-claim-tcb-up-to-date.yaml", 1),
];

#[test]
fn examples_validate_strictly() {
    let output = Command::new("kubernetes-validate")
        .args(["--strict", "-k", "1.37.0"])
        .args(EXAMPLES.map(|(path, _)| repo().join(path)))
        .output()
        .expect("kubernetes-validate must be installed: pip install kubernetes-validate==1.37.0");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (path, objects) in EXAMPLES {
        let passed = format!("{path} passed for resource");
        assert_eq!(
            stdout.matches(&passed).count(),
            objects,
            "{path}:\n{stdout}"
        );
    }
}

fn pod_of(template: &Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": template["metadata"], "spec": template["spec"]})
}

#[test]
fn the_aks_sample_job_is_valid_and_already_wired() {
    let job = yaml("examples/sgx-test-job.yaml");
    assert_eq!(job["metadata"]["name"], "sgx-test");
    let spec = &job["spec"]["template"]["spec"];
    let container = &spec["containers"][0];
    assert_eq!(
        container["env"][0],
        json!({"name": "SGX_AESM_ADDR", "value": "1"}),
        "the value must be the string \"1\""
    );
    assert_eq!(
        container["resources"]["limits"]["kubernetes.azure.com/sgx_epc_mem_in_MiB"],
        10
    );
    assert_eq!(spec["volumes"][0]["hostPath"]["path"], "/var/run/aesmd");
    assert_eq!(container["volumeMounts"][0]["mountPath"], "/var/run/aesmd");
    // The API server sends quantities as strings; the webhook must see nothing left to add.
    let mut pod = pod_of(&job["spec"]["template"]);
    pod["spec"]["containers"][0]["resources"]["limits"]["kubernetes.azure.com/sgx_epc_mem_in_MiB"] =
        json!("10");
    assert_eq!(
        Mutator::default().decide(&pod, OptIn::Namespace),
        Decision::Skip(Skip::AlreadyWired)
    );
}

#[test]
fn the_simulated_twin_quotes_through_the_node_quote_helper_and_prints_the_result() {
    let job = yaml("examples/sgx-test-job-simulated.yaml");
    let spec = &job["spec"]["template"]["spec"];
    let quote = &spec["initContainers"][0];
    assert_eq!(
        quote["image"], DEFAULT_IMAGE,
        "the example uses the released image"
    );
    let args: Vec<&str> = quote["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "quote");
    let flag = |name: &str| args[args.iter().position(|a| *a == name).unwrap() + 1];
    assert_eq!(flag("--socket"), "/var/run/aesmd/aesm.socket");
    assert_eq!(flag("--report-data").len(), 64);
    assert!(hex::decode(flag("--report-data")).is_ok());
    let out = flag("--out");
    assert!(
        quote["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["mountPath"] == "/var/run/aesmd")
    );
    assert!(
        spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["hostPath"]["path"] == "/var/run/aesmd")
    );
    // The quote is printed base64-encoded, then decoded by `confcom inspect`.
    let printer = &spec["initContainers"][1];
    assert!(
        printer["command"][2]
            .as_str()
            .unwrap()
            .contains(&format!("base64 -w0 {out}"))
    );
    let inspect = &spec["containers"][0];
    assert_eq!(inspect["image"], DEFAULT_IMAGE);
    assert_eq!(inspect["args"], json!(["inspect", out]));
}

#[test]
fn the_long_running_deployment_is_wired_by_the_webhook() {
    let deployment = yaml("examples/sgx-app-deployment.yaml");
    let template = &deployment["spec"]["template"];
    assert_eq!(
        template["metadata"]["labels"]["confcom.sgx/quote-helper"],
        "true"
    );
    let limits = &template["spec"]["containers"][0]["resources"]["limits"];
    assert!(
        limits
            .get("kubernetes.azure.com/sgx_epc_mem_in_MiB")
            .is_some()
    );
    let Decision::Patch(ops) = Mutator::default().decide(&pod_of(template), OptIn::PodLabel) else {
        panic!("the webhook must wire the example Deployment's pods");
    };
    let paths: Vec<&str> = ops.iter().map(|op| op.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/spec/volumes/-",
            "/spec/containers/0/env/-",
            "/spec/containers/0/volumeMounts/-"
        ]
    );
}

#[test]
fn the_intel_style_job_is_given_the_enclave_device_and_the_quote_helper_by_the_webhook() {
    let job = yaml("examples/sgx-intel-style-job-simulated.yaml");
    let template = &job["spec"]["template"];
    let pod = pod_of(template);
    // Written Intel's way: no confcom label, nothing of the node's plumbing.
    assert!(template["metadata"]["labels"]["confcom.sgx/quote-helper"].is_null());
    for c in pod["spec"]["initContainers"].as_array().unwrap() {
        assert!(c["env"].is_null(), "{c}");
    }
    assert!(
        pod["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["hostPath"].is_null())
    );
    let Decision::Patch(ops) = Mutator::default().decide(&pod, OptIn::IntelEpc) else {
        panic!("the webhook must mutate the Intel-style Job's pods");
    };
    let patch: json_patch::Patch =
        serde_json::from_value(serde_json::to_value(&ops).unwrap()).unwrap();
    let mut mutated = pod.clone();
    json_patch::patch(&mut mutated, &patch).unwrap();
    let quote = &mutated["spec"]["initContainers"][0];
    assert_eq!(quote["resources"]["limits"]["sgx.intel.com/enclave"], "1");
    assert_eq!(quote["env"][0]["name"], "SGX_AESM_ADDR");
    assert!(
        quote["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["mountPath"] == "/var/run/aesmd")
    );
    assert_eq!(
        mutated["metadata"]["annotations"]["sgx.intel.com/epc"],
        "5Mi"
    );
    // The container without EPC is left alone.
    assert_eq!(mutated["spec"]["containers"], pod["spec"]["containers"]);
}

/// One Dockerfile instruction: keyword (upper case) and its arguments, continuation lines joined.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

#[derive(Debug)]
struct Stage {
    base: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

impl Stage {
    fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.instructions
            .iter()
            .filter(move |i| i.keyword == keyword)
            .map(|i| i.args.as_str())
    }
}

fn parse_dockerfile(text: &str) -> Vec<Stage> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            logical.push(std::mem::take(&mut current));
        }
    }
    assert!(current.is_empty(), "dangling continuation line");
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical {
        let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let keyword = keyword.to_ascii_uppercase();
        let args = args.trim().to_owned();
        if keyword == "FROM" {
            let words: Vec<&str> = args.split_whitespace().collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
                [_] => None,
                other => panic!("unexpected FROM {other:?}"),
            };
            stages.push(Stage {
                base: words[0].to_owned(),
                name,
                instructions: Vec::new(),
            });
        } else if keyword != "ARG" || !stages.is_empty() {
            stages
                .last_mut()
                .unwrap_or_else(|| panic!("{keyword} before the first FROM"))
                .instructions
                .push(Instruction { keyword, args });
        }
    }
    stages
}

/// `COPY [--from=STAGE] SRC... DST` → (from, sources, destination).
fn copies(stage: &Stage) -> Vec<(Option<String>, Vec<String>, String)> {
    stage
        .all("COPY")
        .map(|args| {
            let mut words: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
            let from = words
                .iter()
                .position(|w| w.starts_with("--from="))
                .map(|i| words.remove(i)["--from=".len()..].to_owned());
            assert!(
                words.iter().all(|w| !w.starts_with("--")),
                "unexpected COPY flag in {args}"
            );
            let dest = words.pop().unwrap();
            (from, words, dest)
        })
        .collect()
}

fn entrypoint(stage: &Stage) -> Vec<String> {
    let raw = stage.all("ENTRYPOINT").last().unwrap();
    serde_json::from_str(raw).unwrap_or_else(|e| panic!("ENTRYPOINT must be exec form: {raw}: {e}"))
}

fn assert_non_root_user(stage: &Stage, what: &str) {
    let user = stage
        .all("USER")
        .last()
        .unwrap_or_else(|| panic!("{what}: no USER"));
    let uid = user.split(':').next().unwrap();
    let uid: u32 = uid
        .parse()
        .unwrap_or_else(|_| panic!("{what}: USER {user} must be numeric (runAsNonRoot checks it)"));
    assert!(uid > 0, "{what}: USER {user} is root");
}

/// Checks COPY sources: `--from` must name an earlier stage; context paths must exist.
fn assert_copies_resolve(stages: &[Stage], file: &str) {
    for (index, stage) in stages.iter().enumerate() {
        for (from, sources, _) in copies(stage) {
            match from {
                Some(from) => assert!(
                    stages[..index]
                        .iter()
                        .any(|s| s.name.as_deref() == Some(&from)),
                    "{file}: COPY --from={from} names no earlier stage"
                ),
                None => {
                    for source in sources {
                        assert!(
                            repo().join(&source).exists(),
                            "{file}: COPY source {source} is not in the repository"
                        );
                    }
                }
            }
        }
    }
}

/// The build output that `deploy/build-static.sh` produces, as a path relative to the repository.
fn static_binary_path() -> String {
    let script = read("deploy/build-static.sh");
    let target = script
        .lines()
        .find_map(|l| l.strip_prefix("TARGET="))
        .expect("TARGET= in build-static.sh");
    assert_eq!(target, "x86_64-unknown-linux-gnu");
    assert!(script.contains("-C target-feature=+crt-static"));
    assert!(script.contains("--target \"${TARGET}\""));
    assert!(script.contains("TARGET_DIR=\"${CARGO_TARGET_DIR:-target}\""));
    assert!(script.contains("BIN=\"${TARGET_DIR}/${TARGET}/release/confcom\""));
    assert!(script.contains("deploy/check-static.sh \"${BIN}\""));
    format!("target/{target}/release/confcom")
}

fn stage<'a>(stages: &'a [Stage], name: &str) -> &'a Stage {
    stages
        .iter()
        .find(|s| s.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no stage {name}"))
}

#[test]
fn confcom_dockerfile_structure() {
    let file = "deploy/Dockerfile";
    let stages = parse_dockerfile(&read(file));
    assert_copies_resolve(&stages, file);
    assert!(
        !read(file).contains("CARGO_TARGET_DIR"),
        "the build output must land in the default target/ directory the COPY names"
    );
    let names: Vec<&str> = stages.iter().filter_map(|s| s.name.as_deref()).collect();
    assert_eq!(names, ["build", "build-dynamic", "dcap", "confcom"]);

    // The build stage runs the static build script over the whole context.
    let build = stage(&stages, "build");
    let workdir = build.all("WORKDIR").last().unwrap().to_owned();
    assert!(build.all("COPY").any(|a| a == ". ."));
    assert!(build.all("RUN").any(|r| r == "deploy/build-static.sh"));
    assert_executable("deploy/build-static.sh");
    assert_executable("deploy/check-static.sh");

    // The default image is the last stage: an empty base with the static binary, non-root.
    let last = stages.last().unwrap();
    assert_eq!(last.name.as_deref(), Some("confcom"));
    assert_eq!(last.base, "scratch", "minimal final image");
    assert_non_root_user(last, "confcom stage");
    let binary = format!("{workdir}/{}", static_binary_path());
    let copied = copies(last);
    let (from, sources, dest) = copied.iter().find(|(from, _, _)| from.is_some()).unwrap();
    assert_eq!(from.as_deref(), Some("build"));
    assert_eq!(
        sources,
        &[binary],
        "the final image copies the static build output"
    );
    assert_eq!(entrypoint(last), std::slice::from_ref(dest));
    assert!(last.all("RUN").next().is_none(), "scratch has no shell");
    let passwd = read("deploy/passwd");
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("nonroot:x:65532:65532:"))
    );

    // The hardware quote helper image: Intel's DCAP library, a dynamically linked confcom, and our
    // quote provider library under the name Intel's library dlopen()s.
    let dcap = stage(&stages, "dcap");
    assert_non_root_user(dcap, "dcap stage");
    let installs = dcap.all("RUN").collect::<Vec<_>>().join(" ");
    assert!(installs.contains("libsgx-dcap-ql"));
    assert!(
        !installs.contains("libsgx-dcap-default-qpl"),
        "Intel's quote provider is replaced by ours"
    );
    assert!(installs.contains("rm -f /usr/lib/x86_64-linux-gnu/libdcap_quoteprov.so*"));
    let build_dynamic = stage(&stages, "build-dynamic");
    let dynamic_workdir = build_dynamic.all("WORKDIR").last().unwrap();
    assert!(
        build_dynamic
            .all("RUN")
            .any(|r| r.contains("-p confcom") && r.contains("-p quote-provider"))
    );
    let dcap_copies = copies(dcap);
    let (from, sources, dest) = &dcap_copies[0];
    assert_eq!(from.as_deref(), Some("build-dynamic"));
    assert_eq!(
        sources,
        &[format!("{dynamic_workdir}/target/release/confcom")]
    );
    assert_eq!(entrypoint(dcap), std::slice::from_ref(dest));
    let (from, sources, dest) = &dcap_copies[1];
    assert_eq!(from.as_deref(), Some("build-dynamic"));
    // The cdylib's file name follows the crate's [lib] name; its soname is set by build.rs.
    let manifest = read("crates/quote-provider/Cargo.toml");
    assert!(manifest.contains("name = \"dcap_quoteprov\""));
    assert_eq!(
        sources,
        &[format!(
            "{dynamic_workdir}/target/release/libdcap_quoteprov.so"
        )]
    );
    assert_eq!(dest, "/usr/lib/x86_64-linux-gnu/libdcap_quoteprov.so.1");

    let ignore = read("deploy/Dockerfile.dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target/"));
}

#[test]
fn app_dockerfile_carries_our_quote_ex_library() {
    let file = "examples/app/Dockerfile";
    let stages = parse_dockerfile(&read(file));
    assert_copies_resolve(&stages, file);
    assert!(stages.len() >= 2, "multi-stage");
    let build = stage(&stages, "build");
    let workdir = build.all("WORKDIR").last().unwrap();
    let runs = build.all("RUN").collect::<Vec<_>>().join(" ");
    assert!(runs.contains("cargo build --release --locked -p quote-ex"));
    assert!(runs.contains("deploy/build-static.sh"));

    let app = stages.last().unwrap();
    assert_non_root_user(app, "app stage");
    let copied = copies(app);
    let lib = copied
        .iter()
        .find(|(_, sources, _)| sources.iter().any(|s| s.ends_with("libsgx_quote_ex.so")))
        .expect("the app image copies libsgx_quote_ex.so");
    assert_eq!(lib.0.as_deref(), Some("build"));
    assert_eq!(
        lib.1,
        [format!("{workdir}/target/release/libsgx_quote_ex.so")]
    );
    assert_eq!(
        lib.2, "/usr/lib/x86_64-linux-gnu/libsgx_quote_ex.so.1",
        "installed under the soname Intel's DCAP library dlopen()s"
    );
    assert!(app.all("RUN").any(|r| r == "ldconfig"));
    let binary = copied
        .iter()
        .find(|(_, sources, _)| sources.iter().any(|s| s.ends_with("/release/confcom")))
        .unwrap();
    assert_eq!(binary.1, [format!("{workdir}/{}", static_binary_path())]);
    let entry = entrypoint(app);
    let script = copied
        .iter()
        .find(|(_, _, dest)| *dest == entry[0])
        .unwrap();
    assert_eq!(script.1, ["examples/app/attest-loop.sh"]);
    assert_executable("examples/app/attest-loop.sh");

    // When the library crate is present, it must produce the file the Dockerfile copies.
    let quote_ex = repo().join("crates/quote-ex/Cargo.toml");
    if quote_ex.exists() {
        let manifest = std::fs::read_to_string(quote_ex).unwrap();
        assert!(manifest.contains("cdylib"), "quote-ex must build a cdylib");
        assert!(
            manifest.contains("name = \"sgx_quote_ex\""),
            "quote-ex's [lib] name must be sgx_quote_ex (→ libsgx_quote_ex.so)"
        );
    }
}

#[test]
fn check_static_tells_static_from_dynamic_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("hello.rs");
    std::fs::write(&source, "fn main() { println!(\"hello\"); }\n").unwrap();
    let build = |name: &str, static_: bool| {
        let out = dir.path().join(name);
        let mut cmd = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned()));
        cmd.arg(&source)
            .arg("-o")
            .arg(&out)
            .args(["-C", "opt-level=0"]);
        if static_ {
            cmd.args([
                "-C",
                "target-feature=+crt-static",
                "--target",
                "x86_64-unknown-linux-gnu",
            ]);
        }
        let status = cmd.status().unwrap();
        assert!(status.success());
        out
    };
    let check = |bin: &Path| {
        Command::new(repo().join("deploy/check-static.sh"))
            .arg(bin)
            .output()
            .unwrap()
    };
    let static_bin = build("hello-static", true);
    let dynamic_bin = build("hello-dynamic", false);
    let ok = check(&static_bin);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = check(&dynamic_bin);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("dynamically linked"));
    assert!(
        !check(&source).status.success(),
        "a text file is not an ELF binary"
    );
}

#[test]
fn the_dra_twin_claims_epc_from_the_quote_helper_class_and_quotes_as_the_simulated_job_does() {
    let docs = yaml_docs("examples/sgx-dra-job-simulated.yaml");
    let [template, job] = &docs[..] else {
        panic!("a ResourceClaimTemplate and a Job");
    };
    assert_eq!(template["kind"], "ResourceClaimTemplate");
    let request = &template["spec"]["spec"]["devices"]["requests"][0];
    assert_eq!(
        request["exactly"]["deviceClassName"],
        addon::names::DRA_CLASS_QUOTE_HELPER
    );
    assert_eq!(
        request["exactly"]["capacity"]["requests"],
        json!({ addon::names::DRA_CAPACITY_EPC: "5Mi" })
    );
    assert_eq!(job["kind"], "Job");
    let spec = &job["spec"]["template"]["spec"];
    let claims = spec["resourceClaims"].as_array().unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(
        claims[0]["resourceClaimTemplateName"],
        template["metadata"]["name"]
    );
    let quote = &spec["initContainers"][0];
    assert_eq!(
        quote["resources"]["claims"],
        json!([{"name": claims[0]["name"]}])
    );
    // The claim's CDI devices bring the socket and SGX_AESM_ADDR; nothing of it in the pod.
    assert!(quote.get("env").is_none());
    assert!(
        spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v.get("hostPath").is_none())
    );
    for container in spec["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(spec["containers"].as_array().unwrap())
    {
        let limits = container["resources"]["limits"].as_object().unwrap();
        assert!(
            limits.keys().all(|k| k == "cpu" || k == "memory"),
            "no device-plugin resources"
        );
    }
    // The same quote, printing and inspection as the device-plugin twin.
    let twin = yaml("examples/sgx-test-job-simulated.yaml");
    let twin_spec = &twin["spec"]["template"]["spec"];
    assert_eq!(quote["args"], twin_spec["initContainers"][0]["args"]);
    assert_eq!(quote["image"], DEFAULT_IMAGE);
    assert_eq!(
        spec["initContainers"][1]["command"],
        twin_spec["initContainers"][1]["command"]
    );
    assert_eq!(
        spec["containers"][0]["args"],
        twin_spec["containers"][0]["args"]
    );
}

#[test]
fn the_tcb_claim_example_selects_only_up_to_date_platforms() {
    let template = yaml("examples/sgx-dra-claim-tcb-up-to-date.yaml");
    let exactly = &template["spec"]["spec"]["devices"]["requests"][0]["exactly"];
    assert_eq!(
        exactly["deviceClassName"],
        addon::names::DRA_CLASS_QUOTE_HELPER
    );
    let expression = exactly["selectors"][0]["cel"]["expression"]
        .as_str()
        .unwrap();
    assert_eq!(expression, addon::render::dra::tcb_up_to_date_selector());
    let program = cel::Program::compile(expression).unwrap();
    let selects = |attributes: Value| {
        let driver = addon::names::DRA_DRIVER;
        let device = json!({
            "driver": driver,
            "attributes": { driver: attributes },
            "capacity": { driver: { "epc": "256Mi" } },
        });
        let mut context = cel::Context::default();
        context.add_variable("device", device).unwrap();
        program.execute(&context).unwrap() == cel::Value::Bool(true)
    };
    assert!(selects(json!({"tcbStatus": "UpToDate", "sgx2": true})));
    assert!(!selects(json!({"tcbStatus": "OutOfDate"})));
    assert!(!selects(json!({"tcbStatus": "SWHardeningNeeded"})));
    assert!(!selects(json!({"sgx2": true})), "not attested yet");
}

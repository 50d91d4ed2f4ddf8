//! The set-up step of `cargo xtask test`, run as on a fresh machine: a PATH that holds Python and
//! nothing else, so neither `protoc` nor `kubernetes-validate` can be found, and an empty tools
//! directory. The step must bring both back, say so, and install nothing on a second run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn xtask(tools: &Path, path: &Path, task: &str) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([task, "--tools-dir"])
        .arg(tools)
        .env("PATH", path)
        .env_remove("PROTOC")
        .output()
        .expect("run xtask");
    assert!(
        output.status.success(),
        "xtask {task} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The interpreter behind whatever `python3` is on this machine's PATH (pyenv shims included).
fn real_python() -> PathBuf {
    let output = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is needed to install kubernetes-validate");
    assert!(output.status.success());
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

fn version(program: &Path, stripped_path: &Path) -> String {
    let output = Command::new(program)
        .arg("--version")
        .env("PATH", stripped_path)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    assert!(
        output.status.success(),
        "{} --version failed",
        program.display()
    );
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

#[test]
fn setup_on_a_path_without_the_prerequisites_brings_them_back_once() {
    let dir = tempfile::tempdir().unwrap();
    let path_dir = dir.path().join("path");
    std::fs::create_dir(&path_dir).unwrap();
    std::os::unix::fs::symlink(real_python(), path_dir.join("python3")).unwrap();
    let tools = dir.path().join("tools");

    // Nothing the tests need is on this PATH.
    for tool in ["protoc", "kubernetes-validate"] {
        assert!(
            Command::new(tool).env("PATH", &path_dir).output().is_err(),
            "{tool} must not be found on the stripped PATH"
        );
    }

    let first = xtask(&tools, &path_dir, "setup");
    assert_eq!(String::from_utf8_lossy(&first.stdout), "");
    let said = String::from_utf8_lossy(&first.stderr);
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 2, "one line per installation: {said}");
    assert!(lines[0].contains("protoc-bin-vendored"), "{said}");
    assert!(
        lines[1].contains("installing kubernetes-validate==")
            && lines[1].contains("ci-requirements.txt"),
        "{said}"
    );

    // Both run from the tools' bin directory, with nothing else on PATH.
    let protoc = version(&tools.join("bin/protoc"), &path_dir);
    assert!(protoc.starts_with("libprotoc "), "{protoc}");
    let pinned = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ci-requirements.txt"
    ))
    .unwrap();
    let pin = pinned
        .lines()
        .find_map(|l| l.trim().strip_prefix("kubernetes-validate=="))
        .expect("kubernetes-validate is pinned");
    let validate = version(&tools.join("bin/kubernetes-validate"), &path_dir);
    assert!(
        validate.contains(pin),
        "installed {validate:?}, pinned {pin}"
    );

    // A second run finds everything in place: it says nothing and leaves the environment alone.
    let venv_config = tools.join("venv/pyvenv.cfg");
    let before = std::fs::metadata(&venv_config).unwrap().modified().unwrap();
    let second = xtask(&tools, &path_dir, "setup");
    assert_eq!(
        String::from_utf8_lossy(&second.stderr),
        "",
        "second run installed again"
    );
    assert_eq!(
        std::fs::metadata(&venv_config).unwrap().modified().unwrap(),
        before
    );

    // `env` hands the tools to a shell: the tools' bin first on PATH, PROTOC naming the protoc.
    let env = String::from_utf8(xtask(&tools, &path_dir, "env").stdout).unwrap();
    let bin = tools.join("bin");
    assert!(
        env.contains(&format!(
            "export PATH='{}:{}'",
            bin.display(),
            path_dir.display()
        )),
        "{env}"
    );
    assert!(
        env.contains(&format!("export PROTOC='{}/protoc'", bin.display())),
        "{env}"
    );
}

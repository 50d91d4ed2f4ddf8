//! `cargo xtask`: project tasks that need more than cargo.
//!
//! - `cargo xtask test [ARGS…]`: provides what the test suite needs and runs
//!   `cargo test --workspace [ARGS…]` with it (`cargo test [ARGS…]` when they name packages with
//!   `-p`). On a fresh machine with Rust, Python 3 and a C compiler
//!   this is the one command that runs every test.
//! - `cargo xtask setup [--tools-dir DIR]`: only the provisioning step.
//! - `cargo xtask env [--tools-dir DIR]`: provisions, then prints `export` lines for a shell
//!   (`eval "$(cargo xtask env)"`), after which plain cargo commands find the tools too.
//!
//! What the tests need beyond Rust:
//! - `protoc`: the build script of the interop dev-dependency `aesm-client` runs `protoc` from PATH.
//!   When none is on PATH, the one shipped inside the `protoc-bin-vendored` crate (a registry
//!   package, no root needed) is linked into `<tools>/bin`, and `PROTOC` names it as well.
//! - `kubernetes-validate`: the manifest tests validate every rendered object with it. When none
//!   is on PATH, the version pinned in `ci-requirements.txt` is installed from PyPI into a
//!   project-local virtual environment, `<tools>/venv`, and linked into `<tools>/bin`.
//!
//! `<tools>` is `target/test-tools` (under `CARGO_TARGET_DIR` when that is set). Each step says in
//! one line (on standard error) what it installs; a second run finds everything in place and installs nothing.

use std::env;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const USAGE: &str = "usage: cargo xtask test [CARGO TEST ARGS…]
       cargo xtask setup [--tools-dir DIR]
       cargo xtask env [--tools-dir DIR]";

/// The pinned Python requirements of the tests, relative to the workspace root.
const REQUIREMENTS: &str = "ci-requirements.txt";
/// Written into the virtual environment once its packages are installed: the requirements it
/// holds, so that a changed pin reinstalls and an unchanged one does not.
const STAMP: &str = "confcom-requirements.txt";

fn main() -> ExitCode {
    let mut args: Vec<OsString> = env::args_os().skip(1).collect();
    if args.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let task = args.remove(0);
    let result = match task.to_str() {
        Some("test") => test(args),
        Some("setup") => tools_dir_arg(args).and_then(|dir| setup(&dir).map(|_| ExitCode::SUCCESS)),
        Some("env") => tools_dir_arg(args).and_then(|dir| print_env(&dir)),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(format!("unknown task {task:?}\n{USAGE}")),
    };
    result.unwrap_or_else(|message| {
        eprintln!("cargo xtask: {message}");
        ExitCode::FAILURE
    })
}

/// The workspace root (the xtask crate sits directly below it).
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

fn default_tools_dir() -> PathBuf {
    // As cargo reads it: a relative CARGO_TARGET_DIR is relative to the current directory.
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                env::current_dir()
                    .unwrap_or_else(|_| workspace_root())
                    .join(dir)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("test-tools")
}

fn tools_dir_arg(args: Vec<OsString>) -> Result<PathBuf, String> {
    match args.as_slice() {
        [] => Ok(default_tools_dir()),
        [flag, dir] if flag == "--tools-dir" => Ok(PathBuf::from(dir)),
        _ => Err(format!("unexpected arguments {args:?}\n{USAGE}")),
    }
}

/// What [`setup`] provided.
struct Provided {
    /// `<tools>/bin`, to put first on PATH.
    bin: PathBuf,
    /// The protoc to name in `PROTOC`, when it was not on PATH.
    protoc: Option<PathBuf>,
}

impl Provided {
    /// PATH with `<tools>/bin` first.
    fn path(&self) -> Result<OsString, String> {
        let mut dirs = vec![self.bin.clone()];
        if let Some(path) = env::var_os("PATH") {
            dirs.extend(env::split_paths(&path));
        }
        env::join_paths(dirs).map_err(|e| format!("cannot build PATH: {e}"))
    }
}

fn test(args: Vec<OsString>) -> Result<ExitCode, String> {
    let provided = setup(&default_tools_dir())?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(cargo);
    // `--workspace` would override packages the caller names.
    let names_packages = args
        .iter()
        .map(|a| a.to_string_lossy())
        .take_while(|a| a != "--")
        .any(|a| a == "--package" || a.starts_with("--package=") || a.starts_with("-p"));
    command.current_dir(workspace_root()).arg("test");
    if !names_packages {
        command.arg("--workspace");
    }
    command.args(args).env("PATH", provided.path()?);
    if let Some(protoc) = &provided.protoc {
        command.env("PROTOC", protoc);
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

fn print_env(tools: &Path) -> Result<ExitCode, String> {
    let provided = setup(tools)?;
    let path = provided.path()?;
    println!("export PATH={}", shell_quote(&path));
    if let Some(protoc) = &provided.protoc {
        println!("export PROTOC={}", shell_quote(protoc.as_os_str()));
    }
    Ok(ExitCode::SUCCESS)
}

fn shell_quote(value: &OsStr) -> String {
    format!("'{}'", value.to_string_lossy().replace('\'', r"'\''"))
}

/// Makes sure `protoc` and `kubernetes-validate` can be run, installing what is missing under
/// `tools`.
fn setup(tools: &Path) -> Result<Provided, String> {
    let bin = tools.join("bin");
    fs::create_dir_all(&bin).map_err(|e| format!("cannot create {}: {e}", bin.display()))?;
    let path = env::var_os("PATH").unwrap_or_default();
    let protoc = provide_protoc(&bin, &path)?;
    provide_kubernetes_validate(tools, &bin, &path)?;
    Ok(Provided { bin, protoc })
}

/// The first executable file called `name` in the directories of `path`.
fn find_on_path(name: &str, path: &OsStr) -> Option<PathBuf> {
    env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether `program ARG` runs and exits 0.
fn runs(program: &Path, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Points `link` at `target`, replacing whatever was there.
fn link(target: &Path, link: &Path) -> Result<(), String> {
    match fs::remove_file(link) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot replace {}: {e}", link.display())),
    }
    std::os::unix::fs::symlink(target, link).map_err(|e| {
        format!(
            "cannot link {} to {}: {e}",
            link.display(),
            target.display()
        )
    })
}

fn provide_protoc(bin: &Path, path: &OsStr) -> Result<Option<PathBuf>, String> {
    let ours = bin.join("protoc");
    if let Some(found) = find_on_path("protoc", path)
        && found != ours
    {
        return Ok(None);
    }
    let vendored = protoc_bin_vendored::protoc_bin_path().map_err(|e| {
        format!("protoc is not on PATH and no vendored protoc fits this machine: {e}")
    })?;
    if fs::read_link(&ours).is_ok_and(|target| target == vendored) && runs(&ours, "--version") {
        return Ok(Some(ours));
    }
    eprintln!(
        "cargo xtask: protoc not on PATH: providing the protoc of the protoc-bin-vendored crate as {}",
        ours.display()
    );
    link(&vendored, &ours)?;
    if !runs(&ours, "--version") {
        return Err(format!("{} does not run", vendored.display()));
    }
    Ok(Some(ours))
}

fn provide_kubernetes_validate(tools: &Path, bin: &Path, path: &OsStr) -> Result<(), String> {
    let ours = bin.join("kubernetes-validate");
    if let Some(found) = find_on_path("kubernetes-validate", path)
        && found != ours
    {
        return Ok(());
    }
    let requirements_file = workspace_root().join(REQUIREMENTS);
    let requirements = fs::read_to_string(&requirements_file)
        .map_err(|e| format!("cannot read {}: {e}", requirements_file.display()))?;
    let venv = tools.join("venv");
    let stamp = venv.join(STAMP);
    let installed = venv.join("bin/kubernetes-validate");
    if fs::read_to_string(&stamp).is_ok_and(|held| held == requirements)
        && runs(&installed, "--version")
    {
        if fs::read_link(&ours).is_ok_and(|target| target == installed) {
            return Ok(());
        }
        return link(&installed, &ours);
    }
    let pin = requirements
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("kubernetes-validate"))
        .unwrap_or("kubernetes-validate");
    eprintln!(
        "cargo xtask: kubernetes-validate not on PATH: installing {pin} (pinned in {REQUIREMENTS}) from PyPI into {}",
        venv.display()
    );
    let python = find_on_path("python3", path).ok_or_else(|| {
        "python3 is needed to install kubernetes-validate and is not on PATH \
         (Debian: apt-get install python3 python3-venv)"
            .to_string()
    })?;
    // A stamp from an earlier, different pin goes first, so that a failed install is retried.
    let _ = fs::remove_file(&stamp);
    run_quietly(
        Command::new(&python).args(["-m", "venv"]).arg(&venv),
        "python3 -m venv (Debian: apt-get install python3-venv)",
    )?;
    run_quietly(
        Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements_file),
        "pip install -r ci-requirements.txt",
    )?;
    if !runs(&installed, "--version") {
        return Err(format!(
            "{} does not run after installing",
            installed.display()
        ));
    }
    fs::write(&stamp, &requirements)
        .map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    link(&installed, &ours)
}

/// Runs `command`; on failure, its output and `what` make up the error.
fn run_quietly(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let mut message = format!("{what} failed ({})", output.status);
    for stream in [&output.stdout, &output.stderr] {
        let text = String::from_utf8_lossy(stream);
        let text = text.trim();
        if !text.is_empty() {
            message.push_str(": ");
            message.push_str(text);
        }
    }
    Err(message)
}

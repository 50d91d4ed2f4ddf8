//! Building and running the C test program `tests/c/quote_ex_client.c` against the built library.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::built_library;

/// The two builds of the C program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loading {
    Linked,
    Dlopen,
}

pub const BOTH: [Loading; 2] = [Loading::Linked, Loading::Dlopen];

pub struct Build {
    /// Holds `libsgx_quote_ex.so.1` (a symlink to the built library) for `LD_LIBRARY_PATH`.
    lib_dir: PathBuf,
    linked: PathBuf,
    dlopen: PathBuf,
}

/// Compiles the C program once per test process, into `target/<profile>/quote-ex-c/`.
pub fn build() -> &'static Build {
    static BUILD: OnceLock<Build> = OnceLock::new();
    BUILD.get_or_init(|| {
        let library = built_library();
        let deps = library.parent().unwrap();
        let dir = deps.parent().unwrap().join("quote-ex-c");
        std::fs::create_dir_all(&dir).unwrap();
        // Test processes may run in parallel (one per test binary, or per test with some
        // runners): each writes under a private name and renames into place, which is atomic.
        let private = |name: &str| dir.join(format!(".{name}.{}", std::process::id()));
        let soname_link = dir.join("libsgx_quote_ex.so.1");
        let _ = std::fs::remove_file(private("libsgx_quote_ex.so.1"));
        std::os::unix::fs::symlink(&library, private("libsgx_quote_ex.so.1")).unwrap();
        std::fs::rename(private("libsgx_quote_ex.so.1"), &soname_link).unwrap();

        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let source = crate_dir.join("tests/c/quote_ex_client.c");
        let include = crate_dir.join("include");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let compile = |out: &Path, extra: &[&str]| {
            let name = out.file_name().unwrap().to_str().unwrap();
            let output = Command::new(&cc)
                .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-pthread"])
                .arg("-I")
                .arg(&include)
                .arg(&source)
                .arg("-o")
                .arg(private(name))
                .args(extra)
                .output()
                .unwrap_or_else(|e| panic!("running {cc}: {e}"));
            assert!(
                output.status.success(),
                "{cc} failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            std::fs::rename(private(name), out).unwrap();
        };
        let linked = dir.join("quote_ex_client_linked");
        compile(
            &linked,
            &[&format!("-L{}", deps.display()), "-lsgx_quote_ex"],
        );
        let dlopen = dir.join("quote_ex_client_dlopen");
        compile(&dlopen, &["-DUSE_DLOPEN", "-ldl"]);
        Build {
            lib_dir: dir,
            linked,
            dlopen,
        }
    })
}

/// Runs the C program with the library found through `LD_LIBRARY_PATH` only, the socket path and
/// timeout given through the environment, and `SGX_AESM_ADDR` set as apps set it.
pub fn run(loading: Loading, socket: &Path, timeout_ms: Option<u32>, args: &[&str]) -> Output {
    finish(
        command(loading, socket, timeout_ms, args).output().unwrap(),
        args,
    )
}

/// The command [`run`] runs, for callers that set more of the environment or start it early.
/// `CONFCOM_AESM_WAIT_SECS` is left as the caller's environment has it.
pub fn command(loading: Loading, socket: &Path, timeout_ms: Option<u32>, args: &[&str]) -> Command {
    let build = build();
    let exe = match loading {
        Loading::Linked => &build.linked,
        Loading::Dlopen => &build.dlopen,
    };
    let mut command = Command::new(exe);
    command
        .args(args)
        .env("LD_LIBRARY_PATH", &build.lib_dir)
        .env("CONFCOM_AESM_SOCKET", socket)
        .env("SGX_AESM_ADDR", "1")
        .env_remove("CONFCOM_AESM_TIMEOUT_MS")
        .env("CONFCOM_QUOTE_EX_LOG", "1");
    if let Some(ms) = timeout_ms {
        command.env("CONFCOM_AESM_TIMEOUT_MS", ms.to_string());
    }
    command
}

/// Checks that the program ran to its end and returns its output.
pub fn finish(output: Output, args: &[&str]) -> Output {
    assert!(
        output.status.success(),
        "{args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The program's `name key=value ...` lines, by name.
pub fn lines(output: &Output) -> BTreeMap<String, BTreeMap<String, String>> {
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let mut out = BTreeMap::new();
    for line in stdout.lines() {
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else { continue };
        let fields = words
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        out.insert(name.to_owned(), fields);
    }
    out
}

pub fn status(lines: &BTreeMap<String, BTreeMap<String, String>>, name: &str) -> u32 {
    let text = lines
        .get(name)
        .and_then(|l| l.get("status"))
        .unwrap_or_else(|| panic!("no status for {name} in {lines:?}"));
    u32::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}

pub fn field<'a>(
    lines: &'a BTreeMap<String, BTreeMap<String, String>>,
    name: &str,
    key: &str,
) -> &'a str {
    lines
        .get(name)
        .and_then(|l| l.get(key))
        .unwrap_or_else(|| panic!("no {key} for {name} in {lines:?}"))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

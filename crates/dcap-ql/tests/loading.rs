//! Starting the dcap backend: the documented errors for a missing library, missing symbols, a file
//! that is no library and `SGX_AESM_ADDR` in the environment; the load policy and paths set at start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{Fake, SET_POLICY, built_fake, options, short_tempdir};
use dcap_ql::library::REQUIRED_SYMBOLS;
use dcap_ql::{DcapBackend, DcapError, DcapLibrary, DcapOptions, PathType, quote3};

fn start(path: &Path) -> Result<DcapBackend, DcapError> {
    DcapBackend::start(path, options())
}

/// Compiles a shared object exporting `symbols` (each returning 0) with the system C compiler.
fn c_library(dir: &Path, symbols: &[&str]) -> std::path::PathBuf {
    let source = dir.join("partial.c");
    let mut text = String::from("#include <stdint.h>\n");
    for s in symbols {
        text.push_str(&format!("uint32_t {s}(void) {{ return 0; }}\n"));
    }
    std::fs::write(&source, text).unwrap();
    let out = dir.join("libsgx_dcap_ql.so.1");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&out)
        .arg(&source)
        .status()
        .expect("a C compiler (cc) on PATH");
    assert!(status.success());
    out
}

#[test]
fn a_missing_library_is_a_startup_error_naming_it() {
    let dir = short_tempdir();
    let path = dir.path().join("libsgx_dcap_ql.so.1");
    let err = start(&path).unwrap_err();
    assert!(matches!(err, DcapError::LibraryNotLoaded { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("libsgx-dcap-ql"), "{text}");

    // A bare name goes through the loader's search path, where it is not installed here.
    let err = start(Path::new("libsgx_dcap_ql_absent.so.1")).unwrap_err();
    assert!(
        err.to_string().contains("libsgx_dcap_ql_absent.so.1"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_library_is_a_startup_error() {
    let dir = short_tempdir();
    let path = dir.path().join("libsgx_dcap_ql.so.1");
    std::fs::write(&path, b"not an ELF file\n").unwrap();
    let err = start(&path).unwrap_err();
    assert!(matches!(err, DcapError::LibraryNotLoaded { .. }), "{err:?}");
}

#[test]
fn each_missing_symbol_is_a_startup_error_naming_it() {
    let dir = short_tempdir();
    for missing in REQUIRED_SYMBOLS {
        let sub = dir.path().join(missing);
        std::fs::create_dir(&sub).unwrap();
        let present: Vec<&str> = REQUIRED_SYMBOLS
            .iter()
            .copied()
            .filter(|s| *s != missing)
            .collect();
        let path = c_library(&sub, &present);
        let err = start(&path).unwrap_err();
        match &err {
            DcapError::MissingSymbol {
                symbol, path: p, ..
            } => {
                assert_eq!(*symbol, missing);
                assert_eq!(p, &path);
            }
            other => panic!("{missing}: unexpected {other:?}"),
        }
        assert!(err.to_string().contains(missing), "{err}");
    }
    // A library of the right name exporting none of them.
    let sub = dir.path().join("none");
    std::fs::create_dir(&sub).unwrap();
    let err = start(&c_library(&sub, &["unrelated"])).unwrap_err();
    assert!(
        matches!(
            err,
            DcapError::MissingSymbol {
                symbol: "sgx_qe_get_target_info",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn the_fake_loads_through_a_symlink() {
    // The layout of the tests' brief: a `libsgx_dcap_ql.so.1` symlink to the built library.
    let dir = short_tempdir();
    let link = dir.path().join("libsgx_dcap_ql.so.1");
    std::os::unix::fs::symlink(built_fake(), &link).unwrap();
    let backend = start(&link).unwrap();
    assert_eq!(backend.library_path(), link);
    // The fake, like Intel's library through its QE3 logic dependency, has the core init.
    assert!(DcapLibrary::open(&link).unwrap().has_core_init());
}

#[test]
fn a_library_with_only_the_six_functions_starts_without_the_core_init() {
    let dir = short_tempdir();
    let path = c_library(dir.path(), &REQUIRED_SYMBOLS);
    let library = DcapLibrary::open(&path).unwrap();
    assert!(!library.has_core_init());
    start(&path).unwrap();
}

#[test]
fn start_sets_the_persistent_load_policy() {
    let fake = Fake::new();
    assert_eq!(fake.set_policy_directly(1), quote3::SUCCESS);
    assert_eq!(fake.policy(), 1);
    let before = fake.calls(SET_POLICY);
    let _backend = fake.backend();
    assert_eq!(fake.policy(), 0, "SGX_QL_PERSISTENT");
    assert_eq!(fake.calls(SET_POLICY) - before, 1);
    // The library rejects unknown policies itself.
    assert_eq!(
        fake.set_policy_directly(7),
        quote3::UNSUPPORTED_LOADING_POLICY
    );
}

#[test]
fn a_failing_load_policy_is_a_startup_error_with_its_fix() {
    let fake = Fake::new();
    fake.fail(SET_POLICY, quote3::UNSUPPORTED_MODE, 1);
    let err = DcapBackend::start(&fake.library, options()).unwrap_err();
    assert!(matches!(err, DcapError::LoadPolicy { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("SGX_QL_UNSUPPORTED_MODE (0xe03e)"), "{text}");
    assert!(text.contains("unset SGX_AESM_ADDR"), "{text}");
}

#[test]
fn configured_paths_are_given_to_the_library() {
    let fake = Fake::new();
    let qpl = fake.dir.path().join("libdcap_quoteprov.so.1");
    std::fs::write(&qpl, b"").unwrap();
    let ok = DcapOptions {
        paths: vec![(PathType::Qpl, qpl.clone())],
        ..options()
    };
    DcapBackend::start(&fake.library, ok).unwrap();

    let absent = fake.dir.path().join("libsgx_qe3.signed.so.1");
    let bad = DcapOptions {
        paths: vec![(PathType::Qe3, absent.clone())],
        ..options()
    };
    let err = DcapBackend::start(&fake.library, bad).unwrap_err();
    match &err {
        DcapError::SetPath {
            path_type, code, ..
        } => {
            assert_eq!(*path_type, PathType::Qe3);
            assert_eq!(code.code(), quote3::ERROR_INVALID_PARAMETER);
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("SGX_QL_QE3_PATH") && text.contains(&absent.display().to_string()));
}

const CHILD_ENV: &str = "DCAP_QL_TEST_CHILD";
const CHILD_MARKER: &str = "child: SGX_AESM_ADDR refused";

/// Run in a child process with `SGX_AESM_ADDR=1` in its real environment: the backend refuses to
/// start, and the library is never loaded into the process.
#[test]
fn sgx_aesm_addr_in_the_environment_is_refused() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let lib = built_fake();
        let err = start(&lib).unwrap_err();
        assert!(matches!(err, DcapError::OutOfProcessMode { .. }), "{err:?}");
        assert!(err.to_string().contains("unset SGX_AESM_ADDR"), "{err}");
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        assert!(!maps.contains("libfake_dcap_ql"), "the library was loaded");
        println!("{CHILD_MARKER}");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sgx_aesm_addr_in_the_environment_is_refused",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .env("SGX_AESM_ADDR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(CHILD_MARKER), "{stdout}");
}

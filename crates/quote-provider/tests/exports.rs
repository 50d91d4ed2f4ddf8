//! The shared object's dynamic interface: soname `libdcap_quoteprov.so.1` and exactly the quote
//! provider functions exported, nothing Rust-internal that could clash with the host program; and
//! the `NODELETE` flag, so that `dlclose` never unmaps the code of the library's kept thread.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

fn tool(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program} (binutils): {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn exports_exactly_the_quote_provider_functions() {
    let library = common::built_library();
    let listing = tool("nm", &["-D", "--defined-only", library.to_str().unwrap()]);
    let mut symbols: Vec<(String, String)> = listing
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace().rev();
            let name = words.next()?;
            let kind = words.next()?;
            Some((kind.to_owned(), name.to_owned()))
        })
        .collect();
    symbols.sort();
    let expected: Vec<(String, String)> = [
        "sgx_ql_free_qve_identity",
        "sgx_ql_free_quote_config",
        "sgx_ql_free_quote_verification_collateral",
        "sgx_ql_free_root_ca_crl",
        "sgx_ql_get_quote_config",
        "sgx_ql_get_quote_verification_collateral",
        "sgx_ql_get_quote_verification_collateral_with_params",
        "sgx_ql_get_qve_identity",
        "sgx_ql_get_root_ca_crl",
        "sgx_ql_set_logging_callback",
        "sgx_ql_set_logging_function",
        "sgx_qpl_clear_cache",
        "sgx_qpl_global_cleanup",
        "sgx_qpl_global_init",
        "tdx_ql_free_quote_verification_collateral",
        "tdx_ql_get_quote_verification_collateral",
    ]
    .iter()
    .map(|name| ("T".to_owned(), (*name).to_owned()))
    .collect();
    let mut expected = expected;
    expected.sort();
    assert_eq!(symbols, expected, "nm -D --defined-only:\n{listing}");
}

#[test]
fn soname_is_libdcap_quoteprov_so_1() {
    let library = common::built_library();
    let dynamic = tool("readelf", &["-d", library.to_str().unwrap()]);
    let sonames: Vec<&str> = dynamic.lines().filter(|l| l.contains("(SONAME)")).collect();
    assert_eq!(sonames.len(), 1, "{dynamic}");
    assert!(
        sonames[0].contains("[libdcap_quoteprov.so.1]"),
        "{}",
        sonames[0]
    );
}

#[test]
fn the_library_stays_loaded_after_dlclose() {
    let library = common::built_library();
    let dynamic = tool("readelf", &["-d", library.to_str().unwrap()]);
    let flags: Vec<&str> = dynamic
        .lines()
        .filter(|l| l.contains("(FLAGS_1)"))
        .collect();
    assert_eq!(flags.len(), 1, "{dynamic}");
    assert!(
        flags[0].split_whitespace().any(|word| word == "NODELETE"),
        "{}",
        flags[0]
    );
}

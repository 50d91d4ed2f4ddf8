//! Links the shared object as Intel's quote provider library: soname `libdcap_quoteprov.so.1`, and a
//! version script that exports the library's C API and nothing else.
//!
//! As in `crates/quote-ex`: rust-lld (the default linker of the x86_64 Linux toolchain) merges this
//! script with the one rustc writes for a cdylib; GNU ld refuses two anonymous version scripts, so
//! builds linking with GNU ld set `CONFCOM_QPL_VERSION_SCRIPT=0` and rely on rustc's script, which
//! exports the same functions (`tests/exports.rs` checks the result either way).
//!
//! The library is linked `-z nodelete`: it keeps a host-lookup thread and HTTP clients for the
//! process, which `dlclose` cannot stop, so it stays mapped once loaded (`dlclose` then only drops
//! the handle) instead of leaving that thread to return into unmapped code.

fn main() {
    println!("cargo:rerun-if-changed=exports.map");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CONFCOM_QPL_VERSION_SCRIPT");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libdcap_quoteprov.so.1");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    let use_script = std::env::var("CONFCOM_QPL_VERSION_SCRIPT").map_or(true, |v| v != "0");
    if use_script {
        let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
        println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={manifest_dir}/exports.map");
    }
}

//! Links the shared object as Intel's: soname `libsgx_quote_ex.so.1`, and a version script that
//! exports the six quote-ex functions and nothing else.
//!
//! rustc passes its own (anonymous) version script for a cdylib, listing the crate's exported
//! functions. rust-lld, the default linker of the x86_64 Linux toolchain, merges the two; GNU ld
//! (bfd, gold) refuses to combine two anonymous version scripts. Builds that link with GNU ld set
//! `CONFCOM_QUOTE_EX_VERSION_SCRIPT=0`: rustc's script alone then exports the same six functions
//! (`tests/exports.rs` checks the result either way).

fn main() {
    println!("cargo:rerun-if-changed=exports.map");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CONFCOM_QUOTE_EX_VERSION_SCRIPT");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libsgx_quote_ex.so.1");
    let use_script = std::env::var("CONFCOM_QUOTE_EX_VERSION_SCRIPT").map_or(true, |v| v != "0");
    if use_script {
        let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
        println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={manifest_dir}/exports.map");
    }
}

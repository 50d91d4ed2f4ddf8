//! Links the shared object as Intel's: soname `libsgx_quote_ex.so.1`, and a version script that
//! exports the six quote-ex functions and nothing else.

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let script = format!("{manifest_dir}/exports.map");
    println!("cargo:rerun-if-changed=exports.map");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libsgx_quote_ex.so.1");
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={script}");
}

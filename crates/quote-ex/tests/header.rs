//! The checked-in C header is what cbindgen generates from the sources today.
//! Rewrite it with `CONFCOM_UPDATE_HEADER=1 cargo test -p quote-ex --test header`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

#[test]
fn checked_in_header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();

    let path = crate_dir.join("include/sgx_quote_ex.h");
    if std::env::var_os("CONFCOM_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is stale; regenerate it with CONFCOM_UPDATE_HEADER=1 cargo test -p quote-ex --test header\n\
         --- generated ---\n{generated}",
        path.display()
    );
}

#[test]
fn header_declares_the_six_functions_with_intels_signatures() {
    let header = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("include/sgx_quote_ex.h"),
    )
    .unwrap();
    let flat: String = header.split_whitespace().collect::<Vec<_>>().join(" ");
    for decl in [
        "sgx_status_t sgx_select_att_key_id(const uint8_t *p_att_key_id_list, uint32_t att_key_id_list_size, sgx_att_key_id_t *p_selected_key_id);",
        "sgx_status_t sgx_init_quote_ex(const sgx_att_key_id_t *p_att_key_id, sgx_target_info_t *p_qe_target_info, size_t *p_pub_key_id_size, uint8_t *p_pub_key_id);",
        "sgx_status_t sgx_get_quote_size_ex(const sgx_att_key_id_t *p_att_key_id, uint32_t *p_quote_size);",
        "sgx_status_t sgx_get_quote_ex(const sgx_report_t *p_app_report, const sgx_att_key_id_t *p_att_key_id, sgx_qe_report_info_t *p_qe_report_info, uint8_t *p_quote, uint32_t quote_size);",
        "sgx_status_t sgx_get_supported_att_key_id_num(uint32_t *p_att_key_id_num);",
        "sgx_status_t sgx_get_supported_att_key_ids(sgx_att_key_id_ext_t *p_att_key_id_list, uint32_t att_key_id_num);",
    ] {
        assert!(flat.contains(decl), "missing: {decl}");
    }
}

#[test]
fn header_compiles_as_cpp_with_intels_struct_sizes() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("header.cpp");
    std::fs::write(
        &source,
        "#include \"sgx_quote_ex.h\"\n\
         static_assert(sizeof(sgx_target_info_t) == 512, \"target info\");\n\
         static_assert(sizeof(sgx_report_t) == 432, \"report\");\n\
         static_assert(sizeof(sgx_att_key_id_t) == 256, \"key id\");\n\
         static_assert(sizeof(sgx_att_key_id_ext_t) == 256, \"key id ext\");\n\
         static_assert(sizeof(sgx_ql_att_key_id_t) == 158, \"key id base\");\n\
         static_assert(sizeof(sgx_qe_report_info_t) == 960, \"QE report info\");\n\
         sgx_status_t (*init_ptr)(const sgx_att_key_id_t *, sgx_target_info_t *, size_t *, \
         uint8_t *) = sgx_init_quote_ex;\n",
    )
    .unwrap();
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let output = std::process::Command::new(&cxx)
        .args([
            "-std=c++11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fsyntax-only",
            "-I",
        ])
        .arg(crate_dir.join("include"))
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("running {cxx}: {e}"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

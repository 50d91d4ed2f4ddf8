//! The checked-in C header is what cbindgen generates from the sources today, and it declares the
//! functions with Intel's signatures and the structures with Intel's sizes.
//! Rewrite it with `CONFCOM_UPDATE_HEADER=1 cargo test -p quote-provider --test header`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

const HEADER: &str = "include/sgx_default_quote_provider.h";

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

    let path = crate_dir.join(HEADER);
    if std::env::var_os("CONFCOM_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is stale; regenerate it with CONFCOM_UPDATE_HEADER=1 cargo test -p quote-provider --test header\n\
         --- generated ---\n{generated}",
        path.display()
    );
}

#[test]
fn header_declares_the_functions_with_intels_signatures() {
    let header =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(HEADER)).unwrap();
    let flat: String = header.split_whitespace().collect::<Vec<_>>().join(" ");
    for decl in [
        "quote3_error_t sgx_ql_get_quote_config(const sgx_ql_pck_cert_id_t *p_pck_cert_id, sgx_ql_config_t **pp_quote_config);",
        "quote3_error_t sgx_ql_free_quote_config(sgx_ql_config_t *p_quote_config);",
        "quote3_error_t sgx_ql_get_quote_verification_collateral(const uint8_t *fmspc, uint16_t fmspc_size, const char *pck_ca, sgx_ql_qve_collateral_t **pp_quote_collateral);",
        "quote3_error_t sgx_ql_get_quote_verification_collateral_with_params(const uint8_t *fmspc, uint16_t fmspc_size, const char *pck_ca, const void *custom_param, uint16_t custom_param_length, sgx_ql_qve_collateral_t **pp_quote_collateral);",
        "quote3_error_t sgx_ql_free_quote_verification_collateral(sgx_ql_qve_collateral_t *p_quote_collateral);",
        "quote3_error_t sgx_ql_get_qve_identity(char **pp_qve_identity, uint32_t *p_qve_identity_size, char **pp_qve_identity_issuer_chain, uint32_t *p_qve_identity_issuer_chain_size);",
        "quote3_error_t sgx_ql_free_qve_identity(char *p_qve_identity, char *p_qve_identity_issuer_chain);",
        "quote3_error_t sgx_ql_get_root_ca_crl(uint8_t **pp_root_ca_crl, uint16_t *p_root_ca_crl_size);",
        "quote3_error_t sgx_ql_free_root_ca_crl(uint8_t *p_root_ca_crl);",
        "quote3_error_t sgx_ql_set_logging_callback(sgx_ql_logging_callback_t logger, sgx_ql_log_level_t loglevel);",
        "quote3_error_t sgx_ql_set_logging_function(sgx_ql_logging_callback_t logger);",
        "quote3_error_t tdx_ql_get_quote_verification_collateral(const uint8_t *fmspc, uint16_t fmspc_size, const char *pck_ca, tdx_ql_qv_collateral_t **pp_quote_collateral);",
        "quote3_error_t tdx_ql_free_quote_verification_collateral(tdx_ql_qv_collateral_t *p_quote_collateral);",
        "typedef sgx_ql_qve_collateral_t tdx_ql_qv_collateral_t;",
        "typedef sgx_ql_qve_collateral_t tdx_ql_qve_collateral_t;",
        "quote3_error_t sgx_qpl_clear_cache(uint32_t cache_type);",
        "quote3_error_t sgx_qpl_global_init(void);",
        "quote3_error_t sgx_qpl_global_cleanup(void);",
        "#define SGX_QPL_CACHE_CERTIFICATE 1",
        "#define SGX_QPL_CACHE_QV_COLLATERAL 2",
        "#define SGX_QPL_CACHE_MULTICERTS 4",
        "#define SGX_QL_TEE_TYPE_TDX 129",
    ] {
        assert!(flat.contains(decl), "missing: {decl}\n{flat}");
    }
}

#[test]
fn header_compiles_as_cpp_with_intels_struct_sizes() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("header.cpp");
    std::fs::write(
        &source,
        "#include \"sgx_default_quote_provider.h\"\n\
         #include <cstddef>\n\
         static_assert(sizeof(sgx_ql_pck_cert_id_t) == 43, \"cert id\");\n\
         static_assert(offsetof(sgx_ql_pck_cert_id_t, pce_id) == 41, \"pce_id\");\n\
         static_assert(sizeof(sgx_ql_config_t) == 34, \"config\");\n\
         static_assert(offsetof(sgx_ql_config_t, p_cert_data) == 26, \"p_cert_data\");\n\
         static_assert(sizeof(sgx_ql_qve_collateral_t) == 120, \"collateral\");\n\
         static_assert(offsetof(sgx_ql_qve_collateral_t, qe_identity_size) == 112, \"qe id size\");\n\
         quote3_error_t (*get_ptr)(const sgx_ql_pck_cert_id_t *, sgx_ql_config_t **) = \
         sgx_ql_get_quote_config;\n",
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

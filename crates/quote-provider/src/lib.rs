//! A drop-in `libdcap_quoteprov.so.1`: the quote provider library (QPL) that Intel's DCAP quote
//! library, quote verification library and QvE loader, Open Enclave and other DCAP users `dlopen`
//! to get a platform's PCK certificate and a quote's verification collateral. It fetches them from
//! a PCCS (Intel's, `confcom pccs`) or Intel's PCS with [`pccs::client::PccsClient`], caches them
//! on disk, and hands them out in the C structures of Intel's `sgx_ql_lib_common.h`.
//!
//! Exports, with the signatures of Intel's `sgx_default_quote_provider.h` (plus
//! `sgx_ql_set_logging_function`, which az-dcap-client exports and Open Enclave looks for):
//! `sgx_ql_get_quote_config` / `sgx_ql_free_quote_config`,
//! `sgx_ql_get_quote_verification_collateral` (and `_with_params`) /
//! `sgx_ql_free_quote_verification_collateral`, `tdx_ql_get_quote_verification_collateral` /
//! `tdx_ql_free_quote_verification_collateral`, `sgx_ql_get_qve_identity` /
//! `sgx_ql_free_qve_identity`, `sgx_ql_get_root_ca_crl` / `sgx_ql_free_root_ca_crl`,
//! `sgx_ql_set_logging_callback`, `sgx_qpl_clear_cache`, `sgx_qpl_global_init` /
//! `sgx_qpl_global_cleanup`.
//!
//! - Settings are read at every call ([`config`]); the cache is described in [`cache`].
//! - Every buffer is `malloc`ed: the quote configuration and the collateral are each one block
//!   (the structure followed by its buffers), so the library's free function and C's `free` both
//!   release them. Text buffers end with a NUL that their size counts; the root CA CRL of
//!   `sgx_ql_get_root_ca_crl` has none, as with Intel's library.
//! - NULL pointers, wrong sizes and unknown CA names return `SGX_QL_ERROR_INVALID_PARAMETER`. No
//!   panic crosses the C boundary: it is caught and returned as `SGX_QL_ERROR_UNEXPECTED`.
//! - Failures are reported to the logging callback (and on stderr with `CONFCOM_QPL_LOG=1`).
//!
//! Rust code may use [`provider::Provider`] directly.

pub mod cache;
pub mod config;
pub mod error;
pub mod log;
pub mod provider;
pub mod types;

use std::ffi::{c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use pccs::CaType;
use pccs::client::PckCertRequest;

use error::QplError;
use provider::{Provider, Tee};
use types::*;

/// Runs one exported call: catches panics, maps the outcome to `quote3_error_t`, and logs
/// failures.
fn guard(name: &str, call: impl FnOnce() -> Result<(), QplError>) -> quote3_error_t {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(())) => SGX_QL_SUCCESS,
        Ok(Err(error)) => {
            let status = error.status();
            log::log(
                SGX_QL_LOG_ERROR,
                &format!("{name}: {error} -> 0x{status:04x}"),
            );
            status
        }
        Err(_) => {
            // Logging may be what panicked; do not risk a second panic.
            let _ = catch_unwind(|| {
                log::log(
                    SGX_QL_LOG_ERROR,
                    &format!("{name}: internal error (panic caught)"),
                );
            });
            SGX_QL_ERROR_UNEXPECTED
        }
    }
}

/// `len` bytes from `malloc`.
fn alloc(len: usize) -> Result<*mut u8, QplError> {
    // SAFETY: malloc has no preconditions; a NULL result is handled below.
    let p = unsafe { libc::malloc(len.max(1)) }.cast::<u8>();
    if p.is_null() {
        Err(QplError::OutOfMemory)
    } else {
        Ok(p)
    }
}

/// A size that must fit its C field.
fn size_u32(what: &'static str, len: usize) -> Result<u32, QplError> {
    u32::try_from(len).map_err(|_| QplError::TooLarge {
        what,
        len,
        max: u32::MAX as usize,
    })
}

/// Copies `bytes` then a NUL to `dst`; returns the byte after the NUL.
///
/// # Safety
/// `dst` must be writable for `bytes.len() + 1` bytes and not overlap `bytes`.
unsafe fn put_nul_terminated(dst: *mut u8, bytes: &[u8]) -> *mut u8 {
    // SAFETY: guaranteed by the caller.
    unsafe {
        ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
        dst.add(bytes.len()).write(0);
        dst.add(bytes.len() + 1)
    }
}

/// A `malloc`ed copy of `bytes` with a trailing NUL, and its size (NUL included).
fn c_string_copy(what: &'static str, bytes: &[u8]) -> Result<(*mut c_char, u32), QplError> {
    let size = size_u32(what, bytes.len() + 1)?;
    let p = alloc(bytes.len() + 1)?;
    // SAFETY: `p` was just allocated with room for the bytes and the NUL.
    unsafe { put_nul_terminated(p, bytes) };
    Ok((p.cast(), size))
}

/// Reads the CA name: at most 16 bytes up to a NUL.
///
/// # Safety
/// `pck_ca` must point to a NUL-terminated string.
unsafe fn read_ca(pck_ca: *const c_char) -> Result<CaType, QplError> {
    let mut name = Vec::new();
    for i in 0..16 {
        // SAFETY: the string is NUL-terminated, and reading stops at its NUL.
        let byte = unsafe { pck_ca.add(i).read() } as u8;
        if byte == 0 {
            let text = std::str::from_utf8(&name)
                .map_err(|_| QplError::InvalidParameter("pck_ca is not text"))?;
            return CaType::parse(text).ok_or(QplError::InvalidParameter(
                "pck_ca is not \"processor\" or \"platform\"",
            ));
        }
        name.push(byte);
    }
    Err(QplError::InvalidParameter(
        "pck_ca is not \"processor\" or \"platform\"",
    ))
}

/// Gets the PCK certificate chain of the platform `*p_pck_cert_id` and the TCB it was issued for,
/// in a new `sgx_ql_config_t` (`version` 1; `p_cert_data` = PEM leaf ‖ PEM issuer chain ‖ NUL,
/// `cert_data_size` counting the NUL). Release it with `sgx_ql_free_quote_config`.
///
/// # Safety
/// `p_pck_cert_id` must point to a valid `sgx_ql_pck_cert_id_t` whose pointers are valid for their
/// sizes (NULL `p_encrypted_ppid` allowed); `pp_quote_config` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_ql_get_quote_config(
    p_pck_cert_id: *const sgx_ql_pck_cert_id_t,
    pp_quote_config: *mut *mut sgx_ql_config_t,
) -> quote3_error_t {
    guard("sgx_ql_get_quote_config", || {
        if p_pck_cert_id.is_null() || pp_quote_config.is_null() {
            return Err(QplError::InvalidParameter("NULL cert id or output"));
        }
        // SAFETY: non-NULL and valid by the caller's contract; the struct is packed (align 1).
        let id = unsafe { p_pck_cert_id.read_unaligned() };
        let (qe_id, qe_id_size) = (id.p_qe3_id, id.qe3_id_size);
        if qe_id.is_null() || qe_id_size == 0 || qe_id_size > 130 {
            return Err(QplError::InvalidParameter(
                "QE id is NULL or not 1..=130 bytes",
            ));
        }
        let (cpu_svn, pce_svn) = (id.p_platform_cpu_svn, id.p_platform_pce_isv_svn);
        if cpu_svn.is_null() || pce_svn.is_null() {
            return Err(QplError::InvalidParameter("NULL CPUSVN or PCESVN"));
        }
        let (ppid, ppid_size) = (id.p_encrypted_ppid, id.encrypted_ppid_size);
        if !ppid.is_null() && ppid_size != 384 {
            return Err(QplError::InvalidParameter(
                "encrypted PPID is not 384 bytes",
            ));
        }
        // SAFETY: each pointer is non-NULL and valid for its size by the caller's contract.
        let request = unsafe {
            PckCertRequest {
                qe_id: std::slice::from_raw_parts(qe_id, qe_id_size as usize).to_vec(),
                cpu_svn: cpu_svn.read_unaligned().svn,
                pce_svn: pce_svn.read_unaligned(),
                pce_id: id.pce_id,
                encrypted_ppid: (!ppid.is_null())
                    .then(|| std::slice::from_raw_parts(ppid, 384).to_vec()),
                extra_params: Vec::new(),
                extra_headers: Vec::new(),
            }
        };
        let config = Provider::from_env()?.quote_config(&request)?;
        let header = size_of::<sgx_ql_config_t>();
        let cert_data_size = size_u32("the PCK certificate chain", config.cert_data.len() + 1)?;
        let block = alloc(header + config.cert_data.len() + 1)?;
        // SAFETY: `block` holds the structure and then the certificate data with its NUL; the
        // structure is packed, so any address is aligned for it.
        unsafe {
            let data = block.add(header);
            put_nul_terminated(data, &config.cert_data);
            block
                .cast::<sgx_ql_config_t>()
                .write_unaligned(sgx_ql_config_t {
                    version: SGX_QL_CONFIG_VERSION_1,
                    cert_cpu_svn: sgx_cpu_svn_t {
                        svn: config.cert_cpu_svn,
                    },
                    cert_pce_isv_svn: config.cert_pce_isv_svn,
                    cert_data_size,
                    p_cert_data: data,
                });
            pp_quote_config.write(block.cast());
        }
        Ok(())
    })
}

/// Releases what `sgx_ql_get_quote_config` returned (NULL is accepted).
///
/// # Safety
/// `p_quote_config` must be NULL or a pointer returned by `sgx_ql_get_quote_config` and not yet
/// released.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_ql_free_quote_config(
    p_quote_config: *mut sgx_ql_config_t,
) -> quote3_error_t {
    // SAFETY: one malloc'ed block (or NULL), by the caller's contract.
    unsafe { libc::free(p_quote_config.cast()) };
    SGX_QL_SUCCESS
}

/// The collateral in one `malloc`ed block: the structure, then each buffer with its NUL.
fn collateral_block(c: &provider::Collateral) -> Result<*mut sgx_ql_qve_collateral_t, QplError> {
    let parts: [(&'static str, &[u8]); 7] = [
        ("pck_crl_issuer_chain", &c.pck_crl_issuer_chain),
        ("root_ca_crl", &c.root_ca_crl),
        ("pck_crl", &c.pck_crl),
        ("tcb_info_issuer_chain", &c.tcb_info_issuer_chain),
        ("tcb_info", &c.tcb_info),
        ("qe_identity_issuer_chain", &c.qe_identity_issuer_chain),
        ("qe_identity", &c.qe_identity),
    ];
    let mut sizes = [0u32; 7];
    let mut total = size_of::<sgx_ql_qve_collateral_t>();
    for (i, (what, bytes)) in parts.iter().enumerate() {
        sizes[i] = size_u32(what, bytes.len() + 1)?;
        total += bytes.len() + 1;
    }
    let block = alloc(total)?;
    let mut pointers = [ptr::null_mut::<c_char>(); 7];
    // SAFETY: `block` holds the structure (malloc aligns it for any type) and then every buffer
    // with its NUL, written one after another within `total` bytes.
    unsafe {
        let mut next = block.add(size_of::<sgx_ql_qve_collateral_t>());
        for (i, (_, bytes)) in parts.iter().enumerate() {
            pointers[i] = next.cast();
            next = put_nul_terminated(next, bytes);
        }
        let collateral = block.cast::<sgx_ql_qve_collateral_t>();
        collateral.write(sgx_ql_qve_collateral_t {
            version: c.version,
            tee_type: c.tee_type,
            pck_crl_issuer_chain: pointers[0],
            pck_crl_issuer_chain_size: sizes[0],
            root_ca_crl: pointers[1],
            root_ca_crl_size: sizes[1],
            pck_crl: pointers[2],
            pck_crl_size: sizes[2],
            tcb_info_issuer_chain: pointers[3],
            tcb_info_issuer_chain_size: sizes[3],
            tcb_info: pointers[4],
            tcb_info_size: sizes[4],
            qe_identity_issuer_chain: pointers[5],
            qe_identity_issuer_chain_size: sizes[5],
            qe_identity: pointers[6],
            qe_identity_size: sizes[6],
        });
        Ok(collateral)
    }
}

/// The shared body of the collateral functions.
///
/// # Safety
/// As `sgx_ql_get_quote_verification_collateral`.
unsafe fn get_collateral(
    tee: Tee,
    fmspc: *const u8,
    fmspc_size: u16,
    pck_ca: *const c_char,
    pp_quote_collateral: *mut *mut sgx_ql_qve_collateral_t,
) -> Result<(), QplError> {
    if fmspc.is_null() || pck_ca.is_null() || pp_quote_collateral.is_null() {
        return Err(QplError::InvalidParameter("NULL fmspc, pck_ca or output"));
    }
    if fmspc_size != 6 {
        return Err(QplError::InvalidParameter("fmspc_size is not 6"));
    }
    let mut fmspc_bytes = [0u8; 6];
    // SAFETY: `fmspc` is non-NULL and holds `fmspc_size` = 6 bytes (caller contract).
    unsafe { ptr::copy_nonoverlapping(fmspc, fmspc_bytes.as_mut_ptr(), 6) };
    // SAFETY: `pck_ca` is a non-NULL C string (caller contract).
    let ca = unsafe { read_ca(pck_ca) }?;
    let provider = Provider::from_env()?;
    let collateral = match tee {
        Tee::Sgx => provider.collateral(&fmspc_bytes, ca)?,
        Tee::Tdx => provider.tdx_collateral(&fmspc_bytes, ca)?,
    };
    let block = collateral_block(&collateral)?;
    // SAFETY: non-NULL and writable (caller contract).
    unsafe { pp_quote_collateral.write(block) };
    Ok(())
}

/// Gets the verification collateral of quotes from platforms with this FMSPC (6 bytes) whose PCK
/// certificate was issued by `pck_ca` (`"processor"` or `"platform"`), in a new
/// `sgx_ql_qve_collateral_t`. Release it with `sgx_ql_free_quote_verification_collateral`.
///
/// # Safety
/// `fmspc` must be readable for `fmspc_size` bytes, `pck_ca` a C string, `pp_quote_collateral`
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_ql_get_quote_verification_collateral(
    fmspc: *const u8,
    fmspc_size: u16,
    pck_ca: *const c_char,
    pp_quote_collateral: *mut *mut sgx_ql_qve_collateral_t,
) -> quote3_error_t {
    guard("sgx_ql_get_quote_verification_collateral", || {
        // SAFETY: the caller's pointers are forwarded under the same contract.
        unsafe { get_collateral(Tee::Sgx, fmspc, fmspc_size, pck_ca, pp_quote_collateral) }
    })
}

/// As `sgx_ql_get_quote_verification_collateral`, with custom parameters for the collateral
/// service (`custom_param_length` bytes at `custom_param`), which this library accepts and does
/// not send.
///
/// # Safety
/// As `sgx_ql_get_quote_verification_collateral`; `custom_param`, when not NULL, must be readable
/// for `custom_param_length` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_ql_get_quote_verification_collateral_with_params(
    fmspc: *const u8,
    fmspc_size: u16,
    pck_ca: *const c_char,
    custom_param: *const c_void,
    custom_param_length: u16,
    pp_quote_collateral: *mut *mut sgx_ql_qve_collateral_t,
) -> quote3_error_t {
    guard(
        "sgx_ql_get_quote_verification_collateral_with_params",
        || {
            if custom_param.is_null() != (custom_param_length == 0) {
                return Err(QplError::InvalidParameter(
                    "custom_param and custom_param_length disagree",
                ));
            }
            if !custom_param.is_null() {
                log::log(
                    SGX_QL_LOG_DEBUG,
                    &format!("{custom_param_length} bytes of custom parameters are not sent"),
                );
            }
            // SAFETY: the caller's pointers are forwarded under the same contract.
            unsafe { get_collateral(Tee::Sgx, fmspc, fmspc_size, pck_ca, pp_quote_collateral) }
        },
    )
}

/// Releases what the collateral functions returned (NULL is accepted).
///
/// # Safety
/// `p_quote_collateral` must be NULL or a pointer returned by a collateral function of this
/// library and not yet released.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_ql_free_quote_verification_collateral(
    p_quote_collateral: *mut sgx_ql_qve_collateral_t,
) -> quote3_error_t {
    // SAFETY: one malloc'ed block (or NULL), by the caller's contract.
    unsafe { libc::free(p_quote_collateral.cast()) };
    SGX_QL_SUCCESS
}

/// Gets the verification collateral of TDX quotes from platforms with this FMSPC (6 bytes) whose
/// PCK certificate was issued by `pck_ca`, in a new `tdx_ql_qv_collateral_t` with `tee_type`
/// 0x81: the PCK CRL and root CA CRL as for SGX, the TCB info and QE identity from
/// `/tdx/certification/v4/` (the collateral service URL with `/sgx/` replaced by `/tdx/`). An API
/// v3 collateral service URL is `SGX_QL_ERROR_INVALID_PARAMETER`. Release it with
/// `tdx_ql_free_quote_verification_collateral`.
///
/// # Safety
/// As `sgx_ql_get_quote_verification_collateral`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tdx_ql_get_quote_verification_collateral(
    fmspc: *const u8,
    fmspc_size: u16,
    pck_ca: *const c_char,
    pp_quote_collateral: *mut *mut tdx_ql_qv_collateral_t,
) -> quote3_error_t {
    guard("tdx_ql_get_quote_verification_collateral", || {
        // SAFETY: the caller's pointers are forwarded under the same contract.
        unsafe { get_collateral(Tee::Tdx, fmspc, fmspc_size, pck_ca, pp_quote_collateral) }
    })
}

/// Releases what `tdx_ql_get_quote_verification_collateral` returned (NULL is accepted).
///
/// # Safety
/// `p_quote_collateral` must be NULL or a pointer returned by a collateral function of this
/// library and not yet released.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tdx_ql_free_quote_verification_collateral(
    p_quote_collateral: *mut tdx_ql_qv_collateral_t,
) -> quote3_error_t {
    // SAFETY: one malloc'ed block (or NULL), by the caller's contract.
    unsafe { libc::free(p_quote_collateral.cast()) };
    SGX_QL_SUCCESS
}

/// Gets the QvE identity (`{"enclaveIdentity":…,"signature":…}` ‖ NUL) and its issuer chain (PEM ‖
/// NUL), sizes counting the NUL. Release both with `sgx_ql_free_qve_identity`.
///
/// # Safety
/// Every pointer must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_ql_get_qve_identity(
    pp_qve_identity: *mut *mut c_char,
    p_qve_identity_size: *mut u32,
    pp_qve_identity_issuer_chain: *mut *mut c_char,
    p_qve_identity_issuer_chain_size: *mut u32,
) -> quote3_error_t {
    guard("sgx_ql_get_qve_identity", || {
        if pp_qve_identity.is_null()
            || p_qve_identity_size.is_null()
            || pp_qve_identity_issuer_chain.is_null()
            || p_qve_identity_issuer_chain_size.is_null()
        {
            return Err(QplError::InvalidParameter("NULL output"));
        }
        let signed = Provider::from_env()?.qve_identity()?;
        let (identity, identity_size) = c_string_copy("the QvE identity", &signed.body)?;
        let (chain, chain_size) =
            match c_string_copy("the QvE identity chain", signed.issuer_chain.as_bytes()) {
                Ok(copy) => copy,
                Err(e) => {
                    // SAFETY: allocated just above and not handed out.
                    unsafe { libc::free(identity.cast()) };
                    return Err(e);
                }
            };
        // SAFETY: every output is non-NULL and writable (caller contract).
        unsafe {
            pp_qve_identity.write(identity);
            p_qve_identity_size.write(identity_size);
            pp_qve_identity_issuer_chain.write(chain);
            p_qve_identity_issuer_chain_size.write(chain_size);
        }
        Ok(())
    })
}

/// Releases what `sgx_ql_get_qve_identity` returned (either may be NULL).
///
/// # Safety
/// Each pointer must be NULL or returned by `sgx_ql_get_qve_identity` and not yet released.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_ql_free_qve_identity(
    p_qve_identity: *mut c_char,
    p_qve_identity_issuer_chain: *mut c_char,
) -> quote3_error_t {
    // SAFETY: malloc'ed buffers (or NULL), by the caller's contract.
    unsafe {
        libc::free(p_qve_identity.cast());
        libc::free(p_qve_identity_issuer_chain.cast());
    }
    SGX_QL_SUCCESS
}

/// Gets the root CA CRL as fetched: DER (collateral version 3.1) or hex text (3.0), **without** a
/// trailing NUL. Release it with `sgx_ql_free_root_ca_crl`.
///
/// # Safety
/// Both pointers must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_ql_get_root_ca_crl(
    pp_root_ca_crl: *mut *mut u8,
    p_root_ca_crl_size: *mut u16,
) -> quote3_error_t {
    guard("sgx_ql_get_root_ca_crl", || {
        if pp_root_ca_crl.is_null() || p_root_ca_crl_size.is_null() {
            return Err(QplError::InvalidParameter("NULL output"));
        }
        let crl = Provider::from_env()?.root_ca_crl()?;
        let size = u16::try_from(crl.len()).map_err(|_| QplError::TooLarge {
            what: "the root CA CRL",
            len: crl.len(),
            max: usize::from(u16::MAX),
        })?;
        let p = alloc(crl.len())?;
        // SAFETY: `p` has room for the CRL; both outputs are non-NULL and writable.
        unsafe {
            ptr::copy_nonoverlapping(crl.as_ptr(), p, crl.len());
            pp_root_ca_crl.write(p);
            p_root_ca_crl_size.write(size);
        }
        Ok(())
    })
}

/// Releases what `sgx_ql_get_root_ca_crl` returned (NULL is accepted).
///
/// # Safety
/// `p_root_ca_crl` must be NULL or returned by `sgx_ql_get_root_ca_crl` and not yet released.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_ql_free_root_ca_crl(p_root_ca_crl: *mut u8) -> quote3_error_t {
    // SAFETY: a malloc'ed buffer (or NULL), by the caller's contract.
    unsafe { libc::free(p_root_ca_crl.cast()) };
    SGX_QL_SUCCESS
}

/// Sends the library's messages up to `loglevel` (`SGX_QL_LOG_ERROR` 0 … `SGX_QL_LOG_TRACE` 3) to
/// `logger`; NULL stops them. Callers of the older one-argument form leave `loglevel` undefined: it
/// is only compared as a number, and a value outside 0..=3 means `SGX_QL_LOG_INFO`.
#[unsafe(no_mangle)]
pub extern "C" fn sgx_ql_set_logging_callback(
    logger: sgx_ql_logging_callback_t,
    loglevel: sgx_ql_log_level_t,
) -> quote3_error_t {
    log::set(logger, loglevel);
    SGX_QL_SUCCESS
}

/// az-dcap-client's (and Open Enclave's) name for registering the logger: messages up to
/// `SGX_QL_LOG_INFO`; NULL stops them.
#[unsafe(no_mangle)]
pub extern "C" fn sgx_ql_set_logging_function(logger: sgx_ql_logging_callback_t) -> quote3_error_t {
    log::set(logger, SGX_QL_LOG_INFO);
    SGX_QL_SUCCESS
}

/// Removes this library's cached entries of the classes in the bitmask `cache_type`:
/// `SGX_QPL_CACHE_CERTIFICATE` (PCK certificates), `SGX_QPL_CACHE_QV_COLLATERAL` (collateral, QvE
/// identity, root CA CRL), `SGX_QPL_CACHE_MULTICERTS` (never stored here: nothing to remove).
/// Other bits are `SGX_QL_ERROR_INVALID_PARAMETER`; nothing to clear is `SGX_QL_SUCCESS`; an entry
/// that cannot be removed is `SGX_QL_PERSISTENT_STORAGE_ERROR`. The configuration file is not
/// read: only the cache directory matters.
#[unsafe(no_mangle)]
pub extern "C" fn sgx_qpl_clear_cache(cache_type: u32) -> quote3_error_t {
    guard("sgx_qpl_clear_cache", || {
        let env = |name: &str| std::env::var(name).ok();
        let cache = cache::Cache::open(&config::cache_candidates(&env));
        let removed = provider::clear_cache(cache.as_ref(), cache_type)?;
        log::log(
            SGX_QL_LOG_INFO,
            &format!("sgx_qpl_clear_cache(0x{cache_type:x}): {removed} cache entries removed"),
        );
        Ok(())
    })
}

/// Intel's library sets up its network layer here. This one sets up nothing here (every call
/// reads its settings; the HTTP clients, their open connections and the host-lookup thread are
/// made on first use and kept for the process), so it only returns `SGX_QL_SUCCESS`; calling it
/// any number of times, in any order with `sgx_qpl_global_cleanup`, is safe.
#[unsafe(no_mangle)]
pub extern "C" fn sgx_qpl_global_init() -> quote3_error_t {
    SGX_QL_SUCCESS
}

/// The counterpart of `sgx_qpl_global_init`: nothing to release, so it returns `SGX_QL_SUCCESS`;
/// the logging callback stays registered, and the library stays usable.
#[unsafe(no_mangle)]
pub extern "C" fn sgx_qpl_global_cleanup() -> quote3_error_t {
    SGX_QL_SUCCESS
}

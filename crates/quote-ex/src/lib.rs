//! A drop-in `libsgx_quote_ex.so.1`: Intel's quote-ex C API (`sgx_uae_quote_ex.h`), forwarding
//! each call to the AESM service on `/var/run/aesmd/aesm.socket` (for example `confcom
//! quote-helper`, or Intel's aesmd).
//!
//! Intel's DCAP quote library (`libsgx_dcap_ql`) and Open Enclave load `libsgx_quote_ex.so.1` with
//! `dlopen` when `SGX_AESM_ADDR` is set, and call it as documented in `aesm-protocol.md` §3–4. This
//! crate builds that shared object (`libsgx_quote_ex.so`, soname `libsgx_quote_ex.so.1`) exporting
//! exactly the six functions below, with Intel's signatures, struct sizes, parameter checks and
//! `sgx_status_t` results. It is also an `rlib`: Rust code can call [`api`] with an explicit
//! [`Config`].
//!
//! Settings, read at every call:
//! - `CONFCOM_AESM_SOCKET`: the socket path (default `/var/run/aesmd/aesm.socket`). There is no
//!   abstract-socket fallback, so a missing service is `SGX_ERROR_SERVICE_UNAVAILABLE` (0x4001) as
//!   with Intel's library. `SGX_AESM_ADDR` is never read.
//! - `CONFCOM_AESM_TIMEOUT_MS`: the per-request timeout (default 15000 ms, Intel's); on expiry the
//!   call returns `SGX_ERROR_SERVICE_TIMEOUT` (0x4002).
//! - `CONFCOM_QUOTE_EX_LOG=1`: one line on stderr for every failing call.
//!
//! No panic crosses the C boundary: each function catches it and returns `SGX_ERROR_UNEXPECTED`.
//!
//! # Example (Rust)
//!
//! ```no_run
//! use sgx_quote_ex::{Config, api, types::*};
//!
//! let config = Config::from_env();
//! let mut num = 0u32;
//! // SAFETY: a valid, writable u32.
//! let status = unsafe { api::get_supported_att_key_id_num(&config, &mut num) };
//! assert!(status == SGX_SUCCESS || status == SGX_ERROR_SERVICE_UNAVAILABLE);
//! ```
//!
//! From C, include `include/sgx_quote_ex.h` and link `-lsgx_quote_ex`, or `dlopen`
//! `"libsgx_quote_ex.so.1"` as Intel's libraries do.

pub mod api;
pub mod config;
pub mod types;

pub use config::Config;

use std::panic::{AssertUnwindSafe, catch_unwind};

use types::{
    SGX_ERROR_UNEXPECTED, sgx_att_key_id_ext_t, sgx_att_key_id_t, sgx_qe_report_info_t,
    sgx_report_t, sgx_status_t, sgx_target_info_t,
};

/// Runs an entry point with no panic escaping to C (the calls in [`api`] catch their own; this also
/// covers reading the settings).
fn entry(call: impl FnOnce(&Config) -> sgx_status_t) -> sgx_status_t {
    catch_unwind(AssertUnwindSafe(|| call(&Config::from_env()))).unwrap_or(SGX_ERROR_UNEXPECTED)
}

/// Selects an attestation key id from `p_att_key_id_list` (an `sgx_ql_att_key_id_list_header_t`
/// followed by `sgx_att_key_id_ext_t`s, `att_key_id_list_size` bytes), or the platform default when
/// the list is NULL, and writes it to `*p_selected_key_id`.
///
/// # Safety
/// Every non-NULL pointer must be valid for the sizes above (see `api::select_att_key_id`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_select_att_key_id(
    p_att_key_id_list: *const u8,
    att_key_id_list_size: u32,
    p_selected_key_id: *mut sgx_att_key_id_t,
) -> sgx_status_t {
    entry(|config| {
        // SAFETY: the C caller's pointers are forwarded under the same contract.
        unsafe {
            api::select_att_key_id(
                config,
                p_att_key_id_list,
                att_key_id_list_size,
                p_selected_key_id,
            )
        }
    })
}

/// Initialises quoting with the attestation key `*p_att_key_id`. Call it twice: first with
/// `p_pub_key_id` NULL to learn the public key id size (`*p_pub_key_id_size`, 32 for ECDSA), then
/// with a buffer of that size to receive the public key id and the quoting enclave's target info.
///
/// # Safety
/// Every non-NULL pointer must be valid for the sizes above (see `api::init_quote_ex`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_init_quote_ex(
    p_att_key_id: *const sgx_att_key_id_t,
    p_qe_target_info: *mut sgx_target_info_t,
    p_pub_key_id_size: *mut usize,
    p_pub_key_id: *mut u8,
) -> sgx_status_t {
    entry(|config| {
        // SAFETY: the C caller's pointers are forwarded under the same contract.
        unsafe {
            api::init_quote_ex(
                config,
                p_att_key_id,
                p_qe_target_info,
                p_pub_key_id_size,
                p_pub_key_id,
            )
        }
    })
}

/// Writes the size of a quote made with `*p_att_key_id` to `*p_quote_size`.
///
/// # Safety
/// Every non-NULL pointer must be valid for the sizes above (see `api::get_quote_size_ex`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_get_quote_size_ex(
    p_att_key_id: *const sgx_att_key_id_t,
    p_quote_size: *mut u32,
) -> sgx_status_t {
    entry(|config| {
        // SAFETY: the C caller's pointers are forwarded under the same contract.
        unsafe { api::get_quote_size_ex(config, p_att_key_id, p_quote_size) }
    })
}

/// Writes a quote for the enclave report `*p_app_report` to `p_quote` (`quote_size` bytes). With
/// `p_qe_report_info`, also writes the quoting enclave's report for the app enclave into it.
///
/// # Safety
/// Every non-NULL pointer must be valid for the sizes above (see `api::get_quote_ex`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_get_quote_ex(
    p_app_report: *const sgx_report_t,
    p_att_key_id: *const sgx_att_key_id_t,
    p_qe_report_info: *mut sgx_qe_report_info_t,
    p_quote: *mut u8,
    quote_size: u32,
) -> sgx_status_t {
    entry(|config| {
        // SAFETY: the C caller's pointers are forwarded under the same contract.
        unsafe {
            api::get_quote_ex(
                config,
                p_app_report,
                p_att_key_id,
                p_qe_report_info,
                p_quote,
                quote_size,
            )
        }
    })
}

/// Writes the number of attestation key ids the service supports to `*p_att_key_id_num`.
///
/// # Safety
/// Every non-NULL pointer must be valid for the sizes above (see `api::get_supported_att_key_id_num`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_get_supported_att_key_id_num(
    p_att_key_id_num: *mut u32,
) -> sgx_status_t {
    entry(|config| {
        // SAFETY: the C caller's pointer is forwarded under the same contract.
        unsafe { api::get_supported_att_key_id_num(config, p_att_key_id_num) }
    })
}

/// Writes the `att_key_id_num` attestation key ids the service supports to `p_att_key_id_list`.
///
/// # Safety
/// Every non-NULL pointer must be valid for the sizes above (see `api::get_supported_att_key_ids`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_get_supported_att_key_ids(
    p_att_key_id_list: *mut sgx_att_key_id_ext_t,
    att_key_id_num: u32,
) -> sgx_status_t {
    entry(|config| {
        // SAFETY: the C caller's pointer is forwarded under the same contract.
        unsafe { api::get_supported_att_key_ids(config, p_att_key_id_list, att_key_id_num) }
    })
}

//! A stand-in for Intel's in-process DCAP quote library (`libsgx_dcap_ql.so.1`), for tests of the
//! quote helper's hardware backend on machines without SGX.
//!
//! It exports the six functions of Intel's `sgx_dcap_ql_wrapper.h` with their C signatures and the
//! documented behaviour of the real library in process mode, with the simulated platform
//! ([`sgx_sim::SimPlatform`]) standing in for QE3, the PCE and the quote provider library:
//!
//! | function | behaviour |
//! |---|---|
//! | `sgx_qe_set_enclave_load_policy(policy)` | 0 (`SGX_QL_PERSISTENT`) or 1 (`SGX_QL_EPHEMERAL`), else `SGX_QL_UNSUPPORTED_LOADING_POLICY` |
//! | `sgx_qe_get_target_info(ti)` | NULL → `SGX_QL_ERROR_INVALID_PARAMETER`; zeroes `*ti`, creates/loads and certifies the attestation key, writes the QE's 512-byte target info |
//! | `sgx_qe_get_quote_size(size)` | NULL → invalid parameter; `SGX_QL_ATT_KEY_NOT_INITIALIZED` until `sgx_qe_get_target_info` ran in this process |
//! | `sgx_qe_get_quote(report, size, quote)` | NULL → invalid parameter; buffer smaller than the quote → invalid parameter; a report not MACed for the QE → `SGX_QL_INVALID_REPORT`; else the v3 quote |
//! | `sgx_qe_cleanup_by_policy()` | success (unloads nothing that matters in simulation) |
//! | `sgx_ql_set_path(type, path)` | NULL or a path that is not an existing file → invalid parameter; type 0..=3, else invalid parameter |
//!
//! Like the real library, it reads `SGX_AESM_ADDR` once (on its first call here, at load time in
//! Intel's): when set, it is in out-of-process mode, and the policy, cleanup and path functions
//! answer `SGX_QL_UNSUPPORTED_MODE` (the quoting functions, which would go through
//! `libsgx_quote_ex`, answer `SGX_QL_SERVICE_UNAVAILABLE`).
//!
//! # Test controls
//!
//! - `FAKE_DCAP_QL_SIM_DIR` (environment) or `fake_dcap_ql_set_sim_dir(path)`: the simulated
//!   platform's state directory (initialised by the test). Without one, the quoting functions answer
//!   `SGX_QL_NO_DEVICE`, as the real library does on a machine without SGX device nodes.
//! - `FAKE_DCAP_QL_FAIL="get_quote=0xE011:2,get_target_info=0xE03F"` (environment) or
//!   `fake_dcap_ql_fail(function, code, times)`: the next `times` calls of a function (0 = every
//!   call) return `code` instead of running.
//! - `fake_dcap_ql_calls(function)`: how many times a function was called; `fake_dcap_ql_policy()`:
//!   the enclave load policy last set.
//!
//! Function numbers: 0 `sgx_qe_get_target_info`, 1 `sgx_qe_get_quote_size`, 2 `sgx_qe_get_quote`,
//! 3 `sgx_qe_cleanup_by_policy`, 4 `sgx_qe_set_enclave_load_policy`, 5 `sgx_ql_set_path`,
//! 6 `sgx_ql_init_quote`.
//!
//! Like Intel's library, whose dependency (the QE3 logic library) is reachable through its handle,
//! it also exports the core `sgx_ql_init_quote(p_att_key_id, p_qe_target_info, refresh_att_key,
//! p_pub_key_id_size, p_pub_key_id)`: with `p_pub_key_id` NULL it only reports the size (32);
//! otherwise it creates or loads and certifies the key, writes the target info and the ECDSA_ID.
//! A non-NULL key id must be Intel's QE3 ECDSA-P256 id (its 158-byte base), else invalid parameter.
//!
//! Every instance of the shared object has its own state: tests that need isolation load copies of
//! the file from different paths.

use std::collections::VecDeque;
use std::ffi::{CStr, c_char};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use sgx_sim::{SimError, SimPlatform};
use sgx_types::structs::Wire;
use sgx_types::{Report, TargetInfo};

/// `quote3_error_t` values this library returns (`0xE000 | x`).
pub mod quote3 {
    /// `SGX_QL_SUCCESS`
    pub const SUCCESS: u32 = 0x0000;
    /// `SGX_QL_ERROR_UNEXPECTED`
    pub const ERROR_UNEXPECTED: u32 = 0xE001;
    /// `SGX_QL_ERROR_INVALID_PARAMETER`
    pub const ERROR_INVALID_PARAMETER: u32 = 0xE002;
    /// `SGX_QL_FILE_ACCESS_ERROR`
    pub const FILE_ACCESS_ERROR: u32 = 0xE006;
    /// `SGX_QL_ATT_KEY_BLOB_ERROR`
    pub const ATT_KEY_BLOB_ERROR: u32 = 0xE00A;
    /// `SGX_QL_UNSUPPORTED_LOADING_POLICY`
    pub const UNSUPPORTED_LOADING_POLICY: u32 = 0xE00C;
    /// `SGX_QL_ATT_KEY_NOT_INITIALIZED`
    pub const ATT_KEY_NOT_INITIALIZED: u32 = 0xE00F;
    /// `SGX_QL_INVALID_REPORT`
    pub const INVALID_REPORT: u32 = 0xE015;
    /// `SGX_QL_ENCLAVE_LOAD_ERROR`
    pub const ENCLAVE_LOAD_ERROR: u32 = 0xE016;
    /// `SGX_QL_UNSUPPORTED_MODE`
    pub const UNSUPPORTED_MODE: u32 = 0xE03E;
    /// `SGX_QL_NO_DEVICE`
    pub const NO_DEVICE: u32 = 0xE03F;
    /// `SGX_QL_SERVICE_UNAVAILABLE`
    pub const SERVICE_UNAVAILABLE: u32 = 0xE040;
}

/// Environment variable naming the simulated platform's state directory.
pub const SIM_DIR_ENV: &str = "FAKE_DCAP_QL_SIM_DIR";
/// Environment variable with failures to inject.
pub const FAIL_ENV: &str = "FAKE_DCAP_QL_FAIL";

/// The exported functions, by number.
pub const FUNCTIONS: [&str; 7] = [
    "sgx_qe_get_target_info",
    "sgx_qe_get_quote_size",
    "sgx_qe_get_quote",
    "sgx_qe_cleanup_by_policy",
    "sgx_qe_set_enclave_load_policy",
    "sgx_ql_set_path",
    "sgx_ql_init_quote",
];

const GET_TARGET_INFO: usize = 0;
const GET_QUOTE_SIZE: usize = 1;
const GET_QUOTE: usize = 2;
const CLEANUP: usize = 3;
const SET_POLICY: usize = 4;
const SET_PATH: usize = 5;
const INIT_QUOTE: usize = 6;

/// An injected failure: `code` for the next `remaining` calls (`None`: every call).
#[derive(Debug, Clone, Copy)]
struct Injected {
    code: u32,
    remaining: Option<u32>,
}

#[derive(Default)]
struct State {
    configured: bool,
    out_of_proc: bool,
    sim_dir: Option<PathBuf>,
    platform: Option<Arc<SimPlatform>>,
    key_ready: bool,
    policy: u32,
    paths: [Option<PathBuf>; 4],
    injected: [VecDeque<Injected>; 7],
    calls: [u64; 7],
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn state() -> MutexGuard<'static, Option<State>> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Parses `FAKE_DCAP_QL_FAIL`: `name=code[:times]` separated by commas; bad entries are ignored.
fn parse_fail_spec(spec: &str) -> Vec<(usize, Injected)> {
    spec.split(',')
        .filter_map(|entry| {
            let (name, rest) = entry.trim().split_once('=')?;
            let func = FUNCTIONS.iter().position(|f| {
                *f == name
                    || f.strip_prefix("sgx_qe_") == Some(name)
                    || f.strip_prefix("sgx_ql_") == Some(name)
            })?;
            let (code, times) = match rest.split_once(':') {
                Some((c, t)) => (c, Some(t.parse::<u32>().ok()?)),
                None => (rest, None),
            };
            let code = match code.strip_prefix("0x").or_else(|| code.strip_prefix("0X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => code.parse().ok()?,
            };
            Some((
                func,
                Injected {
                    code,
                    remaining: times.filter(|t| *t > 0),
                },
            ))
        })
        .collect()
}

/// Runs `f` on the state, initialised from the environment on first use, counting the call of
/// `func` and honouring an injected failure for it.
fn with_state(func: usize, f: impl FnOnce(&mut State) -> u32) -> u32 {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut guard = state();
        let st = guard.get_or_insert_with(State::default);
        if !st.configured {
            st.configured = true;
            st.out_of_proc = std::env::var_os("SGX_AESM_ADDR").is_some();
            if st.sim_dir.is_none() {
                st.sim_dir = std::env::var_os(SIM_DIR_ENV).map(PathBuf::from);
            }
            if let Ok(spec) = std::env::var(FAIL_ENV) {
                for (i, inj) in parse_fail_spec(&spec) {
                    if let Some(q) = st.injected.get_mut(i) {
                        q.push_back(inj);
                    }
                }
            }
        }
        if let Some(c) = st.calls.get_mut(func) {
            *c += 1;
        }
        if let Some(queue) = st.injected.get_mut(func)
            && let Some(front) = queue.front_mut()
        {
            let code = front.code;
            match front.remaining.as_mut() {
                Some(n) if *n <= 1 => {
                    queue.pop_front();
                }
                Some(n) => *n -= 1,
                None => {}
            }
            return code;
        }
        f(st)
    }));
    result.unwrap_or(quote3::ERROR_UNEXPECTED)
}

/// The simulated platform ("the QE3 and PCE loaded"), or the error the real library gives.
fn platform(st: &mut State) -> Result<Arc<SimPlatform>, u32> {
    if st.out_of_proc {
        // The real library would dlopen libsgx_quote_ex.so.1 and ask the AESM socket.
        return Err(quote3::SERVICE_UNAVAILABLE);
    }
    if let Some(p) = &st.platform {
        return Ok(Arc::clone(p));
    }
    let Some(dir) = st.sim_dir.clone() else {
        return Err(quote3::NO_DEVICE);
    };
    let p = Arc::new(SimPlatform::open(&dir).map_err(|e| sim_error(&e))?);
    st.platform = Some(Arc::clone(&p));
    Ok(p)
}

fn sim_error(e: &SimError) -> u32 {
    match e {
        SimError::AttKeyNotInitialized => quote3::ATT_KEY_NOT_INITIALIZED,
        SimError::InvalidReport => quote3::INVALID_REPORT,
        SimError::NotInitialised(_) => quote3::ENCLAVE_LOAD_ERROR,
        SimError::Io { .. } => quote3::FILE_ACCESS_ERROR,
        SimError::Corrupt { .. } => quote3::ATT_KEY_BLOB_ERROR,
        _ => quote3::ERROR_UNEXPECTED,
    }
}

/// `quote3_error_t sgx_qe_get_target_info(sgx_target_info_t *p_qe_target_info)`
///
/// # Safety
/// `p_qe_target_info` is NULL or points to 512 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_qe_get_target_info(p_qe_target_info: *mut u8) -> u32 {
    with_state(GET_TARGET_INFO, |st| {
        if p_qe_target_info.is_null() {
            return quote3::ERROR_INVALID_PARAMETER;
        }
        // SAFETY: non-NULL and, by the caller's contract, 512 writable bytes.
        let out = unsafe { std::slice::from_raw_parts_mut(p_qe_target_info, TargetInfo::SIZE) };
        out.fill(0);
        let p = match platform(st) {
            Ok(p) => p,
            Err(code) => return code,
        };
        if let Err(e) = p.init_attestation_key() {
            return sim_error(&e);
        }
        st.key_ready = true;
        out.copy_from_slice(&p.qe_target_info().to_vec());
        quote3::SUCCESS
    })
}

/// `quote3_error_t sgx_qe_get_quote_size(uint32_t *p_quote_size)`
///
/// # Safety
/// `p_quote_size` is NULL or points to a writable `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_qe_get_quote_size(p_quote_size: *mut u32) -> u32 {
    with_state(GET_QUOTE_SIZE, |st| {
        if p_quote_size.is_null() {
            return quote3::ERROR_INVALID_PARAMETER;
        }
        let p = match platform(st) {
            Ok(p) => p,
            Err(code) => return code,
        };
        if !st.key_ready {
            return quote3::ATT_KEY_NOT_INITIALIZED;
        }
        match p.quote_size() {
            Ok(size) => {
                // SAFETY: non-NULL and, by the caller's contract, a writable u32 (unaligned is
                // tolerated).
                unsafe { p_quote_size.write_unaligned(size) };
                quote3::SUCCESS
            }
            Err(e) => sim_error(&e),
        }
    })
}

/// `quote3_error_t sgx_qe_get_quote(const sgx_report_t *p_app_report, uint32_t quote_size,
/// uint8_t *p_quote)`
///
/// # Safety
/// `p_app_report` is NULL or points to 432 readable bytes; `p_quote` is NULL or points to
/// `quote_size` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_qe_get_quote(
    p_app_report: *const u8,
    quote_size: u32,
    p_quote: *mut u8,
) -> u32 {
    with_state(GET_QUOTE, |st| {
        if p_app_report.is_null() || p_quote.is_null() {
            return quote3::ERROR_INVALID_PARAMETER;
        }
        let p = match platform(st) {
            Ok(p) => p,
            Err(code) => return code,
        };
        if !st.key_ready {
            return quote3::ATT_KEY_NOT_INITIALIZED;
        }
        let needed = match p.quote_size() {
            Ok(n) => n,
            Err(e) => return sim_error(&e),
        };
        if quote_size < needed {
            return quote3::ERROR_INVALID_PARAMETER;
        }
        // SAFETY: non-NULL and, by the caller's contract, 432 readable bytes.
        let report_bytes = unsafe { std::slice::from_raw_parts(p_app_report, Report::SIZE) };
        let Ok(report) = Report::parse(report_bytes) else {
            return quote3::ERROR_INVALID_PARAMETER;
        };
        let quote = match p.quote(&report) {
            Ok(q) => q,
            Err(e) => return sim_error(&e),
        };
        let Some(len) = usize::try_from(quote_size)
            .ok()
            .filter(|n| *n >= quote.len())
        else {
            return quote3::ERROR_UNEXPECTED;
        };
        // SAFETY: non-NULL and, by the caller's contract, `quote_size` writable bytes.
        let out = unsafe { std::slice::from_raw_parts_mut(p_quote, len) };
        out[..quote.len()].copy_from_slice(&quote);
        quote3::SUCCESS
    })
}

/// `quote3_error_t sgx_ql_init_quote(sgx_ql_att_key_id_t *p_att_key_id, sgx_target_info_t
/// *p_qe_target_info, bool refresh_att_key, size_t *p_pub_key_id_size, uint8_t *p_pub_key_id)`
///
/// # Safety
/// `p_att_key_id` is NULL or points to 158 readable bytes; `p_pub_key_id_size` is NULL or points to a
/// writable `size_t`; `p_qe_target_info` is NULL or points to 512 writable bytes; `p_pub_key_id` is
/// NULL or points to `*p_pub_key_id_size` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_ql_init_quote(
    p_att_key_id: *const u8,
    p_qe_target_info: *mut u8,
    _refresh_att_key: bool,
    p_pub_key_id_size: *mut usize,
    p_pub_key_id: *mut u8,
) -> u32 {
    with_state(INIT_QUOTE, |st| {
        if p_pub_key_id_size.is_null() {
            return quote3::ERROR_INVALID_PARAMETER;
        }
        if !p_att_key_id.is_null() {
            const BASE: usize = 158;
            // SAFETY: non-NULL and, by the caller's contract, 158 readable bytes.
            let given = unsafe { std::slice::from_raw_parts(p_att_key_id, BASE) };
            let ours = sgx_types::AttKeyId::intel_qe3_ecdsa().to_vec();
            if ours.get(..BASE) != Some(given) {
                return quote3::ERROR_INVALID_PARAMETER;
            }
        }
        if p_pub_key_id.is_null() {
            // SAFETY: non-NULL and, by the caller's contract, a writable size_t.
            unsafe { p_pub_key_id_size.write_unaligned(32) };
            return quote3::SUCCESS;
        }
        // SAFETY: non-NULL and, by the caller's contract, a readable size_t.
        let size = unsafe { p_pub_key_id_size.read_unaligned() };
        if size != 32 || p_qe_target_info.is_null() {
            return quote3::ERROR_INVALID_PARAMETER;
        }
        let p = match platform(st) {
            Ok(p) => p,
            Err(code) => return code,
        };
        let id = match p.init_attestation_key() {
            Ok(id) => id,
            Err(e) => return sim_error(&e),
        };
        st.key_ready = true;
        // SAFETY: non-NULL and, by the caller's contract, 512 writable bytes.
        let ti = unsafe { std::slice::from_raw_parts_mut(p_qe_target_info, TargetInfo::SIZE) };
        ti.copy_from_slice(&p.qe_target_info().to_vec());
        // SAFETY: non-NULL and, by the caller's contract, `*p_pub_key_id_size` (32) writable bytes.
        let out = unsafe { std::slice::from_raw_parts_mut(p_pub_key_id, 32) };
        out.copy_from_slice(&id);
        quote3::SUCCESS
    })
}

/// `quote3_error_t sgx_qe_cleanup_by_policy(void)`
#[unsafe(no_mangle)]
pub extern "C" fn sgx_qe_cleanup_by_policy() -> u32 {
    with_state(CLEANUP, |st| {
        if st.out_of_proc {
            return quote3::UNSUPPORTED_MODE;
        }
        quote3::SUCCESS
    })
}

/// `quote3_error_t sgx_qe_set_enclave_load_policy(sgx_ql_request_policy_t policy)`
#[unsafe(no_mangle)]
pub extern "C" fn sgx_qe_set_enclave_load_policy(policy: u32) -> u32 {
    with_state(SET_POLICY, |st| {
        if st.out_of_proc {
            return quote3::UNSUPPORTED_MODE;
        }
        if policy > 1 {
            return quote3::UNSUPPORTED_LOADING_POLICY;
        }
        st.policy = policy;
        quote3::SUCCESS
    })
}

/// `quote3_error_t sgx_ql_set_path(sgx_ql_path_type_t path_type, const char *p_path)`
///
/// # Safety
/// `p_path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sgx_ql_set_path(path_type: u32, p_path: *const c_char) -> u32 {
    with_state(SET_PATH, |st| {
        if st.out_of_proc {
            return quote3::UNSUPPORTED_MODE;
        }
        if p_path.is_null() {
            return quote3::ERROR_INVALID_PARAMETER;
        }
        // SAFETY: non-NULL and, by the caller's contract, NUL-terminated.
        let Ok(path) = unsafe { CStr::from_ptr(p_path) }.to_str() else {
            return quote3::ERROR_INVALID_PARAMETER;
        };
        let path = Path::new(path);
        if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
            return quote3::ERROR_INVALID_PARAMETER;
        }
        match st.paths.get_mut(path_type as usize) {
            Some(slot) => {
                *slot = Some(path.to_path_buf());
                quote3::SUCCESS
            }
            None => quote3::ERROR_INVALID_PARAMETER,
        }
    })
}

/// Test control: the simulated platform's state directory (NULL: none, so quoting answers
/// `SGX_QL_NO_DEVICE`). Returns 0, or 1 if the path is not UTF-8.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fake_dcap_ql_set_sim_dir(path: *const c_char) -> u32 {
    let dir = if path.is_null() {
        None
    } else {
        // SAFETY: non-NULL and, by the caller's contract, NUL-terminated.
        match unsafe { CStr::from_ptr(path) }.to_str() {
            Ok(s) => Some(PathBuf::from(s)),
            Err(_) => return 1,
        }
    };
    let mut guard = state();
    let st = guard.get_or_insert_with(State::default);
    st.sim_dir = dir;
    st.platform = None;
    st.key_ready = false;
    0
}

/// Test control: the next `times` calls of `function` (0 = every call until cleared) return
/// `code`; `code` 0 with `times` 0 clears the function's injected failures. Returns 0, or 1 for an
/// unknown function number.
#[unsafe(no_mangle)]
pub extern "C" fn fake_dcap_ql_fail(function: u32, code: u32, times: u32) -> u32 {
    let mut guard = state();
    let st = guard.get_or_insert_with(State::default);
    let Some(queue) = st.injected.get_mut(function as usize) else {
        return 1;
    };
    if code == 0 && times == 0 {
        queue.clear();
    } else {
        queue.push_back(Injected {
            code,
            remaining: (times > 0).then_some(times),
        });
    }
    0
}

/// Test control: how many times `function` was called (0 for an unknown number).
#[unsafe(no_mangle)]
pub extern "C" fn fake_dcap_ql_calls(function: u32) -> u64 {
    state()
        .as_ref()
        .and_then(|st| st.calls.get(function as usize).copied())
        .unwrap_or(0)
}

/// Test control: the enclave load policy last set (0 `SGX_QL_PERSISTENT`, the default).
#[unsafe(no_mangle)]
pub extern "C" fn fake_dcap_ql_policy() -> u32 {
    state().as_ref().map_or(0, |st| st.policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_spec_parses_names_codes_and_counts() {
        let parsed = parse_fail_spec(
            "get_quote=0xE011:2, sgx_qe_get_target_info=57407,set_path=x,init_quote=1",
        );
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[2].0, INIT_QUOTE);
        assert_eq!(parsed[0].0, GET_QUOTE);
        assert_eq!(parsed[0].1.code, 0xE011);
        assert_eq!(parsed[0].1.remaining, Some(2));
        assert_eq!(parsed[1].0, GET_TARGET_INFO);
        assert_eq!(parsed[1].1.code, 0xE03F);
        assert_eq!(parsed[1].1.remaining, None);
        assert!(parse_fail_spec("nope=1").is_empty());
    }
}

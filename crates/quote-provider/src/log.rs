//! The caller's logging callback (`sgx_ql_set_logging_callback`, `sgx_ql_set_logging_function`),
//! and `CONFCOM_QPL_LOG=1` for a line on stderr per message. No global logger is installed: the
//! library runs inside other people's programs.

use std::ffi::CString;
use std::io::Write;
use std::sync::Mutex;

use crate::types::{
    SGX_QL_LOG_INFO, SGX_QL_LOG_TRACE, sgx_ql_log_level_t, sgx_ql_logging_callback_t,
};

/// The registered callback and the most detailed level it receives.
static LOGGER: Mutex<Option<Logger>> = Mutex::new(None);

#[derive(Clone, Copy)]
struct Logger {
    callback: unsafe extern "C" fn(sgx_ql_log_level_t, *const std::ffi::c_char),
    max_level: sgx_ql_log_level_t,
}

/// Registers `callback` for messages up to `level` (a level outside `0..=3`, as a caller of the
/// one-argument form leaves it, means `SGX_QL_LOG_INFO`); `None` unregisters.
pub fn set(callback: sgx_ql_logging_callback_t, level: sgx_ql_log_level_t) {
    let max_level = if level <= SGX_QL_LOG_TRACE {
        level
    } else {
        SGX_QL_LOG_INFO
    };
    let logger = callback.map(|callback| Logger {
        callback,
        max_level,
    });
    *LOGGER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = logger;
}

/// Sends `message` at `level` to the callback (if one takes that level) and to stderr when
/// `CONFCOM_QPL_LOG=1`.
pub fn log(level: sgx_ql_log_level_t, message: &str) {
    let line = format!("libdcap_quoteprov: {message}");
    if std::env::var_os("CONFCOM_QPL_LOG").is_some_and(|v| v == "1") {
        // A failed write to stderr must not turn into a second failure.
        let _ = writeln!(std::io::stderr(), "{line}");
    }
    let logger = *LOGGER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(logger) = logger.filter(|l| level <= l.max_level) else {
        return;
    };
    // Interior NULs cannot travel in a C string.
    let text = CString::new(line.replace('\0', " ")).unwrap_or_default();
    // SAFETY: the callback was registered by the C caller for exactly this signature; the message
    // is a valid NUL-terminated string that outlives the call.
    unsafe { (logger.callback)(level, text.as_ptr()) };
}

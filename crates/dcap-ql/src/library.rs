//! [`DcapLibrary`]: Intel's DCAP quote library loaded with `dlopen`, its six functions behind a safe
//! interface. The only `unsafe` code of the crate.
//!
//! The C API (`sgx_dcap_ql_wrapper.h`; every function returns a `quote3_error_t`):
//!
//! ```c
//! quote3_error_t sgx_qe_get_target_info(sgx_target_info_t *p_qe_target_info);          // 512 bytes
//! quote3_error_t sgx_qe_get_quote_size(uint32_t *p_quote_size);
//! quote3_error_t sgx_qe_get_quote(const sgx_report_t *p_app_report,                    // 432 bytes
//!                                 uint32_t quote_size, uint8_t *p_quote);
//! quote3_error_t sgx_qe_cleanup_by_policy(void);
//! quote3_error_t sgx_qe_set_enclave_load_policy(sgx_ql_request_policy_t policy);
//! quote3_error_t sgx_ql_set_path(sgx_ql_path_type_t path_type, const char *p_path);
//! ```
//!
//! The structures are `#pragma pack(1)` byte layouts, so byte buffers of their size stand for them.
//! Both enums are C `int`-sized.

use std::ffi::{CString, c_char};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use sgx_types::structs::Wire;
use sgx_types::{Report, TargetInfo};

use crate::error::DcapError;
use crate::quote3::{self, Quote3Error};

/// The library's file name (its soname), found through the dynamic loader's search path.
pub const DEFAULT_LIBRARY: &str = "libsgx_dcap_ql.so.1";

/// The environment variable that switches Intel's library (and every other DCAP consumer) to the
/// out-of-process AESM socket.
pub const AESM_ADDR_ENV: &str = "SGX_AESM_ADDR";

/// The six functions, in the order [`DcapLibrary::open`] resolves them.
pub const REQUIRED_SYMBOLS: [&str; 6] = [
    "sgx_qe_get_target_info",
    "sgx_qe_get_quote_size",
    "sgx_qe_get_quote",
    "sgx_qe_cleanup_by_policy",
    "sgx_qe_set_enclave_load_policy",
    "sgx_ql_set_path",
];

/// `sgx_ql_request_policy_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum LoadPolicy {
    /// `SGX_QL_PERSISTENT`: QE3 and the PCE stay loaded (what a long-lived service wants).
    Persistent = 0,
    /// `SGX_QL_EPHEMERAL`: loaded and unloaded per call.
    Ephemeral = 1,
}

/// `sgx_ql_path_type_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum PathType {
    /// `SGX_QL_QE3_PATH`: the QE3 enclave (`libsgx_qe3.signed.so.1`).
    Qe3 = 0,
    /// `SGX_QL_PCE_PATH`: the PCE enclave (`libsgx_pce.signed.so.1`).
    Pce = 1,
    /// `SGX_QL_QPL_PATH`: the quote provider library (`libdcap_quoteprov.so.1`).
    Qpl = 2,
    /// `SGX_QL_IDE_PATH`: the ID enclave (`libsgx_id_enclave.signed.so.1`).
    Ide = 3,
}

impl PathType {
    /// Intel's name, e.g. `"SGX_QL_QPL_PATH"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Qe3 => "SGX_QL_QE3_PATH",
            Self::Pce => "SGX_QL_PCE_PATH",
            Self::Qpl => "SGX_QL_QPL_PATH",
            Self::Ide => "SGX_QL_IDE_PATH",
        }
    }
}

type GetTargetInfoFn = unsafe extern "C" fn(*mut u8) -> u32;
type GetQuoteSizeFn = unsafe extern "C" fn(*mut u32) -> u32;
type GetQuoteFn = unsafe extern "C" fn(*const u8, u32, *mut u8) -> u32;
type CleanupFn = unsafe extern "C" fn() -> u32;
type SetPolicyFn = unsafe extern "C" fn(u32) -> u32;
type SetPathFn = unsafe extern "C" fn(u32, *const c_char) -> u32;
type InitQuoteFn = unsafe extern "C" fn(*const u8, *mut u8, bool, *mut usize, *mut u8) -> u32;

/// The core function of Intel's QE3 logic library that `sgx_qe_get_target_info` wraps; it also
/// returns the public key id. The DCAP library links that library, so it is found through its
/// handle; optional.
pub const CORE_INIT_SYMBOL: &str = "sgx_ql_init_quote";

/// Intel's DCAP quote library, loaded. Every call takes `&mut self`: the library's calls are
/// serialised by whoever owns it (the backend holds it in a mutex).
#[derive(Debug)]
pub struct DcapLibrary {
    path: PathBuf,
    get_target_info: GetTargetInfoFn,
    get_quote_size: GetQuoteSizeFn,
    get_quote: GetQuoteFn,
    cleanup_by_policy: CleanupFn,
    set_enclave_load_policy: SetPolicyFn,
    set_path: SetPathFn,
    init_quote: Option<InitQuoteFn>,
    // Keeps the code behind the function pointers mapped; dropped (dlclose) last.
    _library: libloading::Library,
}

/// Fails with [`DcapError::OutOfProcessMode`] when `SGX_AESM_ADDR` is set (`aesm_addr` is its
/// value): Intel's library reads it when it is loaded and would then send every request to the AESM
/// socket – to the quote helper itself.
pub fn check_in_process(aesm_addr: Option<&std::ffi::OsStr>) -> Result<(), DcapError> {
    match aesm_addr {
        Some(value) => Err(DcapError::OutOfProcessMode {
            value: value.to_string_lossy().into_owned(),
        }),
        None => Ok(()),
    }
}

fn check(code: u32) -> Result<(), Quote3Error> {
    if code == quote3::SUCCESS {
        Ok(())
    } else {
        Err(Quote3Error(code))
    }
}

impl DcapLibrary {
    /// Loads the library at `path` (a bare file name goes through the loader's search path) and
    /// resolves its six functions. Refuses to load it when `SGX_AESM_ADDR` is set in this process's
    /// environment ([`check_in_process`]).
    pub fn open(path: &Path) -> Result<Self, DcapError> {
        check_in_process(std::env::var_os(AESM_ADDR_ENV).as_deref())?;
        // SAFETY: loading runs the library's initialisers. Intel's DCAP library (and its
        // dependencies) only initialise their own globals there; the path is what the operator
        // configured as that library.
        let library = unsafe { libloading::Library::new(path.as_os_str()) }.map_err(|e| {
            DcapError::LibraryNotLoaded {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
        // SAFETY: each symbol is one of the library's functions, whose C signature (see the module
        // docs) the type states; the pointers are used only while `library` is alive (it is stored
        // next to them and dropped last).
        unsafe {
            Ok(Self {
                get_target_info: symbol::<GetTargetInfoFn>(&library, path, REQUIRED_SYMBOLS[0])?,
                get_quote_size: symbol::<GetQuoteSizeFn>(&library, path, REQUIRED_SYMBOLS[1])?,
                get_quote: symbol::<GetQuoteFn>(&library, path, REQUIRED_SYMBOLS[2])?,
                cleanup_by_policy: symbol::<CleanupFn>(&library, path, REQUIRED_SYMBOLS[3])?,
                set_enclave_load_policy: symbol::<SetPolicyFn>(
                    &library,
                    path,
                    REQUIRED_SYMBOLS[4],
                )?,
                set_path: symbol::<SetPathFn>(&library, path, REQUIRED_SYMBOLS[5])?,
                init_quote: symbol::<InitQuoteFn>(&library, path, CORE_INIT_SYMBOL).ok(),
                path: path.to_path_buf(),
                _library: library,
            })
        }
    }

    /// The path it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `sgx_qe_get_target_info`: creates or loads and certifies the attestation key (QE3 and PCE)
    /// and returns the QE's target info.
    pub fn qe_target_info(&mut self) -> Result<TargetInfo, Quote3Error> {
        let mut buf = [0u8; TargetInfo::SIZE];
        // SAFETY: `buf` is a writable 512-byte sgx_target_info_t.
        check(unsafe { (self.get_target_info)(buf.as_mut_ptr()) })?;
        TargetInfo::parse(&buf).map_err(|_| Quote3Error(quote3::ERROR_UNEXPECTED))
    }

    /// Whether [`DcapLibrary::init_quote`] is available.
    pub fn has_core_init(&self) -> bool {
        self.init_quote.is_some()
    }

    /// `sgx_ql_init_quote` (Intel's default QE3 key id, no refresh) as `sgx_qe_get_target_info`
    /// drives it – size query, then full mode – returning the target info and the public key id
    /// (ECDSA_ID). `None` when the library does not provide the function.
    pub fn init_quote(&mut self) -> Option<Result<(TargetInfo, [u8; 32]), Quote3Error>> {
        let f = self.init_quote?;
        let run = || {
            let mut size = 0usize;
            // SAFETY: NULL key id (the default), NULL target info and key id buffer (size query),
            // `size` a writable size_t.
            check(unsafe {
                f(
                    std::ptr::null(),
                    std::ptr::null_mut(),
                    false,
                    &mut size,
                    std::ptr::null_mut(),
                )
            })?;
            if size != 32 {
                return Err(Quote3Error(quote3::ERROR_UNEXPECTED));
            }
            let mut ti = [0u8; TargetInfo::SIZE];
            let mut id = [0u8; 32];
            // SAFETY: NULL key id (the default); `ti` 512 writable bytes; `size` (32) a writable
            // size_t; `id` 32 writable bytes.
            check(unsafe {
                f(
                    std::ptr::null(),
                    ti.as_mut_ptr(),
                    false,
                    &mut size,
                    id.as_mut_ptr(),
                )
            })?;
            if size != 32 {
                return Err(Quote3Error(quote3::ERROR_UNEXPECTED));
            }
            let ti = TargetInfo::parse(&ti).map_err(|_| Quote3Error(quote3::ERROR_UNEXPECTED))?;
            Ok((ti, id))
        };
        Some(run())
    }

    /// `sgx_qe_get_quote_size`.
    pub fn quote_size(&mut self) -> Result<u32, Quote3Error> {
        let mut size = 0u32;
        // SAFETY: `size` is a writable uint32_t.
        check(unsafe { (self.get_quote_size)(&mut size) })?;
        Ok(size)
    }

    /// `sgx_qe_get_quote` into a buffer of `size` bytes (what [`DcapLibrary::quote_size`] said);
    /// returns the whole buffer.
    pub fn quote(&mut self, report: &Report, size: u32) -> Result<Vec<u8>, Quote3Error> {
        let report = report.to_vec();
        if report.len() != Report::SIZE {
            return Err(Quote3Error(quote3::ERROR_INVALID_PARAMETER));
        }
        let len = usize::try_from(size).map_err(|_| Quote3Error(quote3::ERROR_OUT_OF_MEMORY))?;
        let mut quote = vec![0u8; len];
        // SAFETY: `report` is a readable 432-byte sgx_report_t; `quote` has `size` writable bytes.
        check(unsafe { (self.get_quote)(report.as_ptr(), size, quote.as_mut_ptr()) })?;
        Ok(quote)
    }

    /// `sgx_qe_cleanup_by_policy`.
    pub fn cleanup_by_policy(&mut self) -> Result<(), Quote3Error> {
        // SAFETY: no arguments.
        check(unsafe { (self.cleanup_by_policy)() })
    }

    /// `sgx_qe_set_enclave_load_policy`.
    pub fn set_enclave_load_policy(&mut self, policy: LoadPolicy) -> Result<(), Quote3Error> {
        // SAFETY: a valid sgx_ql_request_policy_t value.
        check(unsafe { (self.set_enclave_load_policy)(policy as u32) })
    }

    /// `sgx_ql_set_path`. A path with an interior NUL is `SGX_QL_ERROR_INVALID_PARAMETER`, as the
    /// library answers for any path it cannot use.
    pub fn set_path(&mut self, path_type: PathType, path: &Path) -> Result<(), Quote3Error> {
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Quote3Error(quote3::ERROR_INVALID_PARAMETER))?;
        // SAFETY: a valid sgx_ql_path_type_t value and a NUL-terminated string that outlives the
        // call (the library copies it).
        check(unsafe { (self.set_path)(path_type as u32, c_path.as_ptr()) })
    }
}

/// Resolves `name` in `library` as a `T`.
///
/// # Safety
/// `T` must be the function pointer type of the symbol's C signature, and the returned pointer must
/// not be used after `library` is dropped.
unsafe fn symbol<T: Copy>(
    library: &libloading::Library,
    path: &Path,
    name: &'static str,
) -> Result<T, DcapError> {
    let mut c_name = Vec::with_capacity(name.len() + 1);
    c_name.extend_from_slice(name.as_bytes());
    c_name.push(0);
    // SAFETY: forwarded from the caller: `T` is the symbol's type.
    let sym = unsafe { library.get::<T>(&c_name) }.map_err(|e| DcapError::MissingSymbol {
        path: path.to_path_buf(),
        symbol: name,
        reason: e.to_string(),
    })?;
    Ok(*sym)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aesm_addr_refuses_whatever_its_value() {
        assert!(check_in_process(None).is_ok());
        for value in ["1", "", "unix:/var/run/aesmd/aesm.socket"] {
            let err = check_in_process(Some(std::ffi::OsStr::new(value))).unwrap_err();
            assert!(matches!(err, DcapError::OutOfProcessMode { .. }), "{err}");
            assert!(err.to_string().contains("unset SGX_AESM_ADDR"), "{err}");
        }
    }

    #[test]
    fn a_missing_library_is_a_load_error_naming_it() {
        let err = DcapLibrary::open(Path::new("/nonexistent/libsgx_dcap_ql.so.1")).unwrap_err();
        match &err {
            DcapError::LibraryNotLoaded { path, .. } => {
                assert_eq!(path, Path::new("/nonexistent/libsgx_dcap_ql.so.1"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains("/nonexistent/libsgx_dcap_ql.so.1"), "{text}");
        assert!(text.contains("--dcap-library"), "{text}");
    }
}

//! The six quote-ex functions with an explicit [`Config`] instead of the environment: the exported C
//! functions call these with [`Config::from_env`], and Rust callers (and the tests) may call them
//! directly.
//!
//! Each function follows Intel's `libsgx_quote_ex` (`aesm-protocol.md` §1.5–1.7, §3.1):
//!
//! 1. The client-side parameter checks; a failure returns `SGX_ERROR_INVALID_PARAMETER` and sends
//!    nothing.
//! 2. One request on a fresh connection. Transport failures map to `SGX_ERROR_SERVICE_UNAVAILABLE`
//!    (nothing listens), `SGX_ERROR_SERVICE_TIMEOUT`, or `SGX_ERROR_UNEXPECTED` (I/O error,
//!    malformed or missing reply).
//! 3. The reply's fields are copied into the caller's buffers as Intel's client copies them (also
//!    when `errorCode` is not 0); a field longer than its buffer makes the call fail with
//!    `SGX_ERROR_UNEXPECTED`.
//! 4. `errorCode` maps to `sgx_status_t` through [`aesm_protocol::sgx_status_for`]: the generic
//!    mapping, then the per-function overrides.
//!
//! A panic anywhere in a call is caught and returned as `SGX_ERROR_UNEXPECTED`.

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use aesm_protocol::att_key_id::{
    ATT_KEY_ID_LIST_HEADER_SIZE, ATT_KEY_ID_SIZE, MAX_ATT_KEY_IDS, QE_REPORT_INFO_SIZE,
    REPORT_SIZE, TARGET_INFO_SIZE,
};
use aesm_protocol::{
    AesmRequest, AesmResponse, GetQuoteExRequest, GetQuoteSizeExRequest,
    GetSupportedAttKeyIdNumRequest, GetSupportedAttKeyIdsRequest, InitQuoteExRequest, QuoteExApi,
    SelectAttKeyIdRequest,
};
use quote_client::{AesmClient, ClientError};

use crate::config::Config;
use crate::types::{
    SGX_ERROR_UNEXPECTED, SGX_SUCCESS, sgx_att_key_id_ext_t, sgx_att_key_id_t,
    sgx_qe_report_info_t, sgx_report_t, sgx_status_t, sgx_target_info_t,
};

/// The largest `SelectAttKeyID` list the service accepts (header + 10 key ids). Longer lists are
/// rejected before sending, with the status the service would give them.
pub const MAX_ATT_KEY_ID_LIST_SIZE: u32 =
    (ATT_KEY_ID_LIST_HEADER_SIZE + ATT_KEY_ID_SIZE * MAX_ATT_KEY_IDS as usize) as u32;

/// Room for the rest of a `GetQuoteEx` reply next to the quote buffer (errorCode, the echoed
/// `qe_report_info`, protobuf overhead).
const GET_QUOTE_EX_REPLY_OVERHEAD: u32 = QE_REPORT_INFO_SIZE as u32 + 1024;

/// The C name of an API function, for diagnostics.
pub fn function_name(api: QuoteExApi) -> &'static str {
    match api {
        QuoteExApi::SelectAttKeyId => "sgx_select_att_key_id",
        QuoteExApi::InitQuoteEx => "sgx_init_quote_ex",
        QuoteExApi::GetQuoteSizeEx => "sgx_get_quote_size_ex",
        QuoteExApi::GetQuoteEx => "sgx_get_quote_ex",
        QuoteExApi::GetSupportedAttKeyIdNum => "sgx_get_supported_att_key_id_num",
        QuoteExApi::GetSupportedAttKeyIds => "sgx_get_supported_att_key_ids",
    }
}

/// Runs one API call: catches panics, maps the outcome to `sgx_status_t`, and reports failures on
/// stderr when [`Config::log`] is set.
pub fn guard(
    config: &Config,
    api: QuoteExApi,
    call: impl FnOnce() -> Result<(), ClientError>,
) -> sgx_status_t {
    let (status, cause) = match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(())) => return SGX_SUCCESS,
        Ok(Err(error)) => (error.sgx_status(api), error.to_string()),
        Err(_) => (
            SGX_ERROR_UNEXPECTED,
            "internal error (panic caught)".to_owned(),
        ),
    };
    if config.log {
        // A failed write to stderr must not turn into a second failure.
        let _ = writeln!(
            std::io::stderr(),
            "libsgx_quote_ex: {}: {cause} -> 0x{status:04x}",
            function_name(api)
        );
    }
    status
}

fn invalid(what: &'static str) -> ClientError {
    ClientError::InvalidParameter(what)
}

fn bad(what: impl Into<String>) -> ClientError {
    ClientError::BadResponse(what.into())
}

fn check_code(code: u32) -> Result<(), ClientError> {
    match code {
        0 => Ok(()),
        other => Err(ClientError::Aesm(other)),
    }
}

fn timeout_field(client: &AesmClient) -> Option<u32> {
    Some(u32::try_from(client.timeout().as_millis()).unwrap_or(u32::MAX))
}

fn mismatched() -> ClientError {
    bad("reply does not answer the request")
}

/// Copies `src` to `dst`, which must have room for `capacity` bytes; a longer `src` is a bad reply.
///
/// # Safety
/// `dst` must be valid for writes of `capacity` bytes and must not overlap `src`.
unsafe fn copy_out(
    dst: *mut u8,
    capacity: usize,
    src: &[u8],
    what: &str,
) -> Result<(), ClientError> {
    if src.len() > capacity {
        return Err(bad(format!(
            "{what} has {} bytes, the buffer holds {capacity}",
            src.len()
        )));
    }
    // SAFETY: the caller guarantees `dst` is writable for `capacity` ≥ `src.len()` bytes, and `src`
    // is a Rust-owned reply buffer, so the two cannot overlap.
    unsafe { ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
    Ok(())
}

/// Copies `len` bytes from caller memory.
///
/// # Safety
/// `src` must be valid for reads of `len` bytes.
unsafe fn copy_in(src: *const u8, len: usize) -> Vec<u8> {
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts(src, len) }.to_vec()
}

/// `sgx_select_att_key_id`: asks the service to choose a key id from the list (an
/// `sgx_ql_att_key_id_list_header_t` followed by key ids), or the platform default when the list
/// is NULL, and writes it to `p_selected_key_id`.
///
/// # Safety
/// `p_att_key_id_list`, if not NULL, must be readable for `att_key_id_list_size` bytes;
/// `p_selected_key_id`, if not NULL, must be writable for 256 bytes.
pub unsafe fn select_att_key_id(
    config: &Config,
    p_att_key_id_list: *const u8,
    att_key_id_list_size: u32,
    p_selected_key_id: *mut sgx_att_key_id_t,
) -> sgx_status_t {
    guard(config, QuoteExApi::SelectAttKeyId, || {
        if (p_att_key_id_list.is_null() && att_key_id_list_size != 0) || p_selected_key_id.is_null()
        {
            return Err(invalid("NULL key id list with a size, or NULL output"));
        }
        if att_key_id_list_size > MAX_ATT_KEY_ID_LIST_SIZE {
            return Err(invalid("key id list longer than 10 key ids"));
        }
        let list = if p_att_key_id_list.is_null() {
            None
        } else {
            // SAFETY: the caller guarantees the list is readable for its size.
            Some(unsafe { copy_in(p_att_key_id_list, att_key_id_list_size as usize) })
        };
        let client = config.client();
        let request = AesmRequest::SelectAttKeyId(SelectAttKeyIdRequest {
            att_key_id_list: list,
            timeout: timeout_field(&client),
        });
        let AesmResponse::SelectAttKeyId(reply) = client.transact(&request)? else {
            return Err(mismatched());
        };
        if let Some(id) = &reply.selected_att_key_id {
            // SAFETY: `p_selected_key_id` is non-NULL and writable for 256 bytes (caller contract).
            unsafe {
                copy_out(
                    p_selected_key_id.cast(),
                    ATT_KEY_ID_SIZE,
                    id,
                    "selected_att_key_id",
                )?;
            }
        }
        check_code(reply.error_code)
    })
}

/// `sgx_init_quote_ex`, the two-call pattern: with `p_pub_key_id` NULL it asks for the size of the
/// public key id (written to `*p_pub_key_id_size`; `*p_pub_key_id_size` may hold anything on
/// entry); with a buffer of `*p_pub_key_id_size` bytes it initialises the attestation key and
/// returns the public key id and the quoting enclave's target info.
///
/// # Safety
/// Each non-NULL pointer must be valid: `p_att_key_id` readable for 256 bytes, `p_qe_target_info`
/// writable for 512 bytes, `p_pub_key_id_size` readable and writable, and `p_pub_key_id` writable
/// for `*p_pub_key_id_size` bytes.
pub unsafe fn init_quote_ex(
    config: &Config,
    p_att_key_id: *const sgx_att_key_id_t,
    p_qe_target_info: *mut sgx_target_info_t,
    p_pub_key_id_size: *mut usize,
    p_pub_key_id: *mut u8,
) -> sgx_status_t {
    guard(config, QuoteExApi::InitQuoteEx, || {
        if p_pub_key_id_size.is_null() || p_qe_target_info.is_null() || p_att_key_id.is_null() {
            return Err(invalid("NULL key id, target info or size pointer"));
        }
        // SAFETY: non-NULL and readable (caller contract). In the size query Intel's DCAP library
        // passes a size it never set; like Intel's client we read and forward it (as `buf_size`
        // when non-zero), and never use it to size a write.
        let buf_size = unsafe { p_pub_key_id_size.read() };
        if !p_pub_key_id.is_null() && (buf_size == 0 || buf_size as u64 >= u64::from(u32::MAX)) {
            return Err(invalid("public key id buffer size must be 1 ..= 2^32 - 2"));
        }
        // SAFETY: non-NULL and readable for 256 bytes (caller contract).
        let att_key_id = unsafe { copy_in(p_att_key_id.cast(), ATT_KEY_ID_SIZE) };
        let client = config.client();
        let request = AesmRequest::InitQuoteEx(InitQuoteExRequest {
            att_key_id: Some(att_key_id),
            b_pub_key_id: !p_pub_key_id.is_null(),
            buf_size: (buf_size != 0).then_some(buf_size as u64),
            timeout: timeout_field(&client),
        });
        let AesmResponse::InitQuoteEx(reply) = client.transact(&request)? else {
            return Err(mismatched());
        };
        if let Some(target_info) = &reply.target_info {
            // SAFETY: non-NULL and writable for 512 bytes (caller contract).
            unsafe {
                copy_out(
                    p_qe_target_info.cast(),
                    TARGET_INFO_SIZE,
                    target_info,
                    "target_info",
                )?;
            }
        }
        let mut size = buf_size as u64;
        if let Some(reported) = reply.pub_key_id_size {
            let reported_usize = usize::try_from(reported)
                .map_err(|_| bad(format!("pub_key_id_size {reported} does not fit size_t")))?;
            // SAFETY: non-NULL and writable (caller contract).
            unsafe { p_pub_key_id_size.write(reported_usize) };
            size = reported;
        }
        // Intel's client copies the key id only when its length agrees with the reported size.
        if let Some(id) = &reply.pub_key_id
            && id.len() as u64 == size
            && !p_pub_key_id.is_null()
        {
            // SAFETY: `p_pub_key_id` is writable for `buf_size` bytes (caller contract; the full
            // mode checked that `buf_size` is 1 ..= 2^32 - 2).
            unsafe { copy_out(p_pub_key_id, buf_size, id, "pub_key_id")? };
        }
        check_code(reply.error_code)
    })
}

/// `sgx_get_quote_size_ex`: writes the size of a quote made with `p_att_key_id` to
/// `*p_quote_size`. A NULL key id is sent as no key id (the service rejects it).
///
/// # Safety
/// `p_att_key_id`, if not NULL, must be readable for 256 bytes; `p_quote_size`, if not NULL,
/// writable.
pub unsafe fn get_quote_size_ex(
    config: &Config,
    p_att_key_id: *const sgx_att_key_id_t,
    p_quote_size: *mut u32,
) -> sgx_status_t {
    guard(config, QuoteExApi::GetQuoteSizeEx, || {
        if p_quote_size.is_null() {
            return Err(invalid("NULL quote size pointer"));
        }
        let att_key_id = (!p_att_key_id.is_null()).then(|| {
            // SAFETY: non-NULL and readable for 256 bytes (caller contract).
            unsafe { copy_in(p_att_key_id.cast(), ATT_KEY_ID_SIZE) }
        });
        let client = config.client();
        let request = AesmRequest::GetQuoteSizeEx(GetQuoteSizeExRequest {
            att_key_id,
            timeout: timeout_field(&client),
        });
        let AesmResponse::GetQuoteSizeEx(reply) = client.transact(&request)? else {
            return Err(mismatched());
        };
        // SAFETY: non-NULL and writable (caller contract). Intel's client writes the size (0 when
        // absent) whatever the result.
        unsafe { p_quote_size.write(reply.quote_size.unwrap_or(0)) };
        check_code(reply.error_code)
    })
}

/// `sgx_get_quote_ex`: a quote for the app enclave's report, written to `p_quote` (`quote_size`
/// bytes, zero-padded by the service). With `p_qe_report_info` (nonce and app target info) the
/// quoting enclave's report is written into it too.
///
/// # Safety
/// `p_app_report` must be readable for 432 bytes and `p_att_key_id` for 256, `p_quote` writable for
/// `quote_size` bytes, and `p_qe_report_info`, if not NULL, readable and writable for 960 bytes.
pub unsafe fn get_quote_ex(
    config: &Config,
    p_app_report: *const sgx_report_t,
    p_att_key_id: *const sgx_att_key_id_t,
    p_qe_report_info: *mut sgx_qe_report_info_t,
    p_quote: *mut u8,
    quote_size: u32,
) -> sgx_status_t {
    guard(config, QuoteExApi::GetQuoteEx, || {
        if p_app_report.is_null() || p_att_key_id.is_null() || p_quote.is_null() || quote_size == 0
        {
            return Err(invalid(
                "NULL report, key id or quote buffer, or quote size 0",
            ));
        }
        // SAFETY: non-NULL and readable for 432 bytes (caller contract).
        let report = unsafe { copy_in(p_app_report.cast(), REPORT_SIZE) };
        // SAFETY: non-NULL and readable for 256 bytes (caller contract).
        let att_key_id = unsafe { copy_in(p_att_key_id.cast(), ATT_KEY_ID_SIZE) };
        let qe_report_info = (!p_qe_report_info.is_null()).then(|| {
            // SAFETY: non-NULL and readable for 960 bytes (caller contract).
            unsafe { copy_in(p_qe_report_info.cast_const().cast(), QE_REPORT_INFO_SIZE) }
        });
        let client = config.client().with_max_response(
            quote_client::DEFAULT_MAX_RESPONSE
                .max(quote_size.saturating_add(GET_QUOTE_EX_REPLY_OVERHEAD)),
        );
        let request = AesmRequest::GetQuoteEx(GetQuoteExRequest {
            report,
            att_key_id: Some(att_key_id),
            qe_report_info,
            buf_size: quote_size,
            timeout: timeout_field(&client),
        });
        let AesmResponse::GetQuoteEx(reply) = client.transact(&request)? else {
            return Err(mismatched());
        };
        if let Some(quote) = &reply.quote {
            // SAFETY: non-NULL and writable for `quote_size` bytes (caller contract).
            unsafe { copy_out(p_quote, quote_size as usize, quote, "quote")? };
        }
        if let Some(info) = &reply.qe_report_info
            && !p_qe_report_info.is_null()
        {
            // SAFETY: non-NULL and writable for 960 bytes (caller contract).
            unsafe {
                copy_out(
                    p_qe_report_info.cast(),
                    QE_REPORT_INFO_SIZE,
                    info,
                    "qe_report_info",
                )?;
            }
        }
        check_code(reply.error_code)
    })
}

/// `sgx_get_supported_att_key_id_num`: writes how many attestation key ids the service supports.
///
/// # Safety
/// `p_att_key_id_num`, if not NULL, must be writable.
pub unsafe fn get_supported_att_key_id_num(
    config: &Config,
    p_att_key_id_num: *mut u32,
) -> sgx_status_t {
    guard(config, QuoteExApi::GetSupportedAttKeyIdNum, || {
        if p_att_key_id_num.is_null() {
            return Err(invalid("NULL key id count pointer"));
        }
        let client = config.client();
        let request = AesmRequest::GetSupportedAttKeyIdNum(GetSupportedAttKeyIdNumRequest {
            timeout: timeout_field(&client),
        });
        let AesmResponse::GetSupportedAttKeyIdNum(reply) = client.transact(&request)? else {
            return Err(mismatched());
        };
        // SAFETY: non-NULL and writable (caller contract). Written (0 when absent) whatever the
        // result, as Intel's client does.
        unsafe { p_att_key_id_num.write(reply.att_key_id_num.unwrap_or(0)) };
        check_code(reply.error_code)
    })
}

/// `sgx_get_supported_att_key_ids`: writes `att_key_id_num` key ids (256 bytes each).
///
/// # Safety
/// `p_att_key_id_list`, if not NULL, must be writable for `att_key_id_num` × 256 bytes.
pub unsafe fn get_supported_att_key_ids(
    config: &Config,
    p_att_key_id_list: *mut sgx_att_key_id_ext_t,
    att_key_id_num: u32,
) -> sgx_status_t {
    guard(config, QuoteExApi::GetSupportedAttKeyIds, || {
        if p_att_key_id_list.is_null() || att_key_id_num == 0 {
            return Err(invalid("NULL key id list or count 0"));
        }
        let buf_size = att_key_id_num
            .checked_mul(ATT_KEY_ID_SIZE as u32)
            .ok_or_else(|| invalid("key id count overflows the list size"))?;
        let client = config.client();
        let request = AesmRequest::GetSupportedAttKeyIds(GetSupportedAttKeyIdsRequest {
            buf_size,
            timeout: timeout_field(&client),
        });
        let AesmResponse::GetSupportedAttKeyIds(reply) = client.transact(&request)? else {
            return Err(mismatched());
        };
        if let Some(ids) = &reply.att_key_ids {
            // SAFETY: non-NULL and writable for `buf_size` bytes (caller contract).
            unsafe {
                copy_out(
                    p_att_key_id_list.cast(),
                    buf_size as usize,
                    ids,
                    "att_key_ids",
                )?
            };
        }
        check_code(reply.error_code)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn nowhere() -> Config {
        Config {
            socket: PathBuf::from("/nonexistent/confcom/aesm.socket"),
            timeout: Duration::from_millis(100),
            service_wait: Duration::ZERO,
            log: false,
        }
    }

    #[test]
    fn a_panic_becomes_unexpected() {
        let status = guard(&nowhere(), QuoteExApi::GetQuoteEx, || {
            panic!("boom");
        });
        assert_eq!(status, SGX_ERROR_UNEXPECTED);
    }

    #[test]
    fn guard_maps_errors_per_api() {
        let c = nowhere();
        assert_eq!(guard(&c, QuoteExApi::GetQuoteEx, || Ok(())), SGX_SUCCESS);
        assert_eq!(
            guard(&c, QuoteExApi::GetQuoteEx, || Err(ClientError::Aesm(45))),
            0x3001
        );
        assert_eq!(
            guard(&c, QuoteExApi::InitQuoteEx, || Err(ClientError::Aesm(45))),
            0x0001
        );
        assert_eq!(
            guard(&c, QuoteExApi::InitQuoteEx, || Err(invalid("x"))),
            0x0002
        );
        assert_eq!(guard(&c, QuoteExApi::InitQuoteEx, || Err(bad("x"))), 0x0001);
    }

    #[test]
    fn missing_service_is_service_unavailable() {
        let c = nowhere();
        let mut num = 7u32;
        // SAFETY: a valid, writable u32.
        let status = unsafe { get_supported_att_key_id_num(&c, &mut num) };
        assert_eq!(status, 0x4001);
        assert_eq!(
            num, 7,
            "nothing is written when the call fails in transport"
        );
    }

    #[test]
    fn max_list_size_is_header_plus_ten_ids() {
        assert_eq!(MAX_ATT_KEY_ID_LIST_SIZE, 8 + 2560);
        assert_eq!(
            function_name(QuoteExApi::GetSupportedAttKeyIds),
            "sgx_get_supported_att_key_ids"
        );
    }
}

//! Typed, validated requests: [`decode_request`] and [`encode_request`].

use prost::Message;

use crate::codes::QuoteExApi;
use crate::error::DecodeError;
use crate::wire;

/// A legacy (EPID, launch-token, platform-service) request field of the `Request` wrapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegacyKind {
    /// 1 `initQuoteReq`
    InitQuote,
    /// 2 `getQuoteReq`
    GetQuote,
    /// 3 `getLicTokenReq`
    GetLaunchToken,
    /// 4 `reportErrReq`
    ReportAttestationError,
    /// 10 `getWhiteListSizeReq`
    GetWhiteListSize,
    /// 11 `getWhiteListReq`
    GetWhiteList,
    /// 12 `sgxGetExtendedEpidGroupIdReq`
    GetExtendedEpidGroupId,
    /// 13 `sgxSwitchExtendedEpidGroupReq`
    SwitchExtendedEpidGroup,
    /// 14 `sgxRegisterReq`
    Register,
    /// 18 `checkUpdateStatusReq`
    CheckUpdateStatus,
}

impl LegacyKind {
    /// Every legacy kind, in field-number order.
    pub const ALL: [LegacyKind; 10] = [
        LegacyKind::InitQuote,
        LegacyKind::GetQuote,
        LegacyKind::GetLaunchToken,
        LegacyKind::ReportAttestationError,
        LegacyKind::GetWhiteListSize,
        LegacyKind::GetWhiteList,
        LegacyKind::GetExtendedEpidGroupId,
        LegacyKind::SwitchExtendedEpidGroup,
        LegacyKind::Register,
        LegacyKind::CheckUpdateStatus,
    ];

    /// The field number in the `Request` and `Response` wrappers.
    pub fn field_number(self) -> u32 {
        match self {
            LegacyKind::InitQuote => 1,
            LegacyKind::GetQuote => 2,
            LegacyKind::GetLaunchToken => 3,
            LegacyKind::ReportAttestationError => 4,
            LegacyKind::GetWhiteListSize => 10,
            LegacyKind::GetWhiteList => 11,
            LegacyKind::GetExtendedEpidGroupId => 12,
            LegacyKind::SwitchExtendedEpidGroup => 13,
            LegacyKind::Register => 14,
            LegacyKind::CheckUpdateStatus => 18,
        }
    }

    /// A short name for logs and metrics, e.g. `"GetLaunchToken"`.
    pub fn name(self) -> &'static str {
        match self {
            LegacyKind::InitQuote => "InitQuote",
            LegacyKind::GetQuote => "GetQuote",
            LegacyKind::GetLaunchToken => "GetLaunchToken",
            LegacyKind::ReportAttestationError => "ReportAttestationError",
            LegacyKind::GetWhiteListSize => "GetWhiteListSize",
            LegacyKind::GetWhiteList => "GetWhiteList",
            LegacyKind::GetExtendedEpidGroupId => "GetExtendedEpidGroupId",
            LegacyKind::SwitchExtendedEpidGroup => "SwitchExtendedEpidGroup",
            LegacyKind::Register => "Register",
            LegacyKind::CheckUpdateStatus => "CheckUpdateStatus",
        }
    }
}

/// Which request a message is (and so which response field answers it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// 15
    InitQuoteEx,
    /// 16
    GetQuoteSizeEx,
    /// 17
    GetQuoteEx,
    /// 19
    SelectAttKeyId,
    /// 21
    GetSupportedAttKeyIdNum,
    /// 22
    GetSupportedAttKeyIds,
    /// A legacy request.
    Legacy(LegacyKind),
}

impl RequestKind {
    /// The field number in the `Request` and `Response` wrappers.
    pub fn field_number(self) -> u32 {
        match self {
            RequestKind::InitQuoteEx => 15,
            RequestKind::GetQuoteSizeEx => 16,
            RequestKind::GetQuoteEx => 17,
            RequestKind::SelectAttKeyId => 19,
            RequestKind::GetSupportedAttKeyIdNum => 21,
            RequestKind::GetSupportedAttKeyIds => 22,
            RequestKind::Legacy(kind) => kind.field_number(),
        }
    }

    /// A short name for logs and metrics, e.g. `"GetQuoteEx"`.
    pub fn name(self) -> &'static str {
        match self {
            RequestKind::InitQuoteEx => "InitQuoteEx",
            RequestKind::GetQuoteSizeEx => "GetQuoteSizeEx",
            RequestKind::GetQuoteEx => "GetQuoteEx",
            RequestKind::SelectAttKeyId => "SelectAttKeyId",
            RequestKind::GetSupportedAttKeyIdNum => "GetSupportedAttKeyIdNum",
            RequestKind::GetSupportedAttKeyIds => "GetSupportedAttKeyIds",
            RequestKind::Legacy(kind) => kind.name(),
        }
    }

    /// The quote-ex API that sends this request, `None` for legacy requests.
    pub fn api(self) -> Option<QuoteExApi> {
        match self {
            RequestKind::InitQuoteEx => Some(QuoteExApi::InitQuoteEx),
            RequestKind::GetQuoteSizeEx => Some(QuoteExApi::GetQuoteSizeEx),
            RequestKind::GetQuoteEx => Some(QuoteExApi::GetQuoteEx),
            RequestKind::SelectAttKeyId => Some(QuoteExApi::SelectAttKeyId),
            RequestKind::GetSupportedAttKeyIdNum => Some(QuoteExApi::GetSupportedAttKeyIdNum),
            RequestKind::GetSupportedAttKeyIds => Some(QuoteExApi::GetSupportedAttKeyIds),
            RequestKind::Legacy(_) => None,
        }
    }
}

/// `InitQuoteExRequest` (15).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InitQuoteExRequest {
    /// The 256-byte `sgx_att_key_id_ext_t` (unchecked here; the server validates it).
    pub att_key_id: Option<Vec<u8>>,
    /// `true` in full mode, `false` in size-query mode.
    pub b_pub_key_id: bool,
    /// The caller's pub_key_id buffer size; optional on the wire (aesmd 2.30 briefly required it).
    pub buf_size: Option<u64>,
    /// Client timeout in milliseconds (servers ignore it).
    pub timeout: Option<u32>,
}

/// `GetQuoteSizeExRequest` (16).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetQuoteSizeExRequest {
    /// The 256-byte attestation key id; absent when the C caller passed NULL.
    pub att_key_id: Option<Vec<u8>>,
    /// Client timeout in milliseconds.
    pub timeout: Option<u32>,
}

/// `GetQuoteExRequest` (17).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetQuoteExRequest {
    /// The application enclave's `sgx_report_t` (432 bytes when valid).
    pub report: Vec<u8>,
    /// The 256-byte attestation key id.
    pub att_key_id: Option<Vec<u8>>,
    /// `sgx_ql_qe_report_info_t` (960 bytes when valid), present when the app wants a QE report.
    pub qe_report_info: Option<Vec<u8>>,
    /// Size of the caller's quote buffer.
    pub buf_size: u32,
    /// Client timeout in milliseconds.
    pub timeout: Option<u32>,
}

/// `SelectAttKeyIDRequest` (19).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SelectAttKeyIdRequest {
    /// `sgx_ql_att_key_id_list_header_t` + N × 256 bytes; absent means "platform default".
    pub att_key_id_list: Option<Vec<u8>>,
    /// Client timeout in milliseconds (field 2 in this message).
    pub timeout: Option<u32>,
}

/// `GetSupportedAttKeyIDNumRequest` (21).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetSupportedAttKeyIdNumRequest {
    /// Client timeout in milliseconds.
    pub timeout: Option<u32>,
}

/// `GetSupportedAttKeyIDsRequest` (22).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetSupportedAttKeyIdsRequest {
    /// Size of the caller's buffer: number of key ids × 256.
    pub buf_size: u32,
    /// Client timeout in milliseconds.
    pub timeout: Option<u32>,
}

/// A decoded request, one variant per request a quote-ex daemon distinguishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AesmRequest {
    /// 15
    InitQuoteEx(InitQuoteExRequest),
    /// 16
    GetQuoteSizeEx(GetQuoteSizeExRequest),
    /// 17
    GetQuoteEx(GetQuoteExRequest),
    /// 19
    SelectAttKeyId(SelectAttKeyIdRequest),
    /// 21
    GetSupportedAttKeyIdNum(GetSupportedAttKeyIdNumRequest),
    /// 22
    GetSupportedAttKeyIds(GetSupportedAttKeyIdsRequest),
    /// A legacy request; its body is not interpreted.
    Legacy(LegacyKind),
}

impl AesmRequest {
    /// Which request this is.
    pub fn kind(&self) -> RequestKind {
        match self {
            AesmRequest::InitQuoteEx(_) => RequestKind::InitQuoteEx,
            AesmRequest::GetQuoteSizeEx(_) => RequestKind::GetQuoteSizeEx,
            AesmRequest::GetQuoteEx(_) => RequestKind::GetQuoteEx,
            AesmRequest::SelectAttKeyId(_) => RequestKind::SelectAttKeyId,
            AesmRequest::GetSupportedAttKeyIdNum(_) => RequestKind::GetSupportedAttKeyIdNum,
            AesmRequest::GetSupportedAttKeyIds(_) => RequestKind::GetSupportedAttKeyIds,
            AesmRequest::Legacy(kind) => RequestKind::Legacy(*kind),
        }
    }
}

fn required<T>(
    value: Option<T>,
    message: &'static str,
    field: &'static str,
) -> Result<T, DecodeError> {
    value.ok_or(DecodeError::MissingRequiredField { message, field })
}

/// Decodes a request body (the bytes after the length prefix).
///
/// - The proto2 `required` fields of every sub-message that is set are checked for presence, as a
///   proto2 parser does for the whole message: a request missing one is an error.
/// - `InitQuoteExRequest.buf_size` is optional.
/// - A wrapper with none of the known sub-messages set is an error ([`DecodeError::NoKnownRequest`]);
///   the daemon then closes the connection without a reply.
/// - If several sub-messages are set, the first in aesmd's dispatch order wins: getLicTokenReq,
///   initQuoteReq, getQuoteReq, reportErrReq, checkUpdateStatusReq, the white-list, extended EPID
///   group and register requests, then initQuoteExReq, getQuoteSizeExReq, getQuoteExReq,
///   selectAttKeyIDReq, getSupportedAttKeyIDNumReq, getSupportedAttKeyIDsReq.
pub fn decode_request(bytes: &[u8]) -> Result<AesmRequest, DecodeError> {
    let req = wire::Request::decode(bytes)?;
    check_required(&req)?;

    let legacy_order = [
        (req.get_lic_token_req.is_some(), LegacyKind::GetLaunchToken),
        (req.init_quote_req.is_some(), LegacyKind::InitQuote),
        (req.get_quote_req.is_some(), LegacyKind::GetQuote),
        (
            req.report_err_req.is_some(),
            LegacyKind::ReportAttestationError,
        ),
        (
            req.check_update_status_req.is_some(),
            LegacyKind::CheckUpdateStatus,
        ),
        (
            req.get_white_list_size_req.is_some(),
            LegacyKind::GetWhiteListSize,
        ),
        (req.get_white_list_req.is_some(), LegacyKind::GetWhiteList),
        (
            req.sgx_get_extended_epid_group_id_req.is_some(),
            LegacyKind::GetExtendedEpidGroupId,
        ),
        (
            req.sgx_switch_extended_epid_group_req.is_some(),
            LegacyKind::SwitchExtendedEpidGroup,
        ),
        (req.sgx_register_req.is_some(), LegacyKind::Register),
    ];
    if let Some((_, kind)) = legacy_order.iter().find(|(set, _)| *set) {
        return Ok(AesmRequest::Legacy(*kind));
    }

    if let Some(m) = req.init_quote_ex_req {
        return Ok(AesmRequest::InitQuoteEx(InitQuoteExRequest {
            att_key_id: m.att_key_id,
            b_pub_key_id: required(m.b_pub_key_id, "InitQuoteExRequest", "b_pub_key_id")?,
            buf_size: m.buf_size,
            timeout: m.timeout,
        }));
    }
    if let Some(m) = req.get_quote_size_ex_req {
        return Ok(AesmRequest::GetQuoteSizeEx(GetQuoteSizeExRequest {
            att_key_id: m.att_key_id,
            timeout: m.timeout,
        }));
    }
    if let Some(m) = req.get_quote_ex_req {
        return Ok(AesmRequest::GetQuoteEx(GetQuoteExRequest {
            report: required(m.report, "GetQuoteExRequest", "report")?,
            att_key_id: m.att_key_id,
            qe_report_info: m.qe_report_info,
            buf_size: required(m.buf_size, "GetQuoteExRequest", "buf_size")?,
            timeout: m.timeout,
        }));
    }
    if let Some(m) = req.select_att_key_id_req {
        return Ok(AesmRequest::SelectAttKeyId(SelectAttKeyIdRequest {
            att_key_id_list: m.att_key_id_list,
            timeout: m.timeout,
        }));
    }
    if let Some(m) = req.get_supported_att_key_id_num_req {
        return Ok(AesmRequest::GetSupportedAttKeyIdNum(
            GetSupportedAttKeyIdNumRequest { timeout: m.timeout },
        ));
    }
    if let Some(m) = req.get_supported_att_key_ids_req {
        return Ok(AesmRequest::GetSupportedAttKeyIds(
            GetSupportedAttKeyIdsRequest {
                buf_size: required(m.buf_size, "GetSupportedAttKeyIDsRequest", "buf_size")?,
                timeout: m.timeout,
            },
        ));
    }
    Err(DecodeError::NoKnownRequest)
}

/// Presence of the `required` fields of every sub-message that is set (what a proto2 parser checks
/// before the dispatcher ever sees the message).
fn check_required(req: &wire::Request) -> Result<(), DecodeError> {
    if let Some(m) = &req.get_quote_req {
        required(m.report.as_ref(), "GetQuoteRequest", "report")?;
        required(m.quote_type, "GetQuoteRequest", "quote_type")?;
        required(m.spid.as_ref(), "GetQuoteRequest", "spid")?;
        required(m.buf_size, "GetQuoteRequest", "buf_size")?;
    }
    if let Some(m) = &req.get_lic_token_req {
        required(m.mr_enclave.as_ref(), "GetLaunchTokenRequest", "mr_enclave")?;
        required(m.mr_signer.as_ref(), "GetLaunchTokenRequest", "mr_signer")?;
        required(
            m.se_attributes.as_ref(),
            "GetLaunchTokenRequest",
            "se_attributes",
        )?;
    }
    if let Some(m) = &req.init_quote_ex_req {
        required(m.b_pub_key_id, "InitQuoteExRequest", "b_pub_key_id")?;
    }
    if let Some(m) = &req.get_quote_ex_req {
        required(m.report.as_ref(), "GetQuoteExRequest", "report")?;
        required(m.buf_size, "GetQuoteExRequest", "buf_size")?;
    }
    if let Some(m) = &req.get_supported_att_key_ids_req {
        required(m.buf_size, "GetSupportedAttKeyIDsRequest", "buf_size")?;
    }
    Ok(())
}

/// Encodes a request body (without the length prefix).
///
/// Legacy requests are encoded with their required fields present but empty (zero-length bytes,
/// zero integers): enough for a daemon to recognise them, which is all they are used for.
pub fn encode_request(request: &AesmRequest) -> Vec<u8> {
    let mut req = wire::Request::default();
    match request {
        AesmRequest::InitQuoteEx(r) => {
            req.init_quote_ex_req = Some(wire::InitQuoteExRequest {
                att_key_id: r.att_key_id.clone(),
                b_pub_key_id: Some(r.b_pub_key_id),
                buf_size: r.buf_size,
                timeout: r.timeout,
            });
        }
        AesmRequest::GetQuoteSizeEx(r) => {
            req.get_quote_size_ex_req = Some(wire::GetQuoteSizeExRequest {
                att_key_id: r.att_key_id.clone(),
                timeout: r.timeout,
            });
        }
        AesmRequest::GetQuoteEx(r) => {
            req.get_quote_ex_req = Some(wire::GetQuoteExRequest {
                report: Some(r.report.clone()),
                att_key_id: r.att_key_id.clone(),
                qe_report_info: r.qe_report_info.clone(),
                buf_size: Some(r.buf_size),
                timeout: r.timeout,
            });
        }
        AesmRequest::SelectAttKeyId(r) => {
            req.select_att_key_id_req = Some(wire::SelectAttKeyIdRequest {
                att_key_id_list: r.att_key_id_list.clone(),
                timeout: r.timeout,
            });
        }
        AesmRequest::GetSupportedAttKeyIdNum(r) => {
            req.get_supported_att_key_id_num_req =
                Some(wire::GetSupportedAttKeyIdNumRequest { timeout: r.timeout });
        }
        AesmRequest::GetSupportedAttKeyIds(r) => {
            req.get_supported_att_key_ids_req = Some(wire::GetSupportedAttKeyIdsRequest {
                buf_size: Some(r.buf_size),
                timeout: r.timeout,
            });
        }
        AesmRequest::Legacy(kind) => set_legacy_request(&mut req, *kind),
    }
    req.encode_to_vec()
}

fn set_legacy_request(req: &mut wire::Request, kind: LegacyKind) {
    let opaque = Some(wire::Opaque {});
    match kind {
        LegacyKind::InitQuote => req.init_quote_req = Some(wire::InitQuoteRequest::default()),
        LegacyKind::GetQuote => {
            req.get_quote_req = Some(wire::GetQuoteRequest {
                report: Some(Vec::new()),
                quote_type: Some(0),
                spid: Some(Vec::new()),
                buf_size: Some(0),
                ..Default::default()
            });
        }
        LegacyKind::GetLaunchToken => {
            req.get_lic_token_req = Some(wire::GetLaunchTokenRequest {
                mr_enclave: Some(Vec::new()),
                mr_signer: Some(Vec::new()),
                se_attributes: Some(Vec::new()),
                timeout: None,
            });
        }
        LegacyKind::ReportAttestationError => req.report_err_req = opaque,
        LegacyKind::GetWhiteListSize => req.get_white_list_size_req = opaque,
        LegacyKind::GetWhiteList => req.get_white_list_req = opaque,
        LegacyKind::GetExtendedEpidGroupId => req.sgx_get_extended_epid_group_id_req = opaque,
        LegacyKind::SwitchExtendedEpidGroup => req.sgx_switch_extended_epid_group_req = opaque,
        LegacyKind::Register => req.sgx_register_req = opaque,
        LegacyKind::CheckUpdateStatus => req.check_update_status_req = opaque,
    }
}

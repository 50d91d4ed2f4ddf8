//! Typed responses: [`encode_response`] (always emits `errorCode`) and [`decode_response`].

use prost::Message;

use crate::codes::AesmCode;
use crate::error::DecodeError;
use crate::request::{LegacyKind, RequestKind};
use crate::wire;

/// `InitQuoteExResponse` (15).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InitQuoteExResponse {
    /// `aesm_error_t`
    pub error_code: u32,
    /// The QE's `sgx_target_info_t` (512 bytes).
    pub target_info: Option<Vec<u8>>,
    /// Size of the public key id (32 for ECDSA).
    pub pub_key_id_size: Option<u64>,
    /// The public key id, in full mode only.
    pub pub_key_id: Option<Vec<u8>>,
}

/// `GetQuoteSizeExResponse` (16).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetQuoteSizeExResponse {
    /// `aesm_error_t`
    pub error_code: u32,
    /// The quote size (aesmd sets it even on error).
    pub quote_size: Option<u32>,
}

/// `GetQuoteExResponse` (17).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetQuoteExResponse {
    /// `aesm_error_t`
    pub error_code: u32,
    /// The quote, zero-padded to the requested `buf_size`.
    pub quote: Option<Vec<u8>>,
    /// The request's `qe_report_info` with `qe_report` filled in (echoed whenever it was sent).
    pub qe_report_info: Option<Vec<u8>>,
}

/// `SelectAttKeyIDResponse` (19).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SelectAttKeyIdResponse {
    /// `aesm_error_t`
    pub error_code: u32,
    /// The selected 256-byte `sgx_att_key_id_ext_t`.
    pub selected_att_key_id: Option<Vec<u8>>,
}

/// `GetSupportedAttKeyIDNumResponse` (21).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetSupportedAttKeyIdNumResponse {
    /// `aesm_error_t`
    pub error_code: u32,
    /// Number of supported attestation key ids.
    pub att_key_id_num: Option<u32>,
}

/// `GetSupportedAttKeyIDsResponse` (22).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetSupportedAttKeyIdsResponse {
    /// `aesm_error_t`
    pub error_code: u32,
    /// N × 256 bytes of `sgx_att_key_id_ext_t`.
    pub att_key_ids: Option<Vec<u8>>,
}

/// A response, one variant per request kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AesmResponse {
    /// 15
    InitQuoteEx(InitQuoteExResponse),
    /// 16
    GetQuoteSizeEx(GetQuoteSizeExResponse),
    /// 17
    GetQuoteEx(GetQuoteExResponse),
    /// 19
    SelectAttKeyId(SelectAttKeyIdResponse),
    /// 21
    GetSupportedAttKeyIdNum(GetSupportedAttKeyIdNumResponse),
    /// 22
    GetSupportedAttKeyIds(GetSupportedAttKeyIdsResponse),
    /// The answer to a legacy request: only its `errorCode` is carried.
    Legacy {
        /// Which legacy request is answered.
        kind: LegacyKind,
        /// `aesm_error_t`
        error_code: u32,
    },
}

impl AesmResponse {
    /// A response to a `kind` request that carries only `code` (every other field absent).
    pub fn error(kind: RequestKind, code: AesmCode) -> Self {
        let error_code = code.code();
        match kind {
            RequestKind::InitQuoteEx => AesmResponse::InitQuoteEx(InitQuoteExResponse {
                error_code,
                ..Default::default()
            }),
            RequestKind::GetQuoteSizeEx => AesmResponse::GetQuoteSizeEx(GetQuoteSizeExResponse {
                error_code,
                ..Default::default()
            }),
            RequestKind::GetQuoteEx => AesmResponse::GetQuoteEx(GetQuoteExResponse {
                error_code,
                ..Default::default()
            }),
            RequestKind::SelectAttKeyId => AesmResponse::SelectAttKeyId(SelectAttKeyIdResponse {
                error_code,
                ..Default::default()
            }),
            RequestKind::GetSupportedAttKeyIdNum => {
                AesmResponse::GetSupportedAttKeyIdNum(GetSupportedAttKeyIdNumResponse {
                    error_code,
                    ..Default::default()
                })
            }
            RequestKind::GetSupportedAttKeyIds => {
                AesmResponse::GetSupportedAttKeyIds(GetSupportedAttKeyIdsResponse {
                    error_code,
                    ..Default::default()
                })
            }
            RequestKind::Legacy(kind) => AesmResponse::Legacy { kind, error_code },
        }
    }

    /// Which request this response answers.
    pub fn kind(&self) -> RequestKind {
        match self {
            AesmResponse::InitQuoteEx(_) => RequestKind::InitQuoteEx,
            AesmResponse::GetQuoteSizeEx(_) => RequestKind::GetQuoteSizeEx,
            AesmResponse::GetQuoteEx(_) => RequestKind::GetQuoteEx,
            AesmResponse::SelectAttKeyId(_) => RequestKind::SelectAttKeyId,
            AesmResponse::GetSupportedAttKeyIdNum(_) => RequestKind::GetSupportedAttKeyIdNum,
            AesmResponse::GetSupportedAttKeyIds(_) => RequestKind::GetSupportedAttKeyIds,
            AesmResponse::Legacy { kind, .. } => RequestKind::Legacy(*kind),
        }
    }

    /// The `errorCode` of the response.
    pub fn error_code(&self) -> u32 {
        match self {
            AesmResponse::InitQuoteEx(r) => r.error_code,
            AesmResponse::GetQuoteSizeEx(r) => r.error_code,
            AesmResponse::GetQuoteEx(r) => r.error_code,
            AesmResponse::SelectAttKeyId(r) => r.error_code,
            AesmResponse::GetSupportedAttKeyIdNum(r) => r.error_code,
            AesmResponse::GetSupportedAttKeyIds(r) => r.error_code,
            AesmResponse::Legacy { error_code, .. } => *error_code,
        }
    }
}

/// Encodes a response body (without the length prefix). `errorCode` is always emitted, also when
/// it is 0: its proto2 default is 1, so an omitted 0 would read as `AESM_UNEXPECTED_ERROR`.
pub fn encode_response(response: &AesmResponse) -> Vec<u8> {
    let mut res = wire::Response::default();
    match response {
        AesmResponse::InitQuoteEx(r) => {
            res.init_quote_ex_res = Some(wire::InitQuoteExResponse {
                error_code: Some(r.error_code),
                target_info: r.target_info.clone(),
                pub_key_id_size: r.pub_key_id_size,
                pub_key_id: r.pub_key_id.clone(),
            });
        }
        AesmResponse::GetQuoteSizeEx(r) => {
            res.get_quote_size_ex_res = Some(wire::GetQuoteSizeExResponse {
                error_code: Some(r.error_code),
                quote_size: r.quote_size,
            });
        }
        AesmResponse::GetQuoteEx(r) => {
            res.get_quote_ex_res = Some(wire::GetQuoteExResponse {
                error_code: Some(r.error_code),
                quote: r.quote.clone(),
                qe_report_info: r.qe_report_info.clone(),
            });
        }
        AesmResponse::SelectAttKeyId(r) => {
            res.select_att_key_id_res = Some(wire::SelectAttKeyIdResponse {
                error_code: Some(r.error_code),
                selected_att_key_id: r.selected_att_key_id.clone(),
            });
        }
        AesmResponse::GetSupportedAttKeyIdNum(r) => {
            res.get_supported_att_key_id_num_res = Some(wire::GetSupportedAttKeyIdNumResponse {
                error_code: Some(r.error_code),
                att_key_id_num: r.att_key_id_num,
            });
        }
        AesmResponse::GetSupportedAttKeyIds(r) => {
            res.get_supported_att_key_ids_res = Some(wire::GetSupportedAttKeyIdsResponse {
                error_code: Some(r.error_code),
                att_key_ids: r.att_key_ids.clone(),
            });
        }
        AesmResponse::Legacy { kind, error_code } => {
            let error_code = Some(*error_code);
            let only = Some(wire::ErrorOnlyResponse { error_code });
            match kind {
                LegacyKind::InitQuote => {
                    res.init_quote_res = Some(wire::InitQuoteResponse {
                        error_code,
                        ..Default::default()
                    });
                }
                LegacyKind::GetQuote => {
                    res.get_quote_res = Some(wire::GetQuoteResponse {
                        error_code,
                        ..Default::default()
                    });
                }
                LegacyKind::GetLaunchToken => {
                    res.get_lic_token_res = Some(wire::GetLaunchTokenResponse {
                        error_code,
                        token: None,
                    });
                }
                LegacyKind::ReportAttestationError => res.report_err_res = only,
                LegacyKind::GetWhiteListSize => res.get_white_list_size_res = only,
                LegacyKind::GetWhiteList => res.get_white_list_res = only,
                LegacyKind::GetExtendedEpidGroupId => res.sgx_get_extended_epid_group_id_res = only,
                LegacyKind::SwitchExtendedEpidGroup => {
                    res.sgx_switch_extended_epid_group_res = only
                }
                LegacyKind::Register => res.sgx_register_res = only,
                LegacyKind::CheckUpdateStatus => res.check_update_status_res = only,
            }
        }
    }
    res.encode_to_vec()
}

/// The name of the `Response` field that answers `kind`, as in Intel's schema.
pub fn response_field_name(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::InitQuoteEx => "initQuoteExRes",
        RequestKind::GetQuoteSizeEx => "getQuoteSizeExRes",
        RequestKind::GetQuoteEx => "getQuoteExRes",
        RequestKind::SelectAttKeyId => "selectAttKeyIDRes",
        RequestKind::GetSupportedAttKeyIdNum => "getSupportedAttKeyIDNumRes",
        RequestKind::GetSupportedAttKeyIds => "getSupportedAttKeyIDsRes",
        RequestKind::Legacy(kind) => match kind {
            LegacyKind::InitQuote => "initQuoteRes",
            LegacyKind::GetQuote => "getQuoteRes",
            LegacyKind::GetLaunchToken => "getLicTokenRes",
            LegacyKind::ReportAttestationError => "reportErrRes",
            LegacyKind::GetWhiteListSize => "getWhiteListSizeRes",
            LegacyKind::GetWhiteList => "getWhiteListRes",
            LegacyKind::GetExtendedEpidGroupId => "sgxGetExtendedEpidGroupIdRes",
            LegacyKind::SwitchExtendedEpidGroup => "sgxSwitchExtendedEpidGroupRes",
            LegacyKind::Register => "sgxRegisterRes",
            LegacyKind::CheckUpdateStatus => "checkUpdateStatusRes",
        },
    }
}

/// Decodes the response body to a `kind` request, as a client does: the field answering `kind` must
/// be set (other fields are ignored) and must carry its `required` `errorCode`.
pub fn decode_response(bytes: &[u8], kind: RequestKind) -> Result<AesmResponse, DecodeError> {
    let res = wire::Response::decode(bytes)?;
    let missing = || DecodeError::MissingResponseField {
        expected: response_field_name(kind),
    };
    let name = response_field_name(kind);
    let code = |c: Option<u32>| {
        c.ok_or(DecodeError::MissingRequiredField {
            message: name,
            field: "errorCode",
        })
    };
    Ok(match kind {
        RequestKind::InitQuoteEx => {
            let r = res.init_quote_ex_res.ok_or_else(missing)?;
            AesmResponse::InitQuoteEx(InitQuoteExResponse {
                error_code: code(r.error_code)?,
                target_info: r.target_info,
                pub_key_id_size: r.pub_key_id_size,
                pub_key_id: r.pub_key_id,
            })
        }
        RequestKind::GetQuoteSizeEx => {
            let r = res.get_quote_size_ex_res.ok_or_else(missing)?;
            AesmResponse::GetQuoteSizeEx(GetQuoteSizeExResponse {
                error_code: code(r.error_code)?,
                quote_size: r.quote_size,
            })
        }
        RequestKind::GetQuoteEx => {
            let r = res.get_quote_ex_res.ok_or_else(missing)?;
            AesmResponse::GetQuoteEx(GetQuoteExResponse {
                error_code: code(r.error_code)?,
                quote: r.quote,
                qe_report_info: r.qe_report_info,
            })
        }
        RequestKind::SelectAttKeyId => {
            let r = res.select_att_key_id_res.ok_or_else(missing)?;
            AesmResponse::SelectAttKeyId(SelectAttKeyIdResponse {
                error_code: code(r.error_code)?,
                selected_att_key_id: r.selected_att_key_id,
            })
        }
        RequestKind::GetSupportedAttKeyIdNum => {
            let r = res.get_supported_att_key_id_num_res.ok_or_else(missing)?;
            AesmResponse::GetSupportedAttKeyIdNum(GetSupportedAttKeyIdNumResponse {
                error_code: code(r.error_code)?,
                att_key_id_num: r.att_key_id_num,
            })
        }
        RequestKind::GetSupportedAttKeyIds => {
            let r = res.get_supported_att_key_ids_res.ok_or_else(missing)?;
            AesmResponse::GetSupportedAttKeyIds(GetSupportedAttKeyIdsResponse {
                error_code: code(r.error_code)?,
                att_key_ids: r.att_key_ids,
            })
        }
        RequestKind::Legacy(legacy) => {
            let error_code = match legacy {
                LegacyKind::InitQuote => res.init_quote_res.map(|r| r.error_code),
                LegacyKind::GetQuote => res.get_quote_res.map(|r| r.error_code),
                LegacyKind::GetLaunchToken => res.get_lic_token_res.map(|r| r.error_code),
                LegacyKind::ReportAttestationError => res.report_err_res.map(|r| r.error_code),
                LegacyKind::GetWhiteListSize => res.get_white_list_size_res.map(|r| r.error_code),
                LegacyKind::GetWhiteList => res.get_white_list_res.map(|r| r.error_code),
                LegacyKind::GetExtendedEpidGroupId => {
                    res.sgx_get_extended_epid_group_id_res.map(|r| r.error_code)
                }
                LegacyKind::SwitchExtendedEpidGroup => {
                    res.sgx_switch_extended_epid_group_res.map(|r| r.error_code)
                }
                LegacyKind::Register => res.sgx_register_res.map(|r| r.error_code),
                LegacyKind::CheckUpdateStatus => res.check_update_status_res.map(|r| r.error_code),
            }
            .ok_or_else(missing)?;
            AesmResponse::Legacy {
                kind: legacy,
                error_code: code(error_code)?,
            }
        }
    })
}

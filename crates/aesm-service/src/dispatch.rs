//! Request dispatch: one decoded [`AesmRequest`] in, one [`AesmResponse`] out, with aesmd's
//! parameter checks and error codes (`aesm-protocol.md` §1.6, §9). No sockets here.

use std::sync::Arc;

use aesm_protocol::att_key_id::{
    ATT_KEY_ID_BASE_SIZE, ATT_KEY_ID_SIZE, ECDSA_PUB_KEY_ID_SIZE, QE_REPORT_INFO_SIZE, REPORT_SIZE,
    TARGET_INFO_SIZE,
};
use aesm_protocol::{
    AesmCode, AesmRequest, AesmResponse, AttKeyIdSelection, GetQuoteExRequest, GetQuoteExResponse,
    GetQuoteSizeExRequest, GetQuoteSizeExResponse, GetSupportedAttKeyIdNumResponse,
    GetSupportedAttKeyIdsRequest, GetSupportedAttKeyIdsResponse, InitQuoteExRequest,
    InitQuoteExResponse, RequestKind, SelectAttKeyIdRequest, SelectAttKeyIdResponse,
    parse_att_key_id_list,
};
use sgx_types::structs::Wire;
use sgx_types::{AttKeyId, QeReportInfo, Report};

use crate::backend::{BackendError, QuoteBackend};
use crate::evidence::EvidenceRecorder;

/// Default cap on `GetQuoteExRequest.buf_size`: larger buffers get `AESM_PARAMETER_ERROR` before
/// anything is allocated. Real quotes are about 5 KiB; Gramine asks for 8 KiB.
pub const DEFAULT_MAX_QUOTE_BUFFER: u32 = 64 * 1024;

/// Answers AESM requests from a [`QuoteBackend`].
#[derive(Debug, Clone)]
pub struct Dispatcher {
    backend: Arc<dyn QuoteBackend>,
    key_id: [u8; ATT_KEY_ID_SIZE],
    max_quote_buffer: u32,
    evidence: Option<Arc<EvidenceRecorder>>,
}

/// The response and, for logs, why it carries an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What goes back to the client.
    pub response: AesmResponse,
    /// The reason for a non-zero `errorCode`, for the service's log.
    pub detail: Option<String>,
}

impl Outcome {
    fn ok(response: AesmResponse) -> Self {
        Self {
            response,
            detail: None,
        }
    }
}

/// A failure inside one handler: the code and a log message.
struct Failure {
    code: AesmCode,
    detail: String,
}

impl Failure {
    fn param(detail: impl Into<String>) -> Self {
        Self {
            code: AesmCode::ParameterError,
            detail: detail.into(),
        }
    }
}

impl From<BackendError> for Failure {
    fn from(e: BackendError) -> Self {
        Self {
            code: e.code,
            detail: e.message,
        }
    }
}

impl Dispatcher {
    /// A dispatcher offering Intel's QE3 ECDSA-P256 attestation key id (what `libsgx_dcap_ql`,
    /// Open Enclave and Gramine send), with the default quote-buffer cap.
    pub fn new(backend: Arc<dyn QuoteBackend>) -> Self {
        let mut key_id = [0u8; ATT_KEY_ID_SIZE];
        let encoded = AttKeyId::intel_qe3_ecdsa().to_vec();
        key_id.copy_from_slice(&encoded);
        Self {
            backend,
            key_id,
            max_quote_buffer: DEFAULT_MAX_QUOTE_BUFFER,
            evidence: None,
        }
    }

    /// Publishes the platform part of the quotes made ([`crate::evidence`]) through `recorder`.
    pub fn with_evidence(mut self, recorder: Arc<EvidenceRecorder>) -> Self {
        self.evidence = Some(recorder);
        self
    }

    /// Sets the largest `GetQuoteEx` buffer served.
    pub fn with_max_quote_buffer(mut self, max: u32) -> Self {
        self.max_quote_buffer = max;
        self
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn QuoteBackend> {
        &self.backend
    }

    /// The one attestation key id offered (256 bytes).
    pub fn key_id(&self) -> &[u8; ATT_KEY_ID_SIZE] {
        &self.key_id
    }

    /// Answers one request. Legacy (EPID, launch-token) requests get `AESM_SERVICE_UNAVAILABLE`,
    /// as from an aesmd without those plugins.
    pub fn handle(&self, request: &AesmRequest) -> Outcome {
        match request {
            AesmRequest::InitQuoteEx(r) => self.init_quote_ex(r),
            AesmRequest::GetQuoteSizeEx(r) => self.get_quote_size_ex(r),
            AesmRequest::GetQuoteEx(r) => self.get_quote_ex(r),
            AesmRequest::SelectAttKeyId(r) => self.select_att_key_id(r),
            AesmRequest::GetSupportedAttKeyIdNum(_) => Outcome::ok(
                AesmResponse::GetSupportedAttKeyIdNum(GetSupportedAttKeyIdNumResponse {
                    error_code: AesmCode::Success.code(),
                    att_key_id_num: Some(1),
                }),
            ),
            AesmRequest::GetSupportedAttKeyIds(r) => self.get_supported_att_key_ids(r),
            AesmRequest::Legacy(kind) => Outcome {
                response: AesmResponse::error(
                    RequestKind::Legacy(*kind),
                    AesmCode::ServiceUnavailable,
                ),
                detail: Some(format!(
                    "legacy {} request: EPID and launch tokens are not served",
                    kind.name()
                )),
            },
        }
    }

    /// The key-id check of every quote-ex call: present, at least 256 bytes (→ 3), and its
    /// 158-byte base equal to ours (→ 38).
    fn check_key_id(&self, att_key_id: Option<&[u8]>) -> Result<(), Failure> {
        let Some(id) = att_key_id else {
            return Err(Failure::param("no att_key_id"));
        };
        if id.len() < ATT_KEY_ID_SIZE {
            return Err(Failure::param(format!(
                "att_key_id has {} bytes, expected {ATT_KEY_ID_SIZE}",
                id.len()
            )));
        }
        if !self.matches(id) {
            return Err(Failure {
                code: AesmCode::UnsupportedAttKeyId,
                detail: "att_key_id is not Intel's QE3 ECDSA-P256 key id".into(),
            });
        }
        Ok(())
    }

    fn matches(&self, id: &[u8]) -> bool {
        id.get(..ATT_KEY_ID_BASE_SIZE) == self.key_id.get(..ATT_KEY_ID_BASE_SIZE)
    }

    fn init_quote_ex(&self, r: &InitQuoteExRequest) -> Outcome {
        let run = || -> Result<InitQuoteExResponse, Failure> {
            self.check_key_id(r.att_key_id.as_deref())?;
            if !r.b_pub_key_id {
                // Size query: Intel's QE logic returns the size at once, without key work, and
                // leaves the pre-allocated target info zeroed.
                return Ok(InitQuoteExResponse {
                    error_code: AesmCode::Success.code(),
                    target_info: Some(vec![0u8; TARGET_INFO_SIZE]),
                    pub_key_id_size: Some(ECDSA_PUB_KEY_ID_SIZE),
                    pub_key_id: None,
                });
            }
            if r.buf_size != Some(ECDSA_PUB_KEY_ID_SIZE) {
                return Err(Failure::param(format!(
                    "pub_key_id buffer of {:?} bytes, expected {ECDSA_PUB_KEY_ID_SIZE}",
                    r.buf_size
                )));
            }
            let pub_key_id = self.backend.init_attestation_key()?;
            let target_info = self.backend.qe_target_info()?;
            Ok(InitQuoteExResponse {
                error_code: AesmCode::Success.code(),
                target_info: Some(target_info.to_vec()),
                pub_key_id_size: Some(ECDSA_PUB_KEY_ID_SIZE),
                pub_key_id: Some(pub_key_id.to_vec()),
            })
        };
        match run() {
            Ok(res) => Outcome::ok(AesmResponse::InitQuoteEx(res)),
            Err(f) => Outcome {
                response: AesmResponse::error(RequestKind::InitQuoteEx, f.code),
                detail: Some(f.detail),
            },
        }
    }

    fn get_quote_size_ex(&self, r: &GetQuoteSizeExRequest) -> Outcome {
        let run = || -> Result<u32, Failure> {
            self.check_key_id(r.att_key_id.as_deref())?;
            Ok(self.backend.quote_size()?)
        };
        // aesmd sets `quote_size` in every reply, 0 when the call failed.
        let (quote_size, code, detail) = match run() {
            Ok(size) => (size, AesmCode::Success, None),
            Err(f) => (0, f.code, Some(f.detail)),
        };
        Outcome {
            response: AesmResponse::GetQuoteSizeEx(GetQuoteSizeExResponse {
                error_code: code.code(),
                quote_size: Some(quote_size),
            }),
            detail,
        }
    }

    fn get_quote_ex(&self, r: &GetQuoteExRequest) -> Outcome {
        let run = || -> Result<GetQuoteExResponse, Failure> {
            self.check_key_id(r.att_key_id.as_deref())?;
            if r.report.len() != REPORT_SIZE {
                return Err(Failure::param(format!(
                    "report has {} bytes, expected {REPORT_SIZE}",
                    r.report.len()
                )));
            }
            let info = match &r.qe_report_info {
                None => None,
                Some(bytes) => Some(QeReportInfo::parse(bytes).map_err(|_| {
                    Failure::param(format!(
                        "qe_report_info has {} bytes, expected {QE_REPORT_INFO_SIZE}",
                        bytes.len()
                    ))
                })?),
            };
            if r.buf_size > self.max_quote_buffer {
                return Err(Failure::param(format!(
                    "quote buffer of {} bytes exceeds the maximum of {}",
                    r.buf_size, self.max_quote_buffer
                )));
            }
            let needed = self.backend.quote_size()?;
            if r.buf_size < needed {
                return Err(Failure::param(format!(
                    "quote buffer of {} bytes is smaller than the quote ({needed} bytes)",
                    r.buf_size
                )));
            }
            let report =
                Report::parse(&r.report).map_err(|e| Failure::param(format!("report: {e}")))?;
            let mut quote = self.backend.quote(&report)?;
            if quote.len() > r.buf_size as usize {
                return Err(Failure {
                    code: AesmCode::UnexpectedError,
                    detail: format!(
                        "backend produced {} bytes, more than its quote size {needed}",
                        quote.len()
                    ),
                });
            }
            let qe_report_info = match info {
                None => None,
                Some(mut info) => {
                    info.qe_report = self.backend.qe_report_for_app(
                        &quote,
                        &info.nonce,
                        &info.app_enclave_target_info,
                    )?;
                    Some(info.to_vec())
                }
            };
            if let Some(recorder) = &self.evidence {
                recorder.record(&quote);
            }
            // The reply carries the caller's whole buffer, zero-padded after the quote.
            quote.resize(r.buf_size as usize, 0);
            Ok(GetQuoteExResponse {
                error_code: AesmCode::Success.code(),
                quote: Some(quote),
                qe_report_info,
            })
        };
        match run() {
            Ok(res) => Outcome::ok(AesmResponse::GetQuoteEx(res)),
            Err(f) => Outcome {
                // aesmd echoes `qe_report_info` whenever the request had it, also on error.
                response: AesmResponse::GetQuoteEx(GetQuoteExResponse {
                    error_code: f.code.code(),
                    quote: None,
                    qe_report_info: r.qe_report_info.clone(),
                }),
                detail: Some(f.detail),
            },
        }
    }

    fn select_att_key_id(&self, r: &SelectAttKeyIdRequest) -> Outcome {
        let run = || -> Result<Vec<u8>, Failure> {
            match parse_att_key_id_list(r.att_key_id_list.as_deref()) {
                Err(code) => Err(Failure {
                    code,
                    detail: "malformed att_key_id_list".into(),
                }),
                Ok(AttKeyIdSelection::AllAvailable) => Ok(self.key_id.to_vec()),
                Ok(AttKeyIdSelection::Listed(ids)) => ids
                    .iter()
                    .find(|id| self.matches(id.as_slice()))
                    .map(|id| id.to_vec())
                    .ok_or_else(|| Failure {
                        code: AesmCode::UnsupportedAttKeyId,
                        detail: format!("none of the {} listed key ids is supported", ids.len()),
                    }),
            }
        };
        match run() {
            Ok(id) => Outcome::ok(AesmResponse::SelectAttKeyId(SelectAttKeyIdResponse {
                error_code: AesmCode::Success.code(),
                selected_att_key_id: Some(id),
            })),
            Err(f) => Outcome {
                response: AesmResponse::error(RequestKind::SelectAttKeyId, f.code),
                detail: Some(f.detail),
            },
        }
    }

    fn get_supported_att_key_ids(&self, r: &GetSupportedAttKeyIdsRequest) -> Outcome {
        if r.buf_size as usize != ATT_KEY_ID_SIZE {
            return Outcome {
                response: AesmResponse::error(
                    RequestKind::GetSupportedAttKeyIds,
                    AesmCode::ParameterError,
                ),
                detail: Some(format!(
                    "buffer of {} bytes, expected {ATT_KEY_ID_SIZE} (one key id)",
                    r.buf_size
                )),
            };
        }
        Outcome::ok(AesmResponse::GetSupportedAttKeyIds(
            GetSupportedAttKeyIdsResponse {
                error_code: AesmCode::Success.code(),
                att_key_ids: Some(self.key_id.to_vec()),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use aesm_protocol::{GetSupportedAttKeyIdNumRequest, LegacyKind, encode_att_key_id_list};
    use sgx_types::TargetInfo;

    use super::*;

    /// A backend whose key exists after `init_attestation_key` and whose "quote" is the report's
    /// report_data repeated; reports with a zero MAC are "invalid".
    #[derive(Debug, Default)]
    struct Fixed {
        initialised: AtomicBool,
    }

    const QUOTE_LEN: u32 = 1000;

    impl QuoteBackend for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }
        fn is_simulated(&self) -> bool {
            true
        }
        fn init_attestation_key(&self) -> Result<[u8; 32], BackendError> {
            self.initialised.store(true, Ordering::SeqCst);
            Ok([7; 32])
        }
        fn qe_target_info(&self) -> Result<TargetInfo, BackendError> {
            Ok(TargetInfo {
                mr_enclave: [9; 32],
                ..TargetInfo::default()
            })
        }
        fn quote_size(&self) -> Result<u32, BackendError> {
            if self.initialised.load(Ordering::SeqCst) {
                Ok(QUOTE_LEN)
            } else {
                Err(BackendError::att_key_not_initialized())
            }
        }
        fn quote(&self, report: &Report) -> Result<Vec<u8>, BackendError> {
            self.quote_size()?;
            if report.mac == [0; 16] {
                return Err(BackendError::invalid_report());
            }
            Ok(report
                .body
                .report_data
                .iter()
                .copied()
                .cycle()
                .take(QUOTE_LEN as usize)
                .collect())
        }
        fn qe_report_for_app(
            &self,
            quote: &[u8],
            nonce: &[u8; 16],
            app_target: &TargetInfo,
        ) -> Result<Report, BackendError> {
            let mut report = Report::default();
            report.body.report_data[..16].copy_from_slice(nonce);
            report.body.report_data[16] = quote.len() as u8;
            report.body.mr_enclave = app_target.mr_enclave;
            Ok(report)
        }
    }

    fn dispatcher() -> Dispatcher {
        Dispatcher::new(Arc::new(Fixed::default()))
    }

    fn key() -> Vec<u8> {
        AttKeyId::intel_qe3_ecdsa().to_vec()
    }

    fn init(d: &Dispatcher, full: bool, buf_size: Option<u64>, key: Option<Vec<u8>>) -> Outcome {
        d.handle(&AesmRequest::InitQuoteEx(InitQuoteExRequest {
            att_key_id: key,
            b_pub_key_id: full,
            buf_size,
            timeout: None,
        }))
    }

    fn report(mac: u8) -> Vec<u8> {
        let mut r = Report::default();
        r.body.report_data = [0x5a; 64];
        r.mac = [mac; 16];
        r.to_vec()
    }

    fn get_quote(d: &Dispatcher, report: Vec<u8>, info: Option<Vec<u8>>, buf_size: u32) -> Outcome {
        d.handle(&AesmRequest::GetQuoteEx(GetQuoteExRequest {
            report,
            att_key_id: Some(key()),
            qe_report_info: info,
            buf_size,
            timeout: None,
        }))
    }

    #[test]
    fn size_query_answers_32_with_a_zero_target_info_and_no_key_work() {
        let d = dispatcher();
        // An arbitrary buf_size, as the DCAP library's uninitialised size_t.
        let out = init(&d, false, Some(0xdead_beef_1234), Some(key()));
        let AesmResponse::InitQuoteEx(r) = out.response else {
            panic!()
        };
        assert_eq!(r.error_code, 0);
        assert_eq!(r.pub_key_id_size, Some(32));
        assert_eq!(r.target_info, Some(vec![0; 512]));
        assert_eq!(r.pub_key_id, None);
        // Still no key: quoting reports 42.
        let size = d.handle(&AesmRequest::GetQuoteSizeEx(GetQuoteSizeExRequest {
            att_key_id: Some(key()),
            timeout: None,
        }));
        assert_eq!(size.response.error_code(), 42);
        let AesmResponse::GetQuoteSizeEx(s) = size.response else {
            panic!()
        };
        assert_eq!(s.quote_size, Some(0));
    }

    #[test]
    fn full_mode_needs_a_32_byte_buffer() {
        let d = dispatcher();
        for bad in [None, Some(0), Some(31), Some(33), Some(64)] {
            assert_eq!(
                init(&d, true, bad, Some(key())).response.error_code(),
                3,
                "{bad:?}"
            );
        }
        let out = init(&d, true, Some(32), Some(key()));
        let AesmResponse::InitQuoteEx(r) = out.response else {
            panic!()
        };
        assert_eq!(r.error_code, 0);
        assert_eq!(r.pub_key_id, Some(vec![7; 32]));
        assert_eq!(r.pub_key_id_size, Some(32));
        let ti = r.target_info.unwrap();
        assert_eq!(ti.len(), 512);
        assert_eq!(&ti[..32], &[9; 32]);
    }

    #[test]
    fn key_id_checks_give_3_then_38() {
        let d = dispatcher();
        assert_eq!(init(&d, true, Some(32), None).response.error_code(), 3);
        assert_eq!(
            init(&d, true, Some(32), Some(key()[..255].to_vec()))
                .response
                .error_code(),
            3
        );
        // Differences past the 158-byte base are ignored, inside it they are not.
        let mut tail = key();
        tail[200] = 1;
        tail.push(0);
        assert_eq!(
            init(&d, true, Some(32), Some(tail)).response.error_code(),
            0
        );
        let mut epid = key();
        epid[154] = 0; // algorithm id
        assert_eq!(
            init(&d, true, Some(32), Some(epid)).response.error_code(),
            38
        );
    }

    #[test]
    fn get_quote_is_padded_to_the_buffer_and_checked() {
        let d = dispatcher();
        assert_eq!(
            get_quote(&d, report(1), None, 8192).response.error_code(),
            42
        );
        init(&d, true, Some(32), Some(key()));
        let out = get_quote(&d, report(1), None, 8192);
        let AesmResponse::GetQuoteEx(r) = out.response else {
            panic!()
        };
        assert_eq!(r.error_code, 0);
        let quote = r.quote.unwrap();
        assert_eq!(quote.len(), 8192);
        assert!(quote[..QUOTE_LEN as usize].iter().all(|&b| b == 0x5a));
        assert!(quote[QUOTE_LEN as usize..].iter().all(|&b| b == 0));
        assert_eq!(r.qe_report_info, None);

        assert_eq!(
            get_quote(&d, report(1), None, QUOTE_LEN - 1)
                .response
                .error_code(),
            3
        );
        assert_eq!(
            get_quote(&d, report(1), None, QUOTE_LEN)
                .response
                .error_code(),
            0
        );
        assert_eq!(
            get_quote(&d, report(1), None, 64 * 1024 + 1)
                .response
                .error_code(),
            3
        );
        assert_eq!(
            get_quote(&d, report(1)[..431].to_vec(), None, 8192)
                .response
                .error_code(),
            3
        );
        assert_eq!(
            get_quote(&d, report(0), None, 8192).response.error_code(),
            47
        );
    }

    #[test]
    fn qe_report_info_is_filled_on_success_and_echoed_on_error() {
        let d = dispatcher();
        init(&d, true, Some(32), Some(key()));
        let mut info = QeReportInfo {
            nonce: [3; 16],
            ..QeReportInfo::default()
        };
        info.app_enclave_target_info.mr_enclave = [4; 32];
        let sent = info.to_vec();
        let AesmResponse::GetQuoteEx(r) =
            get_quote(&d, report(1), Some(sent.clone()), 8192).response
        else {
            panic!()
        };
        let back = QeReportInfo::parse(&r.qe_report_info.unwrap()).unwrap();
        assert_eq!(back.nonce, [3; 16]);
        assert_eq!(&back.qe_report.body.report_data[..16], &[3; 16]);
        assert_eq!(back.qe_report.body.report_data[16], (QUOTE_LEN % 256) as u8);
        assert_eq!(back.qe_report.body.mr_enclave, [4; 32]);

        // Errors: the request's bytes come back unchanged.
        let AesmResponse::GetQuoteEx(r) =
            get_quote(&d, report(0), Some(sent.clone()), 8192).response
        else {
            panic!()
        };
        assert_eq!(
            (r.error_code, r.quote, r.qe_report_info),
            (47, None, Some(sent.clone()))
        );
        let short = sent[..959].to_vec();
        let AesmResponse::GetQuoteEx(r) =
            get_quote(&d, report(1), Some(short.clone()), 8192).response
        else {
            panic!()
        };
        assert_eq!((r.error_code, r.qe_report_info), (3, Some(short)));
    }

    #[test]
    fn key_id_listing_and_selection() {
        let d = dispatcher();
        let num = d.handle(&AesmRequest::GetSupportedAttKeyIdNum(
            GetSupportedAttKeyIdNumRequest { timeout: None },
        ));
        let AesmResponse::GetSupportedAttKeyIdNum(n) = num.response else {
            panic!()
        };
        assert_eq!((n.error_code, n.att_key_id_num), (0, Some(1)));
        let ids = |buf_size| {
            d.handle(&AesmRequest::GetSupportedAttKeyIds(
                GetSupportedAttKeyIdsRequest {
                    buf_size,
                    timeout: None,
                },
            ))
            .response
        };
        let AesmResponse::GetSupportedAttKeyIds(r) = ids(256) else {
            panic!()
        };
        assert_eq!(r.att_key_ids, Some(key()));
        for bad in [0, 255, 512] {
            assert_eq!(ids(bad).error_code(), 3);
        }

        let select = |list: Option<Vec<u8>>| {
            d.handle(&AesmRequest::SelectAttKeyId(SelectAttKeyIdRequest {
                att_key_id_list: list,
                timeout: None,
            }))
            .response
        };
        let AesmResponse::SelectAttKeyId(r) = select(None) else {
            panic!()
        };
        assert_eq!(r.selected_att_key_id, Some(key()));
        let ours: [u8; 256] = key().try_into().unwrap();
        let mut other = ours;
        other[0] = 1;
        let AesmResponse::SelectAttKeyId(r) = select(Some(encode_att_key_id_list(&[other, ours])))
        else {
            panic!()
        };
        assert_eq!((r.error_code, r.selected_att_key_id), (0, Some(key())));
        assert_eq!(
            select(Some(encode_att_key_id_list(&[other]))).error_code(),
            38
        );
        assert_eq!(select(Some(vec![0; 9])).error_code(), 3);
    }

    #[test]
    fn legacy_requests_get_service_unavailable() {
        let d = dispatcher();
        for kind in LegacyKind::ALL {
            let out = d.handle(&AesmRequest::Legacy(kind));
            assert_eq!(out.response.error_code(), 30);
            assert_eq!(out.response.kind(), RequestKind::Legacy(kind));
        }
    }
}

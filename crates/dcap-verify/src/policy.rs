//! What a relying party accepts, and the verdict it gets.

use sgx_types::ReportBody;

use crate::error::QvResult;
use crate::tcb::TcbStatus;

/// Relying-party policy applied to a quote that passed every verification check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Accept enclaves with the DEBUG attribute (default: no).
    pub allow_debug: bool,
    pub mr_enclave: Option<[u8; 32]>,
    pub mr_signer: Option<[u8; 32]>,
    pub isv_prod_id: Option<u16>,
    pub min_isv_svn: Option<u16>,
    /// Expected report data: the first `len` (1 to 64) bytes of the enclave's report data must equal it.
    pub report_data: Option<Vec<u8>>,
    /// Minimum `tcbEvaluationDataNumber` (of the lower of TCB info and QE identity).
    pub min_tcb_evaluation_data_number: Option<u32>,
    /// Statuses accepted.
    pub accepted_statuses: Vec<TcbStatus>,
}

impl Policy {
    /// The statuses accepted by default: UpToDate, SWHardeningNeeded, ConfigurationNeeded,
    /// ConfigurationAndSWHardeningNeeded.
    pub const DEFAULT_ACCEPTED: [TcbStatus; 4] = [
        TcbStatus::UpToDate,
        TcbStatus::SWHardeningNeeded,
        TcbStatus::ConfigurationNeeded,
        TcbStatus::ConfigurationAndSWHardeningNeeded,
    ];

    /// Applies the policy; returns the reasons for rejection (empty when accepted).
    pub fn evaluate(&self, body: &ReportBody, status: TcbStatus, tcb_eval: u32) -> Vec<String> {
        let mut reasons = Vec::new();
        if !self.accepted_statuses.contains(&status) {
            let accepted: Vec<&str> = self.accepted_statuses.iter().map(|s| s.name()).collect();
            reasons.push(format!(
                "TCB status {status} not accepted (accepted: {})",
                accepted.join(", ")
            ));
        }
        if body.attributes.is_debug() && !self.allow_debug {
            reasons.push("debug enclave not allowed: the DEBUG attribute is set".into());
        }
        if let Some(want) = &self.mr_enclave
            && want != &body.mr_enclave
        {
            reasons.push(format!(
                "MRENCLAVE mismatch: expected {}, quote has {}",
                hex::encode(want),
                hex::encode(body.mr_enclave)
            ));
        }
        if let Some(want) = &self.mr_signer
            && want != &body.mr_signer
        {
            reasons.push(format!(
                "MRSIGNER mismatch: expected {}, quote has {}",
                hex::encode(want),
                hex::encode(body.mr_signer)
            ));
        }
        if let Some(want) = self.isv_prod_id
            && want != body.isv_prod_id
        {
            reasons.push(format!(
                "ISVPRODID mismatch: expected {want}, quote has {}",
                body.isv_prod_id
            ));
        }
        if let Some(min) = self.min_isv_svn
            && body.isv_svn < min
        {
            reasons.push(format!("ISVSVN {} below the minimum {min}", body.isv_svn));
        }
        if let Some(want) = &self.report_data {
            let have = body.report_data.get(..want.len());
            if want.is_empty() || have != Some(want.as_slice()) {
                reasons.push(format!(
                    "report data mismatch: expected {}, quote has {}",
                    hex::encode(want),
                    hex::encode(body.report_data)
                ));
            }
        }
        if let Some(min) = self.min_tcb_evaluation_data_number
            && tcb_eval < min
        {
            reasons.push(format!(
                "tcbEvaluationDataNumber {tcb_eval} below the minimum {min}"
            ));
        }
        reasons
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            allow_debug: false,
            mr_enclave: None,
            mr_signer: None,
            isv_prod_id: None,
            min_isv_svn: None,
            report_data: None,
            min_tcb_evaluation_data_number: None,
            accepted_statuses: Self::DEFAULT_ACCEPTED.to_vec(),
        }
    }
}

/// The outcome of verifying a quote that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Platform status converged with the QE's.
    pub status: TcbStatus,
    /// Intel's `sgx_ql_qv_result_t` for `status`.
    pub qv_result: QvResult,
    /// Advisory ids of the platform and QE levels (union, platform first).
    pub advisory_ids: Vec<String>,
    pub platform_status: TcbStatus,
    pub platform_advisory_ids: Vec<String>,
    pub qe_status: TcbStatus,
    pub qe_advisory_ids: Vec<String>,
    pub fmspc: [u8; 6],
    pub pce_id: [u8; 2],
    /// `tcbDate` of the matched platform TCB level.
    pub tcb_date: String,
    /// The lower `tcbEvaluationDataNumber` of TCB info and QE identity.
    pub tcb_evaluation_data_number: u32,
    /// TCB info format version (2 or 3).
    pub tcb_info_version: u32,
    /// Earliest expiry (Unix seconds) among the collateral: TCB info and QE identity `nextUpdate`, both
    /// CRLs' `nextUpdate`, and the certificates' `notAfter`.
    pub earliest_expiry: u64,
    /// Whether the trust anchor is Intel's SGX Root CA. Anything else is a simulated or private PKI.
    pub intel_root: bool,
    pub quote_version: u16,
    /// The enclave's report body (identity and report data).
    pub report_body: ReportBody,
    pub qe_isv_svn: u16,
    pub pce_svn: u16,
    /// Whether the relying-party policy accepted the quote.
    pub accepted: bool,
    /// Why the policy rejected it (empty when accepted).
    pub rejections: Vec<String>,
}

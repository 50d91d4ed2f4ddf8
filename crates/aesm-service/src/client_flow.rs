//! The out-of-process quoting flow of an enclave app, on the simulated platform: what
//! `libsgx_dcap_ql` / Open Enclave do through `libsgx_quote_ex` when `SGX_AESM_ADDR` is set, with
//! the enclave's EREPORT done by [`SimCpu`].
//!
//! supported key ids → InitQuoteEx (size query, then full) → report for the QE's target info →
//! GetQuoteSizeEx → GetQuoteEx with a nonce and the app's target info → check the QE report (MAC
//! and report_data = SHA-256(nonce ‖ quote) ‖ 0^32) → the quote, trimmed.

use aesm_protocol::att_key_id::{ATT_KEY_ID_BASE_SIZE, ATT_KEY_ID_SIZE, ECDSA_PUB_KEY_ID_SIZE};
use quote_client::{AesmClient, ClientError};
use ring::rand::{SecureRandom, SystemRandom};
use sgx_sim::{EnclaveIdentity, SimCpu};
use sgx_types::quote::Quote;
use sgx_types::structs::{QlAttKeyId, SGX_QL_ALG_ECDSA_P256, Wire};
use sgx_types::{QeReportInfo, Report, TargetInfo};

/// Why the flow failed, named after the step.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// A request to the AESM service failed.
    #[error("{step}: {source}")]
    Aesm {
        /// The request, e.g. `"GetQuoteEx"`.
        step: &'static str,
        /// What the client saw.
        source: ClientError,
    },
    /// The service offers no ECDSA-P256 attestation key id.
    #[error("the AESM service offers no ECDSA-P256 attestation key id ({offered} offered)")]
    NoEcdsaKeyId {
        /// How many key ids it offers.
        offered: u32,
    },
    /// A reply had the right shape for the protocol but not for the flow.
    #[error("{step}: {problem}")]
    BadReply {
        /// The request.
        step: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The QE report in the reply does not prove the quote came from the quoting enclave.
    #[error("the QE report does not verify: {0}")]
    QeReport(&'static str),
    /// No randomness for the nonce.
    #[error("no randomness for the nonce")]
    Random,
}

/// Everything the flow saw, for printing and for checks.
#[derive(Debug, Clone)]
pub struct AppQuote {
    /// The attestation key id used (256 bytes).
    pub att_key_id: Vec<u8>,
    /// The QE's target info from the full-mode InitQuoteEx.
    pub qe_target_info: TargetInfo,
    /// The attestation key's public key id (32 bytes).
    pub pub_key_id: Vec<u8>,
    /// The app enclave's report, MACed for the QE.
    pub report: Report,
    /// GetQuoteSizeEx's answer.
    pub quote_size: u32,
    /// The quote, trimmed to 436 + signature_data_len.
    pub quote: Vec<u8>,
    /// The nonce sent with the QE report request.
    pub nonce: [u8; 16],
    /// The QE report for the app enclave, already checked.
    pub qe_report: Report,
}

fn aesm(step: &'static str) -> impl FnOnce(ClientError) -> FlowError {
    move |source| FlowError::Aesm { step, source }
}

fn bad(step: &'static str, problem: impl Into<String>) -> FlowError {
    FlowError::BadReply {
        step,
        problem: problem.into(),
    }
}

/// Runs the whole flow against the service behind `client` as the enclave `enclave` on the
/// simulated CPU `cpu`, with `report_data` in the app's report.
pub fn quote_via_socket(
    client: &AesmClient,
    cpu: &SimCpu,
    enclave: &EnclaveIdentity,
    report_data: &[u8; 64],
) -> Result<AppQuote, FlowError> {
    // 1. Key ids, as Open Enclave asks: the first ECDSA-P256 one.
    let num = client
        .get_supported_att_key_id_num()
        .map_err(aesm("GetSupportedAttKeyIDNum"))?;
    let ids = client
        .get_supported_att_key_ids(num)
        .map_err(aesm("GetSupportedAttKeyIDs"))?;
    let att_key_id = ids
        .chunks_exact(ATT_KEY_ID_SIZE)
        .find(|id| {
            id.get(..ATT_KEY_ID_BASE_SIZE)
                .and_then(|base| QlAttKeyId::parse(base).ok())
                .is_some_and(|base| base.algorithm_id == SGX_QL_ALG_ECDSA_P256)
        })
        .ok_or(FlowError::NoEcdsaKeyId { offered: num })?
        .to_vec();

    // 2. InitQuoteEx: size query, then full mode with a buffer of that size.
    let sizing = client
        .init_quote_ex(&att_key_id, None)
        .map_err(aesm("InitQuoteEx (size query)"))?;
    let pub_key_id_size = sizing
        .pub_key_id_size
        .ok_or_else(|| bad("InitQuoteEx (size query)", "no pub_key_id_size"))?;
    if pub_key_id_size != ECDSA_PUB_KEY_ID_SIZE {
        // libsgx_dcap_ql fails the same way.
        return Err(bad(
            "InitQuoteEx (size query)",
            format!("pub_key_id_size {pub_key_id_size}, expected {ECDSA_PUB_KEY_ID_SIZE}"),
        ));
    }
    let init = client
        .init_quote_ex(&att_key_id, Some(pub_key_id_size))
        .map_err(aesm("InitQuoteEx"))?;
    let qe_target_info = init
        .target_info
        .as_deref()
        .ok_or_else(|| bad("InitQuoteEx", "no target_info"))
        .and_then(|ti| {
            TargetInfo::parse(ti).map_err(|e| bad("InitQuoteEx", format!("target_info: {e}")))
        })?;
    let pub_key_id = init
        .pub_key_id
        .ok_or_else(|| bad("InitQuoteEx", "no pub_key_id"))?;

    // 3. The enclave's report for the QE.
    let report = cpu.create_report(enclave, &qe_target_info, report_data);

    // 4. GetQuoteSizeEx, then GetQuoteEx asking for a QE report for this enclave.
    let quote_size = client
        .get_quote_size_ex(Some(&att_key_id))
        .map_err(aesm("GetQuoteSizeEx"))?;
    let mut nonce = [0u8; 16];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| FlowError::Random)?;
    let app_target = enclave.target_info();
    let info = QeReportInfo {
        nonce,
        app_enclave_target_info: app_target,
        qe_report: Report::default(),
    };
    let reply = client
        .get_quote_ex(
            &report.to_vec(),
            &att_key_id,
            Some(&info.to_vec()),
            quote_size,
        )
        .map_err(aesm("GetQuoteEx"))?;
    let padded = reply.quote.ok_or_else(|| bad("GetQuoteEx", "no quote"))?;
    let parsed = Quote::parse(&padded).map_err(|e| bad("GetQuoteEx", format!("quote: {e}")))?;
    if parsed.report_body != report.body {
        return Err(bad(
            "GetQuoteEx",
            "the quote does not carry the enclave's report",
        ));
    }
    let quote = padded
        .get(..parsed.quote_len())
        .ok_or_else(|| bad("GetQuoteEx", "quote length beyond the reply"))?
        .to_vec();

    // 5. The QE report: MACed for this enclave, binding the nonce and the quote.
    let returned = reply
        .qe_report_info
        .as_deref()
        .ok_or_else(|| bad("GetQuoteEx", "no qe_report_info"))
        .and_then(|b| {
            QeReportInfo::parse(b).map_err(|e| bad("GetQuoteEx", format!("qe_report_info: {e}")))
        })?;
    let qe_report = returned.qe_report;
    if !cpu.verify_report(&qe_report, &app_target) {
        return Err(FlowError::QeReport("its MAC is not for this enclave"));
    }
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&nonce);
    ctx.update(&quote);
    let digest = ctx.finish();
    let (bound, rest) = qe_report.body.report_data.split_at(32);
    if bound != digest.as_ref() || rest.iter().any(|&b| b != 0) {
        return Err(FlowError::QeReport(
            "report_data is not SHA-256(nonce ‖ quote) ‖ 0^32",
        ));
    }

    Ok(AppQuote {
        att_key_id,
        qe_target_info,
        pub_key_id,
        report,
        quote_size,
        quote,
        nonce,
        qe_report,
    })
}

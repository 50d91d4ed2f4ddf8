//! JSON and text views of quotes, shared by `inspect` and `verify` so that both use the same names:
//! snake_case keys, integers as JSON integers, byte arrays as lowercase hex, dates as RFC 3339 UTC.

use std::fmt::Write as _;

use serde::Serialize;
use sgx_types::pck::{PckExtension, parse_pem_chain};
use sgx_types::quote::Quote;
use sgx_types::{CertificationData, ReportBody};
use x509_cert::Certificate;

#[derive(Debug, Serialize)]
pub struct ReportBodyJson {
    pub cpu_svn: String,
    pub misc_select: u32,
    pub attributes: String,
    pub mr_enclave: String,
    pub mr_signer: String,
    pub isv_prod_id: u16,
    pub isv_svn: u16,
    pub config_svn: u16,
    pub isv_family_id: String,
    pub isv_ext_prod_id: String,
    pub config_id: String,
    pub report_data: String,
    pub debug: bool,
}

impl From<&ReportBody> for ReportBodyJson {
    fn from(b: &ReportBody) -> Self {
        Self {
            cpu_svn: hex::encode(b.cpu_svn),
            misc_select: b.misc_select,
            attributes: hex::encode(b.attributes.to_bytes()),
            mr_enclave: hex::encode(b.mr_enclave),
            mr_signer: hex::encode(b.mr_signer),
            isv_prod_id: b.isv_prod_id,
            isv_svn: b.isv_svn,
            config_svn: b.config_svn,
            isv_family_id: hex::encode(b.isv_family_id),
            isv_ext_prod_id: hex::encode(b.isv_ext_prod_id),
            config_id: hex::encode(b.config_id),
            report_data: hex::encode(b.report_data),
            debug: b.attributes.is_debug(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SignatureJson {
    pub isv_signature: String,
    pub attestation_key: String,
    pub qe_report: ReportBodyJson,
    pub qe_report_signature: String,
    pub qe_auth_data: String,
    pub cert_data_type: u16,
    pub cert_data_type_name: &'static str,
    pub cert_data_len: usize,
}

#[derive(Debug, Serialize)]
pub struct PckConfigurationJson {
    pub dynamic_platform: Option<bool>,
    pub cached_keys: Option<bool>,
    pub smt_enabled: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct PckJson {
    pub fmspc: String,
    pub pce_id: String,
    pub ppid: String,
    pub tcb_components: [u8; 16],
    pub pce_svn: u16,
    pub cpu_svn: String,
    pub sgx_type: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<PckConfigurationJson>,
}

impl From<&PckExtension> for PckJson {
    fn from(e: &PckExtension) -> Self {
        Self {
            fmspc: hex::encode(e.fmspc),
            pce_id: hex::encode(e.pce_id),
            ppid: hex::encode(e.ppid),
            tcb_components: e.tcb.comp_svn,
            pce_svn: e.tcb.pce_svn,
            cpu_svn: hex::encode(e.tcb.cpu_svn),
            sgx_type: e.sgx_type,
            platform_instance_id: e.platform_instance_id.map(hex::encode),
            configuration: e.configuration.map(|c| PckConfigurationJson {
                dynamic_platform: c.dynamic_platform,
                cached_keys: c.cached_keys,
                smt_enabled: c.smt_enabled,
            }),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CertJson {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
}

impl From<&Certificate> for CertJson {
    fn from(c: &Certificate) -> Self {
        let tbs = c.tbs_certificate();
        Self {
            subject: tbs.subject().to_string(),
            issuer: tbs.issuer().to_string(),
            serial: hex::encode(tbs.serial_number().as_bytes()),
            not_before: rfc3339(tbs.validity().not_before.to_unix_duration().as_secs()),
            not_after: rfc3339(tbs.validity().not_after.to_unix_duration().as_secs()),
        }
    }
}

/// Formats Unix seconds as RFC 3339 UTC (`2025-07-04T10:28:44Z`).
pub fn rfc3339(unix_secs: u64) -> String {
    let format = time::format_description::well_known::Rfc3339;
    i64::try_from(unix_secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| format!("@{unix_secs}"))
}

#[derive(Debug, Serialize)]
pub struct QuoteJson {
    pub version: u16,
    pub att_key_type: u16,
    pub tee_type: u32,
    pub qe_svn: u16,
    pub pce_svn: u16,
    pub qe_vendor_id: String,
    pub user_data: String,
    pub report_body: ReportBodyJson,
    pub signature_data_len: usize,
    pub signed_len: usize,
    pub quote_len: usize,
    pub signature: SignatureJson,
    pub pck: Option<PckJson>,
    pub pck_chain: Vec<CertJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pck_error: Option<String>,
    pub trailing_bytes: usize,
}

/// The PCK chain of a quote and the SGX extension of its leaf, decoded as far as they go.
pub struct PckView {
    pub chain: Vec<Certificate>,
    pub extension: Option<PckExtension>,
    pub error: Option<String>,
}

impl PckView {
    pub fn of(quote: &Quote<'_>) -> Self {
        let cert = &quote.signature.certification_data;
        let Some(pem) = cert.pck_chain_pem() else {
            return Self {
                chain: Vec::new(),
                extension: None,
                error: None,
            };
        };
        match parse_pem_chain(pem) {
            Err(e) => Self {
                chain: Vec::new(),
                extension: None,
                error: Some(e.to_string()),
            },
            Ok(chain) => {
                let leaf = chain.first().map(PckExtension::from_certificate);
                let (extension, error) = match leaf {
                    Some(Ok(ext)) => (Some(ext), None),
                    Some(Err(e)) => (None, Some(e.to_string())),
                    None => (None, Some("empty PCK certificate chain".into())),
                };
                Self {
                    chain,
                    extension,
                    error,
                }
            }
        }
    }
}

impl QuoteJson {
    pub fn new(quote: &Quote<'_>) -> Self {
        let pck = PckView::of(quote);
        let sig = &quote.signature;
        let cert = &sig.certification_data;
        Self {
            version: quote.header.version,
            att_key_type: quote.header.att_key_type,
            tee_type: quote.header.tee_type,
            qe_svn: quote.header.qe_svn,
            pce_svn: quote.header.pce_svn,
            qe_vendor_id: hex::encode(quote.header.qe_vendor_id),
            user_data: hex::encode(quote.header.user_data),
            report_body: (&quote.report_body).into(),
            signature_data_len: quote.signature_data_len(),
            signed_len: quote.signed_len(),
            quote_len: quote.quote_len(),
            signature: SignatureJson {
                isv_signature: hex::encode(sig.isv_signature),
                attestation_key: hex::encode(sig.attestation_key),
                qe_report: (&sig.qe_report).into(),
                qe_report_signature: hex::encode(sig.qe_report_signature),
                qe_auth_data: hex::encode(sig.qe_auth_data),
                cert_data_type: cert.cert_type,
                cert_data_type_name: CertificationData::type_name(cert.cert_type),
                cert_data_len: cert.data.len(),
            },
            pck: pck.extension.as_ref().map(PckJson::from),
            pck_chain: pck.chain.iter().map(CertJson::from).collect(),
            pck_error: pck.error,
            trailing_bytes: quote.trailing_bytes.len(),
        }
    }
}

/// The enclave identity lines shared by the text outputs of `inspect` and `verify`.
pub fn identity_text(out: &mut String, b: &ReportBody) {
    let _ = writeln!(out, "  mr_enclave     {}", hex::encode(b.mr_enclave));
    let _ = writeln!(out, "  mr_signer      {}", hex::encode(b.mr_signer));
    let _ = writeln!(
        out,
        "  isv_prod_id    {}   isv_svn {}   config_svn {}",
        b.isv_prod_id, b.isv_svn, b.config_svn
    );
    let _ = writeln!(
        out,
        "  attributes     {}{}",
        hex::encode(b.attributes.to_bytes()),
        if b.attributes.is_debug() {
            "  (DEBUG enclave)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "  misc_select    {:#010x}", b.misc_select);
    let _ = writeln!(out, "  report_data    {}", hex::encode(b.report_data));
}

/// A readable multi-line summary of a quote.
pub fn quote_text(q: &QuoteJson, quote: &Quote<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "SGX DCAP quote v{} ({} bytes, ECDSA-P256, TEE type {}{})",
        q.version,
        q.quote_len,
        q.tee_type,
        if q.trailing_bytes > 0 {
            format!(", {} trailing bytes after it", q.trailing_bytes)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "  qe_svn {}   pce_svn {}   qe_vendor_id {}{}",
        q.qe_svn,
        q.pce_svn,
        q.qe_vendor_id,
        if quote.header.qe_vendor_id == sgx_types::quote::INTEL_QE_VENDOR_ID {
            " (Intel)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "  user_data      {}", q.user_data);
    let _ = writeln!(out, "Enclave");
    identity_text(&mut out, &quote.report_body);
    let _ = writeln!(out, "Quoting enclave");
    let qe = &quote.signature.qe_report;
    let _ = writeln!(
        out,
        "  mr_signer      {}\n  isv_prod_id    {}   isv_svn {}",
        hex::encode(qe.mr_signer),
        qe.isv_prod_id,
        qe.isv_svn
    );
    let _ = writeln!(out, "  attestation key {}", q.signature.attestation_key);
    let _ = writeln!(
        out,
        "Certification data: type {} ({}), {} bytes",
        q.signature.cert_data_type, q.signature.cert_data_type_name, q.signature.cert_data_len
    );
    if let Some(p) = &q.pck {
        let _ = writeln!(
            out,
            "PCK: fmspc {}   pce_id {}   pce_svn {}   sgx_type {}",
            p.fmspc, p.pce_id, p.pce_svn, p.sgx_type
        );
        let _ = writeln!(out, "  tcb components {:?}", p.tcb_components);
        let _ = writeln!(out, "  ppid           {}", p.ppid);
    }
    for (i, c) in q.pck_chain.iter().enumerate() {
        let _ = writeln!(
            out,
            "  [{i}] {}\n      issued by {}\n      valid {} .. {}",
            c.subject, c.issuer, c.not_before, c.not_after
        );
    }
    if let Some(e) = &q.pck_error {
        let _ = writeln!(out, "PCK chain could not be decoded: {e}");
    }
    out
}

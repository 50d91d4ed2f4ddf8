//! Collateral for the simulated platform: TCB info (v3, or v2 on request) and QE identity v2 signed by
//! the TCB signing key over their exact compact JSON bytes, both CRLs and the issuer chains, in the
//! forms Intel's PCS serves and dcap-qvl's `QuoteCollateralV3` JSON.
//!
//! TCB levels are built around the platform so that its TCB lands on a level with exactly the
//! configured status (for `OutOfDate`, an `UpToDate` level sits above the platform), and the QE
//! identity's levels so that the QE's ISVSVN lands on the configured QE status.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use ring::rand::SystemRandom;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::error::SimError;
use crate::fsutil::{self, PUBLIC_MODE};

pub use sgx_types::tcb::TcbStatus;

/// The TCB status of the quoting enclave, as QE identity levels carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum QeStatus {
    #[default]
    UpToDate,
    OutOfDate,
    Revoked,
}

impl QeStatus {
    pub const ALL: [QeStatus; 3] = [Self::UpToDate, Self::OutOfDate, Self::Revoked];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpToDate => "UpToDate",
            Self::OutOfDate => "OutOfDate",
            Self::Revoked => "Revoked",
        }
    }
}

macro_rules! status_text {
    ($ty:ty, $what:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = SimError;

            /// Parses a status name, ignoring ASCII case.
            fn from_str(s: &str) -> Result<Self, SimError> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s))
                    .ok_or_else(|| {
                        let names: Vec<_> = Self::ALL.iter().map(|v| v.as_str()).collect();
                        SimError::InvalidOption(format!(
                            concat!("unknown ", $what, " {:?} (one of {})"),
                            s,
                            names.join(", ")
                        ))
                    })
            }
        }
    };
}
status_text!(QeStatus, "QE status");

/// What the collateral should say about the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollateralOptions {
    /// Status of the TCB level the platform matches; `None` takes the status chosen at `sim init`.
    pub tcb_status: Option<TcbStatus>,
    /// Status of the QE identity level the QE's ISVSVN matches.
    pub qe_status: QeStatus,
    /// Puts the PCK certificate's serial number on the PCK CRL.
    pub revoke_pck: bool,
    /// Advisory ids (e.g. `INTEL-SA-00615`) on the platform's TCB level.
    pub advisory_ids: Vec<String>,
    /// TCB info version: 3 (`sgxtcbcomponents`) or 2 (flat `sgxtcbcompNNsvn` keys).
    pub tcb_info_version: u8,
    /// Issue date of TCB info, QE identity and CRLs (`None`: now).
    pub issue_time: Option<OffsetDateTime>,
    /// Time from issue to `nextUpdate`.
    pub validity: Duration,
    /// `tcbEvaluationDataNumber` of TCB info and QE identity.
    pub tcb_evaluation_data_number: u32,
}

impl Default for CollateralOptions {
    fn default() -> Self {
        Self {
            tcb_status: None,
            qe_status: QeStatus::UpToDate,
            revoke_pck: false,
            advisory_ids: Vec::new(),
            tcb_info_version: 3,
            issue_time: None,
            validity: Duration::days(30),
            tcb_evaluation_data_number: 17,
        }
    }
}

/// The platform facts collateral is built around.
pub(crate) struct PlatformTcb {
    pub(crate) fmspc: [u8; 6],
    pub(crate) pce_id: [u8; 2],
    pub(crate) components: [u8; 16],
    pub(crate) pce_svn: u16,
    pub(crate) qe_isv_svn: u16,
    pub(crate) qe_mr_signer: [u8; 32],
    pub(crate) qe_isv_prod_id: u16,
}

/// Collateral file names: the contract between `confcom sim collateral`, the quote helper's
/// `/collateral/<name>` routes and the verifier.
pub mod files {
    pub const COLLATERAL_JSON: &str = "collateral.json";
    pub const ROOT_CA_PEM: &str = "root-ca.pem";
    pub const ROOT_CA_DER: &str = "root-ca.der";
    pub const TCB_INFO: &str = "tcb_info.json";
    pub const QE_IDENTITY: &str = "qe_identity.json";
    pub const PCK_CRL: &str = "pck_crl.der";
    pub const ROOT_CA_CRL: &str = "root_ca_crl.der";
    pub const TCB_INFO_ISSUER_CHAIN: &str = "tcb_info_issuer_chain.pem";
    pub const QE_IDENTITY_ISSUER_CHAIN: &str = "qe_identity_issuer_chain.pem";
    pub const PCK_CRL_ISSUER_CHAIN: &str = "pck_crl_issuer_chain.pem";
    /// Every file, in the order they are written.
    pub const ALL: [&str; 10] = [
        COLLATERAL_JSON,
        ROOT_CA_PEM,
        ROOT_CA_DER,
        TCB_INFO,
        QE_IDENTITY,
        PCK_CRL,
        ROOT_CA_CRL,
        TCB_INFO_ISSUER_CHAIN,
        QE_IDENTITY_ISSUER_CHAIN,
        PCK_CRL_ISSUER_CHAIN,
    ];
}

/// Signed collateral for the simulated platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collateral {
    /// The sim root certificate (the trust anchor verifiers configure).
    pub root_ca_der: Vec<u8>,
    pub root_ca_pem: String,
    /// The exact signed bytes of the `tcbInfo` object.
    pub tcb_info: String,
    /// Raw r‖s.
    pub tcb_info_signature: Vec<u8>,
    /// The exact signed bytes of the `enclaveIdentity` object.
    pub qe_identity: String,
    pub qe_identity_signature: Vec<u8>,
    pub pck_crl: Vec<u8>,
    pub root_ca_crl: Vec<u8>,
    pub tcb_info_issuer_chain: String,
    pub qe_identity_issuer_chain: String,
    pub pck_crl_issuer_chain: String,
    files: Vec<(&'static str, Vec<u8>)>,
}

/// dcap-qvl's `QuoteCollateralV3` in its serde JSON form (byte fields as hex).
#[derive(Serialize)]
struct QvlCollateral<'a> {
    pck_crl_issuer_chain: &'a str,
    root_ca_crl: String,
    pck_crl: String,
    tcb_info_issuer_chain: &'a str,
    tcb_info: &'a str,
    tcb_info_signature: String,
    qe_identity_issuer_chain: &'a str,
    qe_identity: &'a str,
    qe_identity_signature: String,
}

impl Collateral {
    #[allow(clippy::too_many_arguments)]
    fn new(
        root_ca_der: Vec<u8>,
        root_ca_pem: String,
        tcb_info: String,
        tcb_info_signature: Vec<u8>,
        qe_identity: String,
        qe_identity_signature: Vec<u8>,
        pck_crl: Vec<u8>,
        root_ca_crl: Vec<u8>,
        tcb_info_issuer_chain: String,
        pck_crl_issuer_chain: String,
    ) -> Self {
        let mut c = Self {
            root_ca_der,
            root_ca_pem,
            tcb_info,
            tcb_info_signature,
            qe_identity,
            qe_identity_signature,
            pck_crl,
            root_ca_crl,
            qe_identity_issuer_chain: tcb_info_issuer_chain.clone(),
            tcb_info_issuer_chain,
            pck_crl_issuer_chain,
            files: Vec::new(),
        };
        c.files = vec![
            (files::COLLATERAL_JSON, c.qvl_json().into_bytes()),
            (files::ROOT_CA_PEM, c.root_ca_pem.clone().into_bytes()),
            (files::ROOT_CA_DER, c.root_ca_der.clone()),
            (
                files::TCB_INFO,
                pcs_json("tcbInfo", &c.tcb_info, &c.tcb_info_signature).into_bytes(),
            ),
            (
                files::QE_IDENTITY,
                pcs_json("enclaveIdentity", &c.qe_identity, &c.qe_identity_signature).into_bytes(),
            ),
            (files::PCK_CRL, c.pck_crl.clone()),
            (files::ROOT_CA_CRL, c.root_ca_crl.clone()),
            (
                files::TCB_INFO_ISSUER_CHAIN,
                c.tcb_info_issuer_chain.clone().into_bytes(),
            ),
            (
                files::QE_IDENTITY_ISSUER_CHAIN,
                c.qe_identity_issuer_chain.clone().into_bytes(),
            ),
            (
                files::PCK_CRL_ISSUER_CHAIN,
                c.pck_crl_issuer_chain.clone().into_bytes(),
            ),
        ];
        c
    }

    /// dcap-qvl's `QuoteCollateralV3` JSON (hex byte fields), as in dcap-qvl's own sample.
    pub fn qvl_json(&self) -> String {
        let v = QvlCollateral {
            pck_crl_issuer_chain: &self.pck_crl_issuer_chain,
            root_ca_crl: hex::encode(&self.root_ca_crl),
            pck_crl: hex::encode(&self.pck_crl),
            tcb_info_issuer_chain: &self.tcb_info_issuer_chain,
            tcb_info: &self.tcb_info,
            tcb_info_signature: hex::encode(&self.tcb_info_signature),
            qe_identity_issuer_chain: &self.qe_identity_issuer_chain,
            qe_identity: &self.qe_identity,
            qe_identity_signature: hex::encode(&self.qe_identity_signature),
        };
        let mut out = serde_json::to_string_pretty(&v).unwrap_or_default();
        out.push('\n');
        out
    }

    /// The bytes of one collateral file (see [`files`]), `None` for an unknown name.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| b.as_slice())
    }

    /// Every collateral file with its name.
    pub fn files(&self) -> impl Iterator<Item = (&'static str, &[u8])> {
        self.files.iter().map(|(n, b)| (*n, b.as_slice()))
    }

    /// The media type to serve a collateral file with.
    pub fn content_type(name: &str) -> &'static str {
        if name.ends_with(".json") {
            "application/json"
        } else if name.ends_with(".pem") {
            "application/x-pem-file"
        } else if name.ends_with("crl.der") {
            "application/pkix-crl"
        } else if name.ends_with(".der") {
            "application/pkix-cert"
        } else {
            "application/octet-stream"
        }
    }

    /// Writes every file into `dir` (created if missing), each atomically and world-readable.
    pub fn write_to(&self, dir: &Path) -> Result<(), SimError> {
        fsutil::ensure_dir(dir, 0o755)?;
        for (name, bytes) in &self.files {
            fsutil::write_atomic(&dir.join(name), bytes, PUBLIC_MODE)?;
        }
        Ok(())
    }
}

/// `{"<key>":<signed bytes>,"signature":"<hex>"}`, as Intel's PCS serves TCB info and QE identity.
fn pcs_json(key: &str, body: &str, signature: &[u8]) -> String {
    format!(
        "{{\"{key}\":{body},\"signature\":\"{}\"}}",
        hex::encode(signature)
    )
}

fn iso(t: OffsetDateTime) -> Result<String, SimError> {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339)
        .map_err(|e| SimError::InvalidOption(format!("date {t}: {e}")))
}

fn day(t: OffsetDateTime) -> Result<String, SimError> {
    iso(t.replace_time(time::Time::MIDNIGHT))
}

#[derive(Serialize)]
struct SvnV3 {
    svn: u8,
}

#[derive(Serialize)]
struct TcbV3 {
    sgxtcbcomponents: Vec<SvnV3>,
    pcesvn: u16,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Level<T> {
    tcb: T,
    tcb_date: String,
    tcb_status: &'static str,
    #[serde(rename = "advisoryIDs", skip_serializing_if = "Vec::is_empty")]
    advisory_ids: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TcbInfoV3 {
    id: &'static str,
    version: u8,
    issue_date: String,
    next_update: String,
    fmspc: String,
    pce_id: String,
    tcb_type: u8,
    tcb_evaluation_data_number: u32,
    tcb_levels: Vec<Level<TcbV3>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TcbInfoV2 {
    version: u8,
    issue_date: String,
    next_update: String,
    fmspc: String,
    pce_id: String,
    tcb_type: u8,
    tcb_evaluation_data_number: u32,
    tcb_levels: Vec<Level<serde_json::Map<String, serde_json::Value>>>,
}

#[derive(Serialize)]
struct QeTcb {
    isvsvn: u16,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QeIdentity {
    id: &'static str,
    version: u8,
    issue_date: String,
    next_update: String,
    tcb_evaluation_data_number: u32,
    miscselect: &'static str,
    #[serde(rename = "miscselectMask")]
    miscselect_mask: &'static str,
    attributes: &'static str,
    #[serde(rename = "attributesMask")]
    attributes_mask: &'static str,
    mrsigner: String,
    isvprodid: u16,
    tcb_levels: Vec<Level<QeTcb>>,
}

/// QE identity attribute expectations, as Intel publishes them for its QE3: INITTED and PROVISION_KEY
/// set, DEBUG clear; MODE64BIT and XFRM ignored.
pub(crate) const QE_ATTRIBUTES_HEX: &str = "11000000000000000000000000000000";
const QE_ATTRIBUTES_MASK_HEX: &str = "FBFFFFFFFFFFFFFF0000000000000000";

/// One platform TCB: component SVNs and PCESVN.
#[derive(Clone, Copy)]
struct Tcb {
    comps: [u8; 16],
    pce_svn: u16,
}

/// One TCB info level before encoding; `age_days` dates it back from the issue date.
struct PlatformLevel {
    tcb: Tcb,
    status: TcbStatus,
    advisories: Vec<String>,
    age_days: i64,
}

/// The TCB levels (descending) that put `platform` on a level with `status`.
fn platform_levels(
    platform: Tcb,
    status: TcbStatus,
    advisories: &[String],
) -> Result<Vec<PlatformLevel>, SimError> {
    // A TCB strictly above the platform: one component (or the PCESVN) higher.
    let above = {
        let mut t = platform;
        if let Some(c) = t.comps.iter_mut().find(|c| **c < u8::MAX) {
            *c += 1;
        } else if let Some(p) = t.pce_svn.checked_add(1) {
            t.pce_svn = p;
        } else {
            return Err(SimError::InvalidOption(
                "the platform TCB is at its maximum; no level can sit above it".into(),
            ));
        }
        t
    };
    let below = platform.pce_svn.checked_sub(1).map(|p| Tcb {
        comps: platform.comps,
        pce_svn: p,
    });
    let (top, lower_status) = match status {
        TcbStatus::UpToDate
        | TcbStatus::SWHardeningNeeded
        | TcbStatus::ConfigurationNeeded
        | TcbStatus::ConfigurationAndSWHardeningNeeded => (None, TcbStatus::OutOfDate),
        TcbStatus::OutOfDate => (Some(TcbStatus::UpToDate), TcbStatus::OutOfDate),
        TcbStatus::OutOfDateConfigurationNeeded => (
            Some(TcbStatus::ConfigurationNeeded),
            TcbStatus::OutOfDateConfigurationNeeded,
        ),
        TcbStatus::Revoked => (Some(TcbStatus::UpToDate), TcbStatus::Revoked),
    };
    let level = |tcb, status, advisories, age_days| PlatformLevel {
        tcb,
        status,
        advisories,
        age_days,
    };
    let mut levels = Vec::new();
    if let Some(top) = top {
        levels.push(level(above, top, Vec::new(), 30));
    }
    levels.push(level(platform, status, advisories.to_vec(), 180));
    if let Some(below) = below {
        levels.push(level(below, lower_status, Vec::new(), 540));
    }
    Ok(levels)
}

/// The TCBs (component SVNs, PCESVN) of the TCB info levels for a platform at `components` and
/// `pce_svn` whose level has `status`, in the TCB info's (descending) order.
pub(crate) fn level_tcbs(
    components: [u8; 16],
    pce_svn: u16,
    status: TcbStatus,
) -> Result<Vec<([u8; 16], u16)>, SimError> {
    let platform = Tcb {
        comps: components,
        pce_svn,
    };
    Ok(platform_levels(platform, status, &[])?
        .into_iter()
        .map(|l| (l.tcb.comps, l.tcb.pce_svn))
        .collect())
}

/// The QE identity levels (descending ISVSVN) that put `isv_svn` on a level with `status`.
fn qe_levels(isv_svn: u16, status: QeStatus) -> Result<Vec<(u16, QeStatus, i64)>, SimError> {
    let above = isv_svn.checked_add(1).ok_or_else(|| {
        SimError::InvalidOption("the QE ISVSVN is at its maximum; no level can sit above it".into())
    });
    Ok(match status {
        QeStatus::UpToDate => {
            let mut v = vec![(isv_svn, QeStatus::UpToDate, 180)];
            if let Some(below) = isv_svn.checked_sub(1) {
                v.push((below, QeStatus::OutOfDate, 540));
            }
            v
        }
        QeStatus::OutOfDate | QeStatus::Revoked => {
            vec![(above?, QeStatus::UpToDate, 30), (isv_svn, status, 180)]
        }
    })
}

fn sign(key: &ring::signature::EcdsaKeyPair, msg: &[u8]) -> Result<Vec<u8>, SimError> {
    key.sign(&SystemRandom::new(), msg)
        .map(|s| s.as_ref().to_vec())
        .map_err(|_| SimError::Crypto("ECDSA signing failed"))
}

/// Builds the collateral. `default_status` is the platform's status chosen at init.
pub(crate) fn build(
    pki: &crate::pki::Pki,
    platform: &PlatformTcb,
    default_status: TcbStatus,
    opts: &CollateralOptions,
) -> Result<Collateral, SimError> {
    let issue = opts
        .issue_time
        .unwrap_or_else(OffsetDateTime::now_utc)
        .to_offset(time::UtcOffset::UTC);
    let issue = issue.replace_nanosecond(0).unwrap_or(issue);
    if opts.validity <= Duration::ZERO {
        return Err(SimError::InvalidOption(format!(
            "the validity must be positive, not {}",
            opts.validity
        )));
    }
    let next = issue + opts.validity;
    let (issue_date, next_update) = (iso(issue)?, iso(next)?);
    for id in &opts.advisory_ids {
        if id.is_empty() || id.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
            return Err(SimError::InvalidOption(format!(
                "advisory id {id:?} is empty or holds characters JSON would escape"
            )));
        }
    }
    let status = opts.tcb_status.unwrap_or(default_status);
    let platform_tcb = Tcb {
        comps: platform.components,
        pce_svn: platform.pce_svn,
    };
    let levels = platform_levels(platform_tcb, status, &opts.advisory_ids)?;
    let fmspc = hex::encode_upper(platform.fmspc);
    let pce_id = hex::encode_upper(platform.pce_id);
    let tcb_info = match opts.tcb_info_version {
        3 => {
            let mut out = Vec::new();
            for l in levels {
                let (tcb, status, adv, age) = (l.tcb, l.status, l.advisories, l.age_days);
                out.push(Level {
                    tcb: TcbV3 {
                        sgxtcbcomponents: tcb.comps.iter().map(|&svn| SvnV3 { svn }).collect(),
                        pcesvn: tcb.pce_svn,
                    },
                    tcb_date: day(issue - Duration::days(age))?,
                    tcb_status: status.name(),
                    advisory_ids: adv,
                });
            }
            serde_json::to_string(&TcbInfoV3 {
                id: "SGX",
                version: 3,
                issue_date: issue_date.clone(),
                next_update: next_update.clone(),
                fmspc,
                pce_id,
                tcb_type: 0,
                tcb_evaluation_data_number: opts.tcb_evaluation_data_number,
                tcb_levels: out,
            })
        }
        2 => {
            let mut out = Vec::new();
            for l in levels {
                let (tcb, status, adv, age) = (l.tcb, l.status, l.advisories, l.age_days);
                let mut map = serde_json::Map::new();
                for (i, svn) in tcb.comps.iter().enumerate() {
                    map.insert(format!("sgxtcbcomp{:02}svn", i + 1), (*svn).into());
                }
                map.insert("pcesvn".into(), tcb.pce_svn.into());
                out.push(Level {
                    tcb: map,
                    tcb_date: day(issue - Duration::days(age))?,
                    tcb_status: status.name(),
                    advisory_ids: adv,
                });
            }
            serde_json::to_string(&TcbInfoV2 {
                version: 2,
                issue_date: issue_date.clone(),
                next_update: next_update.clone(),
                fmspc,
                pce_id,
                tcb_type: 0,
                tcb_evaluation_data_number: opts.tcb_evaluation_data_number,
                tcb_levels: out,
            })
        }
        v => {
            return Err(SimError::InvalidOption(format!(
                "TCB info version {v} (2 or 3)"
            )));
        }
    }
    .map_err(|e| SimError::InvalidOption(format!("TCB info JSON: {e}")))?;

    let mut qe_tcb_levels = Vec::new();
    for (isvsvn, status, age) in qe_levels(platform.qe_isv_svn, opts.qe_status)? {
        qe_tcb_levels.push(Level {
            tcb: QeTcb { isvsvn },
            tcb_date: day(issue - Duration::days(age))?,
            tcb_status: status.as_str(),
            advisory_ids: Vec::new(),
        });
    }
    let qe_identity = serde_json::to_string(&QeIdentity {
        id: "QE",
        version: 2,
        issue_date,
        next_update,
        tcb_evaluation_data_number: opts.tcb_evaluation_data_number,
        miscselect: "00000000",
        miscselect_mask: "FFFFFFFF",
        attributes: QE_ATTRIBUTES_HEX,
        attributes_mask: QE_ATTRIBUTES_MASK_HEX,
        mrsigner: hex::encode_upper(platform.qe_mr_signer),
        isvprodid: platform.qe_isv_prod_id,
        tcb_levels: qe_tcb_levels,
    })
    .map_err(|e| SimError::InvalidOption(format!("QE identity JSON: {e}")))?;

    let tcb_key = pki.tcb.ring_key()?;
    let tcb_info_signature = sign(&tcb_key, tcb_info.as_bytes())?;
    let qe_identity_signature = sign(&tcb_key, qe_identity.as_bytes())?;

    let crl_number = u64::try_from(issue.unix_timestamp()).unwrap_or(1).max(1);
    let revoked = if opts.revoke_pck {
        vec![pki.pck_serial()?]
    } else {
        Vec::new()
    };
    let pck_crl = pki.crl(true, &revoked, issue, next, crl_number)?;
    let root_ca_crl = pki.crl(false, &[], issue, next, crl_number)?;

    Ok(Collateral::new(
        pki.root.der.clone(),
        pki.root.pem.clone(),
        tcb_info,
        tcb_info_signature,
        qe_identity,
        qe_identity_signature,
        pck_crl,
        root_ca_crl,
        format!("{}{}", pki.tcb.pem, pki.root.pem),
        format!("{}{}", pki.pck_ca.pem, pki.root.pem),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matching_status(levels: &[PlatformLevel], p: Tcb) -> TcbStatus {
        levels
            .iter()
            .find(|l| {
                l.tcb.comps.iter().zip(p.comps).all(|(l, c)| c >= *l) && p.pce_svn >= l.tcb.pce_svn
            })
            .map(|l| l.status)
            .unwrap()
    }

    #[test]
    fn the_platform_lands_on_the_configured_level() {
        for comps in [[3u8; 16], [255u8; 16]] {
            let p = Tcb { comps, pce_svn: 13 };
            for status in TcbStatus::ALL {
                let levels = platform_levels(p, status, &["INTEL-SA-00001".into()]).unwrap();
                assert_eq!(matching_status(&levels, p), status, "{status}");
                let matched = levels.iter().find(|l| l.status == status).unwrap();
                assert_eq!(matched.advisories, vec!["INTEL-SA-00001".to_string()]);
            }
        }
    }

    #[test]
    fn the_qe_lands_on_the_configured_level() {
        for status in QeStatus::ALL {
            let levels = qe_levels(8, status).unwrap();
            let matched = levels.iter().find(|(svn, ..)| 8 >= *svn).unwrap();
            assert_eq!(matched.1, status);
            assert!(levels.windows(2).all(|w| w[0].0 > w[1].0));
        }
        assert!(qe_levels(u16::MAX, QeStatus::OutOfDate).is_err());
    }

    #[test]
    fn qe_status_names_parse_case_insensitively() {
        for s in QeStatus::ALL {
            assert_eq!(s.as_str().to_lowercase().parse::<QeStatus>().unwrap(), s);
        }
        assert!("Fine".parse::<QeStatus>().is_err());
        assert_eq!("revoked".parse::<QeStatus>().unwrap(), QeStatus::Revoked);
    }
}

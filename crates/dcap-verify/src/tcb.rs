//! TCB info (v2 and v3) and QE identity (v2): decoding, TCB level matching and status convergence.

use serde::Deserialize;

use crate::error::VerifyError;
use crate::time::parse_rfc3339;

pub use sgx_types::tcb::TcbStatus;

impl From<TcbStatus> for crate::QvResult {
    /// Intel's `sgx_ql_qv_result_t` for a verified quote with this status.
    fn from(status: TcbStatus) -> Self {
        use crate::QvResult as Q;
        match status {
            TcbStatus::UpToDate => Q::Ok,
            TcbStatus::SWHardeningNeeded => Q::SwHardeningNeeded,
            TcbStatus::ConfigurationNeeded => Q::ConfigNeeded,
            TcbStatus::ConfigurationAndSWHardeningNeeded => Q::ConfigAndSwHardeningNeeded,
            TcbStatus::OutOfDate => Q::OutOfDate,
            TcbStatus::OutOfDateConfigurationNeeded => Q::OutOfDateConfigNeeded,
            TcbStatus::Revoked => Q::Revoked,
        }
    }
}

/// Statuses Intel's QVL accepts in the QE identity's levels.
const QE_STATUSES: [TcbStatus; 5] = [
    TcbStatus::UpToDate,
    TcbStatus::OutOfDate,
    TcbStatus::ConfigurationNeeded,
    TcbStatus::Revoked,
    TcbStatus::OutOfDateConfigurationNeeded,
];

/// One platform TCB level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcbLevel {
    pub sgx_components: [u8; 16],
    pub pce_svn: u16,
    pub tcb_date: String,
    /// The status string as written (validated only when the level is selected, like Intel's QVL).
    pub status: String,
    pub advisory_ids: Vec<String>,
}

/// A decoded TCB info body (`tcbInfo`), v2 or v3, SGX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcbInfo {
    /// "SGX" (v2 has no id and is SGX).
    pub id: String,
    pub version: u32,
    pub issue_date: u64,
    pub next_update: u64,
    pub fmspc: [u8; 6],
    pub pce_id: [u8; 2],
    pub tcb_type: u32,
    pub tcb_evaluation_data_number: u32,
    /// Levels in Intel's canonical order: descending by components, then PCESVN.
    pub levels: Vec<TcbLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTcbInfo {
    id: Option<String>,
    version: u32,
    issue_date: String,
    next_update: String,
    fmspc: String,
    pce_id: String,
    tcb_type: Option<u32>,
    tcb_evaluation_data_number: Option<u32>,
    tcb_levels: Vec<RawTcbLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTcbLevel {
    tcb: RawTcb,
    tcb_date: Option<String>,
    tcb_status: String,
    #[serde(rename = "advisoryIDs", default)]
    advisory_ids: Vec<String>,
}

/// The `tcb` object of a level: v3 `sgxtcbcomponents`, or v2's flat `sgxtcbcompNNsvn` keys.
#[derive(Deserialize)]
struct RawTcb {
    sgxtcbcomponents: Option<Vec<RawComponent>>,
    pcesvn: Option<u16>,
    sgxtcbcomp01svn: Option<u8>,
    sgxtcbcomp02svn: Option<u8>,
    sgxtcbcomp03svn: Option<u8>,
    sgxtcbcomp04svn: Option<u8>,
    sgxtcbcomp05svn: Option<u8>,
    sgxtcbcomp06svn: Option<u8>,
    sgxtcbcomp07svn: Option<u8>,
    sgxtcbcomp08svn: Option<u8>,
    sgxtcbcomp09svn: Option<u8>,
    sgxtcbcomp10svn: Option<u8>,
    sgxtcbcomp11svn: Option<u8>,
    sgxtcbcomp12svn: Option<u8>,
    sgxtcbcomp13svn: Option<u8>,
    sgxtcbcomp14svn: Option<u8>,
    sgxtcbcomp15svn: Option<u8>,
    sgxtcbcomp16svn: Option<u8>,
}

#[derive(Deserialize)]
struct RawComponent {
    svn: u8,
}

impl RawTcb {
    fn flat(&self) -> [Option<u8>; 16] {
        [
            self.sgxtcbcomp01svn,
            self.sgxtcbcomp02svn,
            self.sgxtcbcomp03svn,
            self.sgxtcbcomp04svn,
            self.sgxtcbcomp05svn,
            self.sgxtcbcomp06svn,
            self.sgxtcbcomp07svn,
            self.sgxtcbcomp08svn,
            self.sgxtcbcomp09svn,
            self.sgxtcbcomp10svn,
            self.sgxtcbcomp11svn,
            self.sgxtcbcomp12svn,
            self.sgxtcbcomp13svn,
            self.sgxtcbcomp14svn,
            self.sgxtcbcomp15svn,
            self.sgxtcbcomp16svn,
        ]
    }
}

fn malformed(what: &'static str, reason: impl Into<String>) -> VerifyError {
    VerifyError::CollateralMalformed {
        what,
        reason: reason.into(),
    }
}

fn hex_array<const N: usize>(
    what: &'static str,
    field: &str,
    s: &str,
) -> Result<[u8; N], VerifyError> {
    let bytes = hex::decode(s).map_err(|e| malformed(what, format!("{field}: {e}")))?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| {
        malformed(
            what,
            format!("{field}: expected {N} bytes, found {}", bytes.len()),
        )
    })
}

fn date(what: &'static str, field: &str, s: &str) -> Result<u64, VerifyError> {
    parse_rfc3339(s).ok_or_else(|| malformed(what, format!("{field}: not an RFC 3339 date: {s:?}")))
}

impl TcbInfo {
    /// Decodes the exact `tcbInfo` JSON text. v3 levels carry `sgxtcbcomponents` (16 `{svn}` objects),
    /// v2 levels the flat `sgxtcbcomp01svn`…`sgxtcbcomp16svn`; both carry `pcesvn`.
    pub fn from_json(text: &str) -> Result<Self, VerifyError> {
        const WHAT: &str = "TCB info";
        let raw: RawTcbInfo =
            serde_json::from_str(text).map_err(|e| malformed(WHAT, e.to_string()))?;
        if raw.version != 2 && raw.version != 3 {
            return Err(malformed(
                WHAT,
                format!("unsupported version {}", raw.version),
            ));
        }
        let mut levels = Vec::with_capacity(raw.tcb_levels.len());
        for (i, level) in raw.tcb_levels.into_iter().enumerate() {
            let mut comps = [0u8; 16];
            if raw.version == 3 {
                let list = level.tcb.sgxtcbcomponents.as_ref().ok_or_else(|| {
                    malformed(WHAT, format!("tcbLevels[{i}]: missing sgxtcbcomponents"))
                })?;
                if list.len() != 16 {
                    return Err(malformed(
                        WHAT,
                        format!(
                            "tcbLevels[{i}]: {} SGX TCB components, expected 16",
                            list.len()
                        ),
                    ));
                }
                for (c, item) in comps.iter_mut().zip(list) {
                    *c = item.svn;
                }
            } else {
                for (n, (c, flat)) in comps.iter_mut().zip(level.tcb.flat()).enumerate() {
                    *c = flat.ok_or_else(|| {
                        malformed(
                            WHAT,
                            format!("tcbLevels[{i}]: missing sgxtcbcomp{:02}svn", n + 1),
                        )
                    })?;
                }
            }
            let pce_svn = level
                .tcb
                .pcesvn
                .ok_or_else(|| malformed(WHAT, format!("tcbLevels[{i}]: missing pcesvn")))?;
            levels.push(TcbLevel {
                sgx_components: comps,
                pce_svn,
                tcb_date: level.tcb_date.unwrap_or_default(),
                status: level.tcb_status,
                advisory_ids: level.advisory_ids,
            });
        }
        // Intel's QVL keeps the levels in a set ordered by (components, PCESVN), highest first.
        levels.sort_by(|a, b| {
            b.sgx_components
                .cmp(&a.sgx_components)
                .then(b.pce_svn.cmp(&a.pce_svn))
        });
        Ok(Self {
            id: raw.id.unwrap_or_else(|| "SGX".into()),
            version: raw.version,
            issue_date: date(WHAT, "issueDate", &raw.issue_date)?,
            next_update: date(WHAT, "nextUpdate", &raw.next_update)?,
            fmspc: hex_array(WHAT, "fmspc", &raw.fmspc)?,
            pce_id: hex_array(WHAT, "pceId", &raw.pce_id)?,
            tcb_type: raw.tcb_type.unwrap_or(0),
            tcb_evaluation_data_number: raw.tcb_evaluation_data_number.unwrap_or(0),
            levels,
        })
    }

    /// The first level (in canonical order) the platform meets: every component SVN and the PCESVN at
    /// least the level's.
    pub fn match_level(
        &self,
        cpu_svn: &[u8; 16],
        pce_svn: u16,
    ) -> Result<(&TcbLevel, TcbStatus), VerifyError> {
        let level = self
            .levels
            .iter()
            .find(|l| {
                cpu_svn
                    .iter()
                    .zip(&l.sgx_components)
                    .all(|(have, need)| have >= need)
                    && pce_svn >= l.pce_svn
            })
            .ok_or(VerifyError::NoMatchingTcbLevel)?;
        let status = TcbStatus::from_name(&level.status).ok_or_else(|| {
            VerifyError::UnrecognizedTcbStatus {
                status: level.status.clone(),
                structure: "TCB info",
            }
        })?;
        Ok((level, status))
    }
}

/// One QE TCB level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QeTcbLevel {
    pub isv_svn: u16,
    pub tcb_date: String,
    pub status: String,
    pub advisory_ids: Vec<String>,
}

/// A decoded enclave identity body (`enclaveIdentity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QeIdentity {
    pub id: String,
    pub version: u32,
    pub issue_date: u64,
    pub next_update: u64,
    pub tcb_evaluation_data_number: u32,
    pub miscselect: [u8; 4],
    pub miscselect_mask: [u8; 4],
    pub attributes: [u8; 16],
    pub attributes_mask: [u8; 16],
    pub mrsigner: [u8; 32],
    pub isv_prod_id: u16,
    /// Levels by descending ISVSVN.
    pub levels: Vec<QeTcbLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawQeIdentity {
    id: String,
    version: u32,
    issue_date: String,
    next_update: String,
    tcb_evaluation_data_number: Option<u32>,
    miscselect: String,
    miscselect_mask: String,
    attributes: String,
    attributes_mask: String,
    mrsigner: String,
    isvprodid: u16,
    tcb_levels: Vec<RawQeLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawQeLevel {
    tcb: RawQeTcb,
    tcb_date: Option<String>,
    tcb_status: String,
    #[serde(rename = "advisoryIDs", default)]
    advisory_ids: Vec<String>,
}

#[derive(Deserialize)]
struct RawQeTcb {
    isvsvn: u16,
}

impl QeIdentity {
    /// Decodes the exact `enclaveIdentity` JSON text.
    pub fn from_json(text: &str) -> Result<Self, VerifyError> {
        const WHAT: &str = "QE identity";
        let raw: RawQeIdentity =
            serde_json::from_str(text).map_err(|e| malformed(WHAT, e.to_string()))?;
        let mut levels: Vec<QeTcbLevel> = raw
            .tcb_levels
            .into_iter()
            .map(|l| QeTcbLevel {
                isv_svn: l.tcb.isvsvn,
                tcb_date: l.tcb_date.unwrap_or_default(),
                status: l.tcb_status,
                advisory_ids: l.advisory_ids,
            })
            .collect();
        levels.sort_by_key(|l| std::cmp::Reverse(l.isv_svn));
        Ok(Self {
            id: raw.id,
            version: raw.version,
            issue_date: date(WHAT, "issueDate", &raw.issue_date)?,
            next_update: date(WHAT, "nextUpdate", &raw.next_update)?,
            tcb_evaluation_data_number: raw.tcb_evaluation_data_number.unwrap_or(0),
            miscselect: hex_array(WHAT, "miscselect", &raw.miscselect)?,
            miscselect_mask: hex_array(WHAT, "miscselectMask", &raw.miscselect_mask)?,
            attributes: hex_array(WHAT, "attributes", &raw.attributes)?,
            attributes_mask: hex_array(WHAT, "attributesMask", &raw.attributes_mask)?,
            mrsigner: hex_array(WHAT, "mrsigner", &raw.mrsigner)?,
            isv_prod_id: raw.isvprodid,
            levels,
        })
    }

    /// The highest QE TCB level whose ISVSVN the QE meets.
    pub fn match_level(&self, isv_svn: u16) -> Result<(&QeTcbLevel, TcbStatus), VerifyError> {
        let level = self
            .levels
            .iter()
            .find(|l| isv_svn >= l.isv_svn)
            .ok_or(VerifyError::QeTcbNotSupported { isv_svn })?;
        let status = TcbStatus::from_name(&level.status)
            .filter(|s| QE_STATUSES.contains(s))
            .ok_or_else(|| VerifyError::UnrecognizedTcbStatus {
                status: level.status.clone(),
                structure: "QE identity",
            })?;
        Ok((level, status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level_v3(comps: [u8; 16], pce: u16, status: &str) -> String {
        let comps: Vec<String> = comps.iter().map(|c| format!("{{\"svn\":{c}}}")).collect();
        format!(
            "{{\"tcb\":{{\"sgxtcbcomponents\":[{}],\"pcesvn\":{pce}}},\"tcbDate\":\"2024-03-13T00:00:00Z\",\"tcbStatus\":\"{status}\"}}",
            comps.join(",")
        )
    }

    fn info(levels: &[String]) -> TcbInfo {
        let text = format!(
            "{{\"id\":\"SGX\",\"version\":3,\"issueDate\":\"2025-06-19T10:56:11Z\",\"nextUpdate\":\"2025-07-19T10:56:11Z\",\"fmspc\":\"00a067110000\",\"pceId\":\"0000\",\"tcbType\":0,\"tcbEvaluationDataNumber\":17,\"tcbLevels\":[{}]}}",
            levels.join(",")
        );
        TcbInfo::from_json(&text).unwrap()
    }

    #[test]
    fn first_level_in_descending_order_wins_regardless_of_json_order() {
        let low = level_v3([1; 16], 5, "OutOfDate");
        let high = level_v3([3; 16], 13, "UpToDate");
        let mid = level_v3([2; 16], 13, "SWHardeningNeeded");
        let info = info(&[low, high, mid]);
        assert_eq!(
            info.match_level(&[3; 16], 13).unwrap().1,
            TcbStatus::UpToDate
        );
        assert_eq!(
            info.match_level(&[3; 16], 12).unwrap().1,
            TcbStatus::OutOfDate
        );
        assert_eq!(
            info.match_level(&[2; 16], 20).unwrap().1,
            TcbStatus::SWHardeningNeeded
        );
        let mut one_low = [9u8; 16];
        one_low[15] = 1;
        assert_eq!(
            info.match_level(&one_low, 13).unwrap().1,
            TcbStatus::OutOfDate
        );
        assert_eq!(
            info.match_level(&[0; 16], 13),
            Err(VerifyError::NoMatchingTcbLevel)
        );
    }

    #[test]
    fn unknown_status_of_the_selected_level_is_an_error() {
        let info = info(&[level_v3([1; 16], 1, "Fine")]);
        assert!(matches!(
            info.match_level(&[1; 16], 1),
            Err(VerifyError::UnrecognizedTcbStatus { .. })
        ));
    }

    #[test]
    fn convergence_follows_intel() {
        use TcbStatus::*;
        assert_eq!(UpToDate.converge_with_qe(OutOfDate), OutOfDate);
        assert_eq!(SWHardeningNeeded.converge_with_qe(OutOfDate), OutOfDate);
        assert_eq!(
            ConfigurationNeeded.converge_with_qe(OutOfDate),
            OutOfDateConfigurationNeeded
        );
        assert_eq!(
            ConfigurationAndSWHardeningNeeded.converge_with_qe(OutOfDate),
            OutOfDateConfigurationNeeded
        );
        assert_eq!(UpToDate.converge_with_qe(Revoked), Revoked);
        assert_eq!(
            SWHardeningNeeded.converge_with_qe(UpToDate),
            SWHardeningNeeded
        );
    }
}

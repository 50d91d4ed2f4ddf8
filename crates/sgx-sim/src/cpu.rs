//! The simulated CPU: EREPORT and the report-key half of EGETKEY.
//!
//! A real CPU MACs a report with a REPORT key that only the target enclave can obtain (EGETKEY), derived
//! from a CPU-internal secret and the target's identity. The simulated CPU does the same with a
//! per-platform secret: the report key for a target is AES-128-CMAC, keyed with the secret, over a key
//! request block holding what EGETKEY mixes into a REPORT key (key name, the report's key id, the
//! CPUSVN and the target's MRENCLAVE, ATTRIBUTES, MISCSELECT, CONFIGID and CONFIGSVN); the report MAC
//! is AES-128-CMAC with that key over the 384-byte report body.
//!
//! Whoever holds the platform secret can create reports for any enclave identity: this is what lets
//! enclave-less apps in a simulated cluster take part in the quoting flow. It is published for apps
//! (see [`SimCpu::load`]), the PKI keys never are.

use std::path::Path;

use aes::Aes128;
use cmac::{Cmac, Mac};
use serde::{Deserialize, Serialize};
use sgx_types::structs::{Attributes, Report, ReportBody, TargetInfo, Wire};

use crate::error::SimError;
use crate::fsutil::{self, hex_field};

/// File name of the published CPU material inside a CPU directory.
pub const CPU_FILE: &str = "cpu.json";
/// File name of the simulated QE's target info (512 bytes) next to the CPU material.
pub const QE_TARGET_INFO_FILE: &str = "qe_target_info.bin";

const CPU_FORMAT: &str = "confcom-sgx-sim-cpu";
const KEY_NAME_REPORT: u16 = 0x0003;
const KEY_REQUEST_LABEL: &[u8; 16] = b"confcom-sim-ekey";

/// The identity of an enclave: what a report created by it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnclaveIdentity {
    pub mr_enclave: [u8; 32],
    pub mr_signer: [u8; 32],
    pub isv_prod_id: u16,
    pub isv_svn: u16,
    pub attributes: Attributes,
    pub misc_select: u32,
    pub config_id: [u8; 64],
    pub config_svn: u16,
    pub isv_ext_prod_id: [u8; 16],
    pub isv_family_id: [u8; 16],
}

impl Default for EnclaveIdentity {
    /// A plausible production enclave: initialised, 64-bit, not debug, x87+SSE state, product 1 SVN 1.
    fn default() -> Self {
        Self {
            mr_enclave: digest(b"confcom simulated enclave MRENCLAVE"),
            mr_signer: digest(b"confcom simulated enclave MRSIGNER"),
            isv_prod_id: 1,
            isv_svn: 1,
            attributes: Attributes {
                flags: Attributes::INITTED | Attributes::MODE64BIT,
                xfrm: 0x3,
            },
            misc_select: 0,
            config_id: [0; 64],
            config_svn: 0,
            isv_ext_prod_id: [0; 16],
            isv_family_id: [0; 16],
        }
    }
}

impl EnclaveIdentity {
    /// The target info other enclaves use to create reports for this enclave.
    pub fn target_info(&self) -> TargetInfo {
        TargetInfo {
            mr_enclave: self.mr_enclave,
            attributes: self.attributes,
            config_svn: self.config_svn,
            misc_select: self.misc_select,
            config_id: self.config_id,
            ..TargetInfo::default()
        }
    }

    fn report_body(&self, cpu_svn: [u8; 16], report_data: &[u8; 64]) -> ReportBody {
        ReportBody {
            cpu_svn,
            misc_select: self.misc_select,
            isv_ext_prod_id: self.isv_ext_prod_id,
            attributes: self.attributes,
            mr_enclave: self.mr_enclave,
            mr_signer: self.mr_signer,
            config_id: self.config_id,
            isv_prod_id: self.isv_prod_id,
            isv_svn: self.isv_svn,
            config_svn: self.config_svn,
            isv_family_id: self.isv_family_id,
            report_data: *report_data,
            ..ReportBody::default()
        }
    }
}

pub(crate) fn digest(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A CMAC keyed with the report key of one target enclave, ready to MAC or check report bodies.
#[derive(Clone)]
pub(crate) struct ReportMac {
    mac: Cmac<Aes128>,
    key_id: [u8; 32],
}

impl ReportMac {
    pub(crate) fn key_id(&self) -> &[u8; 32] {
        &self.key_id
    }

    pub(crate) fn mac(&self, body: &ReportBody) -> [u8; 16] {
        let mut mac = self.mac.clone();
        mac.update(&body.to_vec());
        mac.finalize().into_bytes().into()
    }

    pub(crate) fn verify(&self, report: &Report) -> bool {
        if report.key_id != self.key_id {
            return false;
        }
        let mut mac = self.mac.clone();
        mac.update(&report.body.to_vec());
        mac.verify_slice(&report.mac).is_ok()
    }
}

/// What an app container needs to act as an enclave on the simulated platform.
#[derive(Clone)]
pub struct SimCpu {
    secret: [u8; 16],
    cpu_svn: [u8; 16],
    report_key_id: [u8; 32],
}

impl std::fmt::Debug for SimCpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCpu")
            .field("cpu_svn", &hex::encode(self.cpu_svn))
            .field("report_key_id", &hex::encode(self.report_key_id))
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct CpuFile {
    format: String,
    version: u32,
    platform_secret: String,
    cpu_svn: String,
    report_key_id: String,
}

impl SimCpu {
    pub(crate) fn new(secret: [u8; 16], cpu_svn: [u8; 16], report_key_id: [u8; 32]) -> Self {
        Self {
            secret,
            cpu_svn,
            report_key_id,
        }
    }

    /// Loads the CPU material published by a quote helper (`<socket dir>/sim/`).
    pub fn load(dir: &Path) -> Result<Self, SimError> {
        let path = dir.join(CPU_FILE);
        if !path.exists() {
            return Err(SimError::CpuNotPublished(dir.to_path_buf()));
        }
        Self::from_json(&path, &fsutil::read_bounded(&path, 64 * 1024)?)
    }

    pub(crate) fn from_json(path: &Path, bytes: &[u8]) -> Result<Self, SimError> {
        let file: CpuFile = serde_json::from_slice(bytes)
            .map_err(|e| SimError::corrupt(path, format!("not simulated CPU material: {e}")))?;
        if file.format != CPU_FORMAT || file.version != 1 {
            return Err(SimError::corrupt(
                path,
                format!(
                    "format {} version {}, expected {CPU_FORMAT} version 1",
                    file.format, file.version
                ),
            ));
        }
        Ok(Self {
            secret: hex_field(path, "platform_secret", &file.platform_secret)?,
            cpu_svn: hex_field(path, "cpu_svn", &file.cpu_svn)?,
            report_key_id: hex_field(path, "report_key_id", &file.report_key_id)?,
        })
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        let file = CpuFile {
            format: CPU_FORMAT.into(),
            version: 1,
            platform_secret: hex::encode(self.secret),
            cpu_svn: hex::encode(self.cpu_svn),
            report_key_id: hex::encode(self.report_key_id),
        };
        let mut out = serde_json::to_vec_pretty(&file).unwrap_or_default();
        out.push(b'\n');
        out
    }

    pub(crate) fn report_key_id(&self) -> &[u8; 32] {
        &self.report_key_id
    }

    /// The platform's CPUSVN, which every report of this CPU carries.
    pub fn cpu_svn(&self) -> [u8; 16] {
        self.cpu_svn
    }

    fn cmac(key: &[u8; 16]) -> Cmac<Aes128> {
        <Cmac<Aes128> as cmac::digest::KeyInit>::new(key.into())
    }

    /// EGETKEY(REPORT) for `target`, as seen by a report carrying `key_id`.
    pub(crate) fn report_mac(&self, target: &TargetInfo, key_id: &[u8; 32]) -> ReportMac {
        let mut request = Vec::with_capacity(16 + 2 + 32 + 16 + 32 + 16 + 4 + 64 + 2);
        request.extend_from_slice(KEY_REQUEST_LABEL);
        request.extend_from_slice(&KEY_NAME_REPORT.to_le_bytes());
        request.extend_from_slice(key_id);
        request.extend_from_slice(&self.cpu_svn);
        request.extend_from_slice(&target.mr_enclave);
        request.extend_from_slice(&target.attributes.to_bytes());
        request.extend_from_slice(&target.misc_select.to_le_bytes());
        request.extend_from_slice(&target.config_id);
        request.extend_from_slice(&target.config_svn.to_le_bytes());
        let mut kdf = Self::cmac(&self.secret);
        kdf.update(&request);
        let key: [u8; 16] = kdf.finalize().into_bytes().into();
        ReportMac {
            mac: Self::cmac(&key),
            key_id: *key_id,
        }
    }

    /// EREPORT: a report of an enclave with the given identity, MACed for `target`.
    pub fn create_report(
        &self,
        enclave: &EnclaveIdentity,
        target: &TargetInfo,
        report_data: &[u8; 64],
    ) -> Report {
        let body = enclave.report_body(self.cpu_svn, report_data);
        let mac = self.report_mac(target, &self.report_key_id).mac(&body);
        Report {
            body,
            key_id: self.report_key_id,
            mac,
        }
    }

    /// Checks a report that targets `me` (EGETKEY with the report's key id, then a CMAC compare in
    /// constant time).
    pub fn verify_report(&self, report: &Report, me: &TargetInfo) -> bool {
        self.report_mac(me, &report.key_id).verify(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu() -> SimCpu {
        SimCpu::new([7; 16], [3; 16], [9; 32])
    }

    #[test]
    fn a_report_verifies_only_for_its_target() {
        let cpu = cpu();
        let app = EnclaveIdentity::default();
        let target = EnclaveIdentity {
            mr_enclave: [1; 32],
            ..EnclaveIdentity::default()
        }
        .target_info();
        let report = cpu.create_report(&app, &target, &[5; 64]);
        assert!(cpu.verify_report(&report, &target));
        assert!(!cpu.verify_report(&report, &app.target_info()));
        let mut other_attrs = target;
        other_attrs.attributes.flags |= Attributes::DEBUG;
        assert!(!cpu.verify_report(&report, &other_attrs));
        let other_cpu = SimCpu::new([8; 16], [3; 16], [9; 32]);
        assert!(!other_cpu.verify_report(&report, &target));
    }

    #[test]
    fn any_change_to_the_body_breaks_the_mac() {
        let cpu = cpu();
        let target = TargetInfo::default();
        let report = cpu.create_report(&EnclaveIdentity::default(), &target, &[0; 64]);
        let bytes = report.to_vec();
        for i in (0..384).step_by(17) {
            let mut tampered = bytes.clone();
            tampered[i] ^= 1;
            let tampered = Report::parse(&tampered).unwrap();
            assert!(!cpu.verify_report(&tampered, &target), "byte {i}");
        }
    }

    #[test]
    fn the_report_carries_the_identity_and_report_data() {
        let cpu = cpu();
        let id = EnclaveIdentity {
            isv_svn: 42,
            ..EnclaveIdentity::default()
        };
        let report = cpu.create_report(&id, &TargetInfo::default(), &[0xab; 64]);
        assert_eq!(report.body.isv_svn, 42);
        assert_eq!(report.body.mr_enclave, id.mr_enclave);
        assert_eq!(report.body.cpu_svn, [3; 16]);
        assert_eq!(report.body.report_data, [0xab; 64]);
        assert!(!report.body.attributes.is_debug());
    }

    #[test]
    fn the_simulated_platform_types_can_be_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<SimCpu>();
        shared::<crate::SimPlatform>();
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_reports_do_not_verify(bytes in proptest::collection::vec(proptest::num::u8::ANY, 432)) {
            let cpu = cpu();
            let report = Report::parse(&bytes).unwrap();
            let target = TargetInfo::default();
            let genuine = cpu.create_report(&EnclaveIdentity::default(), &target, &[0; 64]);
            proptest::prop_assume!(report != genuine);
            proptest::prop_assert!(!cpu.verify_report(&report, &target));
        }

        #[test]
        fn arbitrary_cpu_files_are_refused_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            proptest::prop_assert!(SimCpu::from_json(Path::new("cpu.json"), &bytes).is_err());
        }
    }

    #[test]
    fn cpu_material_round_trips_and_rejects_garbage() {
        let cpu = cpu();
        let path = Path::new("cpu.json");
        let back = SimCpu::from_json(path, &cpu.to_json()).unwrap();
        assert_eq!(back.secret, cpu.secret);
        assert_eq!(back.report_key_id, cpu.report_key_id);
        assert!(matches!(
            SimCpu::from_json(path, b"{}"),
            Err(SimError::Corrupt { .. })
        ));
        let short = String::from_utf8(cpu.to_json())
            .unwrap()
            .replace(&hex::encode([7u8; 16]), "0707");
        assert!(matches!(
            SimCpu::from_json(path, short.as_bytes()),
            Err(SimError::Corrupt { .. })
        ));
    }
}

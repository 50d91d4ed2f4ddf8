//! Fixed-size SGX structures (`#pragma pack(1)`, little-endian), parsed and encoded byte-exactly.
//!
//! Reserved fields are kept, so `encode(parse(x)) == x` holds for every input of the right size.

use crate::error::ParseError;
use crate::reader::Reader;

/// A structure with a fixed wire size.
pub trait Wire: Sized {
    /// Size in bytes on the wire.
    const SIZE: usize;
    /// Name used in error messages.
    const NAME: &'static str;

    /// Reads the structure from the reader's current position.
    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError>;

    /// Appends exactly [`Wire::SIZE`] bytes.
    fn write(&self, out: &mut Vec<u8>);

    /// Parses a buffer that must be exactly [`Wire::SIZE`] bytes long.
    fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        if bytes.len() != Self::SIZE {
            return Err(ParseError::WrongSize {
                field: Self::NAME,
                offset: 0,
                actual: bytes.len(),
                expected: Self::SIZE,
            });
        }
        Self::read(&mut Reader::new(bytes))
    }

    /// Encodes into a new vector of [`Wire::SIZE`] bytes.
    fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::SIZE);
        self.write(&mut out);
        out
    }
}

/// `sgx_attributes_t`: 16 bytes, flags then XFRM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Attributes {
    pub flags: u64,
    pub xfrm: u64,
}

impl Attributes {
    pub const INITTED: u64 = 0x1;
    pub const DEBUG: u64 = 0x2;
    pub const MODE64BIT: u64 = 0x4;
    pub const PROVISION_KEY: u64 = 0x10;
    pub const EINITTOKEN_KEY: u64 = 0x20;
    pub const KSS: u64 = 0x80;
    pub const AEX_NOTIFY: u64 = 0x400;

    pub fn is_debug(&self) -> bool {
        self.flags & Self::DEBUG != 0
    }

    pub fn to_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.flags.to_le_bytes());
        out[8..].copy_from_slice(&self.xfrm.to_le_bytes());
        out
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        let mut flags = [0u8; 8];
        let mut xfrm = [0u8; 8];
        flags.copy_from_slice(&bytes[..8]);
        xfrm.copy_from_slice(&bytes[8..]);
        Self {
            flags: u64::from_le_bytes(flags),
            xfrm: u64::from_le_bytes(xfrm),
        }
    }
}

impl Wire for Attributes {
    const SIZE: usize = 16;
    const NAME: &'static str = "attributes";

    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        Ok(Self {
            flags: r.u64_le("attributes.flags")?,
            xfrm: r.u64_le("attributes.xfrm")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
}

/// `sgx_report_body_t`: 384 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReportBody {
    pub cpu_svn: [u8; 16],
    pub misc_select: u32,
    pub reserved1: [u8; 12],
    pub isv_ext_prod_id: [u8; 16],
    pub attributes: Attributes,
    pub mr_enclave: [u8; 32],
    pub reserved2: [u8; 32],
    pub mr_signer: [u8; 32],
    pub reserved3: [u8; 32],
    pub config_id: [u8; 64],
    pub isv_prod_id: u16,
    pub isv_svn: u16,
    pub config_svn: u16,
    pub reserved4: [u8; 42],
    pub isv_family_id: [u8; 16],
    pub report_data: [u8; 64],
}

impl Default for ReportBody {
    fn default() -> Self {
        Self {
            cpu_svn: [0; 16],
            misc_select: 0,
            reserved1: [0; 12],
            isv_ext_prod_id: [0; 16],
            attributes: Attributes::default(),
            mr_enclave: [0; 32],
            reserved2: [0; 32],
            mr_signer: [0; 32],
            reserved3: [0; 32],
            config_id: [0; 64],
            isv_prod_id: 0,
            isv_svn: 0,
            config_svn: 0,
            reserved4: [0; 42],
            isv_family_id: [0; 16],
            report_data: [0; 64],
        }
    }
}

impl Wire for ReportBody {
    const SIZE: usize = 384;
    const NAME: &'static str = "report body";

    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        Ok(Self {
            cpu_svn: r.array("report_body.cpu_svn")?,
            misc_select: r.u32_le("report_body.misc_select")?,
            reserved1: r.array("report_body.reserved1")?,
            isv_ext_prod_id: r.array("report_body.isv_ext_prod_id")?,
            attributes: Attributes::read(r)?,
            mr_enclave: r.array("report_body.mr_enclave")?,
            reserved2: r.array("report_body.reserved2")?,
            mr_signer: r.array("report_body.mr_signer")?,
            reserved3: r.array("report_body.reserved3")?,
            config_id: r.array("report_body.config_id")?,
            isv_prod_id: r.u16_le("report_body.isv_prod_id")?,
            isv_svn: r.u16_le("report_body.isv_svn")?,
            config_svn: r.u16_le("report_body.config_svn")?,
            reserved4: r.array("report_body.reserved4")?,
            isv_family_id: r.array("report_body.isv_family_id")?,
            report_data: r.array("report_body.report_data")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.cpu_svn);
        out.extend_from_slice(&self.misc_select.to_le_bytes());
        out.extend_from_slice(&self.reserved1);
        out.extend_from_slice(&self.isv_ext_prod_id);
        self.attributes.write(out);
        out.extend_from_slice(&self.mr_enclave);
        out.extend_from_slice(&self.reserved2);
        out.extend_from_slice(&self.mr_signer);
        out.extend_from_slice(&self.reserved3);
        out.extend_from_slice(&self.config_id);
        out.extend_from_slice(&self.isv_prod_id.to_le_bytes());
        out.extend_from_slice(&self.isv_svn.to_le_bytes());
        out.extend_from_slice(&self.config_svn.to_le_bytes());
        out.extend_from_slice(&self.reserved4);
        out.extend_from_slice(&self.isv_family_id);
        out.extend_from_slice(&self.report_data);
    }
}

/// `sgx_target_info_t`: 512 bytes, what an enclave needs to create a report for another enclave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TargetInfo {
    pub mr_enclave: [u8; 32],
    pub attributes: Attributes,
    pub reserved1: [u8; 2],
    pub config_svn: u16,
    pub misc_select: u32,
    pub reserved2: [u8; 8],
    pub config_id: [u8; 64],
    pub reserved3: [u8; 384],
}

impl Default for TargetInfo {
    fn default() -> Self {
        Self {
            mr_enclave: [0; 32],
            attributes: Attributes::default(),
            reserved1: [0; 2],
            config_svn: 0,
            misc_select: 0,
            reserved2: [0; 8],
            config_id: [0; 64],
            reserved3: [0; 384],
        }
    }
}

impl TargetInfo {
    /// The target info of the enclave that produced `body` (what `sgx_self_target` returns).
    pub fn for_enclave(body: &ReportBody) -> Self {
        Self {
            mr_enclave: body.mr_enclave,
            attributes: body.attributes,
            config_svn: body.config_svn,
            misc_select: body.misc_select,
            config_id: body.config_id,
            ..Self::default()
        }
    }
}

impl Wire for TargetInfo {
    const SIZE: usize = 512;
    const NAME: &'static str = "target info";

    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        Ok(Self {
            mr_enclave: r.array("target_info.mr_enclave")?,
            attributes: Attributes::read(r)?,
            reserved1: r.array("target_info.reserved1")?,
            config_svn: r.u16_le("target_info.config_svn")?,
            misc_select: r.u32_le("target_info.misc_select")?,
            reserved2: r.array("target_info.reserved2")?,
            config_id: r.array("target_info.config_id")?,
            reserved3: r.array("target_info.reserved3")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.mr_enclave);
        self.attributes.write(out);
        out.extend_from_slice(&self.reserved1);
        out.extend_from_slice(&self.config_svn.to_le_bytes());
        out.extend_from_slice(&self.misc_select.to_le_bytes());
        out.extend_from_slice(&self.reserved2);
        out.extend_from_slice(&self.config_id);
        out.extend_from_slice(&self.reserved3);
    }
}

/// `sgx_report_t`: 432 bytes = body (384) ‖ key id (32) ‖ MAC (16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Report {
    pub body: ReportBody,
    pub key_id: [u8; 32],
    pub mac: [u8; 16],
}

impl Wire for Report {
    const SIZE: usize = 432;
    const NAME: &'static str = "report";

    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        Ok(Self {
            body: ReportBody::read(r)?,
            key_id: r.array("report.key_id")?,
            mac: r.array("report.mac")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        self.body.write(out);
        out.extend_from_slice(&self.key_id);
        out.extend_from_slice(&self.mac);
    }
}

/// `sgx_ql_att_key_id_t`: the 158-byte base of an attestation key id, which aesmd matches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QlAttKeyId {
    pub id: u16,
    pub version: u16,
    pub mrsigner_length: u16,
    pub mrsigner: [u8; 48],
    pub prod_id: u32,
    pub extended_prod_id: [u8; 16],
    pub config_id: [u8; 64],
    pub family_id: [u8; 16],
    pub algorithm_id: u32,
}

/// `sgx_ql_attestation_algorithm_id_t` value for ECDSA-P256.
pub const SGX_QL_ALG_ECDSA_P256: u32 = 2;

/// MRSIGNER of Intel's production QE3 (and of its PCE).
pub const INTEL_QE3_MRSIGNER: [u8; 32] = [
    0x8c, 0x4f, 0x57, 0x75, 0xd7, 0x96, 0x50, 0x3e, 0x96, 0x13, 0x7f, 0x77, 0xc6, 0x8a, 0x82, 0x9a,
    0x00, 0x56, 0xac, 0x8d, 0xed, 0x70, 0x14, 0x0b, 0x08, 0x1b, 0x09, 0x44, 0x90, 0xc5, 0x7b, 0xff,
];

impl QlAttKeyId {
    /// Intel's QE3 ECDSA-P256 key id, as `libsgx_dcap_ql`, Open Enclave and Gramine send it.
    pub fn intel_qe3_ecdsa() -> Self {
        let mut mrsigner = [0u8; 48];
        mrsigner[..32].copy_from_slice(&INTEL_QE3_MRSIGNER);
        Self {
            id: 0,
            version: 0,
            mrsigner_length: 32,
            mrsigner,
            prod_id: 1,
            extended_prod_id: [0; 16],
            config_id: [0; 64],
            family_id: [0; 16],
            algorithm_id: SGX_QL_ALG_ECDSA_P256,
        }
    }
}

impl Wire for QlAttKeyId {
    const SIZE: usize = 158;
    const NAME: &'static str = "attestation key id base";

    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        Ok(Self {
            id: r.u16_le("att_key_id.id")?,
            version: r.u16_le("att_key_id.version")?,
            mrsigner_length: r.u16_le("att_key_id.mrsigner_length")?,
            mrsigner: r.array("att_key_id.mrsigner")?,
            prod_id: r.u32_le("att_key_id.prod_id")?,
            extended_prod_id: r.array("att_key_id.extended_prod_id")?,
            config_id: r.array("att_key_id.config_id")?,
            family_id: r.array("att_key_id.family_id")?,
            algorithm_id: r.u32_le("att_key_id.algorithm_id")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.mrsigner_length.to_le_bytes());
        out.extend_from_slice(&self.mrsigner);
        out.extend_from_slice(&self.prod_id.to_le_bytes());
        out.extend_from_slice(&self.extended_prod_id);
        out.extend_from_slice(&self.config_id);
        out.extend_from_slice(&self.family_id);
        out.extend_from_slice(&self.algorithm_id.to_le_bytes());
    }
}

/// `sgx_att_key_id_ext_t` (= `sgx_att_key_id_t`): 256 bytes, the base plus SPID, key type and reserved
/// bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttKeyId {
    pub base: QlAttKeyId,
    pub spid: [u8; 16],
    pub att_key_type: u16,
    pub reserved: [u8; 80],
}

impl AttKeyId {
    /// Intel's QE3 ECDSA-P256 key id with SPID, key type and reserved bytes zero.
    pub fn intel_qe3_ecdsa() -> Self {
        Self {
            base: QlAttKeyId::intel_qe3_ecdsa(),
            spid: [0; 16],
            att_key_type: 0,
            reserved: [0; 80],
        }
    }

    /// The 158-byte base, the part aesmd compares with `memcmp`.
    pub fn base_bytes(&self) -> Vec<u8> {
        self.base.to_vec()
    }
}

impl Wire for AttKeyId {
    const SIZE: usize = 256;
    const NAME: &'static str = "attestation key id";

    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        Ok(Self {
            base: QlAttKeyId::read(r)?,
            spid: r.array("att_key_id.spid")?,
            att_key_type: r.u16_le("att_key_id.att_key_type")?,
            reserved: r.array("att_key_id.reserved")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        self.base.write(out);
        out.extend_from_slice(&self.spid);
        out.extend_from_slice(&self.att_key_type.to_le_bytes());
        out.extend_from_slice(&self.reserved);
    }
}

/// `sgx_ql_qe_report_info_t`: 960 bytes = nonce (16) ‖ app enclave target info (512) ‖ QE report (432).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct QeReportInfo {
    pub nonce: [u8; 16],
    pub app_enclave_target_info: TargetInfo,
    pub qe_report: Report,
}

impl Wire for QeReportInfo {
    const SIZE: usize = 960;
    const NAME: &'static str = "QE report info";

    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        Ok(Self {
            nonce: r.array("qe_report_info.nonce")?,
            app_enclave_target_info: TargetInfo::read(r)?,
            qe_report: Report::read(r)?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.nonce);
        self.app_enclave_target_info.write(out);
        self.qe_report.write(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    fn round_trip<T: Wire>() {
        let bytes = pattern(T::SIZE);
        let parsed = T::parse(&bytes).unwrap();
        assert_eq!(parsed.to_vec(), bytes, "{}", T::NAME);
        assert!(matches!(
            T::parse(&bytes[..T::SIZE - 1]),
            Err(ParseError::WrongSize { .. })
        ));
    }

    #[test]
    fn every_struct_round_trips_byte_exactly() {
        round_trip::<Attributes>();
        round_trip::<ReportBody>();
        round_trip::<TargetInfo>();
        round_trip::<Report>();
        round_trip::<QlAttKeyId>();
        round_trip::<AttKeyId>();
        round_trip::<QeReportInfo>();
    }

    #[test]
    fn report_body_fields_sit_at_the_documented_offsets() {
        let bytes = pattern(384);
        let b = ReportBody::parse(&bytes).unwrap();
        assert_eq!(b.cpu_svn[..], bytes[0..16]);
        assert_eq!(b.misc_select.to_le_bytes()[..], bytes[16..20]);
        assert_eq!(b.isv_ext_prod_id[..], bytes[32..48]);
        assert_eq!(b.attributes.to_bytes()[..], bytes[48..64]);
        assert_eq!(b.mr_enclave[..], bytes[64..96]);
        assert_eq!(b.mr_signer[..], bytes[128..160]);
        assert_eq!(b.config_id[..], bytes[192..256]);
        assert_eq!(b.isv_prod_id.to_le_bytes()[..], bytes[256..258]);
        assert_eq!(b.isv_svn.to_le_bytes()[..], bytes[258..260]);
        assert_eq!(b.config_svn.to_le_bytes()[..], bytes[260..262]);
        assert_eq!(b.isv_family_id[..], bytes[304..320]);
        assert_eq!(b.report_data[..], bytes[320..384]);
    }

    #[test]
    fn target_info_and_report_info_offsets() {
        let bytes = pattern(512);
        let t = TargetInfo::parse(&bytes).unwrap();
        assert_eq!(t.attributes.to_bytes()[..], bytes[32..48]);
        assert_eq!(t.config_svn.to_le_bytes()[..], bytes[50..52]);
        assert_eq!(t.misc_select.to_le_bytes()[..], bytes[52..56]);
        assert_eq!(t.config_id[..], bytes[64..128]);
        let bytes = pattern(960);
        let info = QeReportInfo::parse(&bytes).unwrap();
        assert_eq!(info.app_enclave_target_info.to_vec()[..], bytes[16..528]);
        assert_eq!(info.qe_report.to_vec()[..], bytes[528..960]);
    }

    #[test]
    fn intel_qe3_key_id_bytes() {
        let bytes = AttKeyId::intel_qe3_ecdsa().to_vec();
        assert_eq!(bytes.len(), 256);
        assert_eq!(bytes[..6], [0, 0, 0, 0, 0x20, 0]);
        assert_eq!(bytes[6..38], INTEL_QE3_MRSIGNER);
        assert!(bytes[38..54].iter().all(|&b| b == 0));
        assert_eq!(bytes[54..58], [1, 0, 0, 0]);
        assert!(bytes[58..154].iter().all(|&b| b == 0));
        assert_eq!(bytes[154..158], [2, 0, 0, 0]);
        assert!(bytes[158..].iter().all(|&b| b == 0));
    }
}

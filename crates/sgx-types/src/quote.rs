//! The DCAP ECDSA quote wire format: v3 (SGX) and v4 with TEE type 0 (SGX).
//!
//! Layout (all integers little-endian; signatures r‖s and keys x‖y as big-endian 32-byte halves):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 48 | header: version, att_key_type, tee_type, qe_svn, pce_svn, qe_vendor_id, user_data |
//! | 48 | 384 | ISV enclave report body |
//! | 432 | 4 | signature_data_len |
//! | 436 | … | signature data |
//!
//! v3 signature data: ISV signature (64) ‖ attestation key (64) ‖ QE report body (384) ‖ QE report
//! signature (64) ‖ QE auth data (u16 + bytes) ‖ certification data (u16 type, u32 size, bytes).
//! v4 signature data: ISV signature (64) ‖ attestation key (64) ‖ certification data of type 6, whose
//! payload is QE report body ‖ QE report signature ‖ QE auth data ‖ inner certification data (type 5).
//!
//! Bytes after `436 + signature_data_len` are not part of the quote (aesmd pads quotes with zeros up to
//! the caller's buffer); they are returned as [`Quote::trailing_bytes`].

use crate::error::ParseError;
use crate::reader::Reader;
use crate::structs::{ReportBody, Wire};

/// Intel's QE vendor id, UUID 939a7233-f79c-4ca9-940a-0db3957f0607.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];
/// Attestation key type ECDSA-256 with P-256.
pub const ATT_KEY_TYPE_ECDSA_P256: u16 = 2;
/// TEE type of SGX quotes (v4 header).
pub const TEE_TYPE_SGX: u32 = 0;
/// TEE type of TDX quotes (v4 header), recognised only to be refused clearly.
pub const TEE_TYPE_TDX: u32 = 0x81;
/// Size of the quote header.
pub const HEADER_LEN: usize = 48;
/// Bytes covered by the ISV signature: header and report body.
pub const SIGNED_LEN: usize = HEADER_LEN + ReportBody::SIZE;
/// Offset of the signature data (after `signature_data_len`).
pub const SIGNATURE_DATA_OFFSET: usize = SIGNED_LEN + 4;

/// The 48-byte quote header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteHeader {
    pub version: u16,
    pub att_key_type: u16,
    /// v4: TEE type (0 = SGX). v3: the reserved `att_key_data_0`, which is 0 for SGX.
    pub tee_type: u32,
    pub qe_svn: u16,
    pub pce_svn: u16,
    pub qe_vendor_id: [u8; 16],
    pub user_data: [u8; 20],
}

impl QuoteHeader {
    fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        let version = r.u16_le("header.version")?;
        if version != 3 && version != 4 {
            return Err(ParseError::UnsupportedVersion { version });
        }
        let att_key_type = r.u16_le("header.att_key_type")?;
        if att_key_type != ATT_KEY_TYPE_ECDSA_P256 {
            return Err(ParseError::UnsupportedAttKeyType { att_key_type });
        }
        let tee_type = r.u32_le("header.tee_type")?;
        if tee_type != TEE_TYPE_SGX {
            return Err(ParseError::UnsupportedTeeType { tee_type });
        }
        Ok(Self {
            version,
            att_key_type,
            tee_type,
            qe_svn: r.u16_le("header.qe_svn")?,
            pce_svn: r.u16_le("header.pce_svn")?,
            qe_vendor_id: r.array("header.qe_vendor_id")?,
            user_data: r.array("header.user_data")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.att_key_type.to_le_bytes());
        out.extend_from_slice(&self.tee_type.to_le_bytes());
        out.extend_from_slice(&self.qe_svn.to_le_bytes());
        out.extend_from_slice(&self.pce_svn.to_le_bytes());
        out.extend_from_slice(&self.qe_vendor_id);
        out.extend_from_slice(&self.user_data);
    }
}

/// Certification data: a type and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificationData<'a> {
    pub cert_type: u16,
    pub data: &'a [u8],
}

impl<'a> CertificationData<'a> {
    pub const PPID_CLEARTEXT: u16 = 1;
    pub const PPID_RSA2048_ENCRYPTED: u16 = 2;
    pub const PPID_RSA3072_ENCRYPTED: u16 = 3;
    pub const PCK_CLEARTEXT: u16 = 4;
    /// PEM PCK leaf ‖ intermediate CA ‖ root CA, usually followed by one NUL.
    pub const PCK_CERT_CHAIN: u16 = 5;
    /// QE report certification data (the outer certification data of v4 quotes).
    pub const QE_REPORT_CERTIFICATION: u16 = 6;

    /// Human-readable name of the certification data type.
    pub fn type_name(cert_type: u16) -> &'static str {
        match cert_type {
            1 => "PPID_CLEARTEXT",
            2 => "PPID_RSA2048_ENCRYPTED",
            3 => "PPID_RSA3072_ENCRYPTED",
            4 => "PCK_CLEARTEXT",
            5 => "PCK_CERT_CHAIN",
            6 => "ECDSA_SIG_AUX_DATA",
            _ => "unknown",
        }
    }

    /// The PEM PCK certificate chain, when this is type 5.
    pub fn pck_chain_pem(&self) -> Option<&'a [u8]> {
        (self.cert_type == Self::PCK_CERT_CHAIN).then_some(self.data)
    }

    fn read(r: &mut Reader<'a>, prefix: &'static str) -> Result<Self, ParseError> {
        let (type_field, size_field, data_field) = match prefix {
            "outer" => (
                "certification_data.type",
                "certification_data.size",
                "certification_data",
            ),
            _ => (
                "qe_certification_data.type",
                "qe_certification_data.size",
                "qe_certification_data",
            ),
        };
        let cert_type = r.u16_le(type_field)?;
        let size = r.u32_le(size_field)? as usize;
        let data = r.take(size, data_field)?;
        Ok(Self { cert_type, data })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.cert_type.to_le_bytes());
        out.extend_from_slice(&(self.data.len() as u32).to_le_bytes());
        out.extend_from_slice(self.data);
    }

    fn encoded_len(&self) -> usize {
        6 + self.data.len()
    }
}

/// The ECDSA signature data, the same fields for v3 and v4 (where the QE report and the PCK chain sit
/// inside the type-6 certification data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureData<'a> {
    /// ECDSA-P256 signature by the attestation key over the first [`SIGNED_LEN`] bytes, r‖s big-endian.
    pub isv_signature: [u8; 64],
    /// The attestation public key, x‖y big-endian.
    pub attestation_key: [u8; 64],
    /// The quoting enclave's report body, signed by the PCK key.
    pub qe_report: ReportBody,
    /// ECDSA-P256 signature by the PCK key over the QE report body.
    pub qe_report_signature: [u8; 64],
    pub qe_auth_data: &'a [u8],
    /// The certification data that certifies the PCK key (v4: the inner one).
    pub certification_data: CertificationData<'a>,
}

/// The QE part of the signature data: identical in v3 and inside v4's type-6 certification data.
struct QePart<'a> {
    qe_report: ReportBody,
    qe_report_signature: [u8; 64],
    qe_auth_data: &'a [u8],
    certification_data: CertificationData<'a>,
}

impl<'a> QePart<'a> {
    fn read(r: &mut Reader<'a>, cert_prefix: &'static str) -> Result<Self, ParseError> {
        Ok(Self {
            qe_report: ReportBody::read(r).map_err(rename_qe_report)?,
            qe_report_signature: r.array("qe_report_signature")?,
            qe_auth_data: {
                let len = r.u16_le("qe_auth_data.size")? as usize;
                r.take(len, "qe_auth_data")?
            },
            certification_data: CertificationData::read(r, cert_prefix)?,
        })
    }
}

impl<'a> SignatureData<'a> {
    fn read(r: &mut Reader<'a>, version: u16) -> Result<Self, ParseError> {
        let isv_signature = r.array("isv_signature")?;
        let attestation_key = r.array("attestation_key")?;
        let qe = if version == 3 {
            QePart::read(r, "outer")?
        } else {
            let outer = CertificationData::read(r, "outer")?;
            if outer.cert_type != CertificationData::QE_REPORT_CERTIFICATION {
                return Err(ParseError::Invalid {
                    field: "certification_data.type",
                    offset: r.offset() - outer.encoded_len(),
                    reason: format!(
                        "v4 SGX quotes carry QE report certification data (type 6), found type {}",
                        outer.cert_type
                    ),
                });
            }
            let mut inner = Reader::with_base(outer.data, r.offset() - outer.data.len());
            let qe = QePart::read(&mut inner, "inner")?;
            inner.finish("certification_data")?;
            qe
        };
        Ok(Self {
            isv_signature,
            attestation_key,
            qe_report: qe.qe_report,
            qe_report_signature: qe.qe_report_signature,
            qe_auth_data: qe.qe_auth_data,
            certification_data: qe.certification_data,
        })
    }

    fn qe_part_len(&self) -> usize {
        ReportBody::SIZE + 64 + 2 + self.qe_auth_data.len() + self.certification_data.encoded_len()
    }

    fn encoded_len(&self, version: u16) -> usize {
        let qe = self.qe_part_len();
        128 + if version == 3 { qe } else { 6 + qe }
    }

    fn write(&self, out: &mut Vec<u8>, version: u16) {
        out.extend_from_slice(&self.isv_signature);
        out.extend_from_slice(&self.attestation_key);
        if version != 3 {
            out.extend_from_slice(&CertificationData::QE_REPORT_CERTIFICATION.to_le_bytes());
            out.extend_from_slice(&(self.qe_part_len() as u32).to_le_bytes());
        }
        self.qe_report.write(out);
        out.extend_from_slice(&self.qe_report_signature);
        out.extend_from_slice(&(self.qe_auth_data.len() as u16).to_le_bytes());
        out.extend_from_slice(self.qe_auth_data);
        self.certification_data.write(out);
    }
}

/// Field names inside the QE report are reported with their own prefix.
fn rename_qe_report(e: ParseError) -> ParseError {
    match e {
        ParseError::Truncated {
            offset,
            needed,
            available,
            ..
        } => ParseError::Truncated {
            field: "qe_report",
            offset,
            needed,
            available,
        },
        other => other,
    }
}

/// A parsed SGX DCAP quote, borrowing its variable-length parts from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote<'a> {
    pub header: QuoteHeader,
    pub report_body: ReportBody,
    pub signature: SignatureData<'a>,
    /// Bytes after the end of the quote (zero padding from aesmd, typically). Empty for a built quote.
    pub trailing_bytes: &'a [u8],
}

impl<'a> Quote<'a> {
    /// Parses a quote. Trailing bytes after the signature data are allowed and returned.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        if bytes.is_empty() {
            return Err(ParseError::Empty);
        }
        let mut r = Reader::new(bytes);
        let header = QuoteHeader::read(&mut r)?;
        let report_body = ReportBody::read(&mut r)?;
        let sig_len = r.u32_le("signature_data_len")? as usize;
        let sig_bytes = r.take(sig_len, "signature_data")?;
        let mut sr = Reader::with_base(sig_bytes, SIGNATURE_DATA_OFFSET);
        let signature = SignatureData::read(&mut sr, header.version)?;
        if sr.remaining() != 0 {
            return Err(ParseError::Invalid {
                field: "signature_data_len",
                offset: SIGNED_LEN,
                reason: format!(
                    "declares {sig_len} bytes but the signature data ends after {}",
                    sig_len - sr.remaining()
                ),
            });
        }
        Ok(Self {
            header,
            report_body,
            signature,
            trailing_bytes: r.rest(),
        })
    }

    /// The value of `signature_data_len` for this quote.
    pub fn signature_data_len(&self) -> usize {
        self.signature.encoded_len(self.header.version)
    }

    /// Length of the quote proper, without trailing bytes.
    pub fn quote_len(&self) -> usize {
        SIGNATURE_DATA_OFFSET + self.signature_data_len()
    }

    /// Number of leading bytes covered by the ISV signature.
    pub fn signed_len(&self) -> usize {
        SIGNED_LEN
    }

    /// The bytes the attestation key signs: header ‖ report body.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SIGNED_LEN);
        self.header.write(&mut out);
        self.report_body.write(&mut out);
        out
    }

    /// Encodes the quote (without trailing bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.quote_len());
        self.header.write(&mut out);
        self.report_body.write(&mut out);
        out.extend_from_slice(&(self.signature_data_len() as u32).to_le_bytes());
        self.signature.write(&mut out, self.header.version);
        out
    }
}

//! PCK certificates: the Intel SGX extension (OID 1.2.840.113741.1.13.1) and strict PEM chain decoding.
//!
//! The extension is an OCTET STRING wrapping `SEQUENCE OF SEQUENCE { OID, value }`:
//!
//! | OID suffix | field | type |
//! |---|---|---|
//! | .1 | PPID | OCTET STRING (16) |
//! | .2 | TCB: .2.1–.2.16 component SVNs (INTEGER), .2.17 PCESVN (INTEGER), .2.18 CPUSVN (OCTET STRING 16) | SEQUENCE |
//! | .3 | PCE-ID | OCTET STRING (2) |
//! | .4 | FMSPC | OCTET STRING (6) |
//! | .5 | SGX type (0 standard, 1 scalable, 2 scalable with integrity) | ENUMERATED |
//! | .6 | PlatformInstanceID (Platform CA certificates) | OCTET STRING (16) |
//! | .7 | Configuration: .7.1 dynamic platform, .7.2 cached keys, .7.3 SMT enabled (Platform CA certificates) | SEQUENCE of BOOLEAN |

use base64::Engine;
use const_oid::ObjectIdentifier;
use der::Tagged;
use der::asn1::Any;
use der::{Decode, Encode, Sequence, Tag};
use x509_cert::Certificate;

use crate::error::ParseError;

/// OID of the SGX extension.
pub const SGX_EXTENSION_OID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1");

fn sub_oid(parent: &ObjectIdentifier, arc: u32) -> Result<ObjectIdentifier, ParseError> {
    parent
        .push_arc(arc)
        .map_err(|e| ParseError::Pck(format!("cannot build OID {parent}.{arc}: {e}")))
}

#[derive(Sequence)]
struct Entry {
    id: ObjectIdentifier,
    value: Any,
}

/// The TCB of the platform the PCK certificate was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PckTcb {
    /// SGX TCB component SVNs 1..16.
    pub comp_svn: [u8; 16],
    pub pce_svn: u16,
    /// CPUSVN as stored in the certificate (equals the component SVNs as bytes on Intel certificates).
    pub cpu_svn: [u8; 16],
}

/// Platform configuration of Platform CA certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PckConfiguration {
    pub dynamic_platform: Option<bool>,
    pub cached_keys: Option<bool>,
    pub smt_enabled: Option<bool>,
}

/// The decoded SGX extension of a PCK certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PckExtension {
    pub ppid: [u8; 16],
    pub tcb: PckTcb,
    pub pce_id: [u8; 2],
    pub fmspc: [u8; 6],
    /// 0 = Standard (Processor CA), 1 = Scalable (Platform CA), 2 = Scalable with integrity.
    pub sgx_type: u8,
    pub platform_instance_id: Option<[u8; 16]>,
    pub configuration: Option<PckConfiguration>,
}

fn pck_err(what: impl std::fmt::Display) -> ParseError {
    ParseError::Pck(what.to_string())
}

fn octets<const N: usize>(value: &Any, name: &str) -> Result<[u8; N], ParseError> {
    if value.tag() != Tag::OctetString {
        return Err(pck_err(format!(
            "{name}: expected OCTET STRING, found {}",
            value.tag()
        )));
    }
    <[u8; N]>::try_from(value.value()).map_err(|_| {
        pck_err(format!(
            "{name}: expected {N} bytes, found {}",
            value.value().len()
        ))
    })
}

fn integer<T: for<'a> der::DecodeValue<'a> + der::FixedTag>(
    value: &Any,
    name: &str,
) -> Result<T, ParseError>
where
    for<'a> <T as der::DecodeValue<'a>>::Error: std::fmt::Display,
{
    value
        .decode_as::<T>()
        .map_err(|e| pck_err(format!("{name}: {e}")))
}

fn entries(der_bytes: &[u8], name: &str) -> Result<Vec<Entry>, ParseError> {
    Vec::<Entry>::from_der(der_bytes).map_err(|e| pck_err(format!("{name}: {e}")))
}

fn set_once<T>(slot: &mut Option<T>, value: T, name: &str) -> Result<(), ParseError> {
    if slot.replace(value).is_some() {
        return Err(pck_err(format!("{name} appears twice")));
    }
    Ok(())
}

fn required<T>(slot: Option<T>, name: &str) -> Result<T, ParseError> {
    slot.ok_or_else(|| pck_err(format!("{name} is missing")))
}

impl PckExtension {
    /// Decodes the extension value (the contents of the extension's OCTET STRING).
    pub fn from_der(extn_value: &[u8]) -> Result<Self, ParseError> {
        let root = SGX_EXTENSION_OID;
        let tcb_oid = sub_oid(&root, 2)?;
        let config_oid = sub_oid(&root, 7)?;
        let (mut ppid, mut tcb, mut pce_id, mut fmspc, mut sgx_type, mut instance, mut config) =
            (None, None, None, None, None, None, None);
        for entry in entries(extn_value, "SGX extension")? {
            let Some(arc) = direct_child(&root, &entry.id) else {
                continue;
            };
            match arc {
                1 => set_once(&mut ppid, octets::<16>(&entry.value, "PPID")?, "PPID")?,
                2 => set_once(&mut tcb, decode_tcb(&tcb_oid, &entry.value)?, "TCB")?,
                3 => set_once(&mut pce_id, octets::<2>(&entry.value, "PCE-ID")?, "PCE-ID")?,
                4 => set_once(&mut fmspc, octets::<6>(&entry.value, "FMSPC")?, "FMSPC")?,
                5 => {
                    if entry.value.tag() != Tag::Enumerated {
                        return Err(pck_err(format!(
                            "SGX type: expected ENUMERATED, found {}",
                            entry.value.tag()
                        )));
                    }
                    let v = match entry.value.value() {
                        [v] if *v < 0x80 => *v,
                        other => return Err(pck_err(format!("SGX type: bad value {other:02x?}"))),
                    };
                    set_once(&mut sgx_type, v, "SGX type")?
                }
                6 => set_once(
                    &mut instance,
                    octets::<16>(&entry.value, "PlatformInstanceID")?,
                    "PlatformInstanceID",
                )?,
                7 => set_once(
                    &mut config,
                    decode_configuration(&config_oid, &entry.value)?,
                    "Configuration",
                )?,
                _ => {}
            }
        }
        Ok(Self {
            ppid: required(ppid, "PPID")?,
            tcb: required(tcb, "TCB")?,
            pce_id: required(pce_id, "PCE-ID")?,
            fmspc: required(fmspc, "FMSPC")?,
            sgx_type: required(sgx_type, "SGX type")?,
            platform_instance_id: instance,
            configuration: config,
        })
    }

    /// Finds and decodes the SGX extension of a certificate.
    pub fn from_certificate(cert: &Certificate) -> Result<Self, ParseError> {
        let ext = cert
            .tbs_certificate()
            .extensions()
            .and_then(|exts| exts.iter().find(|e| e.extn_id == SGX_EXTENSION_OID))
            .ok_or_else(|| {
                pck_err("the certificate has no SGX extension (OID 1.2.840.113741.1.13.1)")
            })?;
        Self::from_der(ext.extn_value.as_bytes())
    }

    /// Encodes the extension value (to be wrapped in the extension's OCTET STRING).
    pub fn to_der(&self) -> Result<Vec<u8>, ParseError> {
        let root = SGX_EXTENSION_OID;
        let enc = |e: der::Error| pck_err(format!("encoding: {e}"));
        let octet = |bytes: &[u8]| Any::new(Tag::OctetString, bytes.to_vec()).map_err(enc);
        let tcb_oid = sub_oid(&root, 2)?;
        let mut tcb = Vec::with_capacity(18);
        for (i, svn) in self.tcb.comp_svn.iter().enumerate() {
            tcb.push(Entry {
                id: sub_oid(&tcb_oid, i as u32 + 1)?,
                value: Any::encode_from(svn).map_err(enc)?,
            });
        }
        tcb.push(Entry {
            id: sub_oid(&tcb_oid, 17)?,
            value: Any::encode_from(&self.tcb.pce_svn).map_err(enc)?,
        });
        tcb.push(Entry {
            id: sub_oid(&tcb_oid, 18)?,
            value: octet(&self.tcb.cpu_svn)?,
        });
        let mut out = vec![
            Entry {
                id: sub_oid(&root, 1)?,
                value: octet(&self.ppid)?,
            },
            Entry {
                id: tcb_oid,
                value: Any::new(Tag::Sequence, sequence_body(&tcb)?).map_err(enc)?,
            },
            Entry {
                id: sub_oid(&root, 3)?,
                value: octet(&self.pce_id)?,
            },
            Entry {
                id: sub_oid(&root, 4)?,
                value: octet(&self.fmspc)?,
            },
            Entry {
                id: sub_oid(&root, 5)?,
                value: Any::new(Tag::Enumerated, vec![self.sgx_type]).map_err(enc)?,
            },
        ];
        if let Some(id) = &self.platform_instance_id {
            out.push(Entry {
                id: sub_oid(&root, 6)?,
                value: octet(id)?,
            });
        }
        if let Some(cfg) = &self.configuration {
            let cfg_oid = sub_oid(&root, 7)?;
            let mut items = Vec::new();
            for (arc, flag) in [
                (1, cfg.dynamic_platform),
                (2, cfg.cached_keys),
                (3, cfg.smt_enabled),
            ] {
                if let Some(flag) = flag {
                    items.push(Entry {
                        id: sub_oid(&cfg_oid, arc)?,
                        value: Any::encode_from(&flag).map_err(enc)?,
                    });
                }
            }
            out.push(Entry {
                id: cfg_oid,
                value: Any::new(Tag::Sequence, sequence_body(&items)?).map_err(enc)?,
            });
        }
        out.to_der().map_err(enc)
    }
}

/// The encoded entries without the outer SEQUENCE header, i.e. the value of a SEQUENCE.
fn sequence_body(entries: &[Entry]) -> Result<Vec<u8>, ParseError> {
    let mut body = Vec::new();
    for e in entries {
        e.encode_to_vec(&mut body)
            .map_err(|e| pck_err(format!("encoding: {e}")))?;
    }
    Ok(body)
}

/// `Some(arc)` when `oid` is `parent.arc`.
fn direct_child(parent: &ObjectIdentifier, oid: &ObjectIdentifier) -> Option<u32> {
    if oid.parent().as_ref() == Some(parent) {
        oid.arcs().last()
    } else {
        None
    }
}

fn decode_tcb(tcb_oid: &ObjectIdentifier, value: &Any) -> Result<PckTcb, ParseError> {
    if value.tag() != Tag::Sequence {
        return Err(pck_err("TCB: expected SEQUENCE"));
    }
    let mut comps: [Option<u8>; 16] = [None; 16];
    let (mut pce_svn, mut cpu_svn) = (None, None);
    for entry in entries(
        &value.to_der().map_err(|e| pck_err(format!("TCB: {e}")))?,
        "TCB",
    )? {
        match direct_child(tcb_oid, &entry.id) {
            Some(arc @ 1..=16) => {
                let slot = &mut comps[arc as usize - 1];
                set_once(
                    slot,
                    integer::<u8>(&entry.value, "TCB component SVN")?,
                    "TCB component",
                )?
            }
            Some(17) => set_once(
                &mut pce_svn,
                integer::<u16>(&entry.value, "PCESVN")?,
                "PCESVN",
            )?,
            Some(18) => set_once(
                &mut cpu_svn,
                octets::<16>(&entry.value, "CPUSVN")?,
                "CPUSVN",
            )?,
            _ => {}
        }
    }
    let mut comp_svn = [0u8; 16];
    for (i, c) in comps.iter().enumerate() {
        comp_svn[i] =
            c.ok_or_else(|| pck_err(format!("TCB component {} SVN is missing", i + 1)))?;
    }
    Ok(PckTcb {
        comp_svn,
        pce_svn: required(pce_svn, "PCESVN")?,
        cpu_svn: required(cpu_svn, "CPUSVN")?,
    })
}

fn decode_configuration(
    cfg_oid: &ObjectIdentifier,
    value: &Any,
) -> Result<PckConfiguration, ParseError> {
    if value.tag() != Tag::Sequence {
        return Err(pck_err("Configuration: expected SEQUENCE"));
    }
    let mut cfg = PckConfiguration::default();
    let body = value
        .to_der()
        .map_err(|e| pck_err(format!("Configuration: {e}")))?;
    for entry in entries(&body, "Configuration")? {
        let flag = || integer::<bool>(&entry.value, "Configuration flag");
        match direct_child(cfg_oid, &entry.id) {
            Some(1) => set_once(&mut cfg.dynamic_platform, flag()?, "DynamicPlatform")?,
            Some(2) => set_once(&mut cfg.cached_keys, flag()?, "CachedKeys")?,
            Some(3) => set_once(&mut cfg.smt_enabled, flag()?, "SMTEnabled")?,
            _ => {}
        }
    }
    Ok(cfg)
}

/// Most certificates a PEM chain may hold (leaf, intermediates, root).
pub const MAX_CHAIN_CERTS: usize = 6;

/// Splits a PEM certificate chain into the DER bytes of its certificates, strictly, as the chain
/// travels in certification data of type 5 and in collateral issuer chains:
/// `-----BEGIN CERTIFICATE-----` blocks separated by line breaks only, each the canonical encoding of
/// its certificate (canonical base64 in lines of 64 characters, one line-break style throughout), and
/// after the last block at most one line break and one NUL. Anything else is an error naming the byte
/// offset, so that no two different texts decode to the same chain.
pub fn split_pem_chain(pem: &[u8]) -> Result<Vec<Vec<u8>>, ParseError> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let malformed = |offset: usize, reason: String| ParseError::Invalid {
        field: "pem_cert_chain",
        offset,
        reason,
    };
    let text = pem.strip_suffix(b"\0").unwrap_or(pem);
    let eol: &[u8] = match text.get(BEGIN.len()..BEGIN.len() + 2) {
        Some(b"\r\n") => b"\r\n",
        _ => b"\n",
    };
    let mut ders = Vec::new();
    let mut pos = 0;
    let mut b64 = Vec::with_capacity(1024);
    loop {
        let rest = &text[pos..];
        let Some(after_begin) = rest.strip_prefix(BEGIN).and_then(|r| r.strip_prefix(eol)) else {
            return Err(malformed(
                pos,
                "expected -----BEGIN CERTIFICATE----- and a line break".into(),
            ));
        };
        pos += BEGIN.len() + eol.len();
        b64.clear();
        let mut lines = after_begin;
        loop {
            if lines.starts_with(END) {
                pos += END.len();
                break;
            }
            let newline = lines.iter().position(|&b| b == b'\n').ok_or_else(|| {
                malformed(pos, "certificate without -----END CERTIFICATE-----".into())
            })?;
            let line_len = (newline + 1)
                .checked_sub(eol.len())
                .filter(|&n| lines.get(n..=newline) == Some(eol))
                .ok_or_else(|| malformed(pos, "inconsistent line breaks".into()))?;
            let line = &lines[..line_len];
            let next = &lines[line_len + eol.len()..];
            let last = next.starts_with(END);
            if line.is_empty() || line.len() > 64 || (!last && line.len() != 64) {
                return Err(malformed(
                    pos,
                    format!("base64 line of {} characters", line.len()),
                ));
            }
            b64.extend_from_slice(line);
            pos += line_len + eol.len();
            lines = next;
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(&b64)
            .map_err(|e| {
                malformed(
                    pos,
                    format!("certificate {}: invalid base64: {e}", ders.len()),
                )
            })?;
        ders.push(der);
        if ders.len() > MAX_CHAIN_CERTS {
            return Err(malformed(
                pos,
                format!("more than {MAX_CHAIN_CERTS} certificates"),
            ));
        }
        if pos == text.len() {
            return Ok(ders);
        }
        if !text[pos..].starts_with(eol) {
            return Err(malformed(
                pos,
                "unexpected bytes after -----END CERTIFICATE-----".into(),
            ));
        }
        pos += eol.len();
        if pos == text.len() {
            return Ok(ders);
        }
    }
}

/// Decodes a PEM certificate chain with the strict rules of [`split_pem_chain`].
pub fn parse_pem_chain(data: &[u8]) -> Result<Vec<Certificate>, ParseError> {
    split_pem_chain(data)?
        .iter()
        .enumerate()
        .map(|(i, der)| {
            Certificate::from_der(der).map_err(|e| ParseError::Invalid {
                field: "pem_cert_chain",
                offset: 0,
                reason: format!("certificate {i}: {e}"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::asn1::OctetString;

    fn sample() -> PckExtension {
        PckExtension {
            ppid: [0x11; 16],
            tcb: PckTcb {
                comp_svn: [11, 11, 2, 2, 255, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0],
                pce_svn: 13,
                cpu_svn: [11, 11, 2, 2, 255, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0],
            },
            pce_id: [0, 0],
            fmspc: [0x00, 0xa0, 0x67, 0x11, 0x00, 0x00],
            sgx_type: 1,
            platform_instance_id: Some([0x22; 16]),
            configuration: Some(PckConfiguration {
                dynamic_platform: Some(true),
                cached_keys: Some(false),
                smt_enabled: Some(true),
            }),
        }
    }

    #[test]
    fn extension_round_trips_including_platform_fields() {
        let ext = sample();
        let der = ext.to_der().unwrap();
        assert_eq!(PckExtension::from_der(&der).unwrap(), ext);
        let processor = PckExtension {
            sgx_type: 0,
            platform_instance_id: None,
            configuration: None,
            ..ext
        };
        assert_eq!(
            PckExtension::from_der(&processor.to_der().unwrap()).unwrap(),
            processor
        );
    }

    #[test]
    fn svn_255_is_encoded_as_positive_integer() {
        let der = sample().to_der().unwrap();
        assert!(der.windows(4).any(|w| w == [0x02, 0x02, 0x00, 0xff]));
    }

    #[test]
    fn missing_fields_and_garbage_are_errors() {
        assert!(PckExtension::from_der(&[]).is_err());
        assert!(PckExtension::from_der(&[0x30, 0x00]).is_err());
        assert!(PckExtension::from_der(&[0x30, 0x80, 0x00]).is_err());
    }

    #[test]
    fn octet_string_wrapper_is_not_accepted_as_value() {
        let der = sample().to_der().unwrap();
        let wrapped = OctetString::new(der).unwrap().to_der().unwrap();
        assert!(PckExtension::from_der(&wrapped).is_err());
    }
}

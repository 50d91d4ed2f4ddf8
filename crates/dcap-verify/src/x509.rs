//! X.509 certificates and CRLs of Intel's SGX PKI (ECDSA P-256 with SHA-256 throughout), decoded strictly
//! with `x509-cert` and verified with `ring`.
//!
//! Strictness: a certificate or CRL must re-encode to exactly the bytes it was read from (so the signed
//! `tbsCertificate` is exactly the bytes that were decoded), use ecdsa-with-SHA256 in both signature
//! algorithm fields, and carry a P-256 key.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_KP_SERVER_AUTH};
use const_oid::db::rfc5912::{ECDSA_WITH_SHA_256, ID_EC_PUBLIC_KEY, SECP_256_R_1};
use der::{Decode, Encode};
use ring::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use x509_cert::spki::AlgorithmIdentifierOwned;

use std::sync::Arc;

use crate::error::{Chain, CrlKind, VerifyError};

/// OIDs of the extensions that may be critical (RFC 5280 processing rules a verifier must understand).
const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");

/// Verifies an ECDSA P-256/SHA-256 signature in DER form.
pub(crate) fn verify_der_sig(key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key)
        .verify(msg, sig)
        .is_ok()
}

/// Verifies an ECDSA P-256/SHA-256 signature given as raw r‖s (64 bytes).
pub(crate) fn verify_raw_sig(key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    sig.len() == 64
        && UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key)
            .verify(msg, sig)
            .is_ok()
}

fn is_ecdsa_sha256(alg: &AlgorithmIdentifierOwned) -> bool {
    alg.oid == ECDSA_WITH_SHA_256 && alg.parameters.is_none()
}

/// A decoded certificate with what the verifier needs ready at hand.
#[derive(Debug, Clone)]
pub(crate) struct Cert {
    pub der: Vec<u8>,
    pub cert: Certificate,
    tbs: Vec<u8>,
    sig: Vec<u8>,
    pub issuer: Vec<u8>,
    pub subject: Vec<u8>,
    pub serial: Vec<u8>,
    /// Uncompressed P-256 point (65 bytes).
    pub key: Vec<u8>,
    pub not_before: u64,
    pub not_after: u64,
    is_ca: bool,
    path_len: Option<u8>,
    key_usage: Option<KeyUsage>,
    ext_key_usage: Option<Vec<ObjectIdentifier>>,
    unknown_critical: Option<ObjectIdentifier>,
}

impl Cert {
    /// Decodes a DER certificate strictly. The error is a reason for a message.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let cert = Certificate::from_der(der).map_err(|e| format!("invalid DER: {e}"))?;
        let reencoded = cert.to_der().map_err(|e| e.to_string())?;
        if reencoded != der {
            return Err("not canonical DER".into());
        }
        let (tbs, issuer, subject) = raw_parts(der).map_err(|e| format!("invalid DER: {e}"))?;
        let tbs_cert = cert.tbs_certificate();
        if !is_ecdsa_sha256(cert.signature_algorithm()) || !is_ecdsa_sha256(tbs_cert.signature()) {
            return Err("signature algorithm is not ecdsa-with-SHA256".into());
        }
        let sig = cert
            .signature()
            .as_bytes()
            .ok_or("signature BIT STRING has unused bits")?
            .to_vec();
        let spki = tbs_cert.subject_public_key_info();
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        if spki.algorithm.oid != ID_EC_PUBLIC_KEY || curve != Some(SECP_256_R_1) {
            return Err("public key is not an EC P-256 key".into());
        }
        let key = spki
            .subject_public_key
            .as_bytes()
            .filter(|k| k.len() == 65 && k[0] == 4)
            .ok_or("public key is not an uncompressed P-256 point")?
            .to_vec();
        let mut seen = Vec::new();
        let mut unknown_critical = None;
        for ext in tbs_cert.extensions().map(|e| e.as_slice()).unwrap_or(&[]) {
            if seen.contains(&ext.extn_id) {
                return Err(format!("extension {} appears twice", ext.extn_id));
            }
            seen.push(ext.extn_id);
            if ext.critical
                && ![BASIC_CONSTRAINTS, KEY_USAGE, EXT_KEY_USAGE].contains(&ext.extn_id)
                && unknown_critical.is_none()
            {
                unknown_critical = Some(ext.extn_id);
            }
        }
        let bc = tbs_cert
            .get_extension::<BasicConstraints>()
            .map_err(|e| format!("basic constraints: {e}"))?
            .map(|(_, bc)| bc);
        let key_usage = tbs_cert
            .get_extension::<KeyUsage>()
            .map_err(|e| format!("key usage: {e}"))?
            .map(|(_, ku)| ku);
        let ext_key_usage = tbs_cert
            .get_extension::<ExtendedKeyUsage>()
            .map_err(|e| format!("extended key usage: {e}"))?
            .map(|(_, eku)| eku.0);
        let validity = tbs_cert.validity();
        Ok(Self {
            tbs: tbs.to_vec(),
            sig,
            issuer: issuer.to_vec(),
            subject: subject.to_vec(),
            serial: tbs_cert.serial_number().as_bytes().to_vec(),
            key,
            not_before: validity.not_before.to_unix_duration().as_secs(),
            not_after: validity.not_after.to_unix_duration().as_secs(),
            is_ca: bc.as_ref().is_some_and(|bc| bc.ca),
            path_len: bc.and_then(|bc| bc.path_len_constraint),
            key_usage,
            ext_key_usage,
            unknown_critical,
            der: der.to_vec(),
            cert,
        })
    }

    /// The subject's distinguished name, for messages.
    pub fn subject_name(&self) -> String {
        self.cert.tbs_certificate().subject().to_string()
    }

    /// Whether `issuer`'s key signed this certificate.
    pub fn signed_by(&self, issuer_key: &[u8]) -> bool {
        verify_der_sig(issuer_key, &self.tbs, &self.sig)
    }
}

/// Decodes one certificate's DER (the verifier reuses earlier decodings).
pub(crate) type DecodeCert<'a> = dyn Fn(&[u8]) -> Result<Arc<Cert>, String> + 'a;

/// The longest chain accepted: leaf, up to four intermediates (like dcap-qvl), root.
const MAX_CHAIN: usize = sgx_types::pck::MAX_CHAIN_CERTS;

/// The exact bytes of a certificate's `tbsCertificate`, issuer and subject (each a whole TLV), read
/// from a certificate that `x509-cert` has decoded.
fn raw_parts(der: &[u8]) -> der::Result<(&[u8], &[u8], &[u8])> {
    use der::{Header, Reader, SliceReader};
    let mut outer = SliceReader::new(der)?;
    Header::decode(&mut outer)?;
    let tbs = outer.tlv_bytes()?;
    let mut fields = SliceReader::new(tbs)?;
    Header::decode(&mut fields)?;
    if fields.tlv_bytes()?.first() == Some(&0xa0) {
        fields.tlv_bytes()?; // [0] version present: then the serial number
    }
    fields.tlv_bytes()?; // signature algorithm
    let issuer = fields.tlv_bytes()?;
    fields.tlv_bytes()?; // validity
    let subject = fields.tlv_bytes()?;
    Ok((tbs, issuer, subject))
}

/// Decodes a PEM certificate chain with the strict rules of [`sgx_types::pck::split_pem_chain`]
/// (canonical base64 in 64-column lines, line breaks only between blocks, at most one NUL at the end).
pub(crate) fn parse_chain(
    chain: Chain,
    pem: &[u8],
    decode: &DecodeCert<'_>,
) -> Result<Vec<Arc<Cert>>, VerifyError> {
    let ders = sgx_types::pck::split_pem_chain(pem).map_err(|e| VerifyError::ChainMalformed {
        chain,
        reason: e.to_string(),
    })?;
    ders.iter()
        .enumerate()
        .map(|(i, der)| {
            decode(der).map_err(|e| VerifyError::ChainMalformed {
                chain,
                reason: format!("certificate {i}: {e}"),
            })
        })
        .collect()
}

/// A decoded CRL.
#[derive(Debug, Clone)]
pub(crate) struct Crl {
    pub which: CrlKind,
    tbs: Vec<u8>,
    sig: Vec<u8>,
    pub issuer: Vec<u8>,
    pub this_update: u64,
    pub next_update: u64,
    revoked: Vec<Vec<u8>>,
}

impl Crl {
    pub fn from_der(which: CrlKind, der: &[u8]) -> Result<Self, VerifyError> {
        let malformed = |reason: String| VerifyError::CrlMalformed { which, reason };
        let crl =
            <CertificateList>::from_der(der).map_err(|e| malformed(format!("invalid DER: {e}")))?;
        if crl.to_der().map_err(|e| malformed(e.to_string()))? != der {
            return Err(malformed("not canonical DER".into()));
        }
        let tbs = &crl.tbs_cert_list;
        if !is_ecdsa_sha256(&crl.signature_algorithm) || !is_ecdsa_sha256(&tbs.signature) {
            return Err(malformed(
                "signature algorithm is not ecdsa-with-SHA256".into(),
            ));
        }
        if tbs.version != x509_cert::Version::V2 {
            return Err(malformed("not a version 2 CRL".into()));
        }
        let next_update = tbs
            .next_update
            .ok_or_else(|| malformed("nextUpdate is missing".into()))?;
        let exts = tbs.crl_extensions.as_deref().unwrap_or(&[]);
        for (oid, name) in [
            (ID_CE_CRL_NUMBER, "CRLNumber"),
            (ID_CE_AUTHORITY_KEY_IDENTIFIER, "AuthorityKeyIdentifier"),
        ] {
            if !exts.iter().any(|e| e.extn_id == oid) {
                return Err(VerifyError::CrlMissingExtension {
                    which,
                    extension: name,
                });
            }
        }
        Ok(Self {
            which,
            tbs: tbs.to_der().map_err(|e| malformed(e.to_string()))?,
            sig: crl
                .signature
                .as_bytes()
                .ok_or_else(|| malformed("signature BIT STRING has unused bits".into()))?
                .to_vec(),
            issuer: tbs.issuer.to_der().map_err(|e| malformed(e.to_string()))?,
            this_update: tbs.this_update.to_unix_duration().as_secs(),
            next_update: next_update.to_unix_duration().as_secs(),
            revoked: tbs
                .revoked_certificates
                .iter()
                .flatten()
                .map(|r| r.serial_number.as_bytes().to_vec())
                .collect(),
        })
    }

    pub fn signed_by(&self, key: &[u8]) -> bool {
        verify_der_sig(key, &self.tbs, &self.sig)
    }

    /// Validity window check: `thisUpdate <= now < nextUpdate` (an expired CRL at its nextUpdate second,
    /// as webpki treats it).
    pub fn check_window(&self, now: u64, window: &mut Window) -> Result<(), VerifyError> {
        if now < self.this_update {
            return Err(VerifyError::CrlNotYetValid {
                which: self.which,
                this_update: self.this_update,
            });
        }
        if now >= self.next_update {
            return Err(VerifyError::CrlExpired {
                which: self.which,
                next_update: self.next_update,
            });
        }
        window.narrow(self.this_update, self.next_update.saturating_sub(1));
        Ok(())
    }

    pub fn lists(&self, serial: &[u8]) -> bool {
        self.revoked.iter().any(|s| s == serial)
    }
}

/// The closed interval of `now` values for which every time check made so far passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub lo: u64,
    pub hi: u64,
}

impl Window {
    pub const ALL: Window = Window {
        lo: 0,
        hi: u64::MAX,
    };

    pub fn narrow(&mut self, lo: u64, hi: u64) {
        self.lo = self.lo.max(lo);
        self.hi = self.hi.min(hi);
    }

    pub fn meet(&mut self, other: Window) {
        self.narrow(other.lo, other.hi);
    }

    pub fn contains(&self, now: u64) -> bool {
        self.lo <= now && now <= self.hi
    }
}

/// The two CRLs, with the PCK CRL already verified against `pck_crl_key`.
#[derive(Debug, Clone)]
pub(crate) struct Crls {
    pub root: Arc<Crl>,
    pub pck: Arc<Crl>,
    /// The key the PCK CRL's signature was verified with.
    pub pck_crl_key: Vec<u8>,
}

/// Names a certificate in a chain for revocation messages.
fn cert_role(chain: Chain, index: usize, len: usize) -> &'static str {
    match (chain, index) {
        (_, i) if i + 1 == len => "root CA certificate",
        (Chain::Pck, 0) => "PCK certificate",
        (Chain::Pck, _) => "PCK CA certificate",
        (Chain::TcbInfo, 0) => "TCB signing certificate",
        (Chain::QeIdentity, 0) => "QE identity signing certificate",
        (Chain::PckCrl, 0) => "PCK CA certificate (PCK CRL issuer)",
        _ => "intermediate CA certificate",
    }
}

/// Verifies a chain `leaf, [intermediates], root` against the trust anchor at `now`: the root is
/// byte-identical to the anchor, each certificate is valid at `now`, issued (name and signature) by
/// the next one, which is a CA allowed to sign certificates at that depth, and not revoked by a CRL of
/// its issuer (one is required for every certificate below the root). The leaf must not be a CA and, if
/// it carries an extended key usage, it must include serverAuth.
///
/// Returns the window of `now` values over which this result holds.
pub(crate) fn verify_chain(
    chain: Chain,
    certs: &[Arc<Cert>],
    anchor_der: &[u8],
    crls: &Crls,
    now: u64,
    signed_by: &dyn Fn(&Cert, &Cert) -> bool,
) -> Result<Window, VerifyError> {
    let len = certs.len();
    if !(2..=MAX_CHAIN).contains(&len) {
        return Err(VerifyError::ChainMalformed {
            chain,
            reason: format!("{len} certificates (expected 2 to {MAX_CHAIN})"),
        });
    }
    if certs[len - 1].der != anchor_der {
        return Err(VerifyError::ChainUntrusted { chain });
    }
    let mut window = Window::ALL;
    for (index, cert) in certs.iter().enumerate() {
        let subject = || cert.subject_name();
        if now < cert.not_before {
            return Err(VerifyError::CertificateNotYetValid {
                chain,
                index,
                subject: subject(),
                not_before: cert.not_before,
            });
        }
        if now > cert.not_after {
            return Err(VerifyError::CertificateExpired {
                chain,
                index,
                subject: subject(),
                not_after: cert.not_after,
            });
        }
        window.narrow(cert.not_before, cert.not_after);
        let unusable = |reason: String| VerifyError::CertificateUnusable {
            chain,
            index,
            subject: subject(),
            reason,
        };
        if let Some(oid) = cert.unknown_critical {
            return Err(unusable(format!("unsupported critical extension {oid}")));
        }
        if index == 0 && chain == Chain::PckCrl {
            // The PCK CRL issuer chain ends in the PCK CA, which signs the CRL.
            if !cert.is_ca {
                return Err(unusable("PCK CRL issuer is not a CA".into()));
            }
            if cert.key_usage.as_ref().is_some_and(|ku| !ku.crl_sign()) {
                return Err(unusable("PCK CRL issuer key usage lacks cRLSign".into()));
            }
        } else if index == 0 {
            if cert.is_ca {
                return Err(unusable("a CA certificate used as end entity".into()));
            }
            if let Some(eku) = &cert.ext_key_usage
                && !eku.contains(&ID_KP_SERVER_AUTH)
            {
                return Err(unusable("extended key usage excludes serverAuth".into()));
            }
        } else {
            if !cert.is_ca {
                return Err(unusable("issuer is not a CA".into()));
            }
            if cert
                .key_usage
                .as_ref()
                .is_some_and(|ku| !ku.key_cert_sign())
            {
                return Err(unusable("issuer key usage lacks keyCertSign".into()));
            }
            // CA certificates below this one (excluding the leaf) must not exceed its path length.
            if let Some(max) = cert.path_len
                && index - 1 > usize::from(max)
            {
                return Err(unusable(format!("path length constraint {max} exceeded")));
            }
        }
        let Some(issuer) = certs.get(index + 1) else {
            break;
        };
        if cert.issuer != issuer.subject {
            return Err(VerifyError::IssuerMismatch {
                chain,
                index,
                subject: subject(),
            });
        }
        if !signed_by(cert, issuer) {
            return Err(VerifyError::CertificateSignatureInvalid {
                chain,
                index,
                subject: subject(),
            });
        }
        // Revocation, from a CRL of this certificate's issuer.
        let mut covered = false;
        for crl in [&crls.root, &crls.pck] {
            if crl.issuer != cert.issuer {
                continue;
            }
            let verified = match crl.which {
                CrlKind::RootCa => issuer.der == anchor_der,
                CrlKind::Pck => issuer.key == crls.pck_crl_key,
            };
            if !verified && !crl.signed_by(&issuer.key) {
                return Err(VerifyError::CrlSignatureInvalid { which: crl.which });
            }
            if issuer.key_usage.as_ref().is_some_and(|ku| !ku.crl_sign()) {
                return Err(unusable("CRL issuer key usage lacks cRLSign".into()));
            }
            crl.check_window(now, &mut window)?;
            if crl.lists(&cert.serial) {
                return Err(VerifyError::CertificateRevoked {
                    what: cert_role(chain, index, len).into(),
                });
            }
            covered = true;
        }
        if !covered {
            return Err(VerifyError::RevocationUnknown {
                chain,
                index,
                subject: subject(),
            });
        }
    }
    Ok(window)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/vectors/dcap-qvl/sgx_quote.pckchain.pem"
        ))
        .unwrap()
    }

    fn decode(der: &[u8]) -> Result<Arc<Cert>, String> {
        Cert::from_der(der).map(Arc::new)
    }

    fn parses(pem: &[u8]) -> bool {
        parse_chain(Chain::Pck, pem, &decode).is_ok()
    }

    #[test]
    fn accepts_the_real_chain_with_one_nul_lf_or_crlf() {
        let pem = chain();
        assert_eq!(parse_chain(Chain::Pck, &pem, &decode).unwrap().len(), 3);
        let mut nul = pem.clone();
        nul.push(0);
        assert!(parses(&nul));
        let crlf = String::from_utf8(pem.clone())
            .unwrap()
            .replace('\n', "\r\n");
        assert!(parses(crlf.as_bytes()));
        let no_final_eol = pem.strip_suffix(b"\n").unwrap();
        assert!(parses(no_final_eol));
    }

    #[test]
    fn rejects_anything_but_the_canonical_text() {
        let pem = chain();
        let mut two_nuls = pem.clone();
        two_nuls.extend_from_slice(&[0, 0]);
        assert!(!parses(&two_nuls));
        let mut trailing = pem.clone();
        trailing.extend_from_slice(b"x");
        assert!(!parses(&trailing));
        let mut blank_line = pem.clone();
        blank_line.extend_from_slice(b"\n");
        assert!(!parses(&blank_line));
        let text = String::from_utf8(pem.clone()).unwrap();
        // Mixed line ends, a re-wrapped body, and a space are all refused.
        assert!(!parses(text.replacen('\n', "\r\n", 2).as_bytes()));
        let rewrapped = text.replacen("\n", "", 2).replacen(
            "-----BEGIN CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\n",
            1,
        );
        assert!(!parses(rewrapped.as_bytes()));
        assert!(!parses(text.replacen('\n', " \n", 3).as_bytes()));
        assert!(!parses(b""));
        assert!(!parses(b"\0"));
    }

    #[test]
    fn raw_parts_are_the_encoded_fields() {
        for cert in parse_chain(Chain::Pck, &chain(), &decode).unwrap() {
            let tbs = cert.cert.tbs_certificate();
            assert_eq!(cert.tbs, tbs.to_der().unwrap());
            assert_eq!(cert.issuer, tbs.issuer().to_der().unwrap());
            assert_eq!(cert.subject, tbs.subject().to_der().unwrap());
        }
    }

    #[test]
    fn windows_narrow_and_contain() {
        let mut w = Window::ALL;
        w.narrow(10, 20);
        w.meet(Window { lo: 5, hi: 15 });
        assert_eq!(w, Window { lo: 10, hi: 15 });
        assert!(w.contains(10) && w.contains(15) && !w.contains(9) && !w.contains(16));
    }
}

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
    pub subject_name: String,
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
        Self::from_parsed(der.to_vec(), cert)
    }

    fn from_parsed(der: Vec<u8>, cert: Certificate) -> Result<Self, String> {
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
            tbs: tbs_cert.to_der().map_err(|e| e.to_string())?,
            sig,
            issuer: tbs_cert.issuer().to_der().map_err(|e| e.to_string())?,
            subject: tbs_cert.subject().to_der().map_err(|e| e.to_string())?,
            subject_name: tbs_cert.subject().to_string(),
            serial: tbs_cert.serial_number().as_bytes().to_vec(),
            key,
            not_before: validity.not_before.to_unix_duration().as_secs(),
            not_after: validity.not_after.to_unix_duration().as_secs(),
            is_ca: bc.as_ref().is_some_and(|bc| bc.ca),
            path_len: bc.and_then(|bc| bc.path_len_constraint),
            key_usage,
            ext_key_usage,
            unknown_critical,
            der,
            cert,
        })
    }

    /// Whether `issuer`'s key signed this certificate.
    fn signed_by(&self, issuer_key: &[u8]) -> bool {
        verify_der_sig(issuer_key, &self.tbs, &self.sig)
    }
}

/// Decodes a PEM chain strictly (see [`sgx_types::pck::parse_pem_chain`]).
pub(crate) fn parse_chain(chain: Chain, pem: &[u8]) -> Result<Vec<Cert>, VerifyError> {
    let malformed = |reason: String| VerifyError::ChainMalformed { chain, reason };
    let certs = sgx_types::pck::parse_pem_chain(pem).map_err(|e| malformed(e.to_string()))?;
    // The PEM decoder recovers some altered base64 bytes (a flipped character in a length field still
    // yields the original certificate), so the text must also be exactly the canonical PEM of the
    // certificates it decodes to: 64-column base64, LF or CRLF line ends.
    let text = pem.strip_suffix(b"\0").unwrap_or(pem);
    let line_ending = if text.windows(2).any(|w| w == b"\r\n") {
        der::pem::LineEnding::CRLF
    } else {
        der::pem::LineEnding::LF
    };
    let mut canonical = String::new();
    for (i, cert) in certs.iter().enumerate() {
        let block = der::EncodePem::to_pem(cert, line_ending)
            .map_err(|e| malformed(format!("certificate {i}: {e}")))?;
        canonical.push_str(&block);
    }
    let canonical = canonical.as_bytes();
    let without_last_eol = canonical.strip_suffix(line_ending.as_bytes());
    if text != canonical && Some(text) != without_last_eol {
        return Err(malformed(
            "PEM text is not the canonical encoding of its certificates".into(),
        ));
    }
    certs
        .into_iter()
        .enumerate()
        .map(|(i, cert)| {
            let der = cert
                .to_der()
                .map_err(|e| malformed(format!("certificate {i}: {e}")))?;
            Cert::from_parsed(der, cert).map_err(|e| malformed(format!("certificate {i}: {e}")))
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
    pub root: std::sync::Arc<Crl>,
    pub pck: std::sync::Arc<Crl>,
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
    certs: &[Cert],
    anchor_der: &[u8],
    crls: &Crls,
    now: u64,
) -> Result<Window, VerifyError> {
    let len = certs.len();
    if !(2..=6).contains(&len) {
        return Err(VerifyError::ChainMalformed {
            chain,
            reason: format!("{len} certificates (expected 2 to 6)"),
        });
    }
    if certs[len - 1].der != anchor_der {
        return Err(VerifyError::ChainUntrusted { chain });
    }
    let mut window = Window::ALL;
    for (index, cert) in certs.iter().enumerate() {
        let subject = || cert.subject_name.clone();
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
        if !cert.signed_by(&issuer.key) {
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

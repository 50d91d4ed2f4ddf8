//! Quote collateral: the TCB info, QE identity, CRLs and issuer chains a quote is verified against.
//!
//! Two forms are read:
//! - the dcap-qvl `QuoteCollateralV3` JSON (byte fields as hex strings; `tcb_info` and `qe_identity` hold
//!   the exact signed JSON text), via [`Collateral::from_json`];
//! - a directory in the PCS layout written by `confcom sim collateral`, via [`Collateral::from_dir`]:
//!   `tcb_info.json` (`{"tcbInfo":…,"signature":…}`), `qe_identity.json`
//!   (`{"enclaveIdentity":…,"signature":…}`), `pck_crl.der`, `root_ca_crl.der`,
//!   `tcb_info_issuer_chain.pem`, `qe_identity_issuer_chain.pem`, `pck_crl_issuer_chain.pem`, and/or
//!   `collateral.json` in the dcap-qvl form. The PCS files win when both are present.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use thiserror::Error;

/// Why collateral could not be read at all (as opposed to failing verification).
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not valid collateral JSON: {reason}")]
    Json { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "{dir}: no collateral found (expected collateral.json or the PCS files tcb_info.json, …)"
    )]
    Empty { dir: PathBuf },
    #[error("{dir}: collateral incomplete: {missing} missing")]
    Incomplete { dir: PathBuf, missing: &'static str },
}

/// Collateral for one quote, the fields of dcap-qvl's `QuoteCollateralV3`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Collateral {
    /// PEM: PCK CA ‖ root.
    pub pck_crl_issuer_chain: String,
    /// DER.
    #[serde(with = "hex_bytes")]
    pub root_ca_crl: Vec<u8>,
    /// DER.
    #[serde(with = "hex_bytes")]
    pub pck_crl: Vec<u8>,
    /// PEM: TCB signing certificate ‖ root.
    pub tcb_info_issuer_chain: String,
    /// The exact signed bytes of the `tcbInfo` object.
    pub tcb_info: String,
    /// Raw r‖s (64 bytes).
    #[serde(with = "hex_bytes")]
    pub tcb_info_signature: Vec<u8>,
    /// PEM.
    pub qe_identity_issuer_chain: String,
    /// The exact signed bytes of the `enclaveIdentity` object.
    pub qe_identity: String,
    /// Raw r‖s (64 bytes).
    #[serde(with = "hex_bytes")]
    pub qe_identity_signature: Vec<u8>,
    /// PEM PCK chain; when present it replaces the quote's certification data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pck_certificate_chain: Option<String>,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        hex::decode(s.as_ref()).map_err(serde::de::Error::custom)
    }
}

/// A PCS-style signed document: the exact text of its body and the signature.
#[derive(Deserialize)]
struct Signed<'a> {
    #[serde(borrow, alias = "tcbInfo", alias = "enclaveIdentity")]
    body: &'a RawValue,
    signature: String,
}

/// Parses `{"tcbInfo": {…}, "signature": "<hex r‖s>"}` (or `enclaveIdentity`) keeping the body's exact
/// bytes. Returns (body text, signature bytes).
pub fn parse_signed_document(text: &str) -> Result<(String, Vec<u8>), String> {
    let doc: Signed<'_> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let sig = hex::decode(&doc.signature).map_err(|e| format!("signature: {e}"))?;
    Ok((doc.body.get().to_owned(), sig))
}

impl Collateral {
    /// Reads the dcap-qvl `QuoteCollateralV3` JSON form.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Writes the dcap-qvl `QuoteCollateralV3` JSON form.
    pub fn to_json(&self) -> String {
        // Serialising plain strings and byte vectors into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads collateral from a file (dcap-qvl JSON) or a directory (PCS layout).
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        if path.is_dir() {
            Self::from_dir(path)
        } else {
            let text = read_text(path)?;
            Self::from_json(&text).map_err(|e| LoadError::Json {
                path: path.to_owned(),
                reason: e.to_string(),
            })
        }
    }

    /// Reads a directory in the PCS layout (see the module docs).
    pub fn from_dir(dir: &Path) -> Result<Self, LoadError> {
        let file = |name: &str| {
            let p = dir.join(name);
            p.is_file().then_some(p)
        };
        let mut found_any = false;
        let mut c = match file("collateral.json") {
            Some(p) => {
                found_any = true;
                let text = read_text(&p)?;
                Self::from_json(&text).map_err(|e| LoadError::Json {
                    path: p,
                    reason: e.to_string(),
                })?
            }
            None => Collateral::default(),
        };
        let signed = |p: PathBuf| -> Result<(String, Vec<u8>), LoadError> {
            let text = read_text(&p)?;
            parse_signed_document(&text).map_err(|reason| LoadError::Json { path: p, reason })
        };
        if let Some(p) = file("tcb_info.json") {
            found_any = true;
            (c.tcb_info, c.tcb_info_signature) = signed(p)?;
        }
        if let Some(p) = file("qe_identity.json") {
            found_any = true;
            (c.qe_identity, c.qe_identity_signature) = signed(p)?;
        }
        if let Some(p) = file("pck_crl.der") {
            found_any = true;
            c.pck_crl = read_crl(&p)?;
        }
        if let Some(p) = file("root_ca_crl.der") {
            found_any = true;
            c.root_ca_crl = read_crl(&p)?;
        }
        for (name, slot) in [
            ("tcb_info_issuer_chain.pem", &mut c.tcb_info_issuer_chain),
            (
                "qe_identity_issuer_chain.pem",
                &mut c.qe_identity_issuer_chain,
            ),
            ("pck_crl_issuer_chain.pem", &mut c.pck_crl_issuer_chain),
        ] {
            if let Some(p) = file(name) {
                found_any = true;
                *slot = read_text(&p)?;
            }
        }
        if !found_any {
            return Err(LoadError::Empty {
                dir: dir.to_owned(),
            });
        }
        for (missing, empty) in [
            ("the TCB info", c.tcb_info.is_empty()),
            ("the QE identity", c.qe_identity.is_empty()),
            ("the PCK CRL", c.pck_crl.is_empty()),
            ("the root CA CRL", c.root_ca_crl.is_empty()),
            (
                "the TCB info issuer chain",
                c.tcb_info_issuer_chain.is_empty(),
            ),
            (
                "the QE identity issuer chain",
                c.qe_identity_issuer_chain.is_empty(),
            ),
            (
                "the PCK CRL issuer chain",
                c.pck_crl_issuer_chain.is_empty(),
            ),
        ] {
            if empty {
                return Err(LoadError::Incomplete {
                    dir: dir.to_owned(),
                    missing,
                });
            }
        }
        Ok(c)
    }
}

fn read_text(path: &Path) -> Result<String, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| LoadError::Invalid {
        path: path.to_owned(),
        reason: "not UTF-8 text".into(),
    })
}

/// A CRL file: DER, or PEM (`-----BEGIN X509 CRL-----`) as PCS serves with `encoding=pem`.
fn read_crl(path: &Path) -> Result<Vec<u8>, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    if bytes.starts_with(b"-----BEGIN") {
        let (label, der) = der::pem::decode_vec(&bytes).map_err(|e| LoadError::Invalid {
            path: path.to_owned(),
            reason: format!("invalid PEM: {e}"),
        })?;
        if label != "X509 CRL" {
            return Err(LoadError::Invalid {
                path: path.to_owned(),
                reason: format!("PEM label {label:?}, expected \"X509 CRL\""),
            });
        }
        return Ok(der);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_document_keeps_the_exact_body_bytes() {
        let text = r#"{"tcbInfo":{"b":1,"a":[ 2 ]},"signature":"0a0B"}"#;
        let (body, sig) = parse_signed_document(text).unwrap();
        assert_eq!(body, r#"{"b":1,"a":[ 2 ]}"#);
        assert_eq!(sig, vec![0x0a, 0x0b]);
        assert!(parse_signed_document(r#"{"signature":"00"}"#).is_err());
        assert!(parse_signed_document(r#"{"tcbInfo":{},"signature":"0g"}"#).is_err());
    }

    #[test]
    fn json_form_round_trips() {
        let c = Collateral {
            root_ca_crl: vec![1, 2],
            tcb_info: "{}".into(),
            pck_certificate_chain: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(Collateral::from_json(&c.to_json()).unwrap(), c);
    }
}

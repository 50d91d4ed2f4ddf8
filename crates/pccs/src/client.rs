//! Fetching a quote's collateral from a PCCS (Intel's, `confcom pccs`) or Intel's PCS, as Intel's
//! quote provider library does: the PCK CRL of the quote's CA (`encoding=der`), the TCB info of its
//! FMSPC, the QE identity, and the root CA CRL (`rootcacrl` on a PCCS; the root certificate's CRL
//! distribution point on Intel's PCS).
//!
//! Replies are untrusted: sizes are bounded, issuer chains must decode, CRLs are accepted as DER,
//! hex (Intel's PCCS) or PEM. Header names are matched without regard to case; the TCB info chain
//! is read from `TCB-Info-Issuer-Chain` or `SGX-TCB-Info-Issuer-Chain`.

use std::time::Duration;

use percent_encoding::percent_decode_str;

use crate::api::{
    ApiVersion, HEADER_IDENTITY_CHAIN, HEADER_PCK_CRL_CHAIN, HEADER_TCB_INFO_CHAIN_V3,
    HEADER_TCB_INFO_CHAIN_V4,
};
use crate::source::{CaType, Crl, Signed};

/// Intel's public Provisioning Certification Service, API v4.
pub const INTEL_PCS_URL: &str = "https://api.trustedservices.intel.com/sgx/certification/v4/";
/// Where Intel's PCS publishes the root CA CRL (the root certificate's CRL distribution point).
pub const INTEL_ROOT_CA_CRL_URL: &str =
    "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";
/// Largest body accepted.
const MAX_BODY: u64 = 4 << 20;

/// Why collateral could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The base URL is not an http(s) URL.
    #[error("{0:?} is not an http:// or https:// URL")]
    BadUrl(String),
    /// The server could not be reached, or the exchange broke off.
    #[error("{url}: {reason}")]
    Transport {
        /// The request.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("{url}: HTTP {status}{}", if message.is_empty() { String::new() } else { format!(" ({message})") })]
    Status {
        /// The request.
        url: String,
        /// The status.
        status: u16,
        /// The start of the body, when it is text.
        message: String,
    },
    /// The answer is not what the API promises.
    #[error("{url}: {reason}")]
    BadReply {
        /// The request.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Everything a quote needs besides its own certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedCollateral {
    /// `{"tcbInfo":…,"signature":…}` as served, and its chain.
    pub tcb_info: Signed,
    /// `{"enclaveIdentity":…,"signature":…}` as served, and its chain.
    pub qe_identity: Signed,
    /// The PCK CRL (DER) and its chain.
    pub pck_crl: Crl,
    /// The root CA CRL, DER.
    pub root_ca_crl: Vec<u8>,
}

/// A client for one PCCS or PCS base URL.
#[derive(Clone, Debug)]
pub struct PccsClient {
    base: String,
    version: ApiVersion,
    intel_pcs: bool,
    agent: ureq::Agent,
}

impl PccsClient {
    /// A client for `url`: a base ending in `/sgx/certification/v3/` or `/v4/`, or a server root
    /// (`https://pccs:8081`, which means its API v4). `timeout` bounds each request.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, FetchError> {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(FetchError::BadUrl(url.to_owned()));
        }
        let trimmed = url.trim_end_matches('/');
        let (base, version) = if trimmed.ends_with("/sgx/certification/v3") {
            (format!("{trimmed}/"), ApiVersion::V3)
        } else if trimmed.ends_with("/sgx/certification/v4") {
            (format!("{trimmed}/"), ApiVersion::V4)
        } else {
            (
                format!("{trimmed}{}", ApiVersion::V4.prefix()),
                ApiVersion::V4,
            )
        };
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self {
            intel_pcs: base.contains("trustedservices.intel.com"),
            base,
            version,
            agent,
        })
    }

    /// The base URL requests go to.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The API version of the base URL.
    pub fn version(&self) -> ApiVersion {
        self.version
    }

    /// One GET; returns the body and a header lookup.
    fn get(&self, url: &str) -> Result<Reply, FetchError> {
        let transport = |reason: String| FetchError::Transport {
            url: url.to_owned(),
            reason,
        };
        let mut response = self
            .agent
            .get(url)
            .call()
            .map_err(|e| transport(e.to_string()))?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| transport(e.to_string()))?;
        if status != 200 {
            let message = std::str::from_utf8(&body)
                .map(|t| t.trim().chars().take(200).collect())
                .unwrap_or_default();
            return Err(FetchError::Status {
                url: url.to_owned(),
                status,
                message,
            });
        }
        Ok(Reply {
            url: url.to_owned(),
            headers,
            body,
        })
    }

    /// Fetches the collateral of a quote whose PCK certificate has `fmspc` and was issued by `ca`.
    pub fn collateral(&self, fmspc: &[u8; 6], ca: CaType) -> Result<FetchedCollateral, FetchError> {
        let crl = self.get(&format!(
            "{}pckcrl?ca={}&encoding=der",
            self.base,
            ca.as_str()
        ))?;
        let pck_crl = Crl {
            der: crl.crl()?,
            issuer_chain: crl.chain(&[HEADER_PCK_CRL_CHAIN])?,
        };
        let tcb = self.get(&format!(
            "{}tcb?fmspc={}",
            self.base,
            hex::encode_upper(fmspc)
        ))?;
        let tcb_info = tcb.signed(&[HEADER_TCB_INFO_CHAIN_V4, HEADER_TCB_INFO_CHAIN_V3])?;
        let qe = self.get(&format!("{}qe/identity", self.base))?;
        let qe_identity = qe.signed(&[HEADER_IDENTITY_CHAIN])?;
        let root_ca_crl = if self.intel_pcs {
            self.get(INTEL_ROOT_CA_CRL_URL)?.crl()?
        } else {
            self.get(&format!("{}rootcacrl", self.base))?.crl()?
        };
        Ok(FetchedCollateral {
            tcb_info,
            qe_identity,
            pck_crl,
            root_ca_crl,
        })
    }
}

/// A 200 answer.
struct Reply {
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn bad(&self, reason: impl Into<String>) -> FetchError {
        FetchError::BadReply {
            url: self.url.clone(),
            reason: reason.into(),
        }
    }

    /// The first of `names` present, percent-decoded.
    fn chain(&self, names: &[&str]) -> Result<String, FetchError> {
        let value = names
            .iter()
            .find_map(|name| {
                self.headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            })
            .ok_or_else(|| self.bad(format!("no {} header", names.join(" or "))))?;
        let pem = percent_decode_str(value)
            .decode_utf8()
            .map_err(|e| self.bad(format!("issuer chain: {e}")))?
            .into_owned();
        sgx_types::pck::parse_pem_chain(pem.as_bytes())
            .map_err(|e| self.bad(format!("issuer chain: {e}")))?;
        Ok(pem)
    }

    /// A signed JSON document and its chain.
    fn signed(&self, chain_names: &[&str]) -> Result<Signed, FetchError> {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .map_err(|e| self.bad(format!("not JSON: {e}")))?;
        Ok(Signed {
            body: self.body.clone(),
            issuer_chain: self.chain(chain_names)?,
        })
    }

    /// A CRL body: DER, hex text of DER (Intel's PCCS), or PEM.
    fn crl(&self) -> Result<Vec<u8>, FetchError> {
        crl_der(&self.body).ok_or_else(|| self.bad("the body is not a CRL in DER, hex or PEM"))
    }
}

/// The DER of a CRL body in any of the encodings servers use.
pub fn crl_der(body: &[u8]) -> Option<Vec<u8>> {
    if is_der_sequence(body) {
        return Some(body.to_vec());
    }
    let text = std::str::from_utf8(body).ok()?.trim();
    if let Some(b64) = text
        .strip_prefix("-----BEGIN X509 CRL-----")
        .and_then(|rest| rest.strip_suffix("-----END X509 CRL-----"))
    {
        use base64::Engine;
        let joined: String = b64.split_whitespace().collect();
        return base64::engine::general_purpose::STANDARD
            .decode(joined)
            .ok();
    }
    let der = hex::decode(text).ok()?;
    is_der_sequence(&der).then_some(der)
}

/// Whether `bytes` is exactly one DER SEQUENCE (tag, definite length, contents).
fn is_der_sequence(bytes: &[u8]) -> bool {
    let (Some(&0x30), Some(&first)) = (bytes.first(), bytes.get(1)) else {
        return false;
    };
    let (header, length) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return false;
        }
        let Some(octets) = bytes.get(2..2 + count) else {
            return false;
        };
        let length = octets
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (2 + count, length)
    };
    header.checked_add(length) == Some(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_name_their_version() {
        let t = Duration::from_secs(1);
        let c = PccsClient::new("https://pccs:8081", t).unwrap();
        assert_eq!(c.base(), "https://pccs:8081/sgx/certification/v4/");
        let c = PccsClient::new("https://pccs:8081/sgx/certification/v3/", t).unwrap();
        assert_eq!(c.base(), "https://pccs:8081/sgx/certification/v3/");
        assert_eq!(c.version(), ApiVersion::V3);
        let c = PccsClient::new("http://127.0.0.1:1/sgx/certification/v4", t).unwrap();
        assert_eq!(c.base(), "http://127.0.0.1:1/sgx/certification/v4/");
        assert!(PccsClient::new(INTEL_PCS_URL, t).unwrap().intel_pcs);
        assert!(matches!(
            PccsClient::new("ftp://x", t),
            Err(FetchError::BadUrl(_))
        ));
    }

    #[test]
    fn crl_bodies_in_every_encoding() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x07];
        assert_eq!(crl_der(&der), Some(der.clone()));
        assert_eq!(crl_der(hex::encode(&der).as_bytes()), Some(der.clone()));
        assert_eq!(
            crl_der(format!("{}\n", hex::encode(&der)).as_bytes()),
            Some(der.clone())
        );
        let pem = "-----BEGIN X509 CRL-----\nMAMCAQc=\n-----END X509 CRL-----\n";
        assert_eq!(crl_der(pem.as_bytes()), Some(der));
        assert_eq!(crl_der(b"not a crl"), None);
        assert_eq!(crl_der(b"0102"), None);
        assert_eq!(crl_der(&[0x30, 0x05, 0x01]), None, "a cut DER body");
        let long = [&[0x30, 0x81, 0x80][..], &[0u8; 0x80]].concat();
        assert_eq!(crl_der(&long), Some(long.clone()));
        assert_eq!(crl_der(b""), None);
    }
}

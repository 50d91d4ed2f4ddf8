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
/// The longest pause of [`ClientOptions::delay_before`] without a fixed delay: 1 s doubled five
/// times. Intel's library doubles from 1 s and allows at most six retries in that mode, so 32 s is
/// the longest pause it ever makes.
pub const MAX_DOUBLING_DELAY: Duration = Duration::from_secs(32);

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
    options: ClientOptions,
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
            options: ClientOptions::default(),
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

    /// One GET, whatever its status: the status, the headers (lower-case names) and the body.
    pub fn fetch(&self, url: &str) -> Result<RawReply, FetchError> {
        // Failures that repeating cannot mend (TLS, sizes, the URL) are bad replies; the rest
        // (refusals, resets, timeouts) are transport failures, worth a retry.
        let transport = |e: ureq::Error| match e {
            ureq::Error::Tls(_)
            | ureq::Error::Rustls(_)
            | ureq::Error::BodyExceedsLimit(_)
            | ureq::Error::LargeResponseHeader(..)
            | ureq::Error::BadUri(_) => FetchError::BadReply {
                url: url.to_owned(),
                reason: e.to_string(),
            },
            other => FetchError::Transport {
                url: url.to_owned(),
                reason: other.to_string(),
            },
        };
        let mut response = self.agent.get(url).call().map_err(transport)?;
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
            .map_err(transport)?;
        Ok(RawReply {
            status,
            headers,
            body,
        })
    }

    /// One GET that must answer 200.
    fn get(&self, url: &str) -> Result<Reply, FetchError> {
        let raw = self.fetch(url)?;
        if raw.status != 200 {
            return Err(raw.status_error(url));
        }
        Ok(Reply {
            url: url.to_owned(),
            headers: raw.headers,
            body: raw.body,
        })
    }

    /// The URL of the root CA CRL: the PCCS's `rootcacrl`, or on Intel's PCS the root
    /// certificate's CRL distribution point.
    pub fn root_ca_crl_url(&self) -> String {
        if self.intel_pcs {
            INTEL_ROOT_CA_CRL_URL.to_owned()
        } else {
            format!("{}rootcacrl", self.base)
        }
    }

    /// Fetches the collateral of a quote whose PCK certificate has `fmspc` and was issued by `ca`,
    /// each document with the client's retries.
    pub fn collateral(&self, fmspc: &[u8; 6], ca: CaType) -> Result<FetchedCollateral, FetchError> {
        Ok(FetchedCollateral {
            pck_crl: self.pck_crl(ca)?,
            tcb_info: self.tcb_info(fmspc)?,
            qe_identity: self.qe_identity()?,
            root_ca_crl: self.root_ca_crl()?,
        })
    }
}

/// An answer of any status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawReply {
    /// HTTP status.
    pub status: u16,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl RawReply {
    /// The [`FetchError::Status`] of this answer to `url`.
    pub fn status_error(&self, url: &str) -> FetchError {
        let message = std::str::from_utf8(&self.body)
            .map(|t| t.trim().chars().take(200).collect())
            .unwrap_or_default();
        FetchError::Status {
            url: url.to_owned(),
            status: self.status,
            message,
        }
    }
}

// ---- single documents (quote provider library) ----

/// What `GET pckcert` asks for: the platform's identity and its raw TCB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PckCertRequest {
    /// The QE id (16 bytes from Intel's quoting enclave).
    pub qe_id: Vec<u8>,
    /// The platform's raw CPUSVN.
    pub cpu_svn: [u8; 16],
    /// The platform's PCESVN (sent little-endian).
    pub pce_svn: u16,
    /// The PCE id (sent little-endian).
    pub pce_id: u16,
    /// The encrypted PPID (384 bytes for RSA-3072); left out of the request when absent.
    pub encrypted_ppid: Option<Vec<u8>>,
}

/// The answer of `GET pckcert`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedPckCert {
    /// The leaf certificate, PEM, as served.
    pub cert_pem: String,
    /// The PCK CA then the root, PEM (decoded from `SGX-PCK-Certificate-Issuer-Chain`).
    pub issuer_chain: String,
    /// `SGX-TCBm`: the TCB the certificate was issued for, CPUSVN (16 bytes) then PCESVN
    /// (little-endian).
    pub tcbm: [u8; 18],
    /// `SGX-FMSPC`, when present and well-formed.
    pub fmspc: Option<[u8; 6]>,
    /// `SGX-PCK-Certificate-CA-Type`, when present and known.
    pub ca: Option<CaType>,
}

/// How a client retries and checks TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// Further attempts after a transport failure or a `5xx` answer (0: none).
    pub retries: u32,
    /// The pause before each retry: fixed, or `None` for 1 s doubling at each retry up to
    /// [`MAX_DOUBLING_DELAY`].
    pub retry_delay: Option<Duration>,
    /// Accept any server certificate over HTTPS. Off unless asked for: only for a PCCS with a
    /// self-signed certificate (Intel's `use_secure_cert: false`).
    pub accept_invalid_certs: bool,
}

impl ClientOptions {
    /// The pause before retry number `retry` (1-based): the fixed delay, or 1 s, 2 s, 4 s, …
    /// doubling up to [`MAX_DOUBLING_DELAY`] (32 s from the sixth retry on).
    pub fn delay_before(&self, retry: u32) -> Duration {
        match self.retry_delay {
            Some(fixed) => fixed,
            None => Duration::from_secs(1u64 << retry.saturating_sub(1).min(5)),
        }
    }
}

/// Each document alone, as a quote provider library fetches them, with the retries of
/// [`ClientOptions`].
impl PccsClient {
    /// As [`PccsClient::new`], with retries and TLS settings.
    pub fn with_options(
        url: &str,
        timeout: Duration,
        options: ClientOptions,
    ) -> Result<Self, FetchError> {
        let mut client = Self::new(url, timeout)?;
        let tls = ureq::tls::TlsConfig::builder()
            .disable_verification(options.accept_invalid_certs)
            .build();
        client.agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .tls_config(tls)
            .build()
            .into();
        client.options = options;
        Ok(client)
    }

    /// The retry and TLS settings.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Whether the base URL is Intel's PCS.
    pub fn is_intel_pcs(&self) -> bool {
        self.intel_pcs
    }

    /// One GET that must answer 200, retried after transport failures and `5xx` answers.
    fn get_retrying(&self, url: &str) -> Result<Reply, FetchError> {
        let mut retry = 0;
        loop {
            match self.get(url) {
                Err(e) if retry < self.options.retries && retryable(&e) => {
                    retry += 1;
                    std::thread::sleep(self.options.delay_before(retry));
                }
                other => return other,
            }
        }
    }

    /// `GET pckcrl?ca=…&encoding=der`: the CRL of a PCK CA, DER, and its chain.
    pub fn pck_crl(&self, ca: CaType) -> Result<Crl, FetchError> {
        let reply = self.get_retrying(&format!(
            "{}pckcrl?ca={}&encoding=der",
            self.base,
            ca.as_str()
        ))?;
        Ok(Crl {
            der: reply.crl()?,
            issuer_chain: reply.chain(&[HEADER_PCK_CRL_CHAIN])?,
        })
    }

    /// `GET tcb?fmspc=…`: the TCB info of an FMSPC.
    pub fn tcb_info(&self, fmspc: &[u8; 6]) -> Result<Signed, FetchError> {
        self.get_retrying(&format!(
            "{}tcb?fmspc={}",
            self.base,
            hex::encode_upper(fmspc)
        ))?
        .signed(&[HEADER_TCB_INFO_CHAIN_V4, HEADER_TCB_INFO_CHAIN_V3])
    }

    /// `GET qe/identity`.
    pub fn qe_identity(&self) -> Result<Signed, FetchError> {
        self.get_retrying(&format!("{}qe/identity", self.base))?
            .signed(&[HEADER_IDENTITY_CHAIN])
    }

    /// `GET qve/identity`.
    pub fn qve_identity(&self) -> Result<Signed, FetchError> {
        self.get_retrying(&format!("{}qve/identity", self.base))?
            .signed(&[HEADER_IDENTITY_CHAIN])
    }

    /// The root CA CRL, DER: `rootcacrl` on a PCCS, the root certificate's CRL distribution point
    /// on Intel's PCS.
    pub fn root_ca_crl(&self) -> Result<Vec<u8>, FetchError> {
        self.get_retrying(&self.root_ca_crl_url())?.crl()
    }

    /// `GET pckcert?qeid=…&encrypted_ppid=…&cpusvn=…&pcesvn=…&pceid=…` (upper-case hex; PCESVN
    /// and PCE id little-endian, as the PCS API defines them). `SGX-TCBm` must be 36 hex digits.
    pub fn pck_cert(&self, request: &PckCertRequest) -> Result<FetchedPckCert, FetchError> {
        let mut url = format!(
            "{}pckcert?qeid={}",
            self.base,
            hex::encode_upper(&request.qe_id)
        );
        if let Some(ppid) = &request.encrypted_ppid {
            url.push_str("&encrypted_ppid=");
            url.push_str(&hex::encode_upper(ppid));
        }
        url.push_str(&format!(
            "&cpusvn={}&pcesvn={}&pceid={}",
            hex::encode_upper(request.cpu_svn),
            hex::encode_upper(request.pce_svn.to_le_bytes()),
            hex::encode_upper(request.pce_id.to_le_bytes()),
        ));
        let reply = self.get_retrying(&url)?;
        let cert_pem = std::str::from_utf8(&reply.body)
            .map_err(|_| reply.bad("the certificate is not text"))?
            .to_owned();
        sgx_types::pck::parse_pem_chain(cert_pem.as_bytes())
            .map_err(|e| reply.bad(format!("certificate: {e}")))?;
        let issuer_chain = reply.chain(&[crate::api::HEADER_PCK_CHAIN])?;
        let header = |name: &str| {
            reply
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
        };
        let tcbm_name = crate::api::HEADER_TCBM;
        let mut tcbm = [0u8; 18];
        hex::decode_to_slice(
            header(tcbm_name).ok_or_else(|| reply.bad(format!("no {tcbm_name} header")))?,
            &mut tcbm,
        )
        .map_err(|_| reply.bad(format!("{tcbm_name} is not 36 hex digits")))?;
        let fmspc = header(crate::api::HEADER_FMSPC).and_then(|text| {
            let mut fmspc = [0u8; 6];
            hex::decode_to_slice(text, &mut fmspc).ok()?;
            Some(fmspc)
        });
        let ca = header(crate::api::HEADER_PCK_CA_TYPE).and_then(CaType::parse);
        Ok(FetchedPckCert {
            cert_pem,
            issuer_chain,
            tcbm,
            fmspc,
            ca,
        })
    }
}

/// Whether a failed GET may succeed when repeated.
fn retryable(error: &FetchError) -> bool {
    match error {
        FetchError::Transport { .. } => true,
        FetchError::Status { status, .. } => *status >= 500,
        FetchError::BadUrl(_) | FetchError::BadReply { .. } => false,
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

    /// A server that answers every connection with `status` and an empty body, and counts them.
    fn counting_server(
        status: &'static str,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        counting_server_raw(format!(
            "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ))
    }

    /// A server that answers every connection with `response` and counts them.
    fn counting_server_raw(
        response: String,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/sgx/certification/v4/",
            listener.local_addr().unwrap()
        );
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = std::sync::Arc::clone(&count);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(response.as_bytes());
            }
        });
        (url, count)
    }

    #[test]
    fn retries_after_5xx_but_not_after_404() {
        let options = ClientOptions {
            retries: 2,
            retry_delay: Some(Duration::ZERO),
            accept_invalid_certs: false,
        };
        let (url, count) = counting_server("503 Service Unavailable");
        let client =
            PccsClient::with_options(&url, Duration::from_secs(10), options.clone()).unwrap();
        let error = client.qve_identity().unwrap_err();
        assert!(
            matches!(error, FetchError::Status { status: 503, .. }),
            "{error}"
        );
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);

        let (url, count) = counting_server("404 Not Found");
        let client =
            PccsClient::with_options(&url, Duration::from_secs(10), options.clone()).unwrap();
        let error = client.qe_identity().unwrap_err();
        assert!(
            matches!(error, FetchError::Status { status: 404, .. }),
            "{error}"
        );
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);

        // The collateral as a whole is fetched with the same retries.
        let (url, count) = counting_server("503 Service Unavailable");
        let client =
            PccsClient::with_options(&url, Duration::from_secs(10), options.clone()).unwrap();
        assert!(client.collateral(&[0; 6], CaType::Processor).is_err());
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);

        // A body over the limit is not worth repeating.
        let size = MAX_BODY as usize + 1;
        let (url, count) = counting_server_raw(format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n{}",
            "x".repeat(size)
        ));
        let client = PccsClient::with_options(&url, Duration::from_secs(10), options).unwrap();
        let error = client.qe_identity().unwrap_err();
        assert!(matches!(error, FetchError::BadReply { .. }), "{error}");
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn default_options_verify_tls_and_retry_delay_doubles_from_one_second() {
        let options = ClientOptions::default();
        assert_eq!(options.retries, 0);
        assert!(!options.accept_invalid_certs);
        assert_eq!(options.delay_before(1), Duration::from_secs(1));
        assert_eq!(options.delay_before(3), Duration::from_secs(4));
        // Doubling stops at 32 s, the longest pause Intel's library makes (six doubling retries).
        let pauses: Vec<u64> = (1..=8).map(|n| options.delay_before(n).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 32, 32]);
        assert_eq!(options.delay_before(u32::MAX), MAX_DOUBLING_DELAY);
        assert_eq!(options.delay_before(0), Duration::from_secs(1));
        let fixed = ClientOptions {
            retry_delay: Some(Duration::from_secs(10)),
            ..ClientOptions::default()
        };
        assert_eq!(fixed.delay_before(5), Duration::from_secs(10));
        let client = PccsClient::new("http://127.0.0.1:1/", Duration::from_secs(1)).unwrap();
        assert_eq!(client.options(), &ClientOptions::default());
    }
}

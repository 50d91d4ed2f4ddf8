//! Fetching a quote's collateral from a PCCS (Intel's, `confcom pccs`) or Intel's PCS, as Intel's
//! quote provider library does: the PCK CRL of the quote's CA (`encoding=der`), the TCB info of its
//! FMSPC, the QE identity, and the root CA CRL (`rootcacrl` on a PCCS; the root certificate's CRL
//! distribution point on Intel's PCS).
//!
//! Replies are untrusted: sizes are bounded, issuer chains must decode, CRLs are accepted as DER,
//! hex (Intel's PCCS) or PEM. Header names are matched without regard to case; the TCB info chain
//! is read from `TCB-Info-Issuer-Chain` or `SGX-TCB-Info-Issuer-Chain`. A PCK certificate comes as
//! a PEM body with headers (PCS, PCCS) or as Azure's JSON body (THIM, see
//! [`PccsClient::pck_cert`]).
//!
//! TDX collateral ([`PccsClient::tdx_collateral`]) takes the TCB info and QE identity from
//! `/tdx/certification/v4/` next to the base URL, as Intel's quote provider library does.

use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

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
/// What query parameters keep unencoded: RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// Azure THIM's JSON member with the PCK certificate (PEM).
pub const JSON_PCK_CERT: &str = "pckCert";
/// Azure THIM's JSON member with the issuer chain (percent-encoded PEM, as the header).
pub const JSON_PCK_CHAIN: &str = "sgx-Pck-Certificate-Issuer-Chain";
/// Azure THIM's JSON member with the TCBm (36 hex digits, as the header).
pub const JSON_TCBM: &str = "sgx-Tcbm";

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
    /// The server's TLS certificate is refused: an unknown issuer, another name, expired.
    #[error("{url}: {reason}")]
    UntrustedCertificate {
        /// The request.
        url: String,
        /// Why.
        reason: String,
    },
    /// The answer is not what the API promises.
    #[error("{url}: {reason}")]
    BadReply {
        /// The request.
        url: String,
        /// Why.
        reason: String,
    },
    /// A CA file to trust cannot be used.
    #[error(transparent)]
    Trust(#[from] crate::tls::TrustError),
    /// The base URL cannot serve the request (TDX collateral from an API v3 URL).
    #[error("{url}: {reason}")]
    Unsupported {
        /// The base URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Which TCB evaluation data a service answers with: the `update=` parameter of `tcb`,
/// `qe/identity` and `qve/identity` (Intel's `tcb_update_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcbUpdate {
    /// `update=standard`: what the service answers without the parameter.
    Standard,
    /// `update=early`: TCB recovery data before its standard date.
    Early,
}

impl TcbUpdate {
    /// The parameter's value: `standard` or `early`.
    pub fn as_str(self) -> &'static str {
        match self {
            TcbUpdate::Standard => "standard",
            TcbUpdate::Early => "early",
        }
    }

    /// `standard` or `early`, in any case.
    pub fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("standard") {
            Some(TcbUpdate::Standard)
        } else if text.eq_ignore_ascii_case("early") {
            Some(TcbUpdate::Early)
        } else {
            None
        }
    }
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
    update: Option<TcbUpdate>,
}

impl PccsClient {
    /// A client for `url`: a base ending in `/sgx/certification/v3/` or `/v4/`, or a server root
    /// (`https://pccs:8081`, which means its API v4). `timeout` bounds each request.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, FetchError> {
        Self::with_options(url, timeout, ClientOptions::default())
    }

    /// This client, asking `tcb`, `qe/identity` and `qve/identity` for `update` (`None`: the
    /// parameter is not sent, and the service answers with its standard data).
    pub fn with_tcb_update(mut self, update: Option<TcbUpdate>) -> Self {
        self.update = update;
        self
    }

    /// The `update=` value sent, if any.
    pub fn tcb_update(&self) -> Option<TcbUpdate> {
        self.update
    }

    /// The base URL of TDX collateral: the base with `/sgx/certification/v4/` replaced by
    /// `/tdx/certification/v4/`; `None` for an API v3 base (TDX collateral exists from v4 on).
    pub fn tdx_base(&self) -> Option<String> {
        const SGX: &str = "/sgx/certification/v4/";
        let root = self.base.strip_suffix(SGX)?;
        Some(format!("{root}/tdx/certification/v4/"))
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
        self.fetch_with_headers(url, &[])
    }

    /// [`PccsClient::fetch`] with more request headers, sent as given.
    pub fn fetch_with_headers(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<RawReply, FetchError> {
        self.exchange(url, headers, None)
    }

    /// One POST of a JSON `body` (`Content-Type: application/json`) with more request headers,
    /// whatever its status: the status, the headers (lower-case names) and the body.
    pub fn post_json(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<RawReply, FetchError> {
        self.exchange(url, headers, Some(body))
    }

    /// A GET, or a POST of the JSON `body` when one is given.
    fn exchange(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> Result<RawReply, FetchError> {
        // Failures that repeating cannot mend are a refused server certificate (ureq hands the
        // handshake's rustls error over as I/O) or bad replies (other TLS failures, sizes, the
        // URL); the rest (refusals, resets, timeouts) are transport failures, worth a retry.
        let transport = |e: ureq::Error| match e {
            ureq::Error::Io(ref io) if refused_certificate(io) => {
                FetchError::UntrustedCertificate {
                    url: url.to_owned(),
                    reason: io.to_string(),
                }
            }
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
        let mut response = match body {
            None => {
                let mut request = self.agent.get(url);
                for (name, value) in headers {
                    request = request.header_raw(name, value.as_bytes());
                }
                request.call()
            }
            Some(body) => {
                let mut request = self
                    .agent
                    .post(url)
                    .header("content-type", "application/json");
                for (name, value) in headers {
                    request = request.header_raw(name, value.as_bytes());
                }
                request.send(body)
            }
        }
        .map_err(transport)?;
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
    fn get(&self, url: &str, headers: &[(String, String)]) -> Result<Reply, FetchError> {
        let raw = self.fetch_with_headers(url, headers)?;
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

    /// Fetches the collateral of a TDX quote: the PCK CRL and root CA CRL as for SGX, the TCB info
    /// and QE identity from [`PccsClient::tdx_base`]. An API v3 base is
    /// [`FetchError::Unsupported`], without a request.
    pub fn tdx_collateral(
        &self,
        fmspc: &[u8; 6],
        ca: CaType,
    ) -> Result<FetchedCollateral, FetchError> {
        let tdx = self.tdx_base().ok_or_else(|| FetchError::Unsupported {
            url: self.base.clone(),
            reason: "TDX collateral needs API v4 (a /sgx/certification/v4/ URL)".into(),
        })?;
        Ok(FetchedCollateral {
            pck_crl: self.pck_crl(ca)?,
            tcb_info: self.tcb_info_at(&tdx, fmspc)?,
            qe_identity: self.qe_identity_at(&tdx)?,
            root_ca_crl: self.root_ca_crl()?,
        })
    }
}

/// Host name lookups of every client in the process, on one long-lived thread. ureq's own resolver
/// starts a thread for each lookup that has a deadline (every lookup, under the client's timeout),
/// which a library loaded into someone else's process should not do per request. A lookup that
/// misses its deadline fails with ureq's timeout, and the next lookup gets a fresh thread (the old
/// one ends once its lookup returns).
#[derive(Debug)]
struct LookupWorker;

/// One lookup for the worker: `host:port`, and where the addresses go.
struct Lookup {
    host_port: String,
    reply: std::sync::mpsc::SyncSender<std::io::Result<Vec<std::net::SocketAddr>>>,
}

/// The worker's queue and its generation (which a timed-out lookup retires). A child process
/// (`fork`) inherits the queue of a thread it does not have: it starts its own worker.
static LOOKUP_WORKER: std::sync::Mutex<ProcessLocal<(u64, std::sync::mpsc::Sender<Lookup>)>> =
    std::sync::Mutex::new(ProcessLocal::new());

/// State kept for the process (clients, their keep-alive connections, worker threads) that a child
/// process made by `fork` must not use: there the threads do not exist and the connections are
/// shared with the parent. The value records the id of the process that made it; seen from
/// another process it is leaked (neither used nor dropped, so that nothing is sent on the parent's
/// connections, for example a TLS `close_notify`) and the child starts without one.
#[derive(Debug)]
pub struct ProcessLocal<T> {
    pid: u32,
    value: Option<T>,
}

impl<T> Default for ProcessLocal<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> ProcessLocal<T> {
    /// No value yet.
    pub const fn new() -> Self {
        Self {
            pid: 0,
            value: None,
        }
    }

    /// This process's value, if it made one.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.get_mut_in(std::process::id())
    }

    /// This process's value, made by `make` when there is none.
    pub fn get_or_insert_with(&mut self, make: impl FnOnce() -> T) -> &mut T {
        self.get_or_insert_with_in(std::process::id(), make)
    }

    /// Takes this process's value, if it made one.
    pub fn take(&mut self) -> Option<T> {
        self.get_mut_in(std::process::id());
        self.value.take()
    }

    /// The value as the process `pid` sees it: one made by another process is leaked first.
    fn get_mut_in(&mut self, pid: u32) -> Option<&mut T> {
        if self.pid != pid {
            if let Some(inherited) = self.value.take() {
                std::mem::forget(inherited);
            }
            self.pid = pid;
        }
        self.value.as_mut()
    }

    fn get_or_insert_with_in(&mut self, pid: u32, make: impl FnOnce() -> T) -> &mut T {
        self.get_mut_in(pid);
        self.value.get_or_insert_with(make)
    }
}

impl LookupWorker {
    /// The running worker's queue, started when there is none.
    fn queue() -> std::io::Result<(u64, std::sync::mpsc::Sender<Lookup>)> {
        let mut worker = LOOKUP_WORKER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((generation, queue)) = worker.get_mut() {
            return Ok((*generation, queue.clone()));
        }
        let (queue, lookups) = std::sync::mpsc::channel::<Lookup>();
        std::thread::Builder::new()
            .name("pccs-lookup".into())
            .spawn(move || {
                for lookup in lookups {
                    let addrs = std::net::ToSocketAddrs::to_socket_addrs(&lookup.host_port)
                        .map(Iterator::collect);
                    // The caller may have given up waiting.
                    let _ = lookup.reply.send(addrs);
                }
            })?;
        let generation = WORKER_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        worker.get_or_insert_with(|| (generation, queue.clone()));
        Ok((generation, queue))
    }

    /// Lets the next lookup start a new worker, if `generation` is still the running one.
    fn retire(generation: u64) {
        let mut worker = LOOKUP_WORKER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if worker.get_mut().is_some_and(|(g, _)| *g == generation) {
            worker.take();
        }
    }
}

static WORKER_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl ureq::unversioned::resolver::Resolver for LookupWorker {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().ok_or(ureq::Error::HostNotFound)?;
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let (generation, queue) = Self::queue()?;
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let lookup = Lookup {
            host_port: format!("{host}:{port}"),
            reply,
        };
        if queue.send(lookup).is_err() {
            // The worker is gone (it cannot fail, but a thread may be killed): start another.
            Self::retire(generation);
            return Err(ureq::Error::HostNotFound);
        }
        let addrs = if timeout.after.is_not_happening() {
            answer.recv().map_err(|_| ureq::Error::HostNotFound)?
        } else {
            match answer.recv_timeout(*timeout.after) {
                Ok(addrs) => addrs,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    Self::retire(generation);
                    return Err(ureq::Error::Timeout(timeout.reason));
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    Self::retire(generation);
                    return Err(ureq::Error::HostNotFound);
                }
            }
        }?;
        let mut out = self.empty();
        for addr in config.ip_family().keep_wanted(addrs.into_iter()) {
            if out.try_push(addr).is_err() {
                break;
            }
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
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

/// What `GET pckcert` asks for: the platform's identity and its raw TCB, and what else the
/// request carries (Intel's `custom_request_options.get_cert`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
    /// More query parameters (name, value), appended after the others, percent-encoded (Azure's
    /// THIM wants `api-version`).
    pub extra_params: Vec<(String, String)>,
    /// More request headers (name, value), sent as given (Azure's THIM wants `metadata: true`).
    pub extra_headers: Vec<(String, String)>,
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
    /// `SGX-FMSPC` when present and well-formed, else the certificate's own, when it has the SGX
    /// extension.
    pub fmspc: Option<[u8; 6]>,
    /// `SGX-PCK-Certificate-CA-Type` when present and known, else read from the certificate, when
    /// it has the SGX extension.
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
    /// PEM files whose certificates are trusted as roots besides Mozilla's and the system's (a
    /// private PCCS's CA).
    pub ca_files: Vec<std::path::PathBuf>,
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
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(FetchError::BadUrl(url.to_owned()));
        }
        let (base, version) = base_url(url);
        // Mozilla's roots, the system's store and the operator's CA files (see [`crate::tls`]);
        // read only for HTTPS, so a plain-HTTP client never depends on them.
        let mut tls =
            ureq::tls::TlsConfig::builder().disable_verification(options.accept_invalid_certs);
        if url.starts_with("https://") && !options.accept_invalid_certs {
            tls = tls.root_certs(crate::tls::roots(&options.ca_files)?);
        }
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .tls_config(tls.build())
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::new(),
            LookupWorker,
        );
        Ok(Self {
            intel_pcs: base.contains("trustedservices.intel.com"),
            base,
            version,
            agent,
            options,
            update: None,
        })
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
    fn get_retrying(&self, url: &str, headers: &[(String, String)]) -> Result<Reply, FetchError> {
        let mut retry = 0;
        loop {
            match self.get(url, headers) {
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
        let reply = self.get_retrying(
            &format!("{}pckcrl?ca={}&encoding=der", self.base, ca.as_str()),
            &[],
        )?;
        Ok(Crl {
            der: reply.crl()?,
            issuer_chain: reply.chain(&[HEADER_PCK_CRL_CHAIN])?,
        })
    }

    /// `GET tcb?fmspc=…[&update=…]`: the TCB info of an FMSPC.
    pub fn tcb_info(&self, fmspc: &[u8; 6]) -> Result<Signed, FetchError> {
        self.tcb_info_at(&self.base, fmspc)
    }

    fn tcb_info_at(&self, base: &str, fmspc: &[u8; 6]) -> Result<Signed, FetchError> {
        let url = self.with_update(format!("{base}tcb?fmspc={}", hex::encode_upper(fmspc)));
        self.get_retrying(&url, &[])?
            .signed(&[HEADER_TCB_INFO_CHAIN_V4, HEADER_TCB_INFO_CHAIN_V3])
    }

    /// `GET qe/identity[?update=…]`.
    pub fn qe_identity(&self) -> Result<Signed, FetchError> {
        self.qe_identity_at(&self.base)
    }

    fn qe_identity_at(&self, base: &str) -> Result<Signed, FetchError> {
        self.get_retrying(&self.with_update(format!("{base}qe/identity")), &[])?
            .signed(&[HEADER_IDENTITY_CHAIN])
    }

    /// `GET qve/identity[?update=…]`.
    pub fn qve_identity(&self) -> Result<Signed, FetchError> {
        self.get_retrying(&self.with_update(format!("{}qve/identity", self.base)), &[])?
            .signed(&[HEADER_IDENTITY_CHAIN])
    }

    /// `url` with `update=…` as its last query parameter when an update type is set.
    fn with_update(&self, url: String) -> String {
        match self.update {
            Some(update) => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}update={}", update.as_str())
            }
            None => url,
        }
    }

    /// The root CA CRL, DER: `rootcacrl` on a PCCS, the root certificate's CRL distribution point
    /// on Intel's PCS.
    pub fn root_ca_crl(&self) -> Result<Vec<u8>, FetchError> {
        self.get_retrying(&self.root_ca_crl_url(), &[])?.crl()
    }

    /// `GET pckcert?qeid=…&encrypted_ppid=…&cpusvn=…&pcesvn=…&pceid=…` (upper-case hex; PCESVN
    /// and PCE id little-endian, as the PCS API defines them), then the request's extra parameters
    /// (percent-encoded), with its extra headers.
    ///
    /// The answer is a PEM body with the `SGX-PCK-Certificate-Issuer-Chain` and `SGX-TCBm`
    /// headers (PCS, PCCS), or, when the body is a JSON object (Azure's THIM), the members
    /// `pckCert` (PEM), `sgx-Pck-Certificate-Issuer-Chain` (percent-encoded PEM) and `sgx-Tcbm`.
    /// As in Intel's library, a header wins over the JSON member. Either way the certificate and
    /// chain must decode and the TCBm must be 36 hex digits.
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
        push_query_params(&mut url, &request.extra_params);
        let reply = self.get_retrying(&url, &request.extra_headers)?;
        reply.pck_cert()
    }
}

/// The base requests go to and its API version, for a URL as [`PccsClient::new`] takes it: a base
/// ending in `/sgx/certification/v3/` or `/v4/`, or a server root (API v4).
pub fn base_url(url: &str) -> (String, ApiVersion) {
    let trimmed = url.trim_end_matches('/');
    if trimmed.ends_with("/sgx/certification/v3") {
        (format!("{trimmed}/"), ApiVersion::V3)
    } else if trimmed.ends_with("/sgx/certification/v4") {
        (format!("{trimmed}/"), ApiVersion::V4)
    } else {
        (
            format!("{trimmed}{}", ApiVersion::V4.prefix()),
            ApiVersion::V4,
        )
    }
}

/// Appends `&name=value` for each of `params` to a URL that has a query, both percent-encoded
/// (only RFC 3986's unreserved characters stay as they are).
pub fn push_query_params(url: &mut String, params: &[(String, String)]) {
    for (name, value) in params {
        url.push_str(&format!(
            "&{}={}",
            utf8_percent_encode(name, QUERY_VALUE),
            utf8_percent_encode(value, QUERY_VALUE)
        ));
    }
}

/// Reads a `pckcert` answer of status 200 from `url` (its headers and body, as
/// [`PccsClient::fetch`] returns them): a PEM body with headers, or Azure's JSON body, checked as
/// [`PccsClient::pck_cert`] checks it.
pub fn pck_cert_reply(
    url: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> Result<FetchedPckCert, FetchError> {
    Reply {
        url: url.to_owned(),
        headers,
        body,
    }
    .pck_cert()
}

/// Whether `url` is Azure's THIM (its global cache, or a host's instance-metadata endpoint), whose
/// `pckcert` route wants [`THIM_PCK_PARAMS`] and [`THIM_PCK_HEADERS`].
pub fn is_azure_thim(url: &str) -> bool {
    url.contains(".acccache.azure.net/") || url.contains("/metadata/THIM/")
}

/// The query parameters THIM's `pckcert` takes (Intel's `sgx_default_qcnl_azure.conf`).
pub const THIM_PCK_PARAMS: [(&str, &str); 1] = [("api-version", "2021-07-22-preview")];
/// The request headers THIM's `pckcert` takes on an Azure host (Intel's
/// `sgx_default_qcnl_azure.conf`).
pub const THIM_PCK_HEADERS: [(&str, &str); 1] = [("metadata", "true")];

/// Whether an I/O failure is rustls refusing the server's certificate: `InvalidData` wrapping
/// rustls's `Error::InvalidCertificate` (unknown issuer, another name, expired, …).
fn refused_certificate(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::InvalidData
        && error.get_ref().is_some_and(|inner| {
            matches!(
                inner.downcast_ref::<rustls::Error>(),
                Some(rustls::Error::InvalidCertificate(_))
            )
        })
}

/// Whether a failed GET may succeed when repeated.
fn retryable(error: &FetchError) -> bool {
    match error {
        FetchError::Transport { .. } => true,
        FetchError::Status { status, .. } => *status >= 500,
        FetchError::BadUrl(_)
        | FetchError::UntrustedCertificate { .. }
        | FetchError::BadReply { .. }
        | FetchError::Trust(_)
        | FetchError::Unsupported { .. } => false,
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

    /// The value of header `name` (any case), trimmed.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    /// The first of `names` present, percent-decoded.
    fn chain(&self, names: &[&str]) -> Result<String, FetchError> {
        let value = names
            .iter()
            .find_map(|name| self.header(name))
            .ok_or_else(|| self.bad(format!("no {} header", names.join(" or "))))?;
        decode_chain(value).map_err(|e| self.bad(e))
    }

    /// The answer of `pckcert`: a PEM body with headers, or Azure's JSON body.
    fn pck_cert(&self) -> Result<FetchedPckCert, FetchError> {
        use crate::api::{HEADER_FMSPC, HEADER_PCK_CA_TYPE, HEADER_PCK_CHAIN, HEADER_TCBM};
        let json = if self.body.trim_ascii_start().starts_with(b"{") {
            match serde_json::from_slice::<serde_json::Value>(&self.body) {
                Ok(serde_json::Value::Object(map)) => Some(map),
                Ok(_) => return Err(self.bad("the JSON body is not an object")),
                Err(e) => return Err(self.bad(format!("the body is not JSON: {e}"))),
            }
        } else {
            None
        };
        // A header, else (JSON body) the member `key`, which must then be a string.
        let field = |header: &str, key: &str| -> Result<Option<String>, FetchError> {
            if let Some(value) = self.header(header) {
                return Ok(Some(value.to_owned()));
            }
            match json.as_ref().and_then(|map| map.get(key)) {
                None => Ok(None),
                Some(serde_json::Value::String(text)) => Ok(Some(text.trim().to_owned())),
                Some(_) => Err(self.bad(format!("the JSON member {key} is not a string"))),
            }
        };
        let cert_pem = match &json {
            Some(map) => match map.get(JSON_PCK_CERT) {
                Some(serde_json::Value::String(pem)) => pem.clone(),
                Some(_) => return Err(self.bad(format!("{JSON_PCK_CERT} is not a string"))),
                None => return Err(self.bad(format!("the JSON body has no {JSON_PCK_CERT}"))),
            },
            None => std::str::from_utf8(&self.body)
                .map_err(|_| self.bad("the certificate is not text"))?
                .to_owned(),
        };
        sgx_types::pck::parse_pem_chain(cert_pem.as_bytes())
            .map_err(|e| self.bad(format!("certificate: {e}")))?;
        let chain = field(HEADER_PCK_CHAIN, JSON_PCK_CHAIN)?.ok_or_else(|| {
            self.bad(format!(
                "no {HEADER_PCK_CHAIN} header{}",
                if json.is_some() {
                    format!(" or {JSON_PCK_CHAIN} member")
                } else {
                    String::new()
                }
            ))
        })?;
        let issuer_chain = decode_chain(&chain).map_err(|e| self.bad(e))?;
        let tcbm_text = field(HEADER_TCBM, JSON_TCBM)?
            .ok_or_else(|| self.bad(format!("no {HEADER_TCBM} header or {JSON_TCBM} member")))?;
        let mut tcbm = [0u8; 18];
        hex::decode_to_slice(&tcbm_text, &mut tcbm)
            .map_err(|_| self.bad(format!("{HEADER_TCBM} is not 36 hex digits")))?;
        // FMSPC and CA type: the headers (PCS, PCCS), else the certificate's SGX extension.
        let derived =
            crate::source::PckCert::from_chain_pem(format!("{cert_pem}{issuer_chain}").as_bytes())
                .ok();
        let fmspc = self
            .header(HEADER_FMSPC)
            .and_then(|text| {
                let mut fmspc = [0u8; 6];
                hex::decode_to_slice(text, &mut fmspc).ok()?;
                Some(fmspc)
            })
            .or(derived.as_ref().map(|pck| pck.fmspc));
        let ca = self
            .header(HEADER_PCK_CA_TYPE)
            .and_then(CaType::parse)
            .or(derived.as_ref().map(|pck| pck.ca));
        Ok(FetchedPckCert {
            cert_pem,
            issuer_chain,
            tcbm,
            fmspc,
            ca,
        })
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

/// A percent-encoded PEM chain (an issuer-chain header), decoded and checked.
fn decode_chain(value: &str) -> Result<String, String> {
    let pem = percent_decode_str(value)
        .decode_utf8()
        .map_err(|e| format!("issuer chain: {e}"))?
        .into_owned();
    sgx_types::pck::parse_pem_chain(pem.as_bytes()).map_err(|e| format!("issuer chain: {e}"))?;
    Ok(pem)
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
    #[test]
    fn process_local_values_are_leaked_unused_in_another_process() {
        use super::ProcessLocal;
        use std::rc::Rc;
        let parent = 100;
        let child = 101;
        let held = Rc::new(());
        let mut local = ProcessLocal::new();
        assert!(local.get_mut_in(parent).is_none());
        let _ = local.get_or_insert_with_in(parent, || Rc::clone(&held));
        assert!(local.get_mut_in(parent).is_some());
        assert_eq!(Rc::strong_count(&held), 2);

        // In the child the parent's value is gone but not dropped; a fresh one is made.
        assert!(local.get_mut_in(child).is_none());
        assert_eq!(
            Rc::strong_count(&held),
            2,
            "the inherited value was dropped"
        );
        let fresh = Rc::new(());
        let made = local.get_or_insert_with_in(child, || Rc::clone(&fresh));
        assert!(Rc::ptr_eq(made, &fresh));
        // The child's own value is kept and dropped as usual.
        assert!(local.get_mut_in(child).is_some());
        assert_eq!(Rc::strong_count(&fresh), 2);
        drop(local);
        assert_eq!(Rc::strong_count(&fresh), 1);
        assert_eq!(Rc::strong_count(&held), 2);
    }

    #[test]
    fn process_local_values_of_this_process_are_used_and_dropped() {
        use super::ProcessLocal;
        use std::rc::Rc;
        let held = Rc::new(());
        let mut local = ProcessLocal::new();
        let _ = local.get_or_insert_with(|| Rc::clone(&held));
        let again = local.get_or_insert_with(|| Rc::new(()));
        assert!(Rc::ptr_eq(again, &held));
        let taken = local.take();
        assert!(taken.as_ref().is_some_and(|v| Rc::ptr_eq(v, &held)));
        drop(taken);
        assert!(local.get_mut().is_none());
        assert_eq!(Rc::strong_count(&held), 1);
    }

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
            ..ClientOptions::default()
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

    /// A server that answers every connection with `response` and keeps each request's head.
    fn recording_server(
        response: String,
    ) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/sgx/certification/v4/",
            listener.local_addr().unwrap()
        );
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&heads);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                let _ = stream.write_all(response.as_bytes());
            }
        });
        (url, heads)
    }

    fn http_200(headers: &[(&str, String)], body: &str) -> String {
        let mut out = String::from("HTTP/1.1 200 OK\r\nConnection: close\r\n");
        for (name, value) in headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        out
    }

    /// A simulated platform's PCK certificate and chain.
    fn sim_pck() -> (tempfile::TempDir, crate::source::PckCert) {
        let dir = tempfile::tempdir().unwrap();
        let platform = sgx_sim::SimPlatform::open_or_init(
            &dir.path().join("state"),
            &sgx_sim::InitOptions::default(),
        )
        .unwrap();
        let pck = crate::source::PckCert::from_chain_pem(platform.pck_cert_chain()).unwrap();
        (dir, pck)
    }

    fn thim_json(pck: &crate::source::PckCert) -> serde_json::Value {
        serde_json::json!({
            "pckCert": pck.cert_pem,
            "sgx-Pck-Certificate-Issuer-Chain": crate::api::encode_chain(&pck.issuer_chain),
            "sgx-Tcbm": hex::encode_upper(pck.tcbm),
            "cacheMaxAge": 86400,
        })
    }

    fn request_of(pck: &crate::source::PckCert) -> PckCertRequest {
        PckCertRequest {
            qe_id: vec![0x11; 16],
            cpu_svn: pck.tcbm[..16].try_into().unwrap(),
            pce_svn: u16::from_le_bytes([pck.tcbm[16], pck.tcbm[17]]),
            pce_id: u16::from_le_bytes(pck.pce_id),
            ..PckCertRequest::default()
        }
    }

    #[test]
    fn pck_cert_in_azures_json_form_equals_the_header_form() {
        let (_dir, pck) = sim_pck();
        let expected = FetchedPckCert {
            cert_pem: pck.cert_pem.clone(),
            issuer_chain: pck.issuer_chain.clone(),
            tcbm: pck.tcbm,
            fmspc: Some(pck.fmspc),
            ca: Some(pck.ca),
        };
        let t = Duration::from_secs(10);
        // PCS/PCCS: PEM body and headers (without FMSPC and CA type: read from the certificate).
        let (url, _) = recording_server(http_200(
            &[
                (
                    "SGX-PCK-Certificate-Issuer-Chain",
                    crate::api::encode_chain(&pck.issuer_chain),
                ),
                ("SGX-TCBm", hex::encode_upper(pck.tcbm)),
            ],
            &pck.cert_pem,
        ));
        let client = PccsClient::new(&url, t).unwrap();
        assert_eq!(client.pck_cert(&request_of(&pck)).unwrap(), expected);
        // THIM: a JSON body, after some white space; the extra parameters are percent-encoded
        // and the extra headers sent as given.
        let body = format!("\n  {}", thim_json(&pck));
        let (url, heads) = recording_server(http_200(
            &[("Content-Type", "application/json".into())],
            &body,
        ));
        let client = PccsClient::new(&url, t).unwrap();
        let request = PckCertRequest {
            extra_params: vec![
                ("api-version".into(), "2021-07-22-preview".into()),
                ("a b".into(), "c&d=é".into()),
            ],
            extra_headers: vec![("Metadata".into(), "true".into())],
            ..request_of(&pck)
        };
        assert_eq!(client.pck_cert(&request).unwrap(), expected);
        let heads = heads.lock().unwrap();
        let line = heads[0].lines().next().unwrap();
        assert!(
            line.ends_with(&format!(
                "&pceid={}&api-version=2021-07-22-preview&a%20b=c%26d%3D%C3%A9 HTTP/1.1",
                hex::encode_upper(pck.pce_id)
            )),
            "{line}"
        );
        assert!(heads[0].contains("\r\nMetadata: true\r\n"), "{}", heads[0]);
    }

    #[test]
    fn bad_json_pck_replies_are_bad_replies() {
        let (_dir, pck) = sim_pck();
        let good = thim_json(&pck);
        let with = |key: &str, value: serde_json::Value| {
            let mut doc = good.clone();
            doc[key] = value;
            doc.to_string()
        };
        let without = |key: &str| {
            let mut doc = good.clone();
            doc.as_object_mut().unwrap().remove(key);
            doc.to_string()
        };
        for (body, why) in [
            (without("pckCert"), "no pckCert"),
            (without("sgx-Tcbm"), "no sgx-Tcbm"),
            (without("sgx-Pck-Certificate-Issuer-Chain"), "no chain"),
            (with("pckCert", 5.into()), "a number for a certificate"),
            (with("pckCert", "not PEM".into()), "no certificate"),
            (with("sgx-Tcbm", "ABC".into()), "a short TCBm"),
            (with("sgx-Tcbm", "Z".repeat(36).into()), "a TCBm not hex"),
            (
                with("sgx-Tcbm", serde_json::json!([1])),
                "a TCBm not a string",
            ),
            (
                with("sgx-Pck-Certificate-Issuer-Chain", "%FF%FE".into()),
                "a chain not UTF-8",
            ),
            (
                with("sgx-Pck-Certificate-Issuer-Chain", "nothing".into()),
                "a chain without certificates",
            ),
            ("{\"pckCert\": ".into(), "cut JSON"),
            ("{}".into(), "an empty object"),
        ] {
            let (url, _) = recording_server(http_200(&[], &body));
            let client = PccsClient::new(&url, Duration::from_secs(10)).unwrap();
            match client.pck_cert(&request_of(&pck)) {
                Err(FetchError::BadReply { .. }) => {}
                other => panic!("{why}: {other:?}"),
            }
        }
        // A JSON array is not the JSON form: read as PEM, which it is not.
        let (url, _) = recording_server(http_200(&[], "[1]"));
        let client = PccsClient::new(&url, Duration::from_secs(10)).unwrap();
        assert!(matches!(
            client.pck_cert(&request_of(&pck)),
            Err(FetchError::BadReply { .. })
        ));
    }

    #[test]
    fn tcb_update_goes_on_tcb_and_identity_requests_only_when_set() {
        let (url, heads) = recording_server(
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
        );
        let t = Duration::from_secs(10);
        let lines = |client: &PccsClient| {
            heads.lock().unwrap().clear();
            assert!(client.tcb_info(&[0xAB; 6]).is_err());
            assert!(client.qe_identity().is_err());
            assert!(client.qve_identity().is_err());
            assert!(client.pck_crl(CaType::Platform).is_err());
            heads
                .lock()
                .unwrap()
                .iter()
                .map(|h| h.lines().next().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        };
        let early = PccsClient::new(&url, t)
            .unwrap()
            .with_tcb_update(TcbUpdate::parse("EARLY"));
        assert_eq!(early.tcb_update(), Some(TcbUpdate::Early));
        assert_eq!(
            lines(&early),
            [
                "GET /sgx/certification/v4/tcb?fmspc=ABABABABABAB&update=early HTTP/1.1",
                "GET /sgx/certification/v4/qe/identity?update=early HTTP/1.1",
                "GET /sgx/certification/v4/qve/identity?update=early HTTP/1.1",
                "GET /sgx/certification/v4/pckcrl?ca=platform&encoding=der HTTP/1.1",
            ]
        );
        let standard = PccsClient::new(&url, t)
            .unwrap()
            .with_tcb_update(Some(TcbUpdate::Standard));
        assert!(lines(&standard)[0].ends_with("&update=standard HTTP/1.1"));
        let unset = PccsClient::new(&url, t).unwrap();
        assert!(lines(&unset).iter().all(|l| !l.contains("update")));
        assert_eq!(TcbUpdate::parse("late"), None);
    }

    #[test]
    fn tdx_collateral_needs_api_v4() {
        let t = Duration::from_secs(10);
        let c = PccsClient::new("https://pccs:8081", t).unwrap();
        assert_eq!(
            c.tdx_base().as_deref(),
            Some("https://pccs:8081/tdx/certification/v4/")
        );
        let c = PccsClient::new(INTEL_PCS_URL, t).unwrap();
        assert_eq!(
            c.tdx_base().as_deref(),
            Some("https://api.trustedservices.intel.com/tdx/certification/v4/")
        );
        let (url, count) = counting_server("404 Not Found");
        let v3 = PccsClient::new(&url.replace("/v4/", "/v3/"), t).unwrap();
        assert_eq!(v3.tdx_base(), None);
        let error = v3.tdx_collateral(&[0; 6], CaType::Processor).unwrap_err();
        assert!(matches!(error, FetchError::Unsupported { .. }), "{error}");
        assert_eq!(
            count.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "no request"
        );
    }
}

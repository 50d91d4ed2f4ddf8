//! What each C function fetches, as Rust values: the PCK certificate, the verification collateral,
//! the QvE identity and the root CA CRL, from the cache when it has a fresh entry, else from the
//! service (then stored in the cache). The exported functions in `lib.rs` only check pointers and
//! copy these values into `malloc`ed C buffers.
//!
//! PCK certificates are asked from `local_pck_url` first when it is set (Azure's THIM), never
//! cached from there, as in Intel's library: a transport failure or an answer other than `200`
//! there fails over to the cache and then `pccs_url`, with a notice in the log. Both requests carry
//! `custom_request_options.get_cert`. TCB info and identity requests carry `tcb_update_type`.
//! TDX collateral takes its TCB info and QE identity from `/tdx/certification/v4/`.
//!
//! Cache keys name the service URL and the request (the PCK certificate key leaves out the
//! encrypted PPID, as az-dcap-client's does; collateral keys name the `update` type when one is
//! set). Lifetimes: `pck_cache_expire_hours` for PCK certificates,
//! `verify_collateral_cache_expire_hours` for the rest, 0 meaning "not cached"; an entry of
//! collateral also ends at the earliest `nextUpdate` of its TCB info, identities and CRLs. With
//! `local_cache_only`, entries are served whatever their age (still not past
//! `nextUpdate`) and a miss is the "not found" code of the document. An entry that lacks a part
//! (written by another version, or damaged) is a miss: the document is fetched again and the entry
//! replaced.

use std::collections::BTreeMap;
use std::time::Duration;

use pccs::client::{
    ClientOptions, FetchError, FetchedPckCert, PccsClient, PckCertRequest, ProcessLocal,
};
use pccs::upstream::{crl_next_update, json_next_update};
use pccs::{CaType, Signed};

use crate::cache::{Cache, Entry, Kind};
use crate::config::{Config, CrlEncoding, cache_candidates};
use crate::error::{Document, QplError};
use crate::log;
use crate::types::{
    SGX_QL_LOG_DEBUG, SGX_QL_LOG_ERROR, SGX_QL_LOG_INFO, SGX_QL_TEE_TYPE_SGX, SGX_QL_TEE_TYPE_TDX,
    SGX_QPL_CACHE_CERTIFICATE, SGX_QPL_CACHE_MULTICERTS, SGX_QPL_CACHE_QV_COLLATERAL,
};

/// Each request's time limit.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The PCK certificate data of `sgx_ql_get_quote_config`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteConfig {
    /// The certificate's CPUSVN (from `SGX-TCBm`).
    pub cert_cpu_svn: [u8; 16],
    /// The certificate's PCESVN (from `SGX-TCBm`).
    pub cert_pce_isv_svn: u16,
    /// PEM leaf ‖ PEM issuer chain (without the trailing NUL the C buffer adds).
    pub cert_data: Vec<u8>,
}

/// The verification collateral, each part as the C structure carries it (without the trailing
/// NUL the C buffer adds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collateral {
    /// The `version` field.
    pub version: u32,
    /// The `tee_type` field: `SGX_QL_TEE_TYPE_SGX` 0x00 or `SGX_QL_TEE_TYPE_TDX` 0x81.
    pub tee_type: u32,
    /// The PCK CRL's issuer chain, PEM.
    pub pck_crl_issuer_chain: Vec<u8>,
    /// The root CA CRL, DER or hex.
    pub root_ca_crl: Vec<u8>,
    /// The PCK CRL, DER or hex.
    pub pck_crl: Vec<u8>,
    /// The TCB info's issuer chain, PEM.
    pub tcb_info_issuer_chain: Vec<u8>,
    /// The TCB info document as served.
    pub tcb_info: Vec<u8>,
    /// The QE identity's issuer chain, PEM.
    pub qe_identity_issuer_chain: Vec<u8>,
    /// The QE identity document as served.
    pub qe_identity: Vec<u8>,
}

/// The clients of the process, by URL and settings (see [`Provider`]'s `client`). A child process
/// (`fork` of the host) does not use the ones it inherits, whose connections are the parent's: it
/// leaks them and makes its own.
static CLIENTS: std::sync::Mutex<ProcessLocal<BTreeMap<String, PccsClient>>> =
    std::sync::Mutex::new(ProcessLocal::new());
/// More settings than this at once (a configuration that keeps changing) start the set afresh.
const MAX_CLIENTS: usize = 16;

/// One call's settings, cache and clients.
#[derive(Debug)]
pub struct Provider {
    config: Config,
    cache: Option<Cache>,
}

impl Provider {
    /// The settings of this process (file and environment), and its cache directory.
    pub fn from_env() -> Result<Self, QplError> {
        let env = |name: &str| std::env::var(name).ok();
        let config = Config::load(&env)?;
        Ok(Self::new(config, Cache::open(&cache_candidates(&env))))
    }

    /// A provider with explicit settings and cache.
    pub fn new(config: Config, cache: Option<Cache>) -> Self {
        if cache.is_none() {
            log::log(
                SGX_QL_LOG_INFO,
                "no writable cache directory: nothing is cached",
            );
        }
        for notice in &config.notices {
            log::log(SGX_QL_LOG_INFO, notice);
        }
        Self { config, cache }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The cache, when a directory was usable.
    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }

    fn client(&self, url: &str, document: Document) -> Result<PccsClient, QplError> {
        if !self.config.use_secure_cert {
            log::log(
                SGX_QL_LOG_ERROR,
                &format!(
                    "warning: use_secure_cert is false: the TLS certificate of {url} is not verified"
                ),
            );
        }
        let (retries, retry_delay) = self.config.retries();
        // One client per URL and settings for the process, kept across calls: its connections
        // stay open for the next call, and the trust store is read once. The system's store
        // (SSL_CERT_FILE, SSL_CERT_DIR) is part of the settings.
        let env = |name: &str| std::env::var(name).unwrap_or_default();
        let key = format!(
            "{url}\n{retries}\n{retry_delay:?}\n{}\n{:?}\n{}\n{}",
            self.config.use_secure_cert,
            self.config.tcb_update,
            env("SSL_CERT_FILE"),
            env("SSL_CERT_DIR"),
        );
        let mut clients = CLIENTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let clients = clients.get_or_insert_with(BTreeMap::new);
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let options = ClientOptions {
            retries,
            retry_delay,
            accept_invalid_certs: !self.config.use_secure_cert,
            // Besides Mozilla's roots: the system's store, which SSL_CERT_FILE may name.
            ca_files: Vec::new(),
        };
        let client = PccsClient::with_options(url, REQUEST_TIMEOUT, options)
            .map(|client| client.with_tcb_update(self.config.tcb_update))
            .map_err(|source| QplError::Fetch { document, source })?;
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// The value `read` makes of the cached entry of `key`, or of a fresh fetch (stored when
    /// `hours` > 0). A cached entry `read` cannot use is a miss.
    fn cached<T>(
        &self,
        kind: Kind,
        key: &str,
        document: Document,
        hours: u32,
        fetch: impl FnOnce() -> Result<Entry, FetchError>,
        read: impl Fn(&Entry) -> Result<T, QplError>,
    ) -> Result<T, QplError> {
        let max_age = u64::from(hours) * 3600;
        if let Some(cache) = &self.cache {
            let limit = (!self.config.local_cache_only).then_some(max_age);
            if (hours > 0 || self.config.local_cache_only)
                && let Some(entry) = cache.get(kind, key, pccs::upstream::now(), limit)
            {
                match read(&entry) {
                    Ok(value) => {
                        log::log(
                            SGX_QL_LOG_DEBUG,
                            &format!(
                                "{document} served from the cache in {}",
                                cache.dir().display()
                            ),
                        );
                        return Ok(value);
                    }
                    Err(e) => log::log(
                        SGX_QL_LOG_INFO,
                        &format!("{e} in {}: a miss for {document}", cache.dir().display()),
                    ),
                }
            }
        }
        if self.config.local_cache_only {
            return Err(QplError::NotCached(document));
        }
        let entry = fetch().map_err(|source| QplError::Fetch { document, source })?;
        let value = read(&entry)?;
        if hours > 0
            && let Some(cache) = &self.cache
            && let Err(e) = cache.put(kind, key, &entry)
        {
            log::log(
                SGX_QL_LOG_INFO,
                &format!("cannot cache {document} in {}: {e}", cache.dir().display()),
            );
        }
        Ok(value)
    }

    /// A cache key of a document the `update` type changes, naming the type when one is set.
    fn with_update(&self, mut key: String) -> String {
        if let Some(update) = self.config.tcb_update {
            key.push_str("\nupdate=");
            key.push_str(update.as_str());
        }
        key
    }

    /// `sgx_ql_get_quote_config`: the PCK certificate chain for a platform and its TCB, from
    /// `local_pck_url` first when it is set, else (or when it fails) from the cache or `pccs_url`.
    pub fn quote_config(&self, request: &PckCertRequest) -> Result<QuoteConfig, QplError> {
        let request = PckCertRequest {
            extra_params: self.config.get_cert_params.clone(),
            extra_headers: self.config.get_cert_headers.clone(),
            ..request.clone()
        };
        let url = &self.config.pccs_url;
        if let Some(local) = &self.config.local_pck_url
            && !self.config.local_cache_only
        {
            let fetched = self
                .client(local, Document::PckCert)
                .map_err(into_fetch)
                .and_then(|client| client.pck_cert(&request));
            match fetched {
                Ok(cert) => {
                    log::log(
                        SGX_QL_LOG_DEBUG,
                        &format!("the PCK certificate comes from local_pck_url {local}"),
                    );
                    return read_quote_config(&pck_cert_entry(cert));
                }
                Err(
                    e @ (FetchError::Transport { .. }
                    | FetchError::UntrustedCertificate { .. }
                    | FetchError::Status { .. }),
                ) => {
                    log::log(
                        SGX_QL_LOG_INFO,
                        &format!("local_pck_url failed ({e}): failing over to pccs_url {url}"),
                    );
                }
                Err(source) => {
                    return Err(QplError::Fetch {
                        document: Document::PckCert,
                        source,
                    });
                }
            }
        }
        let key = format!(
            "pckcert\n{url}\n{}\n{}\n{:04x}\n{:04x}",
            hex::encode(&request.qe_id),
            hex::encode(request.cpu_svn),
            request.pce_svn,
            request.pce_id
        );
        self.cached(
            Kind::Certificate,
            &key,
            Document::PckCert,
            self.config.pck_cache_expire_hours,
            || {
                let client = self.client(url, Document::PckCert).map_err(into_fetch)?;
                Ok(pck_cert_entry(client.pck_cert(&request)?))
            },
            read_quote_config,
        )
    }

    /// `sgx_ql_get_quote_verification_collateral`: the collateral of an FMSPC and PCK CA.
    pub fn collateral(&self, fmspc: &[u8; 6], ca: CaType) -> Result<Collateral, QplError> {
        self.collateral_of(Tee::Sgx, fmspc, ca)
    }

    /// `tdx_ql_get_quote_verification_collateral`: as [`Provider::collateral`], with the TCB info
    /// and QE identity of TDX (`/tdx/certification/v4/`). The collateral service must speak API v4:
    /// a `/sgx/certification/v3/` URL is an invalid parameter, without a request.
    pub fn tdx_collateral(&self, fmspc: &[u8; 6], ca: CaType) -> Result<Collateral, QplError> {
        if pccs::client::base_url(self.config.collateral_url()).1 == pccs::ApiVersion::V3 {
            return Err(QplError::InvalidParameter(
                "TDX collateral needs API v4, and the collateral service URL is an API v3 URL",
            ));
        }
        self.collateral_of(Tee::Tdx, fmspc, ca)
    }

    fn collateral_of(&self, tee: Tee, fmspc: &[u8; 6], ca: CaType) -> Result<Collateral, QplError> {
        let url = self.config.collateral_url();
        let (name, document) = match tee {
            Tee::Sgx => ("collateral", Document::Collateral),
            Tee::Tdx => ("tdxcollateral", Document::TdxCollateral),
        };
        let key = self.with_update(format!(
            "{name}\n{url}\n{}\n{}",
            hex::encode(fmspc),
            ca.as_str()
        ));
        self.cached(
            Kind::Collateral,
            &key,
            document,
            self.config.verify_collateral_cache_expire_hours,
            || {
                let client = self.client(url, document).map_err(into_fetch)?;
                let fetched = match tee {
                    Tee::Sgx => client.collateral(fmspc, ca)?,
                    Tee::Tdx => client.tdx_collateral(fmspc, ca)?,
                };
                let not_after = [
                    json_next_update(&fetched.tcb_info.body),
                    json_next_update(&fetched.qe_identity.body),
                    crl_next_update(&fetched.pck_crl.der),
                    crl_next_update(&fetched.root_ca_crl),
                ]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(u64::MAX);
                let mut fields = BTreeMap::new();
                fields.insert("pck_crl".into(), fetched.pck_crl.der);
                fields.insert(
                    "pck_crl_issuer_chain".into(),
                    fetched.pck_crl.issuer_chain.into_bytes(),
                );
                fields.insert("root_ca_crl".into(), fetched.root_ca_crl);
                fields.insert("tcb_info".into(), fetched.tcb_info.body);
                fields.insert(
                    "tcb_info_issuer_chain".into(),
                    fetched.tcb_info.issuer_chain.into_bytes(),
                );
                fields.insert("qe_identity".into(), fetched.qe_identity.body);
                fields.insert(
                    "qe_identity_issuer_chain".into(),
                    fetched.qe_identity.issuer_chain.into_bytes(),
                );
                Ok(Entry::new(not_after, fields))
            },
            |entry| {
                let crl = |der: &[u8]| self.encode_crl(der);
                Ok(Collateral {
                    version: self.config.collateral_version(),
                    tee_type: match tee {
                        Tee::Sgx => SGX_QL_TEE_TYPE_SGX,
                        Tee::Tdx => SGX_QL_TEE_TYPE_TDX,
                    },
                    pck_crl_issuer_chain: field(entry, "pck_crl_issuer_chain")?.to_vec(),
                    root_ca_crl: crl(field(entry, "root_ca_crl")?),
                    pck_crl: crl(field(entry, "pck_crl")?),
                    tcb_info_issuer_chain: field(entry, "tcb_info_issuer_chain")?.to_vec(),
                    tcb_info: field(entry, "tcb_info")?.to_vec(),
                    qe_identity_issuer_chain: field(entry, "qe_identity_issuer_chain")?.to_vec(),
                    qe_identity: field(entry, "qe_identity")?.to_vec(),
                })
            },
        )
    }

    /// `sgx_ql_get_qve_identity`: the QvE identity document and its issuer chain.
    pub fn qve_identity(&self) -> Result<Signed, QplError> {
        let url = self.config.collateral_url();
        let key = self.with_update(format!("qveidentity\n{url}"));
        self.cached(
            Kind::Collateral,
            &key,
            Document::QveIdentity,
            self.config.verify_collateral_cache_expire_hours,
            || {
                let client = self
                    .client(url, Document::QveIdentity)
                    .map_err(into_fetch)?;
                let signed = client.qve_identity()?;
                let not_after = json_next_update(&signed.body).unwrap_or(u64::MAX);
                let mut fields = BTreeMap::new();
                fields.insert("body".into(), signed.body);
                fields.insert("issuer_chain".into(), signed.issuer_chain.into_bytes());
                Ok(Entry::new(not_after, fields))
            },
            |entry| {
                Ok(Signed {
                    body: field(entry, "body")?.to_vec(),
                    issuer_chain: String::from_utf8(field(entry, "issuer_chain")?.to_vec())
                        .map_err(|_| damaged("issuer_chain"))?,
                })
            },
        )
    }

    /// `sgx_ql_get_root_ca_crl`: the root CA CRL, DER or hex as configured.
    pub fn root_ca_crl(&self) -> Result<Vec<u8>, QplError> {
        let url = self.config.collateral_url();
        self.cached(
            Kind::Collateral,
            &format!("rootcacrl\n{url}"),
            Document::RootCaCrl,
            self.config.verify_collateral_cache_expire_hours,
            || {
                let client = self.client(url, Document::RootCaCrl).map_err(into_fetch)?;
                let der = client.root_ca_crl()?;
                let not_after = crl_next_update(&der).unwrap_or(u64::MAX);
                let mut fields = BTreeMap::new();
                fields.insert("der".into(), der);
                Ok(Entry::new(not_after, fields))
            },
            |entry| Ok(self.encode_crl(field(entry, "der")?)),
        )
    }

    fn encode_crl(&self, der: &[u8]) -> Vec<u8> {
        match self.config.effective_crl_encoding() {
            CrlEncoding::Der => der.to_vec(),
            CrlEncoding::Hex => hex::encode(der).into_bytes(),
        }
    }
}

/// Which kind of quote collateral is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tee {
    /// SGX quotes (`sgx_ql_get_quote_verification_collateral`).
    Sgx,
    /// TDX quotes (`tdx_ql_get_quote_verification_collateral`).
    Tdx,
}

/// The cache entry of a fetched PCK certificate: the certificate data and the TCBm.
fn pck_cert_entry(cert: FetchedPckCert) -> Entry {
    let mut fields = BTreeMap::new();
    fields.insert(
        "cert_data".into(),
        [cert.cert_pem, cert.issuer_chain].concat().into_bytes(),
    );
    fields.insert("tcbm".into(), cert.tcbm.to_vec());
    Entry::new(u64::MAX, fields)
}

/// The quote configuration of a PCK certificate entry.
fn read_quote_config(entry: &Entry) -> Result<QuoteConfig, QplError> {
    let tcbm = field(entry, "tcbm")?;
    let (cpu_svn, pce_svn) = match tcbm.len() {
        18 => (&tcbm[..16], &tcbm[16..]),
        _ => return Err(damaged("tcbm")),
    };
    let mut cert_cpu_svn = [0u8; 16];
    cert_cpu_svn.copy_from_slice(cpu_svn);
    Ok(QuoteConfig {
        cert_cpu_svn,
        cert_pce_isv_svn: u16::from_le_bytes([pce_svn[0], pce_svn[1]]),
        cert_data: field(entry, "cert_data")?.to_vec(),
    })
}

/// Every bit `sgx_qpl_clear_cache` knows.
const CACHE_TYPES: u32 =
    SGX_QPL_CACHE_CERTIFICATE | SGX_QPL_CACHE_QV_COLLATERAL | SGX_QPL_CACHE_MULTICERTS;

/// `sgx_qpl_clear_cache`: removes this library's cache entries of the classes in `cache_type`
/// (`SGX_QPL_CACHE_CERTIFICATE` 1: PCK certificates; `SGX_QPL_CACHE_QV_COLLATERAL` 2: collateral,
/// QvE identity and root CA CRL; `SGX_QPL_CACHE_MULTICERTS` 4: the certificates of every TCB,
/// which this library never stores) from `cache`; returns how many were removed. Other bits are
/// an invalid parameter; no cache directory means nothing to clear.
pub fn clear_cache(cache: Option<&Cache>, cache_type: u32) -> Result<usize, QplError> {
    if cache_type & !CACHE_TYPES != 0 {
        return Err(QplError::InvalidParameter(
            "cache_type has bits other than SGX_QPL_CACHE_CERTIFICATE, _QV_COLLATERAL and \
             _MULTICERTS",
        ));
    }
    let Some(cache) = cache else {
        return Ok(0);
    };
    let mut kinds = Vec::new();
    if cache_type & SGX_QPL_CACHE_CERTIFICATE != 0 {
        kinds.push(Kind::Certificate);
    }
    if cache_type & SGX_QPL_CACHE_QV_COLLATERAL != 0 {
        kinds.push(Kind::Collateral);
    }
    cache.clear(&kinds).map_err(|e| QplError::ClearCache {
        dir: cache.dir().to_owned(),
        reason: e.to_string(),
    })
}

/// A client that cannot be made (a bad URL) fails the fetch.
fn into_fetch(error: QplError) -> FetchError {
    match error {
        QplError::Fetch { source, .. } => source,
        other => FetchError::BadUrl(other.to_string()),
    }
}

fn damaged(what: &'static str) -> QplError {
    QplError::DamagedCacheEntry(what)
}

fn field<'a>(entry: &'a Entry, name: &'static str) -> Result<&'a [u8], QplError> {
    entry
        .fields
        .get(name)
        .map(Vec::as_slice)
        .ok_or_else(|| damaged(name))
}

//! [`UpstreamSource`]: collateral from an upstream PCS, PCCS or caching service (Intel's PCS, another
//! PCCS, Azure's THIM), cached in a [`Store`] the way Intel's PCCS does in its LAZY mode: fetched on
//! a miss, served from the cache, fetched again once due (before the collateral's `nextUpdate`),
//! and, while the upstream fails, the last good copy is served and the failure counted in the
//! metrics. An upstream `404` is passed on as "no data"; any other failure with nothing cached is a
//! `502`, as Intel's PCCS answers it.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::AtomicI64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::api::{
    ApiVersion, HEADER_IDENTITY_CHAIN, HEADER_PCK_CRL_CHAIN, HEADER_TCB_INFO_CHAIN_V3,
    HEADER_TCB_INFO_CHAIN_V4,
};
use crate::api::{HEADER_FMSPC, HEADER_PCK_CA_TYPE, HEADER_PCK_CHAIN, NOT_AVAILABLE};
use crate::client::{
    ClientOptions, PccsClient, THIM_PCK_HEADERS, THIM_PCK_PARAMS, crl_der, is_azure_thim,
    pck_cert_reply, push_query_params,
};
use crate::source::{
    CaType, CollateralSource, Crl, CrlKind, LevelCert, PckCert, PckCertQuery, PckCerts,
    PckCertsManifestQuery, PckCertsQuery, Signed, SourceError, chain_crl_locations,
    intel_crl_location,
};
use crate::store::{Entry, Store};

/// How long an answer is served before it is fetched again, at most.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// How long before the collateral's `nextUpdate` it is fetched again.
const BEFORE_NEXT_UPDATE: u64 = 3600;
/// The shortest time an answer is served before it is fetched again (unless the maximum age is
/// shorter): collateral past its `nextUpdate` is not fetched in a tight loop.
const MIN_AGE: u64 = 60;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabels {
    result: &'static str,
}

/// The upstream's health, for `/metrics`.
#[derive(Debug, Default)]
struct UpstreamMetrics {
    fetches: Family<FetchLabels, Counter>,
    stale_served: Counter,
    up: Gauge<i64, AtomicI64>,
}

/// Collateral from an upstream service, cached.
#[derive(Debug)]
pub struct UpstreamSource {
    v4: PccsClient,
    v3: PccsClient,
    pck: PckUpstream,
    store: Store,
    max_age: Duration,
    metrics: UpstreamMetrics,
    crl_locations: Mutex<SeenLocations>,
}

/// The CRL distribution points of the certificates served so far, so that `crl?uri=` answers
/// those (and Intel's) and nothing else.
#[derive(Debug, Default)]
struct SeenLocations {
    /// Hashes of the chains already read.
    chains: HashSet<u64>,
    /// Distribution point → CRL.
    locations: HashMap<String, CrlKind>,
}

/// Where PCK certificates come from, and what their requests carry besides the platform's identity.
#[derive(Clone, Debug)]
struct PckUpstream {
    client: PccsClient,
    params: Vec<(String, String)>,
    headers: Vec<(String, String)>,
}

impl PckUpstream {
    /// `client`, with the parameters and headers Azure's THIM wants when it is THIM.
    fn new(client: PccsClient) -> Self {
        let (params, headers) = if is_azure_thim(client.base()) {
            let owned = |pairs: &[(&str, &str)]| {
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            };
            (owned(&THIM_PCK_PARAMS), owned(&THIM_PCK_HEADERS))
        } else {
            (Vec::new(), Vec::new())
        };
        Self {
            client,
            params,
            headers,
        }
    }
}

/// Seconds since the Unix epoch (0 when the clock is set before it).
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// When an answer fetched at `now` is due again: after `max_age`, or an hour before the
/// collateral's own `next_update` if that comes first, but not sooner than a minute (or `max_age`
/// when that is shorter).
fn refresh_at(now: u64, max_age: Duration, next_update: Option<u64>) -> u64 {
    let max_age = max_age.as_secs();
    let latest = now.saturating_add(max_age);
    next_update
        .map_or(latest, |next| {
            latest.min(next.saturating_sub(BEFORE_NEXT_UPDATE))
        })
        .max(now.saturating_add(MIN_AGE.min(max_age)))
}

/// The `nextUpdate` (Unix seconds) of a signed JSON document (`tcbInfo` or `enclaveIdentity`).
pub fn json_next_update(body: &[u8]) -> Option<u64> {
    let doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    let inner = doc.get("tcbInfo").or_else(|| doc.get("enclaveIdentity"))?;
    let text = inner.get("nextUpdate")?.as_str()?;
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

/// The `nextUpdate` (Unix seconds) of a CRL body (DER, hex or PEM).
pub fn crl_next_update(body: &[u8]) -> Option<u64> {
    use x509_cert::der::Decode;
    let der = crl_der(body)?;
    let crl = <x509_cert::crl::CertificateList>::from_der(&der).ok()?;
    let next = crl.tbs_cert_list.next_update?;
    Some(next.to_unix_duration().as_secs())
}

impl UpstreamSource {
    /// A source fetching from `url` (a base of API v4 or v3, or a server root; the other version
    /// is reached by the same host) and caching in `store`; each request waits at most `timeout`.
    pub fn new(url: &str, store: Store, timeout: Duration) -> Result<Self, SourceError> {
        Self::with_options(url, store, timeout, ClientOptions::default())
    }

    /// As [`UpstreamSource::new`], with the client's retry and TLS settings (a private upstream's
    /// CA, say).
    pub fn with_options(
        url: &str,
        store: Store,
        timeout: Duration,
        options: ClientOptions,
    ) -> Result<Self, SourceError> {
        let upstream = |e: crate::client::FetchError| SourceError::Upstream(e.to_string());
        let given = PccsClient::with_options(url, timeout, options.clone()).map_err(upstream)?;
        let other_base = match given.version() {
            ApiVersion::V4 => given
                .base()
                .replace(ApiVersion::V4.prefix(), ApiVersion::V3.prefix()),
            ApiVersion::V3 => given
                .base()
                .replace(ApiVersion::V3.prefix(), ApiVersion::V4.prefix()),
        };
        let other = PccsClient::with_options(&other_base, timeout, options).map_err(upstream)?;
        let (v4, v3) = match given.version() {
            ApiVersion::V4 => (given, other),
            ApiVersion::V3 => (other, given),
        };
        Ok(Self {
            pck: PckUpstream::new(v4.clone()),
            v4,
            v3,
            store,
            max_age: DEFAULT_MAX_AGE,
            metrics: UpstreamMetrics::default(),
            crl_locations: Mutex::new(SeenLocations::default()),
        })
    }

    /// Takes PCK certificates from `url` instead (API v4 unless the URL names v3): Azure's THIM,
    /// say, while the rest comes from Intel's PCS. A THIM URL (the global cache or a host's
    /// instance-metadata endpoint) gets the `api-version` parameter and `metadata` header that
    /// THIM wants, and its JSON answers are read as the PEM-and-headers ones.
    pub fn with_pck_upstream(
        mut self,
        url: &str,
        timeout: Duration,
        options: ClientOptions,
    ) -> Result<Self, SourceError> {
        let client = PccsClient::with_options(url, timeout, options)
            .map_err(|e| SourceError::Upstream(e.to_string()))?;
        self.pck = PckUpstream::new(client);
        Ok(self)
    }

    /// Sets how long an answer is served before it is fetched again, at most (`0`: fetch for every
    /// request, and serve the cache only while the upstream fails).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Registers the upstream metrics: `confcom_pccs_upstream_fetches_total{result}`,
    /// `confcom_pccs_upstream_stale_served_total`, `confcom_pccs_upstream_up` (0 while the last
    /// fetch failed, and cached collateral is served in its place).
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "confcom_pccs_upstream_fetches",
            "Requests to the upstream collateral service, by result (ok, not_found, error)",
            self.metrics.fetches.clone(),
        );
        registry.register(
            "confcom_pccs_upstream_stale_served",
            "Answers served from the cache because the upstream failed",
            self.metrics.stale_served.clone(),
        );
        registry.register(
            "confcom_pccs_upstream_up",
            "1 while the last upstream request succeeded, 0 while it fails",
            self.metrics.up.clone(),
        );
    }

    fn client(&self, version: ApiVersion) -> &PccsClient {
        match version {
            ApiVersion::V3 => &self.v3,
            ApiVersion::V4 => &self.v4,
        }
    }

    fn count(&self, result: &'static str) {
        self.metrics
            .fetches
            .get_or_create(&FetchLabels { result })
            .inc();
        self.metrics.up.set(i64::from(result != "error"));
    }

    /// The cached answer under `key`, fetched from `url` when missing or due. `next_update` reads
    /// the collateral's own expiry from a body.
    fn cached(
        &self,
        key: &str,
        url: &str,
        next_update: fn(&[u8]) -> Option<u64>,
    ) -> Result<Option<Entry>, SourceError> {
        self.cached_from(&self.v4, &[], key, url, next_update)
    }

    /// [`UpstreamSource::cached`], fetched by `client` with `headers`.
    fn cached_from(
        &self,
        client: &PccsClient,
        headers: &[(String, String)],
        key: &str,
        url: &str,
        next_update: fn(&[u8]) -> Option<u64>,
    ) -> Result<Option<Entry>, SourceError> {
        self.cached_with(key, url, next_update, || {
            client.fetch_with_headers(url, headers)
        })
    }

    /// The cached answer under `key`, asked of the upstream by `request` (to `url`) when missing
    /// or due.
    fn cached_with(
        &self,
        key: &str,
        url: &str,
        next_update: fn(&[u8]) -> Option<u64>,
        request: impl FnOnce() -> Result<crate::client::RawReply, crate::client::FetchError>,
    ) -> Result<Option<Entry>, SourceError> {
        let now = now();
        let stored = match self.store.get(key) {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(error = %e, key, "cannot read the collateral cache; fetching");
                None
            }
        };
        if let Some(entry) = &stored
            && now < entry.refresh_at
        {
            return Ok(stored);
        }
        let failed = |reason: String| -> Result<Option<Entry>, SourceError> {
            self.count("error");
            match &stored {
                Some(_) => {
                    self.metrics.stale_served.inc();
                    tracing::warn!(url, %reason, "upstream failed: serving the cached collateral");
                    Ok(stored.clone())
                }
                None => Err(SourceError::Upstream(reason)),
            }
        };
        let reply = match request() {
            Ok(reply) => reply,
            Err(e) => return failed(e.to_string()),
        };
        match reply.status {
            200 => {
                self.count("ok");
                let refresh_at = refresh_at(now, self.max_age, next_update(&reply.body));
                let entry = Entry {
                    fetched_at: now,
                    refresh_at,
                    headers: reply.headers,
                    body: reply.body,
                };
                if let Err(e) = self.store.put(key, &entry) {
                    tracing::warn!(error = %e, key, "cannot write the collateral cache");
                }
                Ok(Some(entry))
            }
            404 => {
                self.count("not_found");
                Ok(None)
            }
            _ => failed(reply.status_error(url).to_string()),
        }
    }

    /// Notes the CRL distribution points of a PEM chain about to be served (each distinct chain
    /// is read once).
    fn note_crl_locations(&self, pem: &str) {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        pem.hash(&mut hasher);
        let hash = hasher.finish();
        let mut seen = self
            .crl_locations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.chains.insert(hash) {
            seen.locations.extend(chain_crl_locations(pem.as_bytes()));
        }
    }

    fn signed(
        &self,
        key: &str,
        url: &str,
        chain_headers: &[&str],
    ) -> Result<Option<Signed>, SourceError> {
        let Some(entry) = self.cached(key, url, json_next_update)? else {
            return Ok(None);
        };
        let issuer_chain = chain(&entry, chain_headers)?;
        self.note_crl_locations(&issuer_chain);
        Ok(Some(Signed {
            body: entry.body,
            issuer_chain,
        }))
    }
}

/// The first of `names` in `entry`'s headers, percent-decoded.
fn chain(entry: &Entry, names: &[&str]) -> Result<String, SourceError> {
    let corrupt = |reason: String| SourceError::Corrupt {
        what: "an upstream issuer chain",
        reason,
    };
    let value = names
        .iter()
        .find_map(|name| entry.header(name))
        .ok_or_else(|| corrupt(format!("no {} header", names.join(" or "))))?;
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|e| corrupt(e.to_string()))
}

/// Reads a `pckcerts` answer: PCS's JSON array (`tcb` with `sgxtcbcompNNsvn` and `pcesvn`,
/// `tcbm`, `cert` percent-encoded PEM or `Not available`) and its issuer chain, FMSPC and CA type
/// headers.
fn parse_pck_certs(entry: &Entry) -> Result<PckCerts, SourceError> {
    let corrupt = |reason: String| SourceError::Corrupt {
        what: "an upstream pckcerts answer",
        reason,
    };
    let issuer_chain = chain(entry, &[HEADER_PCK_CHAIN])?;
    let mut fmspc = [0u8; 6];
    entry
        .header(HEADER_FMSPC)
        .and_then(|f| hex::decode_to_slice(f, &mut fmspc).ok())
        .ok_or_else(|| corrupt(format!("no valid {HEADER_FMSPC} header")))?;
    let ca = entry
        .header(HEADER_PCK_CA_TYPE)
        .and_then(CaType::parse)
        .ok_or_else(|| corrupt(format!("no valid {HEADER_PCK_CA_TYPE} header")))?;
    let levels: Vec<serde_json::Value> =
        serde_json::from_slice(&entry.body).map_err(|e| corrupt(e.to_string()))?;
    let mut certs = Vec::with_capacity(levels.len());
    for level in &levels {
        let tcb = &level["tcb"];
        let svn = |name: &str, max: u64| {
            tcb[name]
                .as_u64()
                .filter(|v| *v <= max)
                .ok_or_else(|| corrupt(format!("tcb.{name} missing or out of range")))
        };
        let mut components = [0u8; 16];
        for (i, c) in components.iter_mut().enumerate() {
            *c = u8::try_from(svn(&format!("sgxtcbcomp{:02}svn", i + 1), 255)?).unwrap_or(0);
        }
        let pce_svn = u16::try_from(svn("pcesvn", 65535)?).unwrap_or(0);
        let mut tcbm = [0u8; 18];
        level["tcbm"]
            .as_str()
            .and_then(|t| hex::decode_to_slice(t, &mut tcbm).ok())
            .ok_or_else(|| corrupt("tcbm is not 36 hex digits".into()))?;
        let cert = level["cert"]
            .as_str()
            .ok_or_else(|| corrupt("no cert".into()))?;
        let cert_pem = if cert == NOT_AVAILABLE {
            None
        } else {
            let pem = percent_encoding::percent_decode_str(cert)
                .decode_utf8()
                .map_err(|e| corrupt(e.to_string()))?
                .into_owned();
            sgx_types::pck::parse_pem_chain(pem.as_bytes())
                .map_err(|e| corrupt(format!("cert: {e}")))?;
            Some(pem)
        };
        certs.push(LevelCert {
            components,
            pce_svn,
            tcbm,
            cert_pem,
        });
    }
    Ok(PckCerts {
        certs,
        issuer_chain,
        fmspc,
        ca,
    })
}

impl CollateralSource for UpstreamSource {
    fn pck_cert(&self, query: &PckCertQuery) -> Result<Option<PckCert>, SourceError> {
        let cpu_svn = hex::encode_upper(query.cpu_svn);
        let pce_svn = hex::encode_upper(query.pce_svn.to_le_bytes());
        let pce_id = hex::encode_upper(query.pce_id);
        let key = format!("pckcert/{}/{cpu_svn}/{pce_svn}/{pce_id}", query.qe_id);
        let pck = &self.pck;
        let mut url = format!(
            "{}pckcert?cpusvn={cpu_svn}&pcesvn={pce_svn}&pceid={pce_id}&qeid={}",
            pck.client.base(),
            query.qe_id
        );
        if let Some(ppid) = &query.encrypted_ppid {
            url.push_str(&format!("&encrypted_ppid={}", hex::encode_upper(ppid)));
        }
        push_query_params(&mut url, &pck.params);
        let Some(entry) = self.cached_from(&pck.client, &pck.headers, &key, &url, |_| None)? else {
            return Ok(None);
        };
        // A PEM body with headers (PCS, PCCS) or THIM's JSON body.
        let fetched =
            pck_cert_reply(&url, entry.headers, entry.body).map_err(|e| SourceError::Corrupt {
                what: "an upstream PCK certificate",
                reason: e.to_string(),
            })?;
        let mut whole = fetched.cert_pem.into_bytes();
        if !whole.ends_with(b"\n") {
            whole.push(b'\n');
        }
        whole.extend_from_slice(fetched.issuer_chain.as_bytes());
        let pck = PckCert::from_chain_pem(&whole)?;
        self.note_crl_locations(&format!("{}{}", pck.cert_pem, pck.issuer_chain));
        Ok(Some(pck))
    }

    fn pck_certs(&self, query: &PckCertsQuery) -> Result<Option<PckCerts>, SourceError> {
        let ppid = hex::encode_upper(&query.encrypted_ppid);
        let pce_id = hex::encode_upper(query.pce_id);
        let ppid_digest = ring::digest::digest(&ring::digest::SHA256, ppid.as_bytes());
        let key = format!(
            "pckcerts/{}/{pce_id}",
            hex::encode(&ppid_digest.as_ref()[..16])
        );
        let pck = &self.pck;
        let mut url = format!(
            "{}pckcerts?encrypted_ppid={ppid}&pceid={pce_id}",
            pck.client.base()
        );
        push_query_params(&mut url, &pck.params);
        let Some(entry) = self.cached_from(&pck.client, &pck.headers, &key, &url, |_| None)? else {
            return Ok(None);
        };
        let certs = parse_pck_certs(&entry)?;
        for level in &certs.certs {
            if let Some(pem) = &level.cert_pem {
                self.note_crl_locations(&format!("{pem}{}", certs.issuer_chain));
            }
        }
        Ok(Some(certs))
    }

    /// `POST pckcerts` to the PCK upstream with PCS's body (rebuilt from the validated query, so
    /// nothing unvalidated is forwarded), cached under a digest of that body.
    fn pck_certs_by_manifest(
        &self,
        query: &PckCertsManifestQuery,
    ) -> Result<Option<PckCerts>, SourceError> {
        let body = query.body();
        let digest = ring::digest::digest(&ring::digest::SHA256, &body);
        let key = format!("pckcerts-manifest/{}", hex::encode(digest.as_ref()));
        let pck = &self.pck;
        let mut url = format!("{}pckcerts", pck.client.base());
        push_query_params(&mut url, &pck.params);
        let Some(entry) = self.cached_with(
            &key,
            &url,
            |_| None,
            || pck.client.post_json(&url, &pck.headers, &body),
        )?
        else {
            return Ok(None);
        };
        let certs = parse_pck_certs(&entry)?;
        for level in &certs.certs {
            if let Some(pem) = &level.cert_pem {
                self.note_crl_locations(&format!("{pem}{}", certs.issuer_chain));
            }
        }
        Ok(Some(certs))
    }

    fn crl_location(&self, uri: &str) -> Option<CrlKind> {
        intel_crl_location(uri).or_else(|| {
            self.crl_locations
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .locations
                .get(uri)
                .copied()
        })
    }

    fn pck_crl(&self, ca: CaType) -> Result<Option<Crl>, SourceError> {
        let url = format!("{}pckcrl?ca={}&encoding=der", self.v4.base(), ca.as_str());
        let Some(entry) = self.cached(&format!("pckcrl/{}", ca.as_str()), &url, crl_next_update)?
        else {
            return Ok(None);
        };
        let issuer_chain = chain(&entry, &[HEADER_PCK_CRL_CHAIN])?;
        self.note_crl_locations(&issuer_chain);
        let der = crl_der(&entry.body).ok_or_else(|| SourceError::Corrupt {
            what: "the upstream PCK CRL",
            reason: "not a CRL".into(),
        })?;
        Ok(Some(Crl { der, issuer_chain }))
    }

    fn tcb_info(
        &self,
        version: ApiVersion,
        fmspc: &[u8; 6],
    ) -> Result<Option<Signed>, SourceError> {
        let fmspc = hex::encode_upper(fmspc);
        let client = self.client(version);
        self.signed(
            &format!("{version:?}/tcb/{fmspc}"),
            &format!("{}tcb?fmspc={fmspc}", client.base()),
            &[HEADER_TCB_INFO_CHAIN_V4, HEADER_TCB_INFO_CHAIN_V3],
        )
    }

    fn qe_identity(&self, version: ApiVersion) -> Result<Option<Signed>, SourceError> {
        self.signed(
            &format!("{version:?}/qe"),
            &format!("{}qe/identity", self.client(version).base()),
            &[HEADER_IDENTITY_CHAIN],
        )
    }

    fn qve_identity(&self, version: ApiVersion) -> Result<Option<Signed>, SourceError> {
        self.signed(
            &format!("{version:?}/qve"),
            &format!("{}qve/identity", self.client(version).base()),
            &[HEADER_IDENTITY_CHAIN],
        )
    }

    fn refresh(&self) -> Result<usize, SourceError> {
        self.store
            .mark_all_due()
            .map_err(|e| SourceError::Upstream(e.to_string()))
    }

    fn root_ca_crl(&self) -> Result<Option<Vec<u8>>, SourceError> {
        let url = self.v4.root_ca_crl_url();
        let Some(entry) = self.cached("rootcacrl", &url, crl_next_update)? else {
            return Ok(None);
        };
        crl_der(&entry.body)
            .map(Some)
            .ok_or_else(|| SourceError::Corrupt {
                what: "the upstream root CA CRL",
                reason: "not a CRL".into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_fetched_again_before_the_collateral_expires() {
        let day = Duration::from_secs(86_400);
        let now = 1_000_000;
        // No expiry known: the maximum age.
        assert_eq!(refresh_at(now, day, None), now + 86_400);
        // Expiry in 30 days: still the maximum age.
        assert_eq!(refresh_at(now, day, Some(now + 30 * 86_400)), now + 86_400);
        // Expiry in 3 hours: an hour before it.
        assert_eq!(refresh_at(now, day, Some(now + 3 * 3600)), now + 2 * 3600);
        // Already expired: not before a minute has passed.
        assert_eq!(refresh_at(now, day, Some(now - 10)), now + 60);
        // Maximum age 0: due at once.
        assert_eq!(refresh_at(now, Duration::ZERO, Some(now + 3600 * 5)), now);
    }

    #[test]
    fn expiry_is_read_from_signed_documents_and_crls() {
        let doc = br#"{"tcbInfo":{"nextUpdate":"2025-08-03T10:28:44Z"},"signature":"00"}"#;
        assert_eq!(json_next_update(doc), Some(1_754_216_924));
        let doc = br#"{"enclaveIdentity":{"nextUpdate":"2025-08-03T10:28:44Z"},"signature":"00"}"#;
        assert_eq!(json_next_update(doc), Some(1_754_216_924));
        assert_eq!(json_next_update(b"{}"), None);
        assert_eq!(json_next_update(b"not json"), None);
        let dir = tempfile::tempdir().unwrap();
        let platform = sgx_sim::SimPlatform::open_or_init(dir.path(), &Default::default()).unwrap();
        let collateral = platform.collateral(&Default::default()).unwrap();
        let next = crl_next_update(&collateral.pck_crl).unwrap();
        assert!(next > now(), "a fresh CRL expires in the future");
        assert_eq!(
            crl_next_update(hex::encode(&collateral.pck_crl).as_bytes()),
            Some(next)
        );
        assert_eq!(crl_next_update(b"garbage"), None);
    }
}

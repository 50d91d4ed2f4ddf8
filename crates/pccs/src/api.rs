//! The PCCS routes: a request's path and query in, a [`Reply`] out.
//!
//! | route (under `/sgx/certification/v3/` and `/v4/`) | query | body | headers |
//! |---|---|---|---|
//! | `pckcert` | `encrypted_ppid` (768 hex, optional), `cpusvn` (32 hex), `pcesvn` (4 hex), `pceid` (4 hex), `qeid` (≤ 260) | PEM leaf | `SGX-PCK-Certificate-Issuer-Chain`, `SGX-TCBm`, `SGX-FMSPC`, `SGX-PCK-Certificate-CA-Type` |
//! | `pckcrl` | `ca=processor\|platform`, `encoding=der\|pem` | DER with `encoding=der`, else the DER as hex text (as Intel's PCCS answers) | `SGX-PCK-CRL-Issuer-Chain` |
//! | `tcb` | `fmspc` (12 hex), `update=standard\|early` or `tcbEvaluationDataNumber` | `{"tcbInfo":…,"signature":…}` | v3 `SGX-TCB-Info-Issuer-Chain`, v4 `TCB-Info-Issuer-Chain` |
//! | `qe/identity`, `qve/identity` | `update` or `tcbEvaluationDataNumber` | `{"enclaveIdentity":…,"signature":…}` | `SGX-Enclave-Identity-Issuer-Chain` |
//! | `rootcacrl` | `encoding=der` (optional) | the root CA CRL's DER as hex text (as Intel's PCCS answers), DER with `encoding=der` (the simulated root's CRL distribution point) | – |
//! | `crl` | `uri` (≤ 2048 chars): a CRL distribution point of the certificates the source serves, or of Intel's | the CRL, DER (`application/pkix-crl`), as Intel's PCCS answers | – |
//! | `pckcerts` | `encrypted_ppid` (768 hex), `pceid` (4 hex) | JSON array of `{"tcb":{"sgxtcbcomp01svn":…,"pcesvn":…},"tcbm":…,"cert":…}` (certificate percent-encoded PEM, or `Not available`), one per TCB level, as Intel's PCS answers | `SGX-PCK-Certificate-Issuer-Chain`, `SGX-FMSPC`, `SGX-PCK-Certificate-CA-Type` |
//!
//! `POST pckcerts` (PCS's request for a multi-package platform, which Intel's PCCS sends its
//! upstream in LAZY mode for a platform registered with a manifest) takes `Content-Type:
//! application/json` and the body `{"platformManifest": hex, "pceid": 4 hex}` (other members are
//! ignored; the manifest is 16,882 to 112,884 hex digits on v3, 16,862 to 112,884 on v4, as PCS's
//! API documents them), at most [`MAX_POST_BODY`] bytes, and answers as `GET pckcerts` does.
//!
//! Issuer chains are PEM, percent-encoded. Every reply carries a `Request-ID`. Failures answer as
//! Intel's PCCS does, in plain text: `400 Invalid request parameters.`, `404 No cache data for this
//! platform.`, `500 Internal server error occurred.`, `502 Unable to retrieve the collateral from
//! the Intel SGX PCS.`.

use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::source::{
    CaType, CollateralSource, CrlKind, PckCertQuery, PckCerts, PckCertsManifestQuery,
    PckCertsQuery, Signed, SourceError, intel_crl_location,
};

/// The API version of a request's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiVersion {
    /// `/sgx/certification/v3/`: TCB info v2.
    V3,
    /// `/sgx/certification/v4/`: TCB info v3.
    V4,
}

impl ApiVersion {
    /// The path prefix of the version's routes.
    pub fn prefix(self) -> &'static str {
        match self {
            ApiVersion::V3 => "/sgx/certification/v3/",
            ApiVersion::V4 => "/sgx/certification/v4/",
        }
    }

    /// The name of the TCB info issuer chain header.
    pub fn tcb_info_chain_header(self) -> &'static str {
        match self {
            ApiVersion::V3 => HEADER_TCB_INFO_CHAIN_V3,
            ApiVersion::V4 => HEADER_TCB_INFO_CHAIN_V4,
        }
    }
}

/// PCK certificate issuer chain (PCK CA, root), percent-encoded PEM.
pub const HEADER_PCK_CHAIN: &str = "SGX-PCK-Certificate-Issuer-Chain";
/// The TCB a PCK certificate was issued for: CPUSVN ‖ PCESVN (little-endian), hex.
pub const HEADER_TCBM: &str = "SGX-TCBm";
/// The platform's FMSPC, hex.
pub const HEADER_FMSPC: &str = "SGX-FMSPC";
/// `processor` or `platform`.
pub const HEADER_PCK_CA_TYPE: &str = "SGX-PCK-Certificate-CA-Type";
/// PCK CRL issuer chain.
pub const HEADER_PCK_CRL_CHAIN: &str = "SGX-PCK-CRL-Issuer-Chain";
/// TCB info issuer chain, API v3.
pub const HEADER_TCB_INFO_CHAIN_V3: &str = "SGX-TCB-Info-Issuer-Chain";
/// TCB info issuer chain, API v4.
pub const HEADER_TCB_INFO_CHAIN_V4: &str = "TCB-Info-Issuer-Chain";
/// QE and QvE identity issuer chain (both versions).
pub const HEADER_IDENTITY_CHAIN: &str = "SGX-Enclave-Identity-Issuer-Chain";
/// The id of the request, for logs on both sides.
pub const HEADER_REQUEST_ID: &str = "Request-ID";

/// `Content-Type` of PEM bodies (and, as Intel's PCCS sends it, of hex CRLs).
pub const PEM: &str = "application/x-pem-file";
/// `Content-Type` of DER CRLs.
pub const CRL_DER: &str = "application/pkix-crl";
/// `Content-Type` of signed JSON documents.
pub const JSON: &str = "application/json";
/// `Content-Type` of error messages.
pub const TEXT: &str = "text/plain; charset=utf-8";

/// Intel's PCCS message of `400`.
pub const INVALID_REQUEST: &str = "Invalid request parameters.";
/// Intel's PCCS message of `404`.
pub const NO_CACHE_DATA: &str = "No cache data for this platform.";
/// Intel's PCCS message of `500`.
pub const INTERNAL_ERROR: &str = "Internal server error occurred.";
/// Intel's PCCS message of `502`.
pub const UPSTREAM_ERROR: &str = "Unable to retrieve the collateral from the Intel SGX PCS.";

/// The characters JavaScript's `encodeURIComponent` leaves alone; PCS encodes chains this way.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Percent-encodes a PEM chain for an issuer-chain header.
pub fn encode_chain(pem: &str) -> String {
    utf8_percent_encode(pem, URI_COMPONENT).to_string()
}

/// One answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Other headers, in order.
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            status,
            content_type,
            headers: vec![(HEADER_REQUEST_ID, request_id())],
            body,
        }
    }

    fn message(status: u16, message: &str) -> Self {
        Self::new(status, TEXT, message.as_bytes().to_vec())
    }

    fn with(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The answer as the ops endpoint sends it.
    pub fn into_response(self) -> ops_http::Response {
        let mut response = ops_http::Response::new(self.status, self.content_type, self.body);
        response.headers = self.headers;
        response
    }
}

/// The admin token of the `refresh` route, kept as its SHA-512 (Intel's PCCS keeps the same
/// digest, hex, as `AdminTokenHash`).
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken([u8; 64]);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// From the token's SHA-512, 128 hex digits.
    pub fn from_sha512_hex(hex_digest: &str) -> Result<Self, String> {
        let mut digest = [0u8; 64];
        hex::decode_to_slice(hex_digest.trim(), &mut digest)
            .map_err(|_| "an admin token hash is 128 hex digits (SHA-512)".to_owned())?;
        Ok(Self(digest))
    }

    /// From the token itself.
    pub fn from_token(token: &str) -> Self {
        let mut digest = [0u8; 64];
        digest.copy_from_slice(
            ring::digest::digest(&ring::digest::SHA512, token.as_bytes()).as_ref(),
        );
        Self(digest)
    }

    /// Whether `token` is the admin token (compared in constant time).
    pub fn matches(&self, token: &str) -> bool {
        let given = Self::from_token(token);
        given
            .0
            .iter()
            .zip(self.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// Intel's PCCS message of `401`.
pub const AUTH_FAILED: &str = "Authentication failed.";
/// Intel's PCCS message of `200` for operations.
pub const OPERATION_SUCCESSFUL: &str = "Operation successful.";
/// The header carrying the admin token.
pub const HEADER_ADMIN_TOKEN: &str = "admin-token";

/// The admin route `refresh` (GET): with the admin token in `admin-token`, cached collateral is
/// fetched again at its next request. Without a configured token the route refuses every caller.
pub fn refresh(
    source: &dyn CollateralSource,
    admin: Option<&AdminToken>,
    path: &str,
    query: Option<&str>,
    token: Option<&str>,
) -> Option<Reply> {
    [ApiVersion::V4, ApiVersion::V3]
        .into_iter()
        .find_map(|v| path.strip_prefix(v.prefix()))
        .filter(|route| route.trim_end_matches('/') == "refresh")?;
    let authorised = admin.is_some_and(|a| token.is_some_and(|t| a.matches(t)));
    if !authorised {
        return Some(Reply::message(401, AUTH_FAILED));
    }
    // `type=certs` needs an FMSPC; any other type is invalid. The whole cache is refreshed.
    let valid = parameters(query).is_ok_and(|params| match params.get("type") {
        None => true,
        Some(t) if t == "certs" => hex_param::<6>(&params, "fmspc").is_ok(),
        Some(_) => false,
    });
    if !valid {
        return Some(Reply::message(400, INVALID_REQUEST));
    }
    Some(match source.refresh() {
        Ok(count) => {
            tracing::info!(documents = count, "cached collateral due again (refresh)");
            Reply::message(200, OPERATION_SUCCESSFUL)
        }
        Err(e) => {
            tracing::warn!(error = %e, "refresh failed");
            Reply::message(500, INTERNAL_ERROR)
        }
    })
}

/// How [`routes`] serve.
#[derive(Clone, Debug, Default)]
pub struct RouteOptions {
    /// The source may wait on a remote service: run on the blocking pool.
    pub may_block: bool,
    /// The admin token of the `refresh` route (`None`: the route refuses every caller).
    pub admin: Option<AdminToken>,
    /// Log every request (method, path and query, status, bytes, duration, request id, client
    /// address) as one `tracing` event; see [`ops_http::ExtraRoutes::with_access_log`].
    pub access_log: bool,
}

/// The PCCS API as extra routes of an `ops_http` server over `source`; `on_reply` sees each answer
/// (for metrics).
pub fn routes(
    source: std::sync::Arc<dyn CollateralSource>,
    options: RouteOptions,
    on_reply: impl Fn(&Reply) + Send + Sync + 'static,
) -> ops_http::ExtraRoutes {
    let admin = options.admin;
    let on_reply = std::sync::Arc::new(on_reply);
    let post_source = std::sync::Arc::clone(&source);
    let post_on_reply = std::sync::Arc::clone(&on_reply);
    let post_handler =
        move |path: &str, _query: Option<&str>, headers: &ops_http::HeaderMap, body: &[u8]| {
            let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
            let reply = handle_post(post_source.as_ref(), path, content_type, body)?;
            post_on_reply(&reply);
            Some(reply.into_response())
        };
    let handler = move |path: &str, query: Option<&str>, headers: &ops_http::HeaderMap| {
        let token = headers
            .get(HEADER_ADMIN_TOKEN)
            .and_then(|v| v.to_str().ok());
        let reply = refresh(source.as_ref(), admin.as_ref(), path, query, token)
            .or_else(|| handle(source.as_ref(), path, query))?;
        on_reply(&reply);
        Some(reply.into_response())
    };
    let routes = if options.may_block {
        ops_http::ExtraRoutes::blocking(handler)
    } else {
        ops_http::ExtraRoutes::new(handler)
    };
    routes
        .with_post(MAX_POST_BODY, is_post_route, post_handler)
        .with_access_log(options.access_log)
}

/// The largest `POST pckcerts` body read: PCS's largest platform manifest (112,884 hex digits)
/// with room for the rest of the JSON.
pub const MAX_POST_BODY: usize = 128 * 1024;
/// The longest platform manifest PCS takes, in hex digits (v3 and v4).
pub const MAX_MANIFEST_HEX: usize = 112_884;

/// The shortest platform manifest PCS takes on `version`, in hex digits.
pub fn min_manifest_hex(version: ApiVersion) -> usize {
    match version {
        ApiVersion::V3 => 16_882,
        ApiVersion::V4 => 16_862,
    }
}

/// The route part of a POST path, with its version, when it is `pckcerts`.
fn post_route(path: &str) -> Option<ApiVersion> {
    [ApiVersion::V4, ApiVersion::V3].into_iter().find(|v| {
        path.strip_prefix(v.prefix())
            .is_some_and(|route| route.trim_end_matches('/') == "pckcerts")
    })
}

/// Whether POST is served on `path` (`pckcerts` of either version).
pub fn is_post_route(path: &str) -> bool {
    post_route(path).is_some()
}

/// The body of `POST pckcerts`, validated as PCS's API describes it.
fn manifest_query(
    version: ApiVersion,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<PckCertsManifestQuery, Invalid> {
    let media_type = content_type
        .and_then(|t| t.split(';').next())
        .map(str::trim)
        .ok_or(Invalid)?;
    if !media_type.eq_ignore_ascii_case(JSON) {
        return Err(Invalid);
    }
    let doc: serde_json::Value = serde_json::from_slice(body).map_err(|_| Invalid)?;
    let manifest = doc
        .get("platformManifest")
        .and_then(serde_json::Value::as_str)
        .ok_or(Invalid)?;
    let manifest_ok = (min_manifest_hex(version)..=MAX_MANIFEST_HEX).contains(&manifest.len())
        && manifest.bytes().all(|b| b.is_ascii_hexdigit());
    if !manifest_ok {
        return Err(Invalid);
    }
    let pce_id = doc
        .get("pceid")
        .and_then(serde_json::Value::as_str)
        .ok_or(Invalid)?;
    let mut pce_id_bytes = [0u8; 2];
    hex::decode_to_slice(pce_id, &mut pce_id_bytes).map_err(|_| Invalid)?;
    Ok(PckCertsManifestQuery {
        platform_manifest: manifest.to_ascii_uppercase(),
        pce_id: pce_id_bytes,
    })
}

/// Answers `POST pckcerts` (its `Content-Type` and body); `None` when the path is not that route.
pub fn handle_post(
    source: &dyn CollateralSource,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Option<Reply> {
    let version = post_route(path)?;
    let reply = match manifest_query(version, content_type, body) {
        Err(Invalid) => Reply::message(400, INVALID_REQUEST),
        Ok(query) => match source.pck_certs_by_manifest(&query) {
            Ok(Some(certs)) => pck_certs_reply(certs),
            Ok(None) => Reply::message(404, NO_CACHE_DATA),
            Err(e @ SourceError::Upstream(_)) => {
                tracing::warn!(error = %e, route = "pckcerts", "no collateral from the upstream service");
                Reply::message(502, UPSTREAM_ERROR)
            }
            Err(e) => {
                tracing::warn!(error = %e, route = "pckcerts", "collateral source failed");
                Reply::message(500, INTERNAL_ERROR)
            }
        },
    };
    Some(reply)
}

/// A random request id: 32 hex digits (a UUID without dashes, as Intel's PCCS makes them).
fn request_id() -> String {
    let mut id = [0u8; 16];
    // The system RNG fails only when the OS has no randomness; the id is then all zeros, which
    // only makes it less useful in logs.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id);
    hex::encode(id)
}

/// Why a request is answered `400`.
struct Invalid;

/// The query's parameters; a parameter given twice is invalid.
fn parameters(query: Option<&str>) -> Result<BTreeMap<String, String>, Invalid> {
    let mut out = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if out.insert(key.into_owned(), value.into_owned()).is_some() {
            return Err(Invalid);
        }
    }
    Ok(out)
}

/// `name` as `N` bytes of hex (exactly `2N` digits, any case).
fn hex_param<const N: usize>(
    params: &BTreeMap<String, String>,
    name: &str,
) -> Result<[u8; N], Invalid> {
    let text = params.get(name).ok_or(Invalid)?;
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|_| Invalid)?;
    Ok(out)
}

/// `update=standard|early` or `tcbEvaluationDataNumber=N`, not both. The source serves what it has;
/// the parameters are only checked.
fn check_update(params: &BTreeMap<String, String>) -> Result<(), Invalid> {
    let update = params.get("update");
    let number = params.get("tcbEvaluationDataNumber");
    if update.is_some() && number.is_some() {
        return Err(Invalid);
    }
    if let Some(update) = update
        && !(update.eq_ignore_ascii_case("standard") || update.eq_ignore_ascii_case("early"))
    {
        return Err(Invalid);
    }
    if let Some(number) = number
        && number.parse::<u32>().is_err()
    {
        return Err(Invalid);
    }
    Ok(())
}

fn pck_cert_query(params: &BTreeMap<String, String>) -> Result<PckCertQuery, Invalid> {
    let encrypted_ppid = match params.get("encrypted_ppid") {
        None => None,
        Some(_) => Some(hex_param::<384>(params, "encrypted_ppid")?.to_vec()),
    };
    let qe_id = params.get("qeid").ok_or(Invalid)?;
    if qe_id.is_empty() || qe_id.len() > 260 {
        return Err(Invalid);
    }
    Ok(PckCertQuery {
        encrypted_ppid,
        cpu_svn: hex_param(params, "cpusvn")?,
        pce_svn: u16::from_le_bytes(hex_param(params, "pcesvn")?),
        pce_id: hex_param(params, "pceid")?,
        qe_id: qe_id.to_ascii_uppercase(),
    })
}

/// Answers a request for `path` (with its percent-encoded `query`); `None` when the path is not a
/// PCCS route of either version.
pub fn handle(source: &dyn CollateralSource, path: &str, query: Option<&str>) -> Option<Reply> {
    let (version, route) = [ApiVersion::V4, ApiVersion::V3]
        .into_iter()
        .find_map(|v| path.strip_prefix(v.prefix()).map(|route| (v, route)))?;
    let route = route.trim_end_matches('/');
    let known = matches!(
        route,
        "pckcert"
            | "pckcerts"
            | "pckcrl"
            | "tcb"
            | "qe/identity"
            | "qve/identity"
            | "rootcacrl"
            | "crl"
    );
    if !known {
        return None;
    }
    let reply = match parameters(query).and_then(|params| {
        if route == "crl" {
            crl_by_uri(source, query, &params)
        } else {
            answer(source, version, route, &params)
        }
    }) {
        Ok(Ok(Some(reply))) => reply,
        Ok(Ok(None)) => Reply::message(404, NO_CACHE_DATA),
        Ok(Err(e @ SourceError::Upstream(_))) => {
            tracing::warn!(error = %e, route, "no collateral from the upstream service");
            Reply::message(502, UPSTREAM_ERROR)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, route, "collateral source failed");
            Reply::message(500, INTERNAL_ERROR)
        }
        Err(Invalid) => Reply::message(400, INVALID_REQUEST),
    };
    Some(reply)
}

type Answer = Result<Option<Reply>, SourceError>;

fn answer(
    source: &dyn CollateralSource,
    version: ApiVersion,
    route: &str,
    params: &BTreeMap<String, String>,
) -> Result<Answer, Invalid> {
    let signed = |doc: Result<Option<Signed>, SourceError>, header: &'static str| -> Answer {
        Ok(doc?.map(|s| Reply::new(200, JSON, s.body).with(header, encode_chain(&s.issuer_chain))))
    };
    Ok(match route {
        "pckcert" => {
            let query = pck_cert_query(params)?;
            source.pck_cert(&query).map(|cert| {
                cert.map(|c| {
                    Reply::new(200, PEM, c.cert_pem.into_bytes())
                        .with(HEADER_PCK_CHAIN, encode_chain(&c.issuer_chain))
                        .with(HEADER_TCBM, hex::encode_upper(c.tcbm))
                        .with(HEADER_FMSPC, hex::encode_upper(c.fmspc))
                        .with(HEADER_PCK_CA_TYPE, c.ca.as_str().to_owned())
                })
            })
        }
        "pckcrl" => {
            let ca = params
                .get("ca")
                .and_then(|ca| CaType::parse(ca))
                .ok_or(Invalid)?;
            let der = match params.get("encoding") {
                None => false,
                Some(e) if e.eq_ignore_ascii_case("pem") => false,
                Some(e) if e.eq_ignore_ascii_case("der") => true,
                Some(_) => return Err(Invalid),
            };
            source.pck_crl(ca).map(|crl| {
                crl.map(|crl| {
                    let reply = if der {
                        Reply::new(200, CRL_DER, crl.der)
                    } else {
                        Reply::new(200, PEM, hex::encode(crl.der).into_bytes())
                    };
                    reply.with(HEADER_PCK_CRL_CHAIN, encode_chain(&crl.issuer_chain))
                })
            })
        }
        "tcb" => {
            check_update(params)?;
            let fmspc: [u8; 6] = hex_param(params, "fmspc")?;
            signed(
                source.tcb_info(version, &fmspc),
                version.tcb_info_chain_header(),
            )
        }
        "qe/identity" => {
            check_update(params)?;
            signed(source.qe_identity(version), HEADER_IDENTITY_CHAIN)
        }
        "qve/identity" => {
            check_update(params)?;
            signed(source.qve_identity(version), HEADER_IDENTITY_CHAIN)
        }
        "pckcerts" => {
            let query = PckCertsQuery {
                encrypted_ppid: hex_param::<384>(params, "encrypted_ppid")?.to_vec(),
                pce_id: hex_param(params, "pceid")?,
            };
            source
                .pck_certs(&query)
                .map(|certs| certs.map(pck_certs_reply))
        }
        // "rootcacrl"
        _ => {
            let der = match params.get("encoding") {
                None => false,
                Some(e) if e.eq_ignore_ascii_case("pem") => false,
                Some(e) if e.eq_ignore_ascii_case("der") => true,
                Some(_) => return Err(Invalid),
            };
            source.root_ca_crl().map(|crl| {
                crl.map(|crl| {
                    if der {
                        Reply::new(200, CRL_DER, crl)
                    } else {
                        Reply::new(200, PEM, hex::encode(crl).into_bytes())
                    }
                })
            })
        }
    })
}

/// `crl?uri=`: the CRL at a distribution point the source knows. Intel's QCNL appends the
/// distribution point to `crl?uri=` as it is, without percent-encoding, so a location with a query
/// of its own (`…?ca=processor&encoding=der`) arrives split at its `&`: the whole rest of the query
/// after a leading `uri=` is tried as well.
fn crl_by_uri(
    source: &dyn CollateralSource,
    query: Option<&str>,
    params: &BTreeMap<String, String>,
) -> Result<Answer, Invalid> {
    let uri = params.get("uri").ok_or(Invalid)?;
    let raw = query
        .and_then(|q| q.strip_prefix("uri="))
        .map(|rest| percent_encoding::percent_decode_str(rest).decode_utf8_lossy());
    let candidates = std::iter::once(uri.as_str()).chain(raw.as_deref());
    let mut intel = false;
    for candidate in candidates {
        if candidate.is_empty() || candidate.len() > MAX_CRL_URI {
            return Err(Invalid);
        }
        let crl = match source.crl_location(candidate) {
            Some(CrlKind::Root) => source.root_ca_crl(),
            Some(CrlKind::Pck(ca)) => source.pck_crl(ca).map(|crl| crl.map(|c| c.der)),
            None => {
                intel |= intel_crl_location(candidate).is_some();
                continue;
            }
        };
        return Ok(crl.map(|crl| crl.map(|der| Reply::new(200, CRL_DER, der))));
    }
    if intel {
        // One of Intel's CRLs, which this source does not hold.
        Ok(Ok(None))
    } else {
        // Never fetched: the PCCS is no proxy to arbitrary URLs.
        Err(Invalid)
    }
}

/// The longest `uri` of `crl` (Intel's PCCS's limit).
const MAX_CRL_URI: usize = 2048;

/// The `pckcerts` answer: PCS's JSON array and headers.
fn pck_certs_reply(certs: PckCerts) -> Reply {
    let levels: Vec<serde_json::Value> = certs
        .certs
        .iter()
        .map(|level| {
            let mut tcb = serde_json::Map::new();
            for (i, svn) in level.components.iter().enumerate() {
                tcb.insert(format!("sgxtcbcomp{:02}svn", i + 1), (*svn).into());
            }
            tcb.insert("pcesvn".into(), level.pce_svn.into());
            let cert = level
                .cert_pem
                .as_deref()
                .map_or_else(|| NOT_AVAILABLE.to_owned(), encode_chain);
            serde_json::json!({
                "tcb": tcb,
                "tcbm": hex::encode_upper(level.tcbm),
                "cert": cert,
            })
        })
        .collect();
    let body = serde_json::Value::Array(levels).to_string().into_bytes();
    Reply::new(200, JSON, body)
        .with(HEADER_PCK_CHAIN, encode_chain(&certs.issuer_chain))
        .with(HEADER_FMSPC, hex::encode_upper(certs.fmspc))
        .with(HEADER_PCK_CA_TYPE, certs.ca.as_str().to_owned())
}

/// What PCS's `pckcerts` says for a TCB level it has no certificate of.
pub const NOT_AVAILABLE: &str = "Not available";

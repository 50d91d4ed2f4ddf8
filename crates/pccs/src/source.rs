//! Where collateral comes from: the [`CollateralSource`] trait and its sources.
//!
//! - [`SimSource`]: a simulated platform (`confcom sim init` state). Its collateral is issued on
//!   demand and reused for an hour ([`sgx_sim::CollateralCache`]); API v3 serves TCB info v2, API
//!   v4 TCB info v3, as Intel's PCS does.
//! - [`DirSource`]: an offline directory in the layout `confcom sim collateral --out` writes and
//!   `confcom verify --collateral DIR` reads, plus an optional `pck_cert_chain.pem`. Files are read
//!   on every request, so the directory can be replaced under a running server.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use sgx_sim::{CollateralCache, CollateralOptions, SimPlatform, files};
use sgx_types::pck::{PckExtension, parse_pem_chain};

use crate::api::ApiVersion;

/// Which PCK CA: Intel's Processor CA (standard platforms) or Platform CA (scalable platforms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CaType {
    /// `processor`.
    Processor,
    /// `platform`.
    Platform,
}

impl CaType {
    /// The name in URLs and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            CaType::Processor => "processor",
            CaType::Platform => "platform",
        }
    }

    /// Parses `processor` or `platform`, in any case.
    pub fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("processor") {
            Some(CaType::Processor)
        } else if text.eq_ignore_ascii_case("platform") {
            Some(CaType::Platform)
        } else {
            None
        }
    }
}

/// Which CRL a CRL distribution point names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CrlKind {
    /// The root CA's CRL.
    Root,
    /// A PCK CA's CRL.
    Pck(CaType),
}

/// The CRL distribution points of a PEM chain's certificates, each with the CRL it names: a
/// certificate's distribution point holds its issuer's CRL, so the one of a certificate issued by a
/// root CA (self-issued, or named "Root CA") is the root CA CRL, any other a PCK CA's CRL (the
/// Platform CA's when the issuer is named so). Certificates that do not decode are skipped.
pub fn chain_crl_locations(pem: &[u8]) -> Vec<(String, CrlKind)> {
    use x509_cert::der::Encode;
    let Ok(certs) = parse_pem_chain(pem) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for cert in &certs {
        let Ok(der) = cert.to_der() else { continue };
        let tbs = cert.tbs_certificate();
        let issuer = tbs.issuer().to_string();
        let kind = if tbs.issuer() == tbs.subject() || issuer.contains("Root CA") {
            CrlKind::Root
        } else if issuer.contains("Platform CA") {
            CrlKind::Pck(CaType::Platform)
        } else {
            CrlKind::Pck(CaType::Processor)
        };
        for uri in sgx_sim::crl_distribution_points(&der) {
            if !out.iter().any(|(u, _)| *u == uri) {
                out.push((uri, kind));
            }
        }
    }
    out
}

/// Which CRL a URI of Intel's names, by the forms Intel's PCCS accepts for `crl?uri=`: the root CA
/// CRL at `https://[…]certificates.trustedservices.intel.com/IntelSGXRootCA.*` (or
/// `certprx.adsdcsp.com`), a PCK CA's at
/// `https://[…]api.trustedservices.intel.com/sgx/certification/vN/pckcrl?ca=…` (or
/// `….az.sgxprod|sgxnp.adsdcsp.com`). `None` for any other URI.
pub fn intel_crl_location(uri: &str) -> Option<CrlKind> {
    let rest = uri.strip_prefix("https://")?;
    let (host, path) = rest.split_at(rest.find('/')?);
    let label_chars = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let root_host = host == "certprx.adsdcsp.com"
        || host
            .strip_suffix("certificates.trustedservices.intel.com")
            .is_some_and(label_chars);
    if root_host && path.starts_with("/IntelSGXRootCA.") {
        return Some(CrlKind::Root);
    }
    let pcs_host = host
        .strip_suffix("api.trustedservices.intel.com")
        .is_some_and(|p| label_chars(p.strip_suffix('.').unwrap_or(p)))
        || [".az.sgxprod.adsdcsp.com", ".az.sgxnp.adsdcsp.com"]
            .iter()
            .any(|d| {
                host.strip_suffix(d)
                    .is_some_and(|p| !p.is_empty() && label_chars(p))
            });
    let (path, query) = path.split_once('?')?;
    let version = path
        .strip_prefix("/sgx/certification/v")?
        .strip_suffix("/pckcrl")?;
    let version_ok = version.starts_with(|c: char| ('1'..='9').contains(&c))
        && version.chars().all(|c| c.is_ascii_digit());
    if !pcs_host || !version_ok {
        return None;
    }
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "ca")
        .and_then(|(_, v)| CaType::parse(&v))
        .map(CrlKind::Pck)
}

/// Why a source could not answer (the server answers `500`).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file of the source could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Collateral the source holds is not what it should be.
    #[error("{what} is unusable: {reason}")]
    Corrupt {
        /// What.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The simulated platform could not issue its collateral.
    #[error("cannot issue the simulated collateral: {0}")]
    Sim(#[from] sgx_sim::SimError),
    /// The upstream service failed and nothing is cached (the server answers `502`).
    #[error("the upstream collateral service failed: {0}")]
    Upstream(String),
}

/// A signed document as PCS serves it: the whole body (`{"tcbInfo":…,"signature":…}`) and the PEM
/// chain of its signer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    /// The response body, byte for byte.
    pub body: Vec<u8>,
    /// The signer's certificate then the root, PEM.
    pub issuer_chain: String,
}

/// A CRL and the PEM chain of its issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crl {
    /// The CRL, DER.
    pub der: Vec<u8>,
    /// The issuing CA then the root, PEM.
    pub issuer_chain: String,
}

/// A PCK certificate with what `GET pckcert` answers about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PckCert {
    /// The leaf certificate, PEM.
    pub cert_pem: String,
    /// The PCK CA then the root, PEM.
    pub issuer_chain: String,
    /// The TCB the certificate was issued for: CPUSVN (16 bytes) then PCESVN (little-endian).
    pub tcbm: [u8; 18],
    /// The platform's FMSPC.
    pub fmspc: [u8; 6],
    /// The PCE id, as it appears in requests (little-endian).
    pub pce_id: [u8; 2],
    /// The issuing CA.
    pub ca: CaType,
}

impl PckCert {
    /// Reads a PEM chain `leaf ‖ PCK CA ‖ root` (as in type-5 certification data; a trailing NUL
    /// is allowed) and the SGX extension of its leaf.
    pub fn from_chain_pem(pem: &[u8]) -> Result<Self, SourceError> {
        let corrupt = |reason: String| SourceError::Corrupt {
            what: "the PCK certificate chain",
            reason,
        };
        let certs = parse_pem_chain(pem).map_err(|e| corrupt(e.to_string()))?;
        let leaf = certs
            .first()
            .ok_or_else(|| corrupt("no certificate".into()))?;
        let ext = PckExtension::from_certificate(leaf).map_err(|e| corrupt(e.to_string()))?;
        let text = std::str::from_utf8(pem).map_err(|e| corrupt(e.to_string()))?;
        let text = text.trim_end_matches('\0');
        // The chain was checked above: it is a sequence of BEGIN/END blocks.
        let second = text
            .get(1..)
            .and_then(|rest| rest.find("-----BEGIN CERTIFICATE-----"))
            .map(|i| i + 1)
            .ok_or_else(|| corrupt("no issuer certificates after the leaf".into()))?;
        let mut tcbm = [0u8; 18];
        tcbm[..16].copy_from_slice(&ext.tcb.cpu_svn);
        tcbm[16..].copy_from_slice(&ext.tcb.pce_svn.to_le_bytes());
        Ok(Self {
            cert_pem: text[..second].to_owned(),
            issuer_chain: text[second..].to_owned(),
            tcbm,
            fmspc: ext.fmspc,
            pce_id: ext.pce_id,
            ca: if ext.sgx_type == 0 {
                CaType::Processor
            } else {
                CaType::Platform
            },
        })
    }
}

/// What `GET pckcert` asks for (already validated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PckCertQuery {
    /// The encrypted PPID (384 bytes), when given.
    pub encrypted_ppid: Option<Vec<u8>>,
    /// The platform's raw CPUSVN.
    pub cpu_svn: [u8; 16],
    /// The platform's PCESVN.
    pub pce_svn: u16,
    /// The PCE id (little-endian bytes as sent).
    pub pce_id: [u8; 2],
    /// The QE id, as sent (upper case).
    pub qe_id: String,
}

/// What `GET pckcerts` asks for (already validated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PckCertsQuery {
    /// The encrypted PPID (384 bytes).
    pub encrypted_ppid: Vec<u8>,
    /// The PCE id (little-endian bytes as sent).
    pub pce_id: [u8; 2],
}

/// What `POST pckcerts` asks for (already validated): a multi-package platform's manifest and its
/// PCE id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PckCertsManifestQuery {
    /// The platform manifest, hex (upper case); opaque to all but Intel.
    pub platform_manifest: String,
    /// The PCE id (little-endian bytes as sent).
    pub pce_id: [u8; 2],
}

impl PckCertsManifestQuery {
    /// The request body PCS takes: `{"platformManifest":…,"pceid":…}` in this order (as Intel's
    /// PCCS sends it), compact, upper-case hex. Both values are hex digits: nothing to escape.
    pub fn body(&self) -> Vec<u8> {
        format!(
            "{{\"platformManifest\":\"{}\",\"pceid\":\"{}\"}}",
            self.platform_manifest,
            hex::encode_upper(self.pce_id)
        )
        .into_bytes()
    }
}

/// One TCB level's entry of a `pckcerts` answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelCert {
    /// The level's SGX TCB component SVNs.
    pub components: [u8; 16],
    /// The level's PCESVN.
    pub pce_svn: u16,
    /// CPUSVN (16 bytes) then PCESVN (little-endian) the certificate was issued for.
    pub tcbm: [u8; 18],
    /// The certificate, PEM; `None` where PCS answers "Not available".
    pub cert_pem: Option<String>,
}

/// The PCK certificates of every TCB level of a platform, as `GET pckcerts` answers them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PckCerts {
    /// One entry per TCB level.
    pub certs: Vec<LevelCert>,
    /// The PCK CA then the root, PEM.
    pub issuer_chain: String,
    /// The platform's FMSPC.
    pub fmspc: [u8; 6],
    /// The issuing CA.
    pub ca: CaType,
}

/// A store of collateral that the PCCS API serves. `Ok(None)` is "not here" (`404`).
pub trait CollateralSource: Send + Sync {
    /// The PCK certificate for a platform.
    fn pck_cert(&self, query: &PckCertQuery) -> Result<Option<PckCert>, SourceError>;
    /// The CRL of a PCK CA.
    fn pck_crl(&self, ca: CaType) -> Result<Option<Crl>, SourceError>;
    /// The TCB info of an FMSPC, in the form of `version` (v3: TCB info v2, v4: TCB info v3).
    fn tcb_info(&self, version: ApiVersion, fmspc: &[u8; 6])
    -> Result<Option<Signed>, SourceError>;
    /// The QE identity.
    fn qe_identity(&self, version: ApiVersion) -> Result<Option<Signed>, SourceError>;
    /// The QvE identity.
    fn qve_identity(&self, version: ApiVersion) -> Result<Option<Signed>, SourceError>;
    /// The CRL of the root CA, DER.
    fn root_ca_crl(&self) -> Result<Option<Vec<u8>>, SourceError>;
    /// The PCK certificates of every TCB level of a platform (PCS's `pckcerts`). Sources without
    /// them have none.
    fn pck_certs(&self, _query: &PckCertsQuery) -> Result<Option<PckCerts>, SourceError> {
        Ok(None)
    }
    /// The PCK certificates of every TCB level of a multi-package platform named by its platform
    /// manifest (PCS's `POST pckcerts`). Sources without them have none.
    fn pck_certs_by_manifest(
        &self,
        _query: &PckCertsManifestQuery,
    ) -> Result<Option<PckCerts>, SourceError> {
        Ok(None)
    }
    /// Which of the source's CRLs `uri` locates (a CRL distribution point of certificates it
    /// serves, or of Intel's); `None` for any other URI, which is never fetched.
    fn crl_location(&self, _uri: &str) -> Option<CrlKind> {
        None
    }
    /// Makes cached collateral be fetched again at its next request (the admin `refresh` route);
    /// returns how many documents that concerns. Sources without a cache have nothing to do.
    fn refresh(&self) -> Result<usize, SourceError> {
        Ok(0)
    }
}

/// A simulated platform's collateral.
#[derive(Debug)]
pub struct SimSource {
    platform: Arc<SimPlatform>,
    options: CollateralOptions,
    pck: Result<PckCert, String>,
    crls: sgx_sim::CrlLocations,
    pck_certs: OnceLock<Vec<LevelCert>>,
    v3: CollateralCache,
    v4: CollateralCache,
}

impl SimSource {
    /// Serves `platform` with the default collateral options (the TCB status chosen at init).
    pub fn new(platform: Arc<SimPlatform>) -> Self {
        Self::with_options(platform, CollateralOptions::default())
    }

    /// Serves `platform` with `options` (its TCB info version is set per API version).
    pub fn with_options(platform: Arc<SimPlatform>, options: CollateralOptions) -> Self {
        let pck = PckCert::from_chain_pem(platform.pck_cert_chain()).map_err(|e| e.to_string());
        let crls = platform.crl_distribution_points();
        if crls.root_ca_crl.is_none() {
            tracing::warn!(
                state_dir = %platform.state_dir().display(),
                "the simulated platform's certificates name no CRL distribution points (made \
                 before they did): it is served as it is, without crl?uri= answers; a platform \
                 made by `confcom sim init` now (new state and CA directory) has them"
            );
        }
        let v3 = CollateralOptions {
            tcb_info_version: 2,
            ..options.clone()
        };
        let v4 = CollateralOptions {
            tcb_info_version: 3,
            ..options.clone()
        };
        Self {
            pck,
            crls,
            pck_certs: OnceLock::new(),
            v3: CollateralCache::new(Arc::clone(&platform), v3),
            v4: CollateralCache::new(Arc::clone(&platform), v4),
            platform,
            options,
        }
    }

    fn pck(&self) -> Result<&PckCert, SourceError> {
        self.pck.as_ref().map_err(|reason| SourceError::Corrupt {
            what: "the simulated PCK certificate",
            reason: reason.clone(),
        })
    }

    fn cache(&self, version: ApiVersion) -> &CollateralCache {
        match version {
            ApiVersion::V3 => &self.v3,
            ApiVersion::V4 => &self.v4,
        }
    }

    fn signed(
        &self,
        version: ApiVersion,
        body: &str,
        chain: fn(&sgx_sim::Collateral) -> &String,
    ) -> Result<Option<Signed>, SourceError> {
        let collateral = self.cache(version).get()?;
        Ok(collateral.file(body).map(|bytes| Signed {
            body: bytes.to_vec(),
            issuer_chain: chain(&collateral).clone(),
        }))
    }
}

impl CollateralSource for SimSource {
    fn pck_cert(&self, query: &PckCertQuery) -> Result<Option<PckCert>, SourceError> {
        let pck = self.pck()?;
        // One platform: every QE id of it gets its one certificate, another PCE does not.
        Ok((query.pce_id == pck.pce_id).then(|| pck.clone()))
    }

    fn pck_crl(&self, ca: CaType) -> Result<Option<Crl>, SourceError> {
        if ca != self.pck()?.ca {
            return Ok(None);
        }
        let collateral = self.v4.get()?;
        Ok(Some(Crl {
            der: collateral.pck_crl.clone(),
            issuer_chain: collateral.pck_crl_issuer_chain.clone(),
        }))
    }

    fn tcb_info(
        &self,
        version: ApiVersion,
        fmspc: &[u8; 6],
    ) -> Result<Option<Signed>, SourceError> {
        if *fmspc != self.pck()?.fmspc {
            return Ok(None);
        }
        self.signed(version, files::TCB_INFO, |c| &c.tcb_info_issuer_chain)
    }

    fn qe_identity(&self, version: ApiVersion) -> Result<Option<Signed>, SourceError> {
        self.signed(version, files::QE_IDENTITY, |c| &c.qe_identity_issuer_chain)
    }

    fn qve_identity(&self, _version: ApiVersion) -> Result<Option<Signed>, SourceError> {
        // The simulated platform has no QvE.
        Ok(None)
    }

    fn root_ca_crl(&self) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(Some(self.v4.get()?.root_ca_crl.clone()))
    }

    fn pck_certs(&self, query: &PckCertsQuery) -> Result<Option<PckCerts>, SourceError> {
        let pck = self.pck()?;
        if query.pce_id != pck.pce_id {
            return Ok(None);
        }
        let certs = match self.pck_certs.get() {
            Some(certs) => certs.clone(),
            None => {
                let issued: Vec<LevelCert> = self
                    .platform
                    .pck_certs(&self.options)?
                    .into_iter()
                    .map(|level| {
                        let mut tcbm = [0u8; 18];
                        tcbm[..16].copy_from_slice(&level.cpu_svn);
                        tcbm[16..].copy_from_slice(&level.pce_svn.to_le_bytes());
                        LevelCert {
                            components: level.components,
                            pce_svn: level.pce_svn,
                            tcbm,
                            cert_pem: Some(level.cert_pem),
                        }
                    })
                    .collect();
                // Two first requests at once both issue; the first set stays.
                self.pck_certs.get_or_init(|| issued).clone()
            }
        };
        Ok(Some(PckCerts {
            certs,
            issuer_chain: pck.issuer_chain.clone(),
            fmspc: pck.fmspc,
            ca: pck.ca,
        }))
    }

    /// A simulated platform has no platform manifest: any well-formed manifest sent with the
    /// platform's PCE id names it (a manifest is opaque to all but Intel), and is answered as
    /// `GET pckcerts` is.
    fn pck_certs_by_manifest(
        &self,
        query: &PckCertsManifestQuery,
    ) -> Result<Option<PckCerts>, SourceError> {
        self.pck_certs(&PckCertsQuery {
            encrypted_ppid: Vec::new(),
            pce_id: query.pce_id,
        })
    }

    fn crl_location(&self, uri: &str) -> Option<CrlKind> {
        if self.crls.root_ca_crl.as_deref() == Some(uri) {
            Some(CrlKind::Root)
        } else if self.crls.pck_crl.as_deref() == Some(uri) {
            self.pck.as_ref().ok().map(|p| CrlKind::Pck(p.ca))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intel_crl_locations_are_those_intels_pccs_accepts() {
        for (uri, kind) in [
            (
                "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der",
                Some(CrlKind::Root),
            ),
            (
                "https://certificates.trustedservices.intel.com/IntelSGXRootCA.crl",
                Some(CrlKind::Root),
            ),
            (
                "https://certprx.adsdcsp.com/IntelSGXRootCA.der",
                Some(CrlKind::Root),
            ),
            (
                "https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=processor&encoding=der",
                Some(CrlKind::Pck(CaType::Processor)),
            ),
            (
                "https://sbx.api.trustedservices.intel.com/sgx/certification/v3/pckcrl?ca=platform",
                Some(CrlKind::Pck(CaType::Platform)),
            ),
            (
                "https://x1.az.sgxprod.adsdcsp.com/sgx/certification/v4/pckcrl?ca=PROCESSOR",
                Some(CrlKind::Pck(CaType::Processor)),
            ),
            // Not Intel's, or not a CRL of Intel's.
            (
                "http://certificates.trustedservices.intel.com/IntelSGXRootCA.der",
                None,
            ),
            (
                "https://certificates.trustedservices.intel.com.evil.example/IntelSGXRootCA.der",
                None,
            ),
            (
                "https://evil.example/certificates.trustedservices.intel.com/IntelSGXRootCA.der",
                None,
            ),
            (
                "https://a.b.certificates.trustedservices.intel.com/IntelSGXRootCA.der",
                None,
            ),
            (
                "https://certificates.trustedservices.intel.com/other.der",
                None,
            ),
            (
                "https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl",
                None,
            ),
            (
                "https://api.trustedservices.intel.com/sgx/certification/v0/pckcrl?ca=processor",
                None,
            ),
            (
                "https://api.trustedservices.intel.com/sgx/certification/v4/tcb?ca=processor",
                None,
            ),
            (
                "https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=other",
                None,
            ),
            ("https://169.254.169.254/latest/meta-data/", None),
        ] {
            assert_eq!(intel_crl_location(uri), kind, "{uri}");
        }
    }
}

/// Largest file an offline directory may hold for one document.
const MAX_FILE: u64 = 1 << 20;

/// An offline directory of collateral: `tcb_info.json`, `qe_identity.json`, `pck_crl.der`,
/// `root_ca_crl.der`, the three `*_issuer_chain.pem`, and optionally `qve_identity.json` and
/// `pck_cert_chain.pem` (leaf ‖ PCK CA ‖ root).
#[derive(Clone, Debug)]
pub struct DirSource {
    dir: PathBuf,
}

/// The optional file of a [`DirSource`] with the platform's PCK certificate chain.
pub const PCK_CERT_CHAIN_FILE: &str = "pck_cert_chain.pem";
/// The optional file of a [`DirSource`] with the QvE identity.
pub const QVE_IDENTITY_FILE: &str = "qve_identity.json";

impl DirSource {
    /// Serves the files of `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A file's bytes; `None` when it does not exist.
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let path = self.dir.join(name);
        let error = |reason: String| SourceError::Read {
            path: path.clone(),
            reason,
        };
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(error(e.to_string())),
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_FILE + 1), &mut bytes)
            .map_err(|e| error(e.to_string()))?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(error(format!("larger than {MAX_FILE} bytes")));
        }
        Ok(Some(bytes))
    }

    fn text(&self, name: &str) -> Result<Option<String>, SourceError> {
        self.read(name)?
            .map(|bytes| {
                String::from_utf8(bytes).map_err(|e| SourceError::Read {
                    path: self.dir.join(name),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    fn signed(&self, body: &str, chain: &str) -> Result<Option<Signed>, SourceError> {
        let (Some(body), Some(issuer_chain)) = (self.read(body)?, self.text(chain)?) else {
            return Ok(None);
        };
        Ok(Some(Signed { body, issuer_chain }))
    }
}

/// The `version` and `fmspc` of a TCB info document (`{"tcbInfo":{…},"signature":…}`).
fn tcb_info_facts(body: &[u8]) -> Result<(u64, String), SourceError> {
    let corrupt = |reason: String| SourceError::Corrupt {
        what: "tcb_info.json",
        reason,
    };
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| corrupt(e.to_string()))?;
    let info = &doc["tcbInfo"];
    let version = info["version"]
        .as_u64()
        .ok_or_else(|| corrupt("no tcbInfo.version".into()))?;
    let fmspc = info["fmspc"]
        .as_str()
        .ok_or_else(|| corrupt("no tcbInfo.fmspc".into()))?;
    Ok((version, fmspc.to_owned()))
}

/// Which CA issued a CRL, from the subject of the first certificate of its issuer chain.
fn crl_ca(chain: &str) -> Result<CaType, SourceError> {
    let certs = parse_pem_chain(chain.as_bytes()).map_err(|e| SourceError::Corrupt {
        what: "pck_crl_issuer_chain.pem",
        reason: e.to_string(),
    })?;
    let subject = certs
        .first()
        .map(|c| c.tbs_certificate().subject().to_string())
        .unwrap_or_default();
    Ok(if subject.contains("Platform CA") {
        CaType::Platform
    } else {
        CaType::Processor
    })
}

impl CollateralSource for DirSource {
    fn pck_cert(&self, query: &PckCertQuery) -> Result<Option<PckCert>, SourceError> {
        let Some(pem) = self.read(PCK_CERT_CHAIN_FILE)? else {
            return Ok(None);
        };
        let pck = PckCert::from_chain_pem(&pem)?;
        Ok((query.pce_id == pck.pce_id).then_some(pck))
    }

    fn pck_crl(&self, ca: CaType) -> Result<Option<Crl>, SourceError> {
        let (Some(der), Some(issuer_chain)) = (
            self.read(files::PCK_CRL)?,
            self.text(files::PCK_CRL_ISSUER_CHAIN)?,
        ) else {
            return Ok(None);
        };
        if crl_ca(&issuer_chain)? != ca {
            return Ok(None);
        }
        Ok(Some(Crl { der, issuer_chain }))
    }

    fn tcb_info(
        &self,
        version: ApiVersion,
        fmspc: &[u8; 6],
    ) -> Result<Option<Signed>, SourceError> {
        let Some(signed) = self.signed(files::TCB_INFO, files::TCB_INFO_ISSUER_CHAIN)? else {
            return Ok(None);
        };
        let (tcb_info_version, served_fmspc) = tcb_info_facts(&signed.body)?;
        // API v3 carries TCB info v2, API v4 TCB info v3.
        let wanted = match version {
            ApiVersion::V3 => 2,
            ApiVersion::V4 => 3,
        };
        let same_fmspc = served_fmspc.eq_ignore_ascii_case(&hex::encode(fmspc));
        Ok((same_fmspc && tcb_info_version == wanted).then_some(signed))
    }

    fn qe_identity(&self, _version: ApiVersion) -> Result<Option<Signed>, SourceError> {
        self.signed(files::QE_IDENTITY, files::QE_IDENTITY_ISSUER_CHAIN)
    }

    fn qve_identity(&self, _version: ApiVersion) -> Result<Option<Signed>, SourceError> {
        // The QvE identity has the QE identity's signer.
        self.signed(QVE_IDENTITY_FILE, files::QE_IDENTITY_ISSUER_CHAIN)
    }

    fn root_ca_crl(&self) -> Result<Option<Vec<u8>>, SourceError> {
        self.read(files::ROOT_CA_CRL)
    }

    fn crl_location(&self, uri: &str) -> Option<CrlKind> {
        // The distribution points of the certificates it serves, read as the files are.
        [
            PCK_CERT_CHAIN_FILE,
            files::PCK_CRL_ISSUER_CHAIN,
            files::TCB_INFO_ISSUER_CHAIN,
        ]
        .iter()
        .filter_map(|name| self.read(name).ok().flatten())
        .find_map(|pem| {
            chain_crl_locations(&pem)
                .into_iter()
                .find_map(|(u, kind)| (u == uri).then_some(kind))
        })
    }
}

//! Where collateral comes from: the [`CollateralSource`] trait and its sources.
//!
//! - [`SimSource`]: a simulated platform (`confcom sim init` state). Its collateral is issued on
//!   demand and reused for an hour ([`sgx_sim::CollateralCache`]); API v3 serves TCB info v2, API
//!   v4 TCB info v3, as Intel's PCS does.
//! - [`DirSource`]: an offline directory in the layout `confcom sim collateral --out` writes and
//!   `confcom verify --collateral DIR` reads, plus an optional `pck_cert_chain.pem`. Files are read
//!   on every request, so the directory can be replaced under a running server.

use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// Makes cached collateral be fetched again at its next request (the admin `refresh` route);
    /// returns how many documents that concerns. Sources without a cache have nothing to do.
    fn refresh(&self) -> Result<usize, SourceError> {
        Ok(0)
    }
}

/// A simulated platform's collateral.
#[derive(Debug)]
pub struct SimSource {
    pck: Result<PckCert, String>,
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
        let v3 = CollateralOptions {
            tcb_info_version: 2,
            ..options.clone()
        };
        let v4 = CollateralOptions {
            tcb_info_version: 3,
            ..options
        };
        Self {
            pck,
            v3: CollateralCache::new(Arc::clone(&platform), v3),
            v4: CollateralCache::new(platform, v4),
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
}

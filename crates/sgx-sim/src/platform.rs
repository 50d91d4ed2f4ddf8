//! The simulated platform: state directory, simulated QE3 and quote generation.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};
use sgx_types::pck::{PckExtension, PckTcb};
use sgx_types::quote::{ATT_KEY_TYPE_ECDSA_P256, INTEL_QE_VENDOR_ID, SIGNED_LEN};
use sgx_types::structs::{Attributes, INTEL_QE3_MRSIGNER, Report, ReportBody, TargetInfo, Wire};

use crate::collateral::{self, Collateral, CollateralOptions, PlatformTcb, TcbStatus};
use crate::cpu::{self, EnclaveIdentity, ReportMac, SimCpu, digest};
use crate::error::SimError;
use crate::fsutil::{self, PUBLIC_MODE, SECRET_MODE, hex_field};
use crate::pki::{self, CaSet, Pki};

/// The platform description, written last by `init` (its presence marks an initialised state dir).
pub const PLATFORM_FILE: &str = "platform.json";
/// The attestation key and its PCK-signed QE report.
pub const ATTESTATION_KEY_FILE: &str = "attestation-key.json";
const PLATFORM_FORMAT: &str = "confcom-sgx-sim-platform";
const ATT_KEY_FORMAT: &str = "confcom-sgx-sim-attestation-key";

/// QE authentication data: 32 bytes `00 01 … 1f`, as Intel's reference QE uses.
pub const QE_AUTH_DATA: [u8; 32] = {
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = i as u8;
        i += 1;
    }
    out
};

/// How to create a platform (ignored when the state directory already holds one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOptions {
    /// Create the platform under the cluster sim CA in this directory (root CA, PCK Processor CA and
    /// TCB signer, certificates and keys), creating them there first when the directory holds none.
    /// Every platform under one CA directory shares the root (one trust anchor for verifiers) and
    /// the PCK CA (collateral of any node verifies quotes of every node). `None`: a CA of its own.
    pub ca_dir: Option<PathBuf>,
    /// The TCB status collateral reports when [`CollateralOptions::tcb_status`] is `None`.
    pub tcb_status: TcbStatus,
    /// FMSPC of the PCK certificate and TCB info.
    pub fmspc: [u8; 6],
    /// SGX TCB component SVNs (also the platform CPUSVN).
    pub tcb_components: [u8; 16],
    /// PCE ISVSVN in the PCK certificate and the quote header.
    pub pce_svn: u16,
    /// ISVSVN of the simulated QE3.
    pub qe_isv_svn: u16,
    /// Where the certificates of a new CA set say their CRLs are (`http(s)://host[:port]`; the root
    /// CA CRL at [`crate::ROOT_CA_CRL_PATH`], the PCK CA CRL at [`crate::PCK_CRL_PATH`] under it).
    /// `None`: [`crate::DEFAULT_CRL_BASE_URL`]. An existing CA directory keeps the URLs its
    /// certificates name; PCK certificates take theirs from the PCK CA.
    pub crl_base_url: Option<String>,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            ca_dir: None,
            tcb_status: TcbStatus::UpToDate,
            fmspc: [0x00, 0x90, 0x6E, 0xA1, 0x00, 0x00],
            tcb_components: [14, 14, 3, 3, 255, 255, 1, 0, 13, 0, 0, 0, 0, 0, 0, 0],
            pce_svn: 13,
            qe_isv_svn: 8,
            crl_base_url: None,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct PlatformFile {
    format: String,
    version: u32,
    fmspc: String,
    pce_id: String,
    ppid: String,
    tcb_components: String,
    pce_svn: u16,
    qe_isv_svn: u16,
    qe_id: String,
    tcb_status: String,
}

#[derive(Serialize, Deserialize)]
struct AttKeyFile {
    format: String,
    version: u32,
    pkcs8: String,
    qe_report: String,
    qe_report_signature: String,
}

/// The simulated QE3's identity: Intel's QE3 MRSIGNER and product id, a sim MRENCLAVE, non-debug.
fn qe_identity(isv_svn: u16) -> EnclaveIdentity {
    EnclaveIdentity {
        mr_enclave: digest(b"confcom simulated SGX QE3"),
        mr_signer: INTEL_QE3_MRSIGNER,
        isv_prod_id: 1,
        isv_svn,
        attributes: Attributes {
            flags: Attributes::INITTED | Attributes::MODE64BIT | Attributes::PROVISION_KEY,
            xfrm: 0xe7,
        },
        ..EnclaveIdentity::default()
    }
}

/// Where a platform's CRLs are, as its certificates name them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrlLocations {
    /// The root certificate's CRL distribution point (the root CA CRL).
    pub root_ca_crl: Option<String>,
    /// The PCK certificate's CRL distribution point (the PCK CA CRL).
    pub pck_crl: Option<String>,
}

/// A PCK certificate of one TCB level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelPckCert {
    /// The level's SGX TCB component SVNs.
    pub components: [u8; 16],
    /// The level's PCESVN.
    pub pce_svn: u16,
    /// The CPUSVN the certificate was issued for (on the simulated platform, the components).
    pub cpu_svn: [u8; 16],
    /// The certificate, PEM.
    pub cert_pem: String,
}

/// The attestation key with everything of a quote that does not depend on the app's report.
struct QuotingKey {
    key: EcdsaKeyPair,
    pub_key_id: [u8; 32],
    header: [u8; 48],
    /// Attestation key ‖ QE report ‖ QE report signature ‖ auth data ‖ certification data.
    tail: Vec<u8>,
    quote_size: u32,
}

/// A simulated SGX platform persisted in a state directory. `Send + Sync`; share it in an `Arc`.
pub struct SimPlatform {
    state_dir: PathBuf,
    cpu: SimCpu,
    qe: EnclaveIdentity,
    qe_target: TargetInfo,
    qe_mac: ReportMac,
    qe_id: [u8; 16],
    pki: Pki,
    pck_ext: PckExtension,
    tcb_status: TcbStatus,
    cert_data: Vec<u8>,
    quoting: OnceLock<QuotingKey>,
    init_lock: Mutex<()>,
    rng: SystemRandom,
}

impl std::fmt::Debug for SimPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPlatform")
            .field("state_dir", &self.state_dir)
            .field("fmspc", &hex::encode(self.pck_ext.fmspc))
            .field("attestation_key_initialized", &self.quoting.get().is_some())
            .finish_non_exhaustive()
    }
}

impl SimPlatform {
    /// Creates the platform in `state_dir` if absent (PKI, platform secret, QE identity), else loads it.
    pub fn open_or_init(state_dir: &Path, opts: &InitOptions) -> Result<Self, SimError> {
        if state_dir.join(PLATFORM_FILE).exists() {
            return Self::open(state_dir);
        }
        fsutil::ensure_dir(state_dir, 0o700)?;
        let lock = fsutil::lock_dir(state_dir)?;
        // Another process may have finished initialising while this one waited for the lock.
        if !state_dir.join(PLATFORM_FILE).exists() {
            Self::init(state_dir, opts)?;
        }
        drop(lock);
        Self::open(state_dir)
    }

    /// Loads the platform of an initialised state directory.
    pub fn open(state_dir: &Path) -> Result<Self, SimError> {
        let path = state_dir.join(PLATFORM_FILE);
        if !path.exists() {
            return Err(SimError::NotInitialised(state_dir.to_path_buf()));
        }
        let file: PlatformFile = serde_json::from_slice(&fsutil::read_bounded(&path, 64 * 1024)?)
            .map_err(|e| {
            SimError::corrupt(&path, format!("not a platform description: {e}"))
        })?;
        if file.format != PLATFORM_FORMAT || file.version != 1 {
            return Err(SimError::corrupt(
                &path,
                format!(
                    "format {} version {}, expected {PLATFORM_FORMAT} version 1",
                    file.format, file.version
                ),
            ));
        }
        let tcb_status: TcbStatus = file
            .tcb_status
            .parse()
            .map_err(|e| SimError::corrupt(&path, format!("tcb_status: {e}")))?;
        let qe_id = hex_field::<16>(&path, "qe_id", &file.qe_id)?;
        let pki = Pki::load(state_dir)?;
        let pck_ext = pki.pck_extension(state_dir)?;
        let components = hex_field::<16>(&path, "tcb_components", &file.tcb_components)?;
        if pck_ext.tcb.comp_svn != components || pck_ext.tcb.pce_svn != file.pce_svn {
            return Err(SimError::corrupt(
                &path,
                "the TCB does not match the PCK certificate's SGX extension",
            ));
        }
        let cpu_path = state_dir.join(cpu::CPU_FILE);
        let cpu = SimCpu::from_json(&cpu_path, &fsutil::read_bounded(&cpu_path, 64 * 1024)?)?;
        if cpu.cpu_svn() != pck_ext.tcb.cpu_svn {
            return Err(SimError::corrupt(
                &cpu_path,
                "CPUSVN differs from the PCK certificate's",
            ));
        }
        let qe = qe_identity(file.qe_isv_svn);
        let qe_target = qe.target_info();
        let qe_mac = cpu.report_mac(&qe_target, cpu.report_key_id());
        let cert_data = pki.cert_chain_data();
        let platform = Self {
            state_dir: state_dir.to_path_buf(),
            cpu,
            qe,
            qe_target,
            qe_mac,
            qe_id,
            pki,
            pck_ext,
            tcb_status,
            cert_data,
            quoting: OnceLock::new(),
            init_lock: Mutex::new(()),
            rng: SystemRandom::new(),
        };
        if state_dir.join(ATTESTATION_KEY_FILE).exists() {
            match platform.load_quoting_key() {
                Ok(key) => {
                    let _ = platform.quoting.set(key);
                }
                // Like aesmd with a blob that does not verify: the key counts as not initialised and
                // the next `init_attestation_key` replaces it.
                Err(SimError::Corrupt { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(platform)
    }

    fn init(state_dir: &Path, opts: &InitOptions) -> Result<(), SimError> {
        let crl_base = pki::check_crl_base_url(
            opts.crl_base_url
                .as_deref()
                .unwrap_or(pki::DEFAULT_CRL_BASE_URL),
        )?;
        let rng = SystemRandom::new();
        let ca = match &opts.ca_dir {
            Some(dir) => CaSet::load_or_create(dir, &rng, &crl_base)?,
            None => CaSet::generate(&rng, Some(&crl_base))?,
        };
        Self::init_under(state_dir, opts, ca)
    }

    /// Creates the platform's state under the CA set `ca`.
    fn init_under(state_dir: &Path, opts: &InitOptions, ca: CaSet) -> Result<(), SimError> {
        let rng = SystemRandom::new();
        let ppid: [u8; 16] = pki::random(&rng)?;
        let ext = PckExtension {
            ppid,
            tcb: PckTcb {
                comp_svn: opts.tcb_components,
                pce_svn: opts.pce_svn,
                cpu_svn: opts.tcb_components,
            },
            pce_id: [0, 0],
            fmspc: opts.fmspc,
            sgx_type: 0,
            platform_instance_id: None,
            configuration: None,
        };
        let pki = Pki::issue(ca, &ext, &rng)?;
        pki.save(state_dir)?;

        let secret: [u8; 16] = pki::random(&rng)?;
        let key_id: [u8; 32] = pki::random(&rng)?;
        let cpu = SimCpu::new(secret, opts.tcb_components, key_id);
        fsutil::write_atomic(&state_dir.join(cpu::CPU_FILE), &cpu.to_json(), SECRET_MODE)?;
        let mut qe_id_input = b"confcom-sim QE_ID".to_vec();
        qe_id_input.extend_from_slice(&secret);
        let mut qe_id = [0u8; 16];
        qe_id.copy_from_slice(&digest(&qe_id_input)[..16]);

        let file = PlatformFile {
            format: PLATFORM_FORMAT.into(),
            version: 1,
            fmspc: hex::encode(opts.fmspc),
            pce_id: hex::encode([0u8, 0]),
            ppid: hex::encode(ppid),
            tcb_components: hex::encode(opts.tcb_components),
            pce_svn: opts.pce_svn,
            qe_isv_svn: opts.qe_isv_svn,
            qe_id: hex::encode(qe_id),
            tcb_status: opts.tcb_status.name().into(),
        };
        let mut json = serde_json::to_vec_pretty(&file)
            .map_err(|e| SimError::InvalidOption(format!("platform description: {e}")))?;
        json.push(b'\n');
        // Written last: an interrupted init leaves no platform.json and is redone from scratch.
        fsutil::write_atomic(&state_dir.join(PLATFORM_FILE), &json, PUBLIC_MODE)
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The simulated CPU (what `publish_cpu` writes for apps).
    pub fn cpu(&self) -> &SimCpu {
        &self.cpu
    }

    /// The simulated QE3's target info.
    pub fn qe_target_info(&self) -> TargetInfo {
        self.qe_target
    }

    /// The simulated QE3's identity.
    pub fn qe_identity(&self) -> &EnclaveIdentity {
        &self.qe
    }

    /// The SGX extension of the platform's PCK certificate (FMSPC, TCB, PPID, …).
    pub fn pck_extension(&self) -> &PckExtension {
        &self.pck_ext
    }

    /// The sim root certificate (DER): the trust anchor verifiers configure.
    pub fn root_ca_der(&self) -> &[u8] {
        &self.pki.root.der
    }

    /// The type-5 certification data every quote carries: PEM PCK ‖ PCK CA ‖ root ‖ NUL.
    pub fn pck_cert_chain(&self) -> &[u8] {
        &self.cert_data
    }

    /// Where this platform's certificates say their CRLs are: the root CA CRL (the root
    /// certificate's distribution point) and the PCK CA CRL (the PCK certificate's). Both `None`
    /// for a platform made before the simulated PKI named CRL distribution points.
    pub fn crl_distribution_points(&self) -> CrlLocations {
        let first = |der: &[u8]| pki::crl_distribution_points(der).into_iter().next();
        CrlLocations {
            root_ca_crl: first(&self.pki.root.der),
            pck_crl: first(&self.pki.pck.der),
        }
    }

    /// A PCK certificate (PEM) for every TCB level of the TCB info `opts` gives (their order),
    /// as Intel's PCS answers `pckcerts`: the platform's own certificate for its TCB, new ones
    /// (same PPID, FMSPC and PCE id, the level's TCB as CPUSVN and TCB) for the other levels.
    pub fn pck_certs(&self, opts: &CollateralOptions) -> Result<Vec<LevelPckCert>, SimError> {
        let own = &self.pck_ext.tcb;
        let status = opts.tcb_status.unwrap_or(self.tcb_status);
        collateral::level_tcbs(own.comp_svn, own.pce_svn, status)?
            .into_iter()
            .map(|(components, pce_svn)| {
                let cert_pem = if components == own.comp_svn && pce_svn == own.pce_svn {
                    self.pki.pck.pem.clone()
                } else {
                    let ext = PckExtension {
                        tcb: PckTcb {
                            comp_svn: components,
                            pce_svn,
                            cpu_svn: components,
                        },
                        ..self.pck_ext
                    };
                    self.pki.issue_pck(&ext)?
                };
                Ok(LevelPckCert {
                    components,
                    pce_svn,
                    cpu_svn: components,
                    cert_pem,
                })
            })
            .collect()
    }

    /// The TCB status chosen at init, what collateral reports by default.
    pub fn default_tcb_status(&self) -> TcbStatus {
        self.tcb_status
    }

    /// Whether the attestation key exists (`init_attestation_key` ran here or in an earlier process).
    pub fn attestation_key_initialized(&self) -> bool {
        self.quoting.get().is_some()
    }

    /// Creates (first call, persisted atomically) or loads the attestation key and its PCK-signed QE
    /// report; returns pub_key_id = SHA-256(attestation public key ‖ QE auth data). A key file that
    /// does not verify is moved aside (`attestation-key.json.corrupt`) and replaced by a new key.
    pub fn init_attestation_key(&self) -> Result<[u8; 32], SimError> {
        if let Some(k) = self.quoting.get() {
            return Ok(k.pub_key_id);
        }
        let _guard = self.init_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = self.quoting.get() {
            return Ok(k.pub_key_id);
        }
        let path = self.state_dir.join(ATTESTATION_KEY_FILE);
        if path.exists() {
            match self.load_quoting_key() {
                Ok(key) => {
                    let id = key.pub_key_id;
                    let _ = self.quoting.set(key);
                    return Ok(id);
                }
                Err(SimError::Corrupt { .. }) => {
                    // Kept for inspection; another process may have moved it already.
                    let aside = self
                        .state_dir
                        .join(format!("{ATTESTATION_KEY_FILE}.corrupt"));
                    match std::fs::rename(&path, &aside) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(SimError::io("rename", &path, e)),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        if !path.exists() {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.rng)
                .map_err(|_| SimError::Crypto("attestation key generation failed"))?;
            let key = EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8.as_ref(),
                &self.rng,
            )
            .map_err(|_| SimError::Crypto("generated attestation key does not load"))?;
            let qe_report = self.qe_report_body(&pki::raw_public_key(&key)?);
            let signature = self
                .pki
                .pck
                .ring_key()?
                .sign(&self.rng, &qe_report.to_vec())
                .map_err(|_| SimError::Crypto("PCK signing failed"))?;
            let file = AttKeyFile {
                format: ATT_KEY_FORMAT.into(),
                version: 1,
                pkcs8: hex::encode(pkcs8.as_ref()),
                qe_report: hex::encode(qe_report.to_vec()),
                qe_report_signature: hex::encode(signature.as_ref()),
            };
            let json = serde_json::to_vec_pretty(&file)
                .map_err(|e| SimError::InvalidOption(format!("attestation key file: {e}")))?;
            // Another process may create it at the same moment; then its key is the one.
            fsutil::create_atomic(&path, &json, SECRET_MODE)?;
        }
        let key = self.load_quoting_key()?;
        let id = key.pub_key_id;
        let _ = self.quoting.set(key);
        Ok(id)
    }

    fn qe_report_body(&self, attestation_key: &[u8; 64]) -> ReportBody {
        let mut input = Vec::with_capacity(96);
        input.extend_from_slice(attestation_key);
        input.extend_from_slice(&QE_AUTH_DATA);
        let mut report_data = [0u8; 64];
        report_data[..32].copy_from_slice(&digest(&input));
        // The QE report targets the PCE; only its body travels in quotes.
        self.cpu
            .create_report(&self.qe, &TargetInfo::default(), &report_data)
            .body
    }

    fn load_quoting_key(&self) -> Result<QuotingKey, SimError> {
        let path = self.state_dir.join(ATTESTATION_KEY_FILE);
        let file: AttKeyFile = serde_json::from_slice(&fsutil::read_bounded(&path, 64 * 1024)?)
            .map_err(|e| SimError::corrupt(&path, format!("not an attestation key file: {e}")))?;
        if file.format != ATT_KEY_FORMAT || file.version != 1 {
            return Err(SimError::corrupt(&path, "unknown format or version"));
        }
        let pkcs8 = hex::decode(&file.pkcs8)
            .map_err(|e| SimError::corrupt(&path, format!("pkcs8: not hex: {e}")))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &self.rng)
            .map_err(|_| SimError::corrupt(&path, "pkcs8: not an ECDSA P-256 key"))?;
        let qe_report_bytes = hex_field::<384>(&path, "qe_report", &file.qe_report)?;
        let qe_report_signature =
            hex_field::<64>(&path, "qe_report_signature", &file.qe_report_signature)?;
        let qe_report = ReportBody::parse(&qe_report_bytes)
            .map_err(|e| SimError::corrupt(&path, e.to_string()))?;
        let attestation_key = pki::raw_public_key(&key)?;
        if qe_report != self.qe_report_body(&attestation_key) {
            return Err(SimError::corrupt(
                &path,
                "the QE report does not certify this attestation key on this platform",
            ));
        }
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.pki.pck.key.public_key_raw())
            .verify(&qe_report_bytes, &qe_report_signature)
            .map_err(|_| SimError::corrupt(&path, "the QE report signature is not the PCK's"))?;

        let mut id_input = Vec::with_capacity(96);
        id_input.extend_from_slice(&attestation_key);
        id_input.extend_from_slice(&QE_AUTH_DATA);
        let pub_key_id = digest(&id_input);

        let mut header = Vec::with_capacity(48);
        header.extend_from_slice(&3u16.to_le_bytes());
        header.extend_from_slice(&ATT_KEY_TYPE_ECDSA_P256.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&self.qe.isv_svn.to_le_bytes());
        header.extend_from_slice(&self.pck_ext.tcb.pce_svn.to_le_bytes());
        header.extend_from_slice(&INTEL_QE_VENDOR_ID);
        header.extend_from_slice(&self.qe_id);
        header.extend_from_slice(&[0u8; 4]);
        let header: [u8; 48] = header
            .try_into()
            .map_err(|_| SimError::Crypto("quote header is not 48 bytes"))?;

        let mut tail = Vec::with_capacity(64 + 384 + 64 + 2 + 32 + 6 + self.cert_data.len());
        tail.extend_from_slice(&attestation_key);
        tail.extend_from_slice(&qe_report_bytes);
        tail.extend_from_slice(&qe_report_signature);
        tail.extend_from_slice(&(QE_AUTH_DATA.len() as u16).to_le_bytes());
        tail.extend_from_slice(&QE_AUTH_DATA);
        tail.extend_from_slice(&5u16.to_le_bytes());
        let cert_len = u32::try_from(self.cert_data.len())
            .map_err(|_| SimError::Pki("certification data too large".into()))?;
        tail.extend_from_slice(&cert_len.to_le_bytes());
        tail.extend_from_slice(&self.cert_data);
        let quote_size = u32::try_from(SIGNED_LEN + 4 + 64 + tail.len())
            .map_err(|_| SimError::Pki("quote too large".into()))?;
        Ok(QuotingKey {
            key,
            pub_key_id,
            header,
            tail,
            quote_size,
        })
    }

    /// Size of every quote of this platform (1052 + the certification data length).
    pub fn quote_size(&self) -> Result<u32, SimError> {
        self.quoting
            .get()
            .map(|k| k.quote_size)
            .ok_or(SimError::AttKeyNotInitialized)
    }

    /// Verifies the report's MAC (it must be MACed for the QE's target info by the simulated CPU) and
    /// returns the v3 quote (exactly `quote_size` bytes). One ECDSA signature, nothing else expensive.
    pub fn quote(&self, app_report: &Report) -> Result<Vec<u8>, SimError> {
        let k = self.quoting.get().ok_or(SimError::AttKeyNotInitialized)?;
        let mac_ok = if app_report.key_id == *self.qe_mac.key_id() {
            self.qe_mac.verify(app_report)
        } else {
            self.cpu.verify_report(app_report, &self.qe_target)
        };
        if !mac_ok {
            return Err(SimError::InvalidReport);
        }
        let mut quote = Vec::with_capacity(k.quote_size as usize);
        quote.extend_from_slice(&k.header);
        app_report.body.write(&mut quote);
        let signature = k
            .key
            .sign(&self.rng, &quote[..SIGNED_LEN])
            .map_err(|_| SimError::Crypto("attestation key signing failed"))?;
        let sig_data_len = (64 + k.tail.len()) as u32;
        quote.extend_from_slice(&sig_data_len.to_le_bytes());
        quote.extend_from_slice(signature.as_ref());
        quote.extend_from_slice(&k.tail);
        Ok(quote)
    }

    /// The QE report for the app: report_data = SHA-256(nonce ‖ quote) ‖ 0^32, MACed for `app_target`.
    pub fn qe_report_for_app(
        &self,
        quote: &[u8],
        nonce: &[u8; 16],
        app_target: &TargetInfo,
    ) -> Report {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(nonce);
        ctx.update(quote);
        let mut report_data = [0u8; 64];
        report_data[..32].copy_from_slice(ctx.finish().as_ref());
        self.cpu.create_report(&self.qe, app_target, &report_data)
    }

    /// Writes what apps need to create simulated reports into `dir` (`cpu.json` and the QE's target
    /// info `qe_target_info.bin`), world-readable. Never the PKI keys.
    pub fn publish_cpu(&self, dir: &Path) -> Result<(), SimError> {
        fsutil::ensure_dir(dir, 0o755)?;
        fsutil::write_atomic(
            &dir.join(cpu::QE_TARGET_INFO_FILE),
            &self.qe_target.to_vec(),
            PUBLIC_MODE,
        )?;
        fsutil::write_atomic(&dir.join(cpu::CPU_FILE), &self.cpu.to_json(), PUBLIC_MODE)
    }

    /// Signed collateral for this platform: TCB info, QE identity, CRLs and issuer chains.
    pub fn collateral(&self, opts: &CollateralOptions) -> Result<Collateral, SimError> {
        collateral::build(
            &self.pki,
            &PlatformTcb {
                fmspc: self.pck_ext.fmspc,
                pce_id: self.pck_ext.pce_id,
                components: self.pck_ext.tcb.comp_svn,
                pce_svn: self.pck_ext.tcb.pce_svn,
                qe_isv_svn: self.qe.isv_svn,
                qe_mr_signer: self.qe.mr_signer,
                qe_isv_prod_id: self.qe.isv_prod_id,
            },
            self.tcb_status,
            opts,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A platform made before the simulated PKI named CRL distribution points is used as it is:
    /// it opens, quotes verify under its collateral, and it names no CRL locations.
    #[test]
    fn a_platform_without_crl_distribution_points_is_used_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let rng = SystemRandom::new();
        let ca = CaSet::generate(&rng, None).unwrap();
        SimPlatform::init_under(dir.path(), &InitOptions::default(), ca).unwrap();
        let p = SimPlatform::open(dir.path()).unwrap();
        assert_eq!(p.crl_distribution_points(), CrlLocations::default());
        assert!(pki::crl_distribution_points(&p.pki.pck.der).is_empty());
        p.init_attestation_key().unwrap();
        let report =
            p.cpu()
                .create_report(&EnclaveIdentity::default(), &p.qe_target_info(), &[1; 64]);
        assert!(p.quote(&report).is_ok());
        // Its other TCB levels' certificates have none either.
        let certs = p.pck_certs(&CollateralOptions::default()).unwrap();
        assert!(certs.len() > 1);
        assert!(certs.iter().all(|c| !c.cert_pem.contains("pckcrl")));
    }
}

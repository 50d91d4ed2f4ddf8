//! The simulated PKI, shaped like Intel's: Root CA → PCK Processor CA → PCK certificate (with the SGX
//! extension), a TCB Signing certificate issued directly by the root, and CRLs for both CAs.
//!
//! Names say "Simulated" and never claim Intel; they contain the substrings Intel's QVL looks for ("SGX
//! Root CA", "CA", "SGX PCK Certificate", "SGX TCB Signing").

use std::path::Path;

use der::{Decode, DecodePem, Encode};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    CustomExtension, DistinguishedName, DnType, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, RevocationReason, RevokedCertParams, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use sgx_types::pck::PckExtension;
use time::{Duration, OffsetDateTime};
use x509_cert::Certificate;
use x509_cert::ext::pkix::CrlDistributionPoints;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};

use crate::error::SimError;
use crate::fsutil::{self, PUBLIC_MODE, SECRET_MODE};

pub(crate) const ORGANIZATION: &str = "confcom";
pub(crate) const ROOT_CN: &str = "confcom Simulated SGX Root CA";
pub(crate) const PCK_CA_CN: &str = "confcom Simulated SGX PCK Processor CA";
pub(crate) const PCK_CN: &str = "confcom Simulated SGX PCK Certificate";
pub(crate) const TCB_CN: &str = "confcom Simulated SGX TCB Signing";

/// Root certificate and key file names, in a CA directory and in a state directory.
pub const ROOT_CERT_FILE: &str = "root-ca.pem";
pub const ROOT_CERT_DER_FILE: &str = "root-ca.der";
pub const ROOT_KEY_FILE: &str = "root-ca.key";
pub(crate) const PCK_CA_CERT_FILE: &str = "pck-ca.pem";
pub(crate) const PCK_CA_KEY_FILE: &str = "pck-ca.key";
pub(crate) const PCK_CERT_FILE: &str = "pck.pem";
pub(crate) const PCK_KEY_FILE: &str = "pck.key";
pub(crate) const TCB_CERT_FILE: &str = "tcb-signing.pem";
pub(crate) const TCB_KEY_FILE: &str = "tcb-signing.key";

/// Where the simulated certificates say their CRLs are, unless `sim init --crl-base-url` says
/// otherwise: the in-cluster PCCS as `confcom addon render` deploys it (the `sgx-pccs` Service in
/// the add-on's default namespace `kube-system`, port 8081, plain HTTP unless rendered with TLS).
pub const DEFAULT_CRL_BASE_URL: &str = "http://sgx-pccs.kube-system.svc:8081";
/// The path (under a CRL base URL) of the root CA CRL, DER: the CRL distribution point of the
/// root, the PCK CA and the TCB signer, as Intel's root CA CRL location is of Intel's.
pub const ROOT_CA_CRL_PATH: &str = "/sgx/certification/v4/rootcacrl?encoding=der";
/// The path (under a CRL base URL) of the PCK Processor CA's CRL, DER: the CRL distribution point
/// of PCK certificates, in the form of Intel's (`…/sgx/certification/v4/pckcrl?ca=processor&encoding=der`).
pub const PCK_CRL_PATH: &str = "/sgx/certification/v4/pckcrl?ca=processor&encoding=der";

/// The root CA CRL's location under `base`.
pub fn root_ca_crl_url(base: &str) -> String {
    format!("{}{ROOT_CA_CRL_PATH}", base.trim_end_matches('/'))
}

/// The PCK CA CRL's location under `base`.
pub fn pck_crl_url(base: &str) -> String {
    format!("{}{PCK_CRL_PATH}", base.trim_end_matches('/'))
}

/// Checks a CRL base URL: `http://` or `https://`, a host, no query or fragment; returns it
/// without a trailing `/`.
pub fn check_crl_base_url(url: &str) -> Result<String, SimError> {
    let trimmed = url.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    let valid = rest.is_some_and(|r| {
        !r.is_empty()
            && !r.starts_with('/')
            && !r.contains(['?', '#'])
            && r.chars().all(|c| c.is_ascii_graphic())
    });
    if !valid {
        return Err(SimError::InvalidOption(format!(
            "CRL base URL {url:?}: an http:// or https:// URL without query (e.g. {DEFAULT_CRL_BASE_URL})"
        )));
    }
    Ok(trimmed.to_owned())
}

/// The URIs of a certificate's CRL distribution points (DER certificate; none when it has no such
/// extension or does not decode).
pub fn crl_distribution_points(cert_der: &[u8]) -> Vec<String> {
    let Ok(cert) = Certificate::from_der(cert_der) else {
        return Vec::new();
    };
    let Ok(Some((_, points))) = cert
        .tbs_certificate()
        .get_extension::<CrlDistributionPoints>()
    else {
        return Vec::new();
    };
    points
        .0
        .iter()
        .filter_map(|p| match &p.distribution_point {
            Some(DistributionPointName::FullName(names)) => Some(names),
            _ => None,
        })
        .flatten()
        .filter_map(|name| match name {
            GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
            _ => None,
        })
        .collect()
}

/// The CRL base URL a CA certificate of this PKI names (its distribution point minus
/// [`ROOT_CA_CRL_PATH`]); `None` for certificates made before CRL distribution points.
fn crl_base_of(ca_der: &[u8]) -> Option<String> {
    crl_distribution_points(ca_der)
        .iter()
        .find_map(|uri| uri.strip_suffix(ROOT_CA_CRL_PATH).map(str::to_owned))
}

fn distribution_point(uri: String) -> Vec<CrlDistributionPoint> {
    vec![CrlDistributionPoint { uris: vec![uri] }]
}

const SGX_EXTENSION_ARCS: [u64; 7] = [1, 2, 840, 113741, 1, 13, 1];
const MAX_PEM: u64 = 64 * 1024;

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, ORGANIZATION);
    dn
}

pub(crate) fn random<const N: usize>(rng: &SystemRandom) -> Result<[u8; N], SimError> {
    let mut out = [0u8; N];
    rng.fill(&mut out)
        .map_err(|_| SimError::Crypto("system randomness unavailable"))?;
    Ok(out)
}

/// A positive 16-byte serial number without a leading zero byte.
fn serial(rng: &SystemRandom) -> Result<Vec<u8>, SimError> {
    let mut s: [u8; 16] = random(rng)?;
    s[0] = (s[0] & 0x7f) | 0x01;
    Ok(s.to_vec())
}

fn now_seconds() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

fn ca_params(cn: &str, path_len: u8, years: i64, serial: Vec<u8>) -> CertificateParams {
    let now = now_seconds();
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(365 * years);
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.key_identifier_method = KeyIdMethod::Sha256;
    p.use_authority_key_identifier_extension = true;
    p
}

fn leaf_params(cn: &str, serial: Vec<u8>) -> CertificateParams {
    let now = now_seconds();
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(365 * 7);
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    p.key_identifier_method = KeyIdMethod::Sha256;
    p.use_authority_key_identifier_extension = true;
    p
}

/// The parameters an issuer needs: its name, key usages and key identifier method. They are the
/// same for a freshly made CA and for one loaded from disk, so certificates issued later chain to it.
fn issuer_params(cn: &str) -> CertificateParams {
    let mut p = ca_params(cn, 0, 1, vec![1]);
    p.use_authority_key_identifier_extension = false;
    p
}

/// A certificate with its private key.
pub(crate) struct Certified {
    pub(crate) der: Vec<u8>,
    pub(crate) pem: String,
    pub(crate) key: KeyPair,
}

impl Certified {
    fn new(cert: rcgen::Certificate, key: KeyPair) -> Self {
        Self {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            key,
        }
    }

    /// The key as a ring signer (for raw ECDSA signatures: QE reports, collateral JSON).
    pub(crate) fn ring_key(&self) -> Result<EcdsaKeyPair, SimError> {
        EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            self.key.serialized_der(),
            &SystemRandom::new(),
        )
        .map_err(|_| SimError::Crypto("the key is not an ECDSA P-256 PKCS#8 key"))
    }

    fn save(&self, dir: &Path, cert_file: &str, key_file: &str) -> Result<(), SimError> {
        fsutil::write_atomic(
            &dir.join(key_file),
            self.key.serialize_pem().as_bytes(),
            SECRET_MODE,
        )?;
        fsutil::write_atomic(&dir.join(cert_file), self.pem.as_bytes(), PUBLIC_MODE)
    }

    fn load(dir: &Path, cert_file: &str, key_file: &str, cn: &str) -> Result<Self, SimError> {
        let cert_path = dir.join(cert_file);
        let key_path = dir.join(key_file);
        let pem_bytes = fsutil::read_bounded(&cert_path, MAX_PEM)?;
        let pem = String::from_utf8(pem_bytes)
            .map_err(|_| SimError::corrupt(&cert_path, "not PEM text"))?;
        let cert = Certificate::from_pem(pem.as_bytes())
            .map_err(|e| SimError::corrupt(&cert_path, format!("not a PEM certificate: {e}")))?;
        let der = cert
            .to_der()
            .map_err(|e| SimError::corrupt(&cert_path, format!("cannot re-encode: {e}")))?;
        let subject = cert.tbs_certificate().subject().to_string();
        if !subject.contains(cn) {
            return Err(SimError::corrupt(
                &cert_path,
                format!("subject {subject} is not a \"{cn}\""),
            ));
        }
        let key_pem = String::from_utf8(fsutil::read_bounded(&key_path, MAX_PEM)?)
            .map_err(|_| SimError::corrupt(&key_path, "not PEM text"))?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| SimError::corrupt(&key_path, format!("not a PKCS#8 key: {e}")))?;
        if !key.is_compatible(&PKCS_ECDSA_P256_SHA256) {
            return Err(SimError::corrupt(&key_path, "not an ECDSA P-256 key"));
        }
        let cert_key = cert
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes();
        if cert_key != key.public_key_raw() {
            return Err(SimError::corrupt(
                &key_path,
                format!(
                    "the key does not belong to the certificate {}",
                    cert_path.display()
                ),
            ));
        }
        Ok(Self { der, pem, key })
    }

    fn issuer(&self, cn: &str) -> Issuer<'static, &KeyPair> {
        Issuer::new(issuer_params(cn), &self.key)
    }
}

fn new_key() -> Result<KeyPair, SimError> {
    Ok(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?)
}

/// Checks that `parent` issued `child`: issuer name and signature (so a CA directory or state
/// directory whose files come from different PKIs is refused).
fn check_issued_by(child: &[u8], parent: &[u8], parent_path: &Path) -> Result<(), SimError> {
    let child = Certificate::from_der(child).map_err(|e| SimError::Pki(e.to_string()))?;
    let parent = Certificate::from_der(parent).map_err(|e| SimError::Pki(e.to_string()))?;
    let tbs = child
        .tbs_certificate()
        .to_der()
        .map_err(|e| SimError::Pki(e.to_string()))?;
    let parent_key = parent
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes();
    let signature = child.signature().raw_bytes();
    let signed = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, parent_key)
        .verify(&tbs, signature)
        .is_ok();
    if child.tbs_certificate().issuer() != parent.tbs_certificate().subject() || !signed {
        return Err(SimError::corrupt(
            parent_path,
            format!(
                "{} is not the issuer of {}",
                parent.tbs_certificate().subject(),
                child.tbs_certificate().subject()
            ),
        ));
    }
    Ok(())
}

/// The cluster-wide part of the sim PKI, as kept in a CA directory: the root, the PCK Processor CA
/// and the TCB signer. Every platform created under one CA directory gets its PCK certificate from
/// the same PCK CA, as Intel's platforms do, so collateral of any of them verifies quotes of all.
pub(crate) struct CaSet {
    pub(crate) root: Certified,
    pub(crate) pck_ca: Certified,
    pub(crate) tcb: Certified,
}

/// The files of a CA directory: (certificate, key, expected CN substring).
const CA_FILES: [(&str, &str, &str); 3] = [
    (ROOT_CERT_FILE, ROOT_KEY_FILE, "SGX Root CA"),
    (PCK_CA_CERT_FILE, PCK_CA_KEY_FILE, "CA"),
    (TCB_CERT_FILE, TCB_KEY_FILE, "SGX TCB Signing"),
];

impl CaSet {
    /// A new CA set whose certificates name the root CA CRL under `crl_base` (see
    /// [`check_crl_base_url`]) as their CRL distribution point, as Intel's root, PCK CAs and TCB
    /// signer name Intel's root CA CRL.
    /// `None` makes certificates without them, as the sim PKI was before it named CRLs.
    pub(crate) fn generate(rng: &SystemRandom, crl_base: Option<&str>) -> Result<Self, SimError> {
        let points = || {
            crl_base
                .map(|base| distribution_point(root_ca_crl_url(base)))
                .unwrap_or_default()
        };
        let root_key = new_key()?;
        let mut params = ca_params(ROOT_CN, 1, 30, serial(rng)?);
        params.use_authority_key_identifier_extension = false;
        params.crl_distribution_points = points();
        let root = Certified::new(params.self_signed(&root_key)?, root_key);
        let root_issuer = root.issuer(ROOT_CN);

        let ca_key = new_key()?;
        let mut params = ca_params(PCK_CA_CN, 0, 25, serial(rng)?);
        params.crl_distribution_points = points();
        let ca_cert = params.signed_by(&ca_key, &root_issuer)?;
        let pck_ca = Certified::new(ca_cert, ca_key);

        let tcb_key = new_key()?;
        let mut params = leaf_params(TCB_CN, serial(rng)?);
        params.crl_distribution_points = points();
        let tcb_cert = params.signed_by(&tcb_key, &root_issuer)?;
        let tcb = Certified::new(tcb_cert, tcb_key);
        drop(root_issuer);
        Ok(Self { root, pck_ca, tcb })
    }

    pub(crate) fn load(dir: &Path) -> Result<Self, SimError> {
        let [(rc, rk, rn), (cc, ck, cn), (tc, tk, tn)] = CA_FILES;
        let set = Self {
            root: Certified::load(dir, rc, rk, rn)?,
            pck_ca: Certified::load(dir, cc, ck, cn)?,
            tcb: Certified::load(dir, tc, tk, tn)?,
        };
        let root_path = dir.join(ROOT_CERT_FILE);
        check_issued_by(&set.pck_ca.der, &set.root.der, &root_path)?;
        check_issued_by(&set.tcb.der, &set.root.der, &root_path)?;
        Ok(set)
    }

    /// Writes the set (the root also as DER, the form verifiers take).
    pub(crate) fn save(&self, dir: &Path) -> Result<(), SimError> {
        self.root.save(dir, ROOT_CERT_FILE, ROOT_KEY_FILE)?;
        fsutil::write_atomic(&dir.join(ROOT_CERT_DER_FILE), &self.root.der, PUBLIC_MODE)?;
        self.pck_ca.save(dir, PCK_CA_CERT_FILE, PCK_CA_KEY_FILE)?;
        self.tcb.save(dir, TCB_CERT_FILE, TCB_KEY_FILE)
    }

    /// Loads the CA set of a CA directory, creating it when the directory holds none of its files.
    /// A complete directory is only read, so it may be read-only (a Kubernetes Secret).
    pub(crate) fn load_or_create(
        dir: &Path,
        rng: &SystemRandom,
        crl_base: &str,
    ) -> Result<Self, SimError> {
        let complete = CA_FILES
            .iter()
            .flat_map(|(c, k, _)| [*c, *k])
            .all(|f| dir.join(f).exists());
        if complete {
            return Self::load(dir);
        }
        fsutil::ensure_dir(dir, 0o755)?;
        let _lock = fsutil::lock_dir(dir)?;
        let present: Vec<_> = CA_FILES
            .iter()
            .flat_map(|(c, k, _)| [*c, *k])
            .filter(|f| dir.join(f).exists())
            .collect();
        if present.is_empty() {
            let set = Self::generate(rng, Some(crl_base))?;
            set.save(dir)?;
            return Ok(set);
        }
        if present.len() < CA_FILES.len() * 2 {
            let missing: Vec<_> = CA_FILES
                .iter()
                .flat_map(|(c, k, _)| [*c, *k])
                .filter(|f| !present.contains(f))
                .collect();
            return Err(SimError::corrupt(
                dir,
                format!(
                    "incomplete sim CA directory: {} missing",
                    missing.join(", ")
                ),
            ));
        }
        Self::load(dir)
    }
}

/// The platform's PKI as kept in its state directory.
pub(crate) struct Pki {
    pub(crate) root: Certified,
    pub(crate) pck_ca: Certified,
    pub(crate) pck: Certified,
    pub(crate) tcb: Certified,
}

impl Pki {
    /// Issues the platform's PCK certificate under the CA set.
    pub(crate) fn issue(
        ca: CaSet,
        ext: &PckExtension,
        rng: &SystemRandom,
    ) -> Result<Self, SimError> {
        let pck = issue_pck(&ca.pck_ca, ext, rng)?;
        Ok(Self {
            root: ca.root,
            pck_ca: ca.pck_ca,
            pck,
            tcb: ca.tcb,
        })
    }

    /// Another PCK certificate of the platform, for the TCB in `ext` (what PCS's `pckcerts` holds
    /// for every TCB level); its key is thrown away.
    pub(crate) fn issue_pck(&self, ext: &PckExtension) -> Result<String, SimError> {
        Ok(issue_pck(&self.pck_ca, ext, &SystemRandom::new())?.pem)
    }

    pub(crate) fn save(&self, dir: &Path) -> Result<(), SimError> {
        self.root.save(dir, ROOT_CERT_FILE, ROOT_KEY_FILE)?;
        fsutil::write_atomic(&dir.join(ROOT_CERT_DER_FILE), &self.root.der, PUBLIC_MODE)?;
        self.pck_ca.save(dir, PCK_CA_CERT_FILE, PCK_CA_KEY_FILE)?;
        self.pck.save(dir, PCK_CERT_FILE, PCK_KEY_FILE)?;
        self.tcb.save(dir, TCB_CERT_FILE, TCB_KEY_FILE)
    }

    pub(crate) fn load(dir: &Path) -> Result<Self, SimError> {
        let pki = Self {
            root: Certified::load(dir, ROOT_CERT_FILE, ROOT_KEY_FILE, "SGX Root CA")?,
            pck_ca: Certified::load(dir, PCK_CA_CERT_FILE, PCK_CA_KEY_FILE, "CA")?,
            pck: Certified::load(dir, PCK_CERT_FILE, PCK_KEY_FILE, "SGX PCK Certificate")?,
            tcb: Certified::load(dir, TCB_CERT_FILE, TCB_KEY_FILE, "SGX TCB Signing")?,
        };
        let root_path = dir.join(ROOT_CERT_FILE);
        check_issued_by(&pki.pck_ca.der, &pki.root.der, &root_path)?;
        check_issued_by(&pki.tcb.der, &pki.root.der, &root_path)?;
        check_issued_by(&pki.pck.der, &pki.pck_ca.der, &dir.join(PCK_CA_CERT_FILE))?;
        Ok(pki)
    }

    /// The SGX extension of the PCK certificate.
    pub(crate) fn pck_extension(&self, dir: &Path) -> Result<PckExtension, SimError> {
        let path = dir.join(PCK_CERT_FILE);
        let cert = Certificate::from_der(&self.pck.der)
            .map_err(|e| SimError::corrupt(&path, e.to_string()))?;
        PckExtension::from_certificate(&cert).map_err(|e| SimError::corrupt(&path, e.to_string()))
    }

    /// Type-5 certification data: PEM leaf ‖ PCK CA ‖ root ‖ NUL.
    pub(crate) fn cert_chain_data(&self) -> Vec<u8> {
        let mut out = String::with_capacity(self.pck.pem.len() * 3 + 1);
        out.push_str(&self.pck.pem);
        out.push_str(&self.pck_ca.pem);
        out.push_str(&self.root.pem);
        let mut out = out.into_bytes();
        out.push(0);
        out
    }

    /// A CRL signed by the root (`pck_ca == false`) or by the PCK CA, revoking `revoked` serials.
    pub(crate) fn crl(
        &self,
        pck_ca: bool,
        revoked: &[Vec<u8>],
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
        number: u64,
    ) -> Result<Vec<u8>, SimError> {
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|serial| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(serial),
                    revocation_time: this_update,
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = if pck_ca {
            params.signed_by(&self.pck_ca.issuer(PCK_CA_CN))?
        } else {
            params.signed_by(&self.root.issuer(ROOT_CN))?
        };
        Ok(crl.der().to_vec())
    }

    /// The serial number of the PCK certificate (content octets of the DER INTEGER).
    pub(crate) fn pck_serial(&self) -> Result<Vec<u8>, SimError> {
        let cert =
            Certificate::from_der(&self.pck.der).map_err(|e| SimError::Pki(e.to_string()))?;
        Ok(cert.tbs_certificate().serial_number().as_bytes().to_vec())
    }
}

/// A PCK certificate with the SGX extension `ext` under `pck_ca`, naming the PCK CA's CRL as its
/// distribution point when the CA names a CRL base URL (as Intel's PCK certificates name
/// `…/pckcrl?ca=processor&encoding=der`).
fn issue_pck(
    pck_ca: &Certified,
    ext: &PckExtension,
    rng: &SystemRandom,
) -> Result<Certified, SimError> {
    let mut params = leaf_params(PCK_CN, serial(rng)?);
    let ext_der = ext
        .to_der()
        .map_err(|e| SimError::Pki(format!("SGX extension: {e}")))?;
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            &SGX_EXTENSION_ARCS,
            ext_der,
        ));
    if let Some(base) = crl_base_of(&pck_ca.der) {
        params.crl_distribution_points = distribution_point(pck_crl_url(&base));
    }
    let pck_key = new_key()?;
    let pck_cert = params.signed_by(&pck_key, &pck_ca.issuer(PCK_CA_CN))?;
    Ok(Certified::new(pck_cert, pck_key))
}

/// The raw public key x‖y (64 bytes) of a ring key pair.
pub(crate) fn raw_public_key(key: &EcdsaKeyPair) -> Result<[u8; 64], SimError> {
    let pk = key.public_key().as_ref();
    match pk {
        [0x04, rest @ ..] if rest.len() == 64 => {
            let mut out = [0u8; 64];
            out.copy_from_slice(rest);
            Ok(out)
        }
        _ => Err(SimError::Crypto("unexpected public key encoding")),
    }
}

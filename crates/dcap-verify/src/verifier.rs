//! The verification pipeline, in dcap-qvl's check order, with caches for streams of quotes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ring::digest::{SHA256, digest};
use sgx_types::ParseError;
use sgx_types::pck::PckExtension;
use sgx_types::quote::{INTEL_QE_VENDOR_ID, Quote, SIGNED_LEN};
use sgx_types::structs::Wire;

use crate::collateral::Collateral;
use crate::error::{Chain, CrlKind, VerifyError};
use crate::policy::{Policy, Verdict};
use crate::tcb::{QeIdentity, TcbInfo};
use crate::x509::{Cert, Crl, Crls, Window, parse_chain, verify_chain, verify_raw_sig};

/// Intel's SGX Root CA (DER), the default trust anchor.
pub const INTEL_ROOT_CA_DER: &[u8] = include_bytes!("intel-sgx-root-ca.der");

/// The root certificate every chain must end in.
#[derive(Debug, Clone)]
pub struct TrustAnchor {
    cert: Arc<Cert>,
}

impl TrustAnchor {
    /// Intel's SGX Root CA.
    pub fn intel() -> Self {
        match Self::from_der(INTEL_ROOT_CA_DER) {
            Ok(anchor) => anchor,
            // The built-in certificate is a constant that the unit tests decode.
            #[allow(clippy::panic)]
            Err(e) => panic!("built-in Intel SGX Root CA does not decode: {e}"),
        }
    }

    /// A root certificate in DER.
    pub fn from_der(der: &[u8]) -> Result<Self, VerifyError> {
        let cert = Cert::from_der(der).map_err(VerifyError::TrustAnchorInvalid)?;
        if cert.issuer != cert.subject {
            return Err(VerifyError::TrustAnchorInvalid(
                "not a self-issued root certificate".into(),
            ));
        }
        Ok(Self {
            cert: Arc::new(cert),
        })
    }

    /// A root certificate in PEM (one `CERTIFICATE` block) or DER.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, VerifyError> {
        if bytes.starts_with(b"-----BEGIN") {
            let certs = sgx_types::pck::parse_pem_chain(bytes)
                .map_err(|e| VerifyError::TrustAnchorInvalid(e.to_string()))?;
            let [cert] = certs.as_slice() else {
                return Err(VerifyError::TrustAnchorInvalid(format!(
                    "{} certificates in the PEM file, expected one",
                    certs.len()
                )));
            };
            let der = der::Encode::to_der(cert)
                .map_err(|e| VerifyError::TrustAnchorInvalid(e.to_string()))?;
            Self::from_der(&der)
        } else {
            Self::from_der(bytes)
        }
    }

    /// The certificate's DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.cert.der
    }

    /// The subject's distinguished name.
    pub fn subject(&self) -> String {
        self.cert.subject_name()
    }

    /// Whether this is Intel's SGX Root CA (byte for byte).
    pub fn is_intel(&self) -> bool {
        self.cert.der == INTEL_ROOT_CA_DER
    }
}

/// Verifies one quote with a fresh [`Verifier`] (no caches carried over).
pub fn verify(
    quote: &[u8],
    collateral: &Collateral,
    anchor: &TrustAnchor,
    now_unix_secs: u64,
    policy: &Policy,
) -> Result<Verdict, VerifyError> {
    Verifier::single_use(anchor.clone()).verify(quote, collateral, now_unix_secs, policy)
}

/// A small bounded cache keyed by exact bytes (several parts, compared in full).
struct Cache<V> {
    entries: Mutex<Vec<(Vec<u8>, V)>>,
    capacity: usize,
}

fn key_matches(stored: &[u8], parts: &[&[u8]]) -> bool {
    let mut rest = stored;
    for part in parts {
        let len = (part.len() as u64).to_le_bytes();
        let Some(after_len) = rest.strip_prefix(&len[..]) else {
            return false;
        };
        let Some(after_part) = after_len.strip_prefix(*part) else {
            return false;
        };
        rest = after_part;
    }
    rest.is_empty()
}

impl<V: Clone> Cache<V> {
    fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(Vec::new()),
            capacity,
        }
    }

    fn get(&self, parts: &[&[u8]]) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .rev()
            .find(|(k, _)| key_matches(k, parts))
            .map(|(_, v)| v.clone())
    }

    fn insert(&self, parts: &[&[u8]], value: V) {
        if self.capacity == 0 {
            return;
        }
        let mut key = Vec::with_capacity(parts.iter().map(|p| p.len() + 8).sum());
        for part in parts {
            key.extend_from_slice(&(part.len() as u64).to_le_bytes());
            key.extend_from_slice(part);
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(k, _)| k != &key);
        if entries.len() >= self.capacity {
            entries.remove(0);
        }
        entries.push((key, value));
    }

    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Collateral that passed steps 1, 3 and 4 (CRLs, TCB info, QE identity) over `window`.
struct VerifiedCollateral {
    id: u64,
    crls: Crls,
    tcb_info: TcbInfo,
    qe_identity: QeIdentity,
    window: Window,
    earliest_expiry: u64,
}

/// A PCK chain that passed step 5 under one verified collateral, over `window`.
struct VerifiedPck {
    id: u64,
    leaf_key: Vec<u8>,
    extension: PckExtension,
    window: Window,
    earliest_expiry: u64,
}

/// Sizes of the caches (entries). Platforms are few; collateral changes monthly.
const COLLATERAL_CACHE: usize = 64;
const PCK_CACHE: usize = 1024;
const QE_REPORT_CACHE: usize = 1024;
const PARSED_CACHE: usize = 256;

/// A quote verifier for one trust anchor. It caches what does not change between quotes of one
/// platform: verified collateral (keyed by all its bytes), verified PCK chains (keyed by the chain's
/// bytes and the collateral), and verified QE report signatures (keyed by the QE report, its signature
/// and the PCK chain). Every cached result carries the window of `now` values over which its time checks
/// pass and is used only inside it, so a cache never changes a verdict. `Verifier` is `Sync`: share one
/// across threads.
pub struct Verifier {
    anchor: TrustAnchor,
    collateral: Cache<Arc<VerifiedCollateral>>,
    pck: Cache<Arc<VerifiedPck>>,
    qe_reports: Cache<()>,
    /// Decoded certificate chains by their PEM bytes and CRLs by their DER bytes (decoding only: no
    /// verification result is kept here).
    parsed_chains: Cache<Arc<Vec<Arc<Cert>>>>,
    /// Decoded certificates by their DER bytes (a certificate recurs in several chains).
    decoded_certs: Cache<Arc<Cert>>,
    parsed_crls: Cache<Arc<Crl>>,
    /// Certificate signatures found valid, by (certificate DER, issuer key): a fact independent of time.
    cert_sigs: Cache<()>,
    next_id: AtomicU64,
}

/// How many entries each cache holds (for tests and diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub collateral: usize,
    pub pck_chains: usize,
    pub qe_reports: usize,
}

fn decode_quote(raw: &[u8]) -> Result<Quote<'_>, VerifyError> {
    let quote = Quote::parse(raw).map_err(|e| match e {
        ParseError::UnsupportedVersion { version } => VerifyError::UnsupportedQuoteVersion(version),
        ParseError::UnsupportedAttKeyType { att_key_type } => {
            VerifyError::UnsupportedAttestationKeyType(att_key_type)
        }
        other => VerifyError::QuoteMalformed(other),
    })?;
    if quote.header.qe_vendor_id != INTEL_QE_VENDOR_ID {
        return Err(VerifyError::UnknownQeVendor(hex::encode(
            quote.header.qe_vendor_id,
        )));
    }
    Ok(quote)
}

impl Verifier {
    pub fn new(anchor: TrustAnchor) -> Self {
        Self {
            anchor,
            collateral: Cache::new(COLLATERAL_CACHE),
            pck: Cache::new(PCK_CACHE),
            qe_reports: Cache::new(QE_REPORT_CACHE),
            parsed_chains: Cache::new(PARSED_CACHE),
            parsed_crls: Cache::new(PARSED_CACHE),
            decoded_certs: Cache::new(PARSED_CACHE),
            cert_sigs: Cache::new(PARSED_CACHE),
            next_id: AtomicU64::new(1),
        }
    }

    /// A verifier for one quote: it keeps nothing between quotes (only the certificate signatures
    /// checked within the verification, so that a certificate in two chains is checked once).
    fn single_use(anchor: TrustAnchor) -> Self {
        Self {
            anchor,
            collateral: Cache::new(0),
            pck: Cache::new(0),
            qe_reports: Cache::new(0),
            parsed_chains: Cache::new(0),
            parsed_crls: Cache::new(0),
            decoded_certs: Cache::new(8),
            cert_sigs: Cache::new(8),
            next_id: AtomicU64::new(1),
        }
    }

    pub fn anchor(&self) -> &TrustAnchor {
        &self.anchor
    }

    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            collateral: self.collateral.len(),
            pck_chains: self.pck.len(),
            qe_reports: self.qe_reports.len(),
        }
    }

    /// Decodes a PEM chain, reusing an earlier decoding of the same bytes.
    /// Decodes a certificate, reusing the anchor and earlier decodings of the same bytes.
    fn decode_cert(&self, der: &[u8]) -> Result<Arc<Cert>, String> {
        if der == self.anchor.der() {
            return Ok(Arc::clone(&self.anchor.cert));
        }
        if let Some(cert) = self.decoded_certs.get(&[der]) {
            return Ok(cert);
        }
        let cert = Arc::new(Cert::from_der(der)?);
        self.decoded_certs.insert(&[der], Arc::clone(&cert));
        Ok(cert)
    }

    fn chain(&self, chain: Chain, pem: &[u8]) -> Result<Arc<Vec<Arc<Cert>>>, VerifyError> {
        if let Some(certs) = self.parsed_chains.get(&[pem]) {
            return Ok(certs);
        }
        let certs = Arc::new(parse_chain(chain, pem, &|der| self.decode_cert(der))?);
        self.parsed_chains.insert(&[pem], Arc::clone(&certs));
        Ok(certs)
    }

    /// Decodes a CRL, reusing an earlier decoding of the same bytes.
    fn crl(&self, which: CrlKind, der: &[u8]) -> Result<Arc<Crl>, VerifyError> {
        let tag = [which as u8];
        if let Some(crl) = self.parsed_crls.get(&[&tag, der]) {
            return Ok(crl);
        }
        let crl = Arc::new(Crl::from_der(which, der)?);
        self.parsed_crls.insert(&[&tag, der], Arc::clone(&crl));
        Ok(crl)
    }

    /// Whether `issuer`'s key signed `cert`, remembering valid signatures.
    fn cert_signed(&self, cert: &Cert, issuer: &Cert) -> bool {
        let key: [&[u8]; 2] = [&cert.der, &issuer.key];
        if self.cert_sigs.get(&key).is_some() {
            return true;
        }
        let ok = cert.signed_by(&issuer.key);
        if ok {
            self.cert_sigs.insert(&key, ());
        }
        ok
    }

    /// [`verify_chain`] with this verifier's signature memory.
    fn verify_chain(
        &self,
        chain: Chain,
        certs: &[Arc<Cert>],
        crls: &Crls,
        now: u64,
    ) -> Result<Window, VerifyError> {
        verify_chain(chain, certs, self.anchor.der(), crls, now, &|c, i| {
            self.cert_signed(c, i)
        })
    }

    fn fresh_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Verifies a quote against its collateral at `now_unix_secs` and applies the policy.
    ///
    /// `Err` means a verification check failed (the quote must not be trusted); `Ok` carries the
    /// verdict, whose `accepted` says whether the policy accepted it.
    pub fn verify(
        &self,
        raw_quote: &[u8],
        collateral: &Collateral,
        now: u64,
        policy: &Policy,
    ) -> Result<Verdict, VerifyError> {
        self.check(raw_quote, collateral, now, Some(policy))
    }

    /// Verifies the platform part of a quote: a quote whose enclave report body and ISV signature
    /// are zeros (what a quote helper publishes of the quotes it makes, without the apps' reports),
    /// by every check of [`Verifier::verify`] but the ISV signature (step 9) and the relying-party
    /// policy (step 12). The verdict says what the PCK certificate, the QE and the collateral say
    /// of the platform (status, TCB date, FMSPC, expiry); its `accepted` is true, as no policy
    /// applies. A quote that carries an enclave's report is refused
    /// ([`VerifyError::NotPlatformEvidence`]): its signature is to be checked, with `verify`.
    pub fn verify_platform(
        &self,
        evidence: &[u8],
        collateral: &Collateral,
        now: u64,
    ) -> Result<Verdict, VerifyError> {
        self.check(evidence, collateral, now, None)
    }

    /// Every check; `policy` `None` is platform evidence (no ISV signature, no policy).
    fn check(
        &self,
        raw_quote: &[u8],
        collateral: &Collateral,
        now: u64,
        policy: Option<&Policy>,
    ) -> Result<Verdict, VerifyError> {
        let key: [&[u8]; 9] = [
            &collateral.root_ca_crl,
            &collateral.pck_crl,
            collateral.pck_crl_issuer_chain.as_bytes(),
            collateral.tcb_info_issuer_chain.as_bytes(),
            collateral.tcb_info.as_bytes(),
            &collateral.tcb_info_signature,
            collateral.qe_identity_issuer_chain.as_bytes(),
            collateral.qe_identity.as_bytes(),
            &collateral.qe_identity_signature,
        ];
        let (quote, vc) = match self.collateral.get(&key).filter(|c| c.window.contains(now)) {
            Some(vc) => (decode_quote(raw_quote)?, vc),
            None => {
                let mut window = Window::ALL;
                // Step 1: CRLs.
                let crls = self.check_crls(collateral, now, &mut window)?;
                // Step 2: the quote header.
                let quote = decode_quote(raw_quote)?;
                // Steps 3 and 4: TCB info and QE identity.
                let vc = Arc::new(self.check_documents(collateral, crls, now, window)?);
                self.collateral.insert(&key, Arc::clone(&vc));
                (quote, vc)
            }
        };
        if policy.is_none() {
            if quote.report_body.to_vec().iter().any(|b| *b != 0) {
                return Err(VerifyError::NotPlatformEvidence("report body"));
            }
            if quote.signature.isv_signature.iter().any(|b| *b != 0) {
                return Err(VerifyError::NotPlatformEvidence("ISV signature"));
            }
        }
        let mut window = vc.window;
        let mut earliest_expiry = vc.earliest_expiry;

        // Step 5: the PCK certificate chain.
        let pem: &[u8] = match &collateral.pck_certificate_chain {
            Some(chain) => chain.as_bytes(),
            None => {
                let cert_data = &quote.signature.certification_data;
                cert_data
                    .pck_chain_pem()
                    .ok_or(VerifyError::UnsupportedCertificationData(
                        cert_data.cert_type,
                    ))?
            }
        };
        let vc_id = vc.id.to_le_bytes();
        let pck_key: [&[u8]; 2] = [&vc_id, pem];
        let pck = match self.pck.get(&pck_key).filter(|p| p.window.contains(now)) {
            Some(pck) => pck,
            None => {
                let (crls, crl_window, crl_expiry) =
                    self.check_pck_crl(collateral, &vc.crls, now)?;
                let mut pck = self.check_pck_chain(&crls, pem, now)?;
                pck.window.meet(crl_window);
                pck.earliest_expiry = pck.earliest_expiry.min(crl_expiry);
                let pck = Arc::new(pck);
                self.pck.insert(&pck_key, Arc::clone(&pck));
                pck
            }
        };
        window.meet(pck.window);
        earliest_expiry = earliest_expiry.min(pck.earliest_expiry);

        // Step 6: the QE report signature by the PCK key.
        let sig = &quote.signature;
        let qe_report_bytes = sig.qe_report.to_vec();
        let pck_id = pck.id.to_le_bytes();
        let qe_key: [&[u8]; 3] = [&pck_id, &qe_report_bytes, &sig.qe_report_signature];
        if self.qe_reports.get(&qe_key).is_none() {
            if !verify_raw_sig(&pck.leaf_key, &qe_report_bytes, &sig.qe_report_signature) {
                return Err(VerifyError::QeReportSignatureInvalid);
            }
            self.qe_reports.insert(&qe_key, ());
        }

        // Step 7: QE report data binds the attestation key and the QE auth data.
        if sig.qe_auth_data.len() != 32 {
            return Err(VerifyError::QeAuthDataLength(sig.qe_auth_data.len()));
        }
        let mut hashed = [0u8; 96];
        hashed[..64].copy_from_slice(&sig.attestation_key);
        hashed[64..].copy_from_slice(sig.qe_auth_data);
        let hash = digest(&SHA256, &hashed);
        let report_data = &sig.qe_report.report_data;
        if report_data[..32] != *hash.as_ref() || report_data[32..].iter().any(|b| *b != 0) {
            return Err(VerifyError::QeReportDataMismatch);
        }

        // Step 8: the QE against the QE identity.
        let qe_identity = &vc.qe_identity;
        let qe = &sig.qe_report;
        if qe.mr_signer != qe_identity.mrsigner {
            return Err(VerifyError::QeIdentityMismatch {
                field: "MRSIGNER",
                expected: hex::encode(qe_identity.mrsigner),
                actual: hex::encode(qe.mr_signer),
            });
        }
        if qe.attributes.is_debug() {
            return Err(VerifyError::QeDebug);
        }
        if qe.isv_prod_id != qe_identity.isv_prod_id {
            return Err(VerifyError::QeIdentityMismatch {
                field: "ISVPRODID",
                expected: qe_identity.isv_prod_id.to_string(),
                actual: qe.isv_prod_id.to_string(),
            });
        }
        let masked = |value: &[u8], mask: &[u8]| -> Vec<u8> {
            value.iter().zip(mask).map(|(v, m)| v & m).collect()
        };
        let misc = qe.misc_select.to_le_bytes();
        if masked(&misc, &qe_identity.miscselect_mask)
            != masked(&qe_identity.miscselect, &qe_identity.miscselect_mask)
        {
            return Err(VerifyError::QeIdentityMismatch {
                field: "MISCSELECT",
                expected: hex::encode(qe_identity.miscselect),
                actual: hex::encode(misc),
            });
        }
        let attrs = qe.attributes.to_bytes();
        if masked(&attrs, &qe_identity.attributes_mask)
            != masked(&qe_identity.attributes, &qe_identity.attributes_mask)
        {
            return Err(VerifyError::QeIdentityMismatch {
                field: "ATTRIBUTES",
                expected: hex::encode(qe_identity.attributes),
                actual: hex::encode(attrs),
            });
        }
        let (qe_level, qe_status) = qe_identity.match_level(qe.isv_svn)?;

        // Step 9: the ISV signature by the attestation key over header and report body (platform
        // evidence has neither: checked above).
        if policy.is_some() {
            let mut att_key = [4u8; 65];
            att_key[1..].copy_from_slice(&sig.attestation_key);
            let signed = raw_quote
                .get(..SIGNED_LEN)
                .ok_or(VerifyError::IsvSignatureInvalid)?;
            if !verify_raw_sig(&att_key, signed, &sig.isv_signature) {
                return Err(VerifyError::IsvSignatureInvalid);
            }
        }

        // Step 10: the platform TCB.
        let tcb_info = &vc.tcb_info;
        let ext = &pck.extension;
        if ext.fmspc != tcb_info.fmspc {
            return Err(VerifyError::FmspcMismatch {
                pck: hex::encode(ext.fmspc),
                tcb_info: hex::encode(tcb_info.fmspc),
            });
        }
        if ext.pce_id != tcb_info.pce_id {
            return Err(VerifyError::PceIdMismatch {
                pck: hex::encode(ext.pce_id),
                tcb_info: hex::encode(tcb_info.pce_id),
            });
        }
        if tcb_info.id != "SGX" {
            return Err(VerifyError::TcbInfoNotSgx {
                id: tcb_info.id.clone(),
                version: tcb_info.version,
            });
        }
        let (level, platform_status) = tcb_info.match_level(&ext.tcb.cpu_svn, ext.tcb.pce_svn)?;

        // Step 11: converge with the QE status.
        let status = platform_status.converge_with_qe(qe_status);
        if status == crate::TcbStatus::Revoked {
            return Err(VerifyError::TcbRevoked);
        }
        let mut advisory_ids = level.advisory_ids.clone();
        for id in &qe_level.advisory_ids {
            if !advisory_ids.contains(id) {
                advisory_ids.push(id.clone());
            }
        }

        // Step 12: relying-party policy.
        let tcb_eval = tcb_info
            .tcb_evaluation_data_number
            .min(qe_identity.tcb_evaluation_data_number);
        let rejections = match policy {
            Some(policy) => policy.evaluate(&quote.report_body, status, tcb_eval),
            None => Vec::new(),
        };
        Ok(Verdict {
            status,
            qv_result: status.into(),
            advisory_ids,
            platform_status,
            platform_advisory_ids: level.advisory_ids.clone(),
            qe_status,
            qe_advisory_ids: qe_level.advisory_ids.clone(),
            fmspc: ext.fmspc,
            pce_id: ext.pce_id,
            tcb_date: level.tcb_date.clone(),
            tcb_evaluation_data_number: tcb_eval,
            tcb_info_version: tcb_info.version,
            earliest_expiry,
            intel_root: self.anchor.is_intel(),
            quote_version: quote.header.version,
            report_body: quote.report_body,
            qe_isv_svn: qe.isv_svn,
            pce_svn: ext.tcb.pce_svn,
            accepted: rejections.is_empty(),
            rejections,
        })
    }

    /// Step 1: the root CA CRL (signed by the anchor, within its window, not revoking the root), and the
    /// PCK CRL decoded.
    fn check_crls(
        &self,
        c: &Collateral,
        now: u64,
        window: &mut Window,
    ) -> Result<Crls, VerifyError> {
        let root = self.crl(CrlKind::RootCa, &c.root_ca_crl)?;
        if root.issuer != self.anchor.cert.subject || !root.signed_by(&self.anchor.cert.key) {
            return Err(VerifyError::CrlSignatureInvalid {
                which: CrlKind::RootCa,
            });
        }
        root.check_window(now, window)?;
        if root.lists(&self.anchor.cert.serial) {
            return Err(VerifyError::CertificateRevoked {
                what: "root CA certificate".into(),
            });
        }
        // The PCK CRL is decoded here; its issuer chain, signature and window are checked with the PCK
        // chain (step 5), where dcap-qvl checks them.
        let pck = self.crl(CrlKind::Pck, &c.pck_crl)?;
        Ok(Crls {
            root,
            pck,
            pck_crl_key: Vec::new(),
        })
    }

    /// Step 5a: the PCK CRL issuer chain (PCK CA to the anchor, not revoked by the root CA CRL), the PCK
    /// CRL's issuer and signature by that CA, and its window. Returns the CRLs with the PCK CRL marked
    /// verified, and the window.
    fn check_pck_crl(
        &self,
        c: &Collateral,
        crls: &Crls,
        now: u64,
    ) -> Result<(Crls, Window, u64), VerifyError> {
        let chain = self.chain(Chain::PckCrl, c.pck_crl_issuer_chain.as_bytes())?;
        let mut window = self.verify_chain(Chain::PckCrl, &chain, crls, now)?;
        let issuer = &chain[0];
        let pck = &crls.pck;
        if pck.issuer != issuer.subject {
            return Err(VerifyError::CrlIssuerMismatch {
                which: CrlKind::Pck,
                subject: issuer.subject_name(),
            });
        }
        if !pck.signed_by(&issuer.key) {
            return Err(VerifyError::CrlSignatureInvalid {
                which: CrlKind::Pck,
            });
        }
        pck.check_window(now, &mut window)?;
        let expiry = chain.iter().map(|c| c.not_after).min().unwrap_or(u64::MAX);
        Ok((
            Crls {
                root: Arc::clone(&crls.root),
                pck: Arc::clone(pck),
                pck_crl_key: issuer.key.clone(),
            },
            window,
            expiry,
        ))
    }

    /// Steps 3 and 4: TCB info and QE identity (window, issuer chain, signature), then the QE identity's
    /// id and version.
    fn check_documents(
        &self,
        c: &Collateral,
        crls: Crls,
        now: u64,
        mut window: Window,
    ) -> Result<VerifiedCollateral, VerifyError> {
        let mut earliest_expiry = crls.root.next_update.min(crls.pck.next_update);

        let tcb_info = TcbInfo::from_json(&c.tcb_info)?;
        if now < tcb_info.issue_date {
            return Err(VerifyError::TcbInfoNotYetValid(tcb_info.issue_date));
        }
        if now > tcb_info.next_update {
            return Err(VerifyError::TcbInfoExpired(tcb_info.next_update));
        }
        window.narrow(tcb_info.issue_date, tcb_info.next_update);
        earliest_expiry = earliest_expiry.min(tcb_info.next_update);
        let tcb_chain = self.signer_chain(Chain::TcbInfo, &c.tcb_info_issuer_chain, &crls, now)?;
        window.meet(tcb_chain.1);
        earliest_expiry = earliest_expiry.min(tcb_chain.2);
        if !verify_raw_sig(&tcb_chain.0, c.tcb_info.as_bytes(), &c.tcb_info_signature) {
            return Err(VerifyError::TcbInfoSignatureInvalid);
        }

        let qe_identity = QeIdentity::from_json(&c.qe_identity)?;
        if now < qe_identity.issue_date {
            return Err(VerifyError::QeIdentityNotYetValid(qe_identity.issue_date));
        }
        if now > qe_identity.next_update {
            return Err(VerifyError::QeIdentityExpired(qe_identity.next_update));
        }
        window.narrow(qe_identity.issue_date, qe_identity.next_update);
        earliest_expiry = earliest_expiry.min(qe_identity.next_update);
        let qe_signer_key = if c.qe_identity_issuer_chain == c.tcb_info_issuer_chain {
            tcb_chain.0
        } else {
            let qe_chain =
                self.signer_chain(Chain::QeIdentity, &c.qe_identity_issuer_chain, &crls, now)?;
            window.meet(qe_chain.1);
            earliest_expiry = earliest_expiry.min(qe_chain.2);
            qe_chain.0
        };
        if !verify_raw_sig(
            &qe_signer_key,
            c.qe_identity.as_bytes(),
            &c.qe_identity_signature,
        ) {
            return Err(VerifyError::QeIdentitySignatureInvalid);
        }
        if qe_identity.id != "QE" || qe_identity.version != 2 {
            return Err(VerifyError::UnsupportedQeIdentity {
                id: qe_identity.id.clone(),
                version: qe_identity.version,
            });
        }
        Ok(VerifiedCollateral {
            id: self.fresh_id(),
            crls,
            tcb_info,
            qe_identity,
            window,
            earliest_expiry,
        })
    }

    /// A signing chain `signer, root` issued directly by the root. Returns the signer's key, the window
    /// and the earliest certificate expiry.
    fn signer_chain(
        &self,
        chain: Chain,
        pem: &str,
        crls: &Crls,
        now: u64,
    ) -> Result<(Vec<u8>, Window, u64), VerifyError> {
        let certs = self.chain(chain, pem.as_bytes())?;
        let window = self.verify_chain(chain, &certs, crls, now)?;
        if certs.len() != 2 {
            return Err(VerifyError::ChainShape {
                chain,
                len: certs.len(),
            });
        }
        let expiry = certs.iter().map(|c| c.not_after).min().unwrap_or(u64::MAX);
        Ok((certs[0].key.clone(), window, expiry))
    }

    /// Step 5: the PCK chain to the anchor with revocation at every level, and the PCK extension.
    fn check_pck_chain(
        &self,
        crls: &Crls,
        pem: &[u8],
        now: u64,
    ) -> Result<VerifiedPck, VerifyError> {
        let certs = self.chain(Chain::Pck, pem)?;
        let window = self.verify_chain(Chain::Pck, &certs, crls, now)?;
        let leaf = &certs[0];
        let extension = PckExtension::from_certificate(&leaf.cert)
            .map_err(|e| VerifyError::PckExtensionInvalid(e.to_string()))?;
        if extension.tcb.cpu_svn != extension.tcb.comp_svn {
            return Err(VerifyError::PckExtensionInvalid(
                "CPUSVN differs from the TCB component SVNs".into(),
            ));
        }
        Ok(VerifiedPck {
            id: self.fresh_id(),
            leaf_key: leaf.key.clone(),
            extension,
            window,
            earliest_expiry: certs.iter().map(|c| c.not_after).min().unwrap_or(u64::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_anchor_is_intels_root() {
        let anchor = TrustAnchor::intel();
        assert!(anchor.is_intel());
        assert_eq!(
            anchor.subject(),
            "C=US,ST=CA,L=Santa Clara,O=Intel Corporation,CN=Intel SGX Root CA"
        );
        let fingerprint = digest(&SHA256, anchor.der());
        assert_eq!(
            hex::encode(fingerprint),
            "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
        );
    }

    #[test]
    fn cache_keys_compare_every_part_exactly() {
        let cache = Cache::new(2);
        cache.insert(&[b"ab", b"c"], 1);
        assert_eq!(cache.get(&[b"ab", b"c"]), Some(1));
        assert_eq!(cache.get(&[b"a", b"bc"]), None);
        assert_eq!(cache.get(&[b"abc"]), None);
        assert_eq!(cache.get(&[b"ab", b"c", b""]), None);
        cache.insert(&[b"x"], 2);
        cache.insert(&[b"y"], 3);
        assert_eq!(cache.get(&[b"ab", b"c"]), None, "oldest entry evicted");
        assert_eq!(cache.len(), 2);
        let off: Cache<u8> = Cache::new(0);
        off.insert(&[b"x"], 1);
        assert_eq!(off.get(&[b"x"]), None);
    }
}

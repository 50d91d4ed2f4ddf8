//! A quote's collateral: which platform made it (FMSPC and PCK CA, from the PCK certificate the
//! quote carries), fetching that platform's collateral, and the verifier's form of it. Shared by
//! `confcom verify` and the DRA driver's attestation attributes.

use dcap_verify::{Collateral, parse_signed_document};
use sgx_types::pck::{PckExtension, parse_pem_chain};
use sgx_types::quote::Quote;

use crate::CaType;
use crate::client::{FetchError, FetchedCollateral, PccsClient};
use crate::source::Signed;

/// Why a quote's platform or collateral could not be had.
#[derive(Debug, thiserror::Error)]
pub enum QuoteCollateralError {
    /// The quote's certification data is not a PCK certificate chain.
    #[error(
        "the quote carries no PCK certificate chain (certification data type 5) to find its collateral by"
    )]
    NoPckChain,
    /// The PCK chain does not parse.
    #[error("the quote's PCK chain: {0}")]
    PckChain(String),
    /// The PCK chain holds no certificate.
    #[error("the quote's PCK chain is empty")]
    EmptyPckChain,
    /// The PCK certificate lacks readable SGX extensions.
    #[error("the quote's PCK certificate: {0}")]
    PckCertificate(String),
    /// The service did not deliver the collateral.
    #[error("cannot fetch the collateral of FMSPC {fmspc} ({ca} CA): {source}")]
    Fetch {
        /// FMSPC, upper-case hex as Intel prints it.
        fmspc: String,
        /// The PCK CA.
        ca: &'static str,
        /// The cause.
        source: FetchError,
    },
    /// A fetched signed document is not what the verifier reads.
    #[error("{what}: {reason}")]
    Document {
        /// Which document.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// What a quote's PCK certificate says about the platform that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotePlatform {
    /// The platform's FMSPC.
    pub fmspc: [u8; 6],
    /// The CA that issued the PCK certificate (`sgx_type` 0 is the Processor CA).
    pub ca: CaType,
    /// The PCE SVN of the certified TCB.
    pub pce_svn: u16,
    /// The CPU SVN of the certified TCB.
    pub cpu_svn: [u8; 16],
}

/// The platform that made `quote`, from the PCK certificate in its certification data.
pub fn quote_platform(quote: &Quote<'_>) -> Result<QuotePlatform, QuoteCollateralError> {
    let pem = quote
        .signature
        .certification_data
        .pck_chain_pem()
        .ok_or(QuoteCollateralError::NoPckChain)?;
    let chain = parse_pem_chain(pem).map_err(|e| QuoteCollateralError::PckChain(e.to_string()))?;
    let leaf = chain.first().ok_or(QuoteCollateralError::EmptyPckChain)?;
    let ext = PckExtension::from_certificate(leaf)
        .map_err(|e| QuoteCollateralError::PckCertificate(e.to_string()))?;
    let ca = if ext.sgx_type == 0 {
        CaType::Processor
    } else {
        CaType::Platform
    };
    Ok(QuotePlatform {
        fmspc: ext.fmspc,
        ca,
        pce_svn: ext.tcb.pce_svn,
        cpu_svn: ext.tcb.cpu_svn,
    })
}

/// The verifier's form of fetched collateral.
pub fn to_collateral(fetched: &FetchedCollateral) -> Result<Collateral, QuoteCollateralError> {
    let signed = |what: &'static str, doc: &Signed| {
        let text = std::str::from_utf8(&doc.body).map_err(|e| QuoteCollateralError::Document {
            what,
            reason: e.to_string(),
        })?;
        parse_signed_document(text).map_err(|e| QuoteCollateralError::Document {
            what,
            reason: e.to_string(),
        })
    };
    let (tcb_info, tcb_info_signature) = signed("the fetched TCB info", &fetched.tcb_info)?;
    let (qe_identity, qe_identity_signature) =
        signed("the fetched QE identity", &fetched.qe_identity)?;
    Ok(Collateral {
        pck_crl_issuer_chain: fetched.pck_crl.issuer_chain.clone(),
        root_ca_crl: fetched.root_ca_crl.clone(),
        pck_crl: fetched.pck_crl.der.clone(),
        tcb_info_issuer_chain: fetched.tcb_info.issuer_chain.clone(),
        tcb_info,
        tcb_info_signature,
        qe_identity_issuer_chain: fetched.qe_identity.issuer_chain.clone(),
        qe_identity,
        qe_identity_signature,
        pck_certificate_chain: None,
    })
}

/// Fetches the collateral of `platform` from `client`, as served (for saving) and in the
/// verifier's form.
pub fn fetch_platform_collateral(
    client: &PccsClient,
    platform: &QuotePlatform,
) -> Result<(FetchedCollateral, Collateral), QuoteCollateralError> {
    let fetched = client
        .collateral(&platform.fmspc, platform.ca)
        .map_err(|source| QuoteCollateralError::Fetch {
            fmspc: hex::encode_upper(platform.fmspc),
            ca: platform.ca.as_str(),
            source,
        })?;
    let collateral = to_collateral(&fetched)?;
    Ok((fetched, collateral))
}

/// The collateral `quote` is verified with: its platform from the PCK certificate, then that
/// platform's TCB info, QE identity and CRLs from `client`.
pub fn fetch_quote_collateral(
    client: &PccsClient,
    quote: &Quote<'_>,
) -> Result<(QuotePlatform, Collateral), QuoteCollateralError> {
    let platform = quote_platform(quote)?;
    let (_, collateral) = fetch_platform_collateral(client, &platform)?;
    Ok((platform, collateral))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CollateralSource;
    use crate::api::ApiVersion;
    use sgx_sim::{EnclaveIdentity, InitOptions, SimPlatform};

    #[test]
    fn a_quote_names_its_platform_and_its_fetched_collateral_verifies_it() {
        let dir = tempfile::tempdir().unwrap();
        let options = InitOptions {
            fmspc: [0x20, 0x60, 0x6a, 0x00, 0x00, 0x00],
            pce_svn: 11,
            ..InitOptions::default()
        };
        let platform = SimPlatform::open_or_init(dir.path(), &options).unwrap();
        platform.init_attestation_key().unwrap();
        let report = platform.cpu().create_report(
            &EnclaveIdentity::default(),
            &platform.qe_target_info(),
            &[7; 64],
        );
        let bytes = platform.quote(&report).unwrap();
        let quote = Quote::parse(&bytes).unwrap();
        let found = quote_platform(&quote).unwrap();
        assert_eq!(found.fmspc, options.fmspc);
        assert_eq!(found.ca, CaType::Processor);
        assert_eq!(found.pce_svn, 11);
        assert_eq!(found.cpu_svn, platform.pck_extension().tcb.cpu_svn);

        // The collateral as a service hands it out, in the verifier's form, verifies the quote.
        let root = dcap_verify::TrustAnchor::from_pem_or_der(platform.root_ca_der()).unwrap();
        let source = crate::SimSource::new(std::sync::Arc::new(platform));
        let fetched = FetchedCollateral {
            pck_crl: source.pck_crl(found.ca).unwrap().unwrap(),
            tcb_info: source
                .tcb_info(ApiVersion::V4, &found.fmspc)
                .unwrap()
                .unwrap(),
            qe_identity: source.qe_identity(ApiVersion::V4).unwrap().unwrap(),
            root_ca_crl: source.root_ca_crl().unwrap().unwrap(),
        };
        let collateral = to_collateral(&fetched).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let verdict = dcap_verify::verify(
            &bytes,
            &collateral,
            &root,
            now,
            &dcap_verify::Policy::default(),
        )
        .unwrap();
        assert_eq!(verdict.fmspc, found.fmspc);

        // Garbage in a signed document is named.
        let mut broken = fetched.clone();
        broken.tcb_info.body = b"not json".to_vec();
        let err = to_collateral(&broken).unwrap_err();
        assert!(
            err.to_string().starts_with("the fetched TCB info:"),
            "{err}"
        );
    }
}

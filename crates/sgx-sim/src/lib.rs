//! A simulated SGX platform, so that the whole DCAP attestation flow runs and is verified on machines
//! without SGX.
//!
//! * [`SimPlatform`]: a platform persisted in a state directory: a sim PKI shaped like Intel's (root
//!   CA → PCK Processor CA → PCK certificate with the SGX extension; a TCB Signing certificate under
//!   the root), a per-platform CPU secret, and a simulated QE3 with Intel's QE3 identity that turns
//!   reports MACed for it into real-format DCAP v3 quotes (certification data type 5).
//! * [`SimCpu`]: what an app needs to create reports on the simulated platform (EREPORT), published by
//!   the quote helper next to its socket.
//! * [`Collateral`]: TCB info, QE identity, CRLs and issuer chains under the sim root, with every
//!   status configurable; dcap-qvl's `QuoteVerifier::new(root)` verifies the quotes against it.
//!
//! No sockets here; files only for the state directory (written atomically, keys mode 0600).
//!
//! # State directory
//!
//! | file | content |
//! |---|---|
//! | `platform.json` | FMSPC, PPID, TCB, QE ISVSVN, QE id, default TCB status; written last by init |
//! | `root-ca.{pem,der,key}`, `pck-ca.{pem,key}`, `tcb-signing.{pem,key}` | the CA set (copied from `--ca-dir` when given) |
//! | `pck.{pem,key}` | the platform's PCK certificate (SGX extension) and key |
//! | `cpu.json` | the simulated CPU: platform secret, CPUSVN, report key id (mode 0600; published 0644) |
//! | `attestation-key.json` | attestation key and its PCK-signed QE report, created once (no-clobber) |
//!
//! CRL distribution points sit where Intel's do: the root, the PCK CA and the TCB signer name the
//! root CA CRL (`<base>/sgx/certification/v4/rootcacrl?encoding=der`), each PCK certificate its
//! CA's CRL (`<base>/sgx/certification/v4/pckcrl?ca=processor&encoding=der`), with `<base>` the
//! in-cluster PCCS ([`DEFAULT_CRL_BASE_URL`]) or [`InitOptions::crl_base_url`]. A CA set made before
//! names none and is used as it is (its root is the trust anchor verifiers hold: re-issuing it
//! would change it, and a CA directory mounted from a Secret is read-only).
//!
//! A CA directory holds `root-ca.{pem,der,key}`, `pck-ca.{pem,key}` and `tcb-signing.{pem,key}`.
//! Within one simulated cluster whoever holds the platform secret can create any report, and the state
//! directory holds CA keys: this is a test platform, never a trust boundary.
//!
//! ```no_run
//! use sgx_sim::{CollateralOptions, EnclaveIdentity, InitOptions, SimPlatform};
//! # fn demo() -> Result<(), sgx_sim::SimError> {
//! let platform = SimPlatform::open_or_init("/var/lib/confcom/sim".as_ref(), &InitOptions::default())?;
//! platform.init_attestation_key()?;
//! let report = platform.cpu().create_report(
//!     &EnclaveIdentity::default(),
//!     &platform.qe_target_info(),
//!     &[0u8; 64],
//! );
//! let quote = platform.quote(&report)?;
//! let collateral = platform.collateral(&CollateralOptions::default())?;
//! collateral.write_to("/tmp/collateral".as_ref())?;
//! # let _ = quote; Ok(()) }
//! ```

mod cache;
mod collateral;
mod cpu;
mod error;
mod fsutil;
mod pki;
mod platform;

pub use cache::{COLLATERAL_REFRESH, CollateralCache};
pub use collateral::{Collateral, CollateralOptions, QeStatus, TcbStatus, files};
pub use cpu::{CPU_FILE, EnclaveIdentity, QE_TARGET_INFO_FILE, SimCpu};
pub use error::SimError;
pub use fsutil::write_atomic as write_file_atomic;
pub use pki::{
    DEFAULT_CRL_BASE_URL, PCK_CRL_PATH, ROOT_CA_CRL_PATH, ROOT_CERT_DER_FILE, ROOT_CERT_FILE,
    ROOT_KEY_FILE, check_crl_base_url, crl_distribution_points, pck_crl_url, root_ca_crl_url,
};
pub use platform::{
    ATTESTATION_KEY_FILE, CrlLocations, InitOptions, LevelPckCert, PLATFORM_FILE, QE_AUTH_DATA,
    SimPlatform,
};

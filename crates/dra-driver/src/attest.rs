//! Attributes from the node's own attestation: the platform the node's quote helper quotes on
//! (FMSPC from the PCK certificate, PCE SVN from the quote header, CPU SVN from the QE's report)
//! and — when collateral is reachable — the TCB status and TCB date the verifier gives it under
//! current collateral.
//!
//! Where the evidence comes from:
//! - On a simulated node, the driver takes one quote of its own, as any enclave app takes one
//!   ([`aesm_service::client_flow`], the flow of `confcom quote` and the doctor), with a report
//!   from the simulated CPU material the helper publishes next to its socket; the quote is
//!   verified as a whole.
//! - On hardware the driver has no enclave to make a report with. The quote helper publishes the
//!   platform part of the quotes it makes for apps beside its socket
//!   ([`aesm_service::evidence`]: the quote without the app's report body and signature), and
//!   the driver verifies that as platform evidence ([`dcap_verify::Verifier::verify_platform`]:
//!   the PCK chain to the root, the QE report signed by the PCK key and bound to the attestation
//!   key, the QE identity, the TCB level of the PCK certificate). Until the helper has made its
//!   first quote there is none; the driver says so once, looks for the file every
//!   [`AttestConfig::retry`] (a stat) and attests as soon as it is there.
//!
//! The collateral is fetched as `confcom verify` fetches it ([`pccs::quote`]), from a PCCS (the
//! in-cluster one or Intel's PCS) or read from a directory. [`run`] refreshes the result when the
//! collateral's `nextUpdate` comes, and retries with a bounded backoff while the quote helper or
//! the PCCS is not up yet.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aesm_service::client_flow::{FlowError, quote_via_socket};
use dcap_verify::{Collateral, Policy, TcbStatus, TrustAnchor, VerifyError};
use pccs::client::{ClientOptions, PccsClient};
use pccs::quote::{QuoteCollateralError, quote_platform};
use quote_client::{AesmClient, ClientError};
use sgx_sim::{EnclaveIdentity, SimCpu};
use sgx_types::quote::Quote;
use tokio::sync::watch;

/// What the node's attestation says about its platform; each field only when known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attestation {
    /// The platform's FMSPC (from the PCK certificate in the quote).
    pub fmspc: Option<[u8; 6]>,
    /// The PCE SVN (quote header).
    pub pce_svn: Option<u16>,
    /// The CPU SVN (the report the quote carries).
    pub cpu_svn: Option<[u8; 16]>,
    /// The TCB status of the quote under current collateral, Intel's spelling.
    pub tcb_status: Option<TcbStatus>,
    /// The TCB date of the matched TCB level (RFC 3339, as in the TCB info).
    pub tcb_date: Option<String>,
}

/// Where the collateral comes from.
#[derive(Clone, Debug)]
pub enum CollateralConfig {
    /// None: only the platform attributes are published.
    None,
    /// A PCCS (the in-cluster one, or Intel's PCS at [`pccs::client::INTEL_PCS_URL`]).
    Pccs {
        /// Its base URL.
        url: String,
        /// CA files trusted besides Mozilla's roots and the system's store.
        ca_files: Vec<PathBuf>,
        /// Timeout of each request.
        timeout: Duration,
    },
    /// A file or directory in the layout `confcom verify --collateral` reads.
    Dir(PathBuf),
}

/// How the driver attests.
#[derive(Clone, Debug)]
pub struct AttestConfig {
    /// The quote helper's AESM socket.
    pub socket: PathBuf,
    /// The simulated CPU material (default: `<socket dir>/sim/`).
    pub cpu_dir: Option<PathBuf>,
    /// The platform evidence the helper publishes, used where there is no simulated CPU
    /// material (default: `<socket dir>/platform-quote.dat`).
    pub evidence: Option<PathBuf>,
    /// Where the collateral comes from.
    pub collateral: CollateralConfig,
    /// The root collateral and PCK chains must lead to (default: Intel's SGX Root CA; a
    /// simulated platform's root in simulation).
    pub root: Option<TrustAnchor>,
    /// Simulation only: trust the root certificate the quote's own PCK chain ends in (the
    /// simulated platform's root, whichever CA the cluster's simulated platforms share) when
    /// [`AttestConfig::root`] is not set. The status then says what the collateral served for
    /// that simulated PKI says; it is never meaningful for hardware.
    pub root_from_quote: bool,
    /// First wait after a failure; doubled up to `max_retry`.
    pub retry: Duration,
    /// Longest wait between attempts after failures.
    pub max_retry: Duration,
    /// Longest time a result stands before it is taken again, even when the collateral's
    /// `nextUpdate` is later.
    pub max_refresh: Duration,
    /// Shortest wait before a refresh (collateral already past its `nextUpdate`).
    pub min_refresh: Duration,
    /// Where each attestation runs (default: in process; the daemon runs each in a child process
    /// of its own binary, [`child::Runner::Child`]).
    pub runner: child::Runner,
}

impl AttestConfig {
    /// The defaults for the quote helper on `socket` and collateral from `collateral`.
    pub fn new(socket: impl Into<PathBuf>, collateral: CollateralConfig) -> Self {
        Self {
            socket: socket.into(),
            cpu_dir: None,
            evidence: None,
            collateral,
            root: None,
            root_from_quote: false,
            retry: Duration::from_secs(5),
            max_retry: Duration::from_secs(300),
            max_refresh: Duration::from_secs(24 * 3600),
            min_refresh: Duration::from_secs(60),
            runner: child::Runner::InProcess,
        }
    }

    fn cpu_dir(&self) -> PathBuf {
        self.cpu_dir
            .clone()
            .unwrap_or_else(|| aesm_service::sim::sim_dir_for_socket(&self.socket))
    }

    fn evidence_path(&self) -> PathBuf {
        self.evidence
            .clone()
            .unwrap_or_else(|| aesm_service::evidence::evidence_path_for_socket(&self.socket))
    }
}

/// Why attestation failed.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// The quote helper does not answer (not up yet, or not running).
    #[error(
        "the quote helper{} does not answer: {source}",
        on_socket(socket, source)
    )]
    Unavailable {
        /// Its socket.
        socket: PathBuf,
        /// The cause.
        source: ClientError,
    },
    /// The helper answers on hardware (no simulated CPU material) and has published no platform
    /// evidence yet: it does with the first quote it makes for an app.
    #[error(
        "the quote helper on {socket} has published no platform evidence at {path} yet (it does \
         with its first quote for an app; without an enclave of its own the driver has no other)"
    )]
    NoEvidence {
        /// The socket.
        socket: PathBuf,
        /// Where the evidence was looked for.
        path: PathBuf,
    },
    /// The platform evidence exists but cannot be read.
    #[error("cannot read the platform evidence {path}: {source}")]
    EvidenceFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The simulated CPU material exists but does not load.
    #[error("cannot load the simulated CPU from {dir}: {reason}")]
    SimCpu {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        reason: String,
    },
    /// The quote flow failed.
    #[error("no quote from {socket}: {source}")]
    Quote {
        /// The socket.
        socket: PathBuf,
        /// The cause.
        source: FlowError,
    },
    /// The quote does not parse.
    #[error("the quote helper returned a malformed quote: {0}")]
    Malformed(String),
    /// The quote's platform or collateral could not be had.
    #[error(transparent)]
    Collateral(#[from] QuoteCollateralError),
    /// The collateral directory does not load.
    #[error("cannot load the collateral from {path}: {reason}")]
    CollateralDir {
        /// The path.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
    /// The PCCS client could not be built.
    #[error("cannot use the PCCS at {url}: {reason}")]
    PccsClient {
        /// The URL.
        url: String,
        /// The cause.
        reason: String,
    },
    /// The quote does not verify under the collateral.
    #[error("the node's attestation does not verify: {0}")]
    Verify(VerifyError),
}

/// ` on <socket>`, unless the cause names the socket already.
fn on_socket(socket: &Path, source: &ClientError) -> String {
    match source {
        ClientError::ServiceUnavailable { path, .. } if path == socket => String::new(),
        _ => format!(" on {}", socket.display()),
    }
}

impl AttestError {
    /// Whether trying again soon may help (the helper or the PCCS may come up); evidence that a
    /// hardware helper has not published yet comes with an app's quote (looked at again rarely).
    pub fn is_transient(&self) -> bool {
        !matches!(self, AttestError::NoEvidence { .. })
    }
}

/// One attestation's outcome.
#[derive(Debug)]
pub struct Attested {
    /// What is known.
    pub attestation: Attestation,
    /// When to attest again (Unix seconds): the collateral's earliest `nextUpdate`.
    pub refresh_at: Option<u64>,
    /// Why the TCB status is missing although a quote was had (collateral unreachable).
    pub collateral_error: Option<AttestError>,
}

/// The identity of the driver's own (simulated) enclave.
fn probe_enclave() -> EnclaveIdentity {
    EnclaveIdentity {
        mr_enclave: *b"confcom dra-driver attestation..",
        ..EnclaveIdentity::default()
    }
}

fn report_data() -> [u8; 64] {
    let mut data = [0u8; 64];
    let tag = b"confcom dra-driver platform attributes";
    data[..tag.len()].copy_from_slice(tag);
    data
}

/// The node's attestation evidence: a quote of the driver's own, or the platform part of the
/// helper's quotes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// A whole quote (simulated nodes).
    Quote(Vec<u8>),
    /// Platform evidence: a quote without an enclave's report body and ISV signature (hardware).
    Platform(Vec<u8>),
}

impl Evidence {
    /// The quote-format bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Evidence::Quote(bytes) | Evidence::Platform(bytes) => bytes,
        }
    }
}

/// The node's evidence: a quote of the driver's own where the helper publishes simulated CPU
/// material, else the platform evidence the helper publishes (checked to answer first).
pub fn take_evidence(config: &AttestConfig) -> Result<Evidence, AttestError> {
    if config.cpu_dir().join(sgx_sim::CPU_FILE).exists() {
        return take_quote(config).map(Evidence::Quote);
    }
    let client = AesmClient::new(&config.socket)
        .with_timeout(Duration::from_secs(30))
        .with_service_wait(Duration::ZERO);
    if let Err(source) = client.get_supported_att_key_id_num() {
        return Err(AttestError::Unavailable {
            socket: config.socket.clone(),
            source,
        });
    }
    let path = config.evidence_path();
    match aesm_service::evidence::read_evidence(&path) {
        Ok(bytes) => Ok(Evidence::Platform(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(AttestError::NoEvidence {
            socket: config.socket.clone(),
            path,
        }),
        Err(source) => Err(AttestError::EvidenceFile { path, source }),
    }
}

/// Takes one quote through the helper on `config.socket`, with a report from the simulated CPU
/// material the helper publishes.
pub fn take_quote(config: &AttestConfig) -> Result<Vec<u8>, AttestError> {
    let client = AesmClient::new(&config.socket)
        .with_timeout(Duration::from_secs(30))
        .with_service_wait(Duration::ZERO);
    let dir = config.cpu_dir();
    let cpu = SimCpu::load(&dir).map_err(|e| AttestError::SimCpu {
        dir: dir.clone(),
        reason: e.to_string(),
    })?;
    match quote_via_socket(&client, &cpu, &probe_enclave(), &report_data()) {
        Ok(app) => Ok(app.quote),
        Err(FlowError::Aesm { source, .. })
            if matches!(source, ClientError::ServiceUnavailable { .. }) =>
        {
            Err(AttestError::Unavailable {
                socket: config.socket.clone(),
                source,
            })
        }
        Err(source) => Err(AttestError::Quote {
            socket: config.socket.clone(),
            source,
        }),
    }
}

/// The platform attributes of `quote`, a quote or platform evidence (no TCB status). The CPU SVN
/// is the QE's report's: the same for every enclave of the platform, and signed by the PCK key.
pub fn platform_attributes(quote: &[u8]) -> Result<Attestation, AttestError> {
    let parsed = Quote::parse(quote).map_err(|e| AttestError::Malformed(e.to_string()))?;
    let platform = quote_platform(&parsed)?;
    Ok(Attestation {
        fmspc: Some(platform.fmspc),
        pce_svn: Some(parsed.header.pce_svn),
        cpu_svn: Some(parsed.signature.qe_report.cpu_svn),
        tcb_status: None,
        tcb_date: None,
    })
}

fn collateral_for(config: &AttestConfig, quote: &[u8]) -> Result<Option<Collateral>, AttestError> {
    match &config.collateral {
        CollateralConfig::None => Ok(None),
        CollateralConfig::Dir(path) => {
            Collateral::load(path)
                .map(Some)
                .map_err(|e| AttestError::CollateralDir {
                    path: path.clone(),
                    reason: e.to_string(),
                })
        }
        CollateralConfig::Pccs {
            url,
            ca_files,
            timeout,
        } => {
            let options = ClientOptions {
                ca_files: ca_files.clone(),
                ..ClientOptions::default()
            };
            let client = PccsClient::with_options(url, *timeout, options).map_err(|e| {
                AttestError::PccsClient {
                    url: url.clone(),
                    reason: e.to_string(),
                }
            })?;
            let parsed = Quote::parse(quote).map_err(|e| AttestError::Malformed(e.to_string()))?;
            let (_, collateral) = pccs::quote::fetch_quote_collateral(&client, &parsed)?;
            Ok(Some(collateral))
        }
    }
}

/// Takes a quote and evaluates it at the time `now` tells (Unix seconds) once the collateral is
/// in: the platform attributes whenever a quote was had, the TCB status and date when the
/// collateral was too. (The time is read after the fetch: collateral issued while it ran, as a
/// simulated PCCS issues it, is not "from the future".)
pub fn attest_once(config: &AttestConfig, now: impl Fn() -> u64) -> Result<Attested, AttestError> {
    let evidence = take_evidence(config)?;
    let quote = evidence.bytes();
    let mut attestation = platform_attributes(quote)?;
    let collateral = match collateral_for(config, quote) {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Ok(Attested {
                attestation,
                refresh_at: None,
                collateral_error: None,
            });
        }
        Err(e) => {
            return Ok(Attested {
                attestation,
                refresh_at: None,
                collateral_error: Some(e),
            });
        }
    };
    let anchor = match (&config.root, config.root_from_quote) {
        (Some(root), _) => root.clone(),
        (None, true) => match quote_root(quote) {
            Ok(root) => root,
            Err(e) => {
                return Ok(Attested {
                    attestation,
                    refresh_at: None,
                    collateral_error: Some(e),
                });
            }
        },
        (None, false) => TrustAnchor::intel(),
    };
    // The status is wanted whatever it is; acceptance is the workloads' policy.
    let policy = Policy {
        allow_debug: true,
        accepted_statuses: TcbStatus::ALL.to_vec(),
        ..Policy::default()
    };
    let verifier = dcap_verify::Verifier::new(anchor);
    let verdict = match &evidence {
        Evidence::Quote(quote) => verifier.verify(quote, &collateral, now(), &policy),
        Evidence::Platform(evidence) => verifier.verify_platform(evidence, &collateral, now()),
    };
    match verdict {
        Ok(verdict) => {
            attestation.tcb_status = Some(verdict.status);
            attestation.tcb_date = Some(verdict.tcb_date.clone());
            Ok(Attested {
                attestation,
                refresh_at: Some(verdict.earliest_expiry),
                collateral_error: None,
            })
        }
        Err(e) => Ok(Attested {
            attestation,
            refresh_at: None,
            collateral_error: Some(AttestError::Verify(e)),
        }),
    }
}

/// The root certificate the PCK chain of `quote` ends in.
fn quote_root(quote: &[u8]) -> Result<TrustAnchor, AttestError> {
    let parsed = Quote::parse(quote).map_err(|e| AttestError::Malformed(e.to_string()))?;
    let chain = parsed
        .signature
        .certification_data
        .pck_chain_pem()
        .ok_or_else(|| {
            AttestError::Malformed("the quote carries no PCK certificate chain".into())
        })?;
    let certs = sgx_types::pck::split_pem_chain(chain)
        .map_err(|e| AttestError::Malformed(format!("the quote's PCK chain: {e}")))?;
    let root = certs
        .last()
        .ok_or_else(|| AttestError::Malformed("the quote's PCK chain is empty".into()))?;
    TrustAnchor::from_der(root).map_err(AttestError::Verify)
}

/// Keeps `attributes` up to date until `shutdown` completes (also while attesting): attests at
/// once, then again when the collateral's `nextUpdate` comes (at most
/// [`AttestConfig::max_refresh`] later), and after failures with a backoff from
/// [`AttestConfig::retry`] to [`AttestConfig::max_retry`]. What was once known stays published
/// while the helper or the PCCS is away. On hardware, until the helper has published its platform
/// evidence, it says so once and attests as soon as the evidence is there (looked for every
/// [`AttestConfig::retry`]; attested again after [`AttestConfig::max_retry`] in any case).
pub async fn run(
    config: AttestConfig,
    attributes: watch::Sender<Attestation>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut backoff = config.retry;
    let mut said_no_evidence = false;
    loop {
        // One attestation may wait out the helper's and the PCCS's timeouts: the shutdown does
        // not (a child process is killed; an in-process task finishes on its own).
        let outcome = tokio::select! {
            () = &mut shutdown => return,
            outcome = config.runner.attest(&config) => outcome,
        };
        let wait = match outcome {
            child::Outcome::Attested {
                attestation,
                refresh_at,
                collateral_error,
            } => {
                let mut next = attestation;
                let failed = collateral_error.is_some();
                if let Some(e) = &collateral_error {
                    tracing::warn!(error = %e, "no TCB status for the node's platform yet");
                    // Keep the last known status while the collateral is away.
                    let previous = attributes.borrow();
                    if previous.fmspc == next.fmspc {
                        next.tcb_status = previous.tcb_status;
                        next.tcb_date.clone_from(&previous.tcb_date);
                    }
                }
                let changed = attributes.send_if_modified(|current| {
                    if *current == next {
                        false
                    } else {
                        *current = next.clone();
                        true
                    }
                });
                if changed {
                    tracing::info!(
                        fmspc = next.fmspc.map(hex::encode).unwrap_or_default(),
                        tcb_status = next.tcb_status.map(TcbStatus::name).unwrap_or_default(),
                        tcb_date = next.tcb_date.as_deref().unwrap_or_default(),
                        "platform attributes from the node's attestation"
                    );
                }
                if failed {
                    crate::next_backoff(&mut backoff, config.max_retry)
                } else {
                    backoff = config.retry;
                    refresh_wait(&config, refresh_at, pccs::upstream::now())
                }
            }
            child::Outcome::Failed {
                error: e,
                transient: false,
            } => {
                // No evidence yet (a hardware helper publishes it with its first quote for an
                // app; a simulated helper that is just starting listens before it publishes its
                // CPU material): said once; attested again as soon as either appears (a stat
                // every `retry`), or after `max_retry`.
                if !said_no_evidence {
                    said_no_evidence = true;
                    tracing::warn!(error = %e, "no attestation attributes");
                }
                tokio::select! {
                    () = &mut shutdown => return,
                    () = evidence_appears(&config) => {}
                }
                Duration::ZERO
            }
            child::Outcome::Failed {
                error: e,
                transient: true,
            } => {
                tracing::warn!(error = %e, retry_in = ?backoff, "attestation failed");
                crate::next_backoff(&mut backoff, config.max_retry)
            }
        };
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Completes when the platform evidence or the simulated CPU material is in place (looked for
/// every [`AttestConfig::retry`]), or after [`AttestConfig::max_retry`].
async fn evidence_appears(config: &AttestConfig) {
    let (evidence, cpu) = (
        config.evidence_path(),
        config.cpu_dir().join(sgx_sim::CPU_FILE),
    );
    let step = config.retry.max(Duration::from_millis(1));
    let deadline = tokio::time::Instant::now() + config.max_retry;
    while tokio::time::Instant::now() < deadline {
        let until = deadline.min(tokio::time::Instant::now() + step);
        tokio::time::sleep_until(until).await;
        if evidence.exists() || cpu.exists() {
            return;
        }
    }
}

/// How long until the refresh at `refresh_at` (Unix seconds), within the configured bounds.
pub fn refresh_wait(config: &AttestConfig, refresh_at: Option<u64>, now: u64) -> Duration {
    let until = refresh_at.map_or(config.max_refresh, |at| {
        Duration::from_secs(at.saturating_sub(now))
    });
    until.clamp(
        config.min_refresh,
        config.max_refresh.max(config.min_refresh),
    )
}

/// The default AESM socket of the node's quote helper.
pub fn default_socket() -> &'static Path {
    Path::new(aesm_service::listen::DEFAULT_SOCKET_PATH)
}

pub mod child;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn an_unavailable_helper_is_named_once() {
        let socket = PathBuf::from("/var/run/aesmd/aesm.socket");
        let refused = AttestError::Unavailable {
            socket: socket.clone(),
            source: ClientError::ServiceUnavailable {
                path: socket.clone(),
                source: std::io::ErrorKind::ConnectionRefused.into(),
            },
        };
        let text = refused.to_string();
        assert_eq!(
            text.matches("/var/run/aesmd/aesm.socket").count(),
            1,
            "{text}"
        );
        assert!(
            text.starts_with("the quote helper does not answer: "),
            "{text}"
        );
        // A cause that does not name the socket keeps it in the message.
        let timed_out = AttestError::Unavailable {
            socket,
            source: ClientError::Timeout {
                stage: quote_client::Stage::Read,
                timeout: Duration::from_secs(30),
            },
        };
        let text = timed_out.to_string();
        assert!(
            text.starts_with("the quote helper on /var/run/aesmd/aesm.socket does not answer: "),
            "{text}"
        );
    }
}

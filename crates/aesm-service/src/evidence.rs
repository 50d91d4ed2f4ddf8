//! Platform evidence: the platform part of the quotes the helper makes, published beside its
//! socket for node agents that need the platform's attestation but have no enclave to make a
//! report with (the SGX DRA driver on hardware).
//!
//! The evidence is a quote of this platform whose enclave report body and ISV signature are
//! zeros: what remains — the header (QE and PCE SVN, QE vendor id and user data), the attestation
//! key, the QE report and its signature by the PCK key, the QE authentication data and the PCK
//! certificate chain — describes the platform and its quoting enclave, never an app. It verifies
//! as evidence of the platform (`dcap_verify::Verifier::verify_platform` in the verifier crate)
//! by every check of a quote but the app's signature: the PCK chain to the root, the QE report
//! signed by the PCK key and bound to the attestation key, the QE against its identity, the
//! platform's TCB level from the PCK certificate.
//!
//! The file is [`PLATFORM_QUOTE_FILE`] in the socket's directory, mode 0644, replaced atomically
//! and only when the platform part changes (a new attestation key, PCK certificate or QE), so a
//! quote costs one comparison.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sgx_types::quote::{HEADER_LEN, Quote, SIGNATURE_DATA_OFFSET, SIGNED_LEN};
use sgx_types::structs::ReportBody;

/// The evidence file's name, in the directory of the AESM socket.
pub const PLATFORM_QUOTE_FILE: &str = "platform-quote.dat";

/// Largest evidence file read back (quotes are about 5 KiB; the AESM buffer cap is 64 KiB).
pub const MAX_EVIDENCE_BYTES: u64 = 64 * 1024;

/// Mode of the evidence file: anyone on the node may read it (it holds no secret).
const EVIDENCE_MODE: u32 = 0o644;

/// The evidence file of the quote helper whose socket is `socket`.
pub fn evidence_path_for_socket(socket: &Path) -> PathBuf {
    socket
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(PLATFORM_QUOTE_FILE)
}

/// The platform part of `quote`: the quote (without trailing padding) with its enclave report
/// body and ISV signature set to zeros.
pub fn redact(quote: &[u8]) -> Result<Vec<u8>, sgx_types::ParseError> {
    let mut parsed = Quote::parse(quote)?;
    parsed.report_body = ReportBody::default();
    parsed.signature.isv_signature = [0; 64];
    Ok(parsed.to_bytes())
}

/// Keeps the evidence file up to date with the quotes the helper makes.
pub struct EvidenceRecorder {
    path: PathBuf,
    recheck: Duration,
    state: Mutex<State>,
}

struct State {
    /// What the file holds (as written or found at start), `None` when unknown.
    last: Option<Vec<u8>>,
    /// When the file was last seen in place.
    seen: Option<Instant>,
    /// A write failed and was logged: the next failures are not (until one succeeds).
    failing: bool,
}

impl fmt::Debug for EvidenceRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvidenceRecorder")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl EvidenceRecorder {
    /// A recorder writing `path`; what the file already holds counts as written (a restart does
    /// not rewrite an unchanged file).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let last = read_evidence(&path).ok();
        Self {
            path,
            recheck: RECHECK,
            state: Mutex::new(State {
                last,
                seen: None,
                failing: false,
            }),
        }
    }

    /// Looks for the file in place at most every `recheck` (default one second): a removed file
    /// is written again with the first quote after that.
    pub fn with_recheck(mut self, recheck: Duration) -> Self {
        self.recheck = recheck;
        self
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records the platform part of `quote`, a quote the helper made: writes the file when it
    /// changed or is gone. Failures are logged, never returned: the app's quote does not depend
    /// on them.
    pub fn record(&self, quote: &[u8]) {
        {
            // The common case, without allocating: the platform part is the one published, and
            // the file was seen in place within the last `recheck` (one stat per period).
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state
                .last
                .as_deref()
                .is_some_and(|last| same_platform(quote, last))
            {
                if state.seen.is_some_and(|at| at.elapsed() < self.recheck) {
                    return;
                }
                if self.path.is_file() {
                    state.seen = Some(Instant::now());
                    return;
                }
            }
        }
        let evidence = match redact(quote) {
            Ok(evidence) => evidence,
            Err(e) => {
                tracing::warn!(error = %e, "no platform evidence from a quote that does not parse");
                return;
            }
        };
        // A poisoned lock only means a panic elsewhere while comparing: the state is whole.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // Another thread may have written the same meanwhile.
        if state.last.as_deref() == Some(evidence.as_slice()) && self.path.is_file() {
            return;
        }
        match sgx_sim::write_file_atomic(&self.path, &evidence, EVIDENCE_MODE) {
            Ok(()) => {
                tracing::info!(path = %self.path.display(), "platform evidence published");
                state.last = Some(evidence);
                state.seen = Some(Instant::now());
                state.failing = false;
            }
            Err(e) => {
                if !state.failing {
                    tracing::warn!(error = %e, "cannot publish the platform evidence (tried again with the next quote)");
                }
                state.last = None;
                state.failing = true;
            }
        }
    }
}

/// How long the file counts as in place after it was last seen there.
const RECHECK: Duration = Duration::from_secs(1);

/// Whether `quote` (possibly padded) has the platform part `evidence` holds: the same length,
/// header and signature data after the ISV signature (what [`redact`] keeps).
fn same_platform(quote: &[u8], evidence: &[u8]) -> bool {
    let platform_start = SIGNATURE_DATA_OFFSET + 64;
    if evidence.len() < platform_start || quote.len() < evidence.len() {
        return false;
    }
    // The signature data's length is part of the quote: the same length means the same layout.
    quote.get(SIGNED_LEN..SIGNATURE_DATA_OFFSET) == evidence.get(SIGNED_LEN..SIGNATURE_DATA_OFFSET)
        && quote.get(..HEADER_LEN) == evidence.get(..HEADER_LEN)
        && quote.get(platform_start..evidence.len()) == evidence.get(platform_start..)
}

/// Reads the evidence file at `path` (bounded to [`MAX_EVIDENCE_BYTES`]).
pub fn read_evidence(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_EVIDENCE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_EVIDENCE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} is larger than {MAX_EVIDENCE_BYTES} bytes",
                path.display()
            ),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use sgx_sim::{EnclaveIdentity, InitOptions, SimPlatform};

    use super::*;

    fn sim_platform(dir: &Path) -> SimPlatform {
        let platform = SimPlatform::open_or_init(dir, &InitOptions::default()).unwrap();
        platform.init_attestation_key().unwrap();
        platform
    }

    fn app_quote(platform: &SimPlatform, data: u8) -> Vec<u8> {
        let report = platform.cpu().create_report(
            &EnclaveIdentity::default(),
            &platform.qe_target_info(),
            &[data; 64],
        );
        platform.quote(&report).unwrap()
    }

    #[test]
    fn redaction_keeps_the_platform_and_drops_the_app() {
        let dir = tempfile::tempdir().unwrap();
        let platform = sim_platform(dir.path());
        let quote = app_quote(&platform, 7);
        let mut padded = quote.clone();
        padded.resize(quote.len() + 100, 0);
        let evidence = redact(&padded).unwrap();
        assert_eq!(evidence.len(), quote.len(), "padding dropped");
        let (q, e) = (
            Quote::parse(&quote).unwrap(),
            Quote::parse(&evidence).unwrap(),
        );
        assert_eq!(e.report_body, ReportBody::default());
        assert_eq!(e.signature.isv_signature, [0; 64]);
        assert_eq!(e.header, q.header);
        assert_eq!(e.signature.attestation_key, q.signature.attestation_key);
        assert_eq!(e.signature.qe_report, q.signature.qe_report);
        assert_eq!(
            e.signature.qe_report_signature,
            q.signature.qe_report_signature
        );
        assert_eq!(e.signature.qe_auth_data, q.signature.qe_auth_data);
        assert_eq!(
            e.signature.certification_data,
            q.signature.certification_data
        );
        // Every app's quote gives the same evidence.
        assert_eq!(redact(&app_quote(&platform, 9)).unwrap(), evidence);
        assert!(redact(&[1, 2, 3]).is_err());
    }

    #[test]
    fn the_file_is_written_when_the_platform_part_changes_only() {
        let dir = tempfile::tempdir().unwrap();
        let platform = sim_platform(&dir.path().join("state"));
        let path = evidence_path_for_socket(&dir.path().join("aesm.socket"));
        assert_eq!(path, dir.path().join(PLATFORM_QUOTE_FILE));
        let recorder = EvidenceRecorder::new(&path).with_recheck(Duration::ZERO);
        recorder.record(&app_quote(&platform, 1));
        let written = read_evidence(&path).unwrap();
        assert_eq!(written, redact(&app_quote(&platform, 1)).unwrap());
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o644);
        // Another app's quote: nothing to write (the same inode stays).
        recorder.record(&app_quote(&platform, 2));
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), meta.ino());
        // A restarted helper does not rewrite it either.
        let restarted = EvidenceRecorder::new(&path).with_recheck(Duration::ZERO);
        restarted.record(&app_quote(&platform, 3));
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), meta.ino());
        // A removed file comes back with the next quote.
        std::fs::remove_file(&path).unwrap();
        restarted.record(&app_quote(&platform, 4));
        assert_eq!(read_evidence(&path).unwrap(), written);
        // Another platform (new key, PCK certificate): the file follows.
        let other = sim_platform(&dir.path().join("other"));
        restarted.record(&app_quote(&other, 5));
        assert_eq!(
            read_evidence(&path).unwrap(),
            redact(&app_quote(&other, 5)).unwrap()
        );
        // A malformed quote changes nothing.
        restarted.record(b"not a quote");
        assert_eq!(
            read_evidence(&path).unwrap(),
            redact(&app_quote(&other, 6)).unwrap()
        );
    }

    #[test]
    fn the_platform_comparison_sees_every_byte_redaction_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let platform = sim_platform(dir.path());
        let quote = app_quote(&platform, 1);
        let evidence = redact(&quote).unwrap();
        assert!(same_platform(&quote, &evidence));
        assert!(same_platform(&app_quote(&platform, 2), &evidence));
        let mut padded = quote.clone();
        padded.resize(quote.len() + 64, 0);
        assert!(same_platform(&padded, &evidence));
        // Any byte that redaction keeps makes a difference; the app's report and signature none.
        let isv = SIGNATURE_DATA_OFFSET..SIGNATURE_DATA_OFFSET + 64;
        for i in 0..quote.len() {
            let mut other = quote.clone();
            other[i] ^= 1;
            let kept = !(HEADER_LEN..SIGNED_LEN).contains(&i) && !isv.contains(&i);
            assert_eq!(same_platform(&other, &evidence), !kept, "byte {i}");
        }
        assert!(!same_platform(&quote[..quote.len() - 1], &evidence));
        assert!(!same_platform(&quote, &evidence[..100]));
        let other = sim_platform(&dir.path().join("other"));
        assert!(!same_platform(&app_quote(&other, 1), &evidence));
    }

    #[test]
    fn oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PLATFORM_QUOTE_FILE);
        std::fs::write(&path, vec![0u8; MAX_EVIDENCE_BYTES as usize + 1]).unwrap();
        let err = read_evidence(&path).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(read_evidence(&dir.path().join("missing")).is_err());
    }
}

//! One attestation in a short-lived child process of the driver's own binary, so that the
//! long-running driver never loads the quote, collateral and verification code (nor keeps the
//! memory they touch): the driver writes a [`Request`] (JSON) to the child's stdin, the child runs
//! [`attest_once`] and writes one [`Outcome`] (JSON) to its stdout, and exits 0 whatever the
//! outcome; its log goes to the stderr it shares with the driver.
//!
//! [`Runner`] chooses between that child and the driver's own blocking pool (tests, and the
//! fallback when the settings cannot be handed over).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use dcap_verify::{TcbStatus, TrustAnchor};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{AttestConfig, AttestError, Attestation, Attested, CollateralConfig, attest_once};

/// Largest request the child reads (a few paths, a URL and a root certificate are far less).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Largest result the driver reads from the child (a result is well under 4 KiB).
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;
/// How long the driver lets a child run before it kills it: the attestation's own timeouts
/// (the quote helper's and each PCCS request's) end it well before.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest PCCS request timeout a request may ask for.
const MAX_PCCS_TIMEOUT: Duration = Duration::from_secs(600);
/// Most CA files a request may name.
const MAX_CA_FILES: usize = 64;

/// Where an attestation runs.
#[derive(Clone, Debug, Default)]
pub enum Runner {
    /// On the calling process's blocking pool.
    #[default]
    InProcess,
    /// In a child process ([`ChildCommand`]).
    Child(ChildCommand),
}

/// The command line of the attestation child: a program that reads a [`Request`] on stdin and
/// answers with [`answer`].
#[derive(Clone, Debug)]
pub struct ChildCommand {
    /// The program (the driver's own binary).
    pub program: PathBuf,
    /// The name the child is shown by (its `argv[0]`; default: the program).
    pub arg0: Option<OsString>,
    /// Its arguments (the hidden subcommand that calls [`answer`], and the log format).
    pub args: Vec<OsString>,
    /// How long it may run before it is killed.
    pub timeout: Duration,
}

impl ChildCommand {
    /// The running binary with `args`: `/proc/self/exe`, which stays the very binary that runs
    /// even when its file was replaced on disk, else [`std::env::current_exe`].
    pub fn this_binary(args: Vec<OsString>) -> std::io::Result<Self> {
        let proc_self = PathBuf::from("/proc/self/exe");
        let program = if proc_self.exists() {
            proc_self
        } else {
            std::env::current_exe()?
        };
        Ok(Self {
            program,
            // Shown as the driver is (not as /proc/self/exe).
            arg0: std::env::args_os().next(),
            args,
            timeout: DEFAULT_TIMEOUT,
        })
    }
}

/// One attestation's outcome as the driver's loop uses it, the same from the blocking pool and
/// from a child process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "WireOutcome", try_from = "WireOutcome")]
pub enum Outcome {
    /// A quote was had.
    Attested {
        /// What is known.
        attestation: Attestation,
        /// When to attest again (Unix seconds).
        refresh_at: Option<u64>,
        /// Why the TCB status is missing although a quote was had.
        collateral_error: Option<String>,
    },
    /// No quote.
    Failed {
        /// Why.
        error: String,
        /// Whether trying again soon may help ([`AttestError::is_transient`]).
        transient: bool,
    },
}

impl Outcome {
    /// The outcome of [`attest_once`].
    pub fn from_result(result: Result<Attested, AttestError>) -> Self {
        match result {
            Ok(attested) => Outcome::Attested {
                attestation: attested.attestation,
                refresh_at: attested.refresh_at,
                collateral_error: attested.collateral_error.map(|e| e.to_string()),
            },
            Err(e) => Outcome::Failed {
                transient: e.is_transient(),
                error: e.to_string(),
            },
        }
    }

    /// A failure worth trying again soon.
    fn transient(error: impl std::fmt::Display) -> Self {
        Outcome::Failed {
            error: error.to_string(),
            transient: true,
        }
    }
}

/// The outcome on the wire: hex for the byte strings, Intel's names for the statuses.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum WireOutcome {
    Attested {
        fmspc: Option<String>,
        pce_svn: Option<u16>,
        cpu_svn: Option<String>,
        tcb_status: Option<String>,
        tcb_date: Option<String>,
        refresh_at: Option<u64>,
        collateral_error: Option<String>,
    },
    Failed {
        error: String,
        transient: bool,
    },
}

impl From<Outcome> for WireOutcome {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Attested {
                attestation,
                refresh_at,
                collateral_error,
            } => WireOutcome::Attested {
                fmspc: attestation.fmspc.map(hex::encode),
                pce_svn: attestation.pce_svn,
                cpu_svn: attestation.cpu_svn.map(hex::encode),
                tcb_status: attestation.tcb_status.map(|s| s.name().to_owned()),
                tcb_date: attestation.tcb_date,
                refresh_at,
                collateral_error,
            },
            Outcome::Failed { error, transient } => WireOutcome::Failed { error, transient },
        }
    }
}

impl TryFrom<WireOutcome> for Outcome {
    type Error = String;

    fn try_from(wire: WireOutcome) -> Result<Self, String> {
        Ok(match wire {
            WireOutcome::Attested {
                fmspc,
                pce_svn,
                cpu_svn,
                tcb_status,
                tcb_date,
                refresh_at,
                collateral_error,
            } => Outcome::Attested {
                attestation: Attestation {
                    fmspc: fmspc
                        .as_deref()
                        .map(|h| hex_array("fmspc", h))
                        .transpose()?,
                    pce_svn,
                    cpu_svn: cpu_svn
                        .as_deref()
                        .map(|h| hex_array("cpu_svn", h))
                        .transpose()?,
                    tcb_status: tcb_status
                        .as_deref()
                        .map(|name| {
                            TcbStatus::from_name(name)
                                .ok_or_else(|| format!("tcb_status: unknown TCB status {name:?}"))
                        })
                        .transpose()?,
                    tcb_date,
                },
                refresh_at,
                collateral_error,
            },
            WireOutcome::Failed { error, transient } => Outcome::Failed { error, transient },
        })
    }
}

fn hex_array<const N: usize>(field: &str, text: &str) -> Result<[u8; N], String> {
    let bytes = hex::decode(text).map_err(|e| format!("{field}: {e}"))?;
    <[u8; N]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{field}: {} bytes where {N} are expected", bytes.len()))
}

/// The settings the child needs: those of [`AttestConfig`] that [`attest_once`] reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// [`AttestConfig::socket`].
    pub socket: PathBuf,
    /// The `cpu_dir` of [`AttestConfig`].
    #[serde(default)]
    pub cpu_dir: Option<PathBuf>,
    /// [`AttestConfig::evidence`].
    #[serde(default)]
    pub evidence: Option<PathBuf>,
    /// [`AttestConfig::collateral`].
    pub collateral: WireCollateral,
    /// [`AttestConfig::root`], its DER in hex.
    #[serde(default)]
    pub root: Option<String>,
    /// [`AttestConfig::root_from_quote`].
    #[serde(default)]
    pub root_from_quote: bool,
}

/// [`CollateralConfig`] on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WireCollateral {
    /// [`CollateralConfig::None`].
    None,
    /// [`CollateralConfig::Pccs`].
    Pccs {
        /// The base URL.
        url: String,
        /// CA files.
        #[serde(default)]
        ca_files: Vec<PathBuf>,
        /// Timeout of each request, in milliseconds.
        timeout_ms: u64,
    },
    /// [`CollateralConfig::Dir`].
    Dir(PathBuf),
}

/// Why the settings cannot be handed to a child, or a request is refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RequestError(String);

impl Request {
    /// The request for `config`. Paths that are not UTF-8 cannot be handed over (the caller
    /// attests in process then).
    pub fn for_config(config: &AttestConfig) -> Result<Self, RequestError> {
        let utf8 = |what: &str, path: &std::path::Path| {
            if path.to_str().is_some() {
                Ok(path.to_path_buf())
            } else {
                Err(RequestError(format!(
                    "{what} {} is not UTF-8",
                    path.display()
                )))
            }
        };
        let collateral = match &config.collateral {
            CollateralConfig::None => WireCollateral::None,
            CollateralConfig::Pccs {
                url,
                ca_files,
                timeout,
            } => WireCollateral::Pccs {
                url: url.clone(),
                ca_files: ca_files
                    .iter()
                    .map(|f| utf8("the CA file", f))
                    .collect::<Result<_, _>>()?,
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            },
            CollateralConfig::Dir(path) => WireCollateral::Dir(utf8("the collateral", path)?),
        };
        Ok(Self {
            socket: utf8("the socket", &config.socket)?,
            cpu_dir: config
                .cpu_dir
                .as_deref()
                .map(|d| utf8("the CPU directory", d))
                .transpose()?,
            evidence: config
                .evidence
                .as_deref()
                .map(|f| utf8("the platform evidence", f))
                .transpose()?,
            collateral,
            root: config.root.as_ref().map(|r| hex::encode(r.der())),
            root_from_quote: config.root_from_quote,
        })
    }

    /// The settings of the request, checked.
    pub fn into_config(self) -> Result<AttestConfig, RequestError> {
        let bad = |text: String| Err(RequestError(text));
        if self.socket.as_os_str().is_empty() {
            return bad("the socket path is empty".into());
        }
        if self
            .cpu_dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            return bad("the CPU directory is empty".into());
        }
        if self
            .evidence
            .as_ref()
            .is_some_and(|f| f.as_os_str().is_empty())
        {
            return bad("the platform evidence path is empty".into());
        }
        let collateral = match self.collateral {
            WireCollateral::None => CollateralConfig::None,
            WireCollateral::Pccs {
                url,
                ca_files,
                timeout_ms,
            } => {
                if url.is_empty() {
                    return bad("the PCCS URL is empty".into());
                }
                if ca_files.len() > MAX_CA_FILES {
                    return bad(format!(
                        "{} CA files, at most {MAX_CA_FILES}",
                        ca_files.len()
                    ));
                }
                let timeout = Duration::from_millis(timeout_ms);
                if timeout.is_zero() || timeout > MAX_PCCS_TIMEOUT {
                    return bad(format!(
                        "PCCS timeout {timeout_ms} ms, not within 1 ms..={} s",
                        MAX_PCCS_TIMEOUT.as_secs()
                    ));
                }
                CollateralConfig::Pccs {
                    url,
                    ca_files,
                    timeout,
                }
            }
            WireCollateral::Dir(path) => {
                if path.as_os_str().is_empty() {
                    return bad("the collateral path is empty".into());
                }
                CollateralConfig::Dir(path)
            }
        };
        let root = match self.root {
            None => None,
            Some(text) => {
                let der = hex::decode(&text)
                    .map_err(|e| RequestError(format!("the root certificate: {e}")))?;
                Some(
                    TrustAnchor::from_der(&der)
                        .map_err(|e| RequestError(format!("the root certificate: {e}")))?,
                )
            }
        };
        let mut config = AttestConfig::new(self.socket, collateral);
        config.cpu_dir = self.cpu_dir;
        config.evidence = self.evidence;
        config.root = root;
        config.root_from_quote = self.root_from_quote;
        Ok(config)
    }

    /// The request in `bytes` (at most [`MAX_REQUEST_BYTES`], one JSON document).
    pub fn parse(bytes: &[u8]) -> Result<Self, RequestError> {
        if bytes.len() > MAX_REQUEST_BYTES {
            return Err(RequestError(format!(
                "the request is over {MAX_REQUEST_BYTES} bytes"
            )));
        }
        serde_json::from_slice(bytes)
            .map_err(|e| RequestError(format!("the request is not valid: {e}")))
    }
}

/// Why no outcome came from a child.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// It could not be started.
    #[error("cannot start the attestation process {program}: {source}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Reading its result or waiting for it failed.
    #[error("the attestation process: {0}")]
    Io(#[from] std::io::Error),
    /// It ran past its timeout and was killed.
    #[error("the attestation process ran over {0:?} and was killed")]
    Timeout(Duration),
    /// It failed (its own message is in the log before this).
    #[error("the attestation process exited with {0}")]
    Exit(ExitStatus),
    /// Its output is too long.
    #[error("the attestation process wrote more than {MAX_OUTPUT_BYTES} bytes")]
    Oversized,
    /// It wrote nothing.
    #[error("the attestation process wrote no result")]
    NoResult,
    /// Its output is not a result.
    #[error("the attestation process wrote a malformed result: {0}")]
    Malformed(String),
}

/// The outcome a child wrote: one JSON document of at most [`MAX_OUTPUT_BYTES`] bytes.
pub fn parse_output(bytes: &[u8]) -> Result<Outcome, ChildError> {
    if bytes.len() > MAX_OUTPUT_BYTES {
        return Err(ChildError::Oversized);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ChildError::NoResult);
    }
    serde_json::from_slice(bytes).map_err(|e| ChildError::Malformed(e.to_string()))
}

/// The child's side: reads a [`Request`] from `input` (at most [`MAX_REQUEST_BYTES`]), attests
/// once with the clock `now` and writes the [`Outcome`] as one line of JSON to `output`. An
/// error means no outcome was written (a refused request, or `output` failed).
pub fn answer(
    input: impl Read,
    mut output: impl Write,
    now: impl Fn() -> u64,
) -> Result<(), RequestError> {
    let mut bytes = Vec::new();
    input
        .take(MAX_REQUEST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| RequestError(format!("cannot read the request: {e}")))?;
    let config = Request::parse(&bytes)?.into_config()?;
    let outcome = Outcome::from_result(attest_once(&config, now));
    let mut line = serde_json::to_vec(&outcome)
        .map_err(|e| RequestError(format!("cannot encode the result: {e}")))?;
    line.push(b'\n');
    output
        .write_all(&line)
        .and_then(|()| output.flush())
        .map_err(|e| RequestError(format!("cannot write the result: {e}")))
}

impl Runner {
    /// Attests once as `config` says, where this runner runs attestations. Every failure,
    /// including a child that could not run or gave no result, is an [`Outcome::Failed`].
    pub async fn attest(&self, config: &AttestConfig) -> Outcome {
        let command = match self {
            Runner::InProcess => return in_process(config).await,
            Runner::Child(command) => command,
        };
        let request = match Request::for_config(config) {
            Ok(request) => request,
            Err(e) => {
                tracing::debug!(error = %e, "attesting in process");
                return in_process(config).await;
            }
        };
        run_child(command, &request)
            .await
            .unwrap_or_else(Outcome::transient)
    }
}

async fn in_process(config: &AttestConfig) -> Outcome {
    let job = config.clone();
    match tokio::task::spawn_blocking(move || attest_once(&job, pccs::upstream::now)).await {
        Ok(result) => Outcome::from_result(result),
        Err(e) => Outcome::transient(format!("the attestation task failed: {e}")),
    }
}

/// Runs `command` with `request` on its stdin; the child is killed when this future is dropped
/// (the driver shuts down) or its timeout passes.
pub async fn run_child(command: &ChildCommand, request: &Request) -> Result<Outcome, ChildError> {
    let body = serde_json::to_vec(request).map_err(|e| ChildError::Malformed(e.to_string()))?;
    let mut child = tokio::process::Command::new(&command.program);
    if let Some(arg0) = &command.arg0 {
        child.arg0(arg0);
    }
    let mut child = child
        .args(&command.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ChildError::Spawn {
            program: command.program.clone(),
            source,
        })?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        // Both are piped above, so both are there.
        return Err(ChildError::Io(std::io::Error::other(
            "no pipe to the attestation process",
        )));
    };
    let exchange = async {
        let write = async {
            let written = stdin.write_all(&body).await;
            // End of the request.
            drop(stdin);
            written
        };
        let mut output = Vec::new();
        let mut stdout = stdout.take(MAX_OUTPUT_BYTES as u64 + 1);
        let read = stdout.read_to_end(&mut output);
        let (written, read) = tokio::join!(write, read);
        read?;
        if output.len() > MAX_OUTPUT_BYTES {
            return Err(ChildError::Oversized);
        }
        let status = child.wait().await?;
        if !status.success() {
            return Err(ChildError::Exit(status));
        }
        written?;
        parse_output(&output)
    };
    // On a timeout or an oversized output the child is killed as `child` is dropped.
    tokio::time::timeout(command.timeout, exchange)
        .await
        .unwrap_or(Err(ChildError::Timeout(command.timeout)))
}

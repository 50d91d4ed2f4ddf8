//! `confcom verify QUOTE... --collateral FILE|DIR | --pccs URL | --pcs [...]`: verify DCAP quotes and
//! apply a relying-party policy.
//!
//! With `--pccs` (or `--pcs`, Intel's public service) the collateral each quote needs is fetched:
//! the FMSPC and the CA type come from the quote's PCK certificate, and quotes of one platform share
//! one fetch.
//!
//! Exit codes: 0 accepted; 1 a verification check failed or the policy rejected the quote; 2 input that
//! cannot be read at all (missing file, not a quote, unsupported quote version, collateral that is not
//! JSON, an unusable root). With several quotes (or `--batch DIR`) they are verified in parallel, one
//! line (or JSON object) per file in the order given, and the exit code is the worst one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use dcap_verify::{Collateral, Policy, TcbStatus, TrustAnchor, Verdict, Verifier, VerifyError};
use pccs::CaType;
use pccs::UpstreamSource;
use pccs::client::{ClientOptions, FetchedCollateral, PccsClient};
use pccs::store::Store;
use serde::Serialize;
use sgx_sim::files;
use sgx_types::quote::Quote;

use crate::args;
use crate::input::read_quote_file;
use crate::render::{ReportBodyJson, identity_text, rfc3339};

/// Marks every verdict made under a root other than Intel's.
const NOT_INTEL: &str = "SIMULATED or private PKI";

#[derive(clap::Args)]
pub struct Args {
    /// Quote files: binary, hex or base64 (detected from the content).
    #[arg(value_name = "QUOTE")]
    pub quotes: Vec<PathBuf>,
    /// Collateral: a dcap-qvl QuoteCollateralV3 JSON file, or a directory in the PCS layout.
    #[arg(long, value_name = "FILE|DIR", required_unless_present_any = ["pccs", "pcs"], conflicts_with_all = ["pccs", "pcs"])]
    pub collateral: Option<PathBuf>,
    /// Fetch the collateral from this PCCS (`https://host:8081`, or a base ending in
    /// `/sgx/certification/v4/` or `/v3/`).
    #[arg(long, value_name = "URL", conflicts_with = "pcs")]
    pub pccs: Option<String>,
    /// Fetch the collateral from Intel's Provisioning Certification Service.
    #[arg(long)]
    pub pcs: bool,
    /// Timeout of each collateral request, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub fetch_timeout: u64,
    /// PEM CA certificates trusted for --pccs besides Mozilla's roots and the system's store
    /// (which SSL_CERT_FILE and SSL_CERT_DIR may name): a PCCS under a private CA, such as the
    /// ca.crt of `confcom pccs certs` (repeatable).
    #[arg(long, value_name = "FILE", requires = "pccs")]
    pub pccs_ca_file: Vec<PathBuf>,
    /// Keep fetched collateral in this directory and use it until it is due again (an hour before
    /// its nextUpdate, at the latest after a day), or while the service fails.
    #[arg(long, value_name = "DIR", conflicts_with = "collateral")]
    pub cache_dir: Option<PathBuf>,
    /// Also write the fetched collateral to this directory, in the PCS layout `--collateral DIR`
    /// reads (one quote only).
    #[arg(long, value_name = "DIR")]
    pub save_collateral: Option<PathBuf>,
    /// Trust anchor (PEM or DER) instead of the built-in Intel SGX Root CA.
    #[arg(long, value_name = "FILE")]
    pub root: Option<PathBuf>,
    /// Verification time: Unix seconds or RFC 3339 (default: now).
    #[arg(long, value_name = "UNIX|RFC3339", value_parser = parse_now)]
    pub now: Option<u64>,
    /// Accept debug enclaves.
    #[arg(long)]
    pub allow_debug: bool,
    /// Accepted TCB statuses (default: UpToDate,SWHardeningNeeded,ConfigurationNeeded,ConfigurationAndSWHardeningNeeded).
    #[arg(long, value_name = "STATUS,...", value_delimiter = ',', value_parser = parse_status)]
    pub accept: Vec<TcbStatus>,
    /// Expected MRENCLAVE (64 hex digits).
    #[arg(long, value_name = "HEX", value_parser = args::hex_array::<32>)]
    pub mrenclave: Option<[u8; 32]>,
    /// Expected MRSIGNER (64 hex digits).
    #[arg(long, value_name = "HEX", value_parser = args::hex_array::<32>)]
    pub mrsigner: Option<[u8; 32]>,
    /// Expected ISVPRODID.
    #[arg(long, value_name = "N")]
    pub isv_prod_id: Option<u16>,
    /// Minimum ISVSVN.
    #[arg(long, value_name = "N")]
    pub min_isv_svn: Option<u16>,
    /// Expected report data: up to 64 bytes in hex, compared with the start of the report data.
    #[arg(long, value_name = "HEX", value_parser = parse_report_data)]
    pub report_data: Option<ReportData>,
    /// Minimum tcbEvaluationDataNumber.
    #[arg(long, value_name = "N")]
    pub min_tcb_eval: Option<u32>,
    /// Print JSON (one object per line with several quotes).
    #[arg(long)]
    pub json: bool,
    /// Verify every file in this directory (in parallel, one line per file).
    #[arg(long, value_name = "DIR")]
    pub batch: Option<PathBuf>,
    /// Worker threads for several quotes (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

fn parse_now(s: &str) -> Result<u64, String> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    dcap_verify::time::parse_rfc3339(s)
        .ok_or_else(|| format!("{s:?} is neither Unix seconds nor an RFC 3339 date"))
}

fn parse_status(s: &str) -> Result<TcbStatus, String> {
    s.trim()
        .parse()
        .map_err(|e: sgx_types::tcb::UnknownTcbStatus| e.to_string())
}

/// Expected report data (1 to 64 bytes); a newtype so that clap takes it as one value.
#[derive(Debug, Clone)]
pub struct ReportData(pub Vec<u8>);

fn parse_report_data(s: &str) -> Result<ReportData, String> {
    let bytes = args::hex_bytes(s)?;
    if bytes.is_empty() || bytes.len() > 64 {
        return Err(format!("expected 1 to 64 bytes, got {}", bytes.len()));
    }
    Ok(ReportData(bytes))
}

/// Exit codes.
const EXIT_ACCEPTED: u8 = 0;
const EXIT_REJECTED: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;

/// What happened to one quote file.
enum Outcome {
    Verified(Box<Verdict>),
    Failed(VerifyError),
    Unreadable(String),
}

impl Outcome {
    fn exit_code(&self) -> u8 {
        match self {
            Outcome::Verified(v) if v.accepted => EXIT_ACCEPTED,
            Outcome::Verified(_) | Outcome::Failed(_) => EXIT_REJECTED,
            Outcome::Unreadable(_) => EXIT_BAD_INPUT,
        }
    }
}

fn check_one(
    verifier: &Verifier,
    path: &Path,
    collateral: &CollateralSource,
    now: Option<u64>,
    policy: &Policy,
) -> Outcome {
    let bytes = match read_quote_file(path) {
        Ok((bytes, _)) => bytes,
        Err(e) => return Outcome::Unreadable(crate::errors::one_line(e.as_ref())),
    };
    let quote = match Quote::parse(&bytes) {
        Ok(quote) => quote,
        Err(e) => return Outcome::Unreadable(format!("not a valid quote: {e}")),
    };
    let collateral = match collateral.for_quote(&quote) {
        Ok(c) => c,
        Err(e) => return Outcome::Unreadable(e),
    };
    // Without --now, the time once the collateral is in: collateral a PCCS issued while it was
    // fetched (a simulated one issues it on request) is not "from the future".
    let now = now.unwrap_or_else(pccs::upstream::now);
    match verifier.verify(&bytes, &collateral, now, policy) {
        Ok(v) => Outcome::Verified(Box::new(v)),
        Err(e) => Outcome::Failed(e),
    }
}

/// Fetched collateral by FMSPC and CA: the collateral, or why it could not be had.
type FetchCache = HashMap<([u8; 6], CaType), Result<Arc<Collateral>, String>>;

/// Where the collateral of each quote comes from.
enum CollateralSource {
    /// The same collateral for every quote (`--collateral`).
    Given(Arc<Collateral>),
    /// Fetched per platform (`--pccs`, `--pcs`).
    Fetched {
        fetcher: Fetcher,
        cache: Mutex<FetchCache>,
        save: Option<PathBuf>,
    },
}

/// How collateral is fetched: every run anew, or through an on-disk cache (`--cache-dir`) that
/// serves it until it is due again, as `confcom pccs --upstream` caches.
enum Fetcher {
    Direct(PccsClient),
    Cached {
        source: Box<UpstreamSource>,
        version: pccs::ApiVersion,
    },
}

impl Fetcher {
    fn collateral(&self, fmspc: &[u8; 6], ca: CaType) -> Result<FetchedCollateral, String> {
        let (source, version) = match self {
            Fetcher::Direct(client) => {
                return client.collateral(fmspc, ca).map_err(|e| e.to_string());
            }
            Fetcher::Cached { source, version } => (source, *version),
        };
        use pccs::CollateralSource as _;
        fn found<T>(what: &str, r: Result<Option<T>, pccs::SourceError>) -> Result<T, String> {
            r.map_err(|e| e.to_string())?
                .ok_or_else(|| format!("the service has no {what} (HTTP 404)"))
        }
        Ok(FetchedCollateral {
            pck_crl: found("PCK CRL", source.pck_crl(ca))?,
            tcb_info: found("TCB info", source.tcb_info(version, fmspc))?,
            qe_identity: found("QE identity", source.qe_identity(version))?,
            root_ca_crl: found("root CA CRL", source.root_ca_crl())?,
        })
    }
}

impl CollateralSource {
    fn for_quote(&self, quote: &Quote<'_>) -> Result<Arc<Collateral>, String> {
        let (fetcher, cache, save) = match self {
            CollateralSource::Given(c) => return Ok(Arc::clone(c)),
            CollateralSource::Fetched {
                fetcher,
                cache,
                save,
            } => (fetcher, cache, save),
        };
        let (fmspc, ca) = platform_of(quote)?;
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry((fmspc, ca))
            .or_insert_with(|| {
                let fetched = fetcher.collateral(&fmspc, ca).map_err(|e| {
                    format!(
                        "cannot fetch the collateral of FMSPC {} ({} CA): {e}",
                        hex::encode_upper(fmspc),
                        ca.as_str()
                    )
                })?;
                if let Some(dir) = save {
                    save_collateral(dir, &fetched)
                        .map_err(|e| crate::errors::one_line(e.as_ref()))?;
                }
                to_collateral(&fetched).map(Arc::new)
            })
            .clone()
    }
}

/// The FMSPC and the PCK CA of the platform that made `quote`, from its PCK certificate.
fn platform_of(quote: &Quote<'_>) -> Result<([u8; 6], CaType), String> {
    let platform = pccs::quote::quote_platform(quote).map_err(|e| e.to_string())?;
    Ok((platform.fmspc, platform.ca))
}

/// The verifier's form of fetched collateral.
pub(crate) fn to_collateral(fetched: &FetchedCollateral) -> Result<Collateral, String> {
    pccs::quote::to_collateral(fetched).map_err(|e| e.to_string())
}

/// Writes fetched collateral in the PCS layout of `--collateral DIR`, bodies as served.
fn save_collateral(dir: &Path, fetched: &FetchedCollateral) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, bytes) in [
        (files::TCB_INFO, &fetched.tcb_info.body[..]),
        (files::QE_IDENTITY, &fetched.qe_identity.body[..]),
        (files::PCK_CRL, &fetched.pck_crl.der[..]),
        (files::ROOT_CA_CRL, &fetched.root_ca_crl[..]),
        (
            files::TCB_INFO_ISSUER_CHAIN,
            fetched.tcb_info.issuer_chain.as_bytes(),
        ),
        (
            files::QE_IDENTITY_ISSUER_CHAIN,
            fetched.qe_identity.issuer_chain.as_bytes(),
        ),
        (
            files::PCK_CRL_ISSUER_CHAIN,
            fetched.pck_crl.issuer_chain.as_bytes(),
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[derive(Serialize)]
struct VerdictJson<'a> {
    file: String,
    result: &'static str,
    accepted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rejections: Vec<String>,
    trust_anchor: String,
    intel_root: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    qv_result: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qv_result_name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    advisory_ids: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform_status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qe_status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fmspc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pce_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcb_date: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcb_evaluation_data_number: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcb_info_version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    collateral_expires: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report_body: Option<ReportBodyJson>,
}

fn anchor_label(anchor: &TrustAnchor) -> String {
    if anchor.is_intel() {
        "Intel SGX Root CA".into()
    } else {
        format!("{NOT_INTEL}: {}", anchor.subject())
    }
}

fn to_json<'a>(path: &Path, outcome: &'a Outcome, anchor: &TrustAnchor) -> VerdictJson<'a> {
    let mut j = VerdictJson {
        file: path.display().to_string(),
        result: "unreadable",
        accepted: false,
        error: None,
        rejections: Vec::new(),
        trust_anchor: anchor_label(anchor),
        intel_root: anchor.is_intel(),
        qv_result: None,
        qv_result_name: None,
        status: None,
        advisory_ids: None,
        platform_status: None,
        qe_status: None,
        fmspc: None,
        pce_id: None,
        tcb_date: None,
        tcb_evaluation_data_number: None,
        tcb_info_version: None,
        collateral_expires: None,
        version: None,
        report_body: None,
    };
    match outcome {
        Outcome::Unreadable(e) => j.error = Some(e.clone()),
        Outcome::Failed(e) => {
            j.result = "failed";
            j.error = Some(e.to_string());
            j.qv_result = Some(e.qv_result().code());
            j.qv_result_name = Some(e.qv_result().name());
        }
        Outcome::Verified(v) => {
            j.result = if v.accepted { "accepted" } else { "rejected" };
            j.accepted = v.accepted;
            j.rejections = v.rejections.clone();
            j.qv_result = Some(v.qv_result.code());
            j.qv_result_name = Some(v.qv_result.name());
            j.status = Some(v.status.name());
            j.advisory_ids = Some(&v.advisory_ids);
            j.platform_status = Some(v.platform_status.name());
            j.qe_status = Some(v.qe_status.name());
            j.fmspc = Some(hex::encode(v.fmspc));
            j.pce_id = Some(hex::encode(v.pce_id));
            j.tcb_date = Some(&v.tcb_date);
            j.tcb_evaluation_data_number = Some(v.tcb_evaluation_data_number);
            j.tcb_info_version = Some(v.tcb_info_version);
            j.collateral_expires = Some(rfc3339(v.earliest_expiry));
            j.version = Some(v.quote_version);
            j.report_body = Some((&v.report_body).into());
        }
    }
    j
}

/// The readable verdict of one quote.
fn text(path: &Path, outcome: &Outcome, anchor: &TrustAnchor) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let pki = if anchor.is_intel() {
        "Intel SGX Root CA".to_owned()
    } else {
        format!("{NOT_INTEL} ({})", anchor.subject())
    };
    match outcome {
        Outcome::Unreadable(e) => {
            let _ = writeln!(
                out,
                "{}: UNREADABLE: {e}\n  trust anchor   {pki}",
                path.display()
            );
        }
        Outcome::Failed(e) => {
            let qv = e.qv_result();
            let _ = writeln!(
                out,
                "{}: FAILED: {e} ({}, {:#06x})\n  trust anchor   {pki}",
                path.display(),
                qv.name(),
                qv.code()
            );
        }
        Outcome::Verified(v) => {
            let _ = writeln!(
                out,
                "{}: {}: {} ({}, {:#06x}){}",
                path.display(),
                if v.accepted { "ACCEPTED" } else { "REJECTED" },
                v.status,
                v.qv_result.name(),
                v.qv_result.code(),
                if v.intel_root {
                    String::new()
                } else {
                    format!(" [{NOT_INTEL}]")
                }
            );
            for reason in &v.rejections {
                let _ = writeln!(out, "  rejected: {reason}");
            }
            let _ = writeln!(out, "  trust anchor   {pki}");
            let _ = writeln!(
                out,
                "  platform       {}   QE {}",
                v.platform_status, v.qe_status
            );
            let advisories = if v.advisory_ids.is_empty() {
                "none".to_owned()
            } else {
                v.advisory_ids.join(", ")
            };
            let _ = writeln!(out, "  advisories     {advisories}");
            let _ = writeln!(
                out,
                "  fmspc {}   pce_id {}   tcb date {}   tcbEvaluationDataNumber {}   TCB info v{}",
                hex::encode(v.fmspc),
                hex::encode(v.pce_id),
                v.tcb_date,
                v.tcb_evaluation_data_number,
                v.tcb_info_version
            );
            let _ = writeln!(out, "  collateral expires {}", rfc3339(v.earliest_expiry));
            let _ = writeln!(out, "Enclave (quote v{})", v.quote_version);
            identity_text(&mut out, &v.report_body);
        }
    }
    out
}

/// One line per quote for batch output.
fn line(path: &Path, outcome: &Outcome, anchor: &TrustAnchor) -> String {
    let pki = if anchor.is_intel() {
        String::new()
    } else {
        format!(" [{NOT_INTEL}]")
    };
    match outcome {
        Outcome::Unreadable(e) => format!("{}: UNREADABLE: {e}{pki}", path.display()),
        Outcome::Failed(e) => format!("{}: FAILED: {e}{pki}", path.display()),
        Outcome::Verified(v) => {
            let mut s = format!(
                "{}: {} {} ({:#06x}) advisories [{}] mrenclave {}{pki}",
                path.display(),
                if v.accepted { "ACCEPTED" } else { "REJECTED" },
                v.status,
                v.qv_result.code(),
                v.advisory_ids.join(","),
                hex::encode(v.report_body.mr_enclave),
            );
            if !v.rejections.is_empty() {
                s.push_str(": ");
                s.push_str(&v.rejections.join("; "));
            }
            s
        }
    }
}

fn list_batch(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

pub fn run(args: Args) -> Result<ExitCode> {
    match run_inner(args) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("error: {}", crate::errors::one_line(e.as_ref()));
            Ok(ExitCode::from(EXIT_BAD_INPUT))
        }
    }
}

fn run_inner(args: Args) -> Result<ExitCode> {
    let mut files = args.quotes.clone();
    if let Some(dir) = &args.batch {
        files.extend(list_batch(dir)?);
    }
    if files.is_empty() {
        bail!("no quote given (QUOTE... or --batch DIR)");
    }
    let collateral = match (&args.collateral, &args.pccs) {
        (Some(path), _) => CollateralSource::Given(Arc::new(Collateral::load(path)?)),
        (None, url) => {
            if args.save_collateral.is_some() && files.len() > 1 {
                bail!("--save-collateral takes the collateral of one quote");
            }
            let url = url.as_deref().unwrap_or(pccs::client::INTEL_PCS_URL);
            let timeout = Duration::from_secs(args.fetch_timeout);
            let options = ClientOptions {
                ca_files: args.pccs_ca_file.clone(),
                ..ClientOptions::default()
            };
            let client = PccsClient::with_options(url, timeout, options.clone())?;
            let fetcher = match &args.cache_dir {
                None => Fetcher::Direct(client),
                Some(dir) => {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create --cache-dir {}", dir.display()))?;
                    let path = dir.join(super::pccs::CACHE_FILE);
                    let store = Store::open(&path).with_context(|| {
                        format!("cannot open the collateral cache {}", path.display())
                    })?;
                    Fetcher::Cached {
                        version: client.version(),
                        source: Box::new(UpstreamSource::with_options(
                            url, store, timeout, options,
                        )?),
                    }
                }
            };
            CollateralSource::Fetched {
                fetcher,
                cache: Mutex::new(HashMap::new()),
                save: args.save_collateral.clone(),
            }
        }
    };
    let anchor = match &args.root {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            TrustAnchor::from_pem_or_der(&bytes).with_context(|| path.display().to_string())?
        }
        None => TrustAnchor::intel(),
    };
    let now = args.now;
    let policy = Policy {
        allow_debug: args.allow_debug,
        mr_enclave: args.mrenclave,
        mr_signer: args.mrsigner,
        isv_prod_id: args.isv_prod_id,
        min_isv_svn: args.min_isv_svn,
        report_data: args.report_data.as_ref().map(|r| r.0.clone()),
        min_tcb_evaluation_data_number: args.min_tcb_eval,
        accepted_statuses: if args.accept.is_empty() {
            Policy::DEFAULT_ACCEPTED.to_vec()
        } else {
            args.accept.clone()
        },
    };
    let verifier = Verifier::new(anchor);
    let single = files.len() == 1 && args.batch.is_none();

    let outcomes: Vec<Mutex<Option<Outcome>>> = files.iter().map(|_| Mutex::new(None)).collect();
    let workers = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, files.len());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let outcome = check_one(&verifier, path, &collateral, now, &policy);
                    *outcomes[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
                }
            });
        }
    });

    let mut worst = EXIT_ACCEPTED;
    for (path, slot) in files.iter().zip(outcomes) {
        let Some(outcome) = slot.into_inner().unwrap_or_else(|e| e.into_inner()) else {
            bail!("{}: not verified", path.display());
        };
        worst = worst.max(outcome.exit_code());
        let anchor = verifier.anchor();
        if args.json {
            let view = to_json(path, &outcome, anchor);
            if single {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                println!("{}", serde_json::to_string(&view)?);
            }
        } else if single {
            print!("{}", text(path, &outcome, anchor));
        } else {
            println!("{}", line(path, &outcome, anchor));
        }
        if let Outcome::Failed(
            VerifyError::ChainUntrusted { .. } | VerifyError::CrlSignatureInvalid { .. },
        ) = &outcome
        {
            let sim_root = args
                .collateral
                .as_ref()
                .map(|dir| dir.join("root-ca.pem"))
                .filter(|root| root.is_file());
            if let Some(sim_root) = sim_root.filter(|_| args.root.is_none() && !args.json) {
                eprintln!(
                    "hint: the collateral directory holds its own root; to trust it: --root {}",
                    sim_root.display()
                );
            }
        }
    }
    Ok(ExitCode::from(worst))
}

//! `confcom sim <init|collateral|report>`: the simulated SGX platform from the command line.
//!
//! - `sim init` creates a node's simulated platform (PKI, CPU secret, QE identity) in a state
//!   directory, optionally under a cluster-wide sim CA directory shared by every node.
//! - `sim collateral` writes signed collateral for it, with every status configurable.
//! - `sim report` acts as an enclave: a report MACed by the simulated CPU for a target (by default
//!   the simulated quoting enclave), the input of `GetQuoteEx`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::args::{self, Hash, ReportData, hex_bytes};
use anyhow::{Context, Result, bail};
use sgx_sim::{
    CollateralOptions, EnclaveIdentity, InitOptions, QeStatus, SimCpu, SimPlatform, TcbStatus,
};
use sgx_types::structs::{Attributes, TargetInfo, Wire};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: SimCommand,
}

#[derive(clap::Subcommand)]
enum SimCommand {
    /// Create the simulated platform in a state directory (or show the one already there).
    Init(InitArgs),
    /// Write signed collateral (TCB info, QE identity, CRLs, chains, collateral.json) for the platform.
    Collateral(CollateralArgs),
    /// Create a simulated enclave report (432 bytes) MACed for a target enclave.
    Report(ReportArgs),
}

#[derive(clap::Args)]
struct InitArgs {
    /// State directory of the node's simulated platform (keys are written with mode 0600).
    #[arg(long, env = "CONFCOM_SIM_STATE_DIR")]
    state_dir: PathBuf,
    /// Cluster sim CA directory (root CA, PCK CA, TCB signer); created there first when empty. Every
    /// node initialised under one CA directory shares one root, so verifiers need one trust anchor.
    #[arg(long)]
    ca_dir: Option<PathBuf>,
    /// TCB status the platform's collateral reports unless `sim collateral --tcb-status` says
    /// otherwise [default: UpToDate].
    #[arg(long, value_parser = parse_tcb_status)]
    tcb_status: Option<TcbStatus>,
    /// FMSPC of the platform (6 bytes hex) [default: 00906EA10000].
    #[arg(long, value_parser = args::hex_array::<6>)]
    fmspc: Option<[u8; 6]>,
    /// The 16 SGX TCB component SVNs (16 bytes hex; also the platform CPUSVN).
    #[arg(long, value_parser = args::hex_array::<16>)]
    tcb_components: Option<[u8; 16]>,
    /// PCE SVN of the platform [default: 13].
    #[arg(long)]
    pce_svn: Option<u16>,
    /// ISVSVN of the simulated quoting enclave [default: 8].
    #[arg(long)]
    qe_isv_svn: Option<u16>,
    /// Where the certificates of a new CA say their CRLs are: the root CA CRL at
    /// URL/sgx/certification/v4/rootcacrl?encoding=der, the PCK CA CRL at
    /// URL/sgx/certification/v4/pckcrl?ca=processor&encoding=der, both served by `confcom pccs`
    /// [default: http://sgx-pccs.kube-system.svc:8081, the in-cluster PCCS the add-on renders;
    /// use https://sgx-pccs.NAMESPACE.svc:8081 for another namespace or --pccs-certs]. An existing
    /// CA directory keeps the URLs its certificates name.
    #[arg(long, value_name = "URL")]
    crl_base_url: Option<String>,
}

#[derive(clap::Args)]
struct CollateralArgs {
    /// State directory of an initialised simulated platform.
    #[arg(long, env = "CONFCOM_SIM_STATE_DIR")]
    state_dir: PathBuf,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Status of the TCB level the platform matches (default: the one chosen at `sim init`).
    #[arg(long, value_parser = parse_tcb_status)]
    tcb_status: Option<TcbStatus>,
    /// Status of the QE identity level the quoting enclave matches.
    #[arg(long, default_value = "UpToDate", value_parser = parse_qe_status)]
    qe_status: QeStatus,
    /// Put the platform's PCK certificate on the PCK CRL.
    #[arg(long)]
    revoke_pck: bool,
    /// Advisory id on the platform's TCB level (repeatable), e.g. INTEL-SA-00615.
    #[arg(long = "advisory-id", value_name = "ID")]
    advisory_ids: Vec<String>,
    /// TCB info version: 3 (what dcap-qvl reads) or 2 (flat sgxtcbcompNNsvn keys).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
    tcb_info_version: u8,
    /// Days from issue to nextUpdate of TCB info, QE identity and both CRLs.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u16).range(1..))]
    validity_days: u16,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Take the simulated CPU from this platform state directory.
    #[arg(long, conflicts_with = "cpu_dir")]
    state_dir: Option<PathBuf>,
    /// Take the simulated CPU a quote helper published (default: `sim/` next to the AESM socket,
    /// i.e. /var/run/aesmd/sim, or the directory of $CONFCOM_AESM_SOCKET).
    #[arg(long)]
    cpu_dir: Option<PathBuf>,
    /// Target info (512 bytes, binary or hex) of the enclave the report is for (default: the
    /// simulated quoting enclave's).
    #[arg(long)]
    target_info: Option<PathBuf>,
    /// Report data, up to 64 bytes in hex (zero-padded to 64).
    #[arg(long, value_parser = args::report_data)]
    report_data: ReportData,
    /// MRENCLAVE of the simulated enclave (32 bytes hex).
    #[arg(long, value_parser = args::hash)]
    mrenclave: Option<Hash>,
    /// MRSIGNER of the simulated enclave (32 bytes hex).
    #[arg(long, value_parser = args::hash)]
    mrsigner: Option<Hash>,
    /// ISVPRODID of the simulated enclave.
    #[arg(long)]
    isv_prod_id: Option<u16>,
    /// ISVSVN of the simulated enclave.
    #[arg(long)]
    isv_svn: Option<u16>,
    /// Mark the simulated enclave as a debug enclave (verifiers reject it by default).
    #[arg(long)]
    debug: bool,
    /// Where to write the report (432 bytes, binary).
    #[arg(long)]
    out: PathBuf,
}

fn parse_tcb_status(s: &str) -> Result<TcbStatus, String> {
    s.parse()
        .map_err(|e: sgx_types::tcb::UnknownTcbStatus| e.to_string())
}

fn parse_qe_status(s: &str) -> Result<QeStatus, String> {
    s.parse().map_err(|e: sgx_sim::SimError| e.to_string())
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        SimCommand::Init(a) => init(a),
        SimCommand::Collateral(a) => collateral(a),
        SimCommand::Report(a) => report(a),
    }
}

fn init(args: InitArgs) -> Result<ExitCode> {
    let existed = args.state_dir.join(sgx_sim::PLATFORM_FILE).exists();
    let defaults = InitOptions::default();
    let opts = InitOptions {
        ca_dir: args.ca_dir.clone(),
        tcb_status: args.tcb_status.unwrap_or_default(),
        fmspc: args.fmspc.unwrap_or(defaults.fmspc),
        tcb_components: args.tcb_components.unwrap_or(defaults.tcb_components),
        pce_svn: args.pce_svn.unwrap_or(defaults.pce_svn),
        qe_isv_svn: args.qe_isv_svn.unwrap_or(defaults.qe_isv_svn),
        crl_base_url: args.crl_base_url.clone(),
    };
    let platform_options_given = args.ca_dir.is_some()
        || args.crl_base_url.is_some()
        || args.tcb_status.is_some()
        || args.fmspc.is_some()
        || args.tcb_components.is_some()
        || args.pce_svn.is_some()
        || args.qe_isv_svn.is_some();
    let platform = SimPlatform::open_or_init(&args.state_dir, &opts)
        .with_context(|| format!("sim init {}", args.state_dir.display()))?;
    if existed && platform_options_given {
        eprintln!(
            "note: {} already holds a simulated platform; it is kept as it is (the platform \
             options apply only to a new platform)",
            args.state_dir.display()
        );
    }
    let ext = platform.pck_extension();
    println!(
        "simulated SGX platform in {} ({})",
        args.state_dir.display(),
        if existed { "existing" } else { "created" }
    );
    let root = args.state_dir.join(sgx_sim::ROOT_CERT_DER_FILE);
    match &args.ca_dir {
        Some(ca) if !existed => println!(
            "  root CA         {} (trust anchor of every platform under {})",
            ca.join(sgx_sim::ROOT_CERT_DER_FILE).display(),
            ca.display()
        ),
        _ => println!("  root CA         {}", root.display()),
    }
    let crls = platform.crl_distribution_points();
    match (&crls.root_ca_crl, &crls.pck_crl) {
        (Some(root), Some(pck)) => {
            println!("  root CA CRL     {root}");
            println!("  PCK CA CRL      {pck}");
        }
        _ => println!(
            "  CRL locations   none (a platform made before the simulated certificates named \
             their CRLs; `sim init` in a new state and CA directory gives them)"
        ),
    }
    println!("  FMSPC           {}", hex::encode_upper(ext.fmspc));
    println!("  TCB components  {}", hex::encode(ext.tcb.comp_svn));
    println!("  PCE SVN         {}", ext.tcb.pce_svn);
    println!("  QE ISVSVN       {}", platform.qe_identity().isv_svn);
    println!(
        "  TCB status      {} (collateral default)",
        platform.default_tcb_status()
    );
    println!(
        "  attestation key {}",
        if platform.attestation_key_initialized() {
            "initialised"
        } else {
            "not yet created (the first InitQuoteEx creates it)"
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn collateral(args: CollateralArgs) -> Result<ExitCode> {
    let platform = SimPlatform::open(&args.state_dir)?;
    let opts = CollateralOptions {
        tcb_status: args.tcb_status,
        qe_status: args.qe_status,
        revoke_pck: args.revoke_pck,
        advisory_ids: args.advisory_ids,
        tcb_info_version: args.tcb_info_version,
        validity: time::Duration::days(i64::from(args.validity_days)),
        ..CollateralOptions::default()
    };
    let collateral = platform.collateral(&opts)?;
    collateral
        .write_to(&args.out)
        .with_context(|| format!("writing collateral to {}", args.out.display()))?;
    println!(
        "collateral for {} in {}: TCB {} (TCB info v{}), QE {}{}",
        args.state_dir.display(),
        args.out.display(),
        opts.tcb_status.unwrap_or(platform.default_tcb_status()),
        opts.tcb_info_version,
        opts.qe_status,
        if opts.revoke_pck { ", PCK revoked" } else { "" }
    );
    for (name, bytes) in collateral.files() {
        println!("  {name:<30} {:>6} bytes", bytes.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// The CPU directory apps use by default: `sim/` next to the AESM socket.
fn default_cpu_dir() -> PathBuf {
    aesm_service::sim::sim_dir_for_socket(&quote_client::default_socket_path())
}

/// Reads a target info file: 512 raw bytes, or their hex.
fn read_target_info(path: &Path) -> Result<TargetInfo> {
    let content =
        std::fs::read(path).with_context(|| format!("reading target info {}", path.display()))?;
    let bytes = if content.len() == TargetInfo::SIZE {
        content
    } else {
        let text = std::str::from_utf8(&content).ok().map(|t| {
            t.chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect::<String>()
        });
        match text.map(|t| hex_bytes(&t)) {
            Some(Ok(bytes)) => bytes,
            _ => bail!(
                "{}: {} bytes, neither a 512-byte target info nor its hex",
                path.display(),
                content.len()
            ),
        }
    };
    TargetInfo::parse(&bytes).with_context(|| format!("{}: not a target info", path.display()))
}

fn report(args: ReportArgs) -> Result<ExitCode> {
    // The quoting enclave's target info is the default target; read it only when it is needed.
    let (cpu, qe_target) = match &args.state_dir {
        Some(dir) => {
            let platform = SimPlatform::open(dir)?;
            (platform.cpu().clone(), Ok(platform.qe_target_info()))
        }
        None => {
            let dir = args.cpu_dir.clone().unwrap_or_else(default_cpu_dir);
            let cpu = SimCpu::load(&dir)?;
            (
                cpu,
                read_target_info(&dir.join(sgx_sim::QE_TARGET_INFO_FILE)),
            )
        }
    };
    let target = match &args.target_info {
        Some(path) => read_target_info(path)?,
        None => qe_target?,
    };
    let mut enclave = EnclaveIdentity::default();
    if let Some(Hash(h)) = args.mrenclave {
        enclave.mr_enclave = h;
    }
    if let Some(Hash(h)) = args.mrsigner {
        enclave.mr_signer = h;
    }
    if let Some(v) = args.isv_prod_id {
        enclave.isv_prod_id = v;
    }
    if let Some(v) = args.isv_svn {
        enclave.isv_svn = v;
    }
    if args.debug {
        enclave.attributes.flags |= Attributes::DEBUG;
    }
    let report = cpu.create_report(&enclave, &target, &args.report_data.0);
    std::fs::write(&args.out, report.to_vec())
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "report of MRENCLAVE {} for target MRENCLAVE {} written to {}",
        hex::encode(enclave.mr_enclave),
        hex::encode(target.mr_enclave),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sgx_types::structs::Report;

    fn sim(argv: &[&str]) -> Result<ExitCode> {
        run(crate::args::parse(argv)?)
    }

    fn path(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    #[test]
    fn init_collateral_and_report_give_a_quote_dcap_qvl_accepts() {
        let tmp = tempfile::tempdir().unwrap();
        let (ca, a, b) = (
            tmp.path().join("ca"),
            tmp.path().join("node-a"),
            tmp.path().join("node-b"),
        );
        for node in [&a, &b] {
            sim(&["init", "--state-dir", path(node), "--ca-dir", path(&ca)]).unwrap();
        }
        let out = tmp.path().join("collateral");
        sim(&[
            "collateral",
            "--state-dir",
            path(&b),
            "--out",
            path(&out),
            "--tcb-status",
            "OutOfDate",
            "--advisory-id",
            "INTEL-SA-00615",
        ])
        .unwrap();
        let report_file = tmp.path().join("report.bin");
        sim(&[
            "report",
            "--state-dir",
            path(&a),
            "--report-data",
            "0xc0ffee",
            "--isv-svn",
            "9",
            "--out",
            path(&report_file),
        ])
        .unwrap();

        let report = Report::parse(&std::fs::read(&report_file).unwrap()).unwrap();
        assert_eq!(report.body.isv_svn, 9);
        assert_eq!(report.body.report_data[..3], [0xc0, 0xff, 0xee]);
        assert_eq!(report.body.report_data[3..], [0; 61]);
        let platform = SimPlatform::open(&a).unwrap();
        platform.init_attestation_key().unwrap();
        let quote = platform.quote(&report).unwrap();

        // Node b's collateral and the cluster root verify node a's quote.
        let collateral: dcap_qvl::QuoteCollateralV3 =
            serde_json::from_slice(&std::fs::read(out.join("collateral.json")).unwrap()).unwrap();
        let root = std::fs::read(ca.join("root-ca.der")).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let verified = dcap_qvl::verify::QuoteVerifier::new(root)
            .verify(&quote, &collateral, now)
            .unwrap();
        assert_eq!(verified.status, "OutOfDate");
        assert_eq!(verified.advisory_ids, ["INTEL-SA-00615"]);
    }

    #[test]
    fn report_takes_published_cpu_and_explicit_targets() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        sim(&["init", "--state-dir", path(&state)]).unwrap();
        let platform = SimPlatform::open(&state).unwrap();
        let published = tmp.path().join("sim");
        platform.publish_cpu(&published).unwrap();

        // Default target: the published quoting enclave's.
        let out = tmp.path().join("r1.bin");
        sim(&[
            "report",
            "--cpu-dir",
            path(&published),
            "--report-data",
            "01",
            "--out",
            path(&out),
        ])
        .unwrap();
        let r1 = Report::parse(&std::fs::read(&out).unwrap()).unwrap();
        assert!(
            platform
                .cpu()
                .verify_report(&r1, &platform.qe_target_info())
        );

        // An explicit target info in hex: the report is for that enclave, not for the QE.
        let other = EnclaveIdentity {
            mr_enclave: [0x11; 32],
            ..EnclaveIdentity::default()
        }
        .target_info();
        let ti = tmp.path().join("target.hex");
        std::fs::write(&ti, format!("{}\n", hex::encode(other.to_vec()))).unwrap();
        let out2 = tmp.path().join("r2.bin");
        let mrenclave = "ab".repeat(32);
        sim(&[
            "report",
            "--cpu-dir",
            path(&published),
            "--target-info",
            path(&ti),
            "--report-data",
            "02",
            "--mrenclave",
            &mrenclave,
            "--debug",
            "--out",
            path(&out2),
        ])
        .unwrap();
        let r2 = Report::parse(&std::fs::read(&out2).unwrap()).unwrap();
        assert!(platform.cpu().verify_report(&r2, &other));
        assert!(
            !platform
                .cpu()
                .verify_report(&r2, &platform.qe_target_info())
        );
        assert_eq!(r2.body.mr_enclave, [0xab; 32]);
        assert!(r2.body.attributes.is_debug());
        platform.init_attestation_key().unwrap();
        assert!(matches!(
            platform.quote(&r2),
            Err(sgx_sim::SimError::InvalidReport)
        ));
    }

    #[test]
    fn init_takes_the_platform_identity() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        sim(&[
            "init",
            "--state-dir",
            path(&state),
            "--fmspc",
            "00606A000000",
            "--tcb-components",
            "0102030405060708090a0b0c0d0e0f10",
            "--pce-svn",
            "11",
            "--qe-isv-svn",
            "6",
            "--tcb-status",
            "ConfigurationNeeded",
        ])
        .unwrap();
        let p = SimPlatform::open(&state).unwrap();
        let ext = p.pck_extension();
        assert_eq!(ext.fmspc, [0x00, 0x60, 0x6a, 0, 0, 0]);
        assert_eq!(ext.tcb.comp_svn[15], 0x10);
        assert_eq!(ext.tcb.pce_svn, 11);
        assert_eq!(p.qe_identity().isv_svn, 6);
        assert_eq!(p.default_tcb_status(), TcbStatus::ConfigurationNeeded);
    }

    #[test]
    fn bad_arguments_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let out = tmp.path().join("out");
        for argv in [
            vec!["init", "--state-dir", path(&state), "--tcb-status", "Fine"],
            vec!["init", "--state-dir", path(&state), "--fmspc", "00606A"],
            vec![
                "collateral",
                "--state-dir",
                path(&state),
                "--out",
                path(&out),
                "--tcb-info-version",
                "4",
            ],
            vec![
                "collateral",
                "--state-dir",
                path(&state),
                "--out",
                path(&out),
                "--qe-status",
                "SWHardeningNeeded",
            ],
            vec![
                "report",
                "--state-dir",
                path(&state),
                "--report-data",
                "zz",
                "--out",
                path(&out),
            ],
            vec![
                "report",
                "--state-dir",
                path(&state),
                "--report-data",
                "00",
                "--mrsigner",
                "abcd",
                "--out",
                path(&out),
            ],
            vec![
                "report",
                "--state-dir",
                path(&state),
                "--cpu-dir",
                path(&state),
                "--report-data",
                "00",
                "--out",
                path(&out),
            ],
        ] {
            assert!(sim(&argv).is_err(), "{argv:?}");
        }
        // Not initialised: a clear error, nothing written.
        let err = sim(&[
            "collateral",
            "--state-dir",
            path(&state),
            "--out",
            path(&out),
        ])
        .unwrap_err();
        assert!(format!("{err:#}").contains("sim init"), "{err:#}");
        assert!(!out.exists());
        let bad_ti = tmp.path().join("ti.bin");
        std::fs::write(&bad_ti, [0u8; 100]).unwrap();
        sim(&["init", "--state-dir", path(&state)]).unwrap();
        let err = sim(&[
            "report",
            "--state-dir",
            path(&state),
            "--target-info",
            path(&bad_ti),
            "--report-data",
            "00",
            "--out",
            path(&out),
        ])
        .unwrap_err();
        assert!(format!("{err:#}").contains("512"), "{err:#}");
    }
}

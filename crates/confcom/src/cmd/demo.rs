//! `confcom demo`: the whole out-of-process attestation flow on built-in defaults, with no cluster and
//! no SGX. It starts the quote helper on a simulated platform behind a temporary socket, acts as an
//! enclave app that opted in with `SGX_AESM_ADDR=1`, obtains a quote over the AESM protocol, and
//! verifies it against the simulated platform's collateral.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aesm_service::sim::sim_dir_for_socket;
use aesm_service::{BackgroundServer, Dispatcher, Metrics, ServerConfig, SimBackend, client_flow};
use anyhow::{Context, Result};
use dcap_verify::{Collateral, Policy, TrustAnchor, Verifier};
use quote_client::AesmClient;
use sgx_sim::{CollateralOptions, EnclaveIdentity, InitOptions, SimCpu, SimPlatform};
use sgx_types::quote::Quote;

#[derive(clap::Args)]
pub struct Args {
    /// Keep the platform and quote here instead of a temporary directory (reused when it exists).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Text the enclave puts into its report data (SHA-256 of it fills the first 32 bytes).
    #[arg(long, default_value = "hello from a confcom demo enclave")]
    pub message: String,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let temp;
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("confcom-demo")
                .tempdir_in("/tmp")
                .context("cannot create a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    let started = Instant::now();
    let step = |n: u32, who: &str, text: String| println!("[{n}] {who:<7} {text}");
    println!(
        "confcom demo: out-of-process SGX attestation on a simulated platform (no SGX, no cluster)"
    );

    // 1. The simulated node: PKI, platform secret, quoting enclave.
    let platform = Arc::new(
        SimPlatform::open_or_init(&dir.join("state"), &InitOptions::default())
            .context("cannot create the simulated platform")?,
    );
    step(
        1,
        "node",
        format!(
            "simulated SGX platform: FMSPC {}, QE3 with Intel's identity, PCK chain under a simulated root",
            hex::encode(platform.pck_extension().fmspc)
        ),
    );

    // 2. The quote helper on its own socket, as the DaemonSet runs it on every node.
    let socket = dir.join("aesmd").join("aesm.socket");
    let server = BackgroundServer::start(
        &socket,
        Dispatcher::new(Arc::new(SimBackend::new(platform.clone()))),
        ServerConfig::default(),
        Metrics::default(),
    )
    .with_context(|| format!("cannot listen on {}", socket.display()))?;
    platform
        .publish_cpu(&sim_dir_for_socket(&socket))
        .context("cannot publish the simulated CPU")?;
    step(
        2,
        "helper",
        format!(
            "quote helper (backend sim) listening on {}",
            socket.display()
        ),
    );

    // 3. The app: SGX_AESM_ADDR=1, /var/run/aesmd mounted – here, the socket above.
    let cpu =
        SimCpu::load(&sim_dir_for_socket(&socket)).context("cannot load the simulated CPU")?;
    let enclave = EnclaveIdentity::default();
    let mut report_data = [0u8; 64];
    report_data[..32].copy_from_slice(
        ring::digest::digest(&ring::digest::SHA256, args.message.as_bytes()).as_ref(),
    );
    let client = AesmClient::new(&socket);
    let app = client_flow::quote_via_socket(&client, &cpu, &enclave, &report_data)
        .context("the out-of-process quoting flow failed")?;
    step(
        3,
        "app",
        format!(
            "enclave {}… (SGX_AESM_ADDR=1): GetSupportedAttKeyIDs → InitQuoteEx → EREPORT for the QE → GetQuoteSizeEx → GetQuoteEx",
            &hex::encode(enclave.mr_enclave)[..16],
        ),
    );
    let quote = Quote::parse(&app.quote).context("the quote does not parse")?;
    step(
        4,
        "quote",
        format!(
            "v{} DCAP quote, {} bytes, ECDSA-P256, PCK chain (certification data type {}); the QE report for the app checks out",
            quote.header.version,
            app.quote.len(),
            quote.signature.certification_data.cert_type
        ),
    );
    std::fs::write(dir.join("quote.bin"), &app.quote)?;

    // 4. The relying party: collateral as the platform's PCS would serve it, the simulated root.
    let sim_collateral = platform
        .collateral(&CollateralOptions::default())
        .context("cannot issue collateral")?;
    sim_collateral
        .write_to(&dir.join("collateral"))
        .context("cannot write the collateral")?;
    let collateral = Collateral::from_json(&sim_collateral.qvl_json())?;
    let anchor = TrustAnchor::from_der(platform.root_ca_der())?;
    let policy = Policy {
        mr_enclave: Some(enclave.mr_enclave),
        report_data: Some(report_data.to_vec()),
        ..Policy::default()
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let verdict = Verifier::new(anchor).verify(&app.quote, &collateral, now, &policy);

    server.stop().context("the quote helper failed")?;

    match verdict {
        Ok(v) => {
            step(
                5,
                "verify",
                format!(
                    "{} (sgx_ql_qv_result {:#06x}) against the simulated root: SIMULATED or private PKI",
                    v.status,
                    v.qv_result.code(),
                ),
            );
            println!(
                "            policy (MRENCLAVE, report data, no debug, accepted statuses): {}",
                if v.accepted { "accepted" } else { "rejected" }
            );
            for reason in &v.rejections {
                println!("            rejected: {reason}");
            }
            print_files(&dir, args.dir.is_some());
            println!(
                "{} in {:.0?}",
                if v.accepted {
                    "attestation succeeded"
                } else {
                    "attestation REJECTED"
                },
                started.elapsed()
            );
            Ok(if v.accepted {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) => {
            step(5, "verify", format!("verification failed: {e}"));
            println!("attestation FAILED");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print_files(dir: &Path, kept: bool) {
    if kept {
        println!(
            "            quote: {}, collateral: {}\n            try: confcom verify {} --collateral {} --root {}",
            dir.join("quote.bin").display(),
            dir.join("collateral").display(),
            dir.join("quote.bin").display(),
            dir.join("collateral").display(),
            dir.join("collateral/root-ca.pem").display(),
        );
    }
}

//! `confcom quote`: act as an enclave app on the simulated platform and get a quote through the
//! AESM socket, exactly as an app with `SGX_AESM_ADDR=1` does (key ids → InitQuoteEx →
//! report for the QE → GetQuoteSizeEx → GetQuoteEx).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::args::{self, Hash, ReportData};
use aesm_service::client_flow::{AppQuote, quote_via_socket};
use aesm_service::listen::DEFAULT_SOCKET_PATH;
use aesm_service::sim::sim_dir_for_socket;
use anyhow::{Context, Result, bail};
use quote_client::AesmClient;
use sgx_sim::{EnclaveIdentity, SimCpu, SimPlatform};
use sgx_types::Attributes;
use sgx_types::quote::Quote;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The AESM socket of the quote helper.
    #[arg(long, env = "CONFCOM_AESM_SOCKET", default_value = DEFAULT_SOCKET_PATH)]
    pub socket: PathBuf,
    /// Create the report with the CPU of this simulated platform state directory (instead of the
    /// material the helper publishes in `<socket dir>/sim/`).
    #[arg(long, conflicts_with = "cpu_dir")]
    pub state_dir: Option<PathBuf>,
    /// Directory with the simulated CPU material (default: `<socket dir>/sim/`).
    #[arg(long)]
    pub cpu_dir: Option<PathBuf>,
    /// Report data, hex, at most 64 bytes (zero-padded to 64).
    #[arg(long, value_parser = args::report_data)]
    pub report_data: ReportData,
    /// MRENCLAVE of the simulated enclave (32 bytes hex).
    #[arg(long, value_parser = args::hash)]
    pub mrenclave: Option<Hash>,
    /// MRSIGNER of the simulated enclave (32 bytes hex).
    #[arg(long, value_parser = args::hash)]
    pub mrsigner: Option<Hash>,
    /// ISVPRODID of the simulated enclave.
    #[arg(long)]
    pub isv_prod_id: Option<u16>,
    /// ISVSVN of the simulated enclave.
    #[arg(long)]
    pub isv_svn: Option<u16>,
    /// Mark the simulated enclave as a debug enclave.
    #[arg(long)]
    pub debug: bool,
    /// Where to write the quote (binary, trimmed to its real length).
    #[arg(long)]
    pub out: PathBuf,
    /// How long to wait for a quote helper that is not up yet (socket absent or refusing, simulated
    /// CPU material not published), in seconds; 0 fails at once.
    #[arg(long, env = quote_client::SERVICE_WAIT_ENV, default_value_t = quote_client::DEFAULT_SERVICE_WAIT.as_secs())]
    pub wait_secs: u64,
}

impl Args {
    fn enclave(&self) -> EnclaveIdentity {
        let mut enclave = EnclaveIdentity::default();
        if let Some(Hash(h)) = self.mrenclave {
            enclave.mr_enclave = h;
        }
        if let Some(Hash(h)) = self.mrsigner {
            enclave.mr_signer = h;
        }
        if let Some(id) = self.isv_prod_id {
            enclave.isv_prod_id = id;
        }
        if let Some(svn) = self.isv_svn {
            enclave.isv_svn = svn;
        }
        if self.debug {
            enclave.attributes.flags |= Attributes::DEBUG;
        }
        enclave
    }

    fn cpu(&self) -> Result<SimCpu> {
        if let Some(state_dir) = &self.state_dir {
            let platform = SimPlatform::open(state_dir).with_context(|| {
                format!(
                    "cannot open the simulated platform in {}",
                    state_dir.display()
                )
            })?;
            return Ok(platform.cpu().clone());
        }
        let dir = self
            .cpu_dir
            .clone()
            .unwrap_or_else(|| sim_dir_for_socket(&self.socket));
        // A helper that is still starting publishes the material when it listens: wait for it as
        // for the socket.
        let deadline = std::time::Instant::now() + Duration::from_secs(self.wait_secs);
        let mut pause = Duration::from_millis(10);
        while !dir.join(sgx_sim::CPU_FILE).exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(500));
        }
        SimCpu::load(&dir).with_context(|| {
            format!(
                "cannot load the simulated CPU from {} (is a simulated quote helper serving {}?)",
                dir.display(),
                self.socket.display()
            )
        })
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let cpu = args.cpu()?;
    let enclave = args.enclave();
    let client =
        AesmClient::new(&args.socket).with_service_wait(Duration::from_secs(args.wait_secs));
    let out = quote_via_socket(&client, &cpu, &enclave, &args.report_data.0)
        .with_context(|| format!("no quote from {}", args.socket.display()))?;
    std::fs::write(&args.out, &out.quote)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    print!("{}", summary(&args, &out)?);
    Ok(ExitCode::SUCCESS)
}

fn summary(args: &Args, out: &AppQuote) -> Result<String> {
    let quote = Quote::parse(&out.quote).context("the service returned a malformed quote")?;
    if quote.report_body.report_data != args.report_data.0 {
        bail!("the quote does not carry the requested report data");
    }
    let body = &quote.report_body;
    Ok(format!(
        "wrote a {} byte DCAP v{} quote to {}\n\
         \x20 enclave     MRENCLAVE {} MRSIGNER {} ISVPRODID {} ISVSVN {}{}\n\
         \x20 report data {}\n\
         \x20 QE          pub_key_id {} (QE report checked: MACed for this enclave, binds nonce and quote)\n\
         \x20 platform    simulated; verify against the simulated root (the helper's /collateral/root-ca.der)\n",
        out.quote.len(),
        quote.header.version,
        args.out.display(),
        hex::encode(body.mr_enclave),
        hex::encode(body.mr_signer),
        body.isv_prod_id,
        body.isv_svn,
        if body.attributes.is_debug() {
            " DEBUG"
        } else {
            ""
        },
        hex::encode(body.report_data),
        hex::encode(&out.pub_key_id),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        crate::args::parse(extra)
    }

    #[test]
    fn report_data_is_padded_and_bounded() {
        let args = parse(&["--report-data", "0102", "--out", "q"]).unwrap();
        let mut expected = [0u8; 64];
        expected[..2].copy_from_slice(&[1, 2]);
        assert_eq!(args.report_data, ReportData(expected));
        assert!(parse(&["--report-data", &"ab".repeat(65), "--out", "q"]).is_err());
        assert!(parse(&["--report-data", "xyz", "--out", "q"]).is_err());
        assert!(parse(&["--report-data", "00", "--mrenclave", "00", "--out", "q"]).is_err());
        assert!(parse(&["--out", "q"]).is_err(), "report data is required");
        assert!(
            parse(&[
                "--report-data",
                "00",
                "--out",
                "q",
                "--state-dir",
                "a",
                "--cpu-dir",
                "b"
            ])
            .is_err()
        );
    }

    #[test]
    fn identity_flags_shape_the_enclave() {
        let args = parse(&[
            "--report-data",
            "00",
            "--out",
            "q",
            "--mrenclave",
            &"11".repeat(32),
            "--isv-prod-id",
            "9",
            "--isv-svn",
            "4",
            "--debug",
        ])
        .unwrap();
        let e = args.enclave();
        assert_eq!(e.mr_enclave, [0x11; 32]);
        assert_eq!(e.mr_signer, EnclaveIdentity::default().mr_signer);
        assert_eq!((e.isv_prod_id, e.isv_svn), (9, 4));
        assert!(e.attributes.is_debug());
        assert!(
            !parse(&["--report-data", "00", "--out", "q"])
                .unwrap()
                .enclave()
                .attributes
                .is_debug()
        );
    }

    #[test]
    fn quotes_through_a_running_helper() {
        use std::sync::Arc;

        let dir = tempfile::Builder::new()
            .prefix("qh")
            .tempdir_in("/tmp")
            .unwrap();
        let socket = dir.path().join("aesmd/aesm.socket");
        let platform = Arc::new(
            SimPlatform::open_or_init(&dir.path().join("state"), &Default::default()).unwrap(),
        );
        let (std_listener, _file) = aesm_service::listen::bind_socket(&socket, 0o777).unwrap();
        platform.publish_cpu(&sim_dir_for_socket(&socket)).unwrap();
        let backend = Arc::new(aesm_service::SimBackend::new(Arc::clone(&platform)));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::UnixListener::from_std(std_listener).unwrap();
                aesm_service::serve(
                    vec![listener],
                    aesm_service::Dispatcher::new(backend),
                    Default::default(),
                    Default::default(),
                    async move {
                        let _ = stop_rx.await;
                    },
                )
                .await
            })
        });

        let out_file = dir.path().join("quote.bin");
        let report_data = "ab".repeat(32);
        let args = parse(&[
            "--socket",
            socket.to_str().unwrap(),
            "--report-data",
            &report_data,
            "--isv-svn",
            "6",
            "--out",
            out_file.to_str().unwrap(),
        ])
        .unwrap();
        assert_eq!(run(args).unwrap(), ExitCode::SUCCESS);
        let bytes = std::fs::read(&out_file).unwrap();
        let quote = Quote::parse(&bytes).unwrap();
        assert!(
            quote.trailing_bytes.is_empty(),
            "the written quote is trimmed"
        );
        assert_eq!(quote.report_body.isv_svn, 6);
        assert_eq!(&quote.report_body.report_data[..32], &[0xab; 32]);
        assert_eq!(&quote.report_body.report_data[32..], &[0; 32]);
        assert_eq!(bytes.len() as u32, platform.quote_size().unwrap());

        // The same with the CPU taken from the state directory.
        let args = parse(&[
            "--socket",
            socket.to_str().unwrap(),
            "--state-dir",
            dir.path().join("state").to_str().unwrap(),
            "--report-data",
            "01",
            "--out",
            out_file.to_str().unwrap(),
        ])
        .unwrap();
        assert_eq!(run(args).unwrap(), ExitCode::SUCCESS);

        // No helper behind a socket: a clear error naming it.
        let missing = dir.path().join("none/aesm.socket");
        let args = parse(&[
            "--socket",
            missing.to_str().unwrap(),
            "--state-dir",
            dir.path().join("state").to_str().unwrap(),
            "--report-data",
            "01",
            "--out",
            out_file.to_str().unwrap(),
            "--wait-secs",
            "0",
        ])
        .unwrap();
        let err = format!("{:#}", run(args).unwrap_err());
        assert!(err.contains("unavailable"), "{err}");
        assert!(err.contains("none/aesm.socket"), "{err}");

        stop_tx.send(()).unwrap();
        server.join().unwrap().unwrap();
    }
}

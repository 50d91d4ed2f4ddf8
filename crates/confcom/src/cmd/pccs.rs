//! `confcom pccs`: a collateral service speaking Intel's PCCS REST API (`/sgx/certification/v3/` and
//! `/v4/`: `pckcert`, `pckcrl`, `tcb`, `qe/identity`, `qve/identity`, `rootcacrl`) for relying
//! parties, Intel's quote provider library, dcap-qvl and Open Enclave, from a simulated platform, an
//! offline directory, or an upstream PCS/PCCS/THIM cached in LAZY mode. `/metrics`, `/healthz` and
//! `/readyz` are served on the same listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use pccs::client::ClientOptions;
use pccs::store::Store;
use pccs::{CollateralSource, DirSource, SimSource, UpstreamSource};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sgx_sim::SimPlatform;

#[derive(clap::Args)]
#[command(
    group(clap::ArgGroup::new("source").required(true).args(["sim_state", "offline_dir", "upstream"])),
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Serve the collateral of this simulated platform (a `confcom sim init` or quote-helper state
    /// directory); TCB info v2 on API v3, v3 on API v4.
    #[arg(long, env = "CONFCOM_PCCS_SIM_STATE", value_name = "DIR")]
    pub sim_state: Option<PathBuf>,
    /// With --sim-state: the cluster-wide simulated CA the nodes' quote helpers use
    /// (`quote-helper --sim-ca-dir`); the platform is created under it when --sim-state is empty,
    /// and its collateral then verifies every node's quotes.
    #[arg(
        long,
        env = "CONFCOM_SIM_CA_DIR",
        value_name = "DIR",
        requires = "sim_state"
    )]
    pub sim_ca_dir: Option<PathBuf>,
    /// Serve an offline directory in the layout `confcom sim collateral --out` writes (plus an
    /// optional pck_cert_chain.pem and qve_identity.json); files are read at every request.
    #[arg(long, env = "CONFCOM_PCCS_OFFLINE_DIR", value_name = "DIR")]
    pub offline_dir: Option<PathBuf>,
    /// Serve collateral from this upstream service (Intel's PCS
    /// `https://api.trustedservices.intel.com/sgx/certification/v4/`, another PCCS, Azure's THIM),
    /// cached in --cache-dir: fetched on a miss, served from the cache, fetched again before its
    /// nextUpdate; while the upstream fails, the cached copy is served.
    #[arg(long, env = "CONFCOM_PCCS_UPSTREAM", value_name = "URL")]
    pub upstream: Option<String>,
    /// Directory of the collateral cache of --upstream (a crash-safe database file in it).
    #[arg(
        long,
        env = "CONFCOM_PCCS_CACHE_DIR",
        default_value = "/var/cache/confcom-pccs"
    )]
    pub cache_dir: PathBuf,
    /// Longest time a cached answer is served before it is fetched again, in seconds (0: fetch for
    /// every request, and serve the cache only while the upstream fails).
    #[arg(long, env = "CONFCOM_PCCS_MAX_AGE_SECS", default_value_t = 86_400)]
    pub max_age_secs: u64,
    /// Timeout of each upstream request, in seconds.
    #[arg(long, env = "CONFCOM_PCCS_UPSTREAM_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub upstream_timeout_secs: u64,
    /// Take PCK certificates from this service instead of --upstream: on Azure, THIM
    /// (`http://169.254.169.254/metadata/THIM/sgx/certification/v4/` on a host, or
    /// `https://global.acccache.azure.net/sgx/certification/v4/`), whose `api-version` parameter,
    /// `metadata` header and JSON answers are handled, while CRLs, TCB info and identities come from
    /// --upstream (Intel's PCS). Cached as the rest.
    #[arg(long, value_name = "URL", requires = "upstream")]
    pub pck_upstream: Option<String>,
    /// PEM CA certificates trusted for the upstream besides Mozilla's roots and the system's store
    /// (which SSL_CERT_FILE and SSL_CERT_DIR may name): a PCCS under a private CA (repeatable).
    #[arg(long, value_name = "FILE", requires = "upstream")]
    pub upstream_ca_file: Vec<PathBuf>,
    /// Do not log each request. By default every request is one `info` line of target `access`
    /// (method, uri with query, status, bytes, duration_us, request_id, client), in the
    /// --log-format of the other logs.
    #[arg(long, env = "CONFCOM_PCCS_NO_ACCESS_LOG")]
    pub no_access_log: bool,
    /// Address of the API, /metrics, /healthz and /readyz.
    #[arg(long, env = "CONFCOM_PCCS_LISTEN", default_value = "0.0.0.0:8081")]
    pub listen: SocketAddr,
    /// SHA-512 (hex) of the admin token that the `refresh` route requires in its `admin-token`
    /// header, as Intel's PCCS keeps it (`AdminTokenHash`); without it the route refuses every
    /// caller. `echo -n TOKEN | sha512sum`.
    #[arg(long, env = "CONFCOM_PCCS_ADMIN_TOKEN_HASH", value_name = "HEX")]
    pub admin_token_hash: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key); plain HTTP without.
    #[arg(
        long,
        value_name = "FILE",
        env = "CONFCOM_PCCS_TLS_CERT",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        value_name = "FILE",
        env = "CONFCOM_PCCS_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    #[command(flatten)]
    pub limits: super::conn_limits::ServerLimitsArgs,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Create a private CA (ca.crt) and a serving certificate (tls.crt, tls.key) for the PCCS
    /// Service `sgx-pccs.<namespace>.svc`; clients trust ca.crt.
    Certs(super::webhook::CertsArgs),
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    status: u16,
}

fn source(
    args: &Args,
    registry: &mut prometheus_client::registry::Registry,
) -> Result<Arc<dyn CollateralSource>> {
    if let Some(url) = &args.upstream {
        std::fs::create_dir_all(&args.cache_dir)
            .with_context(|| format!("cannot create --cache-dir {}", args.cache_dir.display()))?;
        let path = args.cache_dir.join(CACHE_FILE);
        let store = Store::open(&path)
            .with_context(|| format!("cannot open the collateral cache {}", path.display()))?;
        let options = ClientOptions {
            ca_files: args.upstream_ca_file.clone(),
            ..ClientOptions::default()
        };
        let timeout = Duration::from_secs(args.upstream_timeout_secs);
        let mut source = UpstreamSource::with_options(url, store, timeout, options.clone())?
            .with_max_age(Duration::from_secs(args.max_age_secs));
        if let Some(pck) = &args.pck_upstream {
            source = source.with_pck_upstream(pck, timeout, options)?;
        }
        source.register_metrics(registry);
        return Ok(Arc::new(source));
    }
    match (&args.sim_state, &args.offline_dir) {
        (Some(state), _) => {
            let platform = match &args.sim_ca_dir {
                Some(ca) => SimPlatform::open_or_init(
                    state,
                    &sgx_sim::InitOptions {
                        ca_dir: Some(ca.clone()),
                        ..sgx_sim::InitOptions::default()
                    },
                ),
                None => SimPlatform::open(state),
            }
            .with_context(|| {
                format!("cannot open the simulated platform in {}", state.display())
            })?;
            let source = SimSource::new(Arc::new(platform));
            // Issue once now, so that a broken state fails at start, not at the first request.
            source
                .root_ca_crl()
                .context("cannot issue the simulated collateral")?;
            Ok(Arc::new(source))
        }
        (None, Some(dir)) => {
            if !dir.is_dir() {
                bail!("--offline-dir {} is not a directory", dir.display());
            }
            Ok(Arc::new(DirSource::new(dir)))
        }
        (None, None) => bail!("give --sim-state DIR, --offline-dir DIR or --upstream URL"),
    }
}

/// The PCCS API as routes of the ops endpoint, counting answers by status in `registry`.
pub fn routes(
    source: Arc<dyn CollateralSource>,
    options: pccs::RouteOptions,
    registry: &mut prometheus_client::registry::Registry,
) -> ops_http::ExtraRoutes {
    let requests = Family::<RequestLabels, Counter>::default();
    registry.register(
        "confcom_pccs_requests",
        "PCCS API requests answered, by HTTP status",
        requests.clone(),
    );
    pccs::routes(source, options, move |reply| {
        requests
            .get_or_create(&RequestLabels {
                status: reply.status,
            })
            .inc();
    })
}

/// The database file of the collateral cache in `--cache-dir`.
pub const CACHE_FILE: &str = "collateral.redb";

pub fn run(args: Args) -> Result<ExitCode> {
    if let Some(Command::Certs(certs)) = args.command {
        return super::webhook::certs_cmd(certs, addon::names::PCCS_NAME);
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Arc::new(addon::server::tls_config_from_pem_files(
            cert, key,
        )?)),
        _ => None,
    };
    let admin = match &args.admin_token_hash {
        Some(hash) => Some(pccs::AdminToken::from_sha512_hex(hash).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let mut registry = prometheus_client::registry::Registry::default();
    let source = source(&args, &mut registry)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on --listen {}", args.listen))?;
        let addr = listener.local_addr().unwrap_or(args.listen);
        let options = pccs::RouteOptions {
            may_block: args.upstream.is_some(),
            admin: admin.clone(),
            access_log: !args.no_access_log,
        };
        let routes = routes(source, options, &mut registry);
        let readiness = ops_http::Readiness::new();
        readiness.set_ready(true);
        tracing::info!(
            listen = %addr,
            source = %match (&args.sim_state, &args.offline_dir, &args.upstream) {
                (Some(state), _, _) => format!("simulated platform {}", state.display()),
                (None, Some(dir), _) => format!("offline directory {}", dir.display()),
                (None, None, Some(url)) => {
                    format!("upstream {url}, cached in {}", args.cache_dir.display())
                }
                (None, None, None) => String::new(),
            },
            https = tls.is_some(),
            "PCCS serving /sgx/certification/v3/ and /v4/"
        );
        let shutdown = crate::daemon::shutdown_signal();
        let limits = args.limits.ops_limits();
        let connections = ops_http::guard::ConnMetrics::register(&mut registry, "confcom_pccs");
        ops_http::serve_guarded(
            listener,
            tls,
            Arc::new(registry),
            readiness,
            Some(routes),
            limits,
            connections,
            shutdown,
        )
        .await
        .context("the PCCS server failed")?;
        tracing::info!("PCCS stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

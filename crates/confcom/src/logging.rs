//! The tracing subscriber: set up here and nowhere else.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// The value of `--log-format` that selects this format (for child processes).
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// The default filter: `info`, without the HTTP trace layer of kube's client, which logs every
/// failed API request at ERROR although the same failure is returned to our code, which reports it
/// (with its retry) itself.
const DEFAULT_FILTER: &str = "info,kube_client::client::builder=off";

/// Installs the global subscriber. `RUST_LOG` overrides the default filter ([`DEFAULT_FILTER`]).
///
/// Text logs are coloured only when stderr is a terminal (and `NO_COLOR` is unset): container
/// runtimes capture stderr into log files, where escape codes are noise.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    // `try_init` fails only when a subscriber is already installed, which is harmless.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

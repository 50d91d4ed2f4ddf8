//! The settings: Intel's QCNL configuration file and the az-dcap-client environment variables,
//! read at every call (so that a changed file applies to the next call without a restart).
//!
//! The file is `$QCNL_CONF_PATH`, else `/etc/sgx_default_qcnl.conf`; a missing file means the
//! defaults. Like Intel's loader, the text is read as JSON first (`//` and `/* */` comments allowed
//! outside strings); text that fails to parse is an error when it starts with `{`
//! (`SGX_QL_CONFIG_INVALID_JSON`), and otherwise read in the legacy `KEY=value` format (all
//! whitespace removed from each line, `#` lines skipped, unknown keys ignored).
//!
//! | JSON key | legacy key | default | meaning |
//! |---|---|---|---|
//! | `pccs_url` | `PCCS_URL` | `https://localhost:8081/sgx/certification/v4/` | PCK certificates; also collateral unless `collateral_service` is set |
//! | `local_pck_url` | `LOCAL_PCK_URL` | – | PCK certificates are asked here first (Azure's THIM); a transport failure or an answer other than `200` fails over to `pccs_url`, with a notice |
//! | `custom_request_options` | – | – | `{"get_cert": {"headers": {…}, "params": {…}}}`: headers and query parameters (strings) added to PCK certificate requests, to both URLs |
//! | `collateral_service` | `COLLATERAL_SERVICE` | – | CRLs, TCB info, QE/QvE identity |
//! | `tcb_update_type` | – | – | `early` or `standard` (any case): sent as `update=` on `tcb`, `qe/identity` and `qve/identity`; not sent when unset |
//! | `use_secure_cert` | `USE_SECURE_CERT` | `true` | `false`: accept any TLS certificate of the service (logged as a warning at every call) |
//! | `retry_times` | `RETRY_TIMES` | 0 | further attempts after a network failure or a `5xx` (at most 10; at most 6 with doubling pauses, so that no pause exceeds 60 s) |
//! | `retry_delay` | `RETRY_DELAY` | 0 | seconds between attempts (at most 60); 0: 1 s doubling |
//! | `local_cache_only` | – | `false` | serve from the cache only, never the network |
//! | `pccs_api_version` | `PCCS_API_VERSION` | `3.1` | `3.1`: CRLs as DER; `3.0`: CRLs as hex text; ignored (3.1) when the collateral service is Intel's PCS |
//! | `pck_cache_expire_hours` | `PCK_CACHE_EXPIRE_HOURS` | 0 | cache PCK certificates this long (0: not at all; at most 2160) |
//! | `verify_collateral_cache_expire_hours` | `VERIFY_COLLATERAL_CACHE_EXPIRE_HOURS` | 0 | the same for verification collateral |
//!
//! A known key with a value of the wrong type or range is an error naming the key (also a
//! `custom_request_options` that is not an object of objects of strings, or a header that HTTP
//! cannot carry); a retry count or delay above its bound is capped, with a notice. Unknown keys
//! are ignored, and so are members of `custom_request_options` other than `get_cert`, which
//! Intel's library does not read either.
//!
//! Environment (az-dcap-client's names): `AZDCAP_BASE_CERT_URL` replaces the collateral service
//! (not `pccs_url`, which PCK certificates come from) with `<base>/<version>/`
//! (`AZDCAP_COLLATERAL_VERSION`, `v3` or `v4`, default `v3`, any other value read as `v3` with a
//! notice; a base already ending in `/v3` or `/v4` is taken as it is). Azure's own path shapes are
//! not spoken, so the URL must serve the PCCS API; a notice says so. The cache directory is
//! `.dcap-qcnl` under the first usable of `$AZDCAP_CACHE`, `$XDG_CACHE_HOME`, `$HOME`, `$TMPDIR`,
//! `/tmp` ([`cache_candidates`]).
//!
//! Notices ([`Config::notices`]) are logged at every call through the library's logging callback.

use std::path::{Path, PathBuf};

use pccs::client::TcbUpdate;
use serde_json::Value;

/// Where Intel's library reads its configuration.
pub const DEFAULT_CONF_PATH: &str = "/etc/sgx_default_qcnl.conf";
/// The built-in service URL.
pub const DEFAULT_PCCS_URL: &str = "https://localhost:8081/sgx/certification/v4/";
/// The longest cache lifetime Intel's library allows.
pub const CACHE_MAX_EXPIRY_HOURS: u32 = 2160;
/// The most further attempts after a failure.
pub const MAX_RETRY_TIMES: u32 = 10;
/// The most further attempts with doubling pauses (1, 2, … 32 s: none longer than
/// [`MAX_RETRY_DELAY_SECS`]).
pub const MAX_DOUBLING_RETRY_TIMES: u32 = 6;
/// The longest pause between attempts, seconds.
pub const MAX_RETRY_DELAY_SECS: u64 = 60;
/// The cache's directory name under the chosen parent.
pub const CACHE_DIR_NAME: &str = ".dcap-qcnl";
/// The largest configuration file read.
const MAX_CONF_SIZE: u64 = 1 << 20;

/// Why the settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file starts with `{` but is not JSON.
    #[error("{} is not valid JSON: {reason}", path.display())]
    InvalidJson {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A setting has a value of the wrong type or range.
    #[error("{}: {key}: {reason}", path.display())]
    BadValue {
        /// The file (or `environment`).
        path: PathBuf,
        /// The key or variable.
        key: String,
        /// Why.
        reason: String,
    },
}

/// How the CRLs travel in the collateral, and so its version field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrlEncoding {
    /// Collateral version 3.0: hex text of the DER.
    Hex,
    /// Collateral version 3.1: raw DER.
    Der,
}

/// The settings of one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Where PCK certificates come from.
    pub pccs_url: String,
    /// Where PCK certificates are asked first (`local_pck_url`, Azure's THIM).
    pub local_pck_url: Option<String>,
    /// Query parameters added to PCK certificate requests
    /// (`custom_request_options.get_cert.params`), by name.
    pub get_cert_params: Vec<(String, String)>,
    /// Headers added to PCK certificate requests (`custom_request_options.get_cert.headers`), by
    /// name.
    pub get_cert_headers: Vec<(String, String)>,
    /// The `update=` of TCB info and identity requests (`tcb_update_type`); `None`: not sent.
    pub tcb_update: Option<TcbUpdate>,
    /// Where collateral comes from, when not `pccs_url`.
    pub collateral_service: Option<String>,
    /// Verify the service's TLS certificate.
    pub use_secure_cert: bool,
    /// Further attempts after a network failure or a `5xx`.
    pub retry_times: u32,
    /// Seconds between attempts (0: 1 s doubling).
    pub retry_delay_secs: u64,
    /// Never use the network.
    pub local_cache_only: bool,
    /// The CRL encoding (`pccs_api_version`).
    pub crl_encoding: CrlEncoding,
    /// Cache lifetime of PCK certificates, hours (0: no caching).
    pub pck_cache_expire_hours: u32,
    /// Cache lifetime of verification collateral, hours (0: no caching).
    pub verify_collateral_cache_expire_hours: u32,
    /// What was adjusted or deserves a word (capped values, ignored or limited variables), logged
    /// at every call.
    pub notices: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            pccs_url: DEFAULT_PCCS_URL.to_owned(),
            local_pck_url: None,
            get_cert_params: Vec::new(),
            get_cert_headers: Vec::new(),
            tcb_update: None,
            collateral_service: None,
            use_secure_cert: true,
            retry_times: 0,
            retry_delay_secs: 0,
            local_cache_only: false,
            crl_encoding: CrlEncoding::Der,
            pck_cache_expire_hours: 0,
            verify_collateral_cache_expire_hours: 0,
            notices: Vec::new(),
        }
    }
}

impl Config {
    /// The settings from the file and the environment of this process.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::load(&|name| std::env::var(name).ok())
    }

    /// The settings with `env` as the environment (`QCNL_CONF_PATH`, `AZDCAP_*`).
    pub fn load(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let path = env("QCNL_CONF_PATH")
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_CONF_PATH), PathBuf::from);
        let mut config = match read_limited(&path) {
            Ok(Some(text)) => Self::parse(&path, &text)?,
            Ok(None) => Self::default(),
            Err(reason) => return Err(ConfigError::Read { path, reason }),
        };
        config.apply_env(env);
        if config.crl_encoding == CrlEncoding::Hex && config.collateral_is_intel_pcs() {
            config.notices.push(format!(
                "pccs_api_version 3.0 is ignored: the collateral service {} is Intel's PCS, \
                 whose CRLs are DER (collateral version 3.1)",
                config.collateral_url()
            ));
        }
        Ok(config)
    }

    /// Reads the text of a configuration file (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let mut config = match serde_json::from_str::<Value>(&strip_comments(text)) {
            Ok(Value::Object(map)) => Self::from_json(path, &map),
            Ok(_) => Self::from_legacy(path, text),
            Err(e) if text.trim_start().starts_with('{') => Err(ConfigError::InvalidJson {
                path: path.to_owned(),
                reason: e.to_string(),
            }),
            Err(_) => Self::from_legacy(path, text),
        }?;
        config.bound_retries();
        Ok(config)
    }

    /// Caps the retry count and delay, with a notice for each capped value.
    fn bound_retries(&mut self) {
        if self.retry_delay_secs > MAX_RETRY_DELAY_SECS {
            self.notices.push(format!(
                "retry_delay {} s is capped at {MAX_RETRY_DELAY_SECS} s",
                self.retry_delay_secs
            ));
            self.retry_delay_secs = MAX_RETRY_DELAY_SECS;
        }
        let (max, why) = if self.retry_delay_secs == 0 {
            (
                MAX_DOUBLING_RETRY_TIMES,
                " (retry_delay 0 doubles the pause from 1 s; no pause may exceed 60 s)",
            )
        } else {
            (MAX_RETRY_TIMES, "")
        };
        if self.retry_times > max {
            self.notices.push(format!(
                "retry_times {} is capped at {max}{why}",
                self.retry_times
            ));
            self.retry_times = max;
        }
    }

    /// The retries a client makes: further attempts, and the fixed pause between them (`None`:
    /// 1 s doubling), within the bounds whatever the fields say.
    pub fn retries(&self) -> (u32, Option<std::time::Duration>) {
        let delay = self.retry_delay_secs.min(MAX_RETRY_DELAY_SECS);
        let max = if delay == 0 {
            MAX_DOUBLING_RETRY_TIMES
        } else {
            MAX_RETRY_TIMES
        };
        (
            self.retry_times.min(max),
            (delay > 0).then(|| std::time::Duration::from_secs(delay)),
        )
    }

    fn from_json(path: &Path, map: &serde_json::Map<String, Value>) -> Result<Self, ConfigError> {
        let bad = |key: &str, reason: &str| ConfigError::BadValue {
            path: path.to_owned(),
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        let string = |key: &str| -> Result<Option<String>, ConfigError> {
            match map.get(key) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(bad(key, "not a string")),
            }
        };
        let boolean = |key: &str| -> Result<Option<bool>, ConfigError> {
            match map.get(key) {
                None => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(_) => Err(bad(key, "not true or false")),
            }
        };
        let number = |key: &str| -> Result<Option<u64>, ConfigError> {
            match map.get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| bad(key, "not a whole number ≥ 0")),
            }
        };
        let mut config = Self::default();
        if let Some(url) = string("pccs_url")? {
            config.pccs_url = url;
        }
        config.collateral_service = string("collateral_service")?.filter(|s| !s.is_empty());
        config.local_pck_url = string("local_pck_url")?.filter(|s| !s.is_empty());
        if let Some(options) = map.get("custom_request_options") {
            let get_cert = match options {
                Value::Object(options) => options.get("get_cert"),
                _ => return Err(bad("custom_request_options", "not an object")),
            };
            match get_cert {
                None => {}
                Some(Value::Object(get_cert)) => {
                    config.get_cert_params = string_pairs(path, get_cert, "params")?;
                    config.get_cert_headers = string_pairs(path, get_cert, "headers")?;
                    if let Some((name, value)) =
                        config.get_cert_headers.iter().find(|(name, value)| {
                            http::HeaderName::from_bytes(name.as_bytes()).is_err()
                                || http::HeaderValue::from_str(value).is_err()
                        })
                    {
                        return Err(bad(
                            "custom_request_options.get_cert.headers",
                            &format!("{name:?}: {value:?} is not an HTTP header"),
                        ));
                    }
                }
                Some(_) => {
                    return Err(bad("custom_request_options.get_cert", "not an object"));
                }
            }
        }
        if let Some(update) = string("tcb_update_type")? {
            config.tcb_update = Some(TcbUpdate::parse(&update).ok_or_else(|| {
                bad(
                    "tcb_update_type",
                    &format!("{update:?} is not \"early\" or \"standard\""),
                )
            })?);
        }
        if let Some(secure) = boolean("use_secure_cert")? {
            config.use_secure_cert = secure;
        }
        if let Some(n) = number("retry_times")? {
            config.retry_times = u32::try_from(n).map_err(|_| bad("retry_times", "too large"))?;
        }
        if let Some(n) = number("retry_delay")? {
            config.retry_delay_secs = n;
        }
        if let Some(only) = boolean("local_cache_only")? {
            config.local_cache_only = only;
        }
        if let Some(version) = string("pccs_api_version")? {
            config.crl_encoding = api_version(&version).ok_or_else(|| {
                bad(
                    "pccs_api_version",
                    &format!("{version:?} is not \"3.0\" or \"3.1\""),
                )
            })?;
        }
        if let Some(n) = number("pck_cache_expire_hours")? {
            config.pck_cache_expire_hours = hours(n);
        }
        if let Some(n) = number("verify_collateral_cache_expire_hours")? {
            config.verify_collateral_cache_expire_hours = hours(n);
        }
        Ok(config)
    }

    fn from_legacy(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let bad = |key: &str, reason: String| ConfigError::BadValue {
            path: path.to_owned(),
            key: key.to_owned(),
            reason,
        };
        let number = |key: &str, value: &str| -> Result<u64, ConfigError> {
            value
                .parse::<u64>()
                .map_err(|_| bad(key, format!("{value:?} is not a whole number ≥ 0")))
        };
        let mut config = Self::default();
        for line in text.lines() {
            let line: String = line.chars().filter(|c| !c.is_whitespace()).collect();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "PCCS_URL" => config.pccs_url = value.to_owned(),
                "COLLATERAL_SERVICE" => {
                    config.collateral_service = Some(value.to_owned()).filter(|v| !v.is_empty());
                }
                "LOCAL_PCK_URL" => {
                    config.local_pck_url = Some(value.to_owned()).filter(|v| !v.is_empty());
                }
                // Only an explicit false turns verification off, as in Intel's loader.
                "USE_SECURE_CERT" if value == "FALSE" || value == "false" => {
                    config.use_secure_cert = false;
                }
                "RETRY_TIMES" => {
                    config.retry_times = u32::try_from(number(key, value)?)
                        .map_err(|_| bad(key, "too large".into()))?;
                }
                "RETRY_DELAY" => config.retry_delay_secs = number(key, value)?,
                "PCCS_API_VERSION" => {
                    config.crl_encoding = api_version(value)
                        .ok_or_else(|| bad(key, format!("{value:?} is not \"3.0\" or \"3.1\"")))?;
                }
                "PCK_CACHE_EXPIRE_HOURS" => {
                    config.pck_cache_expire_hours = hours(number(key, value)?)
                }
                "VERIFY_COLLATERAL_CACHE_EXPIRE_HOURS" => {
                    config.verify_collateral_cache_expire_hours = hours(number(key, value)?);
                }
                _ => {}
            }
        }
        Ok(config)
    }

    /// `AZDCAP_BASE_CERT_URL` and `AZDCAP_COLLATERAL_VERSION`: the collateral service only (Azure's
    /// base URL serves collateral, not PCK certificates).
    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        let Some(base) = env("AZDCAP_BASE_CERT_URL").filter(|b| !b.is_empty()) else {
            return;
        };
        let version = match env("AZDCAP_COLLATERAL_VERSION").filter(|v| !v.is_empty()) {
            None => "v3".to_owned(),
            Some(v) if v == "v3" || v == "v4" => v,
            Some(other) => {
                self.notices.push(format!(
                    "AZDCAP_COLLATERAL_VERSION {other:?} is not spoken (only v3 and v4): v3 is used"
                ));
                "v3".to_owned()
            }
        };
        let base = base.trim_end_matches('/');
        let url = if base.ends_with("/v3") || base.ends_with("/v4") {
            format!("{base}/")
        } else {
            format!("{base}/{version}/")
        };
        self.notices.push(format!(
            "AZDCAP_BASE_CERT_URL: collateral from {url}; Azure-specific path shapes (qeid, \
             qveid, pckcrl?uri=) are not spoken, so this URL must serve the PCCS API"
        ));
        self.collateral_service = Some(url);
    }

    /// Where collateral comes from.
    pub fn collateral_url(&self) -> &str {
        self.collateral_service.as_deref().unwrap_or(&self.pccs_url)
    }

    /// Whether collateral comes from Intel's PCS (as Intel's library tells it: the URL names
    /// `trustedservices.intel.com`).
    pub fn collateral_is_intel_pcs(&self) -> bool {
        self.collateral_url().contains("trustedservices.intel.com")
    }

    /// The CRL encoding of the collateral: DER when it comes from Intel's PCS, whatever
    /// `pccs_api_version` says (Intel's library does the same), else as configured.
    pub fn effective_crl_encoding(&self) -> CrlEncoding {
        if self.collateral_is_intel_pcs() {
            CrlEncoding::Der
        } else {
            self.crl_encoding
        }
    }

    /// The `version` field of the collateral this configuration produces.
    pub fn collateral_version(&self) -> u32 {
        match self.effective_crl_encoding() {
            CrlEncoding::Hex => crate::types::SGX_QL_QVE_COLLATERAL_VERSION_3_0,
            CrlEncoding::Der => crate::types::SGX_QL_QVE_COLLATERAL_VERSION_3_1,
        }
    }
}

/// The members of the object `map[key]` (absent: none), each a string.
fn string_pairs(
    path: &Path,
    map: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    let bad = |reason: String| ConfigError::BadValue {
        path: path.to_owned(),
        key: format!("custom_request_options.get_cert.{key}"),
        reason,
    };
    match map.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Object(members)) => members
            .iter()
            .map(|(name, value)| match value {
                Value::String(text) => Ok((name.clone(), text.clone())),
                _ => Err(bad(format!("{name:?} is not a string"))),
            })
            .collect(),
        Some(_) => Err(bad("not an object".into())),
    }
}

fn api_version(text: &str) -> Option<CrlEncoding> {
    match text {
        "3.0" => Some(CrlEncoding::Hex),
        "3.1" => Some(CrlEncoding::Der),
        _ => None,
    }
}

fn hours(n: u64) -> u32 {
    u32::try_from(n.min(u64::from(CACHE_MAX_EXPIRY_HOURS))).unwrap_or(CACHE_MAX_EXPIRY_HOURS)
}

/// The file's text; `None` when it does not exist.
fn read_limited(path: &Path) -> Result<Option<String>, String> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut text = String::new();
    file.take(MAX_CONF_SIZE + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_CONF_SIZE {
        return Err(format!("larger than {MAX_CONF_SIZE} bytes"));
    }
    Ok(Some(text))
}

/// `text` with `//` line comments and `/* */` block comments outside strings replaced by spaces
/// (so that positions in parse errors stay meaningful).
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => {
                    if let Some(escaped) = chars.next() {
                        out.push(escaped);
                    }
                }
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for next in chars.by_ref() {
                    if next == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut last = ' ';
                for next in chars.by_ref() {
                    if last == '*' && next == '/' {
                        break;
                    }
                    out.push(if next == '\n' { '\n' } else { ' ' });
                    last = next;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The cache directory candidates in their order: `.dcap-qcnl` under `$AZDCAP_CACHE`,
/// `$XDG_CACHE_HOME`, `$HOME`, `$TMPDIR` (each when set and not empty), then `/tmp`.
pub fn cache_candidates(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = ["AZDCAP_CACHE", "XDG_CACHE_HOME", "HOME", "TMPDIR"]
        .iter()
        .filter_map(|name| env(name).filter(|v| !v.is_empty()))
        .map(|parent| Path::new(&parent).join(CACHE_DIR_NAME))
        .collect();
    out.push(Path::new("/tmp").join(CACHE_DIR_NAME));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/sgx_default_qcnl.conf"), text)
    }

    #[test]
    fn json_with_comments_and_every_key() {
        let text = r#"
{
  // a comment line before the first key
  //the service for PCK certificates
  "pccs_url": "https://pccs.example:8081/sgx/certification/v4/",

  // a self-signed test server
  "use_secure_cert": false,

  // collateral from elsewhere
  "collateral_service": "https://api.trustedservices.intel.com/sgx/certification/v4/",

  /* hex CRLs */
  "pccs_api_version": "3.0",

  "retry_times": 6,
  "retry_delay": 10,
  "pck_cache_expire_hours": 168,
  "verify_collateral_cache_expire_hours": 168,
  "local_cache_only": false,
  "custom_request_options" : { "get_cert" : { "headers": { "head1": "value1" } } }
}
"#;
        let config = parse(text).unwrap();
        assert_eq!(
            config,
            Config {
                pccs_url: "https://pccs.example:8081/sgx/certification/v4/".into(),
                get_cert_headers: vec![("head1".into(), "value1".into())],
                collateral_service: Some(
                    "https://api.trustedservices.intel.com/sgx/certification/v4/".into()
                ),
                use_secure_cert: false,
                retry_times: 6,
                retry_delay_secs: 10,
                local_cache_only: false,
                crl_encoding: CrlEncoding::Hex,
                pck_cache_expire_hours: 168,
                verify_collateral_cache_expire_hours: 168,
                ..Config::default()
            }
        );
        assert_eq!(
            config.collateral_url(),
            "https://api.trustedservices.intel.com/sgx/certification/v4/"
        );
        // Intel's PCS serves DER CRLs: "3.0" is ignored for it, as Intel's library ignores it.
        assert!(config.collateral_is_intel_pcs());
        assert_eq!(config.effective_crl_encoding(), CrlEncoding::Der);
        assert_eq!(config.collateral_version(), 0x0001_0003);
    }

    /// Intel's `sgx_default_qcnl_azure.conf`, as Azure users copy it to /etc.
    const INTEL_AZURE_CONF: &str = r#"{ "pccs_url": "https://global.acccache.azure.net/sgx/certification/v4/",
  "use_secure_cert": true,
  "collateral_service": "https://api.trustedservices.intel.com/sgx/certification/v4/",
  "pccs_api_version": "3.1", "retry_times": 6, "retry_delay": 5,
  "local_pck_url": "http://169.254.169.254/metadata/THIM/sgx/certification/v4/",
  "pck_cache_expire_hours": 48, "verify_collateral_cache_expire_hours": 48,
  "custom_request_options" : { "get_cert" : { "headers": { "metadata": "true" }, "params": { "api-version": "2021-07-22-preview" } } } }"#;

    #[test]
    fn intels_azure_configuration_is_read_whole() {
        let config = parse(INTEL_AZURE_CONF).unwrap();
        assert_eq!(
            config,
            Config {
                pccs_url: "https://global.acccache.azure.net/sgx/certification/v4/".into(),
                local_pck_url: Some(
                    "http://169.254.169.254/metadata/THIM/sgx/certification/v4/".into()
                ),
                get_cert_params: vec![("api-version".into(), "2021-07-22-preview".into())],
                get_cert_headers: vec![("metadata".into(), "true".into())],
                tcb_update: None,
                collateral_service: Some(
                    "https://api.trustedservices.intel.com/sgx/certification/v4/".into()
                ),
                use_secure_cert: true,
                retry_times: 6,
                retry_delay_secs: 5,
                local_cache_only: false,
                crl_encoding: CrlEncoding::Der,
                pck_cache_expire_hours: 48,
                verify_collateral_cache_expire_hours: 48,
                notices: Vec::new(),
            }
        );
        assert!(config.collateral_is_intel_pcs());
        // The legacy format names the local URL too.
        let legacy = parse("LOCAL_PCK_URL=http://thim/sgx/certification/v4/\n").unwrap();
        assert_eq!(
            legacy.local_pck_url.as_deref(),
            Some("http://thim/sgx/certification/v4/")
        );
        // An empty local URL is no local URL.
        assert_eq!(
            parse(r#"{"local_pck_url": ""}"#).unwrap().local_pck_url,
            None
        );
    }

    #[test]
    fn tcb_update_type_is_early_or_standard_in_any_case() {
        for (text, update) in [
            ("early", TcbUpdate::Early),
            ("EARLY", TcbUpdate::Early),
            ("Standard", TcbUpdate::Standard),
        ] {
            let config = parse(&format!(r#"{{"tcb_update_type": "{text}"}}"#)).unwrap();
            assert_eq!(config.tcb_update, Some(update), "{text}");
        }
        assert_eq!(parse("{}").unwrap().tcb_update, None);
    }

    #[test]
    fn bad_custom_request_options_and_update_types_are_refused() {
        for (text, key) in [
            (r#"{"tcb_update_type": "late"}"#, "tcb_update_type"),
            (r#"{"tcb_update_type": ""}"#, "tcb_update_type"),
            (r#"{"tcb_update_type": 1}"#, "tcb_update_type"),
            (r#"{"local_pck_url": true}"#, "local_pck_url"),
            (
                r#"{"custom_request_options": ["get_cert"]}"#,
                "custom_request_options",
            ),
            (
                r#"{"custom_request_options": {"get_cert": "x"}}"#,
                "custom_request_options.get_cert",
            ),
            (
                r#"{"custom_request_options": {"get_cert": {"headers": ["metadata"]}}}"#,
                "custom_request_options.get_cert.headers",
            ),
            (
                r#"{"custom_request_options": {"get_cert": {"headers": {"metadata": true}}}}"#,
                "custom_request_options.get_cert.headers",
            ),
            (
                r#"{"custom_request_options": {"get_cert": {"params": {"n": 1}}}}"#,
                "custom_request_options.get_cert.params",
            ),
            (
                r#"{"custom_request_options": {"get_cert": {"params": "a=b"}}}"#,
                "custom_request_options.get_cert.params",
            ),
            (
                r#"{"custom_request_options": {"get_cert": {"headers": {"bad name": "x"}}}}"#,
                "custom_request_options.get_cert.headers",
            ),
            (
                r#"{"custom_request_options": {"get_cert": {"headers": {"x": "a\r\nInjected: 1"}}}}"#,
                "custom_request_options.get_cert.headers",
            ),
        ] {
            match parse(text) {
                Err(ConfigError::BadValue { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        // Other members of custom_request_options are left alone, as in Intel's library.
        let config = parse(
            r#"{"custom_request_options": {"get_collateral": 5,
                "get_cert": {"params": {"a b": "c&d"}}}}"#,
        )
        .unwrap();
        assert_eq!(config.get_cert_params, [("a b".into(), "c&d".into())]);
        assert!(config.get_cert_headers.is_empty());
    }

    #[test]
    fn api_version_3_0_applies_to_a_pccs_and_not_to_intels_pcs() {
        let pccs = parse(
            r#"{"pccs_url": "https://pccs.example:8081/sgx/certification/v4/",
                "pccs_api_version": "3.0"}"#,
        )
        .unwrap();
        assert_eq!(pccs.effective_crl_encoding(), CrlEncoding::Hex);
        assert_eq!(pccs.collateral_version(), 0x0000_0003);
        let pcs = parse(
            "PCCS_URL=https://api.trustedservices.intel.com/sgx/certification/v4/\n\
             PCCS_API_VERSION=3.0\n",
        )
        .unwrap();
        assert_eq!(pcs.crl_encoding, CrlEncoding::Hex, "as configured");
        assert_eq!(pcs.effective_crl_encoding(), CrlEncoding::Der);
        assert_eq!(pcs.collateral_version(), 0x0001_0003);
        // Loaded with the environment, the override is explained in a notice.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qcnl.conf");
        std::fs::write(
            &path,
            r#"{"pccs_url": "https://pccs.example/sgx/certification/v4/",
                "collateral_service": "https://api.trustedservices.intel.com/sgx/certification/v4/",
                "pccs_api_version": "3.0"}"#,
        )
        .unwrap();
        let config = Config::load(&env_of(&[("QCNL_CONF_PATH", path.to_str().unwrap())])).unwrap();
        assert_eq!(config.collateral_version(), 0x0001_0003);
        assert_eq!(config.notices.len(), 1, "{:?}", config.notices);
        assert!(config.notices[0].contains("pccs_api_version 3.0 is ignored"));
    }

    #[test]
    fn retries_are_bounded_with_a_notice() {
        let config = parse(r#"{"retry_times": 1000, "retry_delay": 3600}"#).unwrap();
        assert_eq!(config.retry_times, 10);
        assert_eq!(config.retry_delay_secs, 60);
        assert_eq!(config.notices.len(), 2, "{:?}", config.notices);
        assert!(
            config
                .notices
                .iter()
                .any(|n| n.contains("retry_times 1000"))
        );
        assert!(
            config
                .notices
                .iter()
                .any(|n| n.contains("retry_delay 3600"))
        );
        assert_eq!(
            config.retries(),
            (10, Some(std::time::Duration::from_secs(60)))
        );
        // Doubling pauses from 1 s: six retries wait 1 + 2 + … + 32 s, a seventh would wait 64 s.
        let config = parse("RETRY_TIMES=20\n").unwrap();
        assert_eq!(config.retry_times, 6);
        assert_eq!(config.retries(), (6, None));
        assert!(
            config.notices[0].contains("retry_times 20"),
            "{:?}",
            config.notices
        );
        // Values within the bounds are kept, without notices.
        let config = parse(r#"{"retry_times": 6, "retry_delay": 10}"#).unwrap();
        assert_eq!(
            config.retries(),
            (6, Some(std::time::Duration::from_secs(10)))
        );
        assert!(config.notices.is_empty());
        // A configuration built directly is bounded too.
        let direct = Config {
            retry_times: u32::MAX,
            retry_delay_secs: u64::MAX,
            ..Config::default()
        };
        assert_eq!(
            direct.retries(),
            (10, Some(std::time::Duration::from_secs(60)))
        );
    }

    #[test]
    fn comment_markers_inside_strings_stay() {
        let text = r#"{"pccs_url": "https://a//b/*c*/", "collateral_service": "x\"//y"} // end"#;
        let config = parse(text).unwrap();
        assert_eq!(config.pccs_url, "https://a//b/*c*/");
        assert_eq!(config.collateral_service.as_deref(), Some("x\"//y"));
    }

    #[test]
    fn empty_json_means_the_defaults() {
        let config = parse("{}").unwrap();
        assert_eq!(config, Config::default());
        assert!(config.use_secure_cert);
        assert_eq!(config.collateral_version(), 0x0001_0003);
        assert_eq!(config.collateral_url(), DEFAULT_PCCS_URL);
    }

    #[test]
    fn broken_json_is_an_error_naming_the_file() {
        let error = parse("{\"pccs_url\": \"https://x\",, }").unwrap_err();
        assert!(matches!(error, ConfigError::InvalidJson { .. }), "{error}");
        assert!(error.to_string().contains("/etc/sgx_default_qcnl.conf"));
        let error = parse("  {\"pccs_url\": ").unwrap_err();
        assert!(matches!(error, ConfigError::InvalidJson { .. }), "{error}");
    }

    #[test]
    fn json_values_of_the_wrong_type_name_their_key() {
        for (text, key) in [
            (r#"{"retry_times": "six"}"#, "retry_times"),
            (r#"{"retry_times": -1}"#, "retry_times"),
            (r#"{"use_secure_cert": "false"}"#, "use_secure_cert"),
            (r#"{"pccs_url": 8081}"#, "pccs_url"),
            (r#"{"pccs_api_version": "4.0"}"#, "pccs_api_version"),
            (
                r#"{"pck_cache_expire_hours": 1.5}"#,
                "pck_cache_expire_hours",
            ),
            (r#"{"local_cache_only": 1}"#, "local_cache_only"),
        ] {
            match parse(text) {
                Err(ConfigError::BadValue { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn cache_hours_are_capped() {
        let config = parse(r#"{"verify_collateral_cache_expire_hours": 100000}"#).unwrap();
        assert_eq!(config.verify_collateral_cache_expire_hours, 2160);
    }

    #[test]
    fn legacy_key_value_format() {
        let text = "# PCCS server address\n\
                    PCCS_URL = https://pccs.legacy:8081/sgx/certification/v3/\n\
                    USE_SECURE_CERT=FALSE\n\
                    RETRY_TIMES=3\n\
                    PCK_CACHE_EXPIRE_HOURS = 24\n\
                    UNKNOWN_KEY=whatever\n\
                    not a setting\n";
        let config = parse(text).unwrap();
        assert_eq!(
            config.pccs_url,
            "https://pccs.legacy:8081/sgx/certification/v3/"
        );
        assert!(!config.use_secure_cert);
        assert_eq!(config.retry_times, 3);
        assert_eq!(config.pck_cache_expire_hours, 24);
        assert_eq!(config.crl_encoding, CrlEncoding::Der);
    }

    #[test]
    fn legacy_secure_cert_turns_off_only_with_false() {
        assert!(parse("USE_SECURE_CERT=no\n").unwrap().use_secure_cert);
        assert!(parse("USE_SECURE_CERT=0\n").unwrap().use_secure_cert);
        assert!(!parse("USE_SECURE_CERT=false\n").unwrap().use_secure_cert);
    }

    #[test]
    fn legacy_bad_numbers_name_their_key() {
        match parse("RETRY_DELAY=ten\n") {
            Err(ConfigError::BadValue { key, .. }) => assert_eq!(key, "RETRY_DELAY"),
            other => panic!("{other:?}"),
        }
        match parse("PCCS_API_VERSION=2\n") {
            Err(ConfigError::BadValue { key, .. }) => assert_eq!(key, "PCCS_API_VERSION"),
            other => panic!("{other:?}"),
        }
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn file_from_qcnl_conf_path_and_missing_file_means_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qcnl.conf");
        let missing = env_of(&[("QCNL_CONF_PATH", path.to_str().unwrap())]);
        assert_eq!(Config::load(&missing).unwrap(), Config::default());
        std::fs::write(
            &path,
            r#"{"pccs_url": "http://127.0.0.1:1/sgx/certification/v3/"}"#,
        )
        .unwrap();
        let config = Config::load(&missing).unwrap();
        assert_eq!(config.pccs_url, "http://127.0.0.1:1/sgx/certification/v3/");
    }

    #[test]
    fn azdcap_base_url_replaces_only_the_collateral_service() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qcnl.conf");
        std::fs::write(
            &path,
            r#"{"pccs_url": "https://a/sgx/certification/v4/", "collateral_service": "https://b/"}"#,
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let config = Config::load(&env_of(&[
            ("QCNL_CONF_PATH", p),
            (
                "AZDCAP_BASE_CERT_URL",
                "https://cache.example/sgx/certification",
            ),
        ]))
        .unwrap();
        assert_eq!(config.pccs_url, "https://a/sgx/certification/v4/");
        assert_eq!(
            config.collateral_url(),
            "https://cache.example/sgx/certification/v3/"
        );
        assert_eq!(config.notices.len(), 1, "{:?}", config.notices);
        assert!(
            config.notices[0].contains("must serve the PCCS API"),
            "{:?}",
            config.notices
        );
        let config = Config::load(&env_of(&[
            ("QCNL_CONF_PATH", p),
            (
                "AZDCAP_BASE_CERT_URL",
                "https://cache.example/sgx/certification/",
            ),
            ("AZDCAP_COLLATERAL_VERSION", "v4"),
        ]))
        .unwrap();
        assert_eq!(
            config.collateral_url(),
            "https://cache.example/sgx/certification/v4/"
        );
        let config = Config::load(&env_of(&[
            ("QCNL_CONF_PATH", p),
            (
                "AZDCAP_BASE_CERT_URL",
                "http://pccs:8081/sgx/certification/v4",
            ),
        ]))
        .unwrap();
        assert_eq!(
            config.collateral_url(),
            "http://pccs:8081/sgx/certification/v4/"
        );
        assert_eq!(config.pccs_url, "https://a/sgx/certification/v4/");
    }

    #[test]
    fn other_azdcap_collateral_versions_mean_v3_with_a_notice() {
        for version in ["v1", "v2", "v9"] {
            let config = Config::load(&env_of(&[
                ("QCNL_CONF_PATH", "/nonexistent/qcnl.conf"),
                ("AZDCAP_BASE_CERT_URL", "https://x/sgx/certification"),
                ("AZDCAP_COLLATERAL_VERSION", version),
            ]))
            .unwrap();
            assert_eq!(config.collateral_url(), "https://x/sgx/certification/v3/");
            assert!(
                config
                    .notices
                    .iter()
                    .any(|n| n.contains("AZDCAP_COLLATERAL_VERSION") && n.contains(version)),
                "{version}: {:?}",
                config.notices
            );
        }
    }

    #[test]
    fn cache_directories_in_the_documented_order() {
        let all = cache_candidates(&env_of(&[
            ("AZDCAP_CACHE", "/az"),
            ("XDG_CACHE_HOME", "/xdg"),
            ("HOME", "/home/u"),
            ("TMPDIR", "/scratch"),
        ]));
        let names: Vec<&str> = all.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "/az/.dcap-qcnl",
                "/xdg/.dcap-qcnl",
                "/home/u/.dcap-qcnl",
                "/scratch/.dcap-qcnl",
                "/tmp/.dcap-qcnl"
            ]
        );
        let none = cache_candidates(&env_of(&[("HOME", "")]));
        assert_eq!(none, [PathBuf::from("/tmp/.dcap-qcnl")]);
    }
}

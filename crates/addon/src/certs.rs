//! The webhook's certificates: a private CA and a serving certificate for the webhook Service.
//!
//! `confcom webhook certs --out DIR` creates them once; `confcom addon render --enable-webhook
//! --webhook-certs DIR` reads them back, so rendering stays deterministic. The CA's private key is
//! discarded after signing: nothing ever needs it again, and a new pair is one command away.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use crate::names::{DEFAULT_NAMESPACE, WEBHOOK_NAME};

/// File name of the CA certificate (PEM) in a certificate directory.
pub const CA_CERT_FILE: &str = "ca.crt";
/// File name of the serving certificate (PEM) in a certificate directory.
pub const TLS_CERT_FILE: &str = "tls.crt";
/// File name of the serving certificate's private key (PKCS#8 PEM) in a certificate directory.
pub const TLS_KEY_FILE: &str = "tls.key";

const FILES: [&str; 3] = [CA_CERT_FILE, TLS_CERT_FILE, TLS_KEY_FILE];

/// Largest certificate or key file read back (a PEM file of a few KiB is expected).
const MAX_FILE_LEN: u64 = 64 * 1024;

/// Errors creating or reading webhook certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// rcgen refused the parameters or failed to sign.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Only some of the three files exist: refuse to mix old and new material.
    #[error(
        "{dir}: holds {present:?} but not {missing:?}; remove the directory's certificate files or pass --force"
    )]
    Incomplete {
        /// The directory.
        dir: PathBuf,
        /// Files present.
        present: Vec<&'static str>,
        /// Files missing.
        missing: Vec<&'static str>,
    },
    /// A file does not hold what it should.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The validity period is out of range.
    #[error("validity of {days} days is out of range (1..=36500)")]
    Validity {
        /// The requested number of days.
        days: u32,
    },
    /// The namespace or service name is not a DNS-1123 label.
    #[error("{what} {value:?} is not a DNS-1123 label")]
    InvalidName {
        /// Which name.
        what: &'static str,
        /// The offending value.
        value: String,
    },
}

/// Parameters of a new certificate pair.
#[derive(Clone, Debug)]
pub struct CertRequest {
    /// Namespace of the webhook Service (it appears in the DNS names).
    pub namespace: String,
    /// Name of the webhook Service.
    pub service: String,
    /// Validity in days from `now`.
    pub days: u32,
}

impl Default for CertRequest {
    fn default() -> Self {
        Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            service: WEBHOOK_NAME.to_owned(),
            days: 3650,
        }
    }
}

impl CertRequest {
    /// The DNS names the API server may use to reach the Service.
    pub fn dns_names(&self) -> Vec<String> {
        let (svc, ns) = (&self.service, &self.namespace);
        vec![
            format!("{svc}.{ns}.svc"),
            format!("{svc}.{ns}.svc.cluster.local"),
            format!("{svc}.{ns}"),
            svc.clone(),
        ]
    }
}

/// A CA certificate and a serving certificate with its key, all PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertBundle {
    /// The CA certificate (the webhook configuration's `caBundle`).
    pub ca_pem: String,
    /// The serving certificate.
    pub cert_pem: String,
    /// The serving certificate's private key (PKCS#8).
    pub key_pem: String,
}

/// Outcome of [`ensure_dir`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnsureOutcome {
    /// New certificates were written.
    Created,
    /// All files were already present and were left as they are.
    AlreadyPresent,
}

pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Creates a fresh CA and a serving certificate for the webhook Service, valid from one hour before
/// `now` (clock skew) for `req.days` days. ECDSA P-256 keys.
pub fn generate(req: &CertRequest, now: OffsetDateTime) -> Result<CertBundle, CertsError> {
    if !(1..=36500).contains(&req.days) {
        return Err(CertsError::Validity { days: req.days });
    }
    for (what, value) in [("namespace", &req.namespace), ("service", &req.service)] {
        if !is_dns_label(value) {
            return Err(CertsError::InvalidName {
                what,
                value: value.clone(),
            });
        }
    }
    let not_before = now - Duration::hours(1);
    let not_after = now + Duration::days(i64::from(req.days));

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, format!("confcom {} CA", req.service));
    ca.distinguished_name
        .push(DnType::OrganizationName, "confcom");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(req.dns_names())?;
    leaf.distinguished_name.push(
        DnType::CommonName,
        format!("{}.{}.svc", req.service, req.namespace),
    );
    leaf.distinguished_name
        .push(DnType::OrganizationName, "confcom");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

    Ok(CertBundle {
        ca_pem: ca_cert.pem(),
        cert_pem: leaf_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
    })
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CertsError + '_ {
    move |source| CertsError::Io {
        path: path.to_owned(),
        source,
    }
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), CertsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    file.write_all(contents.as_bytes()).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

/// Creates the certificates in `dir` unless all three files already exist (then nothing is
/// touched). With `force`, existing files are replaced. A directory holding only some of the files
/// is an error: mixing a new key with an old CA would break the webhook silently.
pub fn ensure_dir(
    dir: &Path,
    req: &CertRequest,
    now: OffsetDateTime,
    force: bool,
) -> Result<EnsureOutcome, CertsError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let (present, missing): (Vec<&'static str>, Vec<&'static str>) =
        FILES.iter().partition(|f| dir.join(f).exists());
    if !force {
        if missing.is_empty() {
            // Validate what is there so a broken directory is reported now, not at render time.
            load_dir(dir)?;
            return Ok(EnsureOutcome::AlreadyPresent);
        }
        if !present.is_empty() {
            return Err(CertsError::Incomplete {
                dir: dir.to_owned(),
                present,
                missing,
            });
        }
    }
    let bundle = generate(req, now)?;
    write_file(&dir.join(CA_CERT_FILE), &bundle.ca_pem, 0o644)?;
    write_file(&dir.join(TLS_CERT_FILE), &bundle.cert_pem, 0o644)?;
    write_file(&dir.join(TLS_KEY_FILE), &bundle.key_pem, 0o600)?;
    Ok(EnsureOutcome::Created)
}

fn read_pem(path: &Path, label: &str) -> Result<String, CertsError> {
    let meta = fs::metadata(path).map_err(io_err(path))?;
    if meta.len() > MAX_FILE_LEN {
        return Err(CertsError::Invalid {
            path: path.to_owned(),
            reason: format!(
                "{} bytes, more than the {MAX_FILE_LEN} expected",
                meta.len()
            ),
        });
    }
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    if !text.contains(&format!("-----BEGIN {label}-----")) {
        return Err(CertsError::Invalid {
            path: path.to_owned(),
            reason: format!("no PEM block \"{label}\""),
        });
    }
    Ok(text)
}

/// Reads the certificates written by [`ensure_dir`], checking that each file holds the PEM block it
/// should and that the key parses.
pub fn load_dir(dir: &Path) -> Result<CertBundle, CertsError> {
    let ca_pem = read_pem(&dir.join(CA_CERT_FILE), "CERTIFICATE")?;
    let cert_pem = read_pem(&dir.join(TLS_CERT_FILE), "CERTIFICATE")?;
    let key_path = dir.join(TLS_KEY_FILE);
    let key_pem = read_pem(&key_path, "PRIVATE KEY")?;
    KeyPair::from_pem(&key_pem).map_err(|e| CertsError::Invalid {
        path: key_path,
        reason: format!("private key does not parse: {e}"),
    })?;
    Ok(CertBundle {
        ca_pem,
        cert_pem,
        key_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_names_and_validity() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20000);
        let bad_ns = CertRequest {
            namespace: "Kube_System".into(),
            ..CertRequest::default()
        };
        assert!(matches!(
            generate(&bad_ns, now),
            Err(CertsError::InvalidName {
                what: "namespace",
                ..
            })
        ));
        let zero = CertRequest {
            days: 0,
            ..CertRequest::default()
        };
        assert!(matches!(
            generate(&zero, now),
            Err(CertsError::Validity { days: 0 })
        ));
    }

    #[test]
    fn dns_names_cover_the_service_forms() {
        let req = CertRequest {
            namespace: "sgx".into(),
            ..CertRequest::default()
        };
        assert_eq!(
            req.dns_names(),
            [
                "sgx-webhook.sgx.svc",
                "sgx-webhook.sgx.svc.cluster.local",
                "sgx-webhook.sgx",
                "sgx-webhook"
            ]
        );
    }

    #[test]
    fn ensure_dir_creates_once_and_refuses_partial_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("certs");
        let now = OffsetDateTime::now_utc();
        let req = CertRequest::default();
        assert_eq!(
            ensure_dir(&dir, &req, now, false).unwrap(),
            EnsureOutcome::Created
        );
        let first = load_dir(&dir).unwrap();
        assert_eq!(
            ensure_dir(&dir, &req, now, false).unwrap(),
            EnsureOutcome::AlreadyPresent
        );
        assert_eq!(
            load_dir(&dir).unwrap(),
            first,
            "second run must not rewrite"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.join(TLS_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        fs::remove_file(dir.join(TLS_KEY_FILE)).unwrap();
        let err = ensure_dir(&dir, &req, now, false).unwrap_err();
        assert!(
            matches!(err, CertsError::Incomplete { ref missing, .. } if missing == &[TLS_KEY_FILE])
        );
        assert_eq!(
            ensure_dir(&dir, &req, now, true).unwrap(),
            EnsureOutcome::Created
        );
        assert_ne!(load_dir(&dir).unwrap(), first);
    }

    #[test]
    fn load_dir_rejects_swapped_files() {
        let tmp = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        ensure_dir(tmp.path(), &CertRequest::default(), now, false).unwrap();
        fs::copy(tmp.path().join(CA_CERT_FILE), tmp.path().join(TLS_KEY_FILE)).unwrap();
        let err = load_dir(tmp.path()).unwrap_err();
        assert!(matches!(err, CertsError::Invalid { .. }), "{err}");
    }
}

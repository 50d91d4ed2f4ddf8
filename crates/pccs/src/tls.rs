//! Which HTTPS servers the collateral client trusts.
//!
//! - Mozilla's roots (the `webpki-root-certs` set): Intel's PCS and Azure's THIM need nothing else.
//! - The system's store, as Intel's quote provider library trusts it through libcurl: the files
//!   `SSL_CERT_FILE` and `SSL_CERT_DIR` name, else the distribution's bundle
//!   (`/etc/ssl/certs/ca-certificates.crt` and its siblings). A private CA installed there, or
//!   named by `SSL_CERT_FILE`, is trusted without any other setting.
//! - CA files the operator names (`confcom verify --pccs-ca-file`, `confcom pccs
//!   --upstream-ca-file`): PEM, every certificate in them becomes a root.
//!
//! The first two are read once per process (the system store is hundreds of certificates).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ureq::tls::{Certificate, PemItem, RootCerts};

/// Largest CA file read.
const MAX_CA_FILE: u64 = 4 << 20;

/// Why a CA file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The file cannot be read.
    #[error("CA file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not PEM, or holds no certificate.
    #[error("CA file {path}: {reason}")]
    Content {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Mozilla's roots and the system's store, loaded once.
fn base_roots() -> &'static Arc<Vec<Certificate<'static>>> {
    static BASE: OnceLock<Arc<Vec<Certificate<'static>>>> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut roots: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|der| Certificate::from_der(der.as_ref()).to_owned())
            .collect();
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::warn!(%error, "part of the system's certificate store could not be read");
        }
        roots.extend(
            native
                .certs
                .iter()
                .map(|der| Certificate::from_der(der.as_ref()).to_owned()),
        );
        Arc::new(roots)
    })
}

/// The certificates of one PEM CA file.
pub fn read_ca_file(path: &Path) -> Result<Vec<Certificate<'static>>, TrustError> {
    use std::io::Read;
    let read_err = |source| TrustError::Read {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(read_err)?
        .take(MAX_CA_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    let content = |reason: String| TrustError::Content {
        path: path.to_owned(),
        reason,
    };
    if bytes.len() as u64 > MAX_CA_FILE {
        return Err(content(format!("larger than {MAX_CA_FILE} bytes")));
    }
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        // Keys and CRLs beside the certificates are skipped.
        if let PemItem::Certificate(cert) = item.map_err(|e| content(format!("not PEM: {e}")))? {
            certs.push(cert);
        }
    }
    if certs.is_empty() {
        return Err(content("holds no PEM certificate".to_owned()));
    }
    Ok(certs)
}

/// Mozilla's roots, the system's store and the certificates of `ca_files`.
pub fn roots(ca_files: &[PathBuf]) -> Result<RootCerts, TrustError> {
    if ca_files.is_empty() {
        // Shared, not copied: every client of the process uses the same set.
        return Ok(RootCerts::Specific(base_roots().clone()));
    }
    let mut all = base_roots().to_vec();
    for path in ca_files {
        all.extend(read_ca_file(path)?);
    }
    Ok(RootCerts::Specific(Arc::new(all)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mozilla_roots_are_always_there() {
        // The webpki set alone has well over a hundred roots, whatever the system store holds.
        assert!(base_roots().len() >= webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() > 100);
    }

    #[test]
    fn ca_files_are_read_strictly() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(matches!(
            read_ca_file(&missing),
            Err(TrustError::Read { .. })
        ));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let error = read_ca_file(&empty).unwrap_err().to_string();
        assert!(error.contains("holds no PEM certificate"), "{error}");

        let der = webpki_root_certs::TLS_SERVER_ROOT_CERTS[0].as_ref();
        let pem = format!(
            "# a comment\n-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der)
        );
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, pem).unwrap();
        let certs = read_ca_file(&good).unwrap();
        assert_eq!(certs.len(), 1);
        assert_eq!(certs[0].der(), der);
        let RootCerts::Specific(all) = roots(&[good]).unwrap() else {
            panic!("specific roots expected");
        };
        assert_eq!(all.len(), base_roots().len() + 1);
    }
}

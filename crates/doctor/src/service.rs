//! The quote helper as an app sees it: does the AESM socket answer, which backend serves it, can a
//! quote be obtained, does it verify.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use aesm_protocol::att_key_id::ECDSA_PUB_KEY_ID_SIZE;
use aesm_protocol::codes::describe_aesm_code;
use aesm_service::client_flow::quote_via_socket;
use aesm_service::evidence::{evidence_path_for_socket, read_evidence};
use aesm_service::sim::sim_dir_for_socket;
use dcap_verify::{Collateral, Policy, TrustAnchor};
use quote_client::{AesmClient, ClientError, Unavailable};
use sgx_sim::{EnclaveIdentity, QE_TARGET_INFO_FILE, SimCpu};
use sgx_types::quote::Quote;
use sgx_types::structs::Wire;
use sgx_types::{AttKeyId, TargetInfo};

use crate::Check;

/// Which backend serves the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// The simulated platform: its QE target info matches the material published next to the socket.
    Simulated,
    /// Intel's QE3 (the DCAP library or Intel's aesmd).
    Hardware,
}

/// What the service checks found.
#[derive(Debug, Default)]
pub(crate) struct ServiceFindings {
    pub checks: Vec<Check>,
    pub answered: bool,
    pub backend: Option<Backend>,
    pub quote_ok: bool,
    /// `Some(true)` verified, `Some(false)` failed, `None` not attempted.
    pub verified: Option<bool>,
}

/// What to do about an AESM code from the quote helper.
fn fix_for(code: u32) -> &'static str {
    match code {
        2 => "the helper sees no SGX device: give it the SGX device nodes (see the device lines)",
        16 | 50 => {
            "the helper cannot certify its attestation key: give it the provision device \
             (/dev/sgx_provision) with read-write access"
        }
        12 | 13 => {
            "the quote provider cannot reach its PCK certificate service: check the PCCS URL in \
             /etc/sgx_default_qcnl.conf (or az-dcap-client's settings) and network access"
        }
        44 => {
            "the quote provider has no PCK certificates for this platform: check its \
             configuration and that the platform is registered with the PCCS"
        }
        29 => "not enough EPC for the quoting enclaves: request EPC for the quote helper",
        38 => {
            "the helper offers no ECDSA key id: install Intel's ECDSA plugins (aesmd) or use confcom quote-helper"
        }
        41 => "no quote provider library: install libsgx-dcap-default-qpl or az-dcap-client",
        _ => "see the quote helper's log: it names the cause and the fix of every failure",
    }
}

fn client_error_check(id: &'static str, what: &str, e: &ClientError) -> Check {
    match e {
        ClientError::Aesm(code) => Check::fail(
            id,
            format!("{what}: the helper answered {}", describe_aesm_code(*code)),
            fix_for(*code),
        ),
        other => Check::fail(id, format!("{what}: {other}"), "see the quote helper's log"),
    }
}

/// The failed `aesm-socket` check for a socket nothing accepts on, naming why.
fn unavailable_check(socket: &Path, e: &ClientError) -> Check {
    const START: &str = "start the quote helper (`confcom quote-helper`, the sgx-quote-helper \
                         DaemonSet) and mount /var/run/aesmd into the pods that quote";
    let path = socket.display();
    match e.unavailable() {
        Some(Unavailable::Absent) => Check::fail(
            "aesm-socket",
            format!("AESM socket {path} does not exist: no quote helper has started on it"),
            START,
        ),
        Some(Unavailable::Stale) => Check::fail(
            "aesm-socket",
            format!(
                "AESM socket {path} is a stale socket file: it exists but nothing listens on it \
                 (a quote helper or aesmd that stopped without removing it)"
            ),
            "start the quote helper, which replaces the stale file (`kubectl -n kube-system \
             rollout restart ds/sgx-quote-helper`); apps linked with confcom's \
             libsgx_quote_ex.so.1 wait up to CONFCOM_AESM_WAIT_SECS for it",
        ),
        Some(Unavailable::NotASocket) => Check::fail(
            "aesm-socket",
            format!("AESM socket {path} is not a socket"),
            "remove the file so that the quote helper can create its socket there",
        ),
        _ => Check::fail("aesm-socket", format!("AESM socket: {e}"), START),
    }
}

/// The checks of the quote helper on `socket`; verification with `collateral` when given.
pub(crate) fn check_service(socket: &Path, collateral: Option<&Path>, now: u64) -> ServiceFindings {
    let mut f = ServiceFindings::default();
    // A diagnosis describes the node as it is: no waiting for a helper that is not up.
    let client = AesmClient::new(socket)
        .with_timeout(Duration::from_secs(30))
        .with_service_wait(Duration::ZERO);
    let key_id = AttKeyId::intel_qe3_ecdsa().to_vec();
    match client.get_supported_att_key_id_num() {
        Ok(n) => {
            f.answered = true;
            let mode = std::fs::metadata(socket)
                .map(|m| m.permissions().mode() & 0o777)
                .ok();
            let summary = format!(
                "AESM socket {} answers ({n} attestation key id{})",
                socket.display(),
                mode.map(|m| format!(", mode {m:o}")).unwrap_or_default()
            );
            f.checks.push(match mode {
                Some(m) if m & 0o006 != 0o006 => Check::warn(
                    "aesm-socket",
                    summary,
                    "app containers running under other uids cannot connect; aesmd makes the \
                     socket 777 (quote-helper --socket-mode 777)",
                ),
                _ => Check::pass("aesm-socket", summary),
            });
        }
        Err(e @ ClientError::ServiceUnavailable { .. }) => {
            f.checks.push(unavailable_check(socket, &e));
            return f;
        }
        Err(e) => {
            f.checks
                .push(client_error_check("aesm-socket", "AESM socket", &e));
            return f;
        }
    }

    // InitQuoteEx as Intel's DCAP library does it: size query, then full mode.
    let init = client
        .init_quote_ex(&key_id, None)
        .and_then(|_| client.init_quote_ex(&key_id, Some(ECDSA_PUB_KEY_ID_SIZE)));
    let target = match init {
        Ok(r) => r
            .target_info
            .as_deref()
            .and_then(|t| TargetInfo::parse(t).ok()),
        Err(e) => {
            f.checks.push(client_error_check(
                "quote",
                "quoting enclave (InitQuoteEx)",
                &e,
            ));
            return f;
        }
    };
    let Some(target) = target else {
        f.checks.push(Check::fail(
            "quote",
            "quoting enclave (InitQuoteEx): no 512-byte target info in the reply",
            "the service on the socket is not a working AESM service",
        ));
        return f;
    };
    let sim_dir = sim_dir_for_socket(socket);
    let published = std::fs::read(sim_dir.join(QE_TARGET_INFO_FILE))
        .ok()
        .and_then(|b| TargetInfo::parse(&b).ok());
    let backend = if published == Some(target) {
        Backend::Simulated
    } else {
        Backend::Hardware
    };
    f.backend = Some(backend);
    f.checks.push(Check::pass(
        "backend",
        match backend {
            Backend::Simulated => format!(
                "backend: simulated platform (CPU material in {}); quotes are not rooted in Intel's PKI",
                sim_dir.display()
            ),
            Backend::Hardware => format!(
                "backend: Intel's quoting enclave (QE3 MRENCLAVE {})",
                hex(&target.mr_enclave)
            ),
        },
    ));

    match backend {
        Backend::Simulated => sim_quote(&mut f, &client, &sim_dir, collateral, now),
        Backend::Hardware => match client.get_quote_size_ex(Some(&key_id)) {
            Ok(size) => {
                f.quote_ok = true;
                f.checks.push(Check::pass(
                    "quote",
                    format!(
                        "quote: attestation key certified, quotes of {size} bytes (PCK \
                         certificates included); a quote itself needs an enclave's report"
                    ),
                ));
                platform_evidence(&mut f, socket, collateral, now);
            }
            Err(e) => f.checks.push(client_error_check(
                "quote",
                "quote size (GetQuoteSizeEx)",
                &e,
            )),
        },
    }
    f
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The collateral in `dir` and its trust anchor: the root published with it (a simulated
/// platform's, which a simulated quote needs), else Intel's SGX Root CA. A failure is the
/// `verify` check's, with `fix`.
fn load_collateral(
    f: &mut ServiceFindings,
    dir: &Path,
    simulated: bool,
    fix: &str,
) -> Option<(Collateral, TrustAnchor)> {
    let loaded = Collateral::load(dir)
        .map_err(|e| e.to_string())
        .and_then(|c| {
            let root = ["root-ca.der", "root-ca.pem"]
                .iter()
                .find_map(|n| std::fs::read(dir.join(n)).ok());
            let anchor = match root {
                Some(root) => TrustAnchor::from_pem_or_der(&root).map_err(|e| e.to_string())?,
                None if simulated => {
                    return Err(format!(
                        "no root-ca.der or root-ca.pem in {}",
                        dir.display()
                    ));
                }
                None => TrustAnchor::intel(),
            };
            Ok((c, anchor))
        });
    match loaded {
        Ok(x) => Some(x),
        Err(e) => {
            f.verified = Some(false);
            f.checks.push(Check::fail(
                "verify",
                format!("verification: cannot load the collateral: {e}"),
                fix,
            ));
            None
        }
    }
}

/// On hardware the doctor has no enclave to quote with: it verifies the platform evidence the
/// helper publishes beside its socket (the platform part of its quotes for apps), as the DRA
/// driver does.
fn platform_evidence(f: &mut ServiceFindings, socket: &Path, collateral: Option<&Path>, now: u64) {
    let path = evidence_path_for_socket(socket);
    let evidence = match read_evidence(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            f.checks.push(Check::skip(
                "verify",
                format!(
                    "verification: no platform evidence at {} yet (the helper publishes it with \
                     its first quote for an app); verify an app's quote with `confcom verify`",
                    path.display()
                ),
            ));
            return;
        }
        Err(e) => {
            f.checks.push(Check::warn(
                "verify",
                format!(
                    "verification: cannot read the platform evidence {}: {e}",
                    path.display()
                ),
                "restart the quote helper: it writes the file again with its next quote",
            ));
            return;
        }
    };
    let fmspc = Quote::parse(&evidence).ok().and_then(|q| {
        let pem = q.signature.certification_data.pck_chain_pem()?;
        let chain = sgx_types::pck::parse_pem_chain(pem).ok()?;
        let leaf = sgx_types::pck::PckExtension::from_certificate(chain.first()?).ok()?;
        Some(hex(&leaf.fmspc))
    });
    let Some(fmspc) = fmspc else {
        f.verified = Some(false);
        f.checks.push(Check::fail(
            "verify",
            format!(
                "verification: the platform evidence {} is malformed",
                path.display()
            ),
            "restart the quote helper: it writes the file again with its next quote",
        ));
        return;
    };
    let Some(dir) = collateral else {
        f.checks.push(Check::skip(
            "verify",
            format!(
                "verification: platform evidence for FMSPC {fmspc} in {}; pass --collateral to \
                 verify it",
                path.display()
            ),
        ));
        return;
    };
    let fix = "pass a directory of collateral for this platform (confcom verify --collateral \
               reads the same layout)";
    let Some((collateral, anchor)) = load_collateral(f, dir, false, fix) else {
        return;
    };
    match dcap_verify::Verifier::new(anchor.clone()).verify_platform(&evidence, &collateral, now) {
        Ok(v) => {
            f.verified = Some(true);
            f.checks.push(Check::pass(
                "verify",
                format!(
                    "verification: platform evidence (the helper's quotes without their apps' \
                     reports): {} for FMSPC {fmspc}, TCB date {} (anchor {})",
                    v.status,
                    v.tcb_date,
                    anchor.subject()
                ),
            ));
        }
        Err(e) => {
            f.verified = Some(false);
            f.checks.push(Check::fail(
                "verify",
                format!("verification: platform evidence: {e}"),
                "fetch fresh collateral for this platform",
            ));
        }
    }
}

fn sim_quote(
    f: &mut ServiceFindings,
    client: &AesmClient,
    sim_dir: &Path,
    collateral: Option<&Path>,
    now: u64,
) {
    let cpu = match SimCpu::load(sim_dir) {
        Ok(cpu) => cpu,
        Err(e) => {
            f.checks.push(Check::fail(
                "quote",
                format!("quote: cannot load the simulated CPU: {e}"),
                "restart the quote helper so that it publishes its CPU material",
            ));
            return;
        }
    };
    let enclave = EnclaveIdentity {
        mr_enclave: *b"confcom doctor probe enclave....",
        ..EnclaveIdentity::default()
    };
    let mut report_data = [0u8; 64];
    report_data[..14].copy_from_slice(b"confcom doctor");
    let app = match quote_via_socket(client, &cpu, &enclave, &report_data) {
        Ok(app) => app,
        Err(e) => {
            f.checks.push(Check::fail(
                "quote",
                format!("quote: {e}"),
                "see the quote helper's log",
            ));
            return;
        }
    };
    let header = Quote::parse(&app.quote)
        .map(|q| format!("v{}", q.header.version))
        .unwrap_or_else(|_| "unparsable".into());
    f.quote_ok = true;
    f.checks.push(Check::pass(
        "quote",
        format!(
            "quote: obtained ({} bytes, {header}, QE report checked)",
            app.quote.len()
        ),
    ));

    let Some(path) = collateral else {
        f.checks.push(Check::skip(
            "verify",
            "verification: skipped (no --collateral given; the helper serves it at /collateral/)",
        ));
        return;
    };
    // A simulated quote verifies against the sim root, published with its collateral.
    let fix = "pass the directory the helper's /collateral/ files were saved to";
    let Some((collateral, anchor)) = load_collateral(f, path, true, fix) else {
        return;
    };
    let policy = Policy {
        report_data: Some(report_data.to_vec()),
        ..Policy::default()
    };
    match dcap_verify::verify(&app.quote, &collateral, &anchor, now, &policy) {
        Ok(v) if v.accepted => {
            f.verified = Some(true);
            f.checks.push(Check::pass(
                "verify",
                format!("verification: {} (anchor {})", v.status, anchor.subject()),
            ));
        }
        Ok(v) => {
            f.verified = Some(false);
            f.checks.push(Check::fail(
                "verify",
                format!(
                    "verification: {} not accepted: {}",
                    v.status,
                    v.rejections.join("; ")
                ),
                "fetch fresh collateral from the helper",
            ));
        }
        Err(e) => {
            f.verified = Some(false);
            f.checks.push(Check::fail(
                "verify",
                format!("verification: {e}"),
                "fetch fresh collateral from the helper (it must be the same simulated platform)",
            ));
        }
    }
}

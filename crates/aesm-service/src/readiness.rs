//! The quote helper's readiness: ready only while its socket accepts a connection and answers a
//! request, as an app would see it.
//!
//! A bound socket is not enough: the file may be replaced or removed under a running helper, and
//! a helper whose accept loops are stuck answers nothing. [`watch`] checks through the socket path
//! with the same client the apps use (`GetSupportedAttKeyIDNum`, which costs no signing), quickly
//! until the first answer, then every `recheck`.

use std::path::PathBuf;
use std::time::Duration;

use ops_http::Readiness;
use quote_client::{AesmClient, ClientError};

/// How long one check may take before the helper counts as not answering.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a ready helper is checked again.
pub const DEFAULT_RECHECK: Duration = Duration::from_secs(10);
/// The first retry delay of a helper that has not answered; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(20);
const MAX_RETRY: Duration = Duration::from_secs(1);

/// One check: does the service on `socket` accept a connection and answer a request? An AESM error
/// code is an answer.
pub fn check(socket: PathBuf) -> Result<(), ClientError> {
    let client = AesmClient::new(socket)
        .with_timeout(CHECK_TIMEOUT)
        .with_service_wait(Duration::ZERO);
    match client.get_supported_att_key_id_num() {
        Ok(_) | Err(ClientError::Aesm(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets `readiness` from [`check`] of `socket`, forever (drop or abort the future to stop).
pub async fn watch(socket: PathBuf, readiness: Readiness, recheck: Duration) {
    let mut retry = FIRST_RETRY;
    loop {
        let path = socket.clone();
        let result = match tokio::task::spawn_blocking(move || check(path)).await {
            Ok(result) => result,
            Err(join) => {
                tracing::warn!(error = %join, "readiness check task failed");
                Err(ClientError::BadResponse("the check did not finish".into()))
            }
        };
        let ready = result.is_ok();
        match (&result, readiness.is_ready()) {
            (Ok(()), false) => {
                tracing::info!(socket = %socket.display(), "AESM socket answers: ready");
            }
            (Err(e), true) => {
                tracing::warn!(socket = %socket.display(), error = %e, "AESM socket stopped answering: not ready");
            }
            _ => {}
        }
        readiness.set_ready(ready);
        let pause = if ready {
            retry = FIRST_RETRY;
            recheck
        } else {
            let pause = retry;
            retry = (retry * 2).min(MAX_RETRY);
            pause
        };
        tokio::time::sleep(pause).await;
    }
}

//! How the CLI prints a failed command: every cause named once, outermost first, on one line.
//!
//! Many error types of the workspace name their cause in their own message (`"cannot read {path}:
//! {source}"`), so that a log line with just the error says why, and also return it from
//! `source()`. Printed naively (`{:#}`), such a chain repeats each cause once per level. [`chain`]
//! keeps a cause only when the message before it does not already end with it.

use std::error::Error;

/// The messages of `err` and its causes, outermost first, leaving out each cause that the message
/// kept before it already ends with.
pub fn chain(err: &(dyn Error + 'static)) -> Vec<String> {
    let mut kept: Vec<String> = vec![err.to_string()];
    let mut cause = err.source();
    while let Some(current) = cause {
        let message = current.to_string();
        let named = kept
            .last()
            .is_some_and(|last| message.is_empty() || last.ends_with(&message));
        if !named {
            kept.push(message);
        }
        cause = current.source();
    }
    kept
}

/// [`chain`] joined into one line.
pub fn one_line(err: &(dyn Error + 'static)) -> String {
    chain(err).join(": ")
}

/// The line the CLI prints for a failed command: `error: <chain>` in text, or for
/// `--log-format json` one JSON object in the shape of the other log lines, with the causes
/// also as the field `chain`.
pub fn report(err: &anyhow::Error, json: bool) -> String {
    let err: &(dyn Error + 'static) = err.as_ref();
    let causes = chain(err);
    if !json {
        return format!("error: {}", causes.join(": "));
    }
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    serde_json::json!({
        "timestamp": timestamp,
        "level": "ERROR",
        "fields": { "message": causes.join(": "), "chain": causes },
        "target": "confcom",
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::path::PathBuf;

    use super::*;

    /// The number of times `needle` occurs in `haystack`.
    fn count(haystack: &str, needle: &str) -> usize {
        haystack.matches(needle).count()
    }

    fn not_found() -> io::Error {
        io::Error::from(io::ErrorKind::NotFound)
    }

    /// Every error type of the workspace that wraps another and names it in its own message: the
    /// innermost cause appears once in the printed line, and so does each level's own text.
    #[test]
    fn wrapping_errors_name_each_cause_once() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let cases: Vec<(&str, anyhow::Error)> = vec![
            (
                "quote-client: unavailable service",
                quote_client::ClientError::ServiceUnavailable {
                    path: PathBuf::from("/run/aesm.socket"),
                    source: not_found(),
                }
                .into(),
            ),
            (
                "quote-client inside context",
                anyhow::Error::from(quote_client::ClientError::ServiceUnavailable {
                    path: PathBuf::from("/run/aesm.socket"),
                    source: not_found(),
                })
                .context(format!("no quote from /run/aesm.socket: GetSupportedAttKeyIDNum: AESM service unavailable at /run/aesm.socket: {}", not_found())),
            ),
            (
                "device-plugin: sysfs",
                device_plugin::platform::DiscoveryError::SysfsRead {
                    path: missing.clone(),
                    source: not_found(),
                }
                .into(),
            ),
            (
                "dcap-verify: collateral file",
                dcap_verify::Collateral::load(&missing)
                    .map(|_| ())
                    .unwrap_err()
                    .into(),
            ),
            (
                "pccs: CA file",
                pccs::tls::read_ca_file(&missing)
                    .map(|_| ())
                    .unwrap_err()
                    .into(),
            ),
            (
                "addon: certificate file",
                addon::certs::load_dir(&missing)
                    .map(|_| ())
                    .unwrap_err()
                    .into(),
            ),
        ];
        for (what, err) in cases {
            let line = one_line(err.as_ref());
            let innermost = err.chain().last().unwrap().to_string();
            assert_eq!(count(&line, &innermost), 1, "{what}: {line}");
            assert!(!line.contains('\n'), "{what}: {line}");
            // Each kept level is the start of the rest: outermost first.
            let kept = chain(err.as_ref());
            assert_eq!(kept[0], err.to_string(), "{what}");
            // Nothing of the chain is lost: the line ends with the innermost cause.
            assert!(line.ends_with(&innermost), "{what}: {line}");
        }
    }

    #[test]
    fn a_cause_not_named_by_its_wrapper_is_kept() {
        let err = anyhow::Error::from(not_found()).context("reading the platform");
        assert_eq!(
            chain(err.as_ref()),
            vec!["reading the platform".to_string(), not_found().to_string()]
        );
        let twice = anyhow::Error::from(not_found())
            .context("inner step")
            .context("outer step");
        assert_eq!(
            one_line(twice.as_ref()),
            format!("outer step: inner step: {}", not_found())
        );
    }

    #[test]
    fn json_report_carries_the_chain() {
        let err = anyhow::Error::from(not_found()).context("reading the platform");
        let line = report(&err, true);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "ERROR");
        assert_eq!(
            v["fields"]["message"],
            format!("reading the platform: {}", not_found())
        );
        assert_eq!(v["fields"]["chain"][1], not_found().to_string());
        assert_eq!(
            report(&err, false),
            format!("error: {}", v["fields"]["message"].as_str().unwrap())
        );
    }
}

//! The service's Prometheus metrics (served by `ops-http` on `--metrics-addr`).
//!
//! | name | labels | what |
//! |---|---|---|
//! | `confcom_quote_helper_requests_total` | `type`, `result` | answered requests by request type and AESM result |
//! | `confcom_quote_helper_requests_by_uid_total` | `uid` | requests by the caller's uid (SO_PEERCRED) |
//! | `confcom_quote_helper_dropped_connections_total` | `reason` | connections closed without a reply |
//! | `confcom_quote_helper_quote_duration_seconds` | – | time to make a quote (GetQuoteEx, success only) |
//! | `confcom_quote_helper_connections` | – | connections open now |

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// At most this many distinct uids get their own series; later ones are counted as `other`.
pub const MAX_UID_SERIES: usize = 1024;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    r#type: &'static str,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UidLabels {
    uid: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Why a connection was closed without a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Connected and closed without sending anything (`aesm-client`'s `try_connect`).
    Empty,
    /// The length prefix announced more than the frame cap.
    FrameTooLarge,
    /// The peer closed in the middle of a frame.
    Truncated,
    /// The request did not arrive within the request timeout.
    Timeout,
    /// The body is not a request with a known sub-message (aesmd closes too).
    Undecodable,
    /// Reading or writing failed.
    Io,
    /// The service is shutting down and the request had not arrived.
    Shutdown,
    /// The connection cap was reached and this connection had waited longest for its request:
    /// closed to make room for a new one.
    Evicted,
}

impl DropReason {
    fn label(self) -> &'static str {
        match self {
            DropReason::Empty => "empty",
            DropReason::FrameTooLarge => "frame_too_large",
            DropReason::Truncated => "truncated",
            DropReason::Timeout => "timeout",
            DropReason::Undecodable => "undecodable",
            DropReason::Io => "io_error",
            DropReason::Shutdown => "shutdown",
            DropReason::Evicted => "evicted",
        }
    }
}

/// The metrics handles; cheap to clone (all clones update the same series).
#[derive(Clone, Debug)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    by_uid: Family<UidLabels, Counter>,
    dropped: Family<ReasonLabels, Counter>,
    quote_duration: Histogram,
    connections: Gauge,
    seen_uids: Arc<Mutex<HashSet<u32>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            by_uid: Family::default(),
            dropped: Family::default(),
            // 50 µs .. ~0.8 s
            quote_duration: Histogram::new(exponential_buckets(0.000_05, 2.0, 15)),
            connections: Gauge::default(),
            seen_uids: Arc::default(),
        }
    }
}

impl Metrics {
    /// New metrics registered in `registry` (names prefixed `confcom_quote_helper_`).
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let sub = registry.sub_registry_with_prefix("confcom_quote_helper");
        sub.register(
            "requests",
            "AESM requests answered, by request type and result",
            metrics.requests.clone(),
        );
        sub.register(
            "requests_by_uid",
            "AESM requests by the caller's uid (SO_PEERCRED)",
            metrics.by_uid.clone(),
        );
        sub.register(
            "dropped_connections",
            "Connections closed without a reply, by reason",
            metrics.dropped.clone(),
        );
        sub.register(
            "quote_duration_seconds",
            "Time to make a quote for GetQuoteEx (successful requests)",
            metrics.quote_duration.clone(),
        );
        sub.register(
            "connections",
            "AESM connections open now",
            metrics.connections.clone(),
        );
        metrics
    }

    /// Counts an answered request; `code` is the reply's `errorCode`.
    pub fn request(&self, kind: &'static str, code: u32) {
        self.requests
            .get_or_create(&RequestLabels {
                r#type: kind,
                result: result_label(code),
            })
            .inc();
    }

    /// Counts a request from `uid` (`None` when the peer's credentials are unknown).
    pub fn uid(&self, uid: Option<u32>) {
        let label = match uid {
            None => "unknown".to_owned(),
            Some(uid) => {
                let known = match self.seen_uids.lock() {
                    Ok(mut seen) => {
                        seen.contains(&uid) || (seen.len() < MAX_UID_SERIES && seen.insert(uid))
                    }
                    Err(_) => false,
                };
                if known {
                    uid.to_string()
                } else {
                    "other".to_owned()
                }
            }
        };
        self.by_uid.get_or_create(&UidLabels { uid: label }).inc();
    }

    /// Counts a connection closed without a reply.
    pub fn dropped(&self, reason: DropReason) {
        self.dropped
            .get_or_create(&ReasonLabels {
                reason: reason.label(),
            })
            .inc();
    }

    /// Records how long a quote took.
    pub fn quote_duration(&self, elapsed: Duration) {
        self.quote_duration.observe(elapsed.as_secs_f64());
    }

    pub(crate) fn connection_opened(&self) {
        self.connections.inc();
    }

    pub(crate) fn connection_closed(&self) {
        self.connections.dec();
    }

    /// Requests answered so far with this type and `errorCode` (for tests and diagnostics).
    pub fn requests_answered(&self, kind: &'static str, code: u32) -> u64 {
        self.requests
            .get(&RequestLabels {
                r#type: kind,
                result: result_label(code),
            })
            .map_or(0, |c| c.get())
    }

    /// Connections open now.
    pub fn open_connections(&self) -> i64 {
        self.connections.get()
    }

    /// Connections dropped so far for `reason`.
    pub fn dropped_count(&self, reason: DropReason) -> u64 {
        self.dropped
            .get(&ReasonLabels {
                reason: reason.label(),
            })
            .map_or(0, |c| c.get())
    }
}

/// `success`, `parameter_error`, `att_key_not_initialized`, …; unknown codes as `code_<n>`.
fn result_label(code: u32) -> String {
    match aesm_protocol::AesmCode::from_u32(code) {
        Some(c) => c.name().trim_start_matches("AESM_").to_ascii_lowercase(),
        None => format!("code_{code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_named_after_aesm_codes() {
        assert_eq!(result_label(0), "success");
        assert_eq!(result_label(3), "parameter_error");
        assert_eq!(result_label(42), "att_key_not_initialized");
        assert_eq!(result_label(27), "code_27");
    }

    #[test]
    fn metrics_appear_in_the_registry() {
        let mut registry = Registry::default();
        let m = Metrics::new(&mut registry);
        m.request("GetQuoteEx", 0);
        m.request("GetQuoteEx", 47);
        m.uid(Some(1000));
        m.dropped(DropReason::Undecodable);
        m.quote_duration(Duration::from_micros(300));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains(
            "confcom_quote_helper_requests_total{type=\"GetQuoteEx\",result=\"success\"} 1"
        ));
        assert!(text.contains(
            "confcom_quote_helper_requests_total{type=\"GetQuoteEx\",result=\"invalid_report\"} 1"
        ));
        assert!(text.contains("confcom_quote_helper_requests_by_uid_total{uid=\"1000\"} 1"));
        assert!(
            text.contains(
                "confcom_quote_helper_dropped_connections_total{reason=\"undecodable\"} 1"
            )
        );
        assert!(text.contains("confcom_quote_helper_quote_duration_seconds_count 1"));
    }

    #[test]
    fn uid_series_are_bounded() {
        let m = Metrics::default();
        for uid in 0..(MAX_UID_SERIES as u32 + 10) {
            m.uid(Some(uid));
        }
        m.uid(Some(5));
        assert_eq!(
            m.by_uid
                .get(&UidLabels {
                    uid: "other".into()
                })
                .map(|c| c.get()),
            Some(10)
        );
        assert_eq!(
            m.by_uid
                .get(&UidLabels { uid: "5".into() })
                .map(|c| c.get()),
            Some(2)
        );
    }
}

//! Dates as Unix seconds: parsing the ISO-8601 dates of collateral and printing RFC 3339 UTC.

use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339 as Rfc3339Format;

/// Displays Unix seconds as RFC 3339 UTC, e.g. `2025-07-19T10:56:11Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339(pub u64);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let formatted = i64::try_from(self.0)
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .and_then(|t| t.format(&Rfc3339Format).ok());
        match formatted {
            Some(s) => f.write_str(&s),
            None => write!(f, "@{}", self.0),
        }
    }
}

/// Parses an RFC 3339 date (`2025-06-19T10:56:11Z`, offsets allowed) into Unix seconds. Dates before
/// 1970 are refused.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let t = OffsetDateTime::parse(s, &Rfc3339Format).ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_intel_dates() {
        let t = parse_rfc3339("2025-07-19T10:56:11Z").unwrap();
        assert_eq!(t, 1752922571);
        assert_eq!(Rfc3339(t).to_string(), "2025-07-19T10:56:11Z");
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), None);
        assert_eq!(parse_rfc3339("2025-07-19"), None);
    }
}

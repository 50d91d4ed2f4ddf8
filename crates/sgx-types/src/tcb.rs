//! TCB statuses as Intel's collateral (TCB info and QE identity levels) names them.

use std::fmt;
use std::str::FromStr;

/// A TCB status of a TCB info or QE identity level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TcbStatus {
    #[default]
    UpToDate,
    SWHardeningNeeded,
    ConfigurationNeeded,
    ConfigurationAndSWHardeningNeeded,
    OutOfDate,
    OutOfDateConfigurationNeeded,
    Revoked,
}

/// A status name that is none of [`TcbStatus::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown TCB status {0:?} (one of UpToDate, SWHardeningNeeded, ConfigurationNeeded, \
     ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded, Revoked)"
)]
pub struct UnknownTcbStatus(pub String);

impl TcbStatus {
    pub const ALL: [TcbStatus; 7] = [
        TcbStatus::UpToDate,
        TcbStatus::SWHardeningNeeded,
        TcbStatus::ConfigurationNeeded,
        TcbStatus::ConfigurationAndSWHardeningNeeded,
        TcbStatus::OutOfDate,
        TcbStatus::OutOfDateConfigurationNeeded,
        TcbStatus::Revoked,
    ];

    /// The status name as it appears in collateral (`"SWHardeningNeeded"`, …).
    pub fn name(self) -> &'static str {
        match self {
            TcbStatus::UpToDate => "UpToDate",
            TcbStatus::SWHardeningNeeded => "SWHardeningNeeded",
            TcbStatus::ConfigurationNeeded => "ConfigurationNeeded",
            TcbStatus::ConfigurationAndSWHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            TcbStatus::OutOfDate => "OutOfDate",
            TcbStatus::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            TcbStatus::Revoked => "Revoked",
        }
    }

    /// Parses a status name with the exact spelling of collateral.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Converges a platform status with the QE's (Intel QVL `convergeTcbStatusWithQeTcbStatus`): only an
    /// out-of-date or revoked QE changes the platform status.
    pub fn converge_with_qe(self, qe: TcbStatus) -> TcbStatus {
        use TcbStatus::*;
        match (qe, self) {
            (Revoked, _) => Revoked,
            (OutOfDate, UpToDate | SWHardeningNeeded) => OutOfDate,
            (OutOfDate, ConfigurationNeeded | ConfigurationAndSWHardeningNeeded) => {
                OutOfDateConfigurationNeeded
            }
            _ => self,
        }
    }
}

impl fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TcbStatus {
    type Err = UnknownTcbStatus;

    /// Parses a status name ignoring ASCII case (for command lines; collateral uses [`TcbStatus::from_name`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownTcbStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_parse_case_insensitively() {
        for s in TcbStatus::ALL {
            assert_eq!(TcbStatus::from_name(s.name()), Some(s));
            assert_eq!(s.name().to_lowercase().parse::<TcbStatus>().unwrap(), s);
        }
        assert_eq!(TcbStatus::from_name("uptodate"), None);
        assert!("HardeningNeeded".parse::<TcbStatus>().is_err());
    }

    #[test]
    fn only_an_out_of_date_or_revoked_qe_changes_the_platform_status() {
        use TcbStatus::*;
        for p in TcbStatus::ALL {
            assert_eq!(p.converge_with_qe(UpToDate), p);
            assert_eq!(p.converge_with_qe(Revoked), Revoked);
        }
        assert_eq!(SWHardeningNeeded.converge_with_qe(OutOfDate), OutOfDate);
        assert_eq!(
            ConfigurationAndSWHardeningNeeded.converge_with_qe(OutOfDate),
            OutOfDateConfigurationNeeded
        );
    }
}

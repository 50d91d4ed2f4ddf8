//! The driver's opaque configuration (`spec.config[].opaque.parameters` of a DeviceClass or a
//! ResourceClaim, copied by the scheduler into `status.allocation.devices.config[]`):
//!
//! ```json
//! {"apiVersion": "sgx.confcom-rs.github.io/v1alpha1", "kind": "SgxConfig",
//!  "quoteHelper": true, "provision": false}
//! ```
//!
//! Decoded strictly: unknown fields, a wrong `apiVersion` or `kind`, or a value of the wrong type
//! are errors naming the problem, never silently ignored.

use serde::{Deserialize, Serialize};

use crate::names;

/// The decoded parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SgxConfig {
    /// Wire containers to the node's quote helper (`SGX_AESM_ADDR=1`, `/var/run/aesmd` mount).
    pub quote_helper: bool,
    /// Give containers the provision device node (PCK certificate retrieval).
    pub provision: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Wire {
    api_version: String,
    kind: String,
    #[serde(default)]
    quote_helper: bool,
    #[serde(default)]
    provision: bool,
}

/// Why opaque parameters were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Not a JSON object of the expected shape (unknown field, wrong type, missing field).
    #[error("invalid {kind} parameters: {reason}", kind = names::config::KIND)]
    Malformed {
        /// serde's description.
        reason: String,
    },
    /// `apiVersion` is not ours.
    #[error("unsupported apiVersion {found:?} in opaque parameters (expected {expected:?})", expected = names::config::API_VERSION)]
    WrongApiVersion {
        /// What the parameters said.
        found: String,
    },
    /// `kind` is not ours.
    #[error("unsupported kind {found:?} in opaque parameters (expected {expected:?})", expected = names::config::KIND)]
    WrongKind {
        /// What the parameters said.
        found: String,
    },
}

impl SgxConfig {
    /// Decode opaque parameters strictly.
    pub fn decode(parameters: &serde_json::Value) -> Result<Self, ConfigError> {
        let wire = Wire::deserialize(parameters).map_err(|err| ConfigError::Malformed {
            reason: err.to_string(),
        })?;
        if wire.api_version != names::config::API_VERSION {
            return Err(ConfigError::WrongApiVersion {
                found: wire.api_version,
            });
        }
        if wire.kind != names::config::KIND {
            return Err(ConfigError::WrongKind { found: wire.kind });
        }
        Ok(Self {
            quote_helper: wire.quote_helper,
            provision: wire.provision,
        })
    }

    /// The parameters as a class or claim carries them (what [`SgxConfig::decode`] accepts).
    pub fn to_parameters(self) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": names::config::API_VERSION,
            "kind": names::config::KIND,
            "quoteHelper": self.quote_helper,
            "provision": self.provision,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn full_and_minimal_parameters_decode() {
        let full = SgxConfig {
            quote_helper: true,
            provision: true,
        };
        assert_eq!(SgxConfig::decode(&full.to_parameters()).unwrap(), full);
        let minimal = json!({"apiVersion": names::config::API_VERSION, "kind": "SgxConfig"});
        assert_eq!(SgxConfig::decode(&minimal).unwrap(), SgxConfig::default());
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let params = json!({"apiVersion": names::config::API_VERSION, "kind": "SgxConfig",
            "quoteHelpr": true});
        let err = SgxConfig::decode(&params).unwrap_err();
        assert!(err.to_string().contains("quoteHelpr"), "{err}");
    }

    #[test]
    fn wrong_kind_version_and_types_are_refused() {
        let params = json!({"apiVersion": "sgx.confcom-rs.github.io/v9", "kind": "SgxConfig"});
        assert_eq!(
            SgxConfig::decode(&params),
            Err(ConfigError::WrongApiVersion {
                found: "sgx.confcom-rs.github.io/v9".into()
            })
        );
        let params = json!({"apiVersion": names::config::API_VERSION, "kind": "GpuConfig"});
        assert_eq!(
            SgxConfig::decode(&params),
            Err(ConfigError::WrongKind {
                found: "GpuConfig".into()
            })
        );
        let params = json!({"apiVersion": names::config::API_VERSION, "kind": "SgxConfig",
            "provision": "yes"});
        assert!(matches!(
            SgxConfig::decode(&params),
            Err(ConfigError::Malformed { .. })
        ));
        assert!(matches!(
            SgxConfig::decode(&json!({"kind": "SgxConfig"})),
            Err(ConfigError::Malformed { .. })
        ));
        assert!(matches!(
            SgxConfig::decode(&json!([1, 2])),
            Err(ConfigError::Malformed { .. })
        ));
    }
}

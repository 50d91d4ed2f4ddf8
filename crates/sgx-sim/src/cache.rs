//! [`CollateralCache`]: the simulated platform's collateral, issued on demand and reused for a
//! while, for the servers that hand it out (the quote helper's `/collateral/` routes, `confcom
//! pccs`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Collateral, CollateralOptions, SimError, SimPlatform};

/// How long served collateral is reused before it is issued anew (its own validity is much longer).
pub const COLLATERAL_REFRESH: Duration = Duration::from_secs(3600);

/// Issues the sim platform's collateral on demand and keeps it for [`COLLATERAL_REFRESH`].
#[derive(Debug)]
pub struct CollateralCache {
    platform: Arc<SimPlatform>,
    options: CollateralOptions,
    current: Mutex<Option<(Instant, Arc<Collateral>)>>,
}

impl CollateralCache {
    /// A cache issuing collateral for `platform` with `options`.
    pub fn new(platform: Arc<SimPlatform>, options: CollateralOptions) -> Self {
        Self {
            platform,
            options,
            current: Mutex::new(None),
        }
    }

    /// The current collateral, issued now if there is none or it is older than the refresh period.
    pub fn get(&self) -> Result<Arc<Collateral>, SimError> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((issued, c)) = current.as_ref()
            && issued.elapsed() < COLLATERAL_REFRESH
        {
            return Ok(Arc::clone(c));
        }
        let fresh = Arc::new(self.platform.collateral(&self.options)?);
        *current = Some((Instant::now(), Arc::clone(&fresh)));
        Ok(fresh)
    }
}

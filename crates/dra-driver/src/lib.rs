//! The SGX DRA driver: Dynamic Resource Allocation (`resource.k8s.io/v1`) for Intel SGX nodes.
//!
//! - [`names`]: the driver name, device classes, attribute and capacity names, CDI names, paths.
//! - [`inventory`]: what the node has (EPC sections, driver layout), the one platform scan that
//!   both the ResourceSlices and the kubelet side read.
//! - [`devices`]: discovery → [`inventory::Inventory`] (one device per NUMA node's EPC section,
//!   else one for the whole EPC; `--simulate`).
//! - [`slices`]: the node's ResourceSlice and the API rules it must keep.
//! - [`publish`]: keeping that slice published ([`publish::Publisher`]).
//! - [`attest`]: attributes from the node's attestation (its own quote, or the quote helper's
//!   platform evidence) and collateral; the daemon runs each attestation in a short-lived child
//!   process of its own binary ([`attest::child`]).
//! - [`kubelet`]: the kubelet plugin (registration, DRA gRPC v1/v1beta1, resource health, CDI
//!   specs, checkpoint).
//!
//! # What the ResourceSlice says
//!
//! One pool per node (named after the node, one slice), one device per EPC section: `epc`, or
//! `epc-numa<N>` per NUMA node when the kernel reports EPC per node. Each device is shared
//! (`allowMultipleAllocations: true`) and has the consumable capacity `epc` in bytes with
//! `requestPolicy: {default: 16Mi, validRange: {min: 4Ki, step: 4Ki}}`: a claim consumes whole
//! 4 KiB EPC pages (the scheduler rounds a request up to `min + ceil((req - min) / step) *
//! step`), and a claim that names no `epc` consumes 16 MiB
//! ([`slices::DEFAULT_EPC_REQUEST`], the device's size when that is smaller).
//!
//! Attributes (in the driver's domain, e.g. `device.attributes["sgx.confcom-rs.github.io"]`):
//!
//! | attribute | type | value |
//! |---|---|---|
//! | `sgx2` | bool | SGX2 / EDMM (CPUID) |
//! | `flc` | bool | flexible launch control |
//! | `kss` | bool | key separation and sharing |
//! | `aexNotify` | bool | AEX-Notify |
//! | `driverLayout` | string | `inTree`, `dcap`, `legacy` or `simulated` (absent without an enclave device node) |
//! | `provisioning` | bool | a provisioning device node exists |
//! | `numaNode` | int | the EPC section's NUMA node (only when known) |
//! | `simulated` | bool | a simulated platform |
//! | `fmspc` | string | the platform's FMSPC, 12 lowercase hex digits (from the PCK certificate) |
//! | `pceSvn` | int | PCE SVN (quote header) |
//! | `cpuSvn` | string | CPU SVN, 32 lowercase hex digits (the QE's report) |
//! | `tcbStatus` | string | `UpToDate`, `SWHardeningNeeded`, `ConfigurationNeeded`, `ConfigurationAndSWHardeningNeeded`, `OutOfDate`, `OutOfDateConfigurationNeeded` or `Revoked` (when collateral was reachable) |
//! | `tcbDate` | string | TCB date of the matched TCB level (RFC 3339) |
//!
//! The attestation attributes appear once the node's quote helper answers (on hardware, once it
//! has published its platform evidence with its first quote for an app: see [`attest`]),
//! `tcbStatus`/`tcbDate` once collateral is reachable, and are refreshed at the collateral's
//! `nextUpdate`.
//!
//! A claim for 64 MiB of EPC on a platform whose TCB is up to date:
//!
//! ```yaml
//! apiVersion: resource.k8s.io/v1
//! kind: ResourceClaimTemplate
//! metadata: {name: enclave-epc}
//! spec:
//!   spec:
//!     devices:
//!       requests:
//!       - name: epc
//!         exactly:
//!           deviceClassName: sgx.confcom-rs.github.io
//!           capacity: {requests: {epc: 64Mi}}
//!           selectors:
//!           - cel:
//!               expression: device.attributes["sgx.confcom-rs.github.io"].tcbStatus == "UpToDate"
//! ```
//!
//! (A selector on an attestation attribute fails on a device that lacks it; guard it with
//! `"tcbStatus" in device.attributes["sgx.confcom-rs.github.io"] && …` where that matters.)
//!
//! # Wiring
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use dra_driver::{attest, devices, publish};
//! let platform = device_plugin::platform::HostPlatform::new("/dev", "/sys");
//! let inventory = devices::discover(&platform, &devices::host_cpu())?;
//! let (inventory_tx, inventory_rx) = tokio::sync::watch::channel(inventory);
//! // The kubelet side reads `inventory_tx.subscribe()`.
//! let (attest_tx, attest_rx) = tokio::sync::watch::channel(attest::Attestation::default());
//! let config = attest::AttestConfig::new(
//!     attest::default_socket(),
//!     attest::CollateralConfig::Pccs {
//!         url: pccs::client::INTEL_PCS_URL.into(),
//!         ca_files: Vec::new(),
//!         timeout: std::time::Duration::from_secs(30),
//!     },
//! );
//! tokio::spawn(attest::run(config, attest_tx, std::future::pending()));
//! let publisher = publish::Publisher::new(
//!     publish::client().await?,
//!     dra_driver::names::DEFAULT_DRIVER_NAME,
//!     "node-1",
//! )?;
//! publisher.run(inventory_rx, attest_rx, std::future::pending()).await;
//! # drop(inventory_tx);
//! # Ok(())
//! # }
//! ```

pub mod attest;
pub mod devices;
pub mod inventory;
pub mod kubelet;
pub mod names;
pub mod publish;
pub mod slices;

/// The wait after a failure: the current `backoff`, which then doubles up to `max` (saturating,
/// so a huge configured backoff cannot overflow).
fn next_backoff(
    backoff: &mut std::time::Duration,
    max: std::time::Duration,
) -> std::time::Duration {
    let wait = *backoff;
    *backoff = backoff.saturating_mul(2).min(max);
    wait
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::next_backoff;

    #[test]
    fn backoff_doubles_up_to_its_bound_and_never_overflows() {
        let mut backoff = Duration::from_secs(2);
        assert_eq!(
            next_backoff(&mut backoff, Duration::from_secs(5)),
            Duration::from_secs(2)
        );
        assert_eq!(
            next_backoff(&mut backoff, Duration::from_secs(5)),
            Duration::from_secs(4)
        );
        assert_eq!(
            next_backoff(&mut backoff, Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        let mut huge = Duration::MAX;
        assert_eq!(next_backoff(&mut huge, Duration::MAX), Duration::MAX);
        assert_eq!(huge, Duration::MAX);
    }
}

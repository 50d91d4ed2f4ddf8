//! The SGX DRA driver: Dynamic Resource Allocation (`resource.k8s.io/v1`) for Intel SGX nodes.
//!
//! - [`names`]: the driver name, device classes, attribute and capacity names, CDI names, paths.
//! - [`inventory`]: what the node has (EPC sections, driver layout), the one platform scan that
//!   both the ResourceSlices and the kubelet side read.
//! - [`kubelet`]: the kubelet plugin (registration, DRA gRPC v1/v1beta1, CDI specs, checkpoint).

pub mod inventory;
pub mod kubelet;
pub mod names;

//! Generated gRPC code for the kubelet plugin APIs (from the `.proto` files in `proto/`, written
//! from the published field lists).

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// Plugin registration (`pluginregistration.Registration`).
pub mod pluginregistration {
    tonic::include_proto!("pluginregistration");
}

/// The DRA service, v1 (`k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin`).
pub mod v1 {
    tonic::include_proto!("k8s.io.kubelet.pkg.apis.dra.v1");
}

/// The DRA service, v1beta1 (`k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin`; no `share_id`).
pub mod v1beta1 {
    tonic::include_proto!("k8s.io.kubelet.pkg.apis.dra.v1beta1");
}

/// The DRA resource health service, v1alpha1 (`v1alpha1.DRAResourceHealth`).
pub mod health {
    tonic::include_proto!("v1alpha1");
}

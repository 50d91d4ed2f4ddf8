#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Setup errors: each a clear, typed error before anything is served; and the recoveries that
//! must not be errors (stale sockets).

mod common;

use std::path::Path;
use std::process::Command;

use common::{FakeMachine, Kubelet, Plugin, config, short_dir};
use device_plugin::{EPC_RESOURCE, Error, ResourceKind};

async fn start_error(config: device_plugin::Config) -> Error {
    let machine = FakeMachine::new(&["sgx_enclave"], &[4]);
    let plugin = Plugin::start(config, machine.platform());
    tokio::time::timeout(common::DEADLINE, plugin.task)
        .await
        .unwrap()
        .unwrap()
        .expect_err("setup must fail")
}

#[tokio::test]
async fn missing_plugin_dir_is_an_error() {
    let dir = short_dir("dp");
    let missing = dir.path().join("nope");
    let err = start_error(config(&missing)).await;
    assert!(
        matches!(&err, Error::PluginDir { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{err}"
    );
    assert!(err.to_string().contains("nope"), "{err}");
}

#[tokio::test]
async fn plugin_dir_that_is_a_file_is_an_error() {
    let dir = short_dir("dp");
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let err = start_error(config(&file)).await;
    assert!(matches!(err, Error::PluginDirNotADirectory { .. }), "{err}");
}

/// A read-only directory: a read-only tmpfs when we may mount (root), else mode 0555.
struct ReadOnlyDir {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl ReadOnlyDir {
    fn new() -> Option<Self> {
        let dir = short_dir("dpro");
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                "ro,size=64k",
                "confcom-test",
                dir.path().to_str().unwrap(),
            ])
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
        }
        let ro = Self { dir, mounted };
        // Usable only if creating a file really fails.
        if std::fs::write(ro.path().join("probe"), "").is_ok() {
            return None;
        }
        Some(ro)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(self.dir.path()).status();
        } else {
            use std::os::unix::fs::PermissionsExt;
            let _ =
                std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o755));
        }
    }
}

#[tokio::test]
async fn read_only_plugin_dir_is_an_error() {
    let Some(ro) = ReadOnlyDir::new() else {
        eprintln!(
            "skipped: cannot make a read-only directory here (not root and mode bits are ignored)"
        );
        return;
    };
    let err = start_error(config(ro.path())).await;
    assert!(matches!(&err, Error::Listen { .. }), "{err}");
    assert!(err.to_string().contains("confcom-"), "{err}");
}

#[tokio::test]
async fn socket_of_a_live_plugin_is_not_taken_over() {
    let machine = FakeMachine::new(&["sgx_enclave"], &[4]);
    let dir = short_dir("dp");
    let mut kubelet = Kubelet::start(dir.path());
    let first = Plugin::start(config(dir.path()), machine.platform());
    kubelet.list_of(EPC_RESOURCE).await;

    let second = Plugin::start(config(dir.path()), machine.platform());
    let err = tokio::time::timeout(common::DEADLINE, second.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::SocketInUse { .. }), "{err}");
    assert!(err.to_string().contains("in use"), "{err}");
    // The first plugin still serves.
    let mut client = kubelet.client(EPC_RESOURCE);
    client
        .get_device_plugin_options(device_plugin::proto::Empty {})
        .await
        .unwrap();
    first.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_file_in_the_way_is_refused_and_earlier_sockets_are_cleaned_up() {
    let dir = short_dir("dp");
    std::fs::write(dir.path().join("confcom-provision.sock"), "not a socket").unwrap();
    let err = start_error(config(dir.path())).await;
    assert!(matches!(err, Error::NotASocket { .. }), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("confcom-provision.sock")).unwrap(),
        b"not a socket"
    );
    assert!(!dir.path().join("confcom-sgx_epc_mem_in_MiB.sock").exists());
    assert!(!dir.path().join("confcom-enclave.sock").exists());
}

#[tokio::test]
async fn a_stale_socket_is_replaced() {
    let machine = FakeMachine::new(&["sgx_enclave"], &[4]);
    let dir = short_dir("dp");
    let stale = dir.path().join("confcom-sgx_epc_mem_in_MiB.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let mut kubelet = Kubelet::start(dir.path());
    let mut config = config(dir.path());
    config.resources = vec![(ResourceKind::Epc, EPC_RESOURCE.to_owned())];
    let plugin = Plugin::start(config, machine.platform());
    assert_eq!(kubelet.list_of(EPC_RESOURCE).await.devices.len(), 4);
    plugin.shutdown().await.unwrap();
}

#[tokio::test]
async fn socket_paths_longer_than_a_unix_address_are_refused() {
    let dir = short_dir("dp");
    let long = dir.path().join("d".repeat(90));
    std::fs::create_dir(&long).unwrap();
    let err = start_error(config(&long)).await;
    assert!(
        matches!(err, Error::SocketPathTooLong { len, .. } if len > 107),
        "{err}"
    );
}

#[tokio::test]
async fn resource_configuration_errors() {
    let dir = short_dir("dp");
    let mut none = config(dir.path());
    none.resources.clear();
    assert!(matches!(start_error(none).await, Error::NoResources));

    let mut bad_name = config(dir.path());
    bad_name.resources = vec![(ResourceKind::Epc, "sgx_epc".to_owned())];
    let err = start_error(bad_name).await;
    assert!(matches!(err, Error::InvalidResourceName { .. }), "{err}");

    let mut duplicate = config(dir.path());
    duplicate.resources = vec![
        (ResourceKind::Enclave, "example.com/enclave".to_owned()),
        (ResourceKind::Provision, "example.com/enclave".to_owned()),
    ];
    assert!(matches!(
        start_error(duplicate).await,
        Error::DuplicateResource(_)
    ));

    let mut same_socket = config(dir.path());
    same_socket.resources = vec![
        (ResourceKind::Enclave, "a.example.com/sgx".to_owned()),
        (ResourceKind::Provision, "b.example.com/sgx".to_owned()),
    ];
    assert!(matches!(
        start_error(same_socket).await,
        Error::DuplicateSocket(_)
    ));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing was created"
    );
}

#[tokio::test]
async fn shutdown_is_not_held_up_by_a_kubelet_that_never_answers() {
    let machine = FakeMachine::new(&["sgx_enclave"], &[4]);
    let dir = short_dir("dp");
    // Accepts connections on kubelet.sock and never speaks.
    let listener = tokio::net::UnixListener::bind(dir.path().join("kubelet.sock")).unwrap();
    let mut config = config(dir.path());
    config.resources = vec![(ResourceKind::Epc, EPC_RESOURCE.to_owned())];
    config.register_timeout = std::time::Duration::from_secs(3600);
    let plugin = Plugin::start(config, machine.platform());
    let (_held, _) = tokio::time::timeout(common::DEADLINE, listener.accept())
        .await
        .unwrap()
        .unwrap();
    assert!(!plugin.readiness.is_ready());
    plugin.shutdown().await.unwrap();
    assert!(!dir.path().join("confcom-sgx_epc_mem_in_MiB.sock").exists());
}

#[tokio::test]
async fn a_rejected_registration_is_retried_and_not_ready() {
    use device_plugin::proto::registration_server::{Registration, RegistrationServer};
    use device_plugin::proto::{Empty, RegisterRequest};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Refusing(Arc<AtomicUsize>);
    #[tonic::async_trait]
    impl Registration for Refusing {
        async fn register(
            &self,
            _: tonic::Request<RegisterRequest>,
        ) -> Result<tonic::Response<Empty>, tonic::Status> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(tonic::Status::already_exists(
                "resource name already registered",
            ))
        }
    }
    let machine = FakeMachine::new(&["sgx_enclave"], &[4]);
    let dir = short_dir("dp");
    let attempts = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::UnixListener::bind(dir.path().join("kubelet.sock")).unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(RegistrationServer::new(Refusing(Arc::clone(&attempts))))
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
    );
    let mut config = config(dir.path());
    config.resources = vec![(ResourceKind::Epc, EPC_RESOURCE.to_owned())];
    config.max_backoff = std::time::Duration::from_millis(100);
    let plugin = Plugin::start(config, machine.platform());
    common::eventually("three attempts", || attempts.load(Ordering::SeqCst) >= 3).await;
    assert!(!plugin.readiness.is_ready());
    let text = plugin.metrics_text();
    assert!(text.contains(r#"confcom_device_plugin_registrations_total{resource="kubernetes.azure.com/sgx_epc_mem_in_MiB",result="error"}"#), "{text}");
    plugin.shutdown().await.unwrap();
    server.abort();
}

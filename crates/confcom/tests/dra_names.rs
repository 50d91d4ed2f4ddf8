//! The add-on renders the DRA driver's names without depending on the driver: its copies must be
//! the driver's own, or classes select no device and the slice policy refuses the driver.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dra_driver::names as driver;

#[test]
fn the_add_on_spells_the_driver_names_as_the_driver_does() {
    use addon::names as addon;
    assert_eq!(addon::DRA_DRIVER, driver::DEFAULT_DRIVER_NAME);
    assert_eq!(addon::DRA_CLASS_EPC, driver::class::EPC);
    assert_eq!(addon::DRA_CLASS_QUOTE_HELPER, driver::class::QUOTE_HELPER);
    assert_eq!(addon::DRA_CLASS_PROVISION, driver::class::PROVISION);
    assert_eq!(addon::DRA_CAPACITY_EPC, driver::CAPACITY_EPC);
    assert_eq!(addon::DRA_ATTR_PROVISIONING, driver::attr::PROVISIONING);
    assert_eq!(addon::DRA_ATTR_TCB_STATUS, driver::attr::TCB_STATUS);
    assert_eq!(addon::DRA_CONFIG_API_VERSION, driver::config::API_VERSION);
    assert_eq!(addon::DRA_CONFIG_KIND, driver::config::KIND);
    assert_eq!(
        addon::KUBELET_PLUGINS_REGISTRY_DIR,
        driver::paths::KUBELET_REGISTRY_DIR
    );
    assert_eq!(
        addon::KUBELET_PLUGINS_DIR,
        driver::paths::KUBELET_PLUGINS_DIR
    );
    assert_eq!(addon::CDI_DYNAMIC_DIR, driver::cdi::DEFAULT_ROOT);
    assert_eq!(addon::AESMD_DIR, driver::paths::AESMD_DIR);
}

#[test]
fn the_doctor_looks_where_the_driver_writes() {
    use doctor::dra as doctor;
    assert_eq!(doctor::DEFAULT_DRIVER, driver::DEFAULT_DRIVER_NAME);
    assert_eq!(
        doctor::DEFAULT_REGISTRY_DIR,
        driver::paths::KUBELET_REGISTRY_DIR
    );
    assert_eq!(
        doctor::DEFAULT_PLUGINS_DIR,
        driver::paths::KUBELET_PLUGINS_DIR
    );
    assert_eq!(doctor::DEFAULT_CDI_ROOT, driver::cdi::DEFAULT_ROOT);
    assert_eq!(
        doctor::DEFAULT_BOOT_ID_PATH,
        dra_driver::kubelet::BOOT_ID_PATH
    );
    assert_eq!(
        doctor::CHECKPOINT_VERSION,
        u64::from(dra_driver::kubelet::checkpoint::VERSION)
    );
    let options = doctor::DraOptions::default();
    let config = dra_driver::kubelet::Config::new("node-a");
    assert_eq!(options.registration_socket(), config.registration_socket());
    assert_eq!(options.dra_socket(), config.dra_socket());
    assert_eq!(options.checkpoint(), config.checkpoint_path());
    let spec = dra_driver::kubelet::cdi::spec_path(
        &options.cdi_root,
        &options.driver,
        "0f4e6a7b-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
    );
    let name = spec.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with(&options.cdi_prefix()) && name.ends_with(".json"));
}

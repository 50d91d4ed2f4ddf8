//! The add-on's DeviceClasses and claims select the devices the DRA driver actually publishes:
//! the rendered CEL is evaluated against `dra_driver::slices::device` for a simulated node and for
//! hardware nodes with and without the provisioning device node, attested or not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use addon::names::{DRA_CLASS_EPC, DRA_CLASS_PROVISION, DRA_CLASS_QUOTE_HELPER};
use addon::render::{Object, RenderOptions, render};
use device_plugin::platform::DeviceNodes;
use dra_driver::attest::Attestation;
use dra_driver::devices::{self, DriverLayout};
use dra_driver::inventory::Inventory;
use dra_driver::names::DEFAULT_DRIVER_NAME as DRIVER;
use serde_json::{Value, json};

/// The device as a selector sees it: attributes grouped by domain (unqualified names are the
/// driver's), an unknown domain reading as an empty map.
fn cel_device(device: &k8s_openapi::api::resource::v1::Device) -> Value {
    let mut attributes: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    attributes.insert(DRIVER.to_owned(), serde_json::Map::new());
    for (name, value) in device.attributes.iter().flatten() {
        let (domain, name) = name.split_once('/').unwrap_or((DRIVER, name));
        let value = if let Some(b) = value.bool {
            json!(b)
        } else if let Some(i) = value.int {
            json!(i)
        } else if let Some(s) = value.string.as_ref().or(value.version.as_ref()) {
            json!(s)
        } else {
            panic!("attribute {name} has no scalar value")
        };
        attributes
            .entry(domain.to_owned())
            .or_default()
            .insert(name.to_owned(), value);
    }
    json!({
        "driver": DRIVER,
        "attributes": attributes,
        "allowMultipleAllocations": device.allow_multiple_allocations.unwrap_or(false),
    })
}

fn selects(expressions: &[String], device: &Value) -> bool {
    expressions.iter().all(|expression| {
        let program = cel::Program::compile(expression).unwrap();
        let mut context = cel::Context::default();
        context.add_variable("device", device.clone()).unwrap();
        match program.execute(&context) {
            Ok(cel::Value::Bool(b)) => b,
            other => panic!("{expression}: {other:?} (an error aborts the allocation)"),
        }
    })
}

fn class_selectors(objects: &[Object]) -> BTreeMap<String, Vec<String>> {
    objects
        .iter()
        .filter_map(|o| match o {
            Object::DeviceClass(c) => Some((
                o.name().to_owned(),
                c.spec
                    .iter()
                    .flat_map(|s| s.selectors.iter().flatten())
                    .map(|s| s.cel.as_ref().unwrap().expression.clone())
                    .collect(),
            )),
            _ => None,
        })
        .collect()
}

/// The quote helper's claim on DRA nodes: its class and EPC request.
fn quote_helper_claim(objects: &[Object]) -> (String, String) {
    let template = objects
        .iter()
        .find_map(|o| match o {
            Object::ResourceClaimTemplate(t) => Some(t),
            _ => None,
        })
        .unwrap();
    let request = &template
        .spec
        .as_ref()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .devices
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap()[0];
    let exactly = request.exactly.as_ref().unwrap();
    let epc = exactly
        .capacity
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap()["epc"]
        .0
        .clone();
    (exactly.device_class_name.clone(), epc)
}

fn hardware(provision: bool) -> Inventory {
    let mut inventory = devices::simulated(96 << 20).unwrap();
    inventory.simulated = false;
    inventory.layout = Some(DriverLayout::InTree);
    inventory.nodes = DeviceNodes {
        in_tree_enclave: true,
        in_tree_provision: provision,
        ..DeviceNodes::default()
    };
    inventory
}

fn published(
    inventory: &Inventory,
    attestation: &Attestation,
) -> (Value, k8s_openapi::api::resource::v1::Device) {
    let device = dra_driver::slices::device(inventory, &inventory.devices[0], attestation);
    (cel_device(&device), device)
}

/// Whether `amount` is a valid share of the device's `epc` capacity under its request policy.
fn fits_policy(device: &k8s_openapi::api::resource::v1::Device, amount: &str) -> bool {
    use dra_driver::slices::quantity_value;
    let capacity = &device.capacity.as_ref().unwrap()["epc"];
    let amount = quantity_value(&k8s_openapi::apimachinery::pkg::api::resource::Quantity(
        amount.to_owned(),
    ))
    .unwrap();
    let range = capacity
        .request_policy
        .as_ref()
        .unwrap()
        .valid_range
        .as_ref()
        .unwrap();
    let min = quantity_value(&range.min).unwrap();
    let step = quantity_value(range.step.as_ref().unwrap()).unwrap();
    amount >= min
        && (amount - min).is_multiple_of(step)
        && amount <= quantity_value(&capacity.value).unwrap()
}

#[test]
fn the_classes_select_what_a_simulated_node_publishes() {
    let objects = render(&RenderOptions {
        dra: true,
        simulate: true,
        enable_quote_helper: true,
        ..RenderOptions::default()
    })
    .unwrap();
    let classes = class_selectors(&objects);
    let (device, raw) = published(
        &devices::simulated(256 << 20).unwrap(),
        &Attestation::default(),
    );
    assert!(selects(&classes[DRA_CLASS_EPC], &device));
    assert!(
        selects(&classes[DRA_CLASS_QUOTE_HELPER], &device),
        "the example Job's class"
    );
    assert!(
        !selects(&classes[DRA_CLASS_PROVISION], &device),
        "a simulated device has no provisioning node"
    );
    // The quote helper on DRA nodes gets its claim allocated, else the node never quotes.
    let (class, epc) = quote_helper_claim(&objects);
    assert!(selects(&classes[&class], &device), "{class}");
    assert!(fits_policy(&raw, &epc));
    // The examples' 5 MiB are whole pages.
    assert!(fits_policy(&raw, "5Mi"));
}

#[test]
fn the_classes_select_what_a_hardware_node_publishes() {
    let objects = render(&RenderOptions {
        dra: true,
        enable_quote_helper: true,
        ..RenderOptions::default()
    })
    .unwrap();
    let classes = class_selectors(&objects);
    let (with, raw) = published(&hardware(true), &Attestation::default());
    let (without, _) = published(&hardware(false), &Attestation::default());
    for device in [&with, &without] {
        assert!(selects(&classes[DRA_CLASS_EPC], device));
        assert!(selects(&classes[DRA_CLASS_QUOTE_HELPER], device));
    }
    assert!(selects(&classes[DRA_CLASS_PROVISION], &with));
    assert!(!selects(&classes[DRA_CLASS_PROVISION], &without));
    let (class, epc) = quote_helper_claim(&objects);
    assert_eq!(class, DRA_CLASS_PROVISION);
    assert!(selects(&classes[&class], &with));
    assert!(fits_policy(&raw, &epc));
}

#[test]
fn the_tcb_selector_takes_attested_up_to_date_platforms_only() {
    let tcb = vec![addon::render::dra::tcb_up_to_date_selector()];
    let attested = |status| Attestation {
        tcb_status: Some(status),
        ..Attestation::default()
    };
    let (up, _) = published(
        &hardware(true),
        &attested(sgx_types::tcb::TcbStatus::UpToDate),
    );
    let (old, _) = published(
        &hardware(true),
        &attested(sgx_types::tcb::TcbStatus::OutOfDate),
    );
    let (unknown, _) = published(&hardware(true), &Attestation::default());
    assert!(selects(&tcb, &up));
    assert!(!selects(&tcb, &old));
    assert!(
        !selects(&tcb, &unknown),
        "not attested: not selected, no error"
    );
}

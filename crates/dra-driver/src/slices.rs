//! The node's ResourceSlice (`resource.k8s.io/v1`): one pool named after the node, one slice,
//! one shared device per EPC section with the consumable capacity `epc`.
//!
//! Every device has `allowMultipleAllocations: true` and the capacity
//!
//! ```yaml
//! capacity:
//!   epc:
//!     value: <EPC bytes of the device>
//!     requestPolicy:
//!       default: 16Mi          # DEFAULT_EPC_REQUEST, or the device's size when smaller
//!       validRange: {min: 4Ki, step: 4Ki}
//! ```
//!
//! so a claim consumes whole 4 KiB EPC pages: the scheduler rounds a request up to
//! `min + ceil((req - min) / step) * step`, and a claim that names no `epc` consumes the
//! default. Attributes are listed in the [crate docs](crate).
//!
//! [`validate_slice`] checks the API server's rules this driver could break (names, limits,
//! policy alignment) before anything is sent.

use std::collections::BTreeMap;

use k8s_openapi::api::resource::v1::{
    CapacityRequestPolicy, CapacityRequestPolicyRange, Device, DeviceAttribute, DeviceCapacity,
    ResourcePool, ResourceSlice, ResourceSliceSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::attest::Attestation;
use crate::inventory::{EpcDevice, Inventory};
use crate::names::{CAPACITY_EPC, DRIVER_NAME_MAX_LEN, EPC_PAGE_BYTES, attr};

/// What a request that names no `epc` capacity consumes: 16 MiB (4096 pages).
///
/// A claim without a capacity request is most often a small enclave written for Intel's SDK or
/// Open Enclave: a few MiB of code and data, heaps of 1–4 MiB and some thread stacks fit in
/// 16 MiB. It is small enough that a node with one of the smallest EPCs (about 93 MiB usable on
/// client and Xeon E parts) still shares its EPC among several such claims, and large enough not
/// to pack hundreds of unsized claims onto one node. Enclaves that commit their whole size at
/// load (SGX1 libOSes, typically 256 MiB or more) must request their size explicitly. It is a
/// multiple of the 4 KiB step, so it satisfies the policy itself.
pub const DEFAULT_EPC_REQUEST: u64 = 16 * 1024 * 1024;

/// Most devices in one slice (`ResourceSliceMaxDevices`).
pub const MAX_DEVICES_PER_SLICE: usize = 128;
/// Most attributes plus capacities per device
/// (`ResourceSliceMaxAttributesAndCapacitiesPerDevice`).
pub const MAX_ATTRIBUTES_AND_CAPACITIES: usize = 32;
/// Longest string or version attribute value.
pub const MAX_ATTRIBUTE_VALUE_LEN: usize = 64;
/// Longest C identifier in a qualified attribute or capacity name.
pub const MAX_IDENTIFIER_LEN: usize = 32;
/// Longest generated-name prefix the API server keeps (63 minus its 5 random characters).
pub const MAX_GENERATE_NAME_LEN: usize = 58;

/// A slice that breaks an API rule.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SliceError {
    /// The driver name is not a DNS subdomain of at most 63 characters.
    #[error("driver name {name:?} is not a DNS subdomain of at most {max} characters: {reason}")]
    DriverName {
        /// The name.
        name: String,
        /// The limit.
        max: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A pool name is not DNS subdomains separated by `/`, at most 253 characters.
    #[error("pool name {0:?} is not DNS subdomains separated by '/' (at most 253 characters)")]
    PoolName(String),
    /// A node name is not a DNS subdomain.
    #[error("node name {0:?} is not a DNS subdomain")]
    NodeName(String),
    /// A device name is not a DNS label.
    #[error("device name {0:?} is not a DNS label")]
    DeviceName(String),
    /// Two devices share a name.
    #[error("device name {0:?} appears twice")]
    DuplicateDevice(String),
    /// Too many devices in one slice.
    #[error("{count} devices in one slice (at most {max})")]
    TooManyDevices {
        /// Devices.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Too many attributes and capacities on one device.
    #[error("device {device:?} has {count} attributes and capacities (at most {max})")]
    TooManyAttributes {
        /// The device.
        device: String,
        /// Attributes plus capacities.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An attribute or capacity name is not a qualified name.
    #[error(
        "device {device:?}: {name:?} is not a qualified name (C identifier of at most 32 characters, optionally prefixed by a DNS subdomain and '/')"
    )]
    QualifiedName {
        /// The device.
        device: String,
        /// The name.
        name: String,
    },
    /// An attribute holds not exactly one of the scalar value fields.
    #[error(
        "device {device:?}: attribute {name:?} must hold exactly one of bool, int, string, version"
    )]
    AttributeValue {
        /// The device.
        device: String,
        /// The attribute.
        name: String,
    },
    /// A string attribute is longer than 64 characters.
    #[error("device {device:?}: attribute {name:?} is {len} characters long (at most 64)")]
    AttributeTooLong {
        /// The device.
        device: String,
        /// The attribute.
        name: String,
        /// Its length.
        len: usize,
    },
    /// A capacity or policy quantity is not a whole, non-negative number of bytes.
    #[error("device {device:?}: capacity {name:?}: {what} {value:?} is not a whole number")]
    Quantity {
        /// The device.
        device: String,
        /// The capacity.
        name: String,
        /// Which quantity.
        what: &'static str,
        /// Its text.
        value: String,
    },
    /// A request policy the API server refuses (range, step or default misplaced).
    #[error("device {device:?}: capacity {name:?}: {reason}")]
    Policy {
        /// The device.
        device: String,
        /// The capacity.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The slice selects its node other than by `nodeName`, or lacks the pool or driver.
    #[error("the slice must name its node (spec.nodeName) and nothing else: {0}")]
    NodeSelection(&'static str),
    /// The pool's counts are out of range.
    #[error(
        "pool {pool:?}: generation {generation} and resourceSliceCount {count} must be >= 0 and > 0"
    )]
    PoolCounts {
        /// The pool.
        pool: String,
        /// Its generation.
        generation: i64,
        /// Its slice count.
        count: i64,
    },
}

/// Whether `s` is a DNS label (RFC 1123): 1–63 lowercase alphanumerics or `-`, alphanumeric at
/// both ends.
pub fn is_dns_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// Whether `s` is a DNS subdomain (RFC 1123): at most 253 characters of DNS labels joined by `.`.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Whether `s` is a C identifier of at most 32 characters.
fn is_c_identifier(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_IDENTIFIER_LEN
        && (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// Whether `s` is a `QualifiedName` of the resource API: a C identifier, or
/// `<DNS subdomain of at most 63 characters>/<C identifier>`.
pub fn is_qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        None => is_c_identifier(s),
        Some((domain, id)) => domain.len() <= 63 && is_dns_subdomain(domain) && is_c_identifier(id),
    }
}

/// Checks a driver name: a DNS subdomain of at most 63 characters.
pub fn validate_driver_name(name: &str) -> Result<(), SliceError> {
    let fail = |reason| SliceError::DriverName {
        name: name.to_owned(),
        max: DRIVER_NAME_MAX_LEN,
        reason,
    };
    if name.is_empty() {
        return Err(fail("empty"));
    }
    if name.len() > DRIVER_NAME_MAX_LEN {
        return Err(fail("too long"));
    }
    if !is_dns_subdomain(name) {
        return Err(fail(
            "lowercase alphanumerics, '-' and '.', alphanumeric at each end of each label",
        ));
    }
    Ok(())
}

/// A byte count as a quantity in its canonical binary form: the largest of `Ki`, `Mi`, `Gi`,
/// `Ti`, `Pi`, `Ei` that divides it, else plain digits (what the API server stores, so the
/// stored object compares equal to the one sent).
pub fn bytes_quantity(bytes: u64) -> Quantity {
    const SUFFIXES: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let mut mantissa = bytes;
    let mut suffix = "";
    if bytes != 0 {
        for s in SUFFIXES {
            if !mantissa.is_multiple_of(1024) {
                break;
            }
            mantissa /= 1024;
            suffix = s;
        }
    }
    Quantity(format!("{mantissa}{suffix}"))
}

/// The value of a quantity that is a whole number (digits with an optional binary or decimal
/// suffix or decimal exponent); `None` for fractions, negative numbers and overflow.
pub fn quantity_value(q: &Quantity) -> Option<u128> {
    let s = q.0.trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(digits_end);
    let s_plus = digits.strip_prefix('+').unwrap_or(digits);
    if s_plus.is_empty() {
        return None;
    }
    let mantissa: u128 = s_plus.parse().ok()?;
    let multiplier: u128 = match suffix_multiplier(suffix) {
        Some(multiplier) => u128::from(multiplier),
        None => {
            let e = suffix.strip_prefix(['e', 'E'])?;
            let e: u32 = e.strip_prefix('+').unwrap_or(e).parse().ok()?;
            10u128.checked_pow(e)?
        }
    };
    mantissa.checked_mul(multiplier)
}

/// The multiplier of a quantity's suffix: none, binary (`Ki` … `Ei`) or decimal (`k` … `E`);
/// `None` for anything else (exponents, milli-units, unknown suffixes).
pub(crate) fn suffix_multiplier(suffix: &str) -> Option<u64> {
    Some(match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        _ => return None,
    })
}

/// The capacity of one EPC device: its bytes, shared in whole pages, [`DEFAULT_EPC_REQUEST`]
/// (or the device's size when smaller) for requests that name no `epc`.
pub fn epc_capacity(bytes: u64) -> DeviceCapacity {
    let bytes = bytes - bytes % EPC_PAGE_BYTES;
    DeviceCapacity {
        value: bytes_quantity(bytes),
        request_policy: Some(CapacityRequestPolicy {
            default: Some(bytes_quantity(DEFAULT_EPC_REQUEST.min(bytes))),
            valid_range: Some(CapacityRequestPolicyRange {
                min: bytes_quantity(EPC_PAGE_BYTES),
                step: Some(bytes_quantity(EPC_PAGE_BYTES)),
                max: None,
            }),
            valid_values: None,
        }),
    }
}

fn bool_attr(value: bool) -> DeviceAttribute {
    DeviceAttribute {
        bool: Some(value),
        ..DeviceAttribute::default()
    }
}

fn int_attr(value: i64) -> DeviceAttribute {
    DeviceAttribute {
        int: Some(value),
        ..DeviceAttribute::default()
    }
}

fn string_attr(value: impl Into<String>) -> DeviceAttribute {
    DeviceAttribute {
        string: Some(value.into()),
        ..DeviceAttribute::default()
    }
}

/// The attributes of `device`: the node's SGX features and layout, the device's NUMA node when
/// known, and what attestation found (each only when known).
pub fn device_attributes(
    inventory: &Inventory,
    device: &EpcDevice,
    attestation: &Attestation,
) -> BTreeMap<String, DeviceAttribute> {
    let mut a = BTreeMap::new();
    let f = &inventory.features;
    a.insert(attr::SGX2.to_owned(), bool_attr(f.sgx2));
    a.insert(attr::FLC.to_owned(), bool_attr(f.flc));
    a.insert(attr::KSS.to_owned(), bool_attr(f.kss));
    a.insert(attr::AEX_NOTIFY.to_owned(), bool_attr(f.aex_notify));
    if let Some(layout) = inventory.layout {
        a.insert(attr::DRIVER_LAYOUT.to_owned(), string_attr(layout.as_str()));
    }
    a.insert(
        attr::PROVISIONING.to_owned(),
        bool_attr(!inventory.simulated && inventory.nodes.any_provision()),
    );
    if let Some(node) = device.numa_node {
        a.insert(attr::NUMA_NODE.to_owned(), int_attr(node));
    }
    a.insert(attr::SIMULATED.to_owned(), bool_attr(inventory.simulated));
    if let Some(fmspc) = attestation.fmspc {
        a.insert(attr::FMSPC.to_owned(), string_attr(hex_lower(&fmspc)));
    }
    if let Some(svn) = attestation.pce_svn {
        a.insert(attr::PCE_SVN.to_owned(), int_attr(i64::from(svn)));
    }
    if let Some(svn) = attestation.cpu_svn {
        a.insert(attr::CPU_SVN.to_owned(), string_attr(hex_lower(&svn)));
    }
    if let Some(status) = attestation.tcb_status {
        a.insert(attr::TCB_STATUS.to_owned(), string_attr(status.name()));
    }
    if let Some(date) = attestation
        .tcb_date
        .as_deref()
        .filter(|d| d.len() <= MAX_ATTRIBUTE_VALUE_LEN)
    {
        a.insert(attr::TCB_DATE.to_owned(), string_attr(date));
    }
    a
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One shared EPC device.
pub fn device(inventory: &Inventory, device: &EpcDevice, attestation: &Attestation) -> Device {
    Device {
        name: device.name.clone(),
        allow_multiple_allocations: Some(true),
        attributes: Some(device_attributes(inventory, device, attestation)),
        capacity: Some(BTreeMap::from([(
            CAPACITY_EPC.to_owned(),
            epc_capacity(device.bytes),
        )])),
        ..Device::default()
    }
}

/// The spec of the node's one slice: pool `node` at `generation`, one slice in the pool, a
/// device per EPC section (the spec has no `devices` when there is no EPC: an empty pool still
/// tells the scheduler the driver runs on the node).
pub fn desired_spec(
    driver: &str,
    node: &str,
    inventory: &Inventory,
    attestation: &Attestation,
    generation: i64,
) -> ResourceSliceSpec {
    let devices: Vec<Device> = inventory
        .devices
        .iter()
        .map(|d| device(inventory, d, attestation))
        .collect();
    ResourceSliceSpec {
        driver: driver.to_owned(),
        node_name: Some(node.to_owned()),
        pool: ResourcePool {
            name: node.to_owned(),
            generation,
            resource_slice_count: 1,
        },
        devices: (!devices.is_empty()).then_some(devices),
        ..ResourceSliceSpec::default()
    }
}

/// The `generateName` of slice `index` of `driver` on `node`, as the 1.36 helper spells it:
/// `<index, at least 5 hex digits>-<driver>-<node>-`, cut to the 58 characters the API server
/// keeps (at a character that leaves a valid name) and always ending in `-`.
pub fn generate_name(index: usize, driver: &str, node: &str) -> String {
    let mut base = format!("{index:05x}-{driver}-{node}");
    // Cut at a character boundary: a name that is not ASCII (invalid, refused by
    // `validate_slice` afterwards) must not panic here.
    let mut end = base.len().min(MAX_GENERATE_NAME_LEN - 1);
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    base.truncate(end);
    let trimmed = base.trim_end_matches(['-', '.']);
    format!("{trimmed}-")
}

/// The slice object to create: `spec`, named by [`generate_name`], owned by the Node (`uid`) so
/// that it is garbage-collected with it.
pub fn slice_object(node_uid: &str, spec: ResourceSliceSpec) -> ResourceSlice {
    let node = spec.pool.name.clone();
    ResourceSlice {
        metadata: ObjectMeta {
            generate_name: Some(generate_name(0, &spec.driver, &node)),
            owner_references: Some(vec![node_owner(&node, node_uid)]),
            ..ObjectMeta::default()
        },
        spec,
    }
}

/// The owner reference to the Node `name`.
pub fn node_owner(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_owned(),
        kind: "Node".to_owned(),
        name: name.to_owned(),
        uid: uid.to_owned(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

/// Quantities rewritten to [`bytes_quantity`] of their value, so that `1024Ki` and `1Mi` (or a
/// server's canonical form) compare equal.
fn canonical(q: &mut Quantity) {
    if let Some(v) = quantity_value(q).and_then(|v| u64::try_from(v).ok()) {
        *q = bytes_quantity(v);
    }
}

fn normalized(spec: &ResourceSliceSpec) -> ResourceSliceSpec {
    let mut spec = spec.clone();
    spec.pool.generation = 0;
    for device in spec.devices.iter_mut().flatten() {
        for capacity in device.capacity.iter_mut().flat_map(|c| c.values_mut()) {
            canonical(&mut capacity.value);
            if let Some(policy) = &mut capacity.request_policy {
                if let Some(d) = &mut policy.default {
                    canonical(d);
                }
                if let Some(range) = &mut policy.valid_range {
                    canonical(&mut range.min);
                    range.step.iter_mut().for_each(canonical);
                    range.max.iter_mut().for_each(canonical);
                }
                policy.valid_values.iter_mut().flatten().for_each(canonical);
            }
        }
    }
    if spec.devices.as_ref().is_some_and(Vec::is_empty) {
        spec.devices = None;
    }
    spec
}

/// Whether two specs publish the same thing, whatever their pool generations and the spelling
/// of their quantities.
pub fn same_content(a: &ResourceSliceSpec, b: &ResourceSliceSpec) -> bool {
    normalized(a) == normalized(b)
}

/// `spec` as an API server without the `DRAConsumableCapacity` feature stores it: no
/// `allowMultipleAllocations`, no `requestPolicy`.
pub fn without_consumable_capacity(spec: &ResourceSliceSpec) -> ResourceSliceSpec {
    let mut spec = spec.clone();
    for device in spec.devices.iter_mut().flatten() {
        device.allow_multiple_allocations = None;
        for capacity in device.capacity.iter_mut().flat_map(|c| c.values_mut()) {
            capacity.request_policy = None;
        }
    }
    spec
}

/// Whether `stored` lost the consumable-capacity fields `sent` had (the feature gate is off).
pub fn consumable_capacity_dropped(sent: &ResourceSliceSpec, stored: &ResourceSliceSpec) -> bool {
    let uses = |s: &ResourceSliceSpec| {
        s.devices.iter().flatten().any(|d| {
            d.allow_multiple_allocations.is_some()
                || d.capacity
                    .iter()
                    .flat_map(|c| c.values())
                    .any(|c| c.request_policy.is_some())
        })
    };
    uses(sent) && !uses(stored) && same_content(&without_consumable_capacity(sent), stored)
}

fn check_policy(device: &str, name: &str, capacity: &DeviceCapacity) -> Result<(), SliceError> {
    let value_of = |what: &'static str, q: &Quantity| {
        quantity_value(q).ok_or_else(|| SliceError::Quantity {
            device: device.to_owned(),
            name: name.to_owned(),
            what,
            value: q.0.clone(),
        })
    };
    let fail = |reason| SliceError::Policy {
        device: device.to_owned(),
        name: name.to_owned(),
        reason,
    };
    let value = value_of("value", &capacity.value)?;
    let Some(policy) = &capacity.request_policy else {
        return Ok(());
    };
    if policy.valid_range.is_some() && policy.valid_values.is_some() {
        return Err(fail("validRange and validValues are exclusive"));
    }
    let default = policy
        .default
        .as_ref()
        .map(|d| value_of("default", d))
        .transpose()?;
    if let Some(d) = default
        && d > value
    {
        return Err(fail("default exceeds the capacity value"));
    }
    if let Some(range) = &policy.valid_range {
        let default = default.ok_or_else(|| fail("a validRange needs a default"))?;
        let min = value_of("validRange.min", &range.min)?;
        if min > value {
            return Err(fail("validRange.min exceeds the capacity value"));
        }
        if default < min {
            return Err(fail("default is below validRange.min"));
        }
        let max = range
            .max
            .as_ref()
            .map(|m| value_of("validRange.max", m))
            .transpose()?;
        if let Some(max) = max {
            if max > value {
                return Err(fail("validRange.max exceeds the capacity value"));
            }
            if default > max || min > max {
                return Err(fail("default and min must not exceed validRange.max"));
            }
        }
        if let Some(step) = &range.step {
            let step = value_of("validRange.step", step)?;
            if step == 0 {
                return Err(fail("validRange.step must be positive"));
            }
            if min.checked_add(step).is_none_or(|end| end > value) {
                return Err(fail("validRange.min + step exceeds the capacity value"));
            }
            if default % step != 0 || max.is_some_and(|m| m % step != 0) {
                return Err(fail("default and max must be multiples of validRange.step"));
            }
            // The scheduler's rounding must land the default on itself.
            if (default - min) % step != 0 {
                return Err(fail("default is not min + n * step"));
            }
        }
    }
    if let Some(values) = &policy.valid_values {
        let values: Vec<u128> = values
            .iter()
            .map(|v| value_of("validValues", v))
            .collect::<Result<_, _>>()?;
        if values.is_empty() || values.len() > 10 || !values.is_sorted() {
            return Err(fail("validValues must hold 1 to 10 ascending values"));
        }
        if !default.is_some_and(|d| values.contains(&d)) {
            return Err(fail("default must be one of validValues"));
        }
    }
    Ok(())
}

/// Checks the rules of the resource API that this driver's slices could break: driver, node,
/// pool and device names; at most 128 devices, at most 32 attributes plus capacities per
/// device; qualified attribute and capacity names; one scalar value per attribute, strings of
/// at most 64 characters; capacity policies that the API server accepts (min, step and default
/// within the value, default aligned to the step).
pub fn validate_slice(slice: &ResourceSlice) -> Result<(), SliceError> {
    let spec = &slice.spec;
    validate_driver_name(&spec.driver)?;
    let node = spec
        .node_name
        .as_deref()
        .ok_or(SliceError::NodeSelection("no spec.nodeName"))?;
    if !is_dns_subdomain(node) {
        return Err(SliceError::NodeName(node.to_owned()));
    }
    if spec.all_nodes.is_some()
        || spec.node_selector.is_some()
        || spec.per_device_node_selection.is_some()
    {
        return Err(SliceError::NodeSelection(
            "allNodes, nodeSelector or perDeviceNodeSelection set as well",
        ));
    }
    let pool = &spec.pool;
    if pool.name.is_empty() || pool.name.len() > 253 || !pool.name.split('/').all(is_dns_subdomain)
    {
        return Err(SliceError::PoolName(pool.name.clone()));
    }
    if pool.generation < 0 || pool.resource_slice_count <= 0 {
        return Err(SliceError::PoolCounts {
            pool: pool.name.clone(),
            generation: pool.generation,
            count: pool.resource_slice_count,
        });
    }
    let devices = spec.devices.as_deref().unwrap_or_default();
    if devices.len() > MAX_DEVICES_PER_SLICE {
        return Err(SliceError::TooManyDevices {
            count: devices.len(),
            max: MAX_DEVICES_PER_SLICE,
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for d in devices {
        if !is_dns_label(&d.name) {
            return Err(SliceError::DeviceName(d.name.clone()));
        }
        if !seen.insert(d.name.as_str()) {
            return Err(SliceError::DuplicateDevice(d.name.clone()));
        }
        let attributes = d.attributes.as_ref();
        let capacity = d.capacity.as_ref();
        let count = attributes.map_or(0, BTreeMap::len) + capacity.map_or(0, BTreeMap::len);
        if count > MAX_ATTRIBUTES_AND_CAPACITIES {
            return Err(SliceError::TooManyAttributes {
                device: d.name.clone(),
                count,
                max: MAX_ATTRIBUTES_AND_CAPACITIES,
            });
        }
        let names = attributes
            .into_iter()
            .flat_map(|a| a.keys())
            .chain(capacity.into_iter().flat_map(|c| c.keys()));
        for name in names {
            if !is_qualified_name(name) {
                return Err(SliceError::QualifiedName {
                    device: d.name.clone(),
                    name: name.clone(),
                });
            }
        }
        for (name, value) in attributes.into_iter().flatten() {
            let scalars = [
                value.bool.is_some(),
                value.int.is_some(),
                value.string.is_some(),
                value.version.is_some(),
            ];
            let lists = value.bools.is_some()
                || value.ints.is_some()
                || value.strings.is_some()
                || value.versions.is_some();
            if lists || scalars.iter().filter(|s| **s).count() != 1 {
                return Err(SliceError::AttributeValue {
                    device: d.name.clone(),
                    name: name.clone(),
                });
            }
            if let Some(s) = value.string.as_ref().or(value.version.as_ref())
                && s.chars().count() > MAX_ATTRIBUTE_VALUE_LEN
            {
                return Err(SliceError::AttributeTooLong {
                    device: d.name.clone(),
                    name: name.clone(),
                    len: s.chars().count(),
                });
            }
        }
        for (name, c) in capacity.into_iter().flatten() {
            if c.request_policy.is_some() && d.allow_multiple_allocations != Some(true) {
                return Err(SliceError::Policy {
                    device: d.name.clone(),
                    name: name.clone(),
                    reason: "a requestPolicy needs allowMultipleAllocations",
                });
            }
            check_policy(&d.name, name, c)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::{self, SgxFeatures};
    use sgx_types::tcb::TcbStatus;

    const MIB: u64 = 1024 * 1024;

    fn two_numa_nodes() -> Inventory {
        let mut inventory = devices::simulated(8 * MIB).unwrap();
        inventory.simulated = false;
        inventory.layout = Some(devices::DriverLayout::InTree);
        inventory.features = SgxFeatures {
            sgx2: true,
            flc: true,
            kss: false,
            aex_notify: true,
        };
        inventory.nodes.in_tree_enclave = true;
        inventory.nodes.in_tree_provision = true;
        inventory.devices = vec![
            EpcDevice {
                name: "epc-numa0".into(),
                numa_node: Some(0),
                bytes: 1024 * MIB,
            },
            EpcDevice {
                name: "epc-numa1".into(),
                numa_node: Some(1),
                bytes: 2048 * MIB,
            },
        ];
        inventory
    }

    fn attested() -> Attestation {
        Attestation {
            fmspc: Some([0x00, 0x90, 0x6e, 0xa1, 0, 0]),
            pce_svn: Some(13),
            cpu_svn: Some([14, 14, 3, 3, 255, 255, 1, 0, 13, 0, 0, 0, 0, 0, 0, 0]),
            tcb_status: Some(TcbStatus::SWHardeningNeeded),
            tcb_date: Some("2024-03-13T00:00:00Z".into()),
        }
    }

    /// The scheduler's rounding (dra.md §4).
    fn consumed(request: u128, min: u128, step: u128) -> u128 {
        if request <= min {
            min
        } else {
            min + (request - min).div_ceil(step) * step
        }
    }

    #[test]
    fn quantities_are_canonical_binary_and_parse_back() {
        for (bytes, text) in [
            (0, "0"),
            (4096, "4Ki"),
            (16 * MIB, "16Mi"),
            (1536 * 1024, "1536Ki"),
            (6 * 1024 * MIB, "6Gi"),
            (4097, "4097"),
        ] {
            assert_eq!(bytes_quantity(bytes).0, text);
            assert_eq!(
                quantity_value(&bytes_quantity(bytes)),
                Some(u128::from(bytes))
            );
        }
        assert_eq!(quantity_value(&Quantity("1k".into())), Some(1000));
        assert_eq!(quantity_value(&Quantity("2e3".into())), Some(2000));
        assert_eq!(quantity_value(&Quantity("1.5Gi".into())), None);
        assert_eq!(quantity_value(&Quantity("-4Ki".into())), None);
        assert_eq!(quantity_value(&Quantity("".into())), None);
    }

    #[test]
    fn the_policy_rounds_to_whole_pages_and_the_default_satisfies_it() {
        let c = epc_capacity(1024 * MIB);
        let policy = c.request_policy.as_ref().unwrap();
        let range = policy.valid_range.as_ref().unwrap();
        let min = quantity_value(&range.min).unwrap();
        let step = quantity_value(range.step.as_ref().unwrap()).unwrap();
        let default = quantity_value(policy.default.as_ref().unwrap()).unwrap();
        assert_eq!((min, step), (4096, 4096));
        assert_eq!(default, u128::from(DEFAULT_EPC_REQUEST));
        assert_eq!(consumed(default, min, step), default);
        assert_eq!(consumed(1, min, step), 4096);
        assert_eq!(consumed(4097, min, step), 8192);
        assert_eq!(
            consumed(5 * 1024 * 1024 + 1, min, step),
            5 * 1024 * 1024 + 4096
        );
        check_policy("epc", "epc", &c).unwrap();
        // A device smaller than the default gets its own size as the default.
        let small = epc_capacity(8192);
        let d = small
            .request_policy
            .as_ref()
            .unwrap()
            .default
            .as_ref()
            .unwrap();
        assert_eq!(d.0, "8Ki");
        check_policy("epc", "epc", &small).unwrap();
    }

    #[test]
    fn a_policy_at_the_end_of_the_quantity_range_is_an_error_not_an_overflow() {
        let max = Quantity(u128::MAX.to_string());
        let capacity = DeviceCapacity {
            value: max.clone(),
            request_policy: Some(CapacityRequestPolicy {
                default: Some(max.clone()),
                valid_range: Some(CapacityRequestPolicyRange {
                    min: max,
                    step: Some(Quantity("1".into())),
                    max: None,
                }),
                valid_values: None,
            }),
        };
        assert_eq!(
            check_policy("epc", "epc", &capacity),
            Err(SliceError::Policy {
                device: "epc".into(),
                name: "epc".into(),
                reason: "validRange.min + step exceeds the capacity value",
            })
        );
    }

    #[test]
    fn the_slice_names_node_pool_devices_and_attributes() {
        let inventory = two_numa_nodes();
        let spec = desired_spec(
            "sgx.confcom-rs.github.io",
            "node-a",
            &inventory,
            &attested(),
            3,
        );
        let slice = slice_object("uid-1", spec);
        validate_slice(&slice).unwrap();
        let json = serde_json::to_value(&slice).unwrap();
        assert_eq!(json["apiVersion"], "resource.k8s.io/v1");
        assert_eq!(json["kind"], "ResourceSlice");
        assert_eq!(
            json["metadata"]["generateName"],
            "00000-sgx.confcom-rs.github.io-node-a-"
        );
        assert_eq!(
            json["metadata"]["ownerReferences"],
            serde_json::json!([{"apiVersion": "v1", "kind": "Node", "name": "node-a", "uid": "uid-1", "controller": true}])
        );
        let spec = &json["spec"];
        assert_eq!(spec["driver"], "sgx.confcom-rs.github.io");
        assert_eq!(spec["nodeName"], "node-a");
        assert_eq!(
            spec["pool"],
            serde_json::json!({"name": "node-a", "generation": 3, "resourceSliceCount": 1})
        );
        let d0 = &spec["devices"][0];
        assert_eq!(d0["name"], "epc-numa0");
        assert_eq!(d0["allowMultipleAllocations"], true);
        assert_eq!(
            d0["capacity"]["epc"],
            serde_json::json!({"value": "1Gi", "requestPolicy": {"default": "16Mi", "validRange": {"min": "4Ki", "step": "4Ki"}}})
        );
        let a = &d0["attributes"];
        assert_eq!(a["sgx2"], serde_json::json!({"bool": true}));
        assert_eq!(a["kss"], serde_json::json!({"bool": false}));
        assert_eq!(a["aexNotify"], serde_json::json!({"bool": true}));
        assert_eq!(a["driverLayout"], serde_json::json!({"string": "inTree"}));
        assert_eq!(a["provisioning"], serde_json::json!({"bool": true}));
        assert_eq!(a["numaNode"], serde_json::json!({"int": 0}));
        assert_eq!(a["simulated"], serde_json::json!({"bool": false}));
        assert_eq!(a["fmspc"], serde_json::json!({"string": "00906ea10000"}));
        assert_eq!(a["pceSvn"], serde_json::json!({"int": 13}));
        assert_eq!(
            a["cpuSvn"],
            serde_json::json!({"string": "0e0e0303ffff01000d00000000000000"})
        );
        assert_eq!(
            a["tcbStatus"],
            serde_json::json!({"string": "SWHardeningNeeded"})
        );
        assert_eq!(
            a["tcbDate"],
            serde_json::json!({"string": "2024-03-13T00:00:00Z"})
        );
        assert_eq!(spec["devices"][1]["attributes"]["numaNode"]["int"], 1);
        assert_eq!(spec["devices"][1]["capacity"]["epc"]["value"], "2Gi");

        // Unknown attestation results are left out; a whole-EPC device has no NUMA node.
        let sim = devices::simulated(64 * MIB).unwrap();
        let spec = desired_spec(
            "sgx.confcom-rs.github.io",
            "n",
            &sim,
            &Attestation::default(),
            0,
        );
        let attrs = spec.devices.as_ref().unwrap()[0]
            .attributes
            .as_ref()
            .unwrap();
        for absent in [
            attr::NUMA_NODE,
            attr::FMSPC,
            attr::TCB_STATUS,
            attr::TCB_DATE,
        ] {
            assert!(!attrs.contains_key(absent), "{absent}");
        }
        assert_eq!(attrs[attr::SIMULATED].bool, Some(true));
        assert_eq!(attrs[attr::PROVISIONING].bool, Some(false));
        assert_eq!(
            attrs[attr::DRIVER_LAYOUT].string.as_deref(),
            Some("simulated")
        );
    }

    #[test]
    fn the_slice_round_trips_through_the_v1_types_with_unknown_fields_rejected() {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Strict {
            #[serde(rename = "apiVersion")]
            api_version: String,
            kind: String,
            metadata: serde_json::Value,
            spec: serde_json::Value,
        }
        let slice = slice_object(
            "u",
            desired_spec(
                "sgx.confcom-rs.github.io",
                "node-a",
                &two_numa_nodes(),
                &attested(),
                0,
            ),
        );
        let text = serde_json::to_string(&slice).unwrap();
        let _: Strict = serde_json::from_str(&text).unwrap();
        let back: ResourceSlice = serde_json::from_str(&text).unwrap();
        assert_eq!(back, slice);
    }

    #[test]
    fn driver_names_must_be_short_dns_subdomains() {
        validate_driver_name("sgx.confcom-rs.github.io").unwrap();
        validate_driver_name("sgx.example.com").unwrap();
        for bad in [
            "",
            "SGX.example.com",
            "sgx_example.com",
            "-sgx.example.com",
            "sgx..example.com",
            "sgx.example.com.",
            &format!("{}.example.com", "a".repeat(52)),
        ] {
            assert!(validate_driver_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_driver_name(&format!("{}.example.com", "a".repeat(51))).is_ok());
    }

    #[test]
    fn generate_names_follow_the_helper_and_stay_valid_when_cut() {
        assert_eq!(
            generate_name(0, "d.example.com", "n1"),
            "00000-d.example.com-n1-"
        );
        assert_eq!(generate_name(0x1_2345, "d", "n"), "12345-d-n-");
        let long = generate_name(0, "sgx.confcom-rs.github.io", &"node".repeat(20));
        assert!(long.len() <= MAX_GENERATE_NAME_LEN, "{long}");
        assert!(long.ends_with('-'));
        let with_random = format!("{long}abcde");
        assert!(is_dns_subdomain(&with_random), "{with_random}");
        // A name that is not ASCII is cut between characters, not inside one.
        let node = format!("{}é", "n".repeat(56 - "00000-d-".len()));
        assert_eq!(
            generate_name(0, "d", &node),
            format!("00000-d-{}-", &node[..48])
        );
        // A cut right after a dot leaves no empty label.
        let cut = generate_name(0, &format!("{}.b", "a".repeat(50)), "node");
        assert!(is_dns_subdomain(&format!("{cut}xxxxx")), "{cut}");
    }

    #[test]
    fn api_rules_are_enforced() {
        let good = slice_object(
            "u",
            desired_spec(
                "sgx.confcom-rs.github.io",
                "node-a",
                &two_numa_nodes(),
                &attested(),
                0,
            ),
        );
        validate_slice(&good).unwrap();
        let broken = |f: &dyn Fn(&mut ResourceSlice)| {
            let mut s = good.clone();
            f(&mut s);
            validate_slice(&s).unwrap_err()
        };
        fn dev(s: &mut ResourceSlice) -> &mut Device {
            &mut s.spec.devices.as_mut().unwrap()[0]
        }
        fn attrs(s: &mut ResourceSlice) -> &mut BTreeMap<String, DeviceAttribute> {
            dev(s).attributes.as_mut().unwrap()
        }
        fn epc_policy(s: &mut ResourceSlice) -> &mut CapacityRequestPolicy {
            let epc = dev(s).capacity.as_mut().unwrap().get_mut("epc").unwrap();
            epc.request_policy.as_mut().unwrap()
        }
        assert!(matches!(
            broken(&|s| dev(s).name = "EPC".into()),
            SliceError::DeviceName(_)
        ));
        assert!(matches!(
            broken(&|s| s.spec.devices.as_mut().unwrap()[1].name = "epc-numa0".into()),
            SliceError::DuplicateDevice(_)
        ));
        assert!(matches!(
            broken(&|s| {
                let d = dev(s).clone();
                s.spec.devices = Some(vec![d; 129]);
            }),
            SliceError::TooManyDevices { count: 129, .. }
        ));
        assert!(matches!(
            broken(&|s| {
                for i in 0..20 {
                    attrs(s).insert(format!("extra{i}"), bool_attr(true));
                }
            }),
            SliceError::TooManyAttributes { .. }
        ));
        assert!(matches!(
            broken(&|s| {
                attrs(s).insert("1bad".into(), bool_attr(true));
            }),
            SliceError::QualifiedName { .. }
        ));
        assert!(matches!(
            broken(&|s| {
                attrs(s).insert("tcbDate".into(), string_attr("x".repeat(65)));
            }),
            SliceError::AttributeTooLong { len: 65, .. }
        ));
        assert!(matches!(
            broken(&|s| attrs(s).get_mut("sgx2").unwrap().int = Some(1)),
            SliceError::AttributeValue { .. }
        ));
        assert!(matches!(
            broken(&|s| epc_policy(s).default = Some(Quantity("6Ki".into()))),
            SliceError::Policy { .. }
        ));
        assert!(matches!(
            broken(&|s| epc_policy(s).default = Some(Quantity("2Gi".into()))),
            SliceError::Policy { .. }
        ));
        assert!(matches!(
            broken(&|s| dev(s).allow_multiple_allocations = None),
            SliceError::Policy { .. }
        ));
        assert!(matches!(
            broken(&|s| s.spec.all_nodes = Some(true)),
            SliceError::NodeSelection(_)
        ));
        assert!(matches!(
            broken(&|s| s.spec.pool.resource_slice_count = 0),
            SliceError::PoolCounts { .. }
        ));
        assert!(is_qualified_name("sgx.confcom-rs.github.io/tcbStatus"));
        assert!(!is_qualified_name(&"a".repeat(33)));
    }

    #[test]
    fn content_comparison_ignores_generation_and_quantity_spelling() {
        let inventory = two_numa_nodes();
        let a = desired_spec("d.example.com", "n", &inventory, &attested(), 0);
        let mut b = desired_spec("d.example.com", "n", &inventory, &attested(), 7);
        assert!(same_content(&a, &b));
        b.devices.as_mut().unwrap()[0]
            .capacity
            .as_mut()
            .unwrap()
            .get_mut("epc")
            .unwrap()
            .value = Quantity("1048576Ki".into());
        assert!(same_content(&a, &b));
        let mut changed = inventory.clone();
        changed.devices[0].bytes += 4096;
        let c = desired_spec("d.example.com", "n", &changed, &attested(), 0);
        assert!(!same_content(&a, &c));
        let d = desired_spec("d.example.com", "n", &inventory, &Attestation::default(), 0);
        assert!(!same_content(&a, &d));

        let stored = without_consumable_capacity(&a);
        assert!(consumable_capacity_dropped(&a, &stored));
        assert!(!consumable_capacity_dropped(&a, &a));
        // Another difference is not a dropped field.
        assert!(!consumable_capacity_dropped(
            &a,
            &without_consumable_capacity(&c)
        ));
    }
}

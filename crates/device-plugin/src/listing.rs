//! ListAndWatch messages that always fit kubelet's 4 MiB receive limit.
//!
//! kubelet reads the ListAndWatch stream with grpc-go's default 4 194 304-byte receive limit and
//! drops the plugin (capacity 0) on any larger message. One device per MiB of a 256 GiB EPC is
//! 262 144 devices, so every byte per device counts:
//!
//! | part | bytes per device |
//! |---|---|
//! | `Device` framing + `ID` field (1–3 character [compact id](crate::ids)) | 5–7 |
//! | `health: "Healthy"` | 9 |
//! | `health: "Unhealthy"` instead | 11 |
//! | `topology { nodes { ID: n } }` | 4 for node 0, 6 for nodes 1..127 |
//!
//! 262 144 healthy devices without topology take 4 190 080 bytes. Unhealthy markers and topology
//! are therefore *extras*, included only when the whole message still fits, tried in this order:
//!
//! 1. unhealthy devices listed as `Unhealthy`, with topology;
//! 2. unhealthy devices left out, with topology;
//! 3. unhealthy devices listed as `Unhealthy`, without topology;
//! 4. unhealthy devices left out, without topology.
//!
//! Leaving a device out of the list makes kubelet drop it from capacity as well as from allocatable;
//! listing it `Unhealthy` keeps it in capacity only. Both keep it from being allocated, which is what
//! matters. Variant 4 is a subset of the all-healthy list without topology, so it fits whenever the
//! device count is at most [`max_devices`]; callers cap the count there ([`build`] refuses more).

use std::ops::Range;

use prost::encoding::encoded_len_varint;

use crate::ids;
use crate::proto::{Device, ListAndWatchResponse, NumaNode, TopologyInfo};

/// kubelet's receive limit for one ListAndWatch message (grpc-go rejects `len > limit`).
pub const LIST_AND_WATCH_BUDGET: usize = 4 * 1024 * 1024;
/// Health value of a usable device.
pub const HEALTHY: &str = "Healthy";
/// Health value of an unusable device.
pub const UNHEALTHY: &str = "Unhealthy";

/// The devices of one resource: indices `0..count`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceSet {
    /// Number of devices.
    pub count: u64,
    /// Unhealthy indices as sorted, non-overlapping ranges.
    pub unhealthy: Vec<Range<u64>>,
    /// NUMA node of consecutive blocks of indices, in index order: `(node, devices)`. Empty when
    /// unknown; devices past the last block get no topology.
    pub numa: Vec<(i64, u64)>,
}

impl DeviceSet {
    /// `count` healthy devices without topology.
    pub fn healthy(count: u64) -> Self {
        Self {
            count,
            unhealthy: Vec::new(),
            numa: Vec::new(),
        }
    }

    /// Number of unhealthy devices (ranges are clipped to `0..count`).
    pub fn unhealthy_count(&self) -> u64 {
        self.unhealthy
            .iter()
            .map(|r| r.end.min(self.count).saturating_sub(r.start))
            .sum()
    }

    /// Whether device `index` is healthy (false past `count`).
    pub fn is_healthy(&self, index: u64) -> bool {
        index < self.count && !self.unhealthy.iter().any(|r| r.contains(&index))
    }
}

/// Which extras a message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// Unhealthy devices are listed as `Unhealthy` (else left out).
    pub unhealthy_listed: bool,
    /// Devices carry their NUMA node.
    pub topology: bool,
}

/// A message ready to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Listing {
    /// The message.
    pub response: ListAndWatchResponse,
    /// Its encoded size in bytes.
    pub encoded_len: usize,
    /// The extras it carries.
    pub variant: Variant,
    /// Devices listed as healthy.
    pub healthy: u64,
    /// Devices listed as unhealthy.
    pub unhealthy_listed: u64,
    /// Unhealthy devices left out of the message.
    pub omitted: u64,
}

/// A device set that no variant can carry within the budget.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{count} devices cannot fit one ListAndWatch message of {budget} bytes (at most {max})")]
pub struct TooManyDevices {
    /// Devices asked for.
    pub count: u64,
    /// The budget in bytes.
    pub budget: usize,
    /// Most devices that fit.
    pub max: u64,
}

fn field_len(payload: usize) -> usize {
    1 + encoded_len_varint(payload as u64) + payload
}

fn device_len(index: u64, healthy: bool, node: Option<i64>) -> usize {
    let id = field_len(ids::encoded_len(index));
    let health = field_len(if healthy {
        HEALTHY.len()
    } else {
        UNHEALTHY.len()
    });
    let topology = node.map_or(0, |node| {
        // `NUMANode.ID` is an int64: proto3 leaves out 0, negative values take 10 bytes.
        let numa = if node == 0 {
            0
        } else {
            1 + encoded_len_varint(node as u64)
        };
        field_len(field_len(numa))
    });
    field_len(id + health + topology)
}

/// Walks the devices in index order with their health and NUMA node.
fn for_each_device(set: &DeviceSet, mut f: impl FnMut(u64, bool, Option<i64>)) {
    let mut ranges = set.unhealthy.iter().peekable();
    let mut blocks = set.numa.iter();
    let mut block = blocks.next().copied();
    let mut block_left = block.map_or(0, |(_, n)| n);
    for index in 0..set.count {
        while ranges.peek().is_some_and(|r| r.end <= index) {
            ranges.next();
        }
        let healthy = !ranges.peek().is_some_and(|r| r.contains(&index));
        while block.is_some() && block_left == 0 {
            block = blocks.next().copied();
            block_left = block.map_or(0, |(_, n)| n);
        }
        let node = block.map(|(node, _)| node);
        block_left = block_left.saturating_sub(1);
        f(index, healthy, node);
    }
}

/// Encoded size of the message for `set` in `variant`, computed without building it.
pub fn encoded_size(set: &DeviceSet, variant: Variant) -> usize {
    // Every device of a run with the same id length, health and NUMA node has the same size, so
    // the sum is taken run by run: O(runs), not O(devices).
    let mut cuts = vec![0, set.count];
    let mut first_of_len = 0u64;
    let mut span = 64u64;
    while first_of_len < set.count {
        cuts.push(first_of_len);
        first_of_len = first_of_len.saturating_add(span);
        span = span.saturating_mul(64);
    }
    for range in &set.unhealthy {
        cuts.extend([range.start, range.end]);
    }
    let mut block_start = 0u64;
    for &(_, devices) in &set.numa {
        cuts.push(block_start);
        block_start = block_start.saturating_add(devices);
        cuts.push(block_start);
    }
    cuts.retain(|&cut| cut <= set.count);
    cuts.sort_unstable();
    cuts.dedup();
    let mut total = 0usize;
    for pair in cuts.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        let healthy = set.is_healthy(start);
        if !healthy && !variant.unhealthy_listed {
            continue;
        }
        let node = if variant.topology {
            numa_node_of(set, start)
        } else {
            None
        };
        let run = usize::try_from(end - start).unwrap_or(usize::MAX);
        total = total.saturating_add(run.saturating_mul(device_len(start, healthy, node)));
    }
    total
}

/// NUMA node of device `index` (`None` past the last block).
fn numa_node_of(set: &DeviceSet, index: u64) -> Option<i64> {
    let mut start = 0u64;
    for &(node, devices) in &set.numa {
        let end = start.saturating_add(devices);
        if index < end {
            return Some(node);
        }
        start = end;
    }
    None
}

/// Most healthy devices without topology that fit in `budget` bytes.
pub fn max_devices(budget: usize) -> u64 {
    // Devices whose ids have the same length cost the same: fill one id length at a time.
    let mut left = budget as u64;
    let mut count = 0u64;
    let mut span = 64u64;
    loop {
        let each = device_len(count, true, None) as u64;
        let fit = left / each;
        if fit < span {
            return count + fit;
        }
        left -= span * each;
        count += span;
        span = span.saturating_mul(64);
    }
}

/// The message for `set`: the first variant in the documented order that fits in `budget`.
pub fn build(set: &DeviceSet, budget: usize) -> Result<Listing, TooManyDevices> {
    let has_unhealthy = set.unhealthy_count() > 0;
    let has_topology = !set.numa.is_empty();
    let candidates = [(true, true), (false, true), (true, false), (false, false)];
    for (unhealthy_listed, topology) in candidates {
        // Without topology or unhealthy devices some variants are the same message: try it once.
        if (topology && !has_topology) || (!unhealthy_listed && !has_unhealthy) {
            continue;
        }
        let variant = Variant {
            unhealthy_listed,
            topology,
        };
        let size = encoded_size(set, variant);
        if size <= budget {
            return Ok(materialize(set, variant, size));
        }
    }
    Err(TooManyDevices {
        count: set.count,
        budget,
        max: max_devices(budget),
    })
}

/// The message for `set` in `variant`, whatever its size.
pub fn build_variant(set: &DeviceSet, variant: Variant) -> Listing {
    materialize(set, variant, encoded_size(set, variant))
}

fn materialize(set: &DeviceSet, variant: Variant, encoded_len: usize) -> Listing {
    let listed = if variant.unhealthy_listed {
        set.count
    } else {
        set.count - set.unhealthy_count().min(set.count)
    };
    let mut devices = Vec::with_capacity(usize::try_from(listed).unwrap_or(0));
    let (mut healthy_n, mut unhealthy_n, mut omitted) = (0u64, 0u64, 0u64);
    for_each_device(set, |index, healthy, node| {
        if !healthy && !variant.unhealthy_listed {
            omitted += 1;
            return;
        }
        if healthy {
            healthy_n += 1;
        } else {
            unhealthy_n += 1;
        }
        devices.push(Device {
            id: ids::encode(index),
            health: if healthy { HEALTHY } else { UNHEALTHY }.to_owned(),
            topology: node.filter(|_| variant.topology).map(|id| TopologyInfo {
                nodes: vec![NumaNode { id }],
            }),
        });
    });
    Listing {
        response: ListAndWatchResponse { devices },
        encoded_len,
        variant,
        healthy: healthy_n,
        unhealthy_listed: unhealthy_n,
        omitted,
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use prost::Message;

    use super::*;

    const MIB_256G: u64 = 256 * 1024;

    fn check(set: &DeviceSet) -> Listing {
        let listing = build(set, LIST_AND_WATCH_BUDGET).unwrap();
        let bytes = listing.response.encode_to_vec();
        assert_eq!(
            bytes.len(),
            listing.encoded_len,
            "analytic size matches prost"
        );
        assert!(
            bytes.len() <= LIST_AND_WATCH_BUDGET,
            "{} bytes",
            bytes.len()
        );
        assert_eq!(
            listing.healthy + listing.unhealthy_listed + listing.omitted,
            set.count
        );
        assert_eq!(listing.healthy, set.count - set.unhealthy_count());
        listing
    }

    #[test]
    fn all_healthy_256_gib_fits_and_matches_the_computed_size() {
        let listing = check(&DeviceSet::healthy(MIB_256G));
        assert_eq!(listing.encoded_len, 4_190_080);
        assert_eq!(listing.response.devices.len(), 262_144);
        assert!(
            listing
                .response
                .devices
                .iter()
                .all(|d| d.health == HEALTHY && d.id.len() <= 3)
        );
    }

    #[test]
    fn all_unhealthy_256_gib_fits_by_leaving_devices_out() {
        let set = DeviceSet {
            count: MIB_256G,
            unhealthy: vec![0..MIB_256G],
            numa: vec![],
        };
        assert_eq!(
            encoded_size(
                &set,
                Variant {
                    unhealthy_listed: true,
                    topology: false
                }
            ),
            4_714_368
        );
        let listing = check(&set);
        assert!(!listing.variant.unhealthy_listed);
        assert_eq!(listing.omitted, MIB_256G);
        assert!(listing.response.devices.is_empty());
    }

    #[test]
    fn partly_unhealthy_256_gib_fits_with_or_without_markers() {
        // Few unhealthy devices: the markers fit.
        let few = DeviceSet {
            count: MIB_256G,
            unhealthy: vec![100..200, 5000..5010],
            numa: vec![],
        };
        let listing = check(&few);
        assert!(listing.variant.unhealthy_listed);
        assert_eq!(listing.unhealthy_listed, 110);
        let unhealthy: Vec<_> = listing
            .response
            .devices
            .iter()
            .filter(|d| d.health == UNHEALTHY)
            .collect();
        assert_eq!(unhealthy.len(), 110);
        assert_eq!(ids::decode(&unhealthy[0].id), Some(100));
        // Many: they are left out.
        let many = DeviceSet {
            count: MIB_256G,
            unhealthy: vec![1000..150_000],
            numa: vec![],
        };
        let listing = check(&many);
        assert!(!listing.variant.unhealthy_listed);
        assert_eq!(listing.omitted, 149_000);
        assert!(listing.response.devices.iter().all(|d| d.health == HEALTHY));
        assert!(
            !listing
                .response
                .devices
                .iter()
                .any(|d| ids::decode(&d.id) == Some(1000))
        );
    }

    #[test]
    fn topology_is_dropped_at_256_gib_and_kept_where_it_fits() {
        let two_nodes = vec![(0, MIB_256G / 2), (1, MIB_256G / 2)];
        let big = DeviceSet {
            count: MIB_256G,
            unhealthy: vec![],
            numa: two_nodes,
        };
        let listing = check(&big);
        assert!(!listing.variant.topology);
        for unhealthy in [vec![0..MIB_256G], vec![7..9], vec![0..1, 200_000..262_144]] {
            check(&DeviceSet {
                unhealthy,
                ..big.clone()
            });
        }

        let small = DeviceSet {
            count: 64 * 1024,
            unhealthy: vec![10..20],
            numa: vec![(0, 32 * 1024), (1, 32 * 1024)],
        };
        let listing = check(&small);
        assert_eq!(
            listing.variant,
            Variant {
                unhealthy_listed: true,
                topology: true
            }
        );
        let first = &listing.response.devices[0];
        assert_eq!(first.topology.as_ref().unwrap().nodes[0].id, 0);
        let last = listing.response.devices.last().unwrap();
        assert_eq!(last.topology.as_ref().unwrap().nodes[0].id, 1);
        assert_eq!(listing.response.devices[15].health, UNHEALTHY);
    }

    #[test]
    fn the_cap_is_the_largest_count_that_fits() {
        let max = max_devices(LIST_AND_WATCH_BUDGET);
        assert_eq!(max, 262_144 + 264);
        assert!(
            encoded_size(
                &DeviceSet::healthy(max),
                Variant {
                    unhealthy_listed: true,
                    topology: false
                }
            ) <= LIST_AND_WATCH_BUDGET
        );
        assert!(
            encoded_size(
                &DeviceSet::healthy(max + 1),
                Variant {
                    unhealthy_listed: true,
                    topology: false
                }
            ) > LIST_AND_WATCH_BUDGET
        );
        check(&DeviceSet::healthy(max));
        check(&DeviceSet {
            count: max,
            unhealthy: vec![0..max],
            numa: vec![(0, max)],
        });
        let err = build(&DeviceSet::healthy(max + 1), LIST_AND_WATCH_BUDGET).unwrap_err();
        assert_eq!(err.max, max);
        assert!(build(&DeviceSet::healthy(512 * 1024), LIST_AND_WATCH_BUDGET).is_err());
    }

    #[test]
    fn small_budgets_and_empty_sets() {
        let listing = check(&DeviceSet::healthy(0));
        assert_eq!(listing.encoded_len, 0);
        assert_eq!(max_devices(0), 0);
        assert_eq!(max_devices(14), 1);
        assert_eq!(max_devices(13), 0);
    }

    #[test]
    fn analytic_size_matches_prost_for_every_variant() {
        let set = DeviceSet {
            count: 5000,
            unhealthy: vec![3..70, 4000..4100],
            numa: vec![(0, 1000), (3, 1000), (200, 2000)],
        };
        for unhealthy_listed in [false, true] {
            for topology in [false, true] {
                let variant = Variant {
                    unhealthy_listed,
                    topology,
                };
                let listing = materialize(&set, variant, encoded_size(&set, variant));
                assert_eq!(
                    listing.response.encoded_len(),
                    listing.encoded_len,
                    "{variant:?}"
                );
            }
        }
    }
}

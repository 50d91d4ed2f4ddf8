#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Property tests: the id codec is a bijection on well-formed ids and total on any input; the
//! analytic message size is exact and every built message respects its budget.

use device_plugin::listing::{self, DeviceSet, Variant};
use device_plugin::{ids, proto::ListAndWatchResponse};
use proptest::prelude::*;
use prost::Message;

proptest! {
    #[test]
    fn ids_round_trip(index in 0u64..(1u64 << 36)) {
        let id = ids::encode(index);
        prop_assert_eq!(ids::decode(&id), Some(index));
        prop_assert_eq!(id.len(), ids::encoded_len(index));
    }

    #[test]
    fn any_string_decodes_to_nothing_or_to_its_own_index(s in "\\PC{0,8}|[0-9A-Za-z_-]{1,6}") {
        if let Some(index) = ids::decode(&s) {
            prop_assert_eq!(ids::encode(index), s);
        }
    }

    #[test]
    fn the_cap_is_the_largest_count_that_fits(budget in 0usize..5_000_000) {
        let max = listing::max_devices(budget);
        let all = Variant { unhealthy_listed: true, topology: false };
        prop_assert!(listing::encoded_size(&DeviceSet::healthy(max), all) <= budget);
        prop_assert!(listing::encoded_size(&DeviceSet::healthy(max + 1), all) > budget);
    }

    #[test]
    fn sizes_are_exact_and_budgets_hold(
        count in 0u64..3000,
        cuts in proptest::collection::vec(0u64..3000, 0..6),
        blocks in proptest::collection::vec((0i64..300, 0u64..1500), 0..4),
        budget in 0usize..60_000,
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        cuts.dedup();
        let unhealthy = cuts.chunks(2).filter(|c| c.len() == 2).map(|c| c[0]..c[1]).collect();
        let set = DeviceSet { count, unhealthy, numa: blocks };
        for unhealthy_listed in [false, true] {
            for topology in [false, true] {
                let variant = Variant { unhealthy_listed, topology };
                let built = listing::build_variant(&set, variant);
                prop_assert_eq!(built.response.encoded_len(), listing::encoded_size(&set, variant));
                prop_assert_eq!(built.response.encoded_len(), built.encoded_len);
            }
        }
        match listing::build(&set, budget) {
            Ok(built) => {
                let bytes = built.response.encode_to_vec();
                prop_assert_eq!(bytes.len(), built.encoded_len);
                prop_assert!(bytes.len() <= budget);
                prop_assert_eq!(built.healthy, count - set.unhealthy_count());
                let decoded = ListAndWatchResponse::decode(bytes.as_slice()).unwrap();
                prop_assert_eq!(decoded, built.response);
            }
            Err(err) => {
                // Only when even the healthy devices alone cannot fit.
                prop_assert!(count > listing::max_devices(budget));
                prop_assert_eq!(err.max, listing::max_devices(budget));
            }
        }
    }
}

//! Any bytes as an AdmissionReview body: the webhook answers or returns an error, never panics.
#![no_main]

use addon::admission::{Mutator, OptIn};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mutator = Mutator::new(["example.com/epc"]);
    let _ = mutator.review(data, OptIn::PodLabel);
    let _ = mutator.review(data, OptIn::Namespace);
});

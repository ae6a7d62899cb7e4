#![no_main]
//! `cargo +nightly fuzz run busta`: see fuzz/README.md and `pdd_fuzz::busta`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pdd_fuzz::busta(data));

#![no_main]
//! `cargo +nightly fuzz run firma`: see fuzz/README.md and `pdd_fuzz::firma`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pdd_fuzz::firma(data));

#![no_main]
//! `cargo +nightly fuzz run c14n`: see fuzz/README.md and `pdd_fuzz::c14n`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pdd_fuzz::c14n(data));

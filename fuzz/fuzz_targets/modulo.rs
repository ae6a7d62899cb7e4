#![no_main]
//! `cargo +nightly fuzz run modulo`: see fuzz/README.md and `pdd_fuzz::modulo`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pdd_fuzz::modulo(data));

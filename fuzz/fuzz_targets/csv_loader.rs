//! cargo-fuzz target `csv_loader`: the body is fuzz/bodies/csv_loader.rs, shared with the smoke test.
#![no_main]

#[path = "../bodies/csv_loader.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));

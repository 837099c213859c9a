//! cargo-fuzz target `config`: the body is fuzz/bodies/config.rs, shared with the smoke test.
#![no_main]

#[path = "../bodies/config.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));

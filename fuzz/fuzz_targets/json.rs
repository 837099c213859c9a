//! cargo-fuzz target `json`: the body is fuzz/bodies/json.rs, shared with the smoke test.
#![no_main]

#[path = "../bodies/json.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));

//! cargo-fuzz target `wire`: the body is fuzz/bodies/wire.rs, shared with the smoke test.
#![no_main]

#[path = "../bodies/wire.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));

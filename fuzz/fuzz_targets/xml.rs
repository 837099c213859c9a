//! cargo-fuzz target `xml`: the body is fuzz/bodies/xml.rs, shared with the smoke test.
#![no_main]

#[path = "../bodies/xml.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));

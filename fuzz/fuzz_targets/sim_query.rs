//! cargo-fuzz target `sim_query`: the body is fuzz/bodies/sim_query.rs, shared with the smoke test.
#![no_main]

#[path = "../bodies/sim_query.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));

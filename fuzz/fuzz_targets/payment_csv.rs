//! cargo-fuzz target `payment_csv`: the body is fuzz/bodies/payment_csv.rs, shared with the smoke test.
#![no_main]

#[path = "../bodies/payment_csv.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));

//! The `coupa-bridge` binary, run as a user runs it.

mod cli;

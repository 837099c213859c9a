//! One module per command.

pub mod config;
pub mod demo;
pub mod sim;
pub mod sync;

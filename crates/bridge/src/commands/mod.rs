//! One module per command.

pub mod config;
pub mod demo;
mod demo_http;
pub mod doctor;
pub mod init;
pub mod log;
pub mod run;
pub mod sim;
pub mod sync;

//! One module per command.

pub mod config;
pub mod demo;
pub mod doctor;
pub mod init;
pub mod log;
pub mod run;
pub mod sim;
pub mod sync;

//! coupa-bridge, the ERP connector for Coupa.
//!
//! Layout: [`cli`] defines the command line and dispatches to [`commands`], one module per
//! command. The Coupa simulator lives in the `coupa-sim` crate; the connector's flows arrive
//! with their issues (see ARCHITECTURE.md).

pub mod cli;
pub mod commands;
pub mod config;
pub mod connector;
pub mod daemon;
pub mod db;
pub mod erp;
pub mod failpoint;
pub mod failures;
pub mod flows;
pub mod notify;
pub mod sftp;
pub mod store;
pub mod telemetry;
pub mod web;

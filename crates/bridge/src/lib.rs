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
#[cfg(feature = "sabotage")]
pub mod sabotage;
pub mod sftp;
pub mod store;
pub mod telemetry;
pub mod web;

/// Whether this build has the deliberately broken behaviours of the `sabotage` feature (the
/// chaos harness's tests only; they act only when `COUPA_BRIDGE_SABOTAGE` names one).
pub const SABOTAGE_COMPILED: bool = cfg!(feature = "sabotage");

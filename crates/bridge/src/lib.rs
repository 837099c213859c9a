//! coupa-bridge, the ERP connector for Coupa.
//!
//! Layout: [`cli`] defines the command line and dispatches to [`commands`], one module per
//! command; [`flows`] move the documents, [`connector`] runs a pass, [`daemon`] schedules them,
//! [`doctor`] checks a setup. The Coupa simulator lives in the `coupa-sim` crate (see
//! ARCHITECTURE.md).

pub mod cli;
pub mod commands;
pub mod config;
pub mod connector;
pub mod daemon;
pub mod db;
pub mod doctor;
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

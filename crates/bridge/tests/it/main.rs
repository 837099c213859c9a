//! The connector: the binary run as a user runs it, and its parts against the simulator.

mod cli;
mod config_cmd;
mod crash;
mod erp;
mod invoice_export;
mod pay_export;
mod payment_push;
mod pg;
mod sftp;
mod store;

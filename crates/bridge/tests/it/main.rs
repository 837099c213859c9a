//! The connector: the binary run as a user runs it, and its parts against the simulator.

mod browser;
mod cli;
mod config_cmd;
mod crash;
mod daemon;
mod dashboard;
mod doctor;
mod dry_run;
mod erp;
mod erp_files;
mod erp_http;
mod init_cmd;
mod invoice_export;
mod log_cmd;
mod notify;
mod pay_export;
mod payment_push;
mod pg;
mod replicas;
mod security;
mod server;
mod sftp;
mod store;

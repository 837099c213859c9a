//! The simulator's integration tests: each module drives a running simulator over real HTTP or
//! SFTP, as a client would.

mod auth;
mod common;
mod data_file_sources;
mod invoices;
mod listing;
mod monitoring;
mod pay_payments;
mod sftp;
mod throttling;

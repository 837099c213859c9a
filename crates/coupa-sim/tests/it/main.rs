//! The simulator's integration tests: each module drives a running simulator over real HTTP or
//! SFTP, as a client would.

mod sftp;

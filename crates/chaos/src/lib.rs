//! The chaos harness of coupa-bridge (`coupa-chaos`, see RELIABILITY.md).
//!
//! The binary starts the Coupa simulator in-process, the reference ERP and the state store
//! (SQLite files, or PostgreSQL databases), and one or more connector processes (`coupa-chaos
//! worker run`, the `coupa-bridge run` daemon re-executed from this binary); it then follows a
//! seeded schedule ([`plan`]) of faults, SIGKILLs and crash points, and of people's activity
//! ([`activity`]); lets the flows finish, stops the workers gracefully, and checks the
//! exactly-once promises on the final state ([`invariants`]).
//!
//! The library holds what is pure and reusable: the generator ([`rng`]), the schedule, the
//! activity's choices and the invariant checks, which the crash tests can call too.

pub mod activity;
pub mod invariants;
pub mod plan;
pub mod rng;

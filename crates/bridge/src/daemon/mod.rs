//! `coupa-bridge run`: the flows on their schedules, one pass of a flow at a time.

pub mod schedule;

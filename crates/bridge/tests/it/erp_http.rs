//! The `http` ERP adapter end to end (being written).

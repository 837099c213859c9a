//! The `files` ERP adapter end to end (being written).

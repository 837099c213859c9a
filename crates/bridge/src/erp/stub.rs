//! The reference ERP behind HTTP. SKELETON: being written.

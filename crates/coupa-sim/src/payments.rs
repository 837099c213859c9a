//! Invoice payment payloads. (Placeholder.)

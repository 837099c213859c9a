//! Deliberately broken behaviours, compiled only with the `sabotage` feature (the chaos
//! harness's tests enable it; `cargo build` and `cargo run` never do), and active only when
//! [`ENV`] names them. They exist to prove that the chaos harness catches what they break.
//!
//! - `ack-before-effect`: the invoice export marks an invoice exported in Coupa *before*
//!   posting it to the ERP (then passes the failpoint `sabotage-acked`). A crash in between
//!   loses the invoice: Coupa no longer lists it, the ERP never got it.

use std::sync::OnceLock;

/// The environment variable naming the sabotage in force (`ack-before-effect`).
pub const ENV: &str = "COUPA_BRIDGE_SABOTAGE";

/// The value of [`ENV`] that acknowledges invoices before their ERP effect.
pub const ACK_BEFORE_EFFECT: &str = "ack-before-effect";

/// The failpoint passed right after the early acknowledgement.
pub const ACKED_FAILPOINT: &str = "sabotage-acked";

fn active() -> &'static str {
    static ACTIVE: OnceLock<String> = OnceLock::new();
    ACTIVE.get_or_init(|| std::env::var(ENV).unwrap_or_default().trim().to_owned())
}

/// Whether invoices are to be marked exported before the ERP posting.
pub fn ack_before_effect() -> bool {
    active() == ACK_BEFORE_EFFECT
}

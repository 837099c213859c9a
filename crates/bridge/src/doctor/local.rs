//! The checks of what sits beside Coupa: its SFTP server (CSV transport), the ERP and the
//! connector's own state store.

use super::{Check, Verdict};
use crate::config::{Config, ErpKind, PaymentTransport};
use crate::db::{self, SchemaState};
use crate::erp::sql::SqlErp;
use crate::sftp::{Sftp, SftpTarget};
use crate::store::Store;

pub(super) async fn checks(config: &Config, fix: bool) -> Vec<Check> {
    vec![
        sftp(config).await,
        erp(config, fix).await,
        state(config).await,
    ]
}

/// Coupa's SFTP server: it answers, with the pinned host key, takes the login, and has the
/// folder the payment files go to.
async fn sftp(config: &Config) -> Check {
    const NAME: &str = "sftp";
    if !config.payments.enabled || config.payments.transport != PaymentTransport::Csv {
        return Check::skip(NAME, "only the CSV payment transport uses SFTP");
    }
    let c = &config.payments.sftp;
    let target = match SftpTarget::from_config(c) {
        Ok(t) => t,
        Err(e) => return Check::fail(NAME, e, "complete [payments.sftp]"),
    };
    let host = format!("{}:{}", c.host.as_deref().unwrap_or_default(), c.port);
    let session = match Sftp::connect(&target).await {
        Ok(s) => s,
        Err(e) => {
            let fix = match &e {
                crate::sftp::SftpError::HostKeyMismatch { .. } => {
                    "ask Coupa for the server's host key (or `ssh-keyscan` it and compare the \
                     fingerprint Coupa gives) and set payments.sftp.host_key to it"
                }
                crate::sftp::SftpError::Auth { .. } | crate::sftp::SftpError::Key { .. } => {
                    "check payments.sftp.username and COUPA_BRIDGE__PAYMENTS__SFTP__PASSWORD \
                     (or payments.sftp.private_key_path) with Coupa"
                }
                _ => "check payments.sftp.host and port, and that this host may reach it",
            };
            return Check::fail(NAME, e.to_string(), fix);
        }
    };
    let dir = c.incoming_dir.trim_end_matches('/');
    let found = session.exists(dir).await;
    session.close().await;
    match found {
        Ok(true) => Check::pass(
            NAME,
            format!("{host} has the pinned host key, took the login, and has {dir}"),
        ),
        Ok(false) => Check::fail(
            NAME,
            format!("{host} took the login but has no folder {dir}"),
            "set payments.sftp.incoming_dir to the folder Coupa's payment loader reads",
        ),
        Err(e) => Check::fail(
            NAME,
            e.to_string(),
            "check payments.sftp.incoming_dir and the user's rights",
        ),
    }
}

/// The ERP answers and its schema is this version's; `fix` creates or updates the schema.
async fn erp(config: &Config, fix: bool) -> Check {
    const NAME: &str = "erp";
    // For `http` and `files`, `erp.url` is the local ledger; the ERP itself answers over HTTP
    // or through its folders, which the first pass reaches.
    let what = match config.erp.kind {
        ErpKind::Sql => "the ERP",
        ErpKind::Http | ErpKind::Files => "the ERP ledger",
    };
    let url = &config.erp.url;
    let shown = db::redact_url(url);
    let state = match SqlErp::schema_state(url).await {
        Ok(s) => s,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("cannot reach {what}: {e}"),
                "check erp.url and that the database is up and reachable from this host",
            );
        }
    };
    match state {
        SchemaState::Current { .. } => Check::pass(NAME, format!("{shown}: {state}")),
        SchemaState::TooNew { .. } => Check::fail(
            NAME,
            format!("{shown}: {state}"),
            "run the coupa-bridge version that wrote it, or a newer one",
        ),
        SchemaState::Missing { .. } | SchemaState::Behind { .. } if fix => {
            match SqlErp::connect(url).await {
                Ok(erp) => {
                    erp.db().close().await;
                    Check {
                        name: NAME.into(),
                        verdict: Verdict::Fixed,
                        found: format!("{shown}: was {state}; schema brought up to date"),
                        fix: None,
                    }
                }
                Err(e) => Check::fail(
                    NAME,
                    format!("{shown}: {state}; updating it failed: {e}"),
                    "check the database user's rights to create tables",
                ),
            }
        }
        SchemaState::Missing { .. } | SchemaState::Behind { .. } => Check::fail(
            NAME,
            format!("{shown}: {state}"),
            "`coupa-bridge doctor --fix` creates or updates it (so does the first sync)",
        ),
    }
}

/// The state store opens (created when new: it is the connector's own) and takes a write.
async fn state(config: &Config) -> Check {
    const NAME: &str = "state store";
    let shown = db::redact_url(&config.state.url);
    let store = match Store::connect(&config.state.url).await {
        Ok(s) => s,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("cannot open {shown}: {e}"),
                "check state.url, the folder's rights, or the database server",
            );
        }
    };
    let probed = store.probe_write().await;
    store.db().close().await;
    match probed {
        Ok(()) => Check::pass(NAME, format!("{shown} is writable")),
        Err(e) => Check::fail(
            NAME,
            format!("{shown} refuses writes: {e}"),
            "give the connector's user write access to the file and its folder (or the \
             database)",
        ),
    }
}

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
        erp_reach(config).await,
        state(config).await,
    ]
}

/// An external ERP answers: its HTTP endpoint gives any HTTP answer (a 405 to a HEAD still
/// proves the address, TLS and the network path), or its folders exist (locally or on its SFTP
/// server, with the pinned host key). Nothing is written.
async fn erp_reach(config: &Config) -> Check {
    const NAME: &str = "erp endpoint";
    match config.erp.kind {
        ErpKind::Sql => Check::skip(NAME, "the sql ERP is its database, checked above"),
        ErpKind::Http => {
            let Some(url) = &config.erp.http.invoices_url else {
                return Check::skip(NAME, "no erp.http.invoices_url (invoices disabled)");
            };
            let client = match reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(config.erp.http.timeout_secs))
                .redirect(reqwest::redirect::Policy::none())
                .build()
            {
                Ok(c) => c,
                Err(e) => return Check::fail(NAME, e.to_string(), "check the TLS setup"),
            };
            let shown = crate::config::redact_userinfo(url);
            match client.head(url).send().await {
                Ok(r) => Check::pass(
                    NAME,
                    format!("{shown} answers (HTTP {} to a HEAD)", r.status().as_u16()),
                ),
                Err(e) => Check::fail(
                    NAME,
                    format!(
                        "{shown} does not answer: {}",
                        if e.is_timeout() {
                            "timed out".to_owned()
                        } else if e.is_connect() {
                            "cannot connect".to_owned()
                        } else {
                            "the request failed".to_owned()
                        }
                    ),
                    "check erp.http.invoices_url, that this host may reach it, and its TLS \
                     certificate",
                ),
            }
        }
        ErpKind::Files => {
            let f = &config.erp.files;
            let folders: Vec<&str> = [&f.outbox, &f.inbox, &f.payments_inbox]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            if f.sftp.host.is_none() {
                let missing: Vec<&str> = folders
                    .iter()
                    .copied()
                    .filter(|d| !std::path::Path::new(d).is_dir())
                    .collect();
                return if missing.is_empty() {
                    Check::pass(NAME, format!("the folders exist: {}", folders.join(", ")))
                } else {
                    Check::fail(
                        NAME,
                        format!("no such folder: {}", missing.join(", ")),
                        "create them, or correct [erp.files]",
                    )
                };
            }
            let target = match SftpTarget::from_config(&f.sftp) {
                Ok(t) => t,
                Err(e) => return Check::fail(NAME, e, "complete [erp.files.sftp]"),
            };
            let session = match Sftp::connect(&target).await {
                Ok(s) => s,
                Err(e) => {
                    return Check::fail(
                        NAME,
                        e.to_string(),
                        "check [erp.files.sftp] (host, port, user, the pinned host key) and \
                         COUPA_BRIDGE__ERP__FILES__SFTP__PASSWORD",
                    );
                }
            };
            let mut missing = Vec::new();
            for d in &folders {
                match session.exists(d).await {
                    Ok(true) => {}
                    Ok(false) => missing.push(d.to_string()),
                    Err(e) => missing.push(format!("{d} ({e})")),
                }
            }
            session.close().await;
            if missing.is_empty() {
                Check::pass(
                    NAME,
                    format!("the ERP's SFTP server has {}", folders.join(", ")),
                )
            } else {
                Check::fail(
                    NAME,
                    format!("not on the ERP's SFTP server: {}", missing.join(", ")),
                    "create them, or correct [erp.files]",
                )
            }
        }
    }
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

//! Several Coupa instances (tenants) in one file.
//!
//! ```toml
//! [coupa]                      # shared by every tenant, unless a tenant sets the key
//! requests_per_second = 20
//!
//! [tenants.acme.coupa]
//! base_url = "https://acme.coupahost.com"
//! client_id = "coupa-bridge"
//! [tenants.acme.state]
//! url = "sqlite://acme-state.db"
//! ```
//!
//! Each tenant's effective configuration is the top-level sections overridden key by key by
//! its own (`[tenants.<name>.<section>]`, the same keys and types), then by the
//! `COUPA_BRIDGE__<SECTION>__<KEY>` variables (for every tenant), then by its own
//! `COUPA_BRIDGE__TENANTS__<NAME>__<SECTION>__<KEY>` variables. The reading is `load.rs`'s;
//! this file holds the public entry points, tenant names and the rules across tenants.

use std::net::SocketAddr;
use std::path::Path;

use super::Config;
use super::load::{self, ConfigError, LoadedConfig, Want};

/// The one tenant of a file without `[tenants]`.
pub const DEFAULT_TENANT: &str = "default";

/// Longest tenant name.
const MAX_NAME: usize = 32;

/// One Coupa instance of the configuration, validated.
#[derive(Clone, Debug)]
pub struct Tenant {
    /// The name in `[tenants.<name>]`, or [`DEFAULT_TENANT`].
    pub name: String,
    pub loaded: LoadedConfig,
}

impl Config {
    /// Every tenant of the file, by name, in the file's order. A file without `[tenants]` is one
    /// tenant named [`DEFAULT_TENANT`], loaded as [`Config::load`] does. Every tenant is
    /// validated; any problem in any of them is the error, with all problems in it.
    pub fn load_tenants(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Vec<Tenant>, ConfigError> {
        load::load_path(path, env, Want::All)
    }

    /// [`Config::load_tenants`] on TOML text already in hand; `path` names it in messages and
    /// anchors relative paths.
    pub fn load_tenants_str(
        text: &str,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Vec<Tenant>, ConfigError> {
        load::load_text(text, path, env, Want::All)
    }

    /// One tenant: `None` on a file without `[tenants]` (or `Some("default")`). On a file with
    /// tenants, `None` is an error naming them ("choose one with --tenant"), an unknown name
    /// too. Only the chosen tenant is validated; the file's keys are checked everywhere and the
    /// rules across tenants still apply.
    pub fn load_tenant(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
        tenant: Option<&str>,
    ) -> Result<LoadedConfig, ConfigError> {
        one(load::load_path(path, env, Want::One(tenant))?, path)
    }

    /// [`Config::load_tenant`] on TOML text already in hand.
    pub fn load_tenant_str(
        text: &str,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
        tenant: Option<&str>,
    ) -> Result<LoadedConfig, ConfigError> {
        one(load::load_text(text, path, env, Want::One(tenant))?, path)
    }
}

fn one(tenants: Vec<Tenant>, path: &Path) -> Result<LoadedConfig, ConfigError> {
    tenants
        .into_iter()
        .next()
        .map(|t| t.loaded)
        .ok_or_else(|| ConfigError::Tenant {
            path: path.to_owned(),
            message: "no tenant was loaded".into(),
        })
}

/// A tenant name: `[a-z0-9_]{1,32}`, and addressable from an environment variable name (where
/// `__` separates levels): no `__`, no `_` at the end. [`DEFAULT_TENANT`] is taken.
pub(super) fn check_name(name: &str) -> Result<(), String> {
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if name.is_empty() || name.len() > MAX_NAME || !chars_ok {
        return Err(format!(
            "a tenant name is 1 to {MAX_NAME} of a-z, 0-9 and _ (lowercase, so that \
             COUPA_BRIDGE__TENANTS__<NAME>__... can name it)"
        ));
    }
    if name == DEFAULT_TENANT {
        return Err(format!(
            "`{DEFAULT_TENANT}` names the one tenant of a file without [tenants]: choose another \
             name"
        ));
    }
    if name.contains("__") || name.ends_with('_') {
        return Err(
            "a tenant name may not contain `__` or end with `_`: COUPA_BRIDGE__TENANTS__<NAME>__... \
             could not name it"
                .into(),
        );
    }
    Ok(())
}

/// `tenant acme` or `tenants acme, globex`.
pub(super) fn naming(names: &[String]) -> String {
    match names {
        [] => "no tenant".to_owned(),
        [one] => format!("tenant {one}"),
        _ => format!("tenants {}", names.join(", ")),
    }
}

/// The tenant a [`Want::One`] load returns: `None` on a file without tenants (every tenant is
/// then the one default), or the error that names the tenants to choose from.
pub(super) fn choose(
    path: &Path,
    multi: bool,
    names: &[String],
    choice: Option<&str>,
) -> Result<Option<String>, ConfigError> {
    let error = |message: String| ConfigError::Tenant {
        path: path.to_owned(),
        message,
    };
    match (multi, choice) {
        (false, None) => Ok(None),
        (false, Some(DEFAULT_TENANT)) => Ok(None),
        (false, Some(name)) => Err(error(format!(
            "no tenant `{}`: this file configures no tenants ([tenants.<name>] tables); leave \
             out --tenant",
            name.escape_debug()
        ))),
        // `[tenants]` without a tenant: the load reports it with its line.
        (true, _) if names.is_empty() => Ok(None),
        (true, None) => Err(error(format!(
            "this file configures {}: choose one with --tenant",
            naming(names)
        ))),
        (true, Some(name)) if names.iter().any(|n| n == name) => Ok(Some(name.to_owned())),
        (true, Some(name)) => Err(error(format!(
            "no tenant `{}`: this file configures {}",
            name.escape_debug(),
            naming(names)
        ))),
    }
}

/// The rules across tenants: `(index of the later tenant, key, message)` for each tenant that
/// repeats an earlier one's Coupa instance, state store, ERP database or listen address.
/// Messages name both tenants and no URL (a database URL may carry a password).
pub(super) fn conflicts(tenants: &[(&str, &Config)]) -> Vec<(usize, &'static str, String)> {
    let mut found = Vec::new();
    for (later, (name, config)) in tenants.iter().enumerate() {
        let earlier = &tenants[..later];
        if let Some((other, _)) = earlier
            .iter()
            .find(|(_, c)| same_instance(&c.coupa.base_url, &config.coupa.base_url))
        {
            found.push((
                later,
                "coupa.base_url",
                format!(
                    "tenants {other} and {name} use the same Coupa instance: one instance's rate \
                     budget must be governed in one place, so configure it as one tenant"
                ),
            ));
        }
        if let Some((other, _)) = earlier
            .iter()
            .find(|(_, c)| same_database(&c.state.url, &config.state.url))
        {
            found.push((
                later,
                "state.url",
                format!(
                    "tenants {other} and {name} use the same state store: give each tenant its \
                     own state.url"
                ),
            ));
        }
        if let Some((other, _)) = earlier
            .iter()
            .find(|(_, c)| same_database(&c.erp.url, &config.erp.url))
        {
            found.push((
                later,
                "erp.url",
                format!(
                    "tenants {other} and {name} use the same ERP database, where their document \
                     ids would collide: give each tenant its own erp.url"
                ),
            ));
        }
        if let Some((other, addr)) = earlier.iter().find_map(|(other, c)| {
            same_listener(&c.server.listen, &config.server.listen).map(|addr| (other, addr))
        }) {
            found.push((
                later,
                "server.listen",
                format!(
                    "tenants {other} and {name} both listen on {addr}: give each tenant its own \
                     server.listen (or port 0)"
                ),
            ));
        }
    }
    found
}

/// The same Coupa instance: equal without case, surrounding spaces and a trailing `/`. Empty
/// URLs are validation's business.
fn same_instance(a: &str, b: &str) -> bool {
    let norm = |url: &str| url.trim().trim_end_matches('/').to_ascii_lowercase();
    let (a, b) = (norm(a), norm(b));
    !a.is_empty() && a == b
}

/// The same database: for SQLite the same file (`sqlite://x.db` and `sqlite:x.db?mode=rwc` are
/// one; in-memory databases never are), for PostgreSQL the same host, port and database
/// whatever the user; anything else compared as written.
fn same_database(a: &str, b: &str) -> bool {
    fn identity(url: &str) -> Option<String> {
        let url = url.trim();
        let without_query = |s: &str| s.split(['?', '#']).next().unwrap_or(s).to_owned();
        if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let file = without_query(rest);
            return (!file.is_empty() && !file.starts_with(':')).then(|| format!("sqlite:{file}"));
        }
        for scheme in ["postgres://", "postgresql://"] {
            if let Some(rest) = url.strip_prefix(scheme) {
                let rest = without_query(rest);
                let (authority, database) = rest.split_once('/').unwrap_or((&rest, ""));
                let host = authority
                    .rsplit_once('@')
                    .map_or(authority, |(_, host)| host);
                return Some(format!(
                    "postgres://{}/{database}",
                    host.to_ascii_lowercase()
                ));
            }
        }
        (!url.is_empty()).then(|| url.to_owned())
    }
    identity(a).is_some_and(|a| Some(a) == identity(b))
}

/// The port two listen addresses would both bind, unless it is 0: the same address, or the
/// same port where one is the unspecified address (0.0.0.0 or [::]).
fn same_listener(a: &str, b: &str) -> Option<SocketAddr> {
    let a: SocketAddr = a.trim().parse().ok()?;
    let b: SocketAddr = b.trim().parse().ok()?;
    let overlap = a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified();
    (b.port() != 0 && a.port() == b.port() && overlap).then_some(b)
}

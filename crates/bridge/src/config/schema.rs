//! Every key of the configuration with its type, in the order they are printed.
//!
//! The typed tree in `mod.rs` is what the connector reads; this list is what the loader needs
//! before there is a tree: which names exist (to name an unknown key with its line, and to
//! reject an environment variable for a key that does not exist), how to read an environment
//! value (a number, a list...), which values are secrets, and where each value came from. A
//! unit test keeps the two in step.

use toml::de::DeValue;

/// The type of a key's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    Str,
    /// A string never echoed in a message.
    Secret,
    Bool,
    /// An integer within `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    /// A finite number above zero.
    Positive,
    /// A list of strings.
    List,
    /// One of these strings.
    OneOf(&'static [&'static str]),
}

#[derive(Debug)]
pub(crate) struct Key {
    /// `section.key`, or `payments.sftp.key`.
    pub path: &'static str,
    pub kind: Kind,
}

const fn key(path: &'static str, kind: Kind) -> Key {
    Key { path, kind }
}

pub(crate) const KEYS: &[Key] = &[
    key("coupa.base_url", Kind::Str),
    key("coupa.insecure_http_simulator_only", Kind::Bool),
    key("coupa.client_id", Kind::Str),
    key("coupa.client_secret", Kind::Secret),
    key("coupa.api_key", Kind::Secret),
    key("coupa.scopes", Kind::List),
    key("coupa.basic_auth", Kind::Bool),
    key("coupa.format", Kind::OneOf(&["json", "xml"])),
    key("coupa.requests_per_second", Kind::Positive),
    key(
        "coupa.burst",
        Kind::Int {
            min: 1,
            max: u32::MAX as i64,
        },
    ),
    key(
        "coupa.timeout_secs",
        Kind::Int {
            min: 1,
            max: 86_400,
        },
    ),
    key("state.url", Kind::Str),
    key("state.lease_secs", Kind::Int { min: 2, max: 600 }),
    key("erp.kind", Kind::OneOf(&["sql", "http", "files"])),
    key("erp.url", Kind::Str),
    key("erp.mapping", Kind::Str),
    key("erp.http.invoices_url", Kind::Str),
    key("erp.http.cancel_url", Kind::Str),
    key("erp.http.pay_payments_url", Kind::Str),
    key("erp.http.payments_url", Kind::Str),
    key("erp.http.payments_cursor_param", Kind::Str),
    key(
        "erp.http.auth",
        Kind::OneOf(&["none", "bearer", "basic", "hmac"]),
    ),
    key("erp.http.token", Kind::Secret),
    key("erp.http.username", Kind::Str),
    key("erp.http.password", Kind::Secret),
    key("erp.http.hmac_secret", Kind::Secret),
    key("erp.http.hmac_header", Kind::Str),
    key("erp.http.idempotency_header", Kind::Str),
    key("erp.http.timeout_secs", Kind::Int { min: 1, max: 3_600 }),
    key("erp.files.outbox", Kind::Str),
    key("erp.files.inbox", Kind::Str),
    key("erp.files.payments_inbox", Kind::Str),
    key("erp.files.sftp.host", Kind::Str),
    key(
        "erp.files.sftp.port",
        Kind::Int {
            min: 1,
            max: 65_535,
        },
    ),
    key("erp.files.sftp.username", Kind::Str),
    key("erp.files.sftp.password", Kind::Secret),
    key("erp.files.sftp.private_key_path", Kind::Str),
    key("erp.files.sftp.host_key", Kind::Str),
    key("invoices.enabled", Kind::Bool),
    key("invoices.statuses", Kind::List),
    key(
        "invoices.monitoring",
        Kind::OneOf(&["custom-fields", "history", "runs"]),
    ),
    key("invoices.integration_code", Kind::Str),
    key("invoices.erp_number_field", Kind::Str),
    key("invoices.status_field", Kind::Str),
    key("invoices.concurrency", Kind::Int { min: 1, max: 256 }),
    key(
        "invoices.answer_deadline_secs",
        Kind::Int {
            min: 1,
            max: 31_536_000,
        },
    ),
    key("payments.enabled", Kind::Bool),
    key("payments.transport", Kind::OneOf(&["api", "csv"])),
    key("payments.integration_code", Kind::Str),
    key("payments.concurrency", Kind::Int { min: 1, max: 256 }),
    key("payments.sftp.host", Kind::Str),
    key(
        "payments.sftp.port",
        Kind::Int {
            min: 1,
            max: u16::MAX as i64,
        },
    ),
    key("payments.sftp.username", Kind::Str),
    key("payments.sftp.password", Kind::Secret),
    key("payments.sftp.private_key_path", Kind::Str),
    key("payments.sftp.host_key", Kind::Str),
    key("payments.sftp.incoming_dir", Kind::Str),
    key(
        "payments.sftp.result_timeout_secs",
        Kind::Int {
            min: 0,
            max: 86_400,
        },
    ),
    key("pay_payments.enabled", Kind::Bool),
    key("pay_payments.statuses", Kind::List),
    key("pay_payments.pay_to_account_type", Kind::Str),
    key("pay_payments.issuing_bank", Kind::Str),
    key("pay_payments.integration_code", Kind::Str),
    key(
        "pay_payments.overlap_secs",
        Kind::Int {
            min: 0,
            max: 86_400,
        },
    ),
    key("pay_payments.concurrency", Kind::Int { min: 1, max: 256 }),
    key("schedule.invoices", Kind::Str),
    key("schedule.payments", Kind::Str),
    key("schedule.pay_payments", Kind::Str),
    key(
        "log.retention_days",
        Kind::Int {
            min: 0,
            max: 36_500,
        },
    ),
    key(
        "notify.reminder_minutes",
        Kind::Int {
            min: 1,
            max: 10_080,
        },
    ),
    key("notify.dashboard_url", Kind::Str),
    key("notify.email.host", Kind::Str),
    key(
        "notify.email.port",
        Kind::Int {
            min: 1,
            max: u16::MAX as i64,
        },
    ),
    key(
        "notify.email.security",
        Kind::OneOf(&["starttls", "tls", "none"]),
    ),
    key("notify.email.username", Kind::Str),
    key("notify.email.password", Kind::Secret),
    key("notify.email.from", Kind::Str),
    key("notify.email.to", Kind::List),
    key("notify.webhook.url", Kind::Str),
    key("notify.webhook.secret", Kind::Secret),
    key("server.listen", Kind::Str),
    key("server.token", Kind::Secret),
];

/// Every key path (`coupa.base_url`, `payments.sftp.host`, ...), in the order `config check`
/// prints them.
pub fn key_paths() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|k| k.path)
}

pub(crate) fn find(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.path == path)
}

/// A table (`coupa`, `payments.sftp`), as opposed to a key.
pub(crate) fn is_section(path: &str) -> bool {
    KEYS.iter().any(|k| {
        k.path
            .strip_prefix(path)
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// The names directly inside `prefix` (`""` for the top level), in schema order.
pub(crate) fn children(prefix: &str) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for k in KEYS {
        let rest = if prefix.is_empty() {
            Some(k.path)
        } else {
            k.path
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('.'))
        };
        if let Some(rest) = rest {
            let name = rest.split('.').next().unwrap_or(rest);
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// `expected one of `a`, `b`` plus a suggestion when `name` looks like a typo of one of them.
pub(crate) fn expected_one_of(prefix: &str, name: &str) -> String {
    let candidates = children(prefix);
    let list = candidates
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let lower = name.to_ascii_lowercase();
    let close = candidates
        .iter()
        .map(|c| (edit_distance(&lower, c), *c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d);
    match close {
        Some((_, c)) => format!("expected one of {list} (did you mean `{c}`?)"),
        None => format!("expected one of {list}"),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Checks a value read from the file against its key's type. The message never quotes a
/// secret.
pub(crate) fn check(kind: Kind, value: &DeValue<'_>) -> Result<(), String> {
    let found = || format!("found {}", describe(value));
    match kind {
        Kind::Str => match value {
            DeValue::String(_) => Ok(()),
            _ => Err(format!("expected a string, {}", found())),
        },
        Kind::Secret => match value {
            DeValue::String(_) => Ok(()),
            _ => Err("expected a string (a secret: the value is not shown)".to_owned()),
        },
        Kind::Bool => match value {
            DeValue::Boolean(_) => Ok(()),
            _ => Err(format!("expected true or false, {}", found())),
        },
        Kind::Int { min, max } => match value {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) if (min..=max).contains(&n) => Ok(()),
                _ => Err(format!(
                    "expected an integer from {min} to {max}, {}",
                    found()
                )),
            },
            _ => Err(format!(
                "expected an integer from {min} to {max}, {}",
                found()
            )),
        },
        Kind::Positive => {
            let n = match value {
                DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                    .ok()
                    .map(|n| n as f64),
                DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
                _ => None,
            };
            match n {
                Some(n) if n.is_finite() && n > 0.0 => Ok(()),
                _ => Err(format!("expected a number above 0, {}", found())),
            }
        }
        Kind::List => match value {
            DeValue::Array(items) if items.iter().all(|i| i.get_ref().is_str()) => Ok(()),
            DeValue::Array(_) => {
                Err("expected a list of strings, found a list with a non-string".to_owned())
            }
            _ => Err(format!("expected a list of strings, {}", found())),
        },
        Kind::OneOf(allowed) => match value {
            DeValue::String(s) if allowed.contains(&s.as_ref()) => Ok(()),
            _ => Err(format!("expected {}, {}", one_of(allowed), found())),
        },
    }
}

/// `"json" or "xml"`, `"api", "csv" or ...`.
pub(crate) fn one_of(allowed: &[&str]) -> String {
    let quoted: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) if s.len() <= 60 => format!("\"{}\"", s.escape_debug()),
        DeValue::String(_) => "a long string".into(),
        DeValue::Integer(i) => format!("integer {}", i.as_str()),
        DeValue::Float(f) => format!("number {}", f.as_str()),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(_) => "a date-time".into(),
        DeValue::Array(_) => "a list".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

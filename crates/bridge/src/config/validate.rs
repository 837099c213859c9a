//! Rules that a single key's type cannot express: required values, the credentials rule, what
//! the CSV transport needs. Problems are `(key path, message)`; the loader adds where the
//! value came from. Messages never contain a secret's value.

use secrecy::{ExposeSecret, SecretString};

use super::{Config, PaymentTransport};

/// Coupa's published limits (coupa-api.md): above them, expect 429s.
const COUPA_RATE: f64 = 25.0;
const COUPA_BURST: u32 = 20;

pub(super) type Issues = Vec<(&'static str, String)>;

/// Problems and warnings, in schema order.
pub(super) fn check(config: &Config) -> (Issues, Vec<String>) {
    let mut issues: Issues = Vec::new();
    let mut warnings = Vec::new();
    let mut problem = |key: &'static str, message: String| issues.push((key, message));

    let coupa = &config.coupa;
    let base_url = coupa.base_url.trim();
    if base_url.is_empty() {
        problem(
            "coupa.base_url",
            "required: the Coupa instance, e.g. https://acme.coupahost.com".into(),
        );
    } else if base_url.starts_with("http://") && base_url.len() > "http://".len() {
        if coupa.insecure_http_simulator_only {
            warnings.push(format!(
                "coupa.insecure_http_simulator_only: plain HTTP to {} with no TLS: for the \
                 Coupa simulator only; never use it for a real Coupa instance",
                super::redact_userinfo(base_url)
            ));
            without_api(&mut problem, base_url);
        } else {
            problem(
                "coupa.base_url",
                format!(
                    "\"{}\" is plain http://: Coupa is reached over https:// only. \
                     coupa.insecure_http_simulator_only = true accepts http://, and is for the \
                     simulator only",
                    super::redact_userinfo(base_url)
                ),
            );
        }
    } else if base_url.starts_with("https://") && base_url.len() > "https://".len() {
        without_api(&mut problem, base_url);
        if coupa.insecure_http_simulator_only {
            warnings.push(
                "coupa.insecure_http_simulator_only: set, but coupa.base_url is https://, where \
                 it changes nothing (certificates are always verified); remove it"
                    .to_owned(),
            );
        }
    } else {
        problem(
            "coupa.base_url",
            format!(
                "expected an https:// URL, e.g. https://acme.coupahost.com, found \"{}\"",
                super::redact_userinfo(base_url)
            ),
        );
    }

    let oauth_id = coupa.client_id.as_deref().map(str::trim);
    let oauth_secret = coupa.client_secret.as_ref();
    if oauth_id == Some("") {
        problem("coupa.client_id", "must not be empty".into());
    }
    if oauth_secret.is_some_and(is_blank) {
        problem("coupa.client_secret", "must not be empty".into());
    }
    if coupa.api_key.as_ref().is_some_and(is_blank) {
        problem("coupa.api_key", "must not be empty".into());
    }
    match (oauth_id, oauth_secret, &coupa.api_key) {
        (Some(_), Some(_), None) => {}
        (None, None, Some(_)) => warnings.push(
            "coupa.api_key: Coupa's deadline for moving from API keys to OAuth 2.0 was \
             release R35 (January 2023), after which \"API keys will no longer be supported\": \
             an instance may refuse this key at any time. Create an OAuth2 client with the \
             client credentials grant (Setup > Integrations > OAuth2/OpenID Connect Clients), \
             set coupa.client_id and coupa.client_secret, remove coupa.api_key and revoke the \
             key under Setup > API Keys"
                .to_owned(),
        ),
        (None, None, None) => problem(
            "coupa.client_id",
            "no Coupa credentials: set coupa.client_id and coupa.client_secret (OAuth2 client \
             credentials; the secret best through COUPA_BRIDGE__COUPA__CLIENT_SECRET), or the \
             deprecated coupa.api_key"
                .into(),
        ),
        (_, _, Some(_)) => problem(
            "coupa.api_key",
            "set either coupa.api_key or coupa.client_id + coupa.client_secret, not both".into(),
        ),
        (Some(_), None, None) => problem(
            "coupa.client_secret",
            "required with coupa.client_id (set it in the file or through \
             COUPA_BRIDGE__COUPA__CLIENT_SECRET)"
                .into(),
        ),
        (None, Some(_), None) => problem(
            "coupa.client_id",
            "required with coupa.client_secret".into(),
        ),
    }
    if !(coupa.requests_per_second.is_finite() && coupa.requests_per_second > 0.0) {
        problem(
            "coupa.requests_per_second",
            "expected a number above 0".into(),
        );
    } else if coupa.requests_per_second > COUPA_RATE {
        warnings.push(format!(
            "coupa.requests_per_second: {} is above Coupa's published {COUPA_RATE} requests/s; \
             expect 429s (the governor slows down when they come)",
            coupa.requests_per_second
        ));
    }
    if coupa.burst == 0 {
        problem("coupa.burst", "expected at least 1".into());
    } else if coupa.burst > COUPA_BURST {
        warnings.push(format!(
            "coupa.burst: {} is above Coupa's published burst of {COUPA_BURST}; expect 429s",
            coupa.burst
        ));
    }
    if coupa.timeout_secs == 0 {
        problem("coupa.timeout_secs", "expected at least 1".into());
    }

    database_url(&mut problem, "state.url", &config.state.url);
    database_url(&mut problem, "erp.url", &config.erp.url);

    let invoices = &config.invoices;
    statuses(&mut problem, "invoices.statuses", &invoices.statuses);
    not_empty(
        &mut problem,
        "invoices.integration_code",
        &invoices.integration_code,
    );
    not_empty(
        &mut problem,
        "invoices.erp_number_field",
        &invoices.erp_number_field,
    );
    not_empty(
        &mut problem,
        "invoices.status_field",
        &invoices.status_field,
    );
    if invoices.concurrency == 0 {
        problem("invoices.concurrency", "expected at least 1".into());
    }

    not_empty(
        &mut problem,
        "payments.integration_code",
        &config.payments.integration_code,
    );
    if config.payments.concurrency == 0 {
        problem("payments.concurrency", "expected at least 1".into());
    }

    let sftp = &config.payments.sftp;
    if config.payments.transport == PaymentTransport::Csv {
        const CSV: &str = "required when payments.transport = \"csv\"";
        if sftp.host.as_deref().is_none_or(|h| h.trim().is_empty()) {
            problem("payments.sftp.host", CSV.into());
        }
        if sftp.username.as_deref().is_none_or(|u| u.trim().is_empty()) {
            problem("payments.sftp.username", CSV.into());
        }
        if sftp.host_key.is_none() {
            problem(
                "payments.sftp.host_key",
                format!(
                    "{CSV} (the server's public key, e.g. \"ssh-ed25519 AAAA...\"; the \
                     connector never trusts a key on first use)"
                ),
            );
        }
        if sftp.password.is_none() && sftp.private_key_path.is_none() {
            problem(
                "payments.sftp.password",
                format!(
                    "{CSV}, or payments.sftp.private_key_path (the password best through \
                     COUPA_BRIDGE__PAYMENTS__SFTP__PASSWORD)"
                ),
            );
        }
    }
    if let Some(key) = &sftp.host_key
        && !looks_like_host_key(key)
    {
        problem(
            "payments.sftp.host_key",
            "expected an OpenSSH public key line: \"ssh-ed25519 AAAA...\"".into(),
        );
    }
    if sftp.port == 0 {
        problem("payments.sftp.port", "expected 1 to 65535".into());
    }
    if !sftp.incoming_dir.starts_with('/') {
        problem(
            "payments.sftp.incoming_dir",
            "expected an absolute path on the SFTP server, e.g. /Incoming/InvoicePayments".into(),
        );
    }

    statuses(
        &mut problem,
        "pay_payments.statuses",
        &config.pay_payments.statuses,
    );
    not_empty(
        &mut problem,
        "pay_payments.integration_code",
        &config.pay_payments.integration_code,
    );
    if config.pay_payments.concurrency == 0 {
        problem("pay_payments.concurrency", "expected at least 1".into());
    }
    if config
        .pay_payments
        .issuing_bank
        .as_deref()
        .is_some_and(|b| b.trim().is_empty())
    {
        problem(
            "pay_payments.issuing_bank",
            "must not be empty (leave it out to take every bank)".into(),
        );
    }

    for (key, expression) in [
        ("schedule.invoices", &config.schedule.invoices),
        ("schedule.payments", &config.schedule.payments),
        ("schedule.pay_payments", &config.schedule.pay_payments),
    ] {
        if !expression.trim().is_empty()
            && let Err(e) = crate::daemon::schedule::Schedule::parse(expression)
        {
            problem(key, e);
        }
    }

    let email = &config.notify.email;
    if let Some(host) = &email.host {
        not_empty(&mut problem, "notify.email.host", host);
        if !email.from.contains('@') {
            problem(
                "notify.email.from",
                "required when notify.email.host is set: an address, e.g. \
                 \"coupa-bridge <bridge@example.com>\""
                    .into(),
            );
        }
        if email.to.is_empty() || email.to.iter().any(|t| !t.contains('@')) {
            problem(
                "notify.email.to",
                "required when notify.email.host is set: a list of addresses".into(),
            );
        }
        if email.username.is_some() != email.password.is_some() {
            problem(
                "notify.email.password",
                "notify.email.username and notify.email.password go together (the password \
                 best through COUPA_BRIDGE__NOTIFY__EMAIL__PASSWORD)"
                    .into(),
            );
        }
    }
    if let Some(url) = &config.notify.webhook.url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        problem(
            "notify.webhook.url",
            format!(
                "expected an http:// or https:// URL, found \"{}\"",
                super::redact_userinfo(url)
            ),
        );
    }
    if config.notify.webhook.secret.as_ref().is_some_and(is_blank) {
        problem("notify.webhook.secret", "must not be empty".into());
    }

    match config.server.listen.parse::<std::net::SocketAddr>() {
        Err(_) => problem(
            "server.listen",
            format!(
                "expected an address and port, e.g. 127.0.0.1:8080, found \"{}\"",
                config.server.listen
            ),
        ),
        Ok(addr) if !addr.ip().is_loopback() && config.server.token.is_none() => problem(
            "server.token",
            format!(
                "required when server.listen ({addr}) is not a loopback address: the dashboard \
                 and the push endpoint are reachable from the network (set \
                 COUPA_BRIDGE__SERVER__TOKEN)"
            ),
        ),
        Ok(_) => {}
    }
    if config.server.token.as_ref().is_some_and(is_blank) {
        problem("server.token", "must not be empty".into());
    }

    (issues, warnings)
}

/// `coupa.base_url` is the instance, not its API root.
fn without_api(problem: &mut impl FnMut(&'static str, String), base_url: &str) {
    if base_url.trim_end_matches('/').ends_with("/api") {
        problem(
            "coupa.base_url",
            "give the instance without /api, e.g. https://acme.coupahost.com".into(),
        );
    }
}

fn is_blank(secret: &SecretString) -> bool {
    secret.expose_secret().trim().is_empty()
}

fn not_empty(problem: &mut impl FnMut(&'static str, String), key: &'static str, value: &str) {
    if value.trim().is_empty() {
        problem(key, "must not be empty".into());
    }
}

fn statuses(problem: &mut impl FnMut(&'static str, String), key: &'static str, list: &[String]) {
    if list.is_empty() {
        problem(key, "must list at least one status".into());
    } else if list.iter().any(|s| s.trim().is_empty()) {
        problem(key, "must not contain an empty status".into());
    }
}

fn database_url(problem: &mut impl FnMut(&'static str, String), key: &'static str, url: &str) {
    let known = ["sqlite:", "postgres://", "postgresql://"];
    if !known.iter().any(|scheme| url.starts_with(scheme)) {
        problem(
            key,
            format!(
                "expected a sqlite:// or postgres:// URL, found \"{}\"",
                super::redact_userinfo(url)
            ),
        );
    }
}

/// `ssh-ed25519 AAAA...` (an optional comment after), as `ssh-keyscan` and `sim` print it.
fn looks_like_host_key(key: &str) -> bool {
    let mut parts = key.split_whitespace();
    let algorithm = parts.next().unwrap_or("");
    let blob = parts.next().unwrap_or("");
    (algorithm.starts_with("ssh-") || algorithm.starts_with("ecdsa-sha2-"))
        && blob.len() >= 16
        && blob
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
}

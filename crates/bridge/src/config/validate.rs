//! Rules that a single key's type cannot express: required values, the credentials rule, what
//! the CSV transport needs. Problems are `(key path, message)`; the loader adds where the
//! value came from. Messages never contain a secret's value.

use secrecy::{ExposeSecret, SecretString};

use super::{Config, ErpKind, HttpAuth, PaymentTransport, SftpConfig};
use crate::erp::mapping::{Mapping, Outbound};

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
    erp(&mut problem, config);

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
    sftp_server(
        &mut problem,
        &PAYMENTS_SFTP,
        sftp,
        (config.payments.transport == PaymentTransport::Csv)
            .then_some("required when payments.transport = \"csv\""),
    );
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

/// The keys of one SFTP server's settings, for [`sftp_server`].
struct SftpKeys {
    host: &'static str,
    username: &'static str,
    host_key: &'static str,
    password: &'static str,
    private_key_path: &'static str,
    port: &'static str,
    password_env: &'static str,
}

const PAYMENTS_SFTP: SftpKeys = SftpKeys {
    host: "payments.sftp.host",
    username: "payments.sftp.username",
    host_key: "payments.sftp.host_key",
    password: "payments.sftp.password",
    private_key_path: "payments.sftp.private_key_path",
    port: "payments.sftp.port",
    password_env: "COUPA_BRIDGE__PAYMENTS__SFTP__PASSWORD",
};

const ERP_SFTP: SftpKeys = SftpKeys {
    host: "erp.files.sftp.host",
    username: "erp.files.sftp.username",
    host_key: "erp.files.sftp.host_key",
    password: "erp.files.sftp.password",
    private_key_path: "erp.files.sftp.private_key_path",
    port: "erp.files.sftp.port",
    password_env: "COUPA_BRIDGE__ERP__FILES__SFTP__PASSWORD",
};

/// An SFTP server's settings: all of host, user, pinned key and a credential when `required`
/// says why they are needed.
fn sftp_server(
    problem: &mut impl FnMut(&'static str, String),
    k: &SftpKeys,
    sftp: &SftpConfig,
    required: Option<&str>,
) {
    if let Some(why) = required {
        if sftp.host.as_deref().is_none_or(|h| h.trim().is_empty()) {
            problem(k.host, why.into());
        }
        if sftp.username.as_deref().is_none_or(|u| u.trim().is_empty()) {
            problem(k.username, why.into());
        }
        if sftp.host_key.is_none() {
            problem(
                k.host_key,
                format!(
                    "{why} (the server's public key, e.g. \"ssh-ed25519 AAAA...\"; the \
                     connector never trusts a key on first use)"
                ),
            );
        }
        if sftp.password.is_none() && sftp.private_key_path.is_none() {
            problem(
                k.password,
                format!(
                    "{why}, or {} (the password best through {})",
                    k.private_key_path, k.password_env
                ),
            );
        }
    }
    if let Some(key) = &sftp.host_key
        && !looks_like_host_key(key)
    {
        problem(
            k.host_key,
            "expected an OpenSSH public key line: \"ssh-ed25519 AAAA...\"".into(),
        );
    }
    if sftp.port == 0 {
        problem(k.port, "expected 1 to 65535".into());
    }
}

/// What the chosen adapter needs, and the mapping file, validated here so a mistake in it is
/// reported at start-up with its line, not on the first invoice.
fn erp(problem: &mut impl FnMut(&'static str, String), config: &Config) {
    let erp = &config.erp;
    let mapping = match &erp.mapping {
        None => None,
        Some(_) if erp.kind == ErpKind::Sql => {
            problem(
                "erp.mapping",
                "a mapping is for erp.kind = \"http\" or \"files\"; the sql ERP takes the \
                 canonical model as it is"
                    .into(),
            );
            None
        }
        Some(path) => match Mapping::load(path) {
            Ok(m) => Some(m),
            Err(errors) => {
                for e in errors.0 {
                    problem("erp.mapping", e.to_string());
                }
                None
            }
        },
    };
    let url = |problem: &mut dyn FnMut(&'static str, String), key: &'static str, v: &str| {
        let v = v.trim();
        if !(v.starts_with("https://") || v.starts_with("http://")) || v.ends_with("//") {
            problem(
                key,
                format!("expected an http:// or https:// URL, found \"{v}\""),
            );
        }
    };
    match erp.kind {
        ErpKind::Sql => {}
        ErpKind::Http => {
            let h = &erp.http;
            let invoices = config.invoices.enabled;
            match &h.invoices_url {
                Some(v) => url(problem, "erp.http.invoices_url", v),
                None if invoices => problem(
                    "erp.http.invoices_url",
                    "required when erp.kind = \"http\" and invoices are enabled: where each \
                     invoice is POSTed"
                        .into(),
                ),
                None => {}
            }
            match &h.cancel_url {
                Some(v) => url(problem, "erp.http.cancel_url", v),
                None if invoices && config.invoices.statuses.iter().any(|s| s == "voided") => {
                    problem(
                        "erp.http.cancel_url",
                        "required when invoices.statuses holds \"voided\": where a voided \
                         invoice's cancellation is POSTed ({coupa_invoice_id} is replaced)"
                            .into(),
                    )
                }
                None => {}
            }
            match &h.pay_payments_url {
                Some(v) => url(problem, "erp.http.pay_payments_url", v),
                None if config.pay_payments.enabled => problem(
                    "erp.http.pay_payments_url",
                    "required when pay_payments is enabled: where each Coupa Pay payment is \
                     POSTed (or set pay_payments.enabled = false)"
                        .into(),
                ),
                None => {}
            }
            if let Some(v) = &h.payments_url {
                url(problem, "erp.http.payments_url", v);
            }
            match h.auth {
                HttpAuth::None => {}
                HttpAuth::Bearer if h.token.as_ref().is_none_or(is_blank) => problem(
                    "erp.http.token",
                    "required when erp.http.auth = \"bearer\" (best through \
                     COUPA_BRIDGE__ERP__HTTP__TOKEN)"
                        .into(),
                ),
                HttpAuth::Basic
                    if h.username.as_deref().is_none_or(|u| u.trim().is_empty())
                        || h.password.as_ref().is_none_or(is_blank) =>
                {
                    problem(
                        "erp.http.username",
                        "erp.http.username and erp.http.password are required when \
                         erp.http.auth = \"basic\" (the password best through \
                         COUPA_BRIDGE__ERP__HTTP__PASSWORD)"
                            .into(),
                    )
                }
                HttpAuth::Hmac if h.hmac_secret.as_ref().is_none_or(is_blank) => problem(
                    "erp.http.hmac_secret",
                    "required when erp.http.auth = \"hmac\" (best through \
                     COUPA_BRIDGE__ERP__HTTP__HMAC_SECRET)"
                        .into(),
                ),
                _ => {}
            }
            not_empty(
                problem,
                "erp.http.idempotency_header",
                &h.idempotency_header,
            );
            if let Some(m) = &mapping {
                for (doc, what) in [
                    (Outbound::Invoice, "[invoice]"),
                    (Outbound::Cancel, "[cancel]"),
                    (Outbound::PayPayment, "[pay_payment]"),
                ] {
                    if m.format_of(doc) != crate::erp::mapping::Format::Json {
                        problem(
                            "erp.mapping",
                            format!(
                                "{what} format must be json for erp.kind = \"http\" (csv and \
                                 xml are for file drops)"
                            ),
                        );
                    }
                }
            }
        }
        ErpKind::Files => {
            let f = &erp.files;
            let remote = f.sftp.host.is_some();
            for (key, value, why) in [
                (
                    "erp.files.outbox",
                    &f.outbox,
                    "where each mapped invoice is written",
                ),
                (
                    "erp.files.inbox",
                    &f.inbox,
                    "where the ERP's result files are read",
                ),
            ] {
                if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                    problem(key, format!("required when erp.kind = \"files\": {why}"));
                }
            }
            if remote {
                for (key, value) in [
                    ("erp.files.outbox", &f.outbox),
                    ("erp.files.inbox", &f.inbox),
                    ("erp.files.payments_inbox", &f.payments_inbox),
                ] {
                    if value.as_deref().is_some_and(|v| !v.starts_with('/')) {
                        problem(
                            key,
                            "expected an absolute path on the SFTP server (erp.files.sftp.host \
                             is set)"
                                .into(),
                        );
                    }
                }
            }
            sftp_server(
                problem,
                &ERP_SFTP,
                &f.sftp,
                remote.then_some("required when erp.files.sftp.host is set"),
            );
        }
    }
}

//! Tests of loading, overriding, validating and printing the configuration. No test touches
//! the process environment: each passes its own variables.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use super::*;

const FILE: &str = "coupa-bridge.toml";

const MINIMAL: &str = r#"
[coupa]
base_url = "https://acme.coupahost.com"
client_id = "coupa-bridge"
"#;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn secret_env() -> Vec<(String, String)> {
    env(&[("COUPA_BRIDGE__COUPA__CLIENT_SECRET", "s3cret")])
}

fn load(text: &str, vars: Vec<(String, String)>) -> Result<LoadedConfig, ConfigError> {
    Config::load_str(text, Path::new(FILE), vars)
}

fn loaded(text: &str, vars: Vec<(String, String)>) -> LoadedConfig {
    match load(text, vars) {
        Ok(loaded) => loaded,
        Err(e) => panic!("expected a valid config, got: {e}"),
    }
}

fn problems(text: &str, vars: Vec<(String, String)>) -> Vec<Problem> {
    match load(text, vars) {
        Ok(_) => panic!("expected an invalid config"),
        Err(ConfigError::Invalid { problems, .. }) => problems,
        Err(e) => panic!("expected ConfigError::Invalid, got: {e}"),
    }
}

fn lines(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

#[test]
fn defaults_fill_everything_but_the_instance_and_credentials() {
    let config = loaded(MINIMAL, secret_env()).config;
    let coupa = &config.coupa;
    assert_eq!(coupa.base_url, "https://acme.coupahost.com");
    assert_eq!(coupa.client_id.as_deref(), Some("coupa-bridge"));
    assert_eq!(
        coupa.client_secret.as_ref().map(|s| s.expose_secret()),
        Some("s3cret")
    );
    assert!(coupa.api_key.is_none());
    assert_eq!(coupa.scopes, coupa_api::auth::FLOW_SCOPES);
    assert!(!coupa.basic_auth);
    assert_eq!(coupa.format, coupa_api::Format::Json);
    assert_eq!(coupa.requests_per_second, 20.0);
    assert_eq!(coupa.burst, 10);
    assert_eq!(coupa.timeout_secs, 60);
    assert_eq!(config.state.url, "sqlite://coupa-bridge.db");
    assert_eq!(config.erp.kind, ErpKind::Sql);
    assert_eq!(config.erp.url, "sqlite://erp.db");
    assert_eq!(config.invoices.statuses, ["approved", "voided"]);
    assert_eq!(config.invoices.monitoring, Monitoring::Runs);
    assert_eq!(config.invoices.integration_code, "ERP-INVOICES");
    assert_eq!(config.invoices.erp_number_field, "cf-erp-invoice-number");
    assert_eq!(config.invoices.status_field, "cf-integration-status");
    assert_eq!(config.invoices.concurrency, 4);
    assert_eq!(config.payments.transport, PaymentTransport::Api);
    let sftp = &config.payments.sftp;
    assert_eq!(sftp.port, 22);
    assert_eq!(sftp.incoming_dir, "/Incoming/InvoicePayments");
    assert!(sftp.host.is_none() && sftp.username.is_none() && sftp.host_key.is_none());
    assert!(sftp.password.is_none() && sftp.private_key_path.is_none());
    assert_eq!(
        config.pay_payments.statuses,
        ["completed_successfully", "completed_with_errors"]
    );
    assert_eq!(
        config.pay_payments.pay_to_account_type_filter(),
        Some("CoupaPay::SupplierPaymentAccount")
    );
    assert!(config.pay_payments.issuing_bank.is_none());
}

#[test]
fn empty_pay_to_account_type_means_no_filter() {
    let text = format!("{MINIMAL}\n[pay_payments]\npay_to_account_type = \"\"\n");
    let config = loaded(&text, secret_env()).config;
    assert_eq!(config.pay_payments.pay_to_account_type_filter(), None);
}

#[test]
fn every_file_value_is_read() {
    let text = r#"
[coupa]
base_url = "https://acme.coupahost.com/"
client_id = "id"
client_secret = "from-file"
scopes = ["core.invoice.read"]
basic_auth = true
format = "xml"
requests_per_second = 2.5
burst = 3
timeout_secs = 30

[state]
url = "postgres://bridge@db/bridge"

[erp]
kind = "sql"
url = "sqlite:///var/lib/erp.db"

[invoices]
statuses = ["approved"]
monitoring = "custom-fields"
integration_code = "X"
erp_number_field = "cf-a"
status_field = "cf-b"
concurrency = 8

[payments]
transport = "csv"

[payments.sftp]
host = "sftp.example.com"
port = 2222
username = "acme"
private_key_path = "/keys/id_ed25519"
host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEjUQiFcREiAqIwDD3El"
incoming_dir = "/In"

[pay_payments]
statuses = ["completed_successfully"]
pay_to_account_type = "CoupaPay::EmployeePaymentAccount"
issuing_bank = "Bank A"
"#;
    let config = loaded(text, Vec::new()).config;
    assert_eq!(config.coupa.format, coupa_api::Format::Xml);
    assert!(config.coupa.basic_auth);
    assert_eq!(config.coupa.requests_per_second, 2.5);
    assert_eq!(config.invoices.monitoring, Monitoring::CustomFields);
    assert_eq!(config.invoices.concurrency, 8);
    assert_eq!(config.payments.transport, PaymentTransport::Csv);
    assert_eq!(config.payments.sftp.port, 2222);
    assert_eq!(
        config.payments.sftp.private_key_path.as_deref(),
        Some(Path::new("/keys/id_ed25519"))
    );
    assert_eq!(config.pay_payments.issuing_bank.as_deref(), Some("Bank A"));

    let client = config.coupa_client_config();
    assert_eq!(client.base_url, "https://acme.coupahost.com");
    assert_eq!(client.format, coupa_api::Format::Xml);
    let rate = client.rate.expect("a rate governor");
    assert_eq!(rate.per_second, 2.5);
    assert_eq!(rate.burst, 3);
    assert_eq!(client.http.timeout, std::time::Duration::from_secs(30));
    match client.credentials {
        coupa_api::auth::Credentials::OAuth {
            client_id,
            client_secret,
            scopes,
            basic_auth,
        } => {
            assert_eq!(client_id, "id");
            assert_eq!(client_secret.expose_secret(), "from-file");
            assert_eq!(scopes, ["core.invoice.read"]);
            assert!(basic_auth);
        }
        other => panic!("expected OAuth credentials, got {other:?}"),
    }
}

#[test]
fn env_overrides_each_type() {
    let vars = env(&[
        ("COUPA_BRIDGE__COUPA__CLIENT_SECRET", "s3cret\n"),
        ("COUPA_BRIDGE__COUPA__BASIC_AUTH", "true"),
        ("COUPA_BRIDGE__COUPA__REQUESTS_PER_SECOND", "12.5"),
        ("COUPA_BRIDGE__COUPA__BURST", "7"),
        ("COUPA_BRIDGE__COUPA__FORMAT", "xml"),
        (
            "COUPA_BRIDGE__COUPA__SCOPES",
            r#"["core.invoice.read", "core.common.read"]"#,
        ),
        (
            "COUPA_BRIDGE__INVOICES__STATUSES",
            "approved, voided ,pending_receipt",
        ),
        ("COUPA_BRIDGE__INVOICES__MONITORING", "history"),
        // Names are case-insensitive.
        ("coupa_bridge__invoices__concurrency", "2"),
        ("COUPA_BRIDGE__PAYMENTS__SFTP__HOST", "sftp.acme.test"),
        ("COUPA_BRIDGE__PAYMENTS__SFTP__PORT", "2222"),
        ("COUPA_BRIDGE__PAY_PAYMENTS__PAY_TO_ACCOUNT_TYPE", ""),
        // Not ours: ignored.
        ("COUPA_BRIDGE_LOG", "debug"),
        ("PATH", "/usr/bin"),
    ]);
    let config = loaded(MINIMAL, vars).config;
    assert_eq!(
        config
            .coupa
            .client_secret
            .as_ref()
            .map(|s| s.expose_secret()),
        Some("s3cret"),
        "a trailing newline is not part of a secret"
    );
    assert!(config.coupa.basic_auth);
    assert_eq!(config.coupa.requests_per_second, 12.5);
    assert_eq!(config.coupa.burst, 7);
    assert_eq!(config.coupa.format, coupa_api::Format::Xml);
    assert_eq!(
        config.coupa.scopes,
        ["core.invoice.read", "core.common.read"]
    );
    assert_eq!(
        config.invoices.statuses,
        ["approved", "voided", "pending_receipt"]
    );
    assert_eq!(config.invoices.monitoring, Monitoring::History);
    assert_eq!(config.invoices.concurrency, 2);
    assert_eq!(config.payments.sftp.host.as_deref(), Some("sftp.acme.test"));
    assert_eq!(config.payments.sftp.port, 2222);
    assert_eq!(config.pay_payments.pay_to_account_type_filter(), None);
}

#[test]
fn env_overrides_win_over_the_file() {
    let text = format!("{MINIMAL}\n[invoices]\nconcurrency = 16\n");
    let loaded = loaded(
        &text,
        env(&[
            ("COUPA_BRIDGE__COUPA__CLIENT_SECRET", "s"),
            ("COUPA_BRIDGE__INVOICES__CONCURRENCY", "3"),
            ("COUPA_BRIDGE__COUPA__BASE_URL", "http://127.0.0.1:8080"),
            ("COUPA_BRIDGE__COUPA__INSECURE_HTTP_SIMULATOR_ONLY", "true"),
        ]),
    );
    assert_eq!(loaded.config.invoices.concurrency, 3);
    assert!(loaded.config.coupa.insecure_http_simulator_only);
    assert_eq!(loaded.config.coupa.base_url, "http://127.0.0.1:8080");
}

#[test]
fn env_values_of_the_wrong_type_name_the_variable() {
    let found = lines(&problems(
        MINIMAL,
        env(&[
            ("COUPA_BRIDGE__COUPA__CLIENT_SECRET", "s"),
            ("COUPA_BRIDGE__COUPA__BURST", "ten"),
            ("COUPA_BRIDGE__COUPA__BASIC_AUTH", "yes please"),
            ("COUPA_BRIDGE__COUPA__FORMAT", "yaml"),
            ("COUPA_BRIDGE__COUPA__REQUESTS_PER_SECOND", "-1"),
            ("COUPA_BRIDGE__PAYMENTS__SFTP__PORT", "70000"),
        ]),
    ));
    assert_eq!(
        found,
        [
            "COUPA_BRIDGE__COUPA__BASIC_AUTH: coupa.basic_auth: expected true or false, found \"yes please\"",
            "COUPA_BRIDGE__COUPA__BURST: coupa.burst: expected an integer from 1 to 4294967295, found \"ten\"",
            "COUPA_BRIDGE__COUPA__FORMAT: coupa.format: expected \"json\" or \"xml\", found \"yaml\"",
            "COUPA_BRIDGE__COUPA__REQUESTS_PER_SECOND: coupa.requests_per_second: expected a number above 0, found \"-1\"",
            "COUPA_BRIDGE__PAYMENTS__SFTP__PORT: payments.sftp.port: expected an integer from 1 to 65535, found \"70000\"",
        ]
    );
}

#[test]
fn an_env_variable_for_an_unknown_key_is_an_error_naming_it() {
    let found = problems(
        MINIMAL,
        env(&[
            ("COUPA_BRIDGE__COUPA__CLIENT_SECRET", "s"),
            ("COUPA_BRIDGE__COUPA__CLINET_ID", "x"),
            ("COUPA_BRIDGE__PAYMENT__TRANSPORT", "csv"),
            ("COUPA_BRIDGE__INVOICES", "x"),
        ]),
    );
    let text = lines(&found);
    assert_eq!(text.len(), 3, "{text:#?}");
    assert!(
        text[0].starts_with(
            "COUPA_BRIDGE__COUPA__CLINET_ID: unknown key `coupa.clinet_id`, expected one of `base_url`, `insecure_http_simulator_only`, `client_id`"
        ),
        "{}",
        text[0]
    );
    assert!(
        text[0].ends_with("(did you mean `client_id`?)"),
        "{}",
        text[0]
    );
    assert!(
        text[1].starts_with("COUPA_BRIDGE__INVOICES: names the section [invoices], not a key"),
        "{}",
        text[1]
    );
    assert!(
        text[2].starts_with(
            "COUPA_BRIDGE__PAYMENT__TRANSPORT: unknown key `payment.transport`: there is no section [payment]"
        ),
        "{}",
        text[2]
    );
    assert_eq!(
        found[0].origin,
        Some(Origin::Env("COUPA_BRIDGE__COUPA__CLINET_ID".into()))
    );
}

#[test]
fn an_unknown_key_in_the_file_is_named_with_its_line() {
    let text = "[coupa]\nbase_url = \"https://acme.coupahost.com\"\nclinet_id = \"x\"\n";
    let found = problems(text, secret_env());
    let unknown = found
        .iter()
        .find(|p| p.key.is_none())
        .expect("the unknown key is reported");
    assert_eq!(
        unknown.origin,
        Some(Origin::File {
            path: PathBuf::from(FILE),
            line: 3
        })
    );
    let shown = unknown.to_string();
    assert!(
        shown.starts_with(
            "coupa-bridge.toml:3: unknown field `clinet_id`, expected one of `base_url`, `insecure_http_simulator_only`, `client_id`, `client_secret`"
        ),
        "{shown}"
    );
    assert!(shown.contains("(did you mean `client_id`?)"), "{shown}");
}

#[test]
fn an_unknown_section_and_a_misplaced_key_are_named_with_their_lines() {
    let text =
        format!("{MINIMAL}\n[invoice]\nstatuses = []\n\n[payments.sftp]\ntransport = \"csv\"\n");
    let found = lines(&problems(&text, secret_env()));
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0]
            .starts_with("coupa-bridge.toml:6: unknown field `invoice`, expected one of `coupa`"),
        "{}",
        found[0]
    );
    assert!(
        found[1]
            .starts_with("coupa-bridge.toml:10: unknown field `transport`, expected one of `host`"),
        "{}",
        found[1]
    );
}

#[test]
fn a_value_of_the_wrong_type_in_the_file_is_named_with_key_and_line() {
    let text = format!("{MINIMAL}burst = \"ten\"\nclient_secret = 12345\n");
    let found = lines(&problems(&text, Vec::new()));
    assert_eq!(
        found,
        [
            "coupa-bridge.toml:5: coupa.burst: expected an integer from 1 to 4294967295, found \"ten\"",
            "coupa-bridge.toml:6: coupa.client_secret: expected a string (a secret: the value is not shown)",
        ]
    );
}

#[test]
fn a_syntax_error_names_the_line() {
    let text = "[coupa]\nbase_url = \"https://acme.coupahost.com\"\nclient_id = coupa-bridge\n";
    match load(text, secret_env()) {
        Err(ConfigError::Syntax { line, message, .. }) => {
            assert_eq!(line, 3, "{message}");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    let shown = load(text, secret_env())
        .expect_err("a syntax error")
        .to_string();
    assert!(shown.starts_with("coupa-bridge.toml:3:"), "{shown}");
}

#[test]
fn a_missing_file_says_what_was_looked_for_and_how_to_create_one() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("coupa-bridge.toml");
    let err = Config::load(&path, secret_env()).expect_err("no file, no base_url");
    assert!(matches!(err, ConfigError::NotFound { .. }), "{err:?}");
    let shown = err.to_string();
    assert!(shown.contains(&path.display().to_string()), "{shown}");
    assert!(shown.contains("coupa-bridge.example.toml"), "{shown}");
    assert!(shown.contains("COUPA_BRIDGE__COUPA__BASE_URL"), "{shown}");
}

#[test]
fn a_missing_file_is_fine_when_the_environment_configures_everything() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("coupa-bridge.toml");
    let loaded = Config::load(
        &path,
        env(&[
            (
                "COUPA_BRIDGE__COUPA__BASE_URL",
                "https://acme.coupahost.com",
            ),
            ("COUPA_BRIDGE__COUPA__CLIENT_ID", "id"),
            ("COUPA_BRIDGE__COUPA__CLIENT_SECRET", "s"),
        ]),
    )
    .expect("configured from the environment");
    assert_eq!(loaded.config.coupa.base_url, "https://acme.coupahost.com");
    assert_eq!(loaded.sources["coupa.burst"], Source::Default);
}

#[test]
fn credentials_need_exactly_one_of_oauth_or_an_api_key() {
    let base = "[coupa]\nbase_url = \"https://acme.coupahost.com\"\n";
    let none = lines(&problems(base, Vec::new()));
    assert_eq!(none.len(), 1, "{none:#?}");
    assert!(
        none[0].starts_with(
            "coupa.client_id: no Coupa credentials: set coupa.client_id and coupa.client_secret"
        ),
        "{}",
        none[0]
    );

    let id_only = lines(&problems(MINIMAL, Vec::new()));
    assert_eq!(
        id_only,
        [
            "coupa.client_secret: required with coupa.client_id (set it in the file or through COUPA_BRIDGE__COUPA__CLIENT_SECRET)"
        ]
    );

    let secret_only = lines(&problems(base, secret_env()));
    assert_eq!(
        secret_only,
        ["coupa.client_id: required with coupa.client_secret"]
    );

    let both = lines(&problems(
        MINIMAL,
        env(&[
            ("COUPA_BRIDGE__COUPA__CLIENT_SECRET", "s"),
            ("COUPA_BRIDGE__COUPA__API_KEY", "k"),
        ]),
    ));
    assert_eq!(
        both,
        [
            "COUPA_BRIDGE__COUPA__API_KEY: coupa.api_key: set either coupa.api_key or coupa.client_id + coupa.client_secret, not both"
        ]
    );

    let empty_secret = lines(&problems(
        MINIMAL,
        env(&[("COUPA_BRIDGE__COUPA__CLIENT_SECRET", "  ")]),
    ));
    assert_eq!(
        empty_secret,
        ["COUPA_BRIDGE__COUPA__CLIENT_SECRET: coupa.client_secret: must not be empty"]
    );
}

#[test]
fn an_api_key_works_with_a_deprecation_warning() {
    let base = "[coupa]\nbase_url = \"https://acme.coupahost.com\"\n";
    let with_key = loaded(base, env(&[("COUPA_BRIDGE__COUPA__API_KEY", "legacy-key")]));
    assert_eq!(with_key.warnings.len(), 1, "{:?}", with_key.warnings);
    let warning = &with_key.warnings[0];
    assert!(warning.starts_with("coupa.api_key: "), "{warning}");
    assert!(
        warning.contains("R35 (January 2023)") && warning.contains("OAuth2 client"),
        "the warning names Coupa's OAuth deadline and the fix: {warning}"
    );
    assert!(!warning.contains("legacy-key"));
    match with_key.config.coupa_client_config().credentials {
        coupa_api::auth::Credentials::ApiKey(key) => assert_eq!(key.expose_secret(), "legacy-key"),
        other => panic!("expected the API key, got {other:?}"),
    }
    assert!(loaded(MINIMAL, secret_env()).warnings.is_empty());
}

#[test]
fn csv_transport_needs_the_sftp_server_and_a_pinned_host_key() {
    let text = format!("{MINIMAL}\n[payments]\ntransport = \"csv\"\n");
    let found = lines(&problems(&text, secret_env()));
    assert_eq!(found.len(), 4, "{found:#?}");
    assert_eq!(
        found[0],
        "payments.sftp.host: required when payments.transport = \"csv\""
    );
    assert_eq!(
        found[1],
        "payments.sftp.username: required when payments.transport = \"csv\""
    );
    assert!(
        found[2].starts_with("payments.sftp.host_key: required when payments.transport = \"csv\""),
        "{}",
        found[2]
    );
    assert!(
        found[3].starts_with("payments.sftp.password: required when payments.transport = \"csv\", or payments.sftp.private_key_path"),
        "{}",
        found[3]
    );

    let complete = format!(
        "{text}\n[payments.sftp]\nhost = \"sftp.coupahost.com\"\nusername = \"acme\"\n\
         host_key = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEjUQiFcREiAqIwDD3El\"\n"
    );
    let loaded = loaded(
        &complete,
        env(&[
            ("COUPA_BRIDGE__COUPA__CLIENT_SECRET", "s"),
            ("COUPA_BRIDGE__PAYMENTS__SFTP__PASSWORD", "pw"),
        ]),
    );
    assert_eq!(loaded.config.payments.transport, PaymentTransport::Csv);

    let bad_key = format!("{complete}private_key_path = \"k\"\n").replace(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEjUQiFcREiAqIwDD3El",
        "AAAA",
    );
    let found = lines(&problems(&bad_key, secret_env()));
    assert_eq!(
        found,
        [
            "coupa-bridge.toml:12: payments.sftp.host_key: expected an OpenSSH public key line: \"ssh-ed25519 AAAA...\""
        ]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
[coupa]
base_url = "acme.coupahost.com"
clinet_id = "x"
burst = 0

[invoices]
statuses = []

[payments]
transport = "csv"
"#;
    let found = lines(&problems(
        text,
        env(&[
            ("COUPA_BRIDGE__COUPA__CLIENT_SECRET", "s"),
            ("COUPA_BRIDGE__ERP__KIND", "sap"),
            ("COUPA_BRIDGE__STATE__URLL", "x"),
        ]),
    ));
    let expected_starts = [
        "coupa-bridge.toml:4: unknown field `clinet_id`",
        "coupa-bridge.toml:5: coupa.burst: expected an integer from 1",
        "COUPA_BRIDGE__ERP__KIND: erp.kind: expected \"sql\", \"http\" or \"files\", found \"sap\"",
        "COUPA_BRIDGE__STATE__URLL: unknown key `state.urll`, expected one of `url`",
        "coupa-bridge.toml:3: coupa.base_url: expected an https:// URL",
        "coupa.client_id: required with coupa.client_secret",
        "coupa-bridge.toml:8: invoices.statuses: must list at least one status",
        "payments.sftp.host: required",
        "payments.sftp.username: required",
        "payments.sftp.host_key: required",
        "payments.sftp.password: required",
    ];
    assert_eq!(found.len(), expected_starts.len(), "{found:#?}");
    for (line, start) in found.iter().zip(expected_starts) {
        assert!(
            line.starts_with(start),
            "{line:?} should start with {start:?}"
        );
    }
    let all = load(text, secret_env()).expect_err("invalid").to_string();
    assert!(
        all.starts_with("invalid configuration (coupa-bridge.toml, 9 problems):\n  coupa-bridge.toml:4: unknown field"),
        "{all}"
    );
}

#[test]
fn provenance_names_the_file_the_variable_or_the_default() {
    let loaded = loaded(MINIMAL, secret_env());
    assert_eq!(
        loaded.sources["coupa.base_url"],
        Source::File(PathBuf::from(FILE))
    );
    assert_eq!(
        loaded.sources["coupa.client_secret"],
        Source::Env("COUPA_BRIDGE__COUPA__CLIENT_SECRET".into())
    );
    assert_eq!(loaded.sources["coupa.burst"], Source::Default);
    assert_eq!(loaded.sources["coupa.api_key"], Source::Default);
    let paths: BTreeSet<&str> = loaded.sources.keys().map(String::as_str).collect();
    assert_eq!(paths, key_paths().collect::<BTreeSet<_>>());
}

#[test]
fn the_printout_redacts_every_secret_and_names_sources() {
    let text = format!(
        "{MINIMAL}\n[state]\nurl = \"postgres://bridge:db-pass-9@db:5432/bridge?sslmode=require&password=db-pass-9\"\n\n\
         [payments.sftp]\npassword = \"sftp-pass-7\"\n"
    );
    let loaded = loaded(
        &text,
        env(&[("COUPA_BRIDGE__COUPA__CLIENT_SECRET", "supersecret-123")]),
    );
    let shown = loaded.render();
    for secret in ["supersecret-123", "sftp-pass-7", "db-pass-9"] {
        assert!(!shown.contains(secret), "{secret} leaked:\n{shown}");
        assert!(
            !format!("{loaded:?}").contains(secret),
            "{secret} leaked by Debug"
        );
    }
    let line_of = |key: &str| {
        shown
            .lines()
            .find(|l| l.starts_with(&format!("{key} =")) || l.starts_with(&format!("# {key}")))
            .unwrap_or_else(|| panic!("no line for {key}:\n{shown}"))
            .to_owned()
    };
    let secret_line = line_of("coupa.client_secret");
    assert!(
        secret_line.starts_with("coupa.client_secret = \"[redacted]\""),
        "{secret_line}"
    );
    assert!(
        secret_line.ends_with("# from env COUPA_BRIDGE__COUPA__CLIENT_SECRET"),
        "{secret_line}"
    );
    assert!(
        line_of("payments.sftp.password").starts_with("payments.sftp.password = \"[redacted]\""),
        "{shown}"
    );
    assert!(
        line_of("state.url").starts_with(
            "state.url = \"postgres://bridge:[redacted]@db:5432/bridge?sslmode=require&password=[redacted]\""
        ),
        "{shown}"
    );
    assert!(line_of("coupa.base_url").ends_with("# from file coupa-bridge.toml"));
    assert!(line_of("coupa.burst").starts_with("coupa.burst = 10 "));
    assert!(line_of("coupa.burst").ends_with("# from default"));
    let unset = line_of("coupa.api_key");
    assert!(
        unset.starts_with("# coupa.api_key ") && unset.ends_with("(not set)"),
        "{unset}"
    );
    // The printout is TOML: it parses back to the same values (secrets aside).
    let reparsed: toml::Table = toml::from_str(&shown).expect("the printout is TOML");
    assert_eq!(reparsed["invoices"]["concurrency"].as_integer(), Some(4));
}

#[test]
fn relative_sqlite_paths_are_taken_from_the_config_files_folder() {
    let text = format!(
        "{MINIMAL}\n[erp]\nurl = \"sqlite:/var/erp.db\"\n[payments.sftp]\nprivate_key_path = \"keys/id\"\n"
    );
    let config = Config::load_str(
        &text,
        Path::new("/etc/bridge/coupa-bridge.toml"),
        secret_env(),
    )
    .expect("valid")
    .config;
    assert_eq!(config.state.url, "sqlite:///etc/bridge/coupa-bridge.db");
    assert_eq!(config.erp.url, "sqlite:/var/erp.db");
    assert_eq!(
        config.payments.sftp.private_key_path.as_deref(),
        Some(Path::new("/etc/bridge/keys/id"))
    );
    let dir = Path::new("/d");
    assert_eq!(
        load::resolve_sqlite_url("sqlite::memory:", dir),
        "sqlite::memory:"
    );
    assert_eq!(
        load::resolve_sqlite_url("sqlite:x.db?mode=rwc", dir),
        "sqlite:/d/x.db?mode=rwc"
    );
    assert_eq!(
        load::resolve_sqlite_url("postgres://h/db", dir),
        "postgres://h/db"
    );
    // A config named without a folder keeps paths as written (relative to the working folder).
    assert_eq!(
        loaded(MINIMAL, secret_env()).config.state.url,
        "sqlite://coupa-bridge.db"
    );
}

/// The key list that drives env overrides and provenance is exactly the typed tree's keys.
#[test]
fn the_schema_lists_exactly_the_keys_of_the_typed_tree() {
    let mut config = Config::default();
    config.coupa.client_id = Some("id".into());
    config.coupa.client_secret = Some(SecretString::from("s"));
    config.coupa.api_key = Some(SecretString::from("k"));
    config.payments.sftp.host = Some("h".into());
    config.payments.sftp.username = Some("u".into());
    config.payments.sftp.password = Some(SecretString::from("p"));
    config.payments.sftp.private_key_path = Some("k".into());
    config.payments.sftp.host_key =
        Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEjUQiFcREiAqIwDD3El".into());
    config.pay_payments.issuing_bank = Some("b".into());
    config.erp.mapping = Some("erp-mapping.toml".into());
    let http = &mut config.erp.http;
    http.invoices_url = Some("https://erp.example.com/invoices".into());
    http.cancel_url = Some("https://erp.example.com/invoices/{coupa_invoice_id}/cancel".into());
    http.pay_payments_url = Some("https://erp.example.com/pay".into());
    http.payments_url = Some("https://erp.example.com/payments".into());
    http.token = Some(SecretString::from("t"));
    http.username = Some("u".into());
    http.password = Some(SecretString::from("p"));
    http.hmac_secret = Some(SecretString::from("h"));
    let files = &mut config.erp.files;
    files.outbox = Some("/out".into());
    files.inbox = Some("/in".into());
    files.payments_inbox = Some("/pay".into());
    files.sftp = config.payments.sftp.clone();
    config.notify.dashboard_url = Some("https://bridge.example.com".into());
    config.notify.email.host = Some("smtp.example.com".into());
    config.notify.email.username = Some("u".into());
    config.notify.email.password = Some(SecretString::from("p"));
    config.notify.webhook.url = Some("https://hooks.example.com/x".into());
    config.notify.webhook.secret = Some(SecretString::from("w"));
    config.server.token = Some(SecretString::from("t"));
    let tree = toml::Value::try_from(&config).expect("serializable");
    fn leaves(value: &toml::Value, prefix: &str, out: &mut BTreeSet<String>) {
        match value {
            toml::Value::Table(table) => {
                for (k, v) in table {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(v, &path, out);
                }
            }
            _ => {
                out.insert(prefix.to_owned());
            }
        }
    }
    let mut found = BTreeSet::new();
    leaves(&tree, "", &mut found);
    let schema: BTreeSet<String> = key_paths().map(str::to_owned).collect();
    assert_eq!(found, schema);
    // A full tree written out as TOML loads back (a mapping needs an external ERP).
    config.coupa.api_key = None;
    config.erp.mapping = None;
    config.coupa.base_url = "https://acme.coupahost.com".into();
    config.notify.email.from = "bridge@example.com".into();
    config.notify.email.to = vec!["ap@example.com".into()];
    let text = toml::to_string(&config).expect("serializable");
    let back = loaded(&text, Vec::new()).config;
    assert_eq!(back.payments.sftp.host.as_deref(), Some("h"));
    assert_eq!(back.invoices.statuses, config.invoices.statuses);
}

#[test]
fn operations_sections_are_checked_with_their_lines() {
    let text = format!(
        "{MINIMAL}\n[schedule]\ninvoices = \"every hour\"\npayments = \"\"\n\n\
         [notify.email]\nhost = \"smtp.example.com\"\nfrom = \"nobody\"\nto = []\n\n\
         [notify.webhook]\nurl = \"hooks.example.com\"\n\n[server]\nlisten = \"0.0.0.0:8080\"\n"
    );
    let found = lines(&problems(&text, secret_env()));
    let expect = [
        "coupa-bridge.toml:7: schedule.invoices: invalid cron expression \"every hour\"",
        "coupa-bridge.toml:12: notify.email.from: required when notify.email.host is set",
        "coupa-bridge.toml:13: notify.email.to: required when notify.email.host is set",
        "coupa-bridge.toml:16: notify.webhook.url: expected an http:// or https:// URL",
        "server.token: required when server.listen (0.0.0.0:8080) is not a loopback address",
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for (line, start) in found.iter().zip(expect) {
        assert!(line.contains(start), "{line:?} should contain {start:?}");
    }
    // A token makes the exposed address acceptable; an empty schedule turns a flow off.
    let ok = format!("{MINIMAL}\n[server]\nlisten = \"0.0.0.0:8080\"\n");
    let mut vars = secret_env();
    vars.extend(env(&[("COUPA_BRIDGE__SERVER__TOKEN", "tok")]));
    let config = loaded(&ok, vars).config;
    assert!(config.server.token.is_some());
}

/// Coupa is reached over https:// only; plain http:// needs the loudly named simulator switch,
/// and then every load says so.
#[test]
fn plain_http_needs_the_simulator_only_switch_and_is_then_a_warning() {
    let http = "[coupa]\nbase_url = \"http://127.0.0.1:8080\"\nclient_id = \"coupa-bridge\"\n";
    let found = lines(&problems(http, secret_env()));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with(
            "coupa-bridge.toml:2: coupa.base_url: \"http://127.0.0.1:8080\" is plain http://"
        ),
        "{found:#?}"
    );
    assert!(
        found[0].contains("coupa.insecure_http_simulator_only = true")
            && found[0].contains("simulator only"),
        "the message names the switch and what it is for: {found:#?}"
    );
    assert!(!found[0].contains("s3cret"));

    // The switch in the file or from the environment: loads, with the warning.
    let switched = format!("{http}insecure_http_simulator_only = true\n");
    for (text, vars) in [
        (switched.as_str(), secret_env()),
        (
            http,
            env(&[
                ("COUPA_BRIDGE__COUPA__CLIENT_SECRET", "s3cret"),
                ("COUPA_BRIDGE__COUPA__INSECURE_HTTP_SIMULATOR_ONLY", "true"),
            ]),
        ),
    ] {
        let loaded = loaded(text, vars);
        assert!(loaded.config.coupa.insecure_http_simulator_only);
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        let warning = &loaded.warnings[0];
        assert!(
            warning.starts_with(
                "coupa.insecure_http_simulator_only: plain HTTP to http://127.0.0.1:8080"
            ) && warning.contains("simulator only"),
            "{warning}"
        );
        let client = loaded.config.coupa_client_config();
        assert!(client.insecure_http_simulator_only);
        assert_eq!(
            client.max_response_bytes,
            coupa_api::DEFAULT_MAX_RESPONSE_BYTES
        );
    }

    // Off by default, and an https:// instance never needs it (set there, it is a warning to
    // remove it; it does not touch certificate verification).
    let secure = loaded(MINIMAL, secret_env());
    assert!(!secure.config.coupa.insecure_http_simulator_only);
    assert!(
        !secure
            .config
            .coupa_client_config()
            .insecure_http_simulator_only
    );
    let needless = loaded(
        &format!("{MINIMAL}insecure_http_simulator_only = true\n"),
        secret_env(),
    );
    assert_eq!(needless.warnings.len(), 1, "{:?}", needless.warnings);
    assert!(
        needless.warnings[0].contains("remove it"),
        "{:?}",
        needless.warnings
    );

    // Neither http nor https: refused, switch or not.
    for text in [
        "[coupa]\nbase_url = \"ftp://acme.coupahost.com\"\nclient_id = \"x\"\n",
        "[coupa]\nbase_url = \"ftp://acme\"\nclient_id = \"x\"\ninsecure_http_simulator_only = true\n",
    ] {
        let found = lines(&problems(text, secret_env()));
        assert!(
            found
                .iter()
                .any(|p| p.contains("coupa.base_url: expected an https:// URL")),
            "{found:#?}"
        );
    }
}

/// Whatever the config says, the client it builds refuses http:// without the switch: the
/// last line of defence for a tree built in code rather than loaded.
#[test]
fn a_client_for_plain_http_is_refused_without_the_switch() {
    let mut config = loaded(MINIMAL, secret_env()).config;
    config.coupa.base_url = "http://127.0.0.1:8080".into();
    let observer: std::sync::Arc<dyn coupa_api::observe::Observer> =
        std::sync::Arc::new(coupa_api::observe::Recorder::default());
    let err = coupa_api::Client::new(config.coupa_client_config(), observer.clone())
        .expect_err("plain http refused");
    let message = err.to_string();
    assert!(
        message.contains("insecure_http_simulator_only") && message.contains("simulator only"),
        "{message}"
    );
    assert_eq!(err.class(), coupa_api::ErrorClass::Permanent);
    config.coupa.insecure_http_simulator_only = true;
    assert!(coupa_api::Client::new(config.coupa_client_config(), observer).is_ok());
}

#[test]
fn an_external_erp_names_what_it_lacks_with_its_line() {
    let text = format!(
        "{MINIMAL}\n[erp]\nkind = \"http\"\n\n[erp.http]\nauth = \"bearer\"\n\
         cancel_url = \"erp.example.com/cancel\"\n"
    );
    let found = lines(&problems(&text, secret_env()));
    for needle in [
        "erp.http.invoices_url: required when erp.kind = \"http\"",
        "coupa-bridge.toml:11: erp.http.cancel_url: expected an http:// or https:// URL",
        "erp.http.pay_payments_url: required when pay_payments is enabled",
        "erp.http.token: required when erp.http.auth = \"bearer\"",
    ] {
        assert!(
            found.iter().any(|f| f.contains(needle)),
            "{needle} in {found:#?}"
        );
    }
    assert_eq!(found.len(), 4, "{found:#?}");

    let files = format!(
        "{MINIMAL}\n[erp]\nkind = \"files\"\n\n[erp.files]\noutbox = \"out\"\n\n\
         [erp.files.sftp]\nhost = \"sftp.erp.example.com\"\n"
    );
    let found = lines(&problems(&files, secret_env()));
    for needle in [
        "erp.files.inbox: required when erp.kind = \"files\"",
        "erp.files.outbox: expected an absolute path on the SFTP server",
        "erp.files.sftp.username: required when erp.files.sftp.host is set",
        "erp.files.sftp.host_key: required when erp.files.sftp.host is set",
        "erp.files.sftp.password: required when erp.files.sftp.host is set, or \
         erp.files.sftp.private_key_path",
    ] {
        assert!(
            found.iter().any(|f| f.contains(needle)),
            "{needle} in {found:#?}"
        );
    }
    // The outbox's problem is reported on its own line.
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("coupa-bridge.toml:10: erp.files.outbox")),
        "{found:#?}"
    );

    // A mapping is for external ERPs only.
    let sql = format!("{MINIMAL}\n[erp]\nmapping = \"erp-mapping.toml\"\n");
    let found = lines(&problems(&sql, secret_env()));
    assert!(
        found
            .iter()
            .any(|f| f.contains("erp.mapping: a mapping is for erp.kind")),
        "{found:#?}"
    );
}

#[test]
fn a_complete_http_erp_loads() {
    let text = format!(
        "{MINIMAL}\n[erp]\nkind = \"http\"\n\n[erp.http]\n\
         invoices_url = \"https://erp.example.com/invoices\"\n\
         cancel_url = \"https://erp.example.com/invoices/{{coupa_invoice_id}}/cancel\"\n\
         pay_payments_url = \"https://erp.example.com/pay\"\nauth = \"hmac\"\n"
    );
    let config = loaded(
        &text,
        env(&[
            ("COUPA_BRIDGE__COUPA__CLIENT_SECRET", "s3cret"),
            ("COUPA_BRIDGE__ERP__HTTP__HMAC_SECRET", "hm4c"),
        ]),
    )
    .config;
    assert_eq!(config.erp.kind, ErpKind::Http);
    assert_eq!(config.erp.http.auth, crate::config::HttpAuth::Hmac);
    assert_eq!(
        config
            .erp
            .http
            .hmac_secret
            .as_ref()
            .map(|s| s.expose_secret()),
        Some("hm4c")
    );
    assert!(!format!("{:?}", config.erp).contains("hm4c"));
}

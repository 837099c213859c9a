//! The connector's configuration: one typed tree, read from a TOML file, overridable key by key
//! from the environment, validated as a whole before anything runs.
//!
//! Layout: this file holds the tree ([`Config`] and one struct per section) and the helpers the
//! rest of the connector uses; `schema.rs` lists every key with its type (it drives environment
//! overrides, unknown-key errors and provenance); `load.rs` reads the file and the environment;
//! `validate.rs` checks the rules that span keys; `render.rs` prints the effective configuration
//! for `coupa-bridge config check`.
//!
//! Secrets (`coupa.client_secret`, `coupa.api_key`, `payments.sftp.password`) are
//! [`SecretString`]s: their `Debug` is redacted and serializing the tree writes
//! [`REDACTED`] in their place, so no printout of a `Config` can leak one.

mod load;
mod render;
mod schema;
mod tenants;
mod validate;

#[cfg(test)]
mod tenant_tests;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use coupa_api::Format;
use coupa_api::auth::Credentials;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// `invoices.monitoring`: the flow's own enum (`custom-fields` | `history` | `runs`), so the
/// setting needs no translation.
/// Seed 001's three ways of telling Coupa what happened to an exported invoice.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Monitoring {
    /// Option 1: ERP number and status in custom fields on the invoice.
    CustomFields,
    /// Option 2: integration history records, with an alert on failure.
    History,
    /// Option 3: an integration run per pass, history records and integration errors.
    #[default]
    Runs,
}

impl Monitoring {
    pub fn as_str(self) -> &'static str {
        match self {
            Monitoring::CustomFields => "custom-fields",
            Monitoring::History => "history",
            Monitoring::Runs => "runs",
        }
    }
}
pub use load::{ConfigError, LoadedConfig, Origin, Problem, Source, process_env};
pub use schema::key_paths;
pub use tenants::{DEFAULT_TENANT, Tenant};

/// Where `--config` points when it is not given.
pub const DEFAULT_PATH: &str = "coupa-bridge.toml";

/// Every environment override starts with this; `__` then separates the levels:
/// `COUPA_BRIDGE__PAYMENTS__SFTP__HOST` sets `payments.sftp.host`.
pub const ENV_PREFIX: &str = "COUPA_BRIDGE__";

/// What a secret looks like in any printout of the configuration.
pub const REDACTED: &str = "[redacted]";

/// The whole configuration. Every section may be left out; only `coupa.base_url` and the
/// credentials have no default.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The Coupa instance and how to talk to it.
    pub coupa: CoupaConfig,
    /// Where the connector keeps its own state (cursors, outcomes, pending acknowledgements).
    pub state: StateConfig,
    /// The ERP the documents go to and the payments come from.
    pub erp: ErpConfig,
    /// Invoice export (Coupa -> ERP).
    pub invoices: InvoicesConfig,
    /// Payment push (ERP -> Coupa invoices).
    pub payments: PaymentsConfig,
    /// Coupa Pay export (Coupa Pay payments -> ERP).
    pub pay_payments: PayPaymentsConfig,
    /// When `coupa-bridge run` starts each flow's pass.
    pub schedule: ScheduleConfig,
    /// The API call log (the seeds' logging engine).
    pub log: LogConfig,
    /// Who hears about failures, besides Coupa's own alerts.
    pub notify: NotifyConfig,
    /// The daemon's HTTP server: dashboard, `/metrics`, health, the ERP push endpoint.
    pub server: ServerConfig,
}

/// `[coupa]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoupaConfig {
    /// The instance, without `/api`: `https://acme.coupahost.com`. Required, and `https://`
    /// unless `insecure_http_simulator_only` is set.
    pub base_url: String,
    /// Accept an `http://` base_url: for the Coupa simulator only, never for a real instance
    /// (no TLS: the token and the documents cross the network in clear). Loading a config with
    /// it set is a warning, and so is starting a client. It never turns off certificate
    /// verification for `https://`: nothing does.
    pub insecure_http_simulator_only: bool,
    /// OAuth2 client id (Setup > OAuth2/OpenID Connect Clients, grant type client credentials).
    pub client_id: Option<String>,
    /// OAuth2 client secret; best set through `COUPA_BRIDGE__COUPA__CLIENT_SECRET`.
    #[serde(
        serialize_with = "serialize_redacted",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_secret: Option<SecretString>,
    /// Legacy `X-COUPA-API-KEY`, instead of `client_id` + `client_secret`. Coupa has deprecated
    /// API keys; loading a config that uses one produces a warning.
    #[serde(
        serialize_with = "serialize_redacted",
        skip_serializing_if = "Option::is_none"
    )]
    pub api_key: Option<SecretString>,
    /// OAuth2 scopes to ask for; defaults to the ones the three flows need
    /// ([`coupa_api::auth::FLOW_SCOPES`]). An empty list asks for every scope of the client.
    pub scopes: Vec<String>,
    /// Send the client id and secret as HTTP Basic instead of in the token request's form body.
    pub basic_auth: bool,
    /// Body format spoken with Coupa: `json` or `xml`.
    pub format: Format,
    /// Steady request rate, shared by every flow. Coupa publishes 25/s; 20 leaves headroom for
    /// other integrations on the same instance.
    pub requests_per_second: f64,
    /// Requests that may go at once after an idle spell (Coupa publishes bursts of 20).
    pub burst: u32,
    /// Whole-request timeout in seconds.
    pub timeout_secs: u64,
}

impl Default for CoupaConfig {
    fn default() -> Self {
        CoupaConfig {
            base_url: String::new(),
            insecure_http_simulator_only: false,
            client_id: None,
            client_secret: None,
            api_key: None,
            scopes: coupa_api::auth::FLOW_SCOPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            basic_auth: false,
            format: Format::Json,
            requests_per_second: 20.0,
            burst: 10,
            timeout_secs: 60,
        }
    }
}

/// `[state]`
#[derive(Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    /// `sqlite://FILE` or `postgres://...`. A relative SQLite path is taken relative to the
    /// config file's directory (see [`Config::load`]).
    pub url: String,
    /// `coupa-bridge run`: how long a replica's hold on a tenant lasts without renewal. When a
    /// replica dies, another takes its tenants over after at most this long.
    pub lease_secs: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            url: "sqlite://coupa-bridge.db".into(),
            lease_secs: 10,
        }
    }
}

// A database URL may carry a password: `Debug` shows it redacted.
impl std::fmt::Debug for StateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateConfig")
            .field("url", &redact_userinfo(&self.url))
            .field("lease_secs", &self.lease_secs)
            .finish()
    }
}

/// Which ERP adapter to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErpKind {
    /// The embedded reference ERP: an AP ledger in SQLite or Postgres (design.md section 2).
    #[default]
    Sql,
    /// An ERP's HTTP API (`[erp.http]`).
    Http,
    /// Files in an outbox and an inbox folder, local or over SFTP (`[erp.files]`).
    Files,
}

/// `[erp]`
#[derive(Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ErpConfig {
    /// `sql`, `http` or `files`.
    pub kind: ErpKind,
    /// For `sql`: the ERP's database, `sqlite://FILE` or `postgres://...`. For `http` and
    /// `files`: the local ledger (payments received from the ERP, waiting for Coupa; what was
    /// delivered to the ERP and its answers). A relative SQLite path is taken relative to the
    /// config file's directory.
    pub url: String,
    /// For `http` and `files`: the field mapping file (canonical model to the ERP's fields and
    /// formats); relative to the config file's directory. Without it the ERP gets the
    /// canonical JSON (`schemas/canonical.schema.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping: Option<PathBuf>,
    pub http: HttpErpConfig,
    pub files: FilesErpConfig,
}

impl Default for ErpConfig {
    fn default() -> Self {
        ErpConfig {
            kind: ErpKind::Sql,
            url: "sqlite://erp.db".into(),
            mapping: None,
            http: HttpErpConfig::default(),
            files: FilesErpConfig::default(),
        }
    }
}

impl std::fmt::Debug for ErpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErpConfig")
            .field("kind", &self.kind)
            .field("url", &redact_userinfo(&self.url))
            .field("mapping", &self.mapping)
            .field("http", &self.http)
            .field("files", &self.files)
            .finish()
    }
}

/// How the `http` adapter authenticates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpAuth {
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Authorization: Basic <username:password>`.
    Basic,
    /// Each request signed: HMAC-SHA256 of `<timestamp>.<body>` with `hmac_secret`.
    Hmac,
}

/// `[erp.http]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpErpConfig {
    /// Each mapped invoice is POSTed here. Required for `http`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoices_url: Option<String>,
    /// A voided invoice's cancellation is POSTed here; `{coupa_invoice_id}` is replaced. Required
    /// when `invoices.statuses` holds `voided`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_url: Option<String>,
    /// Each Coupa Pay payment is POSTed here. Required when `pay_payments` is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pay_payments_url: Option<String>,
    /// The ERP's payments are read from here with a cursor (`payments_cursor_param`); without
    /// it they are pushed to the daemon's `POST /api/erp/payments`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payments_url: Option<String>,
    /// The query parameter carrying the cursor on `payments_url`.
    pub payments_cursor_param: String,
    /// `none`, `bearer`, `basic` or `hmac`.
    pub auth: HttpAuth,
    /// For `bearer`; best set through `COUPA_BRIDGE__ERP__HTTP__TOKEN`.
    #[serde(
        serialize_with = "serialize_redacted",
        skip_serializing_if = "Option::is_none"
    )]
    pub token: Option<SecretString>,
    /// For `basic`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// For `basic`; best set through `COUPA_BRIDGE__ERP__HTTP__PASSWORD`.
    #[serde(
        serialize_with = "serialize_redacted",
        skip_serializing_if = "Option::is_none"
    )]
    pub password: Option<SecretString>,
    /// For `hmac`; best set through `COUPA_BRIDGE__ERP__HTTP__HMAC_SECRET`.
    #[serde(
        serialize_with = "serialize_redacted",
        skip_serializing_if = "Option::is_none"
    )]
    pub hmac_secret: Option<SecretString>,
    /// The header carrying the HMAC signature: `t=<unix seconds>,v1=<hex>`.
    pub hmac_header: String,
    /// The header carrying the idempotency key (the Coupa invoice id).
    pub idempotency_header: String,
    /// Each request's time limit; past it the request is transient (asked again next pass,
    /// with the same idempotency key).
    pub timeout_secs: u64,
}

impl Default for HttpErpConfig {
    fn default() -> Self {
        HttpErpConfig {
            invoices_url: None,
            cancel_url: None,
            pay_payments_url: None,
            payments_url: None,
            payments_cursor_param: "cursor".into(),
            auth: HttpAuth::None,
            token: None,
            username: None,
            password: None,
            hmac_secret: None,
            hmac_header: "X-Signature".into(),
            idempotency_header: "Idempotency-Key".into(),
            timeout_secs: 30,
        }
    }
}

/// `[erp.files]`
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesErpConfig {
    /// Folder the mapped invoices (and cancellations, Coupa Pay payments) are written to, each
    /// atomically. A local path (relative to the config file's directory), or a path on the
    /// SFTP server when `[erp.files.sftp]` names a host. Required for `files`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbox: Option<String>,
    /// Folder the ERP's result files are read from; each is moved to `processed/` under it
    /// once its answers are kept (`unreadable/` when it cannot be read). Required for `files`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbox: Option<String>,
    /// Folder the ERP's payment files are read from (moved to `processed/` once their payments
    /// are in the ledger); without it payments are pushed to the daemon's endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payments_inbox: Option<String>,
    /// The ERP's SFTP server, when the folders are remote: the server keys of
    /// `[payments.sftp]`; its folder and loader timeout are not keys here (the schema refuses
    /// them, and they are not printed).
    #[serde(serialize_with = "serialize_sftp_server")]
    pub sftp: SftpConfig,
}

/// An [`SftpConfig`] as a server only: without the payment loader's folder and timeout.
fn serialize_sftp_server<S: serde::Serializer>(
    sftp: &SftpConfig,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(None)?;
    if let Some(host) = &sftp.host {
        map.serialize_entry("host", host)?;
    }
    map.serialize_entry("port", &sftp.port)?;
    if let Some(username) = &sftp.username {
        map.serialize_entry("username", username)?;
    }
    if sftp.password.is_some() {
        map.serialize_entry("password", REDACTED)?;
    }
    if let Some(path) = &sftp.private_key_path {
        map.serialize_entry("private_key_path", path)?;
    }
    if let Some(key) = &sftp.host_key {
        map.serialize_entry("host_key", key)?;
    }
    map.end()
}

/// `[invoices]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct InvoicesConfig {
    /// Whether the flow runs at all: `sync all`, `run` and `doctor` leave a disabled flow out.
    pub enabled: bool,
    /// Coupa invoice statuses to export.
    pub statuses: Vec<String>,
    /// `custom-fields`, `history` or `runs`.
    pub monitoring: Monitoring,
    /// The Coupa integration's code (runs and history records are filed under it).
    pub integration_code: String,
    /// Invoice custom field receiving the ERP document number (`custom-fields` monitoring).
    pub erp_number_field: String,
    /// Invoice custom field receiving the integration status (`custom-fields` monitoring).
    pub status_field: String,
    /// Invoices processed in parallel; the shared rate governor still bounds Coupa calls.
    pub concurrency: usize,
    /// How long, in seconds, an invoice may wait for an ERP that answers later (`erp.kind =
    /// "files"`)
    /// before an alert is raised; it keeps waiting after.
    pub answer_deadline_secs: u64,
}

impl Default for InvoicesConfig {
    fn default() -> Self {
        InvoicesConfig {
            enabled: true,
            statuses: vec!["approved".into(), "voided".into()],
            monitoring: Monitoring::Runs,
            integration_code: "ERP-INVOICES".into(),
            erp_number_field: "cf-erp-invoice-number".into(),
            status_field: "cf-integration-status".into(),
            concurrency: 4,
            answer_deadline_secs: 4 * 3600,
        }
    }
}

/// How ERP payments reach Coupa (seed 000).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentTransport {
    /// `PUT /api/invoices/{id}` with the payment appended.
    #[default]
    Api,
    /// A CSV file dropped on Coupa's SFTP server for its payment loader.
    Csv,
}

/// `[payments]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsConfig {
    /// Whether the flow runs at all: `sync all`, `run` and `doctor` leave a disabled flow out.
    pub enabled: bool,
    /// `api` or `csv`.
    pub transport: PaymentTransport,
    /// The Coupa integration failures are reported under (an integration error with an alert
    /// to its contacts); created when missing.
    pub integration_code: String,
    /// Invoices written in parallel (`api`); the shared rate governor still bounds Coupa calls.
    pub concurrency: usize,
    /// Coupa's SFTP server, used when `transport = "csv"`.
    pub sftp: SftpConfig,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        PaymentsConfig {
            enabled: true,
            transport: PaymentTransport::Api,
            integration_code: "ERP-PAYMENTS".into(),
            concurrency: 4,
            sftp: SftpConfig::default(),
        }
    }
}

/// `[payments.sftp]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SftpConfig {
    /// Host name of Coupa's SFTP server. Required for `csv`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// SSH port.
    pub port: u16,
    /// SFTP user. Required for `csv`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password; best set through `COUPA_BRIDGE__PAYMENTS__SFTP__PASSWORD`. For `csv`, this or
    /// `private_key_path` is required.
    #[serde(
        serialize_with = "serialize_redacted",
        skip_serializing_if = "Option::is_none"
    )]
    pub password: Option<SecretString>,
    /// OpenSSH private key file; relative to the config file's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key_path: Option<PathBuf>,
    /// The server's public host key, pinned: `ssh-ed25519 AAAA...`. Required for `csv`: the
    /// connector never trusts a key on first use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    /// Folder the payment CSVs are uploaded to.
    pub incoming_dir: String,
    /// How long a pass waits for Coupa's loader to report on the files it uploaded (Coupa
    /// picks files up every 3 to 6 minutes). A file not reported on by then is followed by the
    /// next pass; its payments are never put in another file.
    pub result_timeout_secs: u64,
}

impl Default for SftpConfig {
    fn default() -> Self {
        SftpConfig {
            host: None,
            port: 22,
            username: None,
            password: None,
            private_key_path: None,
            host_key: None,
            incoming_dir: "/Incoming/InvoicePayments".into(),
            result_timeout_secs: 420,
        }
    }
}

/// `[pay_payments]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PayPaymentsConfig {
    /// Whether the flow runs at all: `sync all`, `run` and `doctor` leave a disabled flow out.
    pub enabled: bool,
    /// Coupa Pay payment statuses to export.
    pub statuses: Vec<String>,
    /// Only payments to this kind of pay-to account; empty exports every kind.
    pub pay_to_account_type: String,
    /// Only payments from this issuing bank, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuing_bank: Option<String>,
    /// The Coupa integration each pass opens its run under (history records, errors with
    /// alerts); created when missing.
    pub integration_code: String,
    /// Status changes after export are found by `updated-at` above the last pass's newest,
    /// less this overlap: Coupa may commit a change with an `updated-at` a little older than one
    /// already seen.
    pub overlap_secs: u64,
    /// Payments worked on at once; the shared rate governor still bounds Coupa calls.
    pub concurrency: usize,
}

impl Default for PayPaymentsConfig {
    fn default() -> Self {
        PayPaymentsConfig {
            enabled: true,
            statuses: vec![
                "completed_successfully".into(),
                "completed_with_errors".into(),
            ],
            pay_to_account_type: "CoupaPay::SupplierPaymentAccount".into(),
            issuing_bank: None,
            integration_code: "ERP-COUPA-PAY".into(),
            overlap_secs: 300,
            concurrency: 4,
        }
    }
}

impl PayPaymentsConfig {
    /// The pay-to account type to filter on, `None` when every kind is exported.
    pub fn pay_to_account_type_filter(&self) -> Option<&str> {
        let kind = self.pay_to_account_type.trim();
        (!kind.is_empty()).then_some(kind)
    }
}

/// `[schedule]`: cron expressions in UTC, five fields (minute precision) or six (a leading
/// seconds field). An empty string leaves the flow out of `coupa-bridge run`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Invoice export; hourly by default.
    pub invoices: String,
    /// Payment push; every 10 seconds by default, and at once when the ERP pushes payments.
    pub payments: String,
    /// Coupa Pay export; hourly by default, half an hour after the invoices.
    pub pay_payments: String,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            invoices: "0 * * * *".into(),
            payments: "*/10 * * * * *".into(),
            pay_payments: "30 * * * *".into(),
        }
    }
}

/// `[log]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Days the API call log keeps a call; older calls are pruned by the daemon and after each
    /// `sync`. 0 keeps every call.
    pub retention_days: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { retention_days: 30 }
    }
}

/// `[notify]`: email and a webhook, each off until configured. Problems are grouped: one message
/// when a problem starts, a reminder while it lasts, one when it is over.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Minutes between reminders while a problem lasts.
    pub reminder_minutes: u32,
    /// Link to the dashboard put in messages, when set (`https://bridge.example.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    pub email: EmailConfig,
    pub webhook: WebhookConfig,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            reminder_minutes: 60,
            dashboard_url: None,
            email: EmailConfig::default(),
            webhook: WebhookConfig::default(),
        }
    }
}

/// How the SMTP connection is secured: `notify.email.security`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or the tests' loopback server.
    None,
}

/// `[notify.email]`: off while `host` is unset.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub port: u16,
    pub security: SmtpSecurity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Best set through `COUPA_BRIDGE__NOTIFY__EMAIL__PASSWORD`.
    #[serde(
        serialize_with = "serialize_redacted",
        skip_serializing_if = "Option::is_none"
    )]
    pub password: Option<SecretString>,
    /// The sender, `coupa-bridge <bridge@example.com>`.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            host: None,
            port: 587,
            security: SmtpSecurity::Starttls,
            username: None,
            password: None,
            from: String::new(),
            to: Vec::new(),
        }
    }
}

/// `[notify.webhook]`: off while `url` is unset. The body is JSON with a Slack-compatible
/// `text`; with a `secret`, the header `X-Coupa-Bridge-Signature: sha256=<hex>` carries the
/// HMAC-SHA256 of the body.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Best set through `COUPA_BRIDGE__NOTIFY__WEBHOOK__SECRET`.
    #[serde(
        serialize_with = "serialize_redacted",
        skip_serializing_if = "Option::is_none"
    )]
    pub secret: Option<SecretString>,
}

/// `[server]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the daemon's HTTP server listens on. Anything but loopback requires `token`.
    pub listen: String,
    /// Required on every request but `/healthz` and `/readyz`, as `Authorization: Bearer
    /// <token>` (or as the password of HTTP Basic, for a browser), when set. Best set through
    /// `COUPA_BRIDGE__SERVER__TOKEN`.
    #[serde(
        serialize_with = "serialize_redacted",
        skip_serializing_if = "Option::is_none"
    )]
    pub token: Option<SecretString>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            token: None,
        }
    }
}

impl Config {
    /// Whether `flow` runs (`<section>.enabled`).
    pub fn enabled(&self, flow: crate::flows::FlowName) -> bool {
        use crate::flows::FlowName;
        match flow {
            FlowName::Invoices => self.invoices.enabled,
            FlowName::Payments => self.payments.enabled,
            FlowName::PayPayments => self.pay_payments.enabled,
        }
    }

    /// The flows that run, in `sync all`'s order.
    pub fn enabled_flows(&self) -> Vec<crate::flows::FlowName> {
        crate::flows::FlowName::ALL
            .into_iter()
            .filter(|f| self.enabled(*f))
            .collect()
    }

    /// The Coupa client's settings. Meant for a config that [`Config::load`] validated: OAuth2
    /// when `client_id` and `client_secret` are set, otherwise the API key; a config with
    /// neither yields empty OAuth2 credentials, which Coupa refuses.
    pub fn coupa_client_config(&self) -> coupa_api::ClientConfig {
        let coupa = &self.coupa;
        let credentials = match (&coupa.client_id, &coupa.client_secret, &coupa.api_key) {
            (Some(_), Some(_), _) | (_, _, None) => Credentials::OAuth {
                client_id: coupa.client_id.clone().unwrap_or_default(),
                client_secret: coupa.client_secret.clone().unwrap_or_default(),
                scopes: coupa.scopes.clone(),
                basic_auth: coupa.basic_auth,
            },
            (_, _, Some(key)) => Credentials::ApiKey(key.clone()),
        };
        coupa_api::ClientConfig {
            base_url: coupa.base_url.trim().trim_end_matches('/').to_owned(),
            credentials,
            format: coupa.format,
            rate: Some(coupa_api::rate::RateConfig {
                per_second: coupa.requests_per_second,
                burst: coupa.burst,
                ..Default::default()
            }),
            retry: coupa_api::retry::RetryPolicy::default(),
            http: coupa_api::transport::HttpSettings {
                timeout: Duration::from_secs(coupa.timeout_secs),
                ..Default::default()
            },
            insecure_http_simulator_only: coupa.insecure_http_simulator_only,
            max_response_bytes: coupa_api::DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// Writes [`REDACTED`] for a secret that is set; fields use it with
/// `skip_serializing_if = "Option::is_none"`.
fn serialize_redacted<S: serde::Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => serializer.serialize_str(REDACTED),
        None => serializer.serialize_none(),
    }
}

/// A URL as printed: `postgres://user:[redacted]@host/db` for `postgres://user:pw@host/db`, and
/// `?password=[redacted]`. A database URL may carry a password, which no printout shows.
pub(crate) fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{user}:{REDACTED}@{host}")
        }
        _ => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                        format!("{name}={REDACTED}")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

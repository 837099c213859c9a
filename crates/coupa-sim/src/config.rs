//! How a simulator is set up. Every field has a default that gives a Coupa-like instance.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::FixedOffset;

/// Settings of one simulated Coupa instance.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of the generated data: the same seed gives the same instance, byte for byte.
    pub seed: u64,
    /// How many invoices to generate.
    pub invoices: usize,
    /// How many Coupa Pay payments to generate.
    pub pay_payments: usize,
    /// OAuth2 clients that may ask for tokens.
    pub clients: Vec<OAuthClient>,
    /// The legacy `X-COUPA-API-KEY`; `None` refuses the header, as current Coupa does.
    pub api_key: Option<String>,
    /// Lifetime of an access token. Coupa's is 24 hours (`expires_in` 86399).
    pub token_ttl: Duration,
    /// Requests per second before answering 429; `None` disables throttling.
    pub rate_limit: Option<RateLimit>,
    /// Interval at which the CSV loader looks at `/Incoming/InvoicePayments`. Coupa's is 3 to 6
    /// minutes and cannot be changed; a few seconds keeps tests and demos short.
    pub csv_pickup: Duration,
    /// SFTP accounts: user name and password.
    pub sftp_users: Vec<SftpUser>,
    /// The instance's time zone: datetimes are written with this offset.
    pub utc_offset: FixedOffset,
    /// Named API response filters (`filter=<name>`), by name.
    pub filters: BTreeMap<String, ApiFilter>,
}

/// An OAuth2 client-credentials client and the scopes it may be granted.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub id: String,
    pub secret: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SftpUser {
    pub name: String,
    pub password: Option<String>,
    /// OpenSSH public keys (`ssh-ed25519 AAAA...`) accepted for this user.
    pub authorized_keys: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Requests that may arrive at once above the sustained rate.
    pub burst: u32,
    /// Send `Retry-After` with 429s (Coupa documents none, so the default is off).
    pub retry_after: bool,
}

/// A named API response filter: which resource it applies to and which fields it returns, in
/// the `fields=` syntax (`["id",{"supplier":["name"]}]`).
#[derive(Debug, Clone)]
pub struct ApiFilter {
    pub resource: String,
    pub fields: String,
}

/// Every scope the simulator knows, the ones a default client is granted.
pub const ALL_SCOPES: &[&str] = &[
    "core.invoice.read",
    "core.invoice.write",
    "core.integration.read",
    "core.integration.write",
    "core.pay.payments.read",
    "core.pay.payments.write",
    "core.common.read",
];

pub const DEFAULT_CLIENT_ID: &str = "coupa-bridge";
pub const DEFAULT_CLIENT_SECRET: &str = "sim-secret";
pub const DEFAULT_SFTP_USER: &str = "coupa";
pub const DEFAULT_SFTP_PASSWORD: &str = "sim-sftp-password";

impl Default for SimConfig {
    fn default() -> Self {
        let mut filters = BTreeMap::new();
        filters.insert(
            "default_invoices_filter".to_owned(),
            ApiFilter {
                resource: "invoices".to_owned(),
                fields: r#"["id","invoice-number","invoice-date","status","exported","updated-at",{"supplier":["id","name","number"]},{"currency":["code"]},{"invoice-lines":["line-num","description","quantity","price","total",{"account":["code"]}]},{"custom-fields":{}}]"#.to_owned(),
            },
        );
        SimConfig {
            seed: 1,
            invoices: 200,
            pay_payments: 60,
            clients: vec![OAuthClient {
                id: DEFAULT_CLIENT_ID.to_owned(),
                secret: DEFAULT_CLIENT_SECRET.to_owned(),
                scopes: ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            }],
            api_key: None,
            token_ttl: Duration::from_secs(86_400),
            rate_limit: None,
            csv_pickup: Duration::from_secs(2),
            sftp_users: vec![SftpUser {
                name: DEFAULT_SFTP_USER.to_owned(),
                password: Some(DEFAULT_SFTP_PASSWORD.to_owned()),
                authorized_keys: Vec::new(),
            }],
            utc_offset: FixedOffset::west_opt(7 * 3600).expect("-07:00 is a valid offset"),
            filters,
        }
    }
}

//! The checks against Coupa, all read-only unless `fix` creates a missing Integration.

use std::sync::Arc;
use std::time::Duration;

use coupa_api::auth::Credentials;
use coupa_api::observe::TracingObserver;
use coupa_api::query::{Fields, Query};
use coupa_api::{Client, ErrorClass};

use super::{Check, Verdict};
use crate::config::{Config, Monitoring, PaymentTransport};
use crate::flows::FlowName;

const OAUTH_CLIENTS: &str = "Setup > Integrations > OAuth2/OpenID Connect Clients";

pub(super) async fn checks(config: &Config, fix: bool) -> Vec<Check> {
    let mut out = vec![instance(config).await];
    if out[0].verdict == Verdict::Fail {
        out.push(Check::skip(
            "Coupa",
            "token, scopes, custom fields and Integrations need the instance to answer",
        ));
        return out;
    }
    let configured = match client(config, None) {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::fail(
                "token",
                e.to_string(),
                "correct coupa.base_url",
            ));
            return out;
        }
    };
    let token = token(config, &configured).await;
    let token_failed = token.verdict == Verdict::Fail;
    // A scope the client lacks fails the token for every scope asked at once; each flow's own
    // scopes then tell which flow needs it. Refused credentials fail every flow alike.
    let scope_refusal = token_failed && token.found.contains("scope");
    out.push(token);
    if token_failed && !scope_refusal {
        out.push(Check::skip(
            "Coupa",
            "scopes, custom fields and Integrations need a token",
        ));
        return out;
    }
    let mut usable = !token_failed;
    for flow in FlowName::ALL {
        if !config.enabled(flow) {
            out.push(Check::skip(
                format!("scopes: {flow}"),
                format!("disabled ({}.enabled = false)", flow.section()),
            ));
            continue;
        }
        let check = scopes(config, flow).await;
        usable |= token_failed && check.verdict == Verdict::Pass;
        out.push(check);
    }
    if !usable {
        out.push(Check::skip(
            "Coupa",
            "custom fields and Integrations need a token",
        ));
        return out;
    }
    // Without the configured scopes, a token with every scope of the client reads what is left.
    let reader = if token_failed {
        client(config, Some(Vec::new()))
    } else {
        Ok(configured)
    };
    let reader = match reader {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::skip("Coupa", e.to_string()));
            return out;
        }
    };
    if config.enabled(FlowName::Invoices) {
        out.push(custom_fields(config, &reader).await);
    } else {
        out.push(Check::skip(
            "custom fields",
            "the invoice export is disabled",
        ));
    }
    for (flow, new) in crate::flows::integrations(config) {
        out.extend(integration(&reader, flow, &new, fix).await);
    }
    out
}

/// The client for a check: the configured one, or with `scopes` in place of `coupa.scopes`.
fn client(config: &Config, scopes: Option<Vec<String>>) -> Result<Client, coupa_api::Error> {
    let mut c = config.coupa_client_config();
    if let (Some(wanted), Credentials::OAuth { scopes, .. }) = (scopes, &mut c.credentials) {
        *scopes = wanted;
    }
    // A doctor asks once and says what it got: no retries to wait through.
    c.retry.max_attempts = 1;
    c.http.timeout = c.http.timeout.min(Duration::from_secs(20));
    Client::new(c, Arc::new(TracingObserver))
}

/// The instance answers HTTP(S) at all: any status will do; no answer, or a certificate that
/// does not verify, fails.
async fn instance(config: &Config) -> Check {
    const NAME: &str = "instance";
    let base = config.coupa.base_url.trim().trim_end_matches('/');
    let base = base.strip_suffix("/api").unwrap_or(base);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .https_only(!config.coupa.insecure_http_simulator_only)
        .build();
    let http = match http {
        Ok(h) => h,
        Err(e) => return Check::fail(NAME, format!("no HTTP client: {e}"), "report this bug"),
    };
    match http.get(format!("{base}/")).send().await {
        Ok(answer) => Check::pass(
            NAME,
            format!("{base} answers (HTTP {})", answer.status().as_u16()),
        ),
        Err(e) => {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                why.push_str(": ");
                why.push_str(&cause.to_string());
                source = cause.source();
            }
            Check::fail(
                NAME,
                format!("{base} does not answer: {why}"),
                "check coupa.base_url (https://<name>.coupahost.com), this host's DNS, proxy \
                 and firewall, and that the instance's certificate is valid",
            )
        }
    }
}

/// A token with the configured credentials and scopes.
async fn token(config: &Config, client: &Client) -> Check {
    const NAME: &str = "token";
    if config.coupa.api_key.is_some() && config.coupa.client_id.is_none() {
        return Check {
            name: NAME.into(),
            verdict: Verdict::Warn,
            found: "the legacy API key is used: no OAuth2 token to obtain".into(),
            fix: Some(format!(
                "create an OAuth2 client ({OAUTH_CLIENTS}) and set coupa.client_id and \
                 COUPA_BRIDGE__COUPA__CLIENT_SECRET"
            )),
        };
    }
    match client.authenticate().await {
        Ok(()) => {
            let granted = match client.granted_scopes() {
                Some(s) => format!("{} scopes granted", s.len()),
                None => "Coupa did not list the scopes granted".to_owned(),
            };
            Check::pass(
                NAME,
                format!(
                    "OAuth2 client '{}' obtained a token ({granted})",
                    config.coupa.client_id.as_deref().unwrap_or_default()
                ),
            )
        }
        Err(e) => {
            let fix = if e.to_string().contains("scope") {
                format!(
                    "grant the scope to the OAuth2 client ({OAUTH_CLIENTS}), or leave it out of \
                     coupa.scopes if no enabled flow needs it (the scope lines below tell which)"
                )
            } else {
                format!(
                    "check coupa.client_id and COUPA_BRIDGE__COUPA__CLIENT_SECRET against the \
                     OAuth2 client ({OAUTH_CLIENTS}), its grant type (client credentials) and \
                     coupa.basic_auth"
                )
            };
            Check::fail(NAME, e.to_string(), fix)
        }
    }
}

/// A listing a flow makes, tried with one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    Invoices,
    Integrations,
    HistoryRecords,
    PayPayments,
    /// The CSV loader's results (csv transport).
    DataFileSources,
}

impl Read {
    fn what(self) -> &'static str {
        match self {
            Read::Invoices => "invoices",
            Read::Integrations => "integrations",
            Read::HistoryRecords => "integration history records",
            Read::PayPayments => "Coupa Pay payments",
            Read::DataFileSources => "data file sources (the CSV loader's results)",
        }
    }

    fn scope(self) -> &'static str {
        match self {
            Read::Invoices => "core.invoice.read",
            Read::Integrations | Read::HistoryRecords => "core.integration.read",
            Read::PayPayments => "core.pay.payments.read",
            Read::DataFileSources => "core.common.read",
        }
    }

    /// Lists one record.
    async fn try_with(self, client: &Client) -> Result<(), coupa_api::Error> {
        let one = Query::new().limit(1).fields(Fields::new(["id"]));
        match self {
            Read::Invoices => client.invoices().list(one).next_page().await.map(drop),
            Read::Integrations => client.integrations().list(one).next_page().await.map(drop),
            Read::HistoryRecords => client
                .history_records()
                .list(one)
                .next_page()
                .await
                .map(drop),
            Read::PayPayments => client.pay_payments().list(one).next_page().await.map(drop),
            Read::DataFileSources => client
                .data_file_sources()
                .list(one)
                .next_page()
                .await
                .map(drop),
        }
    }
}

/// The scopes a flow needs: what it reads (tried) and what it writes (asked for).
fn needs(config: &Config, flow: FlowName) -> (Vec<Read>, Vec<&'static str>) {
    match flow {
        FlowName::Invoices => match config.invoices.monitoring {
            Monitoring::CustomFields => (vec![Read::Invoices], vec!["core.invoice.write"]),
            Monitoring::History | Monitoring::Runs => (
                vec![Read::Invoices, Read::Integrations, Read::HistoryRecords],
                vec!["core.invoice.write", "core.integration.write"],
            ),
        },
        FlowName::Payments => {
            let mut reads = vec![Read::Invoices, Read::Integrations];
            if config.payments.transport == PaymentTransport::Csv {
                reads.push(Read::DataFileSources);
            }
            (reads, vec!["core.invoice.write", "core.integration.write"])
        }
        FlowName::PayPayments => (
            vec![Read::PayPayments, Read::Integrations, Read::HistoryRecords],
            vec!["core.pay.payments.write", "core.integration.write"],
        ),
    }
}

/// A flow's scopes: a token asked for exactly them, then each read the flow makes, one record
/// each. The write scopes are checked against the scopes the token endpoint listed, when it
/// listed them: writing to find out is not a doctor's business.
async fn scopes(config: &Config, flow: FlowName) -> Check {
    let name = format!("scopes: {flow}");
    let (reads, writes) = needs(config, flow);
    let mut wanted: Vec<String> = reads.iter().map(|r| r.scope().to_owned()).collect();
    wanted.extend(writes.iter().map(|s| (*s).to_owned()));
    wanted.sort();
    wanted.dedup();
    let fix = |scope: &str| {
        format!("grant {scope} to the OAuth2 client ({OAUTH_CLIENTS}) and keep it in coupa.scopes")
    };
    // Asked as the flows will ask: exactly these scopes, or every scope of the client when
    // coupa.scopes is [] (then the reads tell what is missing). An API key has no scopes.
    let api_key = config.coupa.api_key.is_some() && config.coupa.client_id.is_none();
    let asked = if config.coupa.scopes.is_empty() {
        Vec::new()
    } else {
        wanted.clone()
    };
    let client = match client(config, (!api_key).then_some(asked)) {
        Ok(c) => c,
        Err(e) => return Check::fail(name, e.to_string(), "correct coupa.base_url"),
    };
    if let Err(e) = client.authenticate().await {
        let refused = wanted
            .iter()
            .find(|s| e.to_string().contains(s.as_str()))
            .cloned();
        return match refused {
            Some(scope) => Check::fail(name, format!("the token was refused: {e}"), fix(&scope)),
            None => Check::fail(
                name,
                format!("no token with the scopes {}: {e}", wanted.join(" ")),
                fix(&wanted.join(", ")),
            ),
        };
    }
    for read in &reads {
        let tried = read.try_with(&client).await;
        match tried {
            Ok(()) => {}
            Err(e) if e.class() == ErrorClass::Auth => {
                return Check::fail(
                    name,
                    format!("Coupa refused to list {}: {}", read.what(), e.reason()),
                    fix(read.scope()),
                );
            }
            Err(e) => {
                return Check::fail(
                    name,
                    format!("listing {} failed: {e}", read.what()),
                    "see the error; run `coupa-bridge doctor` again once Coupa answers",
                );
            }
        }
    }
    let read_list: Vec<&str> = reads.iter().map(|r| r.what()).collect();
    match client.granted_scopes() {
        Some(granted) => {
            if let Some(missing) = writes.iter().find(|w| !granted.iter().any(|g| g == *w)) {
                return Check::fail(
                    name,
                    format!("the token was not granted {missing}, which the flow writes with"),
                    fix(missing),
                );
            }
            Check::pass(
                name,
                format!(
                    "read {}; granted {}",
                    read_list.join(", "),
                    writes.join(", ")
                ),
            )
        }
        None => Check::pass(
            name,
            format!(
                "read {}; the write scopes ({}) cannot be seen without writing (Coupa did not \
                 list the scopes it granted): a refused write stops the first pass with one error",
                read_list.join(", "),
                writes.join(", ")
            ),
        ),
    }
}

/// The invoice custom fields the monitoring option writes, seen on an invoice: Coupa shows
/// every custom field defined on invoice headers in `custom-fields`, `null` when unset.
async fn custom_fields(config: &Config, client: &Client) -> Check {
    const NAME: &str = "custom fields";
    let s = &config.invoices;
    let mut wanted = vec![s.erp_number_field.as_str()];
    if s.monitoring == Monitoring::CustomFields {
        wanted.push(s.status_field.as_str());
    }
    let q = Query::new()
        .limit(1)
        .fields(Fields::new(["id"]).all("custom-fields"));
    let page = match client.invoices().list(q).next_page().await {
        Ok(p) => p.unwrap_or_default(),
        Err(e) => {
            return Check::fail(
                NAME,
                format!("cannot read an invoice: {e}"),
                "see the scopes check of the invoice export",
            );
        }
    };
    let Some(Ok(invoice)) = page.into_iter().next() else {
        return Check::skip(
            NAME,
            format!(
                "no invoice in Coupa to see them on yet: make sure {} exist on invoice headers",
                wanted.join(" and ")
            ),
        );
    };
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|f| invoice.custom_fields.get(f).is_none())
        .collect();
    if missing.is_empty() {
        return Check::pass(
            NAME,
            format!(
                "{} {} on invoice headers",
                wanted.join(" and "),
                if wanted.len() == 1 { "exists" } else { "exist" }
            ),
        );
    }
    let keys = [
        ("invoices.erp_number_field", s.erp_number_field.as_str()),
        ("invoices.status_field", s.status_field.as_str()),
    ];
    let named: Vec<String> = missing
        .iter()
        .map(|f| {
            let key = keys.iter().find(|(_, v)| v == f).map_or("", |(k, _)| k);
            format!("{f} ({key})")
        })
        .collect();
    let defined: Vec<&str> = invoice.custom_fields.0.keys().map(String::as_str).collect();
    Check::fail(
        NAME,
        format!(
            "invoices have no custom field {}; defined: {}",
            named.join(", "),
            if defined.is_empty() {
                "none".to_owned()
            } else {
                defined.join(", ")
            }
        ),
        "create it under Setup > Custom Fields > Invoice Header (a text field), or set the \
         key to the field that exists",
    )
}

/// The flow's Integration exists (or `fix` creates it) and has contacts for its alerts.
async fn integration(
    client: &Client,
    flow: FlowName,
    new: &coupa_api::client::NewIntegration,
    fix: bool,
) -> Vec<Check> {
    let name = format!("integration: {}", new.code);
    let key = format!("{}.integration_code", flow.section());
    let found = match client.integrations().find_by_code(&new.code).await {
        Ok(found) => found,
        Err(e) => {
            return vec![Check::fail(
                name,
                format!("cannot look it up: {e}"),
                "see the scopes check above",
            )];
        }
    };
    let (integration, verdict) = match found {
        Some(i) => (i, Verdict::Pass),
        None if fix => match client.integrations().create(new).await {
            Ok(i) => (i, Verdict::Fixed),
            Err(e) => {
                return vec![Check::fail(
                    name,
                    format!("missing, and creating it failed: {e}"),
                    format!(
                        "create it in Coupa (Setup > Integrations): code {}, business object \
                         {}, direction {}, end system {}",
                        new.code, new.business_object, new.direction, new.end_system
                    ),
                )];
            }
        },
        None => {
            return vec![Check::fail(
                name,
                format!(
                    "no Integration with code {} ({key}) for the {}",
                    new.code,
                    flow.title()
                ),
                "`coupa-bridge doctor --fix` creates it (or the first pass does), or set the \
                 key to an existing Integration's code",
            )];
        }
    };
    let what = if verdict == Verdict::Fixed {
        "created"
    } else {
        "exists"
    };
    let mut out = vec![
        Check::pass(
            name.clone(),
            format!(
                "{what} for the {} (business object {}, direction {})",
                flow.title(),
                new.business_object,
                new.direction
            ),
        )
        .with_verdict(verdict),
    ];
    let contacts = format!("contacts: {}", new.code);
    out.push(match client.integrations().contacts(integration.id).await {
        Ok(c) if c.is_empty() => Check::fail(
            contacts,
            "no Integration Contacts: Coupa's alerts about failed documents reach no one",
            format!(
                "add contacts (users or groups, alert type Functional, Technical or Both) to \
                 Integration {} in Coupa (Setup > Integrations)",
                new.code
            ),
        ),
        Ok(c) => Check::pass(
            contacts,
            format!("{} contact(s) receive its alerts", c.len()),
        ),
        Err(e) => Check::fail(
            contacts,
            format!("cannot list them: {e}"),
            "see the scopes check above",
        ),
    });
    out
}

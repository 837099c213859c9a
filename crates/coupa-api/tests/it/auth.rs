//! Tokens: one mint shared by concurrent tasks, early refresh, re-mint on a 401, Basic client
//! authentication, the legacy API key, scopes, and secrets kept out of every report.

use std::time::Duration;

use coupa_api::auth::Credentials;
use coupa_api::query::{Fields, Query};
use coupa_api::{ErrorClass, Format, InvoiceId, SecretString};
use coupa_doc::Value;
use coupa_sim::SimConfig;
use coupa_sim::config::DEFAULT_CLIENT_SECRET;
use coupa_sim::faults::FaultKind;

use crate::common::{calls, fault, oauth_with, setup, setup_with, small_sim};

const TOKEN: &str = "POST /oauth2/token";

fn page() -> Query {
    Query::new().fields(Fields::new(["id"])).limit(2)
}

#[tokio::test]
async fn concurrent_tasks_share_one_token_mint() {
    let s = setup(Format::Json, small_sim()).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let c = s.client.clone();
        tasks.push(tokio::spawn(async move {
            c.invoices()
                .list(page())
                .next_page()
                .await
                .map(|p| p.is_some())
        }));
    }
    for t in tasks {
        assert!(t.await.expect("task").expect("request"));
    }
    assert_eq!(calls(&s.sim, TOKEN), 1, "one mint for twenty tasks");
    assert_eq!(calls(&s.sim, "GET /api/invoices"), 20);
}

#[tokio::test]
async fn a_token_expired_mid_run_is_reminted_once_and_the_request_retried() {
    for format in [Format::Json, Format::Xml] {
        let s = setup(format, small_sim()).await;
        s.client
            .invoices()
            .list(page())
            .next_page()
            .await
            .expect("first");
        s.sim.state.tokens.expire_all();
        let inv = s
            .client
            .invoices()
            .get(InvoiceId(1001), Some(Fields::new(["id"])))
            .await
            .expect("re-minted");
        assert_eq!(inv.id, InvoiceId(1001));
        assert_eq!(calls(&s.sim, TOKEN), 2, "{format:?}");
        let statuses: Vec<_> = s.recorder.attempts().iter().map(|a| a.status).collect();
        assert_eq!(
            statuses,
            [Some(200), Some(200), Some(401), Some(200), Some(200)],
            "{format:?}: mint, list, 401, mint, retry"
        );
        // The same through the simulator's fault: tokens expire while a request is in flight.
        fault(&s.sim, FaultKind::ExpireTokens, "GET", "/api/invoices", 1);
        s.client
            .invoices()
            .list(page())
            .next_page()
            .await
            .expect("re-minted");
        assert_eq!(calls(&s.sim, TOKEN), 3);
    }
}

#[tokio::test]
async fn a_second_401_is_an_auth_error_not_a_loop() {
    let s = setup(Format::Json, small_sim()).await;
    fault(&s.sim, FaultKind::ExpireTokens, "GET", "/api/invoices", 5);
    let err = s
        .client
        .invoices()
        .list(page())
        .next_page()
        .await
        .expect_err("every token is refused");
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.class(), ErrorClass::Auth);
    assert_eq!(calls(&s.sim, TOKEN), 2, "one re-mint per request");
}

#[tokio::test]
async fn tokens_are_refreshed_before_they_expire() {
    let s = setup(
        Format::Json,
        SimConfig {
            token_ttl: Duration::from_secs(2),
            ..small_sim()
        },
    )
    .await;
    s.client
        .invoices()
        .list(page())
        .next_page()
        .await
        .expect("first");
    // Half the lifetime has passed: the client mints before Coupa would refuse the token.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    s.client
        .invoices()
        .list(page())
        .next_page()
        .await
        .expect("second");
    assert_eq!(calls(&s.sim, TOKEN), 2);
    assert!(
        s.recorder.attempts().iter().all(|a| a.status != Some(401)),
        "refreshed early, never refused"
    );
}

#[tokio::test]
async fn basic_client_authentication_works() {
    let s = setup_with(Format::Xml, small_sim(), |c| {
        c.credentials = oauth_with(DEFAULT_CLIENT_SECRET, &["core.invoice.read"], true);
    })
    .await;
    s.client
        .invoices()
        .list(page())
        .next_page()
        .await
        .expect("listed");
    assert_eq!(
        s.client.granted_scopes(),
        Some(vec!["core.invoice.read".to_owned()])
    );
}

#[tokio::test]
async fn a_missing_scope_is_an_auth_error_naming_it() {
    let s = setup_with(Format::Json, small_sim(), |c| {
        c.credentials = oauth_with(DEFAULT_CLIENT_SECRET, &["core.invoice.read"], false);
    })
    .await;
    let err = s
        .client
        .invoices()
        .mark_exported(InvoiceId(1001))
        .await
        .expect_err("read scope only");
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.class(), ErrorClass::Auth);
    assert!(err.to_string().contains("core.invoice.write"), "{err}");
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_error_and_the_secret_is_never_reported() {
    let secret = "wrong-secret-3f9a";
    let s = setup_with(Format::Json, small_sim(), |c| {
        c.credentials = oauth_with(secret, &[], false);
    })
    .await;
    let err = s
        .client
        .invoices()
        .list(page())
        .next_page()
        .await
        .expect_err("bad secret");
    assert_eq!(err.class(), ErrorClass::Auth);
    assert!(err.to_string().contains("invalid_client"), "{err}");
    let everything = format!("{err} {err:?} {:?} {:?}", s.recorder.attempts(), s.client);
    assert!(!everything.contains(secret), "secret leaked: {everything}");
    assert_eq!(calls(&s.sim, TOKEN), 1, "a refused secret is not retried");
}

#[tokio::test]
async fn tokens_never_reach_the_observer_or_errors() {
    let s = setup(Format::Json, small_sim()).await;
    s.client
        .invoices()
        .list(page())
        .next_page()
        .await
        .expect("listed");
    let tokens: Vec<String> = s.sim.state.tokens.issued();
    assert!(!tokens.is_empty());
    let report = format!("{:?} {:?}", s.recorder.attempts(), s.client);
    for t in tokens {
        assert!(!report.contains(&t), "token leaked into {report}");
    }
    assert!(!report.contains(DEFAULT_CLIENT_SECRET));
}

#[tokio::test]
async fn the_legacy_api_key_is_sent_as_coupas_header() {
    let s = setup_with(
        Format::Json,
        SimConfig {
            api_key: Some("legacy-key-123".into()),
            ..small_sim()
        },
        |c| c.credentials = Credentials::ApiKey(SecretString::from("legacy-key-123")),
    )
    .await;
    let page = s
        .client
        .invoices()
        .list(page())
        .next_page()
        .await
        .expect("listed");
    assert_eq!(page.map(|p| p.len()), Some(2));
    assert_eq!(calls(&s.sim, TOKEN), 0, "no token with an API key");
    let db = s.sim.state.db.lock();
    assert!(
        db.invoices
            .get(1001)
            .and_then(|r| r.get("id"))
            .and_then(Value::as_i64)
            .is_some()
    );
}

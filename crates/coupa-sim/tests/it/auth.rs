//! OAuth2 client credentials, scopes, token expiry and the legacy API key.

use std::time::Duration;

use coupa_sim::SimConfig;
use coupa_sim::config::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use reqwest::StatusCode;

use crate::common::{BOTH, Fmt, empty_sim, sim_with};

#[tokio::test]
async fn token_by_form_body_and_by_basic_header() {
    let t = empty_sim().await;
    for basic in [false, true] {
        let mut req = t.http.post(t.url("/oauth2/token"));
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("scope", "core.invoice.read"),
        ];
        if basic {
            req = req.basic_auth(DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET));
        } else {
            form.push(("client_id", DEFAULT_CLIENT_ID));
            form.push(("client_secret", DEFAULT_CLIENT_SECRET));
        }
        let resp = req.form(&form).send().await.expect("request");
        assert_eq!(resp.status(), StatusCode::OK, "basic={basic}");
        let v: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(v["expires_in"], 86399);
        assert_eq!(v["token_type"], "bearer");
        assert_eq!(v["scope"], "core.invoice.read");
        assert!(v["access_token"].as_str().is_some_and(|s| s.len() > 40));
    }
}

#[tokio::test]
async fn bad_credentials_grant_and_scope_are_400() {
    let t = empty_sim().await;
    let cases = [
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", DEFAULT_CLIENT_ID),
                ("client_secret", "wrong"),
            ],
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", DEFAULT_CLIENT_SECRET),
            ],
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", DEFAULT_CLIENT_ID),
                ("client_secret", DEFAULT_CLIENT_SECRET),
            ],
            "unsupported_grant_type",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", DEFAULT_CLIENT_ID),
                ("client_secret", DEFAULT_CLIENT_SECRET),
                ("scope", "core.user.write"),
            ],
            "invalid_scope",
        ),
    ];
    for (form, error) in cases {
        let resp = t
            .http
            .post(t.url("/oauth2/token"))
            .form(&form)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{form:?}");
        let v: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(v["error"], error, "{form:?}");
    }
}

#[tokio::test]
async fn missing_or_unknown_token_is_401_and_missing_scope_403() {
    let t = empty_sim().await;
    for fmt in BOTH {
        let resp = t
            .http
            .get(t.url("/api/invoices"))
            .header("accept", fmt.mime())
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.headers().contains_key("www-authenticate"));
        let resp = t
            .http
            .get(t.url("/api/invoices"))
            .bearer_auth("not-a-token")
            .header("accept", fmt.mime())
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let read_only = t.token_for("core.invoice.read").await;
    let id = t.add_invoice("INV-1", "approved", "Acme", "S1");
    let get = t
        .http
        .get(t.url(&format!("/api/invoices/{id}")))
        .bearer_auth(&read_only)
        .send()
        .await
        .expect("request");
    assert_eq!(get.status(), StatusCode::OK);
    for (method, path) in [
        (
            reqwest::Method::PUT,
            format!("/api/invoices/{id}?exported=true"),
        ),
        (reqwest::Method::GET, "/api/coupa_pay/payments".to_owned()),
        (reqwest::Method::GET, "/api/integration_runs".to_owned()),
        (reqwest::Method::GET, "/api/data_file_sources".to_owned()),
    ] {
        let resp = t
            .http
            .request(method.clone(), t.url(&path))
            .bearer_auth(&read_only)
            .header("accept", "application/json")
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let challenge = resp.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(challenge.contains("insufficient_scope"), "{challenge}");
    }
    assert_eq!(
        t.invoice(id)
            .get("exported")
            .and_then(coupa_doc::Value::as_bool),
        Some(false)
    );
}

#[tokio::test]
async fn tokens_expire_after_their_lifetime() {
    let t = sim_with(SimConfig {
        invoices: 0,
        pay_payments: 0,
        token_ttl: Duration::from_secs(1),
        ..SimConfig::default()
    })
    .await;
    assert_eq!(
        t.get("/api/invoices", Fmt::Json).await.status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let a = t.get("/api/invoices", Fmt::Json).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.errors()[0].contains("expired"), "{:?}", a.errors());
}

#[tokio::test]
async fn the_legacy_api_key_works_only_when_configured() {
    let without = empty_sim().await;
    let with = sim_with(SimConfig {
        invoices: 0,
        pay_payments: 0,
        api_key: Some("legacy-key".into()),
        ..SimConfig::default()
    })
    .await;
    for (t, want) in [
        (&without, StatusCode::UNAUTHORIZED),
        (&with, StatusCode::OK),
    ] {
        let resp = t
            .http
            .get(t.url("/api/invoices"))
            .header("x-coupa-api-key", "legacy-key")
            .header("accept", "application/json")
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), want);
    }
    let wrong = with
        .http
        .get(with.url("/api/invoices"))
        .header("x-coupa-api-key", "other")
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
}

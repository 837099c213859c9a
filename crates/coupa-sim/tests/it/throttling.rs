//! 429s from the rate limit, and every kind of injected fault.

use coupa_doc::Value;
use coupa_sim::SimConfig;
use coupa_sim::config::RateLimit;
use coupa_sim::faults::{FaultKind, FaultRule};
use reqwest::StatusCode;

use crate::common::{Fmt, empty_sim, sim_with};

fn rule(kind: FaultKind, path: &str, count: u64) -> FaultRule {
    FaultRule {
        kind,
        method: None,
        path: Some(path.to_owned()),
        count: Some(count),
        rate: None,
        seed: 0,
    }
}

#[tokio::test]
async fn beyond_the_budget_requests_get_429_without_retry_after_by_default() {
    for retry_after in [false, true] {
        let t = sim_with(SimConfig {
            invoices: 0,
            pay_payments: 0,
            rate_limit: Some(RateLimit {
                per_second: 2,
                burst: 5,
                retry_after,
            }),
            ..SimConfig::default()
        })
        .await;
        let mut statuses = Vec::new();
        let mut headers = Vec::new();
        for _ in 0..12 {
            let a = t.get("/api/invoices", Fmt::Json).await;
            statuses.push(a.status);
            headers.push(a.headers.get("retry-after").cloned());
        }
        let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        let throttled = statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count();
        assert!((5..=6).contains(&ok), "{statuses:?}");
        assert_eq!(ok + throttled, 12);
        assert_eq!(t.sim.state.stats.throttled(), throttled as u64);
        let with_header = headers.iter().flatten().count();
        if retry_after {
            assert_eq!(with_header, throttled);
        } else {
            assert_eq!(with_header, 0, "Coupa sends no Retry-After by default");
        }
    }
}

#[tokio::test]
async fn status_faults_answer_in_coupas_envelope_then_stop() {
    let t = empty_sim().await;
    t.sim
        .state
        .faults
        .add(rule(FaultKind::Status { status: 503 }, "/api/invoices", 2));
    assert_eq!(
        t.get("/api/invoices", Fmt::Xml).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let a = t.get("/api/invoices", Fmt::Json).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!a.errors().is_empty());
    assert_eq!(
        t.get("/api/invoices", Fmt::Json).await.status,
        StatusCode::OK
    );
    assert_eq!(
        t.get("/api/integrations", Fmt::Json).await.status,
        StatusCode::OK
    );
    assert_eq!(t.sim.state.stats.faults(), 2);
    let s = t.sim.state.stats.endpoint("GET /api/invoices");
    assert_eq!(s.calls, 3);
    assert_eq!(s.by_status.get(&503), Some(&2));
}

#[tokio::test]
async fn a_dropped_connection_still_applies_the_change() {
    let t = empty_sim().await;
    let id = t.add_invoice("INV-DROP", "approved", "Acme", "S1");
    t.sim.state.faults.add(FaultRule {
        method: Some("PUT".into()),
        ..rule(FaultKind::Drop, "/api/invoices", 1)
    });
    let err = t
        .http
        .put(t.url(&format!("/api/invoices/{id}?exported=true")))
        .bearer_auth(&t.token)
        .send()
        .await
        .expect_err("no answer comes back");
    assert!(!err.is_status(), "{err}");
    assert_eq!(
        t.invoice(id).get("exported").and_then(Value::as_bool),
        Some(true)
    );
}

#[tokio::test]
async fn truncated_bodies_fail_to_read() {
    let t = empty_sim().await;
    for i in 0..5 {
        t.add_invoice(&format!("INV-T{i}"), "approved", "Acme", "S1");
    }
    t.sim
        .state
        .faults
        .add(rule(FaultKind::Truncate, "/api/invoices", 1));
    let resp = t
        .http
        .get(t.url("/api/invoices"))
        .bearer_auth(&t.token)
        .header("accept", "application/json")
        .send()
        .await
        .expect("headers arrive");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.is_err(), "the body is cut short");
}

#[tokio::test]
async fn delays_slow_the_answer_and_token_expiry_forces_a_new_token() {
    let t = empty_sim().await;
    t.sim.state.faults.add(rule(
        FaultKind::Delay { millis: 300 },
        "/api/integrations",
        1,
    ));
    let started = std::time::Instant::now();
    assert_eq!(
        t.get("/api/integrations", Fmt::Json).await.status,
        StatusCode::OK
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    t.sim
        .state
        .faults
        .add(rule(FaultKind::ExpireTokens, "/api/invoices", 1));
    assert_eq!(
        t.get("/api/invoices", Fmt::Json).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.get("/api/integrations", Fmt::Json).await.status,
        StatusCode::UNAUTHORIZED
    );
    let injected_429 = rule(
        FaultKind::TooManyRequests {
            retry_after: Some(3),
        },
        "/api",
        1,
    );
    t.sim.state.faults.add(injected_429);
    let fresh = t.token_for("core.invoice.read").await;
    let resp = t
        .http
        .get(t.url("/api/invoices"))
        .bearer_auth(&fresh)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "3");
}

#[tokio::test]
async fn the_admin_api_drives_faults_rate_limit_and_clerk_actions() {
    let t = empty_sim().await;
    let id = t.add_invoice("INV-ADM", "approved", "Acme", "S1");
    let admin = |p: &str| t.url(&format!("/__sim{p}"));
    let r = t
        .http
        .post(admin("/faults"))
        .json(&serde_json::json!({"kind":"status","status":502,"path":"/api/invoices","count":1}))
        .send()
        .await
        .expect("admin");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        t.get("/api/invoices", Fmt::Json).await.status,
        StatusCode::BAD_GATEWAY
    );
    t.http
        .put(admin("/rate-limit"))
        .json(&serde_json::json!({"per_second":1,"burst":1}))
        .send()
        .await
        .expect("admin");
    assert_eq!(
        t.get("/api/invoices", Fmt::Json).await.status,
        StatusCode::OK
    );
    assert_eq!(
        t.get("/api/invoices", Fmt::Json).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    t.http
        .put(admin("/rate-limit"))
        .json(&serde_json::Value::Null)
        .send()
        .await
        .expect("admin");
    t.put(&format!("/api/invoices/{id}?exported=true"), Fmt::Json, "")
        .await;
    let r = t
        .http
        .post(admin(&format!("/invoices/{id}/reset-export")))
        .send()
        .await
        .expect("admin");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        t.invoice(id).get("exported").and_then(Value::as_bool),
        Some(false)
    );
    let r = t
        .http
        .post(admin(&format!("/invoices/{id}/status")))
        .json(&serde_json::json!({"status":"voided"}))
        .send()
        .await
        .expect("admin");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        t.invoice(id).get("status").and_then(Value::as_str),
        Some("voided")
    );
    let r = t
        .http
        .post(admin(&format!("/invoices/{id}/status")))
        .json(&serde_json::json!({"status":"bogus"}))
        .send()
        .await
        .expect("admin");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let stats: serde_json::Value = t
        .http
        .get(admin("/stats"))
        .send()
        .await
        .expect("admin")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["throttled"], 1);
    assert!(
        stats["endpoints"]["GET /api/invoices"]["calls"]
            .as_u64()
            .is_some_and(|n| n >= 3),
        "{stats}"
    );
}

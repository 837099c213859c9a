//! How fast the simulator answers, so it is never the bottleneck of a benchmark.
//!
//! `cargo run --release -p coupa-sim --example sim_bench -- [SECONDS] [CONCURRENCY]`
//!
//! Scenarios, each for SECONDS (default 5) with CONCURRENCY (default 8) keep-alive clients on
//! loopback: a page of 50 full invoices in JSON, the same in XML, and a single-invoice PUT
//! (custom fields). Prints one JSON object per scenario.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use coupa_sim::SimConfig;
use coupa_sim::config::{ALL_SCOPES, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let sim = coupa_sim::spawn(SimConfig {
        invoices: 2_000,
        ..SimConfig::default()
    })
    .await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let token: serde_json::Value = http
        .post(format!("{}/oauth2/token", sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
            ("scope", &ALL_SCOPES.join(" ")),
        ])
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let first_id = sim
        .state
        .db
        .lock()
        .invoices
        .rows()
        .next()
        .and_then(|r| r.get("id"))
        .and_then(coupa_doc::Value::as_i64)
        .unwrap_or(1);

    for (name, method, path, accept, body) in [
        (
            "page of 50 invoices, JSON",
            reqwest::Method::GET,
            "/api/invoices?limit=50".to_owned(),
            "application/json",
            None,
        ),
        (
            "page of 50 invoices, XML",
            reqwest::Method::GET,
            "/api/invoices?limit=50".to_owned(),
            "application/xml",
            None,
        ),
        (
            "single-invoice PUT, JSON",
            reqwest::Method::PUT,
            format!("/api/invoices/{first_id}?fields=[\"id\",\"exported\"]"),
            "application/json",
            Some(r#"{"custom-fields":{"cf-integration-status":"Success: bench"}}"#),
        ),
    ] {
        let requests = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut workers = Vec::new();
        for _ in 0..concurrency {
            let (http, token, requests, bytes) =
                (http.clone(), token.clone(), requests.clone(), bytes.clone());
            let (method, url) = (method.clone(), format!("{}{path}", sim.base_url()));
            workers.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let mut req = http
                        .request(method.clone(), &url)
                        .bearer_auth(&token)
                        .header("accept", accept);
                    if let Some(b) = body {
                        req = req.header("content-type", "application/json").body(b);
                    }
                    let Ok(resp) = req.send().await else { continue };
                    let ok = resp.status().is_success();
                    let Ok(b) = resp.bytes().await else { continue };
                    if ok {
                        requests.fetch_add(1, Ordering::Relaxed);
                        bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                    }
                }
            }));
        }
        for w in workers {
            w.await?;
        }
        let n = requests.load(Ordering::Relaxed);
        let b = bytes.load(Ordering::Relaxed);
        println!(
            "{}",
            serde_json::json!({
                "scenario": name,
                "seconds": seconds,
                "concurrency": concurrency,
                "requests": n,
                "requests_per_second": (n as f64 / seconds as f64).round(),
                "response_mb_per_second": ((b as f64 / seconds as f64) / 1e6 * 10.0).round() / 10.0,
                "bytes_per_response": b.checked_div(n).unwrap_or(0),
            })
        );
    }
    sim.shutdown().await;
    Ok(())
}

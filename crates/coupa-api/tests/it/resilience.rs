//! Retries against the simulator's injected faults: what is repeated, what is not, and how
//! the rate governor reacts to 429s.

use std::time::Duration;

use chrono::{FixedOffset, TimeZone};
use coupa_api::client::NewPayment;
use coupa_api::query::{Fields, Query};
use coupa_api::rate::RateConfig;
use coupa_api::{ErrorClass, Format, InvoiceId};
use coupa_doc::Value;
use coupa_sim::faults::FaultKind;
use rust_decimal::Decimal;

use crate::common::{BOTH, calls, fault, setup, setup_with, small_sim};
use coupa_sim::SimConfig;

fn page() -> Query {
    Query::new().fields(Fields::new(["id"])).limit(5)
}

/// Statuses of the attempts on `/api/` paths, in order.
fn api_statuses(s: &crate::common::Setup) -> Vec<Option<u16>> {
    s.recorder
        .attempts()
        .iter()
        .filter(|a| a.path.starts_with("/api/"))
        .map(|a| a.status)
        .collect()
}

#[tokio::test]
async fn a_429_without_retry_after_is_retried_after_a_pause_and_slows_the_governor() {
    let s = setup_with(Format::Json, small_sim(), |c| {
        c.rate = Some(RateConfig::default());
    })
    .await;
    fault(
        &s.sim,
        FaultKind::TooManyRequests { retry_after: None },
        "GET",
        "/api/invoices",
        2,
    );
    let full = s.client.effective_rate();
    let page = s
        .client
        .invoices()
        .list(page())
        .next_page()
        .await
        .expect("served after the 429s");
    assert_eq!(page.map(|p| p.len()), Some(5));
    assert_eq!(api_statuses(&s), [Some(429), Some(429), Some(200)]);
    let waits: Vec<_> = s
        .recorder
        .attempts()
        .iter()
        .filter_map(|a| a.retry_in)
        .collect();
    assert_eq!(waits.len(), 2);
    assert!(
        waits.iter().all(|w| *w >= Duration::from_millis(900)),
        "no Retry-After: wait about a second, Coupa's window: {waits:?}"
    );
    assert!(
        s.client.effective_rate() < full,
        "after 429s the governor slows down: {} vs {full}",
        s.client.effective_rate()
    );
    assert_eq!(s.sim.state.stats.throttled(), 2);
}

#[tokio::test]
async fn a_429_with_retry_after_waits_as_told() {
    let s = setup(Format::Xml, small_sim()).await;
    fault(
        &s.sim,
        FaultKind::TooManyRequests {
            retry_after: Some(1),
        },
        "GET",
        "/api/invoices",
        1,
    );
    s.client
        .invoices()
        .list(page())
        .next_page()
        .await
        .expect("served after the 429");
    let retry: Vec<_> = s
        .recorder
        .attempts()
        .iter()
        .filter_map(|a| a.retry_in)
        .collect();
    assert_eq!(retry, [Duration::from_secs(1)]);
    assert_eq!(api_statuses(&s), [Some(429), Some(200)]);
}

#[tokio::test]
async fn server_errors_dropped_and_truncated_answers_are_retried_for_reads() {
    for format in BOTH {
        for kind in [
            FaultKind::Status { status: 503 },
            FaultKind::Status { status: 500 },
            FaultKind::Drop,
            FaultKind::Truncate,
        ] {
            let s = setup(format, small_sim()).await;
            fault(&s.sim, kind.clone(), "GET", "/api/invoices", 2);
            let page = s
                .client
                .invoices()
                .list(page())
                .next_page()
                .await
                .unwrap_or_else(|e| panic!("{format:?} {kind:?}: {e}"));
            assert_eq!(page.map(|p| p.len()), Some(5), "{format:?} {kind:?}");
            let attempts = s
                .recorder
                .attempts()
                .into_iter()
                .filter(|a| a.path.starts_with("/api/"))
                .collect::<Vec<_>>();
            assert_eq!(
                attempts.len(),
                3,
                "{format:?} {kind:?}: two failures, one success"
            );
            assert!(
                attempts[..2]
                    .iter()
                    .all(|a| a.error.is_some() && a.retry_in.is_some())
            );
            assert_eq!(attempts[2].status, Some(200));
        }
    }
}

#[tokio::test]
async fn retries_give_up_after_the_policy_and_report_a_retryable_error() {
    let s = setup(Format::Json, small_sim()).await;
    fault(
        &s.sim,
        FaultKind::Status { status: 503 },
        "GET",
        "/api/invoices",
        100,
    );
    let err = s
        .client
        .invoices()
        .list(page())
        .next_page()
        .await
        .expect_err("503 for ever");
    assert_eq!(err.status(), Some(503));
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert_eq!(api_statuses(&s).len(), 5, "max_attempts of the policy");
}

#[tokio::test]
async fn a_post_that_creates_is_not_repeated_after_a_server_error() {
    let s = setup(Format::Json, small_sim()).await;
    // A run needs an integration; use a seeded one.
    let code = {
        let db = s.sim.state.db.lock();
        db.integrations
            .rows()
            .next()
            .and_then(|r| r.get("code").and_then(Value::as_str).map(str::to_owned))
            .expect("a seeded integration")
    };
    fault(
        &s.sim,
        FaultKind::Status { status: 503 },
        "POST",
        "/api/integration_runs",
        1,
    );
    let err = s.client.runs().create(&code).await.expect_err("503");
    assert_eq!(err.status(), Some(503));
    assert_eq!(
        calls(&s.sim, "POST /api/integration_runs"),
        1,
        "not repeated"
    );
    // A 429 means Coupa did not process it: that is repeated even for a POST.
    fault(
        &s.sim,
        FaultKind::TooManyRequests {
            retry_after: Some(1),
        },
        "POST",
        "/api/integration_runs",
        1,
    );
    let run = s.client.runs().create(&code).await.expect("after the 429");
    assert!(run.id.get() > 0);
    assert_eq!(calls(&s.sim, "POST /api/integration_runs"), 3);
}

#[tokio::test]
async fn a_payment_whose_answer_is_lost_is_not_repeated_and_says_the_outcome_is_unknown() {
    for kind in [FaultKind::Drop, FaultKind::Truncate] {
        let s = setup(Format::Json, small_sim()).await;
        let id = {
            let db = s.sim.state.db.lock();
            db.invoices
                .rows()
                .find(|r| r.get("status").and_then(Value::as_str) == Some("approved"))
                .and_then(|r| r.get("id").and_then(Value::as_i64))
                .expect("approved invoice")
        };
        let before = payments_on(&s.sim, id);
        fault(&s.sim, kind.clone(), "PUT", "/api/invoices", 1);
        let err = s
            .client
            .invoices()
            .add_payments(
                InvoiceId(id),
                &[NewPayment {
                    amount_paid: Decimal::new(4200, 2),
                    payment_date: FixedOffset::east_opt(0)
                        .expect("utc")
                        .with_ymd_and_hms(2026, 11, 20, 0, 0, 0)
                        .single()
                        .expect("date"),
                    notes: Some("CHK-77".into()),
                }],
                None,
            )
            .await
            .expect_err("the answer was lost");
        assert!(err.outcome_unknown(), "{kind:?}: {err}");
        assert_eq!(err.class(), ErrorClass::Retryable);
        assert_eq!(
            calls(&s.sim, "PUT /api/invoices/{id}"),
            1,
            "{kind:?}: sent once"
        );
        assert_eq!(
            payments_on(&s.sim, id),
            before + 1,
            "{kind:?}: Coupa applied it once; the caller must look before repeating"
        );
    }
}

fn payments_on(sim: &coupa_sim::SimHandle, id: i64) -> usize {
    let db = sim.state.db.lock();
    db.invoices
        .get(id)
        .and_then(|r| r.get("payments"))
        .and_then(Value::as_array)
        .map_or(0, <[Value]>::len)
}

#[tokio::test]
async fn a_slow_answer_times_out_and_the_read_is_retried() {
    let s = setup_with(Format::Json, small_sim(), |c| {
        c.http.timeout = Duration::from_millis(300);
    })
    .await;
    fault(
        &s.sim,
        FaultKind::Delay { millis: 1_000 },
        "GET",
        "/api/invoices",
        1,
    );
    let page = s
        .client
        .invoices()
        .list(page())
        .next_page()
        .await
        .expect("second attempt is fast");
    assert_eq!(page.map(|p| p.len()), Some(5));
    let attempts: Vec<_> = s
        .recorder
        .attempts()
        .into_iter()
        .filter(|a| a.path.starts_with("/api/"))
        .collect();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].status, None);
    assert!(
        attempts[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("timed out") || e.contains("timeout")),
        "{:?}",
        attempts[0].error
    );
}

#[tokio::test]
async fn nothing_listening_is_a_retryable_transport_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut c =
        coupa_api::ClientConfig::new(format!("http://127.0.0.1:{port}"), crate::common::oauth());
    c.insecure_http_simulator_only = true;
    c.retry = crate::common::quick_retries();
    c.rate = None;
    let (client, recorder) = crate::common::client(c);
    let err = client
        .invoices()
        .list(page())
        .next_page()
        .await
        .expect_err("nothing listens");
    assert_eq!(
        err.class(),
        ErrorClass::Retryable,
        "an outage, not bad credentials: {err}"
    );
    let attempts = recorder.attempts();
    assert_eq!(
        attempts.len(),
        5,
        "connection failures are retried up to the policy"
    );
    assert!(attempts.iter().all(|a| a.status.is_none()));
}

/// A gate that refuses while `open` is false, and counts what it was asked. Open, it lets a
/// write leave within `term` of the answer (no limit when `None`).
#[derive(Debug, Default)]
struct Gate {
    open: std::sync::atomic::AtomicBool,
    asked: std::sync::atomic::AtomicU64,
    term: Option<Duration>,
}

impl coupa_api::client::WriteGate for Gate {
    fn check(
        &self,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<Option<std::time::Instant>, String>> + Send + '_>,
    > {
        use std::sync::atomic::Ordering;
        self.asked.fetch_add(1, Ordering::SeqCst);
        let open = self.open.load(Ordering::SeqCst);
        let until = self.term.map(|t| std::time::Instant::now() + t);
        Box::pin(async move {
            if open {
                Ok(until)
            } else {
                Err("lease lost".to_owned())
            }
        })
    }
}

#[tokio::test]
async fn a_closed_write_gate_keeps_writes_unsent_and_lets_reads_through() {
    use std::sync::atomic::Ordering;
    let s = setup(Format::Json, small_sim()).await;
    let gate = std::sync::Arc::new(Gate::default());
    let client = s.client.with_write_gate(gate.clone());
    let page = client
        .invoices()
        .list(page())
        .next_page()
        .await
        .expect("reads pass")
        .expect("a page");
    assert_eq!(gate.asked.load(Ordering::SeqCst), 0, "GETs ask nothing");
    let id = page[0].as_ref().expect("decoded").id;
    let e = client
        .invoices()
        .mark_exported(id)
        .await
        .expect_err("the gate refuses");
    assert!(e.to_string().contains("not sent: lease lost"), "{e}");
    assert_eq!(e.class(), ErrorClass::Retryable);
    assert_eq!(
        calls(&s.sim, "PUT /api/invoices/{id}"),
        0,
        "nothing reached Coupa"
    );
    // Derived handles keep the gate.
    let derived = client.counted(Default::default());
    assert!(derived.invoices().mark_exported(id).await.is_err());
    assert_eq!(calls(&s.sim, "PUT /api/invoices/{id}"), 0);
    gate.open.store(true, Ordering::SeqCst);
    assert!(client.invoices().mark_exported(id).await.expect("sent"));
    assert_eq!(calls(&s.sim, "PUT /api/invoices/{id}"), 1);
    assert_eq!(gate.asked.load(Ordering::SeqCst), 3);
}

/// A write whose body is asked for after the gate's term (a replica frozen between the check
/// and the socket) is abandoned before Coupa can act on it, and the call says it was not sent;
/// so is a write without a body. Within its term a write goes as usual.
#[tokio::test]
async fn a_write_later_than_the_gates_term_is_not_sent() {
    let s = setup(Format::Json, small_sim()).await;
    let gate = |term| {
        std::sync::Arc::new(Gate {
            open: true.into(),
            term: Some(term),
            ..Gate::default()
        })
    };
    let page = s
        .client
        .invoices()
        .list(page())
        .next_page()
        .await
        .expect("reads pass")
        .expect("a page");
    let id = page[0].as_ref().expect("decoded").id;
    let payment = NewPayment {
        amount_paid: Decimal::new(4200, 2),
        payment_date: FixedOffset::east_opt(0)
            .expect("utc")
            .with_ymd_and_hms(2026, 11, 20, 0, 0, 0)
            .single()
            .expect("date"),
        notes: Some("CHK-78".into()),
    };
    let state = |s: &crate::common::Setup| {
        let db = s.sim.state.db.lock();
        let inv = db.invoices.get(id.get()).expect("invoice");
        (
            inv.get("exported").and_then(Value::as_bool),
            inv.get("payments")
                .and_then(Value::as_array)
                .map_or(0, <[Value]>::len),
        )
    };
    let before = state(&s);
    let late = s.client.with_write_gate(gate(Duration::ZERO));
    for e in [
        late.invoices()
            .add_payments(id, std::slice::from_ref(&payment), None)
            .await
            .expect_err("too late"),
        late.invoices()
            .mark_exported(id)
            .await
            .expect_err("too late"),
    ] {
        assert!(
            e.to_string()
                .contains("not sent: the write gate's term ran out"),
            "{e}"
        );
        assert_eq!(e.class(), ErrorClass::Retryable);
        assert!(!e.outcome_unknown(), "{e}");
    }
    assert_eq!(state(&s), before, "Coupa did not act on either");
    let punctual = s.client.with_write_gate(gate(Duration::from_secs(30)));
    punctual
        .invoices()
        .add_payments(id, &[payment], None)
        .await
        .expect("sent in time");
    assert!(punctual.invoices().mark_exported(id).await.expect("sent"));
    assert_eq!(state(&s), (Some(true), before.1 + 1));
}

/// A client configured to the instance's own limit meets no 429 from a cold start: the token
/// request takes its slot in the budget like every other call, so the first burst is not one
/// request over.
#[tokio::test]
async fn a_client_at_the_instances_own_limit_meets_no_429_from_a_cold_start() {
    let limit = coupa_sim::config::RateLimit {
        per_second: 25,
        burst: 5,
        retry_after: false,
    };
    let s = setup_with(
        Format::Json,
        SimConfig {
            rate_limit: Some(limit),
            ..small_sim()
        },
        |c| {
            c.rate = Some(RateConfig {
                per_second: f64::from(limit.per_second),
                burst: limit.burst,
                ..RateConfig::default()
            });
        },
    )
    .await;
    let pages = (0..12).map(|_| async { s.client.invoices().list(page()).next_page().await });
    for page in futures_util::future::join_all(pages).await {
        assert!(page.expect("served").is_some());
    }
    assert_eq!(calls(&s.sim, "POST /oauth2/token"), 1);
    assert_eq!(s.sim.state.stats.throttled(), 0, "{:?}", api_statuses(&s));
}

//! The `http` ERP adapter end to end: the connector's flows against the simulator and the
//! reference ERP behind HTTP ([`coupa_bridge::erp::stub`]): accepted, rejected with the ERP's
//! reasons, outages, timeouts and wrong credentials left for the next pass, every kind of
//! authentication, cancellations, payments read with a cursor, Coupa Pay payments booked once,
//! and `coupa-bridge sync invoices` killed at each step, never posting an invoice twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use coupa_bridge::commands::demo::{erp_payments_for, seed_erp_from_sim, sqlite_url};
use coupa_bridge::config::{Config, ErpKind, HttpAuth};
use coupa_bridge::connector::Connector;
use coupa_bridge::erp::sql::SqlErp;
use coupa_bridge::erp::stub::{self, RunningStub, StubAuth, StubOptions, StubRequest};
use coupa_bridge::erp::{CancelOutcome, ErpError, ErpInvoice, ErpInvoiceLine, PostOutcome};
use coupa_bridge::flows::{FlowName, PassReport, Stop};
use coupa_doc::Value;
use coupa_sim::SimConfig;
use coupa_sim::config::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use rust_decimal::Decimal;
use secrecy::SecretString;
use serde_json::json;

/// A simulator, the ERP behind the stub (its supplier master from the simulator), and the
/// folder of the connector's state store and ledger.
struct World {
    dir: tempfile::TempDir,
    sim: coupa_sim::SimHandle,
    /// The ERP's own books, served by the stub.
    erp: Arc<SqlErp>,
    stub: RunningStub,
}

impl World {
    async fn new(sim: SimConfig, options: StubOptions) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let sim = coupa_sim::spawn(sim).await.expect("simulator");
        let erp = SqlErp::connect(&sqlite_url(&dir.path().join("erp.db")))
            .await
            .expect("erp");
        seed_erp_from_sim(&erp, &sim)
            .await
            .expect("erp master data");
        let erp = Arc::new(erp);
        let stub = stub::start(erp.clone(), options).await.expect("stub");
        World {
            dir,
            sim,
            erp,
            stub,
        }
    }

    async fn invoices_only(invoices: usize) -> World {
        World::new(
            SimConfig {
                invoices,
                pay_payments: 0,
                ..SimConfig::default()
            },
            StubOptions::default(),
        )
        .await
    }

    fn ledger_url(&self) -> String {
        sqlite_url(&self.dir.path().join("ledger.db"))
    }

    fn state_url(&self) -> String {
        sqlite_url(&self.dir.path().join("state.db"))
    }

    /// The connector's configuration: `erp.kind = "http"` at the stub, monitoring option 3.
    fn config(&self) -> Config {
        let mut config = Config::default();
        config.coupa.base_url = self.sim.base_url();
        config.coupa.insecure_http_simulator_only = true;
        config.coupa.client_id = Some(DEFAULT_CLIENT_ID.into());
        config.coupa.client_secret = Some(SecretString::from(DEFAULT_CLIENT_SECRET));
        config.coupa.requests_per_second = 2_000.0;
        config.coupa.burst = 200;
        config.state.url = self.state_url();
        config.invoices.monitoring = coupa_bridge::flows::invoice_export::Monitoring::Runs;
        config.erp.kind = ErpKind::Http;
        config.erp.url = self.ledger_url();
        let base = self.stub.url();
        let h = &mut config.erp.http;
        h.invoices_url = Some(format!("{base}/invoices"));
        h.cancel_url = Some(format!("{base}/invoices/{{coupa_invoice_id}}/cancel"));
        h.pay_payments_url = Some(format!("{base}/coupa-pay-payments"));
        h.payments_url = Some(format!("{base}/payments"));
        h.timeout_secs = 5;
        config
    }

    async fn connector(&self, config: Config) -> Connector {
        Connector::open(config).await.expect("connector")
    }

    fn eligible(&self) -> BTreeMap<i64, String> {
        crate::invoice_export::eligible(&self.sim)
    }

    fn invoice(&self, id: i64) -> coupa_doc::Object {
        self.sim
            .state
            .db
            .lock()
            .invoices
            .get(id)
            .cloned()
            .expect("invoice")
    }

    fn exported(&self, id: i64) -> bool {
        self.invoice(id).get("exported").and_then(Value::as_bool) == Some(true)
    }

    /// Monitoring rows about invoice `id`: (history records, integration errors).
    fn records(&self, id: i64) -> (Vec<coupa_doc::Object>, Vec<coupa_doc::Object>) {
        let db = self.sim.state.db.lock();
        let about = |t: &coupa_sim::store::Table| -> Vec<coupa_doc::Object> {
            t.rows()
                .filter(|r| r.get("document-id").and_then(Value::as_i64) == Some(id))
                .cloned()
                .collect()
        };
        (about(&db.history_records), about(&db.integration_errors))
    }

    /// The ERP's invoices, by Coupa id: (document number, status, how many rows).
    async fn erp_invoices(&self) -> BTreeMap<i64, (String, String, usize)> {
        let mut out: BTreeMap<i64, (String, String, usize)> = BTreeMap::new();
        for r in self.erp.invoices().await.expect("erp invoices") {
            let e = out.entry(r.coupa_invoice_id).or_insert((
                r.document_number.clone(),
                r.status.clone(),
                0,
            ));
            e.2 += 1;
        }
        out
    }

    /// The stub's `POST /invoices`, by invoice.
    fn posts(&self) -> BTreeMap<i64, Vec<StubRequest>> {
        let mut out: BTreeMap<i64, Vec<StubRequest>> = BTreeMap::new();
        for r in self.stub.requests() {
            if r.method == "POST" && r.path == "/invoices" {
                out.entry(r.coupa_invoice_id.expect("an invoice"))
                    .or_default()
                    .push(r);
            }
        }
        out
    }
}

async fn pass(c: &Connector, flow: FlowName) -> PassReport {
    c.pass(flow, &Stop::never()).await.expect("pass")
}

fn text<'a>(o: &'a coupa_doc::Object, key: &str) -> &'a str {
    o.get(key).and_then(Value::as_str).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_rejected_and_cancelled_through_the_erp_api() {
    let w = World::invoices_only(40).await;
    let c = w.connector(w.config()).await;
    let eligible = w.eligible();
    let report = pass(&c, FlowName::Invoices).await;
    assert!(report.complete(), "{:?}", report.transient);
    assert_eq!(report.exported as usize, eligible.len());
    assert!(
        !report.rejected.is_empty(),
        "the seed has invoices the ERP rejects"
    );
    assert!(report.posted > 0);

    let erp = w.erp_invoices().await;
    let rejected: BTreeMap<i64, String> = report.rejected.iter().cloned().collect();
    for (id, status) in &eligible {
        assert!(w.exported(*id), "invoice {id} marked exported");
        let (history, errors) = w.records(*id);
        if let Some(reasons) = rejected.get(id) {
            assert!(
                !erp.contains_key(id),
                "rejected invoice {id} is not in the ERP"
            );
            assert_eq!((history.len(), errors.len()), (0, 1), "invoice {id}");
            // Coupa's integration error carries the ERP's own words (422 {"reasons"}).
            let said = format!("{:?}", errors[0]);
            assert!(!reasons.is_empty());
            for reason in reasons.split("; ") {
                assert!(said.contains(reason.trim()), "{said} lacks {reason}");
            }
        } else if status == "approved" {
            let (number, erp_status, rows) = &erp[id];
            assert_eq!((erp_status.as_str(), *rows), ("open", 1), "invoice {id}");
            assert_eq!((history.len(), errors.len()), (1, 0), "invoice {id}");
            assert_eq!(text(&history[0], "external-id"), number, "invoice {id}");
        }
    }
    // Every POST carried the Coupa id as its idempotency key.
    for (id, posts) in w.posts() {
        assert!(
            posts
                .iter()
                .all(|p| p.idempotency_key.as_deref() == Some(id.to_string().as_str())),
            "{posts:?}"
        );
    }

    // A posted invoice is voided in Coupa: the ERP cancels it, once.
    let (&voided, (number, _, _)) = erp.iter().next().expect("a posted invoice");
    {
        let mut db = w.sim.state.db.lock();
        let now = w.sim.state.now();
        coupa_sim::clerk::set_invoice_status(&mut db, voided, "voided", now).expect("void");
    }
    let again = pass(&c, FlowName::Invoices).await;
    assert!(again.complete(), "{:?}", again.transient);
    assert_eq!(again.cancelled, 1, "{again:?}");
    let erp = w.erp_invoices().await;
    assert_eq!(erp[&voided], (number.clone(), "cancelled".into(), 1));
    let cancels: Vec<StubRequest> = w
        .stub
        .requests()
        .into_iter()
        .filter(|r| r.path == format!("/invoices/{voided}/cancel"))
        .collect();
    assert_eq!(cancels.len(), 1, "{cancels:?}");
    assert_eq!(cancels[0].status, 200);
    assert_eq!(
        cancels[0].idempotency_key.as_deref(),
        Some(format!("cancel-{voided}").as_str())
    );
    assert!(w.exported(voided));
    // Asking again answers "already cancelled" with the number, writing nothing.
    assert_eq!(
        c.erp.cancel_invoice(voided).await.expect("cancel again"),
        CancelOutcome::AlreadyCancelled {
            document_number: number.clone()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_timeouts_and_wrong_credentials_are_transient() {
    let w = World::new(
        SimConfig {
            invoices: 30,
            pay_payments: 0,
            ..SimConfig::default()
        },
        StubOptions {
            auth: StubAuth::Bearer("right-token".into()),
        },
    )
    .await;
    let eligible = w.eligible();
    let mut config = w.config();
    config.invoices.concurrency = 1;
    config.invoices.statuses = vec!["approved".into()];
    config.erp.http.auth = HttpAuth::Bearer;

    // A wrong token: every invoice is left for the next pass, none rejected or recorded.
    config.erp.http.token = Some(SecretString::from("wrong-token"));
    let wrong = w.connector(config.clone()).await;
    let report = pass(&wrong, FlowName::Invoices).await;
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.exported, 0);
    assert!(!report.transient.is_empty());
    for (_, why) in &report.transient {
        assert!(why.contains("401") && why.contains("credentials"), "{why}");
        assert!(!why.contains("wrong-token"), "a secret in an error: {why}");
    }
    for id in eligible.keys() {
        assert!(!w.exported(*id));
        assert_eq!(w.records(*id), (Vec::new(), Vec::new()), "invoice {id}");
    }
    assert!(w.erp.invoices().await.expect("erp").is_empty());
    drop(wrong);

    // The right token, and the ERP answers 503 twice: those two wait, the rest go.
    config.erp.http.token = Some(SecretString::from("right-token"));
    let c = w.connector(config.clone()).await;
    w.stub.clear_requests();
    w.stub.fail_next(2, 503);
    let first = pass(&c, FlowName::Invoices).await;
    assert_eq!(first.transient.len(), 2, "{:?}", first.transient);
    assert!(first.transient.iter().all(|(_, why)| why.contains("503")));
    for (id, _) in &first.transient {
        assert!(!w.exported(*id), "invoice {id} waits");
    }
    let second = pass(&c, FlowName::Invoices).await;
    assert!(second.complete(), "{:?}", second.transient);
    assert_eq!(second.listed, 2);
    let posts = w.posts();
    for (id, _) in &first.transient {
        let statuses: Vec<u16> = posts[id].iter().map(|p| p.status).collect();
        assert_eq!(statuses.len(), 2, "invoice {id}: {statuses:?}");
        assert_eq!(statuses[0], 503);
    }
    for (id, posts) in &posts {
        let taken = posts.iter().filter(|p| p.status == 201).count();
        assert!(taken <= 1, "invoice {id} posted {taken} times");
    }

    // A slow ERP past timeout_secs: transient. It still books each invoice after the adapter
    // gave up; the next pass's POST (same key) learns the answer without a second booking.
    let fresh: Vec<i64> = {
        let mut db = w.sim.state.db.lock();
        let now = w.sim.state.now();
        let ids: Vec<i64> = db
            .invoices
            .rows()
            .filter(|r| r.get("exported").and_then(Value::as_bool) == Some(false))
            .filter(|r| !matches!(text(r, "status"), "approved" | "voided"))
            .filter_map(|r| r.get("id").and_then(Value::as_i64))
            .take(3)
            .collect();
        for id in &ids {
            coupa_sim::clerk::set_invoice_status(&mut db, *id, "approved", now).expect("approve");
        }
        ids
    };
    assert_eq!(fresh.len(), 3, "the seed has invoices not approved yet");
    config.erp.http.timeout_secs = 1;
    let slow = w.connector(config).await;
    w.stub.clear_requests();
    w.stub.delay_next(3, Duration::from_millis(1_500));
    let started = Instant::now();
    let timed_out = pass(&slow, FlowName::Invoices).await;
    assert!(started.elapsed() < Duration::from_secs(15));
    let waiting: BTreeSet<i64> = timed_out.transient.iter().map(|(id, _)| *id).collect();
    assert_eq!(waiting, fresh.iter().copied().collect(), "{timed_out:?}");
    for (_, why) in &timed_out.transient {
        assert!(why.contains("timed out"), "{why}");
    }
    assert!(fresh.iter().all(|id| !w.exported(*id)));
    // The stub finishes the delayed requests (the ERP books what it accepts).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let after = pass(&slow, FlowName::Invoices).await;
    assert!(after.complete(), "{:?}", after.transient);
    let erp = w.erp_invoices().await;
    let posts = w.posts();
    for id in &fresh {
        assert!(w.exported(*id), "invoice {id}");
        let statuses: Vec<u16> = posts[id].iter().map(|p| p.status).collect();
        assert_eq!(statuses.len(), 2, "invoice {id}: {statuses:?}");
        if erp.contains_key(id) {
            assert_eq!(erp[id].2, 1, "invoice {id} booked once");
            assert_eq!(
                statuses,
                [201, 200],
                "invoice {id}: booked late, then known"
            );
        } else {
            assert_eq!(statuses, [422, 422], "invoice {id}");
        }
    }
}

/// An invoice the reference ERP refuses (no such supplier): any answer but 401 shows the
/// request was let in.
fn unknown_supplier_invoice() -> ErpInvoice {
    ErpInvoice {
        coupa_invoice_id: 987_654,
        invoice_number: "AUTH-1".into(),
        coupa_supplier_id: None,
        supplier_number: Some("NO-SUCH-SUPPLIER".into()),
        supplier_name: Some("Nobody".into()),
        invoice_date: NaiveDate::from_ymd_opt(2026, 1, 15).expect("date"),
        currency: "USD".into(),
        total: Decimal::new(1000, 2),
        lines: vec![ErpInvoiceLine {
            coupa_line_id: None,
            line_num: 1,
            description: "a line".into(),
            quantity: Decimal::ONE,
            price: Decimal::new(1000, 2),
            total: Decimal::new(1000, 2),
            account_code: None,
        }],
    }
}

/// Sets the adapter's credentials, right or wrong.
type SetAuth = dyn Fn(&mut Config, bool);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_authentication_is_let_in_and_a_wrong_one_is_not() {
    let dir = tempfile::tempdir().expect("temp dir");
    let erp = Arc::new(
        SqlErp::connect(&sqlite_url(&dir.path().join("erp.db")))
            .await
            .expect("erp"),
    );
    let ledger = Arc::new(
        SqlErp::connect(&sqlite_url(&dir.path().join("ledger.db")))
            .await
            .expect("ledger"),
    );
    let secret = |s: &str| Some(SecretString::from(s));
    let kinds: Vec<(&str, StubAuth, Box<SetAuth>)> = vec![
        ("none", StubAuth::None, Box::new(|_, _| {})),
        (
            "bearer",
            StubAuth::Bearer("tok-1".into()),
            Box::new(move |c, right| {
                c.erp.http.auth = HttpAuth::Bearer;
                c.erp.http.token = secret(if right { "tok-1" } else { "tok-2" });
            }),
        ),
        (
            "basic",
            StubAuth::Basic("ap".into(), "pw-1".into()),
            Box::new(move |c, right| {
                c.erp.http.auth = HttpAuth::Basic;
                c.erp.http.username = Some("ap".into());
                c.erp.http.password = secret(if right { "pw-1" } else { "pw-2" });
            }),
        ),
        (
            "hmac",
            StubAuth::Hmac("hmac-1".into()),
            Box::new(move |c, right| {
                c.erp.http.auth = HttpAuth::Hmac;
                c.erp.http.hmac_secret = secret(if right { "hmac-1" } else { "hmac-2" });
            }),
        ),
    ];
    for (name, auth, set) in kinds {
        let stub = stub::start(erp.clone(), StubOptions { auth })
            .await
            .expect("stub");
        for right in [true, false] {
            if name == "none" && !right {
                continue;
            }
            let mut config = Config::default();
            config.erp.kind = ErpKind::Http;
            config.erp.http.invoices_url = Some(format!("{}/invoices", stub.url()));
            config.erp.http.payments_url = Some(format!("{}/payments", stub.url()));
            set(&mut config, right);
            let adapter = coupa_bridge::erp::with_ledger(&config, ledger.clone())
                .await
                .expect("adapter")
                .erp;
            let posted = adapter.post_invoice(&unknown_supplier_invoice()).await;
            let read = adapter.receive_payments().await;
            if right {
                match posted {
                    Ok(PostOutcome::Rejected { reasons }) => {
                        assert!(!reasons.is_empty(), "{name}")
                    }
                    other => panic!("{name}: {other:?}"),
                }
                assert_eq!(read.expect(name).new, 0, "{name}");
            } else {
                for e in [
                    posted.map(|_| ()).expect_err(name),
                    read.map(|_| ()).expect_err(name),
                ] {
                    match e {
                        ErpError::Refused(why) => {
                            assert!(why.contains("401"), "{name}: {why}");
                            assert!(!why.contains("-2"), "{name}: a secret in {why}");
                        }
                        other => panic!("{name}: {other:?}"),
                    }
                }
            }
        }
        let statuses: BTreeSet<u16> = stub.requests().iter().map(|r| r.status).collect();
        let expected: BTreeSet<u16> = if name == "none" {
            [422, 200].into()
        } else {
            [422, 200, 401].into()
        };
        assert_eq!(statuses, expected, "{name}: {:?}", stub.requests());
        stub.stop().await;
    }
    assert!(erp.invoices().await.expect("erp").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_are_read_with_a_cursor_and_pushed_once() {
    let w = World::invoices_only(60).await;
    let c = w.connector(w.config()).await;
    let report = pass(&c, FlowName::Invoices).await;
    assert!(report.complete(), "{:?}", report.transient);
    let booked = w.erp.invoices().await.expect("erp");
    let payments = erp_payments_for(&booked, "HTTP");
    assert!(payments.len() > 5, "{} payments", payments.len());
    w.erp.record_payments(&payments).await.expect("ERP pays");

    let first = pass(&c, FlowName::Payments).await;
    assert!(first.unreadable.is_empty(), "{:?}", first.unreadable);
    assert!(first.transient.is_empty(), "{:?}", first.transient);
    let ledger = c.ledger.payments().await.expect("ledger");
    assert_eq!(
        ledger
            .iter()
            .map(|r| r.payment_ref.as_str())
            .collect::<BTreeSet<_>>(),
        payments
            .iter()
            .map(|p| p.payment_ref.as_str())
            .collect::<BTreeSet<_>>(),
        "each payment in the ledger once"
    );
    assert!(
        ledger.iter().all(|r| r.sync_status != "pending"),
        "every payment pushed or failed: {ledger:?}"
    );
    let synced = ledger.iter().filter(|r| r.sync_status == "synced").count();
    assert!(
        synced + 2 >= payments.len(),
        "{synced} of {}",
        payments.len()
    );
    // The feed was read from the start, then from the last id until an empty page.
    let gets: Vec<StubRequest> = w
        .stub
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    let last = w
        .erp
        .payments()
        .await
        .expect("erp")
        .last()
        .expect("a row")
        .id;
    assert_eq!(
        c.ledger.cursor("payments").await.expect("cursor"),
        Some(last.to_string())
    );

    // A second pass reads nothing new and pushes nothing.
    let before: Vec<_> = c.ledger.payments().await.expect("ledger");
    let second = pass(&c, FlowName::Payments).await;
    assert!(second.complete(), "{second:?}");
    assert_eq!(second.posted, 0);
    assert_eq!(c.ledger.payments().await.expect("ledger"), before);
    let gets = w
        .stub
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(gets, 3, "one GET from the saved cursor");
    assert_eq!(c.erp.receive_payments().await.expect("read").new, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coupa_pay_payment_is_booked_once() {
    let w = World::new(
        SimConfig {
            invoices: 120,
            pay_payments: 20,
            ..SimConfig::default()
        },
        StubOptions::default(),
    )
    .await;
    let c = w.connector(w.config()).await;
    let invoices = pass(&c, FlowName::Invoices).await;
    assert!(invoices.complete(), "{:?}", invoices.transient);
    let first = pass(&c, FlowName::PayPayments).await;
    assert!(first.transient.is_empty(), "{:?}", first.transient);
    assert!(first.posted > 0, "{first:?}");
    let booked = w.erp.pay_payments().await.expect("erp");
    assert_eq!(booked.len() as u64, first.posted, "{first:?}");
    let posts: Vec<StubRequest> = w
        .stub
        .requests()
        .into_iter()
        .filter(|r| r.path == "/coupa-pay-payments")
        .collect();
    assert_eq!(posts.len(), booked.len(), "one POST per payment");
    let keys: BTreeSet<&str> = posts
        .iter()
        .filter_map(|p| p.idempotency_key.as_deref())
        .collect();
    assert_eq!(keys.len(), posts.len());
    assert!(keys.iter().all(|k| k.starts_with("coupa-pay-")), "{keys:?}");

    // Booking a payment the ledger has answered for again: unchanged, no request.
    let second = pass(&c, FlowName::PayPayments).await;
    assert!(second.complete(), "{second:?}");
    assert_eq!(second.posted + second.updated, 0, "{second:?}");
    let count = |w: &World| {
        w.stub
            .requests()
            .iter()
            .filter(|r| r.path == "/coupa-pay-payments")
            .count()
    };
    assert_eq!(count(&w), posts.len());
    assert_eq!(w.erp.pay_payments().await.expect("erp").len(), booked.len());

    // Coupa changes a booked payment's status: a newer version, POSTed once under its own key.
    let changed = booked
        .iter()
        .find(|p| p.status == "completed_successfully")
        .expect("a settled payment")
        .coupa_payment_id;
    {
        let mut db = w.sim.state.db.lock();
        let now = w.sim.state.now() + chrono::Duration::seconds(5);
        coupa_sim::clerk::set_pay_status(&mut db, changed, "completed_with_errors", now)
            .expect("status");
    }
    let third = pass(&c, FlowName::PayPayments).await;
    assert_eq!((third.posted, third.updated), (0, 1), "{third:?}");
    let posts: Vec<StubRequest> = w
        .stub
        .requests()
        .into_iter()
        .filter(|r| r.path == "/coupa-pay-payments")
        .collect();
    assert_eq!(posts.len(), booked.len() + 1);
    let last = posts.last().expect("the update");
    let key = last.idempotency_key.as_deref().unwrap_or("");
    assert!(key.starts_with(&format!("coupa-pay-{changed}-")), "{key}");
    assert!(
        posts[..posts.len() - 1]
            .iter()
            .all(|p| p.idempotency_key.as_deref() != Some(key)),
        "a new version has a new key"
    );
    let row = w
        .erp
        .pay_payments()
        .await
        .expect("erp")
        .into_iter()
        .find(|p| p.coupa_payment_id == changed)
        .expect("booked");
    assert_eq!(row.status, "completed_with_errors");
    let fourth = pass(&c, FlowName::PayPayments).await;
    assert_eq!((fourth.posted, fourth.updated), (0, 0), "{fourth:?}");
    assert_eq!(count(&w), booked.len() + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_each_step_every_invoice_is_posted_once_with_one_key() {
    let w = World::invoices_only(400).await;
    let eligible = w.eligible();
    let path = w.dir.path().join("coupa-bridge.toml");
    let base = w.stub.url();
    std::fs::write(
        &path,
        format!(
            "[coupa]\nbase_url = \"{}\"\nclient_id = \"{DEFAULT_CLIENT_ID}\"\n\
             insecure_http_simulator_only = true\nrequests_per_second = 2000\nburst = 200\n\n\
             [state]\nurl = \"{}\"\n\n\
             [invoices]\nmonitoring = \"runs\"\nconcurrency = 4\n\n\
             [erp]\nkind = \"http\"\nurl = \"{}\"\n\n\
             [erp.http]\ninvoices_url = \"{base}/invoices\"\n\
             cancel_url = \"{base}/invoices/{{coupa_invoice_id}}/cancel\"\n\
             pay_payments_url = \"{base}/coupa-pay-payments\"\ntimeout_secs = 5\n",
            w.sim.base_url(),
            w.state_url(),
            w.ledger_url(),
        ),
    )
    .expect("config");
    let sync = |failpoint: Option<String>| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_coupa-bridge"));
        c.args(["sync", "invoices", "--config"])
            .arg(&path)
            .env("COUPA_BRIDGE__COUPA__CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        match failpoint {
            Some(f) => c.env(coupa_bridge::failpoint::ENV, f),
            None => c.env_remove(coupa_bridge::failpoint::ENV),
        };
        c
    };
    let started = Instant::now();
    for (point, n) in [
        ("erp-done", 2),
        ("posted", 3),
        ("record-created", 2),
        ("recorded", 2),
        ("exported", 3),
    ] {
        let status = sync(Some(format!("{point}={n}")))
            .status()
            .await
            .expect("binary runs");
        assert!(!status.success(), "{point}={n} must crash the pass");
    }
    // Then SIGKILLs at instants spread over a pass (a fixed sequence, so a failure repeats),
    // until a pass ends by itself.
    let mut delay = 0x5EED_u64;
    let (mut kills, mut passes) = (0, 0);
    loop {
        passes += 1;
        assert!(passes < 40, "no pass completed");
        let mut child = sync(None).spawn().expect("binary starts");
        delay = delay
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let after = Duration::from_millis(15 + (delay >> 33) % 150);
        let status = if kills < 12 {
            match tokio::time::timeout(after, child.wait()).await {
                Ok(status) => status.expect("wait"),
                Err(_) => {
                    child.kill().await.expect("SIGKILL");
                    kills += 1;
                    continue;
                }
            }
        } else {
            child.wait().await.expect("wait")
        };
        if status.success() && eligible.keys().all(|id| w.exported(*id)) {
            break;
        }
    }
    println!(
        "http crash test: {} eligible invoices, 5 crashes at failpoints, {kills} SIGKILLs, \
         {passes} passes, {:.1}s",
        eligible.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(kills >= 3, "the test must really kill: {kills}");

    let erp = w.erp_invoices().await;
    assert!(erp.values().all(|(_, _, rows)| *rows == 1), "posted twice");
    let posts = w.posts();
    for (id, status) in &eligible {
        let (history, errors) = w.records(*id);
        let key = id.to_string();
        if status == "approved" {
            let sent = posts.get(id).expect("every approved invoice was POSTed");
            assert!(
                sent.iter()
                    .all(|p| p.idempotency_key.as_deref() == Some(key.as_str())),
                "invoice {id}: {sent:?}"
            );
            let created = sent.iter().filter(|p| p.status == 201).count();
            if erp.contains_key(id) {
                assert_eq!(created, 1, "invoice {id} booked once: {sent:?}");
                assert_eq!((history.len(), errors.len()), (1, 0), "invoice {id}");
            } else {
                assert_eq!(created, 0);
                assert_eq!((history.len(), errors.len()), (0, 1), "invoice {id}");
            }
        } else {
            assert_eq!(history.len() + errors.len(), 1, "voided invoice {id}");
        }
        assert!(w.exported(*id));
    }
    let repeated = posts.values().filter(|p| p.len() > 1).count();
    assert!(
        repeated > 0,
        "a crash after the ERP answered re-posts an invoice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_answer_of_the_erp_is_read_by_its_status() {
    let dir = tempfile::tempdir().expect("temp dir");
    let erp = Arc::new(
        SqlErp::connect(&sqlite_url(&dir.path().join("erp.db")))
            .await
            .expect("erp"),
    );
    let ledger = Arc::new(
        SqlErp::connect(&sqlite_url(&dir.path().join("ledger.db")))
            .await
            .expect("ledger"),
    );
    let stub = stub::start(erp, StubOptions::default())
        .await
        .expect("stub");
    let mut config = Config::default();
    config.erp.kind = ErpKind::Http;
    config.erp.http.invoices_url = Some(format!("{}/invoices", stub.url()));
    config.erp.http.cancel_url = Some(format!(
        "{}/invoices/{{coupa_invoice_id}}/cancel",
        stub.url()
    ));
    config.erp.http.payments_url = Some(format!("{}/payments", stub.url()));
    config.erp.http.timeout_secs = 1;
    let adapter = coupa_bridge::erp::with_ledger(&config, ledger.clone())
        .await
        .expect("adapter")
        .erp;
    let invoice = unknown_supplier_invoice();
    let post = |status: u16, body: serde_json::Value| {
        stub.answer_next(1, status, body);
        adapter.post_invoice(&invoice)
    };
    let accepted = |n: &str, already: bool| PostOutcome::Accepted {
        document_number: n.into(),
        already_posted: already,
    };
    assert_eq!(
        post(201, json!({"document_number": "D-1"}))
            .await
            .expect("201"),
        accepted("D-1", false)
    );
    assert_eq!(
        post(409, json!({"document_number": "D-1"}))
            .await
            .expect("409"),
        accepted("D-1", true)
    );
    assert_eq!(
        post(202, json!({})).await.expect("202"),
        PostOutcome::Pending
    );
    assert_eq!(
        post(202, json!({"document_number": "D-2"}))
            .await
            .expect("202"),
        accepted("D-2", false)
    );
    assert_eq!(
        post(
            422,
            json!({"reasons": ["supplier unknown", "period closed"]})
        )
        .await
        .expect("422"),
        PostOutcome::Rejected {
            reasons: vec!["supplier unknown".into(), "period closed".into()]
        }
    );
    // No reasons where the mapping looks: the body's text, cut.
    let long = "x".repeat(2_000);
    match post(400, json!({ "message": long })).await.expect("400") {
        PostOutcome::Rejected { reasons } => {
            assert_eq!(reasons.len(), 1);
            assert!(reasons[0].starts_with("{\"message\":\"xxx"), "{reasons:?}");
            assert!(reasons[0].len() < 520, "cut: {}", reasons[0].len());
        }
        other => panic!("{other:?}"),
    }
    // The setup's fault, not the invoice's: transient, saying what to check.
    for (status, check) in [
        (401, "credentials"),
        (403, "permissions"),
        (404, "URL"),
        (405, "URL"),
        (413, "size"),
        (429, "rate"),
        (302, "redirect"),
    ] {
        match post(status, json!({"reasons": ["no"]})).await {
            Err(ErpError::Refused(why)) => {
                assert!(
                    why.contains(&status.to_string()) && why.contains(check),
                    "{why}"
                )
            }
            other => panic!("{status}: {other:?}"),
        }
    }
    match post(200, json!({"id": 7})).await {
        Err(ErpError::Refused(why)) => assert!(why.contains("no document number"), "{why}"),
        other => panic!("{other:?}"),
    }
    for status in [500, 502, 503] {
        match post(status, json!({})).await {
            Err(ErpError::Unavailable(why)) => assert!(why.contains(&status.to_string())),
            other => panic!("{status}: {other:?}"),
        }
    }
    // Cancellations.
    let cancel = |status: u16, body: serde_json::Value| {
        stub.answer_next(1, status, body);
        adapter.cancel_invoice(5)
    };
    assert_eq!(
        cancel(200, json!({"document_number": "D-5"}))
            .await
            .expect("200"),
        CancelOutcome::Cancelled {
            document_number: "D-5".into()
        }
    );
    assert_eq!(
        cancel(409, json!({"document_number": "D-5"}))
            .await
            .expect("409"),
        CancelOutcome::AlreadyCancelled {
            document_number: "D-5".into()
        }
    );
    assert_eq!(
        cancel(404, json!({})).await.expect("404"),
        CancelOutcome::NotPosted
    );
    assert_eq!(
        cancel(202, json!({})).await.expect("202"),
        CancelOutcome::Pending
    );
    match cancel(422, json!({"reasons": ["posted in a closed period"]})).await {
        Err(ErpError::Refused(why)) => assert!(why.contains("closed period"), "{why}"),
        other => panic!("{other:?}"),
    }

    // A payments page: a new payment, one the mapping cannot read, one that clashes with a
    // payment the ledger holds. Each refusal names the page and item; the cursor moves on.
    let payment = |r: &str, amount: &str| {
        json!({"payment_ref": r, "invoice_number": "INV-1", "amount": amount,
               "currency": "USD", "payment_date": "2026-02-01"})
    };
    let held: coupa_bridge::erp::NewErpPayment =
        serde_json::from_value(payment("P-1", "10.00")).expect("a payment");
    ledger.accept_payments(&[held]).await.expect("held");
    stub.answer_next(
        1,
        200,
        json!({"items": [payment("P-2", "5.00"), payment("P-3", "abc"), payment("P-1", "11.00")],
               "next_cursor": "7"}),
    );
    let received = adapter.receive_payments().await.expect("read");
    assert_eq!(received.new, 1, "{received:?}");
    assert_eq!(received.refused.len(), 2, "{received:?}");
    assert!(
        received
            .refused
            .iter()
            .all(|r| r.starts_with("payments_url page (start)"))
    );
    assert!(received.refused[0].contains("index 1"), "{received:?}");
    assert!(
        received.refused[1].contains("index 2") && received.refused[1].contains("another amount"),
        "{received:?}"
    );
    assert_eq!(
        ledger.cursor("payments").await.expect("cursor").as_deref(),
        Some("7")
    );
    let refs: BTreeSet<String> = ledger
        .payments()
        .await
        .expect("ledger")
        .into_iter()
        .map(|p| p.payment_ref)
        .collect();
    assert_eq!(refs, ["P-1".to_owned(), "P-2".to_owned()].into());

    // An ERP that does not answer costs one timeout per page, not one per invoice.
    stub.clear_requests();
    stub.delay_next(100, Duration::from_millis(1_500));
    let page: Vec<ErpInvoice> = (1..=12)
        .map(|n| ErpInvoice {
            coupa_invoice_id: n,
            ..unknown_supplier_invoice()
        })
        .collect();
    let started = Instant::now();
    let answers = adapter.post_invoices(&page).await;
    assert!(started.elapsed() < Duration::from_millis(2_500));
    assert_eq!(answers.len(), page.len());
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Err(ErpError::Unavailable(_)))),
        "{answers:?}"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(stub.requests().len(), 4, "the first few only");
    stub.stop().await;
}

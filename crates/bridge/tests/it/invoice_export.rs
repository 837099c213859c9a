//! The invoice export flow against the simulator, the reference ERP and the state store, for
//! each monitoring option in JSON and XML.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use coupa_api::observe::Recorder;
use coupa_api::{Client, ClientConfig, Format};
use coupa_bridge::commands::demo::{seed_erp_from_sim, sqlite_url};
use coupa_bridge::erp::sql::SqlErp;
use coupa_bridge::erp::{
    BoxFuture, CancelOutcome, Erp, ErpError, ErpInvoice, ErpPayPayment, ErpPayment,
    MalformedPayment, PayBooking, PaymentSync, PostOutcome,
};
use coupa_bridge::flows::PassReport;
use coupa_bridge::flows::invoice_export::{InvoiceExport, Monitoring, Settings};
use coupa_bridge::store::Store;
use coupa_doc::{Object, Value};
use coupa_sim::{SimConfig, SimHandle};

pub struct Harness {
    pub sim: SimHandle,
    pub erp: SqlErp,
    pub store: Store,
    pub client: Client,
    pub _dir: tempfile::TempDir,
}

pub fn client_config(sim: &SimHandle, format: Format) -> ClientConfig {
    let mut c = coupa_bridge::commands::demo::sim_client_config(sim.base_url());
    c.format = format;
    c.rate = None;
    c.retry.base_delay = std::time::Duration::from_millis(5);
    c.retry.max_delay = std::time::Duration::from_millis(100);
    c
}

pub async fn harness_with(
    sim_config: SimConfig,
    client: impl FnOnce(&SimHandle) -> ClientConfig,
) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = coupa_sim::spawn(sim_config).await.expect("simulator");
    let erp = SqlErp::connect(&sqlite_url(&dir.path().join("erp.db")))
        .await
        .expect("erp");
    seed_erp_from_sim(&erp, &sim)
        .await
        .expect("erp master data");
    let store = Store::connect(&sqlite_url(&dir.path().join("state.db")))
        .await
        .expect("store");
    let client = Client::new(client(&sim), Arc::new(Recorder::default())).expect("client");
    Harness {
        sim,
        erp,
        store,
        client,
        _dir: dir,
    }
}

pub async fn harness(format: Format, invoices: usize) -> Harness {
    harness_with(
        SimConfig {
            invoices,
            pay_payments: 0,
            ..SimConfig::default()
        },
        |sim| client_config(sim, format),
    )
    .await
}

/// Invoices the flow should pick up, with their status: approved or voided, not exported.
pub fn eligible(sim: &coupa_sim::RunningSim) -> BTreeMap<i64, String> {
    let db = sim.state.db.lock();
    db.invoices
        .rows()
        .filter(|r| r.get("exported").and_then(Value::as_bool) == Some(false))
        .filter_map(|r| {
            let status = r.get("status").and_then(Value::as_str)?;
            matches!(status, "approved" | "voided").then(|| {
                (
                    r.get("id").and_then(Value::as_i64).unwrap_or_default(),
                    status.to_owned(),
                )
            })
        })
        .collect()
}

impl Harness {
    pub fn flow(&self, monitoring: Monitoring) -> InvoiceExport {
        InvoiceExport::new(
            self.client.clone(),
            Arc::new(self.erp.clone()),
            self.store.clone(),
            Settings {
                monitoring,
                ..Settings::default()
            },
        )
    }

    pub fn eligible(&self) -> BTreeMap<i64, String> {
        eligible(&self.sim)
    }

    pub fn invoice(&self, id: i64) -> Object {
        self.sim
            .state
            .db
            .lock()
            .invoices
            .get(id)
            .cloned()
            .expect("invoice")
    }

    /// Records of `table` about invoice `id`: (id, resolved, status).
    pub fn records(&self, errors: bool, id: i64) -> Vec<(i64, bool, String)> {
        let db = self.sim.state.db.lock();
        let table = if errors {
            &db.integration_errors
        } else {
            &db.history_records
        };
        table
            .rows()
            .filter(|r| r.get("document-id").and_then(Value::as_i64) == Some(id))
            .map(|r| {
                (
                    r.get("id").and_then(Value::as_i64).unwrap_or_default(),
                    r.get("resolved").and_then(Value::as_bool).unwrap_or(false),
                    r.get("status")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                )
            })
            .collect()
    }
}

fn custom(inv: &Object, field: &str) -> Option<String> {
    inv.get("custom-fields")
        .and_then(|c| c.as_object())
        .and_then(|c| c.get(field))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The checks every option shares after a first pass.
async fn check_first_pass(h: &Harness, before: &BTreeMap<i64, String>, report: &PassReport) {
    assert!(
        report.complete(),
        "nothing transient: {:?}",
        report.transient
    );
    assert_eq!(report.listed as usize, before.len());
    assert_eq!(
        report.exported as usize,
        before.len(),
        "every eligible invoice acknowledged"
    );
    for id in before.keys() {
        assert_eq!(
            h.invoice(*id).get("exported").and_then(Value::as_bool),
            Some(true),
            "invoice {id} marked exported"
        );
    }
    let erp = h.erp.invoices().await.expect("erp rows");
    let in_erp: BTreeSet<i64> = erp.iter().map(|r| r.coupa_invoice_id).collect();
    assert_eq!(in_erp.len(), erp.len(), "one ERP row per Coupa invoice");
    let rejected: BTreeSet<i64> = report.rejected.iter().map(|(id, _)| *id).collect();
    for (id, status) in before {
        if status == "approved" && !rejected.contains(id) {
            assert!(in_erp.contains(id), "approved invoice {id} reached the ERP");
        }
        if rejected.contains(id) {
            assert!(
                !in_erp.contains(id),
                "rejected invoice {id} is not in the ERP"
            );
        }
    }
    assert!(
        !report.rejected.is_empty(),
        "the seed has invoices the ERP rejects"
    );
    assert_eq!(
        report.posted as usize + report.cancelled as usize + rejected.len(),
        before.len()
    );
}

#[tokio::test]
async fn option_1_custom_fields_in_json_and_xml() {
    for format in [Format::Json, Format::Xml] {
        let h = harness(format, 80).await;
        let before = h.eligible();
        let flow = h.flow(Monitoring::CustomFields);
        let served_before = h.sim.state.stats.total_calls();
        let report = flow.run().await.expect("pass");
        check_first_pass(&h, &before, &report).await;
        // The pass counts its own calls, as Coupa saw them, and its run record keeps them.
        assert_eq!(
            report.api_calls,
            h.sim.state.stats.total_calls() - served_before
        );
        let run = h.store.run(report.run).await.expect("store").expect("run");
        assert_eq!(run.api_calls, report.api_calls);
        // A rejected invoice is acknowledged in Coupa (exported) but counted failed, not ok.
        assert_eq!(
            run.documents_ok + run.documents_failed,
            report.exported + report.unreadable.len() as u64
        );
        assert_eq!(run.documents_failed, report.rejected.len() as u64);
        assert_eq!(run.documents_ok, report.posted + report.cancelled);
        let erp = h.erp.invoices().await.expect("erp");
        for row in &erp {
            let inv = h.invoice(row.coupa_invoice_id);
            assert_eq!(
                custom(&inv, "cf-erp-invoice-number").as_deref(),
                Some(row.document_number.as_str())
            );
            let status = custom(&inv, "cf-integration-status").expect("status written");
            assert!(status.starts_with("Success: "), "{status}");
        }
        for (id, reasons) in &report.rejected {
            let status = custom(&h.invoice(*id), "cf-integration-status").expect("status");
            assert_eq!(status, format!("Failure: {reasons}"), "{format:?}");
            assert!(custom(&h.invoice(*id), "cf-erp-invoice-number").is_none());
        }
        // No history records or errors under option 1.
        assert!(h.sim.state.db.lock().history_records.is_empty());
        let second = flow.run().await.expect("second pass");
        assert_eq!((second.listed, second.exported), (0, 0), "{format:?}");
    }
}

#[tokio::test]
async fn a_custom_field_missing_in_coupa_stops_the_pass_with_one_error() {
    let h = harness(Format::Json, 30).await;
    h.sim
        .state
        .db
        .lock()
        .define_invoice_custom_fields(vec!["cf-integration-status".to_owned()]);
    let before = h.eligible();
    let flow = h.flow(Monitoring::CustomFields);
    let e = flow.run().await.expect_err("the pass stops");
    let text = e.to_string();
    assert!(
        matches!(e, coupa_bridge::flows::FlowError::Setup(_)),
        "one setup error, not one per invoice: {text}"
    );
    assert!(
        text.contains("'cf-erp-invoice-number'") && text.contains("Setup > Custom Fields"),
        "{text}"
    );
    // Nothing posted was acknowledged (a rejection writes only the status field, which exists);
    // what reached the ERP is journaled and resumed, not posted twice.
    let erp_ids: BTreeSet<i64> = h
        .erp
        .invoices()
        .await
        .expect("erp")
        .iter()
        .map(|r| r.coupa_invoice_id)
        .collect();
    let after = h.eligible();
    for id in before.keys().filter(|id| !after.contains_key(id)) {
        assert!(
            !erp_ids.contains(id),
            "posted invoice {id} was acknowledged"
        );
    }
    let posted_first = erp_ids.len();
    assert!(
        posted_first <= Settings::default().concurrency + 50,
        "the pass stopped early: {posted_first} ERP rows"
    );
    h.sim.state.db.lock().define_invoice_custom_fields(vec![
        "cf-erp-invoice-number".to_owned(),
        "cf-integration-status".to_owned(),
    ]);
    let report = flow.run().await.expect("defined, the pass goes through");
    assert!(report.complete(), "{:?}", report.transient);
    assert_eq!(report.exported as usize, after.len());
    assert!(h.eligible().is_empty(), "every invoice acknowledged");
    let erp = h.erp.invoices().await.expect("erp");
    let ids: BTreeSet<i64> = erp.iter().map(|r| r.coupa_invoice_id).collect();
    assert_eq!(ids.len(), erp.len(), "one ERP row per Coupa invoice");
    for row in &erp {
        assert_eq!(
            custom(&h.invoice(row.coupa_invoice_id), "cf-erp-invoice-number").as_deref(),
            Some(row.document_number.as_str())
        );
    }
}

#[tokio::test]
async fn option_2_history_records_in_json_and_xml() {
    for format in [Format::Json, Format::Xml] {
        let h = harness(format, 80).await;
        let before = h.eligible();
        let flow = h.flow(Monitoring::History);
        let report = flow.run().await.expect("pass");
        check_first_pass(&h, &before, &report).await;
        for id in before.keys() {
            let records = h.records(false, *id);
            assert_eq!(records.len(), 1, "{format:?}: one history record for {id}");
            let rejected = report.rejected.iter().any(|(r, _)| r == id);
            assert_eq!(records[0].2, if rejected { "Error" } else { "Success" });
            assert!(!records[0].1, "unresolved until the next cycle");
        }
        let alerts = h.sim.state.db.lock().alerts.len();
        assert!(
            alerts >= report.rejected.len(),
            "an alert per rejection: {alerts}"
        );
        let second = flow.run().await.expect("second pass");
        assert_eq!((second.listed, second.exported), (0, 0));
    }
}

#[tokio::test]
async fn option_3_runs_errors_and_a_clerks_reset_in_json_and_xml() {
    for format in [Format::Json, Format::Xml] {
        let h = harness(format, 80).await;
        let before = h.eligible();
        let flow = h.flow(Monitoring::Runs);
        let report = flow.run().await.expect("pass");
        check_first_pass(&h, &before, &report).await;
        let run_id = report.coupa_run.expect("a Coupa run");
        {
            let db = h.sim.state.db.lock();
            let run = db.integration_runs.get(run_id).expect("run");
            assert_eq!(
                run.get("total-records").and_then(Value::as_i64),
                Some(before.len() as i64)
            );
            // Unresolved integration errors end the run `errored`, as Coupa does.
            assert_eq!(run.get("status").and_then(Value::as_str), Some("errored"));
        }
        for (id, reasons) in &report.rejected {
            let errors = h.records(true, *id);
            assert_eq!(errors.len(), 1, "{format:?}: one error for rejected {id}");
            let db = h.sim.state.db.lock();
            let e = db.integration_errors.get(errors[0].0).expect("error");
            assert_eq!(
                e.pointer(&["integration-run", "id"])
                    .and_then(Value::as_i64),
                Some(run_id)
            );
            let msg = e
                .get("responses")
                .and_then(Value::as_array)
                .and_then(|r| r.first())
                .and_then(|r| r.as_object())
                .and_then(|r| r.get("response-message"))
                .and_then(Value::as_str)
                .unwrap_or("");
            assert!(reasons.contains(msg), "{msg} in {reasons}");
        }
        for (id, _) in before
            .iter()
            .filter(|(id, _)| !report.rejected.iter().any(|(r, _)| r == *id))
        {
            let h_records = h.records(false, *id);
            assert_eq!(h_records.len(), 1, "one Success history record for {id}");
        }

        // AP fixes a rejected invoice's cause in the ERP (supplier known and active, period
        // open) and a clerk resets its export flag: the next pass posts it and resolves the
        // old error.
        let (fixed, _) = report.rejected[0].clone();
        let inv = h.invoice(fixed);
        let number = inv
            .pointer(&["supplier", "number"])
            .and_then(Value::as_str)
            .expect("supplier number")
            .to_owned();
        let period = inv
            .get("invoice-date")
            .and_then(Value::as_datetime)
            .expect("invoice date")
            .format("%Y-%m")
            .to_string();
        h.erp
            .upsert_supplier(&number, "Fixed by AP", true)
            .await
            .expect("supplier");
        h.erp.set_period(&period, true).await.expect("period");
        // And an exported, posted invoice gets voided: its ERP invoice must be cancelled.
        let posted = h.erp.invoices().await.expect("erp")[0].coupa_invoice_id;
        {
            let mut db = h.sim.state.db.lock();
            let now = h.sim.state.now();
            coupa_sim::clerk::reset_export(&mut db, fixed, now).expect("reset");
            coupa_sim::clerk::set_invoice_status(&mut db, posted, "voided", now).expect("void");
        }
        let again = flow.run().await.expect("third pass");
        assert_eq!(
            again.listed, 2,
            "{format:?}: the reset and the voided invoice"
        );
        assert!(again.rejected.is_empty(), "{:?}", again.rejected);
        let errors = h.records(true, fixed);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].1, "the old error is resolved");
        let erp = h.erp.invoices().await.expect("erp");
        assert!(
            erp.iter().any(|r| r.coupa_invoice_id == fixed),
            "posted after the fix"
        );
        let cancelled = erp
            .iter()
            .find(|r| r.coupa_invoice_id == posted)
            .expect("row");
        assert_eq!(cancelled.status, "cancelled");
        assert_eq!(
            erp.iter().filter(|r| r.coupa_invoice_id == posted).count(),
            1
        );
        let last = flow.run().await.expect("fourth pass");
        assert_eq!((last.listed, last.exported), (0, 0));
    }
}

/// An ERP that is down.
struct DownErp;

impl Erp for DownErp {
    fn post_invoice<'a>(
        &'a self,
        _: &'a ErpInvoice,
    ) -> BoxFuture<'a, Result<PostOutcome, ErpError>> {
        Box::pin(async { Err(ErpError::Unavailable("connection refused".into())) })
    }

    fn cancel_invoice<'a>(&'a self, _: i64) -> BoxFuture<'a, Result<CancelOutcome, ErpError>> {
        Box::pin(async { Err(ErpError::Unavailable("connection refused".into())) })
    }

    fn pending_payments(
        &self,
        _: i64,
        _: usize,
    ) -> BoxFuture<'_, Result<Vec<Result<ErpPayment, MalformedPayment>>, ErpError>> {
        Box::pin(async { Err(ErpError::Unavailable("connection refused".into())) })
    }

    fn settle_payments<'a>(
        &'a self,
        _: &'a [(i64, PaymentSync)],
    ) -> BoxFuture<'a, Result<(), ErpError>> {
        Box::pin(async { Err(ErpError::Unavailable("connection refused".into())) })
    }

    fn book_pay_payment<'a>(
        &'a self,
        _: &'a ErpPayPayment,
    ) -> BoxFuture<'a, Result<PayBooking, ErpError>> {
        Box::pin(async { Err(ErpError::Unavailable("connection refused".into())) })
    }

    fn pay_problems<'a>(
        &'a self,
        _: &'a [i64],
    ) -> BoxFuture<'a, Result<std::collections::HashMap<i64, Vec<String>>, ErpError>> {
        Box::pin(async { Err(ErpError::Unavailable("connection refused".into())) })
    }
}

#[tokio::test]
async fn an_erp_outage_leaves_invoices_unexported_for_the_next_pass() {
    let h = harness(Format::Json, 30).await;
    let before = h.eligible();
    let flow = InvoiceExport::new(
        h.client.clone(),
        Arc::new(DownErp),
        h.store.clone(),
        Settings {
            monitoring: Monitoring::CustomFields,
            ..Settings::default()
        },
    );
    let report = flow.run().await.expect("the pass itself completes");
    assert!(!report.complete());
    assert_eq!(
        report.transient.len(),
        before.len(),
        "{:?}",
        report.transient
    );
    assert!(
        report
            .transient
            .iter()
            .all(|(_, why)| why.contains("ERP unavailable"))
    );
    for id in before.keys() {
        assert_eq!(
            h.invoice(*id).get("exported").and_then(Value::as_bool),
            Some(false)
        );
    }
    // With the ERP back, the next pass exports them all.
    let report = h.flow(Monitoring::CustomFields).run().await.expect("pass");
    assert!(report.complete());
    assert_eq!(report.exported as usize, before.len());
}

#[tokio::test]
async fn coupas_throttling_loses_no_invoice() {
    let h = harness_with(
        SimConfig {
            invoices: 40,
            pay_payments: 0,
            rate_limit: Some(coupa_sim::config::RateLimit {
                per_second: 25,
                burst: 20,
                retry_after: false,
            }),
            ..SimConfig::default()
        },
        |sim| {
            let mut c = client_config(sim, Format::Json);
            // A governor that trusts a bigger budget than Coupa's: 429s will come.
            c.rate = Some(coupa_api::rate::RateConfig {
                per_second: 60.0,
                burst: 30,
                ..Default::default()
            });
            c.retry = coupa_api::retry::RetryPolicy::default();
            c
        },
    )
    .await;
    let before = h.eligible();
    let mut settings = Settings {
        monitoring: Monitoring::Runs,
        ..Settings::default()
    };
    settings.concurrency = 8;
    let flow = InvoiceExport::new(
        h.client.clone(),
        Arc::new(h.erp.clone()),
        h.store.clone(),
        settings,
    );
    let report = flow.run().await.expect("pass");
    assert!(report.complete(), "{:?}", report.transient);
    assert_eq!(report.exported as usize, before.len());
    assert!(
        h.sim.state.stats.throttled() > 0,
        "the simulator did throttle"
    );
    println!(
        "throttled run: {} invoices, {} calls, {} answered 429",
        before.len(),
        h.sim.state.stats.total_calls(),
        h.sim.state.stats.throttled()
    );
}

/// A stop (the daemon's shutdown) mid-pass: the invoices already started are finished end to
/// end, the rest are left untouched, the run ends `stopped`, Coupa's run is closed; the next
/// pass does the rest, nothing twice.
#[tokio::test]
async fn a_stopped_pass_finishes_the_invoices_in_hand_and_leaves_the_rest() {
    use coupa_bridge::flows::Stop;
    use coupa_sim::faults::{FaultKind, FaultRule};

    let h = harness(Format::Json, 200).await;
    let before = h.eligible();
    // Slow every write, so the stop lands while invoices are in hand.
    h.sim.state.faults.add(FaultRule {
        kind: FaultKind::Delay { millis: 30 },
        method: Some("PUT".into()),
        path: Some("/api/invoices".into()),
        count: None,
        rate: None,
        seed: 0,
    });
    let (handle, stop) = Stop::new();
    let flow = h.flow(Monitoring::Runs).with_stop(stop);
    let pass = tokio::spawn(async move { flow.run().await });
    while h.erp.invoices().await.expect("erp").len() < 5 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    handle.stop();
    let report = pass.await.expect("joined").expect("the pass ends normally");
    assert!(report.stopped && !report.complete(), "{report:?}");
    assert!((report.listed as usize) < before.len(), "{report:?}");
    let run = h.store.run(report.run).await.expect("store").expect("run");
    assert_eq!(run.status, "stopped");
    let coupa_run = report.coupa_run.expect("a Coupa run");
    {
        let db = h.sim.state.db.lock();
        let status = db
            .integration_runs
            .get(coupa_run)
            .and_then(|r| r.get("status").and_then(Value::as_str).map(str::to_owned));
        assert_ne!(status.as_deref(), Some("running"), "Coupa's run is closed");
    }
    // No half-state: every invoice the pass touched is at its final step and exported in Coupa;
    // every other one is untouched.
    let mut touched = 0;
    for id in before.keys() {
        let journal = h
            .store
            .journal_get("invoices", &format!("invoice:{id}"))
            .await
            .expect("journal");
        let exported = h.invoice(*id).get("exported").and_then(Value::as_bool);
        match journal {
            Some(j) => {
                touched += 1;
                assert_eq!(j.step, "exported", "invoice {id}");
                assert_eq!(exported, Some(true), "invoice {id}");
            }
            None => assert_eq!(exported, Some(false), "invoice {id}"),
        }
    }
    assert_eq!(touched, report.listed as usize);

    h.sim.state.faults.clear();
    let rest = h.flow(Monitoring::Runs).run().await.expect("pass");
    assert!(rest.complete(), "{rest:?}");
    assert_eq!((report.listed + rest.listed) as usize, before.len());
    let numbers: BTreeSet<i64> = h
        .erp
        .invoices()
        .await
        .expect("erp")
        .iter()
        .map(|i| i.coupa_invoice_id)
        .collect();
    assert_eq!(
        numbers.len(),
        h.erp.invoices().await.expect("erp").len(),
        "posted once each"
    );
}

/// An ERP that answers later, as a file drop does: it takes each invoice (counting the
/// deliveries) and answers "pending" until `answer` is set; then it answers with the reference
/// ERP's own answer.
struct LaterErp {
    erp: SqlErp,
    answer: std::sync::atomic::AtomicBool,
    /// Invoice id -> how often it was handed over while no answer was due.
    asked: std::sync::Mutex<BTreeMap<i64, usize>>,
}

impl LaterErp {
    fn note(&self, id: i64) -> bool {
        let mut asked = self.asked.lock().expect("lock");
        *asked.entry(id).or_default() += 1;
        !self.answer.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Erp for LaterErp {
    fn post_invoice<'a>(
        &'a self,
        invoice: &'a ErpInvoice,
    ) -> BoxFuture<'a, Result<PostOutcome, ErpError>> {
        Box::pin(async move {
            if self.note(invoice.coupa_invoice_id) {
                return Ok(PostOutcome::Pending);
            }
            self.erp.post_invoice(invoice).await
        })
    }

    fn cancel_invoice<'a>(&'a self, id: i64) -> BoxFuture<'a, Result<CancelOutcome, ErpError>> {
        Box::pin(async move {
            if self.note(id) {
                return Ok(CancelOutcome::Pending);
            }
            self.erp.cancel_invoice(id).await
        })
    }

    fn pending_payments(
        &self,
        after: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Result<ErpPayment, MalformedPayment>>, ErpError>> {
        self.erp.pending_payments(after, limit)
    }

    fn settle_payments<'a>(
        &'a self,
        outcomes: &'a [(i64, PaymentSync)],
    ) -> BoxFuture<'a, Result<(), ErpError>> {
        self.erp.settle_payments(outcomes)
    }

    fn book_pay_payment<'a>(
        &'a self,
        p: &'a ErpPayPayment,
    ) -> BoxFuture<'a, Result<PayBooking, ErpError>> {
        self.erp.book_pay_payment(p)
    }

    fn pay_problems<'a>(
        &'a self,
        ids: &'a [i64],
    ) -> BoxFuture<'a, Result<std::collections::HashMap<i64, Vec<String>>, ErpError>> {
        self.erp.pay_problems(ids)
    }
}

#[tokio::test]
async fn an_erp_that_answers_later_is_acknowledged_only_when_it_has_and_alerted_when_late() {
    let h = harness(Format::Json, 30).await;
    let before = h.eligible();
    let later = Arc::new(LaterErp {
        erp: h.erp.clone(),
        answer: false.into(),
        asked: Default::default(),
    });
    let flow = |deadline_secs: u64| {
        InvoiceExport::new(
            h.client.clone(),
            later.clone(),
            h.store.clone(),
            Settings {
                monitoring: Monitoring::History,
                answer_deadline_secs: deadline_secs,
                ..Settings::default()
            },
        )
    };

    // Delivered, not answered: nothing is told to Coupa, nothing is acknowledged.
    let first = flow(3600).run().await.expect("first pass");
    assert_eq!(first.awaiting as usize, before.len(), "{first:?}");
    assert_eq!((first.exported, first.posted), (0, 0));
    assert!(first.overdue.is_empty());
    assert!(first.complete(), "awaiting within the deadline is normal");
    let journal = h
        .store
        .journal_get_many(
            "invoices",
            &before
                .keys()
                .map(|id| format!("invoice:{id}"))
                .collect::<Vec<_>>(),
        )
        .await
        .expect("journal");
    assert_eq!(journal.len(), before.len());
    assert!(journal.values().all(|j| j.step == "sent"), "{journal:?}");
    for id in before.keys() {
        assert_eq!(
            h.invoice(*id).get("exported").and_then(Value::as_bool),
            Some(false)
        );
        assert!(h.records(false, *id).is_empty(), "no record for {id} yet");
    }

    // Still no answer, and past a 0 s deadline: overdue, reported, still not acknowledged.
    let late = flow(0).run().await.expect("second pass");
    assert_eq!(late.awaiting as usize, before.len());
    assert_eq!(late.overdue.len(), before.len(), "{late:?}");
    assert!(
        late.overdue[0].1.contains("no answer"),
        "{:?}",
        late.overdue
    );
    assert!(!late.complete());
    assert_eq!(late.exported, 0);

    // The answers come: each invoice is posted once, recorded once, acknowledged.
    later
        .answer
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let answered = flow(3600).run().await.expect("third pass");
    assert!(answered.complete(), "{answered:?}");
    assert_eq!(answered.awaiting, 0);
    assert_eq!(answered.exported as usize, before.len());
    for id in before.keys() {
        assert_eq!(
            h.invoice(*id).get("exported").and_then(Value::as_bool),
            Some(true),
            "invoice {id} acknowledged"
        );
        assert_eq!(h.records(false, *id).len(), 1, "one record for {id}");
        // Asked on each of the three passes, answered on the third.
        assert_eq!(later.asked.lock().expect("lock")[id], 3, "invoice {id}");
    }
    let rows = h.erp.invoices().await.expect("erp rows");
    let ids: BTreeSet<i64> = rows.iter().map(|r| r.coupa_invoice_id).collect();
    assert_eq!(ids.len(), rows.len(), "each invoice in the ERP once");
    let last = flow(3600).run().await.expect("fourth pass");
    assert_eq!((last.listed, last.awaiting), (0, 0));
}

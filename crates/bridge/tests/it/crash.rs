//! The crash tests: `coupa-bridge sync invoices` and `sync payments` (by API and by CSV over
//! SFTP) as real processes, crashed at every failpoint and SIGKILLed at many instants, restarted
//! until a pass completes; then nothing is lost, posted twice, paid twice or recorded twice.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coupa_bridge::commands::demo::{erp_payments_for, seed_erp_from_sim, sqlite_url};
use coupa_bridge::erp::sql::SqlErp;
use coupa_doc::Value;
use coupa_sim::SimConfig;
use coupa_sim::config::{DEFAULT_CLIENT_SECRET, DEFAULT_SFTP_PASSWORD, DEFAULT_SFTP_USER};

const INVOICES: usize = 1_000;
const MAX_KILLS: usize = 60;

/// A small deterministic generator, so a failing run can be repeated kill for kill.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn sync(config: &std::path::Path) -> Command {
    sync_flow("invoices", config)
}

fn sync_flow(flow: &str, config: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_coupa-bridge"));
    c.args(["sync", flow, "--config"])
        .arg(config)
        .env("COUPA_BRIDGE__COUPA__CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
        .env(
            "COUPA_BRIDGE__PAYMENTS__SFTP__PASSWORD",
            DEFAULT_SFTP_PASSWORD,
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// A simulator, the reference ERP (its supplier master loaded from the simulator) and the
/// folder their files live in: what every crash test starts from.
struct World {
    dir: tempfile::TempDir,
    sim: coupa_sim::SimHandle,
    erp: SqlErp,
}

impl World {
    async fn new(config: SimConfig) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let sim = coupa_sim::spawn(config).await.expect("simulator");
        let erp = SqlErp::connect(&sqlite_url(&dir.path().join("erp.db")))
            .await
            .expect("erp");
        seed_erp_from_sim(&erp, &sim)
            .await
            .expect("erp master data");
        World { dir, sim, erp }
    }

    fn state_url(&self) -> String {
        sqlite_url(&self.dir.path().join("state.db"))
    }

    /// Writes config file `name`: Coupa at `rate` requests/s (burst `burst`), the state store
    /// and the ERP in the folder, then `sections`.
    fn config(&self, name: &str, rate: u32, burst: u32, sections: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "[coupa]\nbase_url = \"{}\"\nclient_id = \"coupa-bridge\"\n\
                 insecure_http_simulator_only = true\n\
                 requests_per_second = {rate}\nburst = {burst}\n\n\
                 [state]\nurl = \"{}\"\n\n[erp]\nkind = \"sql\"\nurl = \"{}\"\n\n{sections}",
                self.sim.base_url(),
                self.state_url(),
                sqlite_url(&self.dir.path().join("erp.db")),
            ),
        )
        .expect("config");
        path
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_many_points_the_export_ends_exactly_once() {
    let world = World::new(SimConfig {
        seed: 11,
        invoices: INVOICES,
        pay_payments: 0,
        ..SimConfig::default()
    })
    .await;
    let (sim, erp) = (&world.sim, &world.erp);
    let config = world.config(
        "coupa-bridge.toml",
        2_000,
        200,
        "[invoices]\nmonitoring = \"runs\"\nconcurrency = 4\n",
    );
    let eligible = crate::invoice_export::eligible(sim);
    assert!(eligible.len() > 100, "{} eligible", eligible.len());

    // First, a crash in each window that matters, deterministically: after the ERP answered,
    // after the journal noted it, after Coupa created the record (before the journal knows),
    // after the journal noted the record, after the export mark.
    let started = Instant::now();
    let mut aborts = 0;
    for (point, n) in [
        ("erp-done", 3),
        ("posted", 5),
        ("record-created", 2),
        ("record-created", 9),
        ("recorded", 4),
        ("exported", 6),
    ] {
        let status = sync(&config)
            .env(coupa_bridge::failpoint::ENV, format!("{point}={n}"))
            .status()
            .expect("binary runs");
        assert!(!status.success(), "{point}={n} must crash the pass");
        aborts += 1;
    }
    // Then SIGKILL at instants spread over a pass, until a pass ends by itself.
    let (kills, delays) = kill_until_done(|| sync(&config), 0xC0FFEE, 20..270).await;
    println!(
        "crash test: {} eligible invoices, {aborts} crashes at failpoints, {kills} kills at {delays:?} ms, {:.1}s",
        eligible.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(kills >= 8, "the test must really kill: {kills}");
    // A further pass finds nothing.
    let status = sync(&config).status().expect("final pass");
    assert!(status.success());

    let rows = erp.invoices().await.expect("erp rows");
    let mut by_coupa: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &rows {
        *by_coupa.entry(r.coupa_invoice_id).or_default() += 1;
    }
    assert!(
        by_coupa.values().all(|n| *n == 1),
        "an invoice posted twice"
    );
    let numbers: BTreeSet<&str> = rows.iter().map(|r| r.document_number.as_str()).collect();
    assert_eq!(numbers.len(), rows.len(), "document numbers are unique");

    let db = sim.state.db.lock();
    for (id, status) in &eligible {
        let inv = db.invoices.get(*id).expect("invoice");
        assert_eq!(
            inv.get("exported").and_then(Value::as_bool),
            Some(true),
            "invoice {id} marked exported"
        );
        let count = |errors: bool| {
            let table = if errors {
                &db.integration_errors
            } else {
                &db.history_records
            };
            table
                .rows()
                .filter(|r| r.get("document-id").and_then(Value::as_i64) == Some(*id))
                .count()
        };
        let in_erp = by_coupa.contains_key(id);
        let (history, errors) = (count(false), count(true));
        if status == "approved" && !in_erp {
            assert_eq!(
                (history, errors),
                (0, 1),
                "rejected invoice {id} recorded once"
            );
        } else {
            assert_eq!((history, errors), (1, 0), "invoice {id} recorded once");
        }
    }
    for run in db.integration_runs.rows() {
        let status = run.get("status").and_then(Value::as_str).unwrap_or("");
        assert!(
            !matches!(status, "pending" | "running"),
            "integration run {:?} left {status}",
            run.get("id")
        );
    }
}

/// Starts `command` again and again, SIGKILLing it after a random delay in `delay_ms`, until a
/// run ends by itself with success (or [`MAX_KILLS`] kills were made and the last run is let
/// finish). Returns the kills and their delays.
async fn kill_until_done(
    command: impl Fn() -> Command,
    seed: u64,
    delay_ms: std::ops::Range<u64>,
) -> (usize, Vec<u128>) {
    let mut rng = SplitMix(seed);
    let mut kills = 0;
    let mut delays = Vec::new();
    loop {
        let mut child = command().spawn().expect("binary starts");
        let delay =
            Duration::from_millis(delay_ms.start + rng.next() % (delay_ms.end - delay_ms.start));
        let deadline = Instant::now() + delay;
        let mut exited = None;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("wait") {
                exited = Some(status);
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        match exited {
            Some(status) if status.success() => break,
            Some(status) => assert_eq!(status.code(), Some(1), "a pass may only end 0 or 1"),
            None if kills < MAX_KILLS => {
                child.kill().expect("SIGKILL");
                child.wait().expect("reaped");
                kills += 1;
                delays.push(delay.as_millis());
            }
            None => {
                let status = child.wait().expect("last pass runs to its end");
                if status.success() {
                    break;
                }
            }
        }
    }
    (kills, delays)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_many_points_api_payments_land_exactly_once() {
    payments_crash(
        "api",
        &[
            "payment-written=1",
            "payments-settled=1",
            "payment-written=9",
            "payments-settled=2",
        ],
        10..600,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_many_points_csv_payments_land_exactly_once() {
    payments_crash(
        "csv",
        &[
            "file-prepared=1",
            "file-renamed=1",
            "payments-settled=1",
            "file-renamed=1",
            "file-prepared=1",
            "payments-settled=1",
            "file-renamed=1",
            "payments-settled=2",
        ],
        // A pass mostly waits for the loader (500 ms pickup): kill within that.
        10..350,
    )
    .await;
}

/// Every ERP payment ends synced (on its Coupa invoice exactly once) or failed with a reason,
/// whatever instant the process dies at; by CSV, no payment is ever in two files.
async fn payments_crash(transport: &str, failpoints: &[&str], delays_ms: std::ops::Range<u64>) {
    let world = World::new(SimConfig {
        seed: 12,
        invoices: 2_000,
        pay_payments: 0,
        // Long enough that kills land while a file waits for the loader.
        csv_pickup: Duration::from_millis(500),
        ..SimConfig::default()
    })
    .await;
    let (sim, erp) = (&world.sim, &world.erp);
    // The invoice export runs at full speed; the payment passes slowly enough to be killed in
    // the middle.
    let sections = format!(
        "[invoices]\nmonitoring = \"custom-fields\"\nconcurrency = 4\n\n\
         [payments]\ntransport = \"{transport}\"\n\n\
         [payments.sftp]\nhost = \"127.0.0.1\"\nport = {}\nusername = \"{DEFAULT_SFTP_USER}\"\n\
         host_key = \"{}\"\nresult_timeout_secs = 30\n",
        sim.sftp_addr.port(),
        sim.sftp_host_key,
    );
    let write_config = |name: &str, rate: u32| world.config(name, rate, 5, &sections);
    let fast = write_config("fast.toml", 5_000);
    let config = write_config("coupa-bridge.toml", 150);
    // The ERP books the invoices first, then pays some of them, in rounds.
    let status = sync(&fast).status().expect("invoice export");
    assert!(status.success(), "the invoice export completes");
    let booked = erp.invoices().await.expect("erp invoices");
    let payments = erp_payments_for(&booked, "P");
    assert!(payments.len() > 300, "{} payments", payments.len());
    let before: BTreeMap<i64, usize> = {
        let db = sim.state.db.lock();
        db.invoices
            .rows()
            .filter_map(|inv| {
                let id = inv.get("id").and_then(Value::as_i64)?;
                let n = inv
                    .get("payments")
                    .and_then(Value::as_array)
                    .map_or(0, <[Value]>::len);
                Some((id, n))
            })
            .collect()
    };

    let started = Instant::now();
    let (mut kills, mut delays) = (0, Vec::new());
    let round = payments.len().div_ceil(failpoints.len());
    for (i, (chunk, point)) in payments.chunks(round).zip(failpoints).enumerate() {
        erp.record_payments(chunk).await.expect("record payments");
        let status = sync_flow("payments", &config)
            .env(coupa_bridge::failpoint::ENV, point)
            .status()
            .expect("binary runs");
        assert!(!status.success(), "{point} must crash the pass");
        let (k, d) = kill_until_done(
            || sync_flow("payments", &config),
            0xBADC0DE + i as u64,
            delays_ms.clone(),
        )
        .await;
        kills += k;
        delays.extend(d);
    }
    println!(
        "payment crash test ({transport}): {} payments, {} crashes at failpoints, {kills} kills at {delays:?} ms, {:.1}s",
        payments.len(),
        failpoints.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(kills >= 3, "the test must really kill: {kills}");
    let status = sync_flow("payments", &config).status().expect("final pass");
    assert!(status.success());

    let rows = erp.payments().await.expect("erp payments");
    assert_eq!(rows.len(), payments.len());
    let mut synced_per_invoice: BTreeMap<i64, Vec<&coupa_bridge::erp::ErpPaymentRecord>> =
        BTreeMap::new();
    for r in &rows {
        if r.invoice_number.starts_with("NO-SUCH-") {
            assert_eq!(r.sync_status, "failed", "{r:?}");
            assert!(
                r.sync_error
                    .as_deref()
                    .is_some_and(|e| e.contains("no approved invoice")),
                "{r:?}"
            );
            continue;
        }
        assert_eq!(r.sync_status, "synced", "{r:?}");
        let id = r.coupa_invoice_id.expect("synced with its invoice");
        synced_per_invoice.entry(id).or_default().push(r);
    }
    let db = sim.state.db.lock();
    for (id, synced) in &synced_per_invoice {
        let inv = db.invoices.get(*id).expect("invoice");
        let on_invoice = inv.get("payments").and_then(Value::as_array).unwrap_or(&[]);
        assert_eq!(
            on_invoice.len() - before.get(id).copied().unwrap_or(0),
            synced.len(),
            "invoice {id}: every ERP payment added exactly once"
        );
        for r in synced {
            let note = r
                .check_number
                .clone()
                .unwrap_or_else(|| r.payment_ref.clone());
            let amount: rust_decimal::Decimal = r.amount.parse().expect("amount");
            let same = on_invoice
                .iter()
                .filter(|p| {
                    let p = p.as_object();
                    p.and_then(|p| p.get("notes")).and_then(Value::as_str) == Some(note.as_str())
                        && p.and_then(|p| p.get("amount-paid"))
                            .and_then(Value::as_decimal)
                            == Some(amount)
                })
                .count();
            assert_eq!(same, 1, "payment {} on invoice {id} once", r.payment_ref);
        }
        if synced.iter().any(|r| r.paid_in_full) {
            assert_eq!(
                inv.get("paid").and_then(Value::as_bool),
                Some(true),
                "invoice {id} paid in full"
            );
        }
    }
    if transport == "csv" {
        // No payment went out in two files (Coupa's loader would refuse the second as a
        // duplicate, which would hide the double from the invoice check above).
        let mut seen: BTreeMap<(String, String, String), String> = BTreeMap::new();
        let archive = "/Archive/Incoming/InvoicePayments";
        let files = sim.state.files.list_files(archive);
        assert!(!files.is_empty(), "files were loaded");
        for (name, _) in files {
            let bytes = sim
                .state
                .files
                .read_file(&format!("{archive}/{name}"))
                .expect("archived file");
            let mut reader = csv::Reader::from_reader(bytes.as_slice());
            for rec in reader.records() {
                let rec = rec.expect("a CSV row");
                let (invoice, amount, note) = (&rec[4], &rec[9], &rec[10]);
                if amount.is_empty() {
                    continue;
                }
                let key = (invoice.to_owned(), amount.to_owned(), note.to_owned());
                if let Some(first) = seen.insert(key.clone(), name.clone()) {
                    panic!("payment {key:?} sent in {first} and again in {name}");
                }
            }
        }
    }
    for run in db.integration_runs.rows() {
        let status = run.get("status").and_then(Value::as_str).unwrap_or("");
        assert!(
            !matches!(status, "pending" | "running"),
            "integration run {:?} left {status}",
            run.get("id")
        );
    }
}

/// The Coupa Pay payments of the simulator, by id.
fn pay_rows(sim: &coupa_sim::RunningSim) -> BTreeMap<i64, coupa_doc::Object> {
    let db = sim.state.db.lock();
    db.pay_payments
        .rows()
        .filter_map(|r| Some((r.get("id").and_then(Value::as_i64)?, r.clone())))
        .collect()
}

fn pay_status(p: &coupa_doc::Object) -> &str {
    p.get("status").and_then(Value::as_str).unwrap_or("")
}

fn pay_exported(p: &coupa_doc::Object) -> bool {
    p.get("exported").and_then(Value::as_bool) == Some(true)
}

/// Moves payments in the simulator, as Coupa Pay does after the connector exported them.
fn set_pay_statuses(sim: &coupa_sim::RunningSim, changes: &[(i64, &str)]) {
    let mut db = sim.state.db.lock();
    let now = sim.state.now();
    for (id, status) in changes {
        coupa_sim::clerk::set_pay_status(&mut db, *id, status, now).expect("pay status");
    }
}

/// `sync pay-payments` crashed at each of its failpoints and SIGKILLed at many instants, over
/// four rounds with status changes between them: every payment ends booked once with its
/// latest status, marked exported once, with one unresolved record per payment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_many_points_coupa_pay_payments_are_booked_exactly_once() {
    const SETTLES: &str = "completed_successfully";
    const WITH_ERRORS: &str = "completed_with_errors";
    let world = World::new(SimConfig {
        seed: 13,
        invoices: 400,
        pay_payments: 60,
        ..SimConfig::default()
    })
    .await;
    let (sim, erp) = (&world.sim, &world.erp);
    let write_config = |name: &str, rate: u32| {
        world.config(
            name,
            rate,
            5,
            "[invoices]\nmonitoring = \"runs\"\nconcurrency = 4\n\n\
             [pay_payments]\npay_to_account_type = \"\"\nconcurrency = 4\n",
        )
    };
    let fast = write_config("fast.toml", 5_000);
    let config = write_config("coupa-bridge.toml", 50);
    let pay = || sync_flow("pay-payments", &config);
    let status = sync(&fast).status().expect("invoice export");
    assert!(status.success(), "the invoice export completes");

    let initial = pay_rows(sim);
    // Payments others exported before: never the connector's.
    let foreign: BTreeSet<i64> = initial
        .iter()
        .filter(|(_, p)| pay_exported(p))
        .map(|(id, _)| *id)
        .collect();
    // Status changes made to payments the connector had exported: each is a new version.
    let mut changes: BTreeMap<i64, usize> = BTreeMap::new();
    let mut moved: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let started = Instant::now();
    let (mut kills, mut delays, mut aborts) = (0, Vec::new(), 0);
    // Each round: Coupa Pay changes (from the second on), crashes at failpoints early enough to
    // leave work, then SIGKILLs until a pass completes. `pay-watermark` ends a pass that did
    // all its work, so its round leaves the kills only the overlap's re-lists.
    let rounds: [&[&str]; 4] = [
        &["pay-booked=3", "pay-record-created=2", "pay-exported=2"],
        &["pay-exported=1"],
        &["pay-watermark=1"],
        &["pay-record-created=1", "pay-booked=2"],
    ];
    for (round, failpoints) in rounds.iter().enumerate() {
        if round > 0 {
            // Coupa Pay moves on: some exported payments change status, some in flight
            // complete (and become new to the connector). A second later than the last pass,
            // so the changes' updated-at is above its watermark (Coupa's are whole seconds).
            tokio::time::sleep(Duration::from_millis(1_100)).await;
            let now = pay_rows(sim);
            let mut moves = Vec::new();
            for (i, (id, p)) in now
                .iter()
                .filter(|(id, p)| pay_exported(p) && !foreign.contains(id))
                .enumerate()
            {
                let to = match (pay_status(p), (i + round) % 3) {
                    (SETTLES, 0) => "cancelled",
                    (SETTLES, 1) if round == 2 => WITH_ERRORS,
                    (WITH_ERRORS, _) => SETTLES,
                    ("cancelled", 0) if round == 2 => SETTLES,
                    _ => continue,
                };
                moves.push((*id, to));
                *changes.entry(*id).or_default() += 1;
                moved
                    .entry(*id)
                    .or_default()
                    .push(format!("round {round}: {} -> {to}", pay_status(p)));
            }
            let in_flight: Vec<i64> = now
                .iter()
                .filter(|(_, p)| {
                    !pay_exported(p)
                        && matches!(pay_status(p), "payment_initiated" | "payment_in_progress")
                })
                .map(|(id, _)| *id)
                .collect();
            // Half of those in flight complete in the second round, the rest in the third.
            let half = in_flight.len().div_ceil(2);
            let take = match round {
                1 => &in_flight[..half],
                2 => &in_flight[..],
                _ => &[],
            };
            assert!(
                !take.is_empty() || round == 3,
                "round {round}: {in_flight:?}"
            );
            moves.extend(take.iter().map(|id| (*id, SETTLES)));
            assert!(moves.len() > 5, "round {round}: {moves:?}");
            set_pay_statuses(sim, &moves);
        }
        for point in *failpoints {
            let status = pay()
                .env(coupa_bridge::failpoint::ENV, point)
                .status()
                .expect("binary runs");
            assert!(
                !status.success(),
                "round {round}: {point} must crash the pass"
            );
            aborts += 1;
        }
        let (k, d) = kill_until_done(pay, 0xC0FFEE + round as u64, 10..1_000).await;
        kills += k;
        delays.extend(d);
    }
    let status = pay().status().expect("final pass");
    assert!(status.success());

    let sim_now = pay_rows(sim);
    let rows = erp.pay_payments().await.expect("ERP pay payments");
    let mut in_erp: BTreeMap<i64, &coupa_bridge::erp::ErpPayPaymentRecord> = BTreeMap::new();
    for r in &rows {
        assert!(
            in_erp.insert(r.coupa_payment_id, r).is_none(),
            "payment {} booked twice",
            r.coupa_payment_id
        );
    }
    let mut apps: BTreeMap<i64, usize> = BTreeMap::new();
    for a in erp.payment_applications().await.expect("applications") {
        *apps.entry(a.coupa_payment_id).or_default() += 1;
    }
    let journal = {
        let store = coupa_bridge::store::Store::connect(&world.state_url())
            .await
            .expect("store");
        let mut j = BTreeMap::new();
        for id in sim_now.keys() {
            if let Some(e) = store
                .journal_get("pay-payments", &format!("payment:{id}"))
                .await
                .expect("journal")
            {
                j.insert(*id, format!("{} {} run {:?}", e.step, e.detail, e.run));
            }
        }
        j
    };
    let db = sim.state.db.lock();
    let mut ours = 0u64;
    for (id, p) in &sim_now {
        if foreign.contains(id) {
            assert!(!in_erp.contains_key(id), "payment {id} exported by others");
            continue;
        }
        let eligible = matches!(pay_status(p), SETTLES | WITH_ERRORS);
        if !pay_exported(p) {
            assert!(!eligible, "eligible payment {id} left unexported");
            assert!(
                !in_erp.contains_key(id),
                "unexported payment {id} in the ERP"
            );
            continue;
        }
        ours += 1;
        assert!(
            p.get("last-exported-at").is_some_and(|v| !v.is_null()),
            "payment {id}: last-exported-at"
        );
        let row = in_erp.get(id).expect("an exported payment is in the ERP");
        assert_eq!(row.status, pay_status(p), "payment {id}: latest status");
        let n = p
            .get("payment-details")
            .and_then(Value::as_array)
            .map_or(0, <[Value]>::len);
        assert_eq!(apps.get(id).copied().unwrap_or(0), n, "payment {id}");
        let records: Vec<(bool, bool, String)> =
            [(&db.history_records, false), (&db.integration_errors, true)]
                .into_iter()
                .flat_map(|(table, error)| {
                    table
                        .rows()
                        .filter(|r| {
                            r.get("document-type").and_then(Value::as_str)
                                == Some("CoupaPay::Payment")
                                && r.get("document-id").and_then(Value::as_i64) == Some(*id)
                        })
                        .map(move |r| {
                            (
                                error,
                                r.get("resolved").and_then(Value::as_bool) == Some(true),
                                format!(
                                    "{:?} {:?} {:?} {:?}",
                                    r.get("id"),
                                    r.get("document-status"),
                                    r.get("created-at"),
                                    r.get("integration-run")
                                ),
                            )
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
        let unresolved = records.iter().filter(|(_, resolved, _)| !resolved).count();
        let why = format!(
            "moves {:?}, journal {:?}, erp {row:?}, records {records:#?}",
            moved.get(id),
            journal.get(id)
        );
        assert_eq!(unresolved, 1, "payment {id}: one unresolved record: {why}");
        assert_eq!(
            records.len(),
            1 + changes.get(id).copied().unwrap_or(0),
            "payment {id}: one record per version: {why}"
        );
    }
    assert_eq!(
        in_erp.len() as u64,
        ours,
        "the ERP holds only exported payments"
    );
    // The simulator counts calls per route, not per payment: with every payment exported
    // once above, as many successful marks as payments means none was marked twice.
    let marks = sim.state.stats.endpoint("PUT /api/coupa_pay/payments/{id}");
    assert_eq!(
        marks.by_status.get(&200).copied().unwrap_or(0),
        ours,
        "one mark-exported PUT per payment: {marks:?}"
    );
    for run in db.integration_runs.rows() {
        let status = run.get("status").and_then(Value::as_str).unwrap_or("");
        assert!(
            !matches!(status, "pending" | "running"),
            "integration run {:?} left {status}",
            run.get("id")
        );
    }
    drop(db);
    println!(
        "coupa pay crash test: {ours} payments booked, {} status changes, {aborts} crashes at failpoints, {kills} kills at {delays:?} ms, {:.1}s",
        changes.values().sum::<usize>(),
        started.elapsed().as_secs_f64()
    );
    assert!(kills >= 3, "the test must really kill: {kills}");
}

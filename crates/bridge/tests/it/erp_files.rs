//! The `files` ERP adapter end to end: `coupa-bridge sync` as a process against the simulator,
//! with the ERP's folders on the local disk or on the simulator's SFTP server. The ERP is played
//! by the test: an "import job" takes each visible outbox file (dot files are not its business),
//! remembers it, removes it, and answers with result files in the inbox when the test says so.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use coupa_bridge::commands::demo::sqlite_url;
use coupa_bridge::erp::DeliveryState;
use coupa_bridge::erp::sql::SqlErp;
use coupa_bridge::store::Store;
use coupa_doc::Value;
use coupa_sim::config::{DEFAULT_CLIENT_SECRET, DEFAULT_SFTP_PASSWORD, DEFAULT_SFTP_USER};
use coupa_sim::{SimConfig, SimHandle};
use serde_json::json;

/// The ERP's folders on the simulator's SFTP server.
const REMOTE_ROOT: &str = "/ERP";

/// The adapter's folders, by the name of their setting.
const OUTBOX: &str = "outbox";
const INBOX: &str = "inbox";
const PAYMENTS: &str = "payments";

struct World {
    dir: tempfile::TempDir,
    sim: SimHandle,
    /// Folders on the simulator's SFTP server, not the local disk.
    remote: bool,
}

impl World {
    async fn new(config: SimConfig, remote: bool) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let sim = coupa_sim::spawn(config).await.expect("simulator");
        let w = World { dir, sim, remote };
        for folder in [OUTBOX, INBOX, PAYMENTS] {
            if remote {
                let files = &w.sim.state.files;
                if !files.exists(REMOTE_ROOT) {
                    files.mkdir(REMOTE_ROOT).expect("remote root");
                }
                files.mkdir(&w.folder(folder)).expect("remote folder");
            } else {
                std::fs::create_dir_all(w.folder(folder)).expect("local folder");
            }
        }
        w
    }

    /// The path of `folder` (`outbox`, `inbox/processed`...) as the adapter is told it.
    fn folder(&self, folder: &str) -> String {
        if self.remote {
            format!("{REMOTE_ROOT}/{folder}")
        } else {
            self.dir
                .path()
                .join("erp")
                .join(folder)
                .display()
                .to_string()
        }
    }

    fn ledger_url(&self) -> String {
        sqlite_url(&self.dir.path().join("ledger.db"))
    }

    fn state_url(&self) -> String {
        sqlite_url(&self.dir.path().join("state.db"))
    }

    /// Writes config file `name`, the ERP's answers due within `deadline_secs`.
    fn config(&self, name: &str, deadline_secs: u64) -> PathBuf {
        let sftp = if self.remote {
            format!(
                "[erp.files.sftp]\nhost = \"127.0.0.1\"\nport = {}\nusername = \
                 \"{DEFAULT_SFTP_USER}\"\nhost_key = \"{}\"\n\n",
                self.sim.sftp_addr.port(),
                self.sim.sftp_host_key
            )
        } else {
            String::new()
        };
        let path = self.dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "[coupa]\nbase_url = \"{}\"\nclient_id = \"coupa-bridge\"\n\
                 insecure_http_simulator_only = true\nrequests_per_second = 2000\nburst = 200\n\n\
                 [state]\nurl = \"{}\"\n\n\
                 [erp]\nkind = \"files\"\nurl = \"{}\"\n\n\
                 [erp.files]\noutbox = \"{}\"\ninbox = \"{}\"\npayments_inbox = \"{}\"\n\n\
                 {sftp}\
                 [invoices]\nmonitoring = \"runs\"\nconcurrency = 4\nanswer_deadline_secs = \
                 {deadline_secs}\n\n\
                 [pay_payments]\npay_to_account_type = \"\"\nconcurrency = 4\n",
                self.sim.base_url(),
                self.state_url(),
                self.ledger_url(),
                self.folder(OUTBOX),
                self.folder(INBOX),
                self.folder(PAYMENTS),
            ),
        )
        .expect("config");
        path
    }

    fn sync(&self, flow: &str, config: &Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_coupa-bridge"));
        c.args(["sync", flow, "--config"])
            .arg(config)
            .env("COUPA_BRIDGE__COUPA__CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
            .env(
                "COUPA_BRIDGE__ERP__FILES__SFTP__PASSWORD",
                DEFAULT_SFTP_PASSWORD,
            )
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        c
    }

    /// Runs a pass to its end: its output.
    fn pass(&self, flow: &str, config: &Path) -> Output {
        self.sync(flow, config).output().expect("the binary runs")
    }

    /// Every file name in `folder`, dot files included; empty when it does not exist.
    fn names(&self, folder: &str) -> Vec<String> {
        let path = self.folder(folder);
        if self.remote {
            return self
                .sim
                .state
                .files
                .list_files(&path)
                .into_iter()
                .map(|(name, _)| name)
                .collect();
        }
        let Ok(entries) = std::fs::read_dir(&path) else {
            return Vec::new();
        };
        let mut out: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .collect();
        out.sort();
        out
    }

    fn read(&self, folder: &str, name: &str) -> Vec<u8> {
        let path = format!("{}/{name}", self.folder(folder));
        if self.remote {
            self.sim.state.files.read_file(&path).expect("remote file")
        } else {
            std::fs::read(path).expect("local file")
        }
    }

    fn remove(&self, folder: &str, name: &str) {
        let path = format!("{}/{name}", self.folder(folder));
        if self.remote {
            self.sim.state.files.remove(&path).expect("remote remove");
        } else {
            std::fs::remove_file(path).expect("local remove");
        }
    }

    /// Drops a file as the ERP does: whole, under its final name at once.
    fn drop_file(&self, folder: &str, name: &str, bytes: &[u8]) {
        let path = format!("{}/{name}", self.folder(folder));
        if self.remote {
            self.sim
                .state
                .files
                .write_file(&path, bytes.to_vec())
                .expect("remote write");
        } else {
            let tmp = format!("{}/.{name}.tmp", self.folder(folder));
            std::fs::write(&tmp, bytes).expect("local write");
            std::fs::rename(tmp, path).expect("local rename");
        }
    }

    fn answer(&self, name: &str, records: &serde_json::Value) {
        self.drop_file(INBOX, name, records.to_string().as_bytes());
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

    /// (history records, integration errors) about invoice `id`, each as its text.
    fn records(&self, id: i64) -> (Vec<String>, Vec<String>) {
        let db = self.sim.state.db.lock();
        let of = |table: &coupa_sim::store::Table| -> Vec<String> {
            table
                .rows()
                .filter(|r| r.get("document-id").and_then(Value::as_i64) == Some(id))
                .map(|r| format!("{r:?}"))
                .collect()
        };
        (of(&db.history_records), of(&db.integration_errors))
    }

    async fn journal_step(&self, id: i64) -> Option<String> {
        let store = Store::connect(&self.state_url()).await.expect("store");
        store
            .journal_get("invoices", &format!("invoice:{id}"))
            .await
            .expect("journal")
            .map(|e| e.step)
    }

    async fn ledger(&self) -> SqlErp {
        SqlErp::connect(&self.ledger_url()).await.expect("ledger")
    }
}

fn custom(inv: &coupa_doc::Object, field: &str) -> Option<String> {
    inv.get("custom-fields")
        .and_then(|c| c.as_object())
        .and_then(|c| c.get(field))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn stdout(out: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The ERP's import job: takes each visible outbox file once, as a real one does.
#[derive(Default)]
struct ImportJob {
    /// Every file name taken, with how many times it was seen.
    seen: BTreeMap<String, usize>,
    /// The invoices taken, canonical JSON, by Coupa id.
    invoices: BTreeMap<i64, serde_json::Value>,
    /// The CSV files taken, by name.
    csv: BTreeMap<String, String>,
}

impl ImportJob {
    /// Takes (reads, remembers, removes) each file of the outbox the ERP can see.
    fn take(&mut self, w: &World) -> Vec<String> {
        let mut taken = Vec::new();
        for name in w.names(OUTBOX) {
            if name.starts_with('.') {
                continue;
            }
            let bytes = w.read(OUTBOX, &name);
            w.remove(OUTBOX, &name);
            *self.seen.entry(name.clone()).or_default() += 1;
            if name.starts_with("invoice-") && name.ends_with(".json") {
                let doc: serde_json::Value =
                    serde_json::from_slice(&bytes).expect("the outbox holds whole JSON documents");
                let id = doc["coupa_invoice_id"].as_i64().expect("an invoice id");
                assert_eq!(name, format!("invoice-{id}.json"), "{doc}");
                self.invoices.insert(id, doc);
            } else if name.ends_with(".csv") {
                self.csv
                    .insert(name.clone(), String::from_utf8(bytes).expect("utf-8 csv"));
            }
            taken.push(name);
        }
        taken
    }
}

fn accepted(id: i64) -> serde_json::Value {
    json!({"coupa_invoice_id": id, "outcome": "accepted", "document_number": format!("ERP-{id}")})
}

fn rejected(id: i64, reasons: &[&str]) -> serde_json::Value {
    json!({"coupa_invoice_id": id, "outcome": "rejected", "reasons": reasons})
}

/// The approved and voided invoices a pass picks up.
fn eligible(w: &World) -> (Vec<i64>, Vec<i64>) {
    let all = crate::invoice_export::eligible(&w.sim);
    let pick = |s: &str| {
        all.iter()
            .filter(|(_, st)| *st == s)
            .map(|(id, _)| *id)
            .collect()
    };
    (pick("approved"), pick("voided"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_arrive_accepted_rejected_late_and_never_in_local_folders() {
    answers_arrive(false, 31).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_arrive_over_the_simulators_sftp_server() {
    answers_arrive(true, 32).await;
}

/// Invoices go out as files and wait; the ERP's answers (accepted, rejected with reasons, late,
/// a voided invoice's cancellation) are told to Coupa on the pass after they arrive; an answer
/// that never comes is reported overdue; bad result files are moved aside. Nothing is written
/// twice.
async fn answers_arrive(remote: bool, seed: u64) {
    let w = World::new(
        SimConfig {
            seed,
            invoices: 30,
            pay_payments: 0,
            csv_pickup: Duration::from_secs(3600),
            ..SimConfig::default()
        },
        remote,
    )
    .await;
    let config = w.config("coupa-bridge.toml", 3600);
    let (approved, voided) = eligible(&w);
    assert!(approved.len() >= 6, "{approved:?}");

    // Pass 1: every approved invoice is delivered and waits; voided ones were never in the ERP.
    let out = w.pass("invoices", &config);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("{} awaiting the ERP's answer", approved.len())),
        "{}",
        stdout(&out)
    );
    for id in &approved {
        assert!(!w.exported(*id), "invoice {id} waits for the ERP");
        assert_eq!(w.journal_step(*id).await.as_deref(), Some("sent"));
        assert_eq!(
            w.records(*id),
            (vec![], vec![]),
            "nothing told to Coupa yet"
        );
    }
    for id in &voided {
        assert!(w.exported(*id), "voided invoice {id}: nothing to cancel");
    }
    assert!(
        w.names(OUTBOX).iter().all(|n| !n.starts_with('.')),
        "no temporary file left: {:?}",
        w.names(OUTBOX)
    );
    let mut job = ImportJob::default();
    let taken: BTreeSet<String> = job.take(&w).into_iter().collect();
    let expected: BTreeSet<String> = approved
        .iter()
        .map(|id| format!("invoice-{id}.json"))
        .collect();
    assert_eq!(taken, expected);

    // The ERP answers all but two; a garbage file and a stranger's answer come along.
    let (refused, late, never) = (approved[0], approved[1], approved[2]);
    let fine: Vec<i64> = approved[3..].to_vec();
    let mut records: Vec<serde_json::Value> = fine.iter().map(|id| accepted(*id)).collect();
    records.push(rejected(
        refused,
        &["Vendor 4711 is blocked", "Account 6000 is closed"],
    ));
    w.answer("results-1.json", &json!(records));
    w.drop_file(INBOX, "garbage.json", b"this is not a result file");
    w.answer("stranger.json", &json!([accepted(987_654_321)]));

    let out = w.pass("invoices", &config);
    assert!(out.status.success(), "{}", stdout(&out));
    for id in &fine {
        assert!(w.exported(*id), "accepted invoice {id} exported");
        assert_eq!(
            custom(&w.invoice(*id), "cf-erp-invoice-number"),
            Some(format!("ERP-{id}"))
        );
        let (history, errors) = w.records(*id);
        assert_eq!((history.len(), errors.len()), (1, 0), "invoice {id}");
    }
    assert!(w.exported(refused));
    let (history, errors) = w.records(refused);
    assert_eq!((history.len(), errors.len()), (0, 1));
    assert!(
        errors[0].contains("Vendor 4711 is blocked")
            && errors[0].contains("Account 6000 is closed"),
        "{errors:?}"
    );
    for id in [late, never] {
        assert!(!w.exported(id), "invoice {id} still waits");
    }
    assert_eq!(w.names(&format!("{INBOX}/processed")), ["results-1.json"]);
    assert_eq!(
        w.names(&format!("{INBOX}/unreadable")),
        ["garbage.json", "stranger.json"]
    );
    assert!(w.names(INBOX).is_empty(), "{:?}", w.names(INBOX));
    assert!(job.take(&w).is_empty(), "nothing is written twice");

    // Another pass without an answer: still waiting, nothing written.
    let out = w.pass("invoices", &config);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(job.take(&w).is_empty(), "nothing is written twice");
    assert!(!w.exported(late));

    // The late answer arrives.
    w.answer("results-2.json", &json!([accepted(late)]));
    let out = w.pass("invoices", &config);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(w.exported(late));
    assert_eq!(w.records(late).0.len(), 1);
    assert!(job.take(&w).is_empty());

    // The last one never comes: past a 1 s deadline the pass says so, and an incident opens.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let hurried = w.config("hurried.toml", 1);
    let out = w.pass("invoices", &hurried);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("answer overdue {never}")),
        "{}",
        stdout(&out)
    );
    let incidents = Store::connect(&w.state_url())
        .await
        .expect("store")
        .open_incidents()
        .await
        .expect("incidents");
    assert!(
        incidents.iter().any(|i| i.kind == "answers-overdue"),
        "{incidents:?}"
    );
    assert!(!w.exported(never));
    assert!(
        job.take(&w).is_empty(),
        "an overdue invoice is not sent again"
    );

    // An accepted invoice is voided in Coupa: its cancellation goes out once and waits too.
    let voids = fine[0];
    {
        let mut db = w.sim.state.db.lock();
        let now = w.sim.state.now();
        coupa_sim::clerk::set_invoice_status(&mut db, voids, "voided", now).expect("void");
    }
    let out = w.pass("invoices", &config);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(job.take(&w), [format!("cancel-{voids}.json")]);
    assert!(!w.exported(voids));
    let out = w.pass("invoices", &config);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(job.take(&w).is_empty());
    w.answer(
        "results-3.json",
        &json!([
            {"coupa_invoice_id": voids, "action": "cancel", "outcome": "accepted", "document_number": format!("ERP-{voids}")},
            accepted(never),
        ]),
    );
    let out = w.pass("invoices", &hurried);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(w.exported(voids) && w.exported(never));
    assert!(job.seen.values().all(|n| *n == 1), "{:?}", job.seen);

    let ledger = w.ledger().await;
    for id in &approved {
        let d = ledger
            .delivery(&format!("invoice:{id}"))
            .await
            .expect("ledger")
            .expect("delivered");
        assert_eq!(d.state, DeliveryState::Answered, "{d:?}");
    }
}

/// With a mapping, invoices go out as the ERP's CSV and its CSV result files are read: one
/// answer per invoice however many rows carry its reasons; a row that cannot be read leaves the
/// file in `unreadable/`, its good rows taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_files_through_a_mapping() {
    let w = World::new(
        SimConfig {
            seed: 35,
            invoices: 20,
            pay_payments: 0,
            csv_pickup: Duration::from_secs(3600),
            ..SimConfig::default()
        },
        false,
    )
    .await;
    std::fs::write(
        w.dir.path().join("erp-mapping.toml"),
        "[invoice]\nformat = \"csv\"\ndelimiter = \";\"\n\n[invoice.fields]\n\
         XBLNR = \"invoice_number\"\nZUONR = \"coupa_invoice_id\"\n\
         WRBTR = { from = \"total\", decimal = { places = 2, point = \",\" } }\n\n\
         [result]\nformat = \"csv\"\ndelimiter = \";\"\n\n[result.fields]\n\
         coupa_invoice_id = \"Zuordnung\"\n\
         outcome = { from = \"Status\", map = { S = \"accepted\", E = \"rejected\", W = \"pending\" } }\n\
         document_number = \"Belegnummer\"\nreasons = \"Meldung\"\n",
    )
    .expect("mapping");
    let base = w.config("base.toml", 3600);
    let text = std::fs::read_to_string(&base)
        .expect("config")
        .replace("[erp]\n", "[erp]\nmapping = \"erp-mapping.toml\"\n");
    let config = w.dir.path().join("coupa-bridge.toml");
    std::fs::write(&config, text).expect("config");
    let (approved, _) = eligible(&w);
    assert!(approved.len() >= 4, "{approved:?}");

    let out = w.pass("invoices", &config);
    assert!(out.status.success(), "{}", stdout(&out));
    let mut job = ImportJob::default();
    job.take(&w);
    for id in &approved {
        let file = &job.csv[&format!("invoice-{id}.csv")];
        assert!(file.starts_with("XBLNR;ZUONR;WRBTR"), "{file}");
        assert!(file.contains(&format!(";{id};")), "{file}");
    }
    let (ok, refused, pending, bad) = (approved[0], approved[1], approved[2], approved[3]);
    w.drop_file(
        INBOX,
        "ERG_0001.csv",
        format!(
            "Zuordnung;Status;Belegnummer;Meldung\n{ok};S;5100000001;\n\
             {refused};E;;Buchungsperiode 03/2026 ist geschlossen\n\
             {refused};E;;Kreditor V200 ist gesperrt\n{pending};W;;\n{bad};Q;;\n"
        )
        .as_bytes(),
    );
    let out = w.pass("invoices", &config);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(w.exported(ok));
    assert_eq!(
        custom(&w.invoice(ok), "cf-erp-invoice-number").as_deref(),
        Some("5100000001")
    );
    assert!(w.exported(refused));
    let (_, errors) = w.records(refused);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("Buchungsperiode 03/2026 ist geschlossen")
            && errors[0].contains("Kreditor V200 ist gesperrt"),
        "{errors:?}"
    );
    assert!(!w.exported(pending) && !w.exported(bad));
    assert_eq!(w.names(&format!("{INBOX}/unreadable")), ["ERG_0001.csv"]);

    let rows: String = approved[2..]
        .iter()
        .map(|id| format!("{id};S;51{id:08};\n"))
        .collect();
    w.drop_file(
        INBOX,
        "ERG_0002.csv",
        format!("Zuordnung;Status;Belegnummer;Meldung\n{rows}").as_bytes(),
    );
    let out = w.pass("invoices", &config);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(approved.iter().all(|id| w.exported(*id)));
    assert_eq!(w.names(&format!("{INBOX}/processed")), ["ERG_0002.csv"]);
    assert!(job.take(&w).is_empty(), "nothing is written twice");
}

/// The ERP's payment files reach the ledger and Coupa once, however often a file comes; Coupa
/// Pay payments are written once per version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_files_land_once_and_coupa_pay_payments_go_out_once_per_version() {
    let w = World::new(
        SimConfig {
            seed: 33,
            invoices: 30,
            pay_payments: 12,
            csv_pickup: Duration::from_secs(3600),
            ..SimConfig::default()
        },
        false,
    )
    .await;
    let config = w.config("coupa-bridge.toml", 3600);
    let (approved, _) = eligible(&w);
    let mut job = ImportJob::default();
    let out = w.pass("invoices", &config);
    assert!(out.status.success(), "{}", stdout(&out));
    job.take(&w);
    let all: Vec<serde_json::Value> = approved.iter().map(|id| accepted(*id)).collect();
    w.answer("results.json", &json!(all));
    let out = w.pass("invoices", &config);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(approved.iter().all(|id| w.exported(*id)));

    // Payments for three invoices, and a record that is not one.
    let paid: Vec<i64> = approved.iter().take(3).copied().collect();
    let payments_before = |id: i64| {
        w.invoice(id)
            .get("payments")
            .and_then(Value::as_array)
            .map_or(0, <[Value]>::len)
    };
    let before: BTreeMap<i64, usize> = paid.iter().map(|id| (*id, payments_before(*id))).collect();
    let mut records: Vec<serde_json::Value> = paid
        .iter()
        .map(|id| {
            let inv = &job.invoices[id];
            json!({
                "payment_ref": format!("PAY-{id}"),
                "invoice_number": inv["invoice_number"],
                "supplier_name": inv["supplier_name"],
                "supplier_number": inv["supplier_number"],
                "amount": inv["total"],
                "currency": inv["currency"],
                "payment_date": inv["invoice_date"],
                "check_number": format!("CHK-{id}"),
                "paid_in_full": true,
            })
        })
        .collect();
    records.push(json!({"payment_ref": "BAD-1", "amount": "not money"}));
    let file = serde_json::to_vec(&records).expect("json");
    w.drop_file(PAYMENTS, "payments-1.json", &file);
    // A crash once the payments are in the ledger, before the file is moved: read again.
    let status = w
        .sync("payments", &config)
        .env(coupa_bridge::failpoint::ENV, "erp-payments-kept=1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("binary runs");
    assert!(!status.success(), "erp-payments-kept=1 crashes the pass");
    assert_eq!(w.names(PAYMENTS), ["payments-1.json"]);
    let out = w.pass("payments", &config);
    // The refused record is reported (a person fixes it in the ERP): the pass is not complete.
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("payments-1.json"), "{}", stdout(&out));
    for id in &paid {
        assert_eq!(
            payments_before(*id),
            before[id] + 1,
            "invoice {id} paid once"
        );
    }
    assert_eq!(
        w.names(&format!("{PAYMENTS}/processed")),
        ["payments-1.json"]
    );
    // The ERP sends the same file again: nothing new anywhere.
    w.drop_file(PAYMENTS, "payments-1.json", &file);
    let _ = w.pass("payments", &config);
    for id in &paid {
        assert_eq!(
            payments_before(*id),
            before[id] + 1,
            "invoice {id} paid once"
        );
    }
    assert_eq!(
        w.names(&format!("{PAYMENTS}/processed")),
        ["payments-1.json", "payments-1.json.1"]
    );
    let rows = w.ledger().await.payments().await.expect("ledger payments");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r.sync_status == "synced"), "{rows:?}");
    // A file that is not a payment file at all is moved aside.
    w.drop_file(PAYMENTS, "junk.json", b"{{{");
    let out = w.pass("payments", &config);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(w.names(&format!("{PAYMENTS}/unreadable")), ["junk.json"]);

    // Coupa Pay: one file per payment, then nothing until a payment changes.
    let out = w.pass("pay-payments", &config);
    assert!(out.status.success(), "{}", stdout(&out));
    let first = job.take(&w);
    assert!(!first.is_empty(), "payments were exported");
    assert!(
        first.iter().all(|n| n.starts_with("coupa-pay-")),
        "{first:?}"
    );
    let ids: BTreeSet<&str> = first
        .iter()
        .map(|n| n.split('-').nth(2).expect("an id"))
        .collect();
    assert_eq!(ids.len(), first.len(), "one file per payment: {first:?}");
    let out = w.pass("pay-payments", &config);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(
        job.take(&w).is_empty(),
        "the same version is not written again"
    );

    let changed: i64 = ids
        .iter()
        .next()
        .and_then(|id| id.parse().ok())
        .expect("a payment id");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    {
        let mut db = w.sim.state.db.lock();
        let now = w.sim.state.now();
        let status = db
            .pay_payments
            .get(changed)
            .and_then(|p| p.get("status").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        let to = if status == "cancelled" {
            "completed_successfully"
        } else {
            "cancelled"
        };
        coupa_sim::clerk::set_pay_status(&mut db, changed, to, now).expect("status");
    }
    let out = w.pass("pay-payments", &config);
    assert!(out.status.success(), "{}", stdout(&out));
    let second = job.take(&w);
    assert_eq!(second.len(), 1, "{second:?}");
    assert!(second[0].starts_with(&format!("coupa-pay-{changed}-")));
    assert!(!first.contains(&second[0]), "a new version is a new file");
    assert!(job.seen.values().all(|n| *n == 1), "{:?}", job.seen);
}

/// `sync invoices` crashed at each step of a delivery and of the flow around it, then killed at
/// random instants, restarted until done, with the ERP's import job taking files and answering
/// between passes: each invoice's file was taken once, each invoice exported once with one
/// record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_each_step_every_invoice_is_delivered_and_exported_once() {
    let w = World::new(
        SimConfig {
            seed: 34,
            invoices: 60,
            pay_payments: 0,
            csv_pickup: Duration::from_secs(3600),
            ..SimConfig::default()
        },
        false,
    )
    .await;
    let config = w.config("coupa-bridge.toml", 3600);
    let (approved, voided) = eligible(&w);
    assert!(approved.len() >= 20, "{approved:?}");
    let refused = |id: i64| id % 5 == 0;
    let mut job = ImportJob::default();
    // What the ERP took and has not answered yet, and how many result files it wrote.
    let mut unanswered: Vec<String> = Vec::new();
    let mut files = 0usize;
    // The ERP answers what it took, three documents per result file.
    let mut answer_all = |w: &World, unanswered: &mut Vec<String>| {
        let records: Vec<serde_json::Value> = unanswered
            .drain(..)
            .filter_map(|name| {
                let (kind, rest) = name.split_once('-')?;
                let id: i64 = rest.strip_suffix(".json")?.parse().ok()?;
                Some(match kind {
                    "cancel" => json!({"coupa_invoice_id": id, "action": "cancel",
                        "outcome": "accepted", "document_number": format!("ERP-{id}")}),
                    _ if refused(id) => rejected(id, &["Vendor is blocked"]),
                    _ => accepted(id),
                })
            })
            .collect();
        for chunk in records.chunks(3) {
            files += 1;
            w.answer(&format!("results-{files:03}.json"), &json!(chunk));
        }
    };
    let crash_at = |point: &str, n: u32| {
        let status = w
            .sync("invoices", &config)
            .env(coupa_bridge::failpoint::ENV, format!("{point}={n}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("binary runs");
        !status.success()
    };
    let clean_pass = || {
        let out = w.pass("invoices", &config);
        assert!(out.status.success(), "{}", stdout(&out));
    };

    let started = Instant::now();
    let mut crashes = Vec::new();
    // Delivery: the ERP takes files between passes but does not answer yet.
    for (point, n) in [
        ("erp-file-staged", 1),
        ("erp-file-staged", 4),
        ("erp-file-published", 1),
        ("erp-file-published", 3),
        ("sent", 2),
        ("sent", 5),
    ] {
        crashes.push((point, n, crash_at(point, n)));
        unanswered.extend(job.take(&w));
    }
    clean_pass();
    unanswered.extend(job.take(&w));
    let taken: BTreeSet<i64> = job.invoices.keys().copied().collect();
    assert_eq!(
        taken,
        approved.iter().copied().collect(),
        "each invoice delivered"
    );
    assert!(
        approved.iter().all(|id| !w.exported(*id)),
        "none answered yet"
    );

    // Answers: crashes while keeping them and while telling Coupa.
    answer_all(&w, &mut unanswered);
    for (point, n) in [
        ("erp-result-kept", 1),
        ("erp-result-kept", 3),
        ("posted", 1),
        ("posted", 3),
        ("recorded", 2),
        ("exported", 1),
        ("exported", 3),
    ] {
        crashes.push((point, n, crash_at(point, n)));
    }

    clean_pass();
    assert!(
        approved.iter().all(|id| w.exported(*id)),
        "every answer told"
    );

    // Cancellations of accepted invoices voided in Coupa: crashes while delivering them.
    let accepted_ids: Vec<i64> = approved
        .iter()
        .filter(|id| !refused(**id))
        .copied()
        .collect();
    let void = |ids: &[i64]| {
        let mut db = w.sim.state.db.lock();
        let now = w.sim.state.now();
        for id in ids {
            coupa_sim::clerk::set_invoice_status(&mut db, *id, "voided", now).expect("void");
        }
    };
    let voids: Vec<i64> = accepted_ids.iter().take(10).copied().collect();
    void(&voids[..5]);
    for (point, n) in [
        ("erp-file-staged", 2),
        ("erp-file-published", 1),
        ("sent", 1),
        ("erp-result-kept", 1),
        ("exported", 2),
    ] {
        crashes.push((point, n, crash_at(point, n)));
        unanswered.extend(job.take(&w));
        answer_all(&w, &mut unanswered);
    }
    let crashed = crashes.iter().filter(|(_, _, c)| *c).count();
    assert!(
        crashed >= crashes.len() - 2,
        "the failpoints must crash passes: {crashes:?}"
    );

    // SIGKILLs at random instants while more cancellations go out, the ERP working between
    // passes.
    void(&voids[5..]);
    let mut rng = 0x5EED_u64;
    let mut kills = 0;
    for _ in 0..6 {
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let delay = Duration::from_millis(10 + (rng >> 33) % 150);
        let mut child = w
            .sync("invoices", &config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("binary starts");
        tokio::time::sleep(delay).await;
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("SIGKILL");
            kills += 1;
        }
        child.wait().expect("reaped");
        unanswered.extend(job.take(&w));
        answer_all(&w, &mut unanswered);
    }
    // Then passes until every invoice is exported.
    for _ in 0..6 {
        let out = w.pass("invoices", &config);
        unanswered.extend(job.take(&w));
        answer_all(&w, &mut unanswered);
        if approved.iter().all(|id| w.exported(*id)) && out.status.success() {
            break;
        }
    }
    println!(
        "files crash test: {} approved invoices, {crashed} crashes at failpoints, {kills} kills, {:.1}s",
        approved.len(),
        started.elapsed().as_secs_f64()
    );

    let twice: Vec<_> = job.seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "files the ERP saw twice: {twice:?}");
    for id in &voids {
        assert_eq!(job.seen.get(&format!("cancel-{id}.json")), Some(&1), "{id}");
    }
    for id in approved.iter().chain(&voided) {
        assert!(w.exported(*id), "invoice {id} exported");
        let (history, errors) = w.records(*id);
        let expected = if refused(*id) && approved.contains(id) {
            (0, 1)
        } else if voids.contains(id) {
            // The posting's record, resolved, and the cancellation's.
            (2, 0)
        } else {
            (1, 0)
        };
        assert_eq!(
            (history.len(), errors.len()),
            expected,
            "invoice {id} recorded once: {history:?} {errors:?}"
        );
    }
    assert!(w.names(OUTBOX).is_empty(), "{:?}", w.names(OUTBOX));
    let left: Vec<String> = w
        .names(INBOX)
        .iter()
        .map(|n| format!("{n}: {}", String::from_utf8_lossy(&w.read(INBOX, n))))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(w.names(&format!("{INBOX}/unreadable")).is_empty());
}

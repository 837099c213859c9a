//! The state store on SQLite and PostgreSQL: runs, the journal, the API call log and its
//! observer, reopening.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use coupa_api::observe::{Attempt, CallContext, Observer};
use coupa_bridge::db;
use coupa_bridge::store::{CallFilter, CallLog, CallRecord, RunOutcome, Store, StoreError};

use crate::pg::each_backend;

async fn connect(url: &str) -> Store {
    Store::connect(url).await.expect("connecting the store")
}

#[tokio::test]
async fn store_runs_lifecycle() {
    each_backend("store_runs_lifecycle", |url| async move {
        let store = connect(&url).await;
        let first = store.start_run("invoices").await.expect("start");
        let second = store.start_run("payments").await.expect("start");
        let third = store.start_run("invoices").await.expect("start");
        assert!(first < second && second < third);

        let outcome = RunOutcome {
            status: "succeeded".into(),
            documents_ok: 50,
            documents_failed: 0,
            documents_skipped: 3,
            api_calls: 104,
            error: None,
        };
        store.finish_run(first, &outcome).await.expect("finish");
        let failed = RunOutcome {
            status: "failed".into(),
            error: Some("Coupa unreachable".into()),
            ..RunOutcome::default()
        };
        store.finish_run(second, &failed).await.expect("finish");

        let runs = store.runs(10).await.expect("list");
        let ids: Vec<i64> = runs.iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![third, second, first], "newest first");
        assert_eq!(runs[0].status, "running");
        assert_eq!(runs[0].finished_at, None);
        assert_eq!(runs[1].status, "failed");
        assert_eq!(runs[1].error.as_deref(), Some("Coupa unreachable"));
        let r = &runs[2];
        assert_eq!(
            (r.flow.as_str(), r.status.as_str()),
            ("invoices", "succeeded")
        );
        assert_eq!(
            (
                r.documents_ok,
                r.documents_failed,
                r.documents_skipped,
                r.api_calls
            ),
            (50, 0, 3, 104)
        );
        assert!(r.finished_at.expect("finished") >= r.started_at);
        assert!(r.started_at <= Utc::now());

        assert_eq!(store.runs(2).await.expect("list").len(), 2);
        let err = store
            .finish_run(third + 1_000, &outcome)
            .await
            .expect_err("unknown run");
        assert!(matches!(err, StoreError::UnknownRun(_)), "{err}");
    })
    .await;
}

#[tokio::test]
async fn store_journal_put_get_overwrite_and_history() {
    each_backend("store_journal", |url| async move {
        let store = connect(&url).await;
        assert_eq!(
            store.journal_get("invoices", "1042").await.expect("get"),
            None
        );
        let before = db::now();
        store
            .journal_put("invoices", "1042", "posting", "", Some(1))
            .await
            .expect("put");
        store
            .journal_put(
                "invoices",
                "1042",
                "rejected",
                r#"["supplier 'SUP-9001' is not in the ERP supplier master"]"#,
                Some(2),
            )
            .await
            .expect("overwrite");
        store
            .journal_put("invoices", "1043", "posted", "ERP-000002", None)
            .await
            .expect("put");
        store
            .journal_put("payments", "1042", "pushed", "", Some(2))
            .await
            .expect("same key, other flow");

        let current = store
            .journal_get("invoices", "1042")
            .await
            .expect("get")
            .expect("present");
        assert_eq!(current.step, "rejected");
        assert!(current.detail.contains("SUP-9001"));
        assert_eq!(current.run, Some(2));
        assert!(current.updated_at >= before);

        let history = store
            .journal_history("invoices", "1042")
            .await
            .expect("history");
        let steps: Vec<(&str, Option<i64>)> =
            history.iter().map(|e| (e.step.as_str(), e.run)).collect();
        assert_eq!(steps, vec![("posting", Some(1)), ("rejected", Some(2))]);

        let keys: Vec<String> = ["1042", "1043", "9999"].map(String::from).to_vec();
        let many = store
            .journal_get_many("invoices", &keys)
            .await
            .expect("get many");
        assert_eq!(many.len(), 2);
        assert_eq!(many["1043"].detail, "ERP-000002");
        assert_eq!(many["1043"].run, None);
        assert_eq!(many["1042"].step, "rejected");
    })
    .await;
}

#[tokio::test]
async fn store_journal_get_many_is_chunked() {
    each_backend("store_journal_many", |url| async move {
        let store = connect(&url).await;
        // 1,001 keys (3 chunks of at most 500), every 4th one journaled.
        for i in (0..1_001).step_by(4) {
            store
                .journal_put("invoices", &format!("k{i}"), "posted", &i.to_string(), None)
                .await
                .expect("put");
        }
        let keys: Vec<String> = (0..1_001).map(|i| format!("k{i}")).collect();
        let found = store
            .journal_get_many("invoices", &keys)
            .await
            .expect("get many");
        assert_eq!(found.len(), 251);
        assert_eq!(found["k1000"].detail, "1000");
        assert!(!found.contains_key("k999"));
    })
    .await;
}

fn call(
    at: DateTime<Utc>,
    flow: &str,
    run: Option<i64>,
    doc: Option<&str>,
    status: Option<u16>,
) -> CallRecord {
    CallRecord {
        at: db::truncate_micros(at),
        flow: flow.into(),
        run,
        document: doc.map(str::to_owned),
        method: "GET".into(),
        path: "/api/invoices?exported=false&id%5Bgt%5D=0".into(),
        status,
        duration_ms: 31,
        waited_ms: 2,
        attempt: 1,
        bytes_sent: 0,
        bytes_received: 48_213,
        error: status
            .filter(|s| *s >= 400)
            .map(|s| format!("HTTP {s}"))
            .or_else(|| status.is_none().then(|| "connection refused".to_owned())),
    }
}

#[tokio::test]
async fn store_call_log_filters_and_prune() {
    each_backend("store_calls", |url| async move {
        let store = connect(&url).await;
        let now = db::now();
        let minutes = |m: i64| now - chrono::Duration::minutes(m);
        let calls = vec![
            call(
                minutes(60 * 24 * 40),
                "invoices",
                Some(1),
                Some("invoice 1"),
                Some(200),
            ),
            call(
                minutes(50),
                "invoices",
                Some(2),
                Some("invoice 2"),
                Some(429),
            ),
            call(
                minutes(40),
                "invoices",
                Some(2),
                Some("invoice 2"),
                Some(200),
            ),
            call(
                minutes(30),
                "payments",
                Some(3),
                Some("payment P-1"),
                Some(404),
            ),
            call(minutes(20), "payments", Some(3), None, Some(503)),
            call(minutes(10), "pay-payments", None, None, None),
            call(
                minutes(5),
                "payments",
                Some(3),
                Some("payment P-1"),
                Some(302),
            ),
        ];
        store.log_calls(&calls).await.expect("log");
        store.log_calls(&[]).await.expect("empty batch");

        let all = store.calls(&CallFilter::default()).await.expect("list");
        let mut newest_first = calls.clone();
        newest_first.reverse();
        assert_eq!(all, newest_first, "round trip, newest first");

        let count = |f: CallFilter| {
            let store = store.clone();
            async move { store.calls(&f).await.expect("filtered list").len() }
        };
        let by_flow = |flow: &str| CallFilter {
            flow: Some(flow.into()),
            ..CallFilter::default()
        };
        assert_eq!(count(by_flow("invoices")).await, 3);
        assert_eq!(count(by_flow("payments")).await, 3);
        assert_eq!(
            count(CallFilter {
                run: Some(2),
                ..CallFilter::default()
            })
            .await,
            2
        );
        assert_eq!(
            count(CallFilter {
                document: Some("payment P-1".into()),
                ..CallFilter::default()
            })
            .await,
            2
        );
        for (class, n) in [
            ("2xx", 2),
            ("3xx", 1),
            ("4xx", 1),
            ("429", 1),
            ("5xx", 1),
            ("error", 1),
        ] {
            let got = count(CallFilter {
                status_class: Some(class.into()),
                ..CallFilter::default()
            })
            .await;
            assert_eq!(got, n, "status class {class}");
        }
        assert_eq!(
            count(CallFilter {
                since: Some(minutes(30)),
                ..CallFilter::default()
            })
            .await,
            4,
            "since is inclusive"
        );
        let limited = store
            .calls(&CallFilter {
                limit: 2,
                ..CallFilter::default()
            })
            .await
            .expect("limited");
        assert_eq!(limited, newest_first[..2].to_vec());
        let combined = store
            .calls(&CallFilter {
                flow: Some("payments".into()),
                run: Some(3),
                status_class: Some("4xx".into()),
                since: Some(minutes(35)),
                ..CallFilter::default()
            })
            .await
            .expect("combined");
        assert_eq!(combined, vec![calls[3].clone()]);

        let pruned = store
            .prune_calls(now - chrono::Duration::days(30))
            .await
            .expect("prune");
        assert_eq!(pruned, 1);
        assert_eq!(count(CallFilter::default()).await, 6);
        assert_eq!(store.prune_calls(minutes(30)).await.expect("prune"), 2);
        assert_eq!(count(CallFilter::default()).await, 4);
    })
    .await;
}

fn attempt(task: usize, i: usize) -> Attempt {
    Attempt {
        context: Arc::new(CallContext {
            flow: "invoices".into(),
            run: Some(task as i64),
            document: Some(format!("invoice {task}-{i}")),
        }),
        method: "PUT".into(),
        path: format!("/api/invoices/{i}?return_object=limited"),
        attempt: 1 + (i % 3) as u32,
        status: if i.is_multiple_of(10) {
            Some(429)
        } else {
            Some(200)
        },
        duration: Duration::from_millis(20),
        waited: Duration::from_millis(1),
        bytes_sent: 100,
        bytes_received: 200,
        error: None,
        retry_in: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_call_log_observer_flushes_everything() {
    each_backend("store_call_log_observer", |url| async move {
        let store = connect(&url).await;
        let (log, handle) = CallLog::spawn(store.clone());
        let observer: Arc<dyn Observer> = Arc::new(log);
        let tasks: Vec<_> = (0..8)
            .map(|task| {
                let observer = Arc::clone(&observer);
                tokio::spawn(async move {
                    for i in 0..125 {
                        observer.attempt(&attempt(task, i));
                        if i % 16 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("observer task");
        }
        let stats = handle.flush().await;
        assert_eq!(
            (stats.written, stats.failed, stats.dropped),
            (1_000, 0, 0),
            "{stats:?}"
        );
        let stored = store
            .calls(&CallFilter {
                limit: 5_000,
                ..CallFilter::default()
            })
            .await
            .expect("list");
        assert_eq!(stored.len(), 1_000);
        for task in 0..8 {
            let n = store
                .calls(&CallFilter {
                    run: Some(task),
                    limit: 5_000,
                    ..CallFilter::default()
                })
                .await
                .expect("by run")
                .len();
            assert_eq!(n, 125, "run {task}");
        }
        let throttled = store
            .calls(&CallFilter {
                status_class: Some("429".into()),
                limit: 5_000,
                ..CallFilter::default()
            })
            .await
            .expect("429s");
        assert_eq!(throttled.len(), 8 * 13);
        let one = &stored[0];
        assert_eq!(
            (
                one.bytes_sent,
                one.bytes_received,
                one.duration_ms,
                one.waited_ms
            ),
            (100, 200, 20, 1)
        );
    })
    .await;
}

#[tokio::test]
async fn store_reopen_keeps_data_and_does_not_migrate_again() {
    each_backend("store_reopen", |url| async move {
        let store = connect(&url).await;
        let run = store.start_run("invoices").await.expect("start");
        store
            .journal_put("invoices", "7", "posted", "ERP-000007", Some(run))
            .await
            .expect("put");
        let applied = store
            .db()
            .applied_migrations("store")
            .await
            .expect("migrations");
        store.db().close().await;

        let again = connect(&url).await;
        assert_eq!(again.runs(5).await.expect("runs")[0].id, run);
        assert_eq!(
            again
                .journal_get("invoices", "7")
                .await
                .expect("get")
                .expect("kept")
                .detail,
            "ERP-000007"
        );
        let reapplied = again
            .db()
            .applied_migrations("store")
            .await
            .expect("migrations");
        assert_eq!(applied, reapplied, "same versions, same applied_at");
        assert_eq!(
            applied.len(),
            3,
            "runs and journal, then notifications, then leases"
        );
    })
    .await;
}

#[tokio::test]
async fn store_connect_current_creates_and_migrates_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("state.db");
    let url = format!("sqlite://{}", file.display());
    assert!(Store::connect_current(&url).await.expect("ask").is_none());
    assert!(!file.exists(), "no file created");
    // A database without the store's tables is no store yet, and stays without them.
    let bare = db::Db::connect(&url).await.expect("bare database");
    assert!(Store::connect_current(&url).await.expect("ask").is_none());
    assert!(
        bare.applied_migrations("store").await.is_err(),
        "no migrations table created"
    );
    bare.close().await;
    let store = connect(&url).await;
    store
        .journal_put("invoices", "1", "posted", "{}", None)
        .await
        .expect("put");
    store.db().close().await;
    let current = Store::connect_current(&url)
        .await
        .expect("ask")
        .expect("a current store opens");
    assert_eq!(
        current
            .journal_get("invoices", "1")
            .await
            .expect("get")
            .expect("kept")
            .step,
        "posted"
    );
}

#[tokio::test]
async fn store_errors_do_not_show_the_password() {
    // Port 1 refuses connections at once.
    let err = Store::connect("postgres://bridge:hunter2@127.0.0.1:1/state")
        .await
        .expect_err("nothing listens on port 1");
    let msg = err.to_string();
    assert!(
        msg.contains("postgres://bridge:***@127.0.0.1:1/state"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[tokio::test]
async fn store_sqlite_file_is_created_with_its_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/deeper/state.db");
    let store = connect(&format!("sqlite://{}", path.display())).await;
    store.start_run("invoices").await.expect("start");
    assert!(path.is_file());
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.db().pool())
        .await
        .expect("journal mode");
    assert_eq!(mode, "wal");
}

//! Scale-out: several `coupa-bridge run` replicas on one PostgreSQL state store and ERP. Each
//! tenant's flows run in one replica at a time (the lease), another takes over when the holder is
//! SIGKILLed, a replica that lost its lease cannot write (the fence), and a few thousand invoices
//! end in the ERP exactly once with no two replicas' passes overlapping.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coupa_bridge::commands::demo::{erp_payments_for, seed_erp_from_sim};
use coupa_bridge::erp::sql::SqlErp;
use coupa_bridge::store::{FLOWS_LEASE, Store, StoreError};
use coupa_doc::Value;
use coupa_sim::SimConfig;
use coupa_sim::config::DEFAULT_CLIENT_SECRET;

use crate::pg::{database, each_backend};

#[tokio::test]
async fn one_holder_at_a_time_and_a_stale_holder_is_fenced_out() {
    each_backend("lease", |url| async move {
        let a = Store::connect(&url).await.expect("store a");
        let b = Store::connect(&url).await.expect("store b");
        let ttl = Duration::from_millis(400);
        let fa = a
            .lease_acquire(FLOWS_LEASE, "replica-a", ttl)
            .await
            .expect("ask")
            .expect("a free lease is granted");
        assert_eq!(fa.token, 1);
        assert_eq!(
            b.lease_acquire(FLOWS_LEASE, "replica-b", ttl)
                .await
                .expect("ask"),
            None,
            "a running lease is not granted to another replica"
        );
        assert!(a.lease_renew(&fa, ttl).await.expect("renew"));
        let renewed = std::time::Instant::now();
        a.set_fence(Some(fa.clone()));
        a.journal_put("invoices", "invoice:1", "posted", "{}", None)
            .await
            .expect("the holder writes");
        // A write to Coupa may start until half the term before the expiry.
        let asked = std::time::Instant::now();
        let until = a
            .lease_term()
            .await
            .expect("the holder may write")
            .expect("under a fence, a term");
        // The expiry is on the database's clock, in whole milliseconds, and this process's
        // monotonic clock may drift from it by a little: a few milliseconds of slack.
        let slack = Duration::from_millis(10);
        assert!(
            until > asked && until <= renewed + ttl / 2 + slack,
            "the term {until:?} should lie after the ask {asked:?} and by half the lease after \
             the renewal {renewed:?}"
        );
        // Renewals late: too near the expiry to start a write, though no one took over.
        tokio::time::sleep(ttl / 2 + Duration::from_millis(20)).await;
        let e = a.lease_term().await.expect_err("too late in the term");
        assert!(e.to_string().contains("too soon to start a write"), "{e}");
        assert!(a.lease_renew(&fa, ttl).await.expect("renew"));
        assert!(a.lease_term().await.is_ok(), "renewed, it may write again");

        // A stops renewing (paused, partitioned): after the lease time B takes over.
        tokio::time::sleep(ttl + Duration::from_millis(150)).await;
        let fb = b
            .lease_acquire(FLOWS_LEASE, "replica-b", ttl)
            .await
            .expect("ask")
            .expect("an expired lease is granted");
        assert_eq!(fb.token, 2, "the fencing token grows with each holder");
        assert!(
            !a.lease_renew(&fa, ttl).await.expect("renew"),
            "the old holder learns it lost the lease"
        );
        let e = a
            .journal_put("invoices", "invoice:1", "exported", "{}", None)
            .await
            .expect_err("the old holder can no longer write");
        assert!(matches!(e, StoreError::Fenced { .. }), "{e}");
        assert!(e.to_string().contains("replica-b"), "{e}");
        let e = a.start_run("invoices").await.expect_err("nor start a run");
        assert!(matches!(e, StoreError::Fenced { .. }), "{e}");
        let entry = b
            .journal_get("invoices", "invoice:1")
            .await
            .expect("read")
            .expect("entry");
        assert_eq!(entry.step, "posted", "the fenced write left nothing");

        b.set_fence(Some(fb.clone()));
        b.journal_put("invoices", "invoice:1", "exported", "{}", None)
            .await
            .expect("the new holder writes");
        // Release hands over at once.
        b.lease_release(&fb).await.expect("release");
        let fa2 = a
            .lease_acquire(FLOWS_LEASE, "replica-a", ttl)
            .await
            .expect("ask")
            .expect("a released lease is granted at once");
        assert_eq!(fa2.token, 3);
        // A stale release changes nothing.
        b.lease_release(&fb).await.expect("stale release");
        assert!(a.lease_renew(&fa2, ttl).await.expect("renew"));
        let leases = a.leases().await.expect("leases");
        assert_eq!(leases.len(), 1);
        assert_eq!(leases[0].holder, "replica-a");
        assert!(leases[0].remaining_ms > 0);

        assert_eq!(
            a.replica_heartbeat("replica-a", "h1", ttl)
                .await
                .expect("hb"),
            1
        );
        assert_eq!(
            b.replica_heartbeat("replica-b", "h2", ttl)
                .await
                .expect("hb"),
            2
        );
        b.replica_gone("replica-b").await.expect("gone");
        assert_eq!(
            a.replica_heartbeat("replica-a", "h1", ttl)
                .await
                .expect("hb"),
            1
        );
    })
    .await;
}

/// How the holder is taken out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outage {
    /// SIGKILL: a replica on the same host sees the process is gone and takes over at once.
    Kill,
    /// SIGSTOP for longer than the lease, then SIGCONT: as a replica on another host, or one
    /// cut off by the network, it is waited out; when it wakes it finds itself fenced out.
    Pause,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_work_and_survive_a_kill() {
    replicas(2, 2_000, 0xB0B, Outage::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_wait_out_a_paused_holder_and_fence_it() {
    replicas(3, 3_000, 0xC0C, Outage::Pause).await;
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name}");
}

struct Replica {
    child: Child,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config: &std::path::Path, log: &std::path::Path) -> Replica {
    let log = std::fs::File::create(log).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_coupa-bridge"))
        .args(["run", "--config"])
        .arg(config)
        .env("COUPA_BRIDGE__COUPA__CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("coupa-bridge run starts");
    Replica { child }
}

/// The holder of the flows lease, and its token.
async fn holder(store: &Store) -> Option<(String, i64)> {
    store
        .leases()
        .await
        .expect("leases")
        .into_iter()
        .find(|l| l.name == FLOWS_LEASE && l.remaining_ms > 0)
        .map(|l| (l.holder, l.token))
}

/// `replicas` processes on one PostgreSQL store and ERP export `invoices` invoices and push
/// payments; the lease holder is SIGKILLed mid-way.
async fn replicas(count: usize, invoices: usize, seed: u64, outage: Outage) {
    let (Some(state_url), Some(erp_url)) = (database().await, database().await) else {
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = coupa_sim::spawn(SimConfig {
        seed,
        invoices,
        pay_payments: 0,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let erp = SqlErp::connect(&erp_url).await.expect("erp");
    seed_erp_from_sim(&erp, &sim).await.expect("master data");
    let eligible = crate::invoice_export::eligible(&sim);
    let config = dir.path().join("coupa-bridge.toml");
    std::fs::write(
        &config,
        format!(
            "[coupa]\nbase_url = \"{}\"\ninsecure_http_simulator_only = true\nclient_id = \"coupa-bridge\"\n\
             requests_per_second = 400\nburst = 50\n\n\
             [state]\nurl = \"{state_url}\"\nlease_secs = 3\n\n\
             [erp]\nkind = \"sql\"\nurl = \"{erp_url}\"\n\n\
             [invoices]\nconcurrency = 8\n\n\
             [schedule]\ninvoices = \"* * * * * *\"\npayments = \"* * * * * *\"\n\
             pay_payments = \"\"\n\n[server]\nlisten = \"127.0.0.1:0\"\n",
            sim.base_url(),
        ),
    )
    .expect("config");
    let store = Store::connect(&state_url).await.expect("store");

    let mut running: Vec<Replica> = (0..count)
        .map(|i| start(&config, &dir.path().join(format!("replica-{i}.log"))))
        .collect();

    // Wait until a holder has exported a good share, then kill it.
    let deadline = Instant::now() + Duration::from_secs(120);
    let (first, first_token) = loop {
        assert!(Instant::now() < deadline, "no replica took the lease");
        if let Some(h) = holder(&store).await
            && erp.invoices().await.expect("erp").len() > invoices / 8
        {
            break h;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pid: u32 = first
        .split(':')
        .nth(2)
        .and_then(|p| p.parse().ok())
        .expect("the replica id carries the process id");
    let victim = running
        .iter()
        .position(|r| r.child.id() == pid)
        .expect("the holder is one of ours");
    let mut paused = None;
    match outage {
        Outage::Kill => {
            let mut killed = running.swap_remove(victim);
            killed.child.kill().expect("SIGKILL");
            killed.child.wait().expect("reaped");
        }
        Outage::Pause => {
            signal(&running[victim].child, "STOP");
            paused = Some(victim);
        }
    }
    let killed_at = Instant::now();
    let exported_at_kill = erp.invoices().await.expect("erp").len();

    let (second, second_token) = loop {
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "nobody took over from {first}"
        );
        if let Some((h, t)) = holder(&store).await
            && h != first
        {
            break (h, t);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let takeover = killed_at.elapsed();
    assert!(second_token > first_token);
    if let Some(victim) = paused {
        // It was alive all along, so the lease had to run out first.
        assert!(takeover >= Duration::from_secs(2), "{takeover:?}");
        signal(&running[victim].child, "CONT");
    }

    // The payments of a third of the posted invoices arrive while the new holder works.
    let open: Vec<_> = erp
        .invoices()
        .await
        .expect("erp")
        .into_iter()
        .filter(|i| i.status == "open")
        .collect();
    let payments = erp_payments_for(&open[..open.len() / 3], "RPL");
    erp.record_payments(&payments).await.expect("payments");

    let done = |sim: &coupa_sim::RunningSim| crate::invoice_export::eligible(sim).is_empty();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let pending = erp
            .payments_with_status("pending", 100_000)
            .await
            .expect("pending")
            .len();
        if done(&sim) && pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not done: {} invoices, {pending} payments left",
            crate::invoice_export::eligible(&sim).len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for r in &mut running {
        // Graceful stop: the holder finishes and releases.
        let pid = r.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
    }
    for r in &mut running {
        let status = r.child.wait().expect("replica exits");
        assert!(status.success(), "a replica stopped badly: {status}");
    }

    // Every invoice once.
    let rows = erp.invoices().await.expect("erp rows");
    let synced = erp
        .payments_with_status("synced", 100_000)
        .await
        .expect("synced");
    let failed = erp
        .payments_with_status("failed", 100_000)
        .await
        .expect("failed");
    let mut by_coupa: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &rows {
        *by_coupa.entry(r.coupa_invoice_id).or_default() += 1;
    }
    assert!(
        by_coupa.values().all(|n| *n == 1),
        "an invoice posted twice"
    );
    let runs = store.runs(100_000).await.expect("runs");
    let db = sim.state.db.lock();
    for id in eligible.keys() {
        let inv = db.invoices.get(*id).expect("invoice");
        assert_eq!(inv.get("exported").and_then(Value::as_bool), Some(true));
        let records = db
            .integration_errors
            .rows()
            .chain(db.history_records.rows())
            .filter(|r| r.get("document-id").and_then(Value::as_i64) == Some(*id))
            .count();
        assert_eq!(records, 1, "invoice {id} recorded once");
    }
    for run in db.integration_runs.rows() {
        let status = run.get("status").and_then(Value::as_str).unwrap_or("");
        assert!(
            !matches!(status, "pending" | "running"),
            "a run left {status}"
        );
    }
    // Every payment once on its invoice.
    // erp_payments_for adds two payments for invoices Coupa does not have: they fail, once.
    assert_eq!(
        synced.len() + failed.len(),
        payments.len(),
        "none left pending"
    );
    assert_eq!(failed.len(), 2, "{failed:?}");
    for p in &failed {
        assert!(p.invoice_number.starts_with("NO-SUCH"), "{p:?}");
    }
    for p in &synced {
        let id = p
            .coupa_invoice_id
            .expect("synced payments name their invoice");
        let inv = db.invoices.get(id).expect("invoice");
        let on_coupa = inv
            .get("payments")
            .and_then(Value::as_array)
            .map_or(0, |ps| {
                ps.iter()
                    .filter(|p2| {
                        p2.as_object()
                            .and_then(|o| o.get("notes"))
                            .and_then(Value::as_str)
                            .is_some_and(|n| {
                                n.contains(&p.payment_ref) || Some(n) == p.check_number.as_deref()
                            })
                    })
                    .count()
            });
        assert_eq!(on_coupa, 1, "payment {} on its invoice once", p.payment_ref);
    }
    drop(db);

    // No duplicate work: passes of a flow never overlap, across replicas.
    let replicas_seen: BTreeSet<String> = runs.iter().filter_map(|r| r.replica.clone()).collect();
    assert!(replicas_seen.contains(&first) && replicas_seen.contains(&second));
    for flow in ["invoices", "payments"] {
        let mut of_flow: Vec<_> = runs.iter().filter(|r| r.flow == flow).collect();
        of_flow.sort_by_key(|r| r.started_at);
        for pair in of_flow.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let woken = outage == Outage::Pause && a.replica.as_deref() == Some(first.as_str());
            match a.finished_at {
                Some(end) if end <= b.started_at => {}
                // The paused holder's pass ends after the next holder's began: fenced out at its
                // first write after waking, it did no work beside it.
                Some(_) if woken => assert_ne!(a.status, "succeeded", "{a:?}"),
                Some(_) => panic!(
                    "{flow} runs {} ({:?}) and {} ({:?}) overlap",
                    a.id, a.replica, b.id, b.replica
                ),
                // Only the holder taken out leaves a run unfinished.
                None => assert_eq!(a.replica.as_deref(), Some(first.as_str())),
            }
        }
    }
    println!(
        "{count} replicas, holder {outage:?}: {} eligible invoices ({exported_at_kill} in the ERP when the holder was \
         killed), {} payments, takeover by {second} in {:.1}s, {} runs by {} replicas, {:.1}s",
        eligible.len(),
        payments.len(),
        takeover.as_secs_f64(),
        runs.len(),
        replicas_seen.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Two Coupa instances in one config, two replicas: each replica runs one tenant; when one
/// stops, the other runs both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_spread_over_replicas_and_gather_when_one_stops() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sims = Vec::new();
    let mut tenants = String::new();
    for (i, name) in ["acme", "globex"].into_iter().enumerate() {
        let sim = coupa_sim::spawn(SimConfig {
            seed: 40 + i as u64,
            invoices: 60,
            pay_payments: 0,
            ..SimConfig::default()
        })
        .await
        .expect("simulator");
        let erp_url =
            coupa_bridge::commands::demo::sqlite_url(&dir.path().join(format!("{name}-erp.db")));
        let erp = SqlErp::connect(&erp_url).await.expect("erp");
        seed_erp_from_sim(&erp, &sim).await.expect("master data");
        tenants.push_str(&format!(
            "[tenants.{name}.coupa]\nbase_url = \"{}\"\n\
             [tenants.{name}.state]\nurl = \"sqlite://{name}-state.db\"\n\
             [tenants.{name}.erp]\nurl = \"sqlite://{name}-erp.db\"\n\n",
            sim.base_url()
        ));
        sims.push((name, sim));
    }
    let config = dir.path().join("coupa-bridge.toml");
    std::fs::write(
        &config,
        format!(
            "[coupa]\nclient_id = \"coupa-bridge\"\ninsecure_http_simulator_only = true\n\n\
             [state]\nlease_secs = 2\n\n\
             [schedule]\ninvoices = \"* * * * * *\"\npayments = \"\"\npay_payments = \"\"\n\n\
             [server]\nlisten = \"127.0.0.1:0\"\n\n{tenants}"
        ),
    )
    .expect("config");
    let stores = [
        Store::connect(&coupa_bridge::commands::demo::sqlite_url(
            &dir.path().join("acme-state.db"),
        ))
        .await
        .expect("acme store"),
        Store::connect(&coupa_bridge::commands::demo::sqlite_url(
            &dir.path().join("globex-state.db"),
        ))
        .await
        .expect("globex store"),
    ];
    let mut running: Vec<Replica> = (0..2)
        .map(|i| start(&config, &dir.path().join(format!("replica-{i}.log"))))
        .collect();
    let holders = |want_distinct: bool| {
        let stores = &stores;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let mut hs = Vec::new();
                for s in stores {
                    hs.push(holder(s).await.map(|(h, _)| h));
                }
                if let [Some(a), Some(b)] = &hs[..]
                    && (a != b) == want_distinct
                {
                    return (a.clone(), b.clone());
                }
                assert!(Instant::now() < deadline, "holders stay {hs:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let (a, b) = holders(true).await;
    assert_ne!(a, b, "one tenant per replica");
    for (name, sim) in &sims {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !crate::invoice_export::eligible(sim).is_empty() {
            assert!(Instant::now() < deadline, "{name}'s invoices not exported");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // One replica stops gracefully: the other gathers both tenants.
    let gone = running.remove(0);
    signal(&gone.child, "TERM");
    let (a2, b2) = holders(false).await;
    assert_eq!(a2, b2, "one replica holds both");
    let pid = a2.split(':').nth(2).and_then(|p| p.parse::<u32>().ok());
    assert_eq!(pid, Some(running[0].child.id()));
    drop(gone);
}

/// A one-off `sync` never runs beside the daemon: it waits one lease time for the holder, then
/// exits 2 naming it; once the daemon has stopped, it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_refuses_to_run_beside_the_daemon() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = coupa_sim::spawn(SimConfig {
        seed: 50,
        invoices: 20,
        pay_payments: 0,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let state_url = coupa_bridge::commands::demo::sqlite_url(&dir.path().join("state.db"));
    let erp_url = coupa_bridge::commands::demo::sqlite_url(&dir.path().join("erp.db"));
    let erp = SqlErp::connect(&erp_url).await.expect("erp");
    seed_erp_from_sim(&erp, &sim).await.expect("master data");
    let config = dir.path().join("coupa-bridge.toml");
    std::fs::write(
        &config,
        format!(
            "[coupa]\nbase_url = \"{}\"\ninsecure_http_simulator_only = true\n\
             client_id = \"coupa-bridge\"\n\n[state]\nurl = \"{state_url}\"\nlease_secs = 2\n\n\
             [erp]\nurl = \"{erp_url}\"\n\n[schedule]\ninvoices = \"\"\npayments = \"\"\n\
             pay_payments = \"\"\n\n[server]\nlisten = \"127.0.0.1:0\"\n",
            sim.base_url()
        ),
    )
    .expect("config");
    let store = Store::connect(&state_url).await.expect("store");
    let daemon = start(&config, &dir.path().join("daemon.log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let (holder_id, _) = loop {
        if let Some(h) = holder(&store).await {
            break h;
        }
        assert!(Instant::now() < deadline, "the daemon took no lease");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let sync = || {
        Command::new(env!("CARGO_BIN_EXE_coupa-bridge"))
            .args(["sync", "invoices", "--config"])
            .arg(&config)
            .env("COUPA_BRIDGE__COUPA__CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
            .output()
            .expect("sync runs")
    };
    let refused = sync();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&holder_id), "{stderr}");
    assert!(
        !crate::invoice_export::eligible(&sim).is_empty()
            && erp.invoices().await.expect("erp").is_empty(),
        "the refused sync did nothing"
    );
    signal(&daemon.child, "TERM");
    drop(daemon);
    let ran = sync();
    assert!(
        ran.status.code() == Some(0) || ran.status.code() == Some(1),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(
        crate::invoice_export::eligible(&sim).is_empty(),
        "the sync exported"
    );
}

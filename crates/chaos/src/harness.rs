//! One chaos run: the world (simulator, ERP, state store), the workers, the schedule, the
//! settling, the checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use coupa_bridge::commands::demo::{seed_erp_from_sim, sqlite_url};
use coupa_bridge::erp::sql::SqlErp;
use coupa_bridge::store::Store;
use coupa_chaos::activity::{Payer, pay_move};
use coupa_chaos::invariants::{
    self, Activity, Baseline, ErpSnapshot, SimSnapshot, Violation, pending_in_coupa,
};
use coupa_chaos::plan::{Event, Plan, PlanSettings, Transport};
use coupa_chaos::rng::SplitMix;
use coupa_doc::Value;
use coupa_sim::SimConfig;
use coupa_sim::config::{
    DEFAULT_CLIENT_SECRET, DEFAULT_SFTP_PASSWORD, DEFAULT_SFTP_USER, RateLimit,
};
use sqlx::{Connection, Executor};

use crate::report::{Figures, Inputs, Outcome};
use crate::workers::Pool;
use crate::{Args, SabotageArg, TransportArg};

/// The simulator's rate limit: low enough that the workers' governors meet 429s.
const SIM_RATE: RateLimit = RateLimit {
    per_second: 150,
    burst: 40,
    retry_after: false,
};
/// How long the flows must have had nothing to do before the run is called settled.
const QUIET_FOR: Duration = Duration::from_secs(3);
/// How long workers get to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(40);
/// How much longer a sabotaged chaos may last while waiting for the sabotage to strike.
const SABOTAGE_WAIT: Duration = Duration::from_secs(90);
/// The failpoint the bridge passes right after a sabotaged early acknowledgement (its
/// `sabotage::ACKED_FAILPOINT`, which exists only in sabotage builds).
pub const SABOTAGE_FAILPOINT: &str = "sabotage-acked";

pub async fn run(args: Args) -> anyhow::Result<Outcome> {
    let began = Instant::now();
    anyhow::ensure!(args.replicas >= 1, "--replicas must be at least 1");
    let sabotage = args.sabotage.map(SabotageArg::as_str);
    eprintln!(
        "coupa-chaos: seed {}, {}s of chaos, {} invoices, {} Coupa Pay payments, {} replica(s) on {}, \
         payments by {}; sabotage compiled in: {}{}",
        args.seed,
        args.duration,
        args.invoices,
        args.pay_payments,
        args.replicas,
        if args.pg.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        transport(args.transport).as_str(),
        if coupa_bridge::SABOTAGE_COMPILED {
            "yes"
        } else {
            "no"
        },
        sabotage
            .map(|s| format!(", sabotage {s}"))
            .unwrap_or_default(),
    );
    if sabotage.is_some() && !coupa_bridge::SABOTAGE_COMPILED {
        anyhow::bail!(
            "--sabotage needs a build with coupa-bridge's `sabotage` feature, which `cargo test -p \
             coupa-chaos` makes and `cargo build`/`cargo run` do not"
        );
    }
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.clone()
        }
        None => tempfile::Builder::new()
            .prefix("coupa-chaos-")
            .tempdir()
            .context("cannot create a temp folder")?
            .keep(),
    };

    let sim = coupa_sim::spawn(SimConfig {
        seed: args.seed,
        invoices: args.invoices,
        pay_payments: args.pay_payments,
        rate_limit: Some(SIM_RATE),
        csv_pickup: Duration::from_millis(500),
        ..SimConfig::default()
    })
    .await
    .context("cannot start the Coupa simulator")?;
    let databases = match &args.pg {
        Some(admin) => Some(Databases::create(admin, args.seed).await?),
        None => None,
    };
    let (state_url, erp_url) = match &databases {
        Some(d) => (d.state.clone(), d.erp.clone()),
        None => (
            sqlite_url(&dir.join("state.db")),
            sqlite_url(&dir.join("erp.db")),
        ),
    };
    let erp = SqlErp::connect(&erp_url)
        .await
        .context("cannot open the ERP")?;
    seed_erp_from_sim(&erp, &sim).await?;
    // Migrated here, once, before the workers race to it.
    let store = Store::connect(&state_url)
        .await
        .context("cannot open the state store")?;
    let base = Baseline::of(&SimSnapshot::take(&sim));

    let config = dir.join("coupa-bridge.toml");
    std::fs::write(&config, config_text(&args, &sim, &state_url, &erp_url))
        .with_context(|| format!("cannot write {}", config.display()))?;
    let env = vec![
        (
            "COUPA_BRIDGE__COUPA__CLIENT_SECRET".to_owned(),
            DEFAULT_CLIENT_SECRET.to_owned(),
        ),
        (
            "COUPA_BRIDGE__PAYMENTS__SFTP__PASSWORD".to_owned(),
            DEFAULT_SFTP_PASSWORD.to_owned(),
        ),
    ];
    coupa_bridge::config::Config::load(&config, env.clone())
        .map_err(|e| anyhow::anyhow!("the workers' configuration is refused: {e}"))?;

    let mut world = World {
        sim,
        erp,
        store,
        base,
        activity: Activity::default(),
        payer: Payer::default(),
        rng: SplitMix::stream(args.seed, 9),
        changed_at: BTreeMap::new(),
        faults: BTreeMap::new(),
        activity_errors: Vec::new(),
    };
    let mut pool = Pool::new(
        args.replicas,
        &config,
        &dir,
        env,
        sabotage.map(str::to_owned),
    )?;
    if sabotage.is_some() {
        // Every start acknowledges one to three invoices early, then dies before the ERP
        // posting: the chaos lasts until that happened at least once.
        let n = SplitMix::stream(args.seed, 8).between(1, 3);
        pool.arm_every_start = Some(format!("{SABOTAGE_FAILPOINT}={n}"));
    }
    let result = drive(&args, &mut world, &mut pool, began, &dir).await;
    if result.is_err() {
        pool.abort_all();
    }
    let mut outcome = result?;
    drop(pool);
    world.store.db().pool().close().await;
    world.erp.db().pool().close().await;
    if let Some(d) = databases {
        outcome.figures.databases = d.names();
        if outcome.violations.is_empty() {
            d.drop_all().await;
            outcome.figures.databases_dropped = true;
        }
    }
    world.sim.shutdown().await;
    outcome.figures.elapsed_secs = began.elapsed().as_secs_f64();
    Ok(outcome)
}

fn transport(t: TransportArg) -> Transport {
    match t {
        TransportArg::Api => Transport::Api,
        TransportArg::Csv => Transport::Csv,
    }
}

/// The workers' configuration: every flow every second or two, fast, on loopback.
fn config_text(args: &Args, sim: &coupa_sim::RunningSim, state: &str, erp: &str) -> String {
    format!(
        "# Written by coupa-chaos (seed {seed}).\n\
         [coupa]\nbase_url = \"{base}\"\nclient_id = \"coupa-bridge\"\ninsecure_http_simulator_only = true\n\
         requests_per_second = 300\nburst = 60\ntimeout_secs = 15\n\n\
         [state]\nurl = \"{state}\"\n\n\
         [erp]\nkind = \"sql\"\nurl = \"{erp}\"\n\n\
         [invoices]\nmonitoring = \"runs\"\nconcurrency = 4\n\n\
         [payments]\ntransport = \"{transport}\"\nconcurrency = 4\n\n\
         [payments.sftp]\nhost = \"127.0.0.1\"\nport = {sftp_port}\nusername = \"{user}\"\n\
         host_key = \"{host_key}\"\nresult_timeout_secs = 20\n\n\
         [pay_payments]\npay_to_account_type = \"\"\nconcurrency = 4\n\n\
         [schedule]\ninvoices = \"*/2 * * * * *\"\npayments = \"* * * * * *\"\n\
         pay_payments = \"*/2 * * * * *\"\n\n\
         [server]\nlisten = \"127.0.0.1:0\"\n",
        seed = args.seed,
        base = sim.base_url(),
        transport = transport(args.transport).as_str(),
        sftp_port = sim.sftp_addr.port(),
        user = DEFAULT_SFTP_USER,
        host_key = sim.sftp_host_key,
    )
}

struct World {
    sim: coupa_sim::SimHandle,
    erp: SqlErp,
    store: Store,
    base: Baseline,
    activity: Activity,
    payer: Payer,
    rng: SplitMix,
    /// When the harness last changed a document, so no document changes twice in one second
    /// (Coupa's `updated-at` has whole seconds).
    changed_at: BTreeMap<(char, i64), Instant>,
    /// Faults served, by kind.
    faults: BTreeMap<String, u64>,
    activity_errors: Vec<String>,
}

/// The run itself, once the world exists.
async fn drive(
    args: &Args,
    world: &mut World,
    pool: &mut Pool,
    began: Instant,
    dir: &Path,
) -> anyhow::Result<Outcome> {
    let plan = Plan::generate(&PlanSettings {
        seed: args.seed,
        duration: Duration::from_secs(args.duration),
        replicas: args.replicas,
        transport: transport(args.transport),
        failpoints: args.sabotage.is_none(),
    });
    pool.start_all()?;
    let started = Instant::now();
    let duration = Duration::from_secs(args.duration);
    let mut events = plan.events.into_iter().peekable();
    // The fault episode in force: when it ends, its kind, the faults served before it.
    let mut episode: Option<(Instant, &'static str, u64)> = None;
    loop {
        let now = Instant::now();
        let t = now - started;
        if let Some((ends, kind, before)) = episode
            && now >= ends
        {
            world.end_episode(kind, before);
            episode = None;
        }
        if t >= duration {
            let struck = pool.tally.sabotage_crashes > 0;
            if args.sabotage.is_none() || struck {
                break;
            }
            anyhow::ensure!(
                t < duration + SABOTAGE_WAIT,
                "the sabotage never struck: no worker reached its failpoint in {}s",
                (duration + SABOTAGE_WAIT).as_secs()
            );
        }
        while let Some(e) = events.next_if(|e| e.at <= t) {
            match e.event {
                Event::Faults { kind, rules, lasts } => {
                    if let Some((_, kind, before)) = episode.take() {
                        world.end_episode(kind, before);
                    }
                    let before = world.sim.state.stats.faults();
                    for rule in rules {
                        world.sim.state.faults.add(rule);
                    }
                    episode = Some((Instant::now() + lasts, kind, before));
                }
                Event::Kill {
                    worker,
                    restart_after,
                    failpoint,
                } => pool.kill(worker, restart_after, failpoint)?,
                Event::ErpPayments {
                    invoices,
                    unmatched,
                } => {
                    world.erp_payments(invoices, unmatched).await;
                }
                Event::PayChanges { count } => world.pay_changes(count),
                Event::ResetExports { count } => world.reset_exports(count).await,
            }
        }
        pool.poll()?;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    if let Some((_, kind, before)) = episode.take() {
        world.end_episode(kind, before);
    }
    let chaos_secs = started.elapsed().as_secs_f64();

    // Settle: no faults, no kills, no failpoints; every worker up until nothing is left to do.
    world.sim.state.faults.clear();
    pool.arm_every_start = None;
    pool.restart_stopped_now()?;
    let settling = Instant::now();
    let mut quiet_since: Option<Instant> = None;
    let mut violations = Vec::new();
    loop {
        pool.poll()?;
        let pending = world.pending().await;
        if pending.is_empty() {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= QUIET_FOR {
                break;
            }
        } else {
            quiet_since = None;
        }
        if settling.elapsed() >= Duration::from_secs(args.settle_timeout) {
            violations.push(Violation::new(
                "not-settled",
                format!(
                    "work left {}s after the chaos ended: {}",
                    args.settle_timeout,
                    pending.join("; ")
                ),
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let settle_secs = settling.elapsed().as_secs_f64();
    for problem in pool.stop_all(STOP_GRACE).await? {
        violations.push(Violation::new("worker-stop", problem));
    }
    for exit in &pool.tally.unexpected {
        violations.push(Violation::new("worker-exit", exit.clone()));
    }

    let sim = SimSnapshot::take(&world.sim);
    let erp = ErpSnapshot::take(&world.erp)
        .await
        .context("cannot read the ERP")?;
    let runs = world
        .store
        .runs(usize::MAX)
        .await
        .context("cannot read the state store's runs")?;
    violations.extend(invariants::check_all(
        &world.base,
        &sim,
        &erp,
        &world.activity,
    ));
    violations.extend(invariants::check_run_overlaps(&runs, &pool.tally.deaths));

    let figures = Figures::gather(Inputs {
        args,
        base: &world.base,
        sim: &sim,
        erp: &erp,
        activity: &world.activity,
        tally: &pool.tally,
        stats: &world.sim.state.stats,
        faults: &world.faults,
        activity_errors: &world.activity_errors,
        runs: &runs,
        chaos_secs,
        settle_secs,
        began,
        dir,
    });
    Ok(Outcome {
        figures,
        violations,
    })
}

impl World {
    fn end_episode(&mut self, kind: &str, before: u64) {
        self.sim.state.faults.clear();
        let served = self.sim.state.stats.faults().saturating_sub(before);
        *self.faults.entry(kind.to_owned()).or_default() += served;
    }

    /// The ERP's AP clerk pays some booked invoices (and a few Coupa does not have).
    async fn erp_payments(&mut self, invoices: usize, unmatched: usize) {
        let booked = match self.erp.invoices().await {
            Ok(b) => b,
            Err(e) => {
                self.activity_errors
                    .push(format!("reading ERP invoices: {e}"));
                return;
            }
        };
        let batch = self
            .payer
            .round(&mut self.rng, &booked, invoices, unmatched);
        if let Err(e) = self.erp.record_payments(&batch).await {
            self.activity_errors
                .push(format!("recording ERP payments: {e}"));
        }
    }

    fn recently_changed(&self, key: (char, i64)) -> bool {
        self.changed_at
            .get(&key)
            .is_some_and(|at| at.elapsed() < Duration::from_secs(2))
    }

    /// Coupa Pay moves some payments: exported ones change status, some in flight complete.
    fn pay_changes(&mut self, count: usize) {
        let now = self.sim.state.now();
        let mut db = self.sim.state.db.lock();
        let candidates: Vec<(i64, String, bool)> = db
            .pay_payments
            .rows()
            .filter_map(|p| {
                let id = p.get("id").and_then(Value::as_i64)?;
                let status = p.get("status").and_then(Value::as_str)?.to_owned();
                let exported = p.get("exported").and_then(Value::as_bool) == Some(true);
                Some((id, status, exported))
            })
            .filter(|(id, status, exported)| {
                !self.base.foreign_pay.contains(id)
                    && !self.recently_changed(('p', *id))
                    && pay_move(&mut SplitMix::new(0), status, *exported).is_some()
            })
            .collect();
        for (id, status, exported) in self.rng.sample(&candidates, count) {
            let Some(to) = pay_move(&mut self.rng, &status, exported) else {
                continue;
            };
            match coupa_sim::clerk::set_pay_status(&mut db, id, to, now) {
                Ok(()) => {
                    *self.activity.pay_changes.entry(id).or_default() += 1;
                    self.changed_at.insert(('p', id), Instant::now());
                }
                Err(e) => self
                    .activity_errors
                    .push(format!("Coupa Pay payment {id}: {e}")),
            }
        }
    }

    /// A clerk edits some exported invoices the ERP has: their export flag resets.
    async fn reset_exports(&mut self, count: usize) {
        let in_erp: BTreeSet<i64> = match self.erp.invoices().await {
            Ok(rows) => rows.iter().map(|r| r.coupa_invoice_id).collect(),
            Err(e) => {
                self.activity_errors
                    .push(format!("reading ERP invoices: {e}"));
                return;
            }
        };
        let now = self.sim.state.now();
        let mut db = self.sim.state.db.lock();
        let candidates: Vec<i64> = self
            .base
            .eligible
            .iter()
            .filter(|(id, status)| {
                status.as_str() == "approved"
                    && in_erp.contains(id)
                    && !self.recently_changed(('i', **id))
                    && db
                        .invoices
                        .get(**id)
                        .and_then(|r| r.get("exported"))
                        .and_then(Value::as_bool)
                        == Some(true)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in self.rng.sample(&candidates, count) {
            match coupa_sim::clerk::reset_export(&mut db, id, now) {
                Ok(()) => {
                    *self.activity.resets.entry(id).or_default() += 1;
                    self.changed_at.insert(('i', id), Instant::now());
                }
                Err(e) => self.activity_errors.push(format!("invoice {id}: {e}")),
            }
        }
    }

    /// What the flows still have to do (empty when settled).
    async fn pending(&self) -> Vec<String> {
        let erp_pay = match self.erp.pay_payments().await {
            Ok(p) => p,
            Err(e) => return vec![format!("the ERP cannot be read: {e}")],
        };
        let mut out = {
            let db = self.sim.state.db.lock();
            pending_in_coupa(&self.base, &db, &erp_pay)
        };
        match self.erp.payment_counts().await {
            Ok((0, _, _)) => {}
            Ok((n, _, _)) => out.push(format!("{n} ERP payments pending")),
            Err(e) => out.push(format!("the ERP cannot be read: {e}")),
        }
        match self
            .store
            .journal_at_steps(
                coupa_bridge::flows::payment_push::FLOW,
                &["prepared", "uploaded"],
            )
            .await
        {
            Ok(open) if open.is_empty() => {}
            Ok(open) => out.push(format!("{} payment files not answered", open.len())),
            Err(e) => out.push(format!("the state store cannot be read: {e}")),
        }
        out
    }
}

/// The PostgreSQL databases of one run, created through the admin URL.
struct Databases {
    admin: String,
    state_name: String,
    erp_name: String,
    state: String,
    erp: String,
}

impl Databases {
    async fn create(admin: &str, seed: u64) -> anyhow::Result<Databases> {
        let prefix = format!("chaos_{seed}_{}", std::process::id());
        let state_name = format!("{prefix}_state");
        let erp_name = format!("{prefix}_erp");
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .context("cannot connect to the PostgreSQL admin URL")?;
        for name in [&state_name, &erp_name] {
            conn.execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name}"
            )))
            .await
            .with_context(|| format!("cannot drop the old database {name}"))?;
            conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .with_context(|| format!("cannot create database {name}"))?;
        }
        let _ = conn.close().await;
        Ok(Databases {
            state: database_url(admin, &state_name)?,
            erp: database_url(admin, &erp_name)?,
            admin: admin.to_owned(),
            state_name,
            erp_name,
        })
    }

    fn names(&self) -> Vec<String> {
        vec![self.state_name.clone(), self.erp_name.clone()]
    }

    /// Drops both databases (best effort: a leftover database is only disk space).
    async fn drop_all(&self) {
        let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await else {
            return;
        };
        for name in [&self.state_name, &self.erp_name] {
            let _ = conn
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await;
        }
        let _ = conn.close().await;
    }
}

/// `admin` with its database replaced by `database` (query parameters kept).
fn database_url(admin: &str, database: &str) -> anyhow::Result<String> {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin, String::new()),
    };
    let authority = base
        .find("://")
        .map(|i| i + 3)
        .context("the PostgreSQL admin URL has no scheme (postgres://...)")?;
    let root = match base[authority..].find('/') {
        Some(i) => &base[..authority + i],
        None => base,
    };
    Ok(format!("{root}/{database}{query}"))
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn database_urls_replace_the_admin_database() {
        let url = |a| database_url(a, "chaos_1_2_state").expect("url");
        assert_eq!(
            url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/chaos_1_2_state"
        );
        assert_eq!(
            url("postgres://u:p@h/postgres?sslmode=disable"),
            "postgres://u:p@h/chaos_1_2_state?sslmode=disable"
        );
        assert_eq!(url("postgres://h:1"), "postgres://h:1/chaos_1_2_state");
        assert!(database_url("nonsense", "x").is_err());
    }
}

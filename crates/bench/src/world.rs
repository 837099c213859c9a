//! What a scenario runs in: the simulator (in this process, on loopback), the SQLite reference
//! ERP and state store in a temporary folder, and the connector's configuration file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use coupa_bridge::commands::demo::{seed_erp_from_sim, sqlite_url};
use coupa_bridge::erp::sql::SqlErp;
use coupa_bridge::store::Store;
use coupa_doc::Value;
use coupa_sim::SimConfig;
use coupa_sim::config::RateLimit;

/// Coupa's published limit: 25 requests/s, bursts of 20, and no `Retry-After` (none is
/// documented; `coupa-api.md` section 4).
pub const COUPA_LIMIT: RateLimit = RateLimit {
    per_second: 25,
    burst: 20,
    retry_after: false,
};

/// How the connector is configured for a scenario.
#[derive(Clone, Copy, Debug)]
pub struct Connector {
    pub monitoring: &'static str,
    /// Its rate budget; `None`: far above anything the machine can send.
    pub budget: Option<(u32, u32)>,
    pub concurrency: u32,
    /// The daemon's payment schedule (six-field cron); only `run` reads it.
    pub payments_schedule: &'static str,
    pub listen: Option<u16>,
}

/// The scenario's folder: removed when the scenario ends well, kept (and named) when it ends
/// in an error, for its connector logs.
pub struct Folder(Option<tempfile::TempDir>);

impl Folder {
    fn path(&self) -> &Path {
        self.0
            .as_ref()
            .map_or(Path::new("."), tempfile::TempDir::path)
    }

    fn remove(mut self) {
        self.0.take();
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            eprintln!(
                "coupa-bench: the scenario's folder is kept for inspection: {}",
                dir.keep().display()
            );
        }
    }
}

pub struct World {
    folder: Folder,
    pub sim: coupa_sim::SimHandle,
    pub erp: SqlErp,
    pub store: Store,
    pub config: PathBuf,
}

impl World {
    /// A simulator with `invoices` and `pay_payments` seeded documents (unthrottled until
    /// [`World::throttle`]), the ERP's master data from it, a migrated state store, and the
    /// connector's configuration.
    pub async fn new(
        seed: u64,
        invoices: usize,
        pay_payments: usize,
        connector: Connector,
    ) -> anyhow::Result<World> {
        let dir = tempfile::Builder::new()
            .prefix("coupa-bench-")
            .tempdir()
            .context("cannot create a temp folder")?;
        let sim = coupa_sim::spawn(SimConfig {
            seed,
            invoices,
            pay_payments,
            ..SimConfig::default()
        })
        .await
        .context("cannot start the Coupa simulator")?;
        let state_url = sqlite_url(&dir.path().join("state.db"));
        let erp_url = sqlite_url(&dir.path().join("erp.db"));
        let erp = SqlErp::connect(&erp_url)
            .await
            .context("cannot open the ERP")?;
        seed_erp_from_sim(&erp, &sim).await?;
        let store = Store::connect(&state_url)
            .await
            .context("cannot open the state store")?;
        let config = dir.path().join("coupa-bridge.toml");
        let world = World {
            folder: Folder(Some(dir)),
            sim,
            erp,
            store,
            config,
        };
        world.configure(connector, &state_url, &erp_url)?;
        Ok(world)
    }

    pub fn dir(&self) -> &Path {
        self.folder.path()
    }

    /// Rewrites the connector's configuration (between a setup pass and the measured one).
    pub fn reconfigure(&self, connector: Connector) -> anyhow::Result<()> {
        let state_url = sqlite_url(&self.dir().join("state.db"));
        let erp_url = sqlite_url(&self.dir().join("erp.db"));
        self.configure(connector, &state_url, &erp_url)
    }

    fn configure(&self, c: Connector, state_url: &str, erp_url: &str) -> anyhow::Result<()> {
        let (rate, burst) = c.budget.unwrap_or((100_000, 1_000));
        let listen = c
            .listen
            .map_or_else(|| "127.0.0.1:0".to_owned(), |p| format!("127.0.0.1:{p}"));
        let text = format!(
            "# Written by coupa-bench.\n\
             [coupa]\nbase_url = \"{base}\"\ninsecure_http_simulator_only = true\n\
             client_id = \"coupa-bridge\"\nrequests_per_second = {rate}\nburst = {burst}\n\n\
             [state]\nurl = \"{state_url}\"\n\n\
             [erp]\nkind = \"sql\"\nurl = \"{erp_url}\"\n\n\
             [invoices]\nmonitoring = \"{monitoring}\"\nconcurrency = {n}\n\n\
             [payments]\ntransport = \"api\"\nconcurrency = {n}\n\n\
             [pay_payments]\nconcurrency = {n}\n\n\
             [schedule]\ninvoices = \"\"\npayments = \"{payments}\"\npay_payments = \"\"\n\n\
             [server]\nlisten = \"{listen}\"\n",
            base = self.sim.base_url(),
            monitoring = c.monitoring,
            n = c.concurrency,
            payments = c.payments_schedule,
        );
        std::fs::write(&self.config, text)
            .with_context(|| format!("cannot write {}", self.config.display()))
    }

    /// Puts the simulator at Coupa's limit and zeroes its counters: what follows is measured.
    pub fn measure_from_here(&self, throttled: bool) {
        self.sim
            .state
            .throttle
            .set_limit(throttled.then_some(COUPA_LIMIT));
        self.sim.state.stats.reset();
    }

    /// Invoices Coupa marks exported.
    pub fn exported_invoices(&self) -> usize {
        let db = self.sim.state.db.lock();
        db.invoices
            .rows()
            .filter(|i| i.get("exported").and_then(Value::as_bool) == Some(true))
            .count()
    }

    /// Coupa Pay payments the ERP has booked.
    pub async fn erp_pay_payments(&self) -> anyhow::Result<u64> {
        let rows = self
            .erp
            .pay_payments()
            .await
            .context("reading the ERP's Coupa Pay payments")?;
        Ok(rows.len() as u64)
    }

    /// Calls the connector made that were second or later attempts, from its own call log.
    pub async fn retries(&self) -> anyhow::Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_calls WHERE attempt > 1")
            .fetch_one(self.store.db().pool())
            .await
            .context("cannot count retries in the call log")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Ends a scenario that went well: its folder is removed.
    pub async fn close(self) {
        let World {
            folder,
            sim,
            erp,
            store,
            ..
        } = self;
        store.db().pool().close().await;
        erp.db().pool().close().await;
        sim.shutdown().await;
        folder.remove();
    }
}

//! A stateful, fast simulator of the Coupa instance coupa-bridge talks to.
//!
//! It serves the endpoints the three flows use, faithful to `shared/coupa-api.md`: OAuth2
//! client credentials with scopes, JSON and XML as Coupa writes them, Coupa's query language,
//! invoices with their export flag and payments, the integration monitoring resources, Coupa
//! Pay payments, `data_file_sources`, an SFTP server with Coupa's folders and the CSV payment
//! loader, throttling (429) and fault injection. Tests, the demo and benchmarks run it
//! in-process; `coupa-bridge sim` runs it standalone.
//!
//! Layout:
//! - [`config`]: [`SimConfig`], every knob with a Coupa-like default.
//! - [`store`]: the data, one table of documents per [`store::Resource`], behind one lock.
//! - [`seed`]: deterministic, realistic data from a seed.
//! - [`query`]: Coupa's query language (operators, paging, `fields`, `return_object`).
//! - [`http`]: the axum application: formats, auth, throttling, faults, statistics, routes;
//!   [`http::resources`] holds one module per Coupa resource, [`http::admin`] the clerk's API.
//! - [`payments`]: the invoice payment payload shapes Coupa accepts.
//! - [`sftp`] and [`csv_loader`]: the SFTP server over an in-memory file tree and the loader
//!   that turns payment CSV files into payments and `data_file_sources` records.
//! - [`throttle`] and [`faults`]: the pure decisions behind 429s and injected faults.

pub mod clerk;
pub mod config;
pub mod csv_loader;
pub mod faults;
pub mod http;
pub mod payments;
pub mod query;
pub mod seed;
pub mod sftp;
pub mod stats;
pub mod store;
pub mod throttle;
pub mod vfs;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, SubsecRound, Utc};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::SimConfig;
pub use store::{Db, Resource};

/// Everything one simulated instance holds and every request handler shares.
pub struct SimState {
    pub config: SimConfig,
    pub db: parking_lot::Mutex<Db>,
    pub tokens: http::auth::Tokens,
    pub stats: stats::Stats,
    pub throttle: throttle::Throttle,
    pub faults: faults::Faults,
    /// The SFTP server's files, shared with the CSV loader.
    pub files: vfs::Vfs,
}

impl SimState {
    /// A new instance seeded from `config`.
    pub fn new(config: SimConfig) -> Self {
        let db = seed::generate(&config);
        let throttle = throttle::Throttle::new(config.rate_limit);
        SimState {
            db: parking_lot::Mutex::new(db),
            tokens: http::auth::Tokens::default(),
            stats: stats::Stats::default(),
            throttle,
            faults: faults::Faults::default(),
            files: vfs::Vfs::with_coupa_folders(),
            config,
        }
    }

    /// The instance's current time, to the second, in its own time zone (Coupa writes
    /// datetimes with the instance's offset and no fractions).
    pub fn now(&self) -> DateTime<FixedOffset> {
        Utc::now()
            .trunc_subsecs(0)
            .with_timezone(&self.config.utc_offset)
    }
}

/// A running simulator.
pub struct RunningSim {
    pub state: Arc<SimState>,
    pub http_addr: SocketAddr,
    pub sftp_addr: SocketAddr,
    /// The SFTP server's host key in OpenSSH form (`ssh-ed25519 AAAA...`), for pinning.
    pub sftp_host_key: String,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningSim {
    /// `http://127.0.0.1:PORT`, the instance URL clients are configured with.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// Waits until every server task has stopped (after the shutdown signal).
    pub async fn wait(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts the simulator on the given listeners; it stops when `shutdown` completes.
pub async fn start(
    config: SimConfig,
    http_listener: TcpListener,
    sftp_listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<RunningSim> {
    let state = Arc::new(SimState::new(config));
    let http_addr = http_listener.local_addr()?;
    let sftp_addr = sftp_listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    }));
    let app = http::router(state.clone());
    let http_stop = stopped(stop_rx.clone());
    tasks.push(tokio::spawn(http::serve(http_listener, app, http_stop)));
    let sftp = sftp::Server::new(state.clone());
    let sftp_host_key = sftp.host_key_openssh();
    tasks.push(tokio::spawn(
        sftp.serve(sftp_listener, stopped(stop_rx.clone())),
    ));
    tasks.push(tokio::spawn(csv_loader::run(
        state.clone(),
        stopped(stop_rx.clone()),
    )));
    Ok(RunningSim {
        state,
        http_addr,
        sftp_addr,
        sftp_host_key,
        tasks,
    })
}

/// A simulator on loopback ports chosen by the OS, stopped when the handle is dropped or
/// [`SimHandle::shutdown`] is called. What tests and the demo use.
pub struct SimHandle {
    pub sim: RunningSim,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::ops::Deref for SimHandle {
    type Target = RunningSim;
    fn deref(&self) -> &RunningSim {
        &self.sim
    }
}

impl SimHandle {
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for t in std::mem::take(&mut self.sim.tasks) {
            let _ = t.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts a simulator on `127.0.0.1:0` (HTTP and SFTP).
pub async fn spawn(config: SimConfig) -> std::io::Result<SimHandle> {
    let http = TcpListener::bind("127.0.0.1:0").await?;
    let sftp = TcpListener::bind("127.0.0.1:0").await?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let sim = start(config, http, sftp, async move {
        let _ = rx.await;
    })
    .await?;
    Ok(SimHandle {
        sim,
        stop: Some(tx),
    })
}

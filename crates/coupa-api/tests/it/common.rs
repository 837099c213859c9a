//! A simulator and a client configured for it.

use std::sync::Arc;
use std::time::Duration;

use coupa_api::auth::Credentials;
use coupa_api::observe::Recorder;
use coupa_api::retry::RetryPolicy;
use coupa_api::{Client, ClientConfig, Format, SecretString};
use coupa_sim::config::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use coupa_sim::faults::{FaultKind, FaultRule};
use coupa_sim::{SimConfig, SimHandle};

pub const BOTH: [Format; 2] = [Format::Json, Format::Xml];

pub struct Setup {
    pub sim: SimHandle,
    pub client: Client,
    pub recorder: Arc<Recorder>,
}

pub fn oauth() -> Credentials {
    oauth_with(DEFAULT_CLIENT_SECRET, &[], false)
}

/// The simulator's client with this secret, asking for these scopes (none: all it has).
pub fn oauth_with(secret: &str, scopes: &[&str], basic_auth: bool) -> Credentials {
    Credentials::OAuth {
        client_id: DEFAULT_CLIENT_ID.into(),
        client_secret: SecretString::from(secret),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        basic_auth,
    }
}

/// Retries fast enough for tests: the decisions are the real ones, the delays are short.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        retry_after_cap: Duration::from_secs(2),
    }
}

pub fn config(sim: &SimHandle, format: Format) -> ClientConfig {
    let mut c = ClientConfig::new(sim.base_url(), oauth());
    c.insecure_http_simulator_only = true;
    c.format = format;
    c.rate = None;
    c.retry = quick_retries();
    c
}

pub fn client(config: ClientConfig) -> (Client, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let client = Client::new(config, recorder.clone()).expect("client builds");
    (client, recorder)
}

pub async fn setup(format: Format, sim_config: SimConfig) -> Setup {
    setup_with(format, sim_config, |_| {}).await
}

pub async fn setup_with(
    format: Format,
    sim_config: SimConfig,
    tweak: impl FnOnce(&mut ClientConfig),
) -> Setup {
    let sim = coupa_sim::spawn(sim_config)
        .await
        .expect("simulator starts");
    let mut c = config(&sim, format);
    tweak(&mut c);
    let (client, recorder) = client(c);
    Setup {
        sim,
        client,
        recorder,
    }
}

pub fn small_sim() -> SimConfig {
    SimConfig {
        invoices: 40,
        pay_payments: 12,
        ..SimConfig::default()
    }
}

/// A fault for the next `count` requests of `method` on paths starting with `path`.
pub fn fault(sim: &SimHandle, kind: FaultKind, method: &str, path: &str, count: u64) {
    sim.state.faults.add(FaultRule {
        kind,
        method: Some(method.into()),
        path: Some(path.into()),
        count: Some(count),
        rate: None,
        seed: 0,
    });
}

/// How many requests the simulator answered for `endpoint` (`GET /api/invoices`).
pub fn calls(sim: &SimHandle, endpoint: &str) -> u64 {
    sim.state.stats.endpoint(endpoint).calls
}

//! The daemon's loop: one task per flow that waits for the flow's next scheduled instant or a
//! trigger, runs a pass and waits again, plus a task that prunes the API call log hourly.
//!
//! The loop is written against [`Passes`] rather than the [`Connector`] itself, so its timing
//! (which instants fire, what a long pass skips, what a trigger during a pass does, how a stop
//! ends it) is unit-tested with passes that take exactly as long as a test says, on a
//! [`ManualClock`](super::schedule::ManualClock).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use coupa_api::ErrorClass;
use futures_util::future::BoxFuture;
use tokio::task::JoinSet;

use super::Triggers;
use super::schedule::{Schedule, SharedClock};
use crate::connector::Connector;
use crate::flows::{FlowError, FlowName, PassReport, Stop};
use crate::store::StoreError;

/// How often the call log is pruned after the prune at start.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3_600);

/// Past this many missed instants, a long pass's skip is reported as "at least" this many:
/// counting an every-second schedule across a day-long outage is not worth the loop.
const MAX_COUNTED_SKIPS: u64 = 10_000;

/// What the daemon runs: a pass of a flow, and the call log's pruning.
pub(crate) trait Passes: Send + Sync + 'static {
    fn pass(
        self: Arc<Self>,
        flow: FlowName,
        stop: Stop,
    ) -> BoxFuture<'static, Result<PassReport, FlowError>>;

    fn prune_calls(
        self: Arc<Self>,
        older_than: DateTime<Utc>,
    ) -> BoxFuture<'static, Result<u64, StoreError>>;
}

impl Passes for Connector {
    fn pass(
        self: Arc<Self>,
        flow: FlowName,
        stop: Stop,
    ) -> BoxFuture<'static, Result<PassReport, FlowError>> {
        Box::pin(async move { Connector::pass(&self, flow, &stop).await })
    }

    fn prune_calls(
        self: Arc<Self>,
        older_than: DateTime<Utc>,
    ) -> BoxFuture<'static, Result<u64, StoreError>> {
        Box::pin(async move { self.store.prune_calls(older_than).await })
    }
}

/// What the daemon did over its life, returned once it has stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DaemonReport {
    /// Passes run, by flow, failed ones included; every flow the daemon ran has an entry.
    pub passes: BTreeMap<FlowName, u64>,
    /// Passes that ended in an error (or a panic), by flow.
    pub failed: BTreeMap<FlowName, u64>,
    /// Scheduled instants that went by while a pass of the flow ran, and were not run again.
    pub skipped: BTreeMap<FlowName, u64>,
    /// API calls the retention pruning removed.
    pub pruned: u64,
}

/// One flow's counts, from its task.
#[derive(Debug, Default)]
struct FlowCounts {
    passes: u64,
    failed: u64,
    skipped: u64,
}

enum Ended {
    Flow(FlowName, FlowCounts),
    Pruner(u64),
}

/// Why a pass started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fire {
    Schedule,
    Trigger,
}

impl Fire {
    fn as_str(self) -> &'static str {
        match self {
            Fire::Schedule => "schedule",
            Fire::Trigger => "trigger",
        }
    }
}

/// Runs every flow of `schedules` on its schedule and on triggers, and every other flow on
/// triggers only, until `shutdown` resolves; then asks the passes in flight to stop and returns
/// once they have ended.
pub(crate) async fn run<P: Passes>(
    passes: Arc<P>,
    triggers: Triggers,
    schedules: Vec<(FlowName, Schedule)>,
    clock: SharedClock,
    retention: Option<chrono::Duration>,
    shutdown: impl Future<Output = ()> + Send,
) -> DaemonReport {
    let (stop_handle, stop) = Stop::new();
    let mut tasks = JoinSet::new();
    let mut report = DaemonReport::default();
    for flow in FlowName::ALL {
        // The last entry wins, as a later line of a config would.
        let schedule = schedules
            .iter()
            .rev()
            .find(|(f, _)| *f == flow)
            .map(|(_, s)| s.clone());
        report.passes.insert(flow, 0);
        let task = flow_loop(
            passes.clone(),
            flow,
            schedule,
            clock.clone(),
            triggers.clone(),
            stop.clone(),
        );
        tasks.spawn(async move { Ended::Flow(flow, task.await) });
    }
    if let Some(retention) = retention {
        let task = prune_loop(passes.clone(), retention, clock.clone(), stop.clone());
        tasks.spawn(async move { Ended::Pruner(task.await) });
    }
    drop(passes);
    shutdown.await;
    stop_handle.stop();
    while let Some(ended) = tasks.join_next().await {
        match ended {
            Ok(Ended::Flow(flow, counts)) => {
                report.passes.insert(flow, counts.passes);
                if counts.failed > 0 {
                    report.failed.insert(flow, counts.failed);
                }
                if counts.skipped > 0 {
                    report.skipped.insert(flow, counts.skipped);
                }
            }
            Ok(Ended::Pruner(pruned)) => report.pruned = pruned,
            // Passes run in their own tasks, so only a bug in the loop itself lands here.
            Err(e) => tracing::error!(error = %e, "a daemon task ended abnormally"),
        }
    }
    report
}

/// One flow: wait for its next instant or a trigger, run a pass, again, until `stop`.
async fn flow_loop<P: Passes>(
    passes: Arc<P>,
    flow: FlowName,
    schedule: Option<Schedule>,
    clock: SharedClock,
    triggers: Triggers,
    stop: Stop,
) -> FlowCounts {
    let mut counts = FlowCounts::default();
    let mut due = schedule.as_ref().and_then(|s| s.next_after(clock.now()));
    loop {
        let sleep = async {
            match due {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        // Stop first: once it is requested, neither a due instant nor a trigger starts a pass.
        let fire = tokio::select! {
            biased;
            () = stop.wait() => break,
            () = triggers.triggered(flow) => Fire::Trigger,
            () = sleep => Fire::Schedule,
        };
        // Its own task, so a panicking pass is reported and the flow keeps its schedule.
        let pass = tokio::spawn(passes.clone().pass(flow, stop.clone()));
        let result = match pass.await {
            Ok(result) => result.map_err(|e| Failure {
                retryable: matches!(&e, FlowError::Coupa(c) if c.class() == ErrorClass::Retryable),
                text: e.to_string(),
            }),
            Err(e) => Err(Failure {
                retryable: false,
                text: format!("the pass ended abnormally: {e}"),
            }),
        };
        counts.passes += 1;
        log_pass(flow, fire, &result);
        if result.is_err() {
            counts.failed += 1;
        }
        if let Some(schedule) = &schedule {
            let (next, skipped) = next_fire(schedule, due, fire == Fire::Schedule, clock.now());
            if skipped > 0 {
                counts.skipped += skipped;
                tracing::info!(
                    flow = %flow,
                    skipped,
                    next = %next
                        .map(|n| n.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default(),
                    "scheduled passes skipped: they fell due while the previous pass ran"
                );
            }
            due = next;
        }
    }
    counts
}

/// The flow's next instant after a pass that ended at `ended`, and how many instants went by
/// unrun during it. `due` is the instant the flow was waiting for; `served` says the pass was
/// that instant's (rather than a trigger's). Instants never pile up: whatever fell due during
/// the pass is skipped, and the next fire is the first instant after the pass ended.
fn next_fire(
    schedule: &Schedule,
    due: Option<DateTime<Utc>>,
    served: bool,
    ended: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, u64) {
    let mut next = match (due, served) {
        (Some(due), true) => schedule.next_after(due),
        (Some(due), false) => Some(due),
        (None, _) => schedule.next_after(ended),
    };
    let mut skipped = 0;
    while let Some(at) = next
        && at <= ended
    {
        skipped += 1;
        if skipped >= MAX_COUNTED_SKIPS {
            return (schedule.next_after(ended), skipped);
        }
        next = schedule.next_after(at);
    }
    (next, skipped)
}

/// Why a pass failed, as logged: the error's text (never a secret, see [`FlowError`]).
struct Failure {
    /// Coupa unreachable or throttling past the retries: the next pass may well succeed.
    retryable: bool,
    text: String,
}

/// The pass's one log line: its figures at info, its failure at warn (Coupa unreachable, worth
/// retrying) or error (credentials, the state store, the ERP: a person must look). Passes that
/// found nothing to do (no run recorded, nothing listed) log at debug: the payment push looks
/// every few seconds.
fn log_pass(flow: FlowName, fire: Fire, result: &Result<PassReport, Failure>) {
    match result {
        Ok(r) if r.run == 0 && r.listed == 0 => {
            tracing::debug!(flow = %flow, fire = fire.as_str(), "pass: nothing to do");
        }
        Ok(r) => tracing::info!(
            flow = %flow,
            fire = fire.as_str(),
            run = r.run,
            listed = r.listed,
            exported = r.exported,
            rejected = r.rejected.len(),
            transient = r.transient.len(),
            api_calls = r.api_calls,
            seconds = r.seconds,
            "pass finished"
        ),
        Err(f) if f.retryable => {
            tracing::warn!(flow = %flow, fire = fire.as_str(), error = %f.text, "pass failed")
        }
        Err(f) => {
            tracing::error!(flow = %flow, fire = fire.as_str(), error = %f.text, "pass failed")
        }
    }
}

/// Prunes the call log of calls older than `retention` now and every [`PRUNE_EVERY`]; returns
/// how many went in all.
async fn prune_loop<P: Passes>(
    passes: Arc<P>,
    retention: chrono::Duration,
    clock: SharedClock,
    stop: Stop,
) -> u64 {
    let every = chrono::Duration::from_std(PRUNE_EVERY).unwrap_or(chrono::Duration::hours(1));
    let mut pruned = 0;
    loop {
        let now = clock.now();
        let before = now - retention;
        match passes.clone().prune_calls(before).await {
            Ok(rows) => {
                pruned += rows;
                tracing::info!(
                    rows,
                    older_than = %before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "API call log pruned"
                );
            }
            Err(e) => tracing::warn!(error = %e, "could not prune the API call log"),
        }
        tokio::select! {
            biased;
            () = stop.wait() => break,
            () = clock.sleep_until(now + every) => {}
        }
    }
    pruned
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::schedule::ManualClock;
    use chrono::TimeZone;
    use std::sync::Mutex;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, h, m, s)
            .single()
            .expect("valid")
    }

    fn schedule(e: &str) -> Schedule {
        Schedule::parse(e).expect("parses")
    }

    /// Passes that record when they ran (on the manual clock), and may take time: the clock
    /// moves forward by `takes` during the pass, and a pass of `gated` waits for `gate`.
    struct Fake {
        clock: Arc<ManualClock>,
        ran: Mutex<Vec<(FlowName, DateTime<Utc>)>>,
        takes: Mutex<BTreeMap<FlowName, Duration>>,
        gated: Option<FlowName>,
        gate: tokio::sync::Semaphore,
        started: tokio::sync::Notify,
        /// A pass of `gated` ends when stopped, rather than when the gate opens.
        until_stopped: bool,
        prunes: Mutex<Vec<DateTime<Utc>>>,
        /// The next passes' endings: an error or a panic, in turn; then they succeed.
        endings: Mutex<Vec<bool>>,
    }

    impl Fake {
        fn new(clock: Arc<ManualClock>) -> Fake {
            Fake {
                clock,
                ran: Mutex::default(),
                takes: Mutex::default(),
                gated: None,
                gate: tokio::sync::Semaphore::new(0),
                started: tokio::sync::Notify::new(),
                until_stopped: false,
                prunes: Mutex::default(),
                endings: Mutex::default(),
            }
        }

        fn ran(&self, flow: FlowName) -> Vec<DateTime<Utc>> {
            self.ran
                .lock()
                .expect("lock")
                .iter()
                .filter(|(f, _)| *f == flow)
                .map(|(_, t)| *t)
                .collect()
        }
    }

    impl Passes for Fake {
        fn pass(
            self: Arc<Self>,
            flow: FlowName,
            stop: Stop,
        ) -> BoxFuture<'static, Result<PassReport, FlowError>> {
            Box::pin(async move {
                self.ran
                    .lock()
                    .expect("lock")
                    .push((flow, self.clock.now()));
                self.started.notify_one();
                if self.gated == Some(flow) {
                    if self.until_stopped {
                        stop.wait().await;
                    } else {
                        self.gate.acquire().await.expect("gate").forget();
                    }
                }
                let takes = self.takes.lock().expect("lock").remove(&flow);
                if let Some(takes) = takes {
                    self.clock.advance(takes);
                }
                let ending = self.endings.lock().expect("lock").pop();
                match ending {
                    Some(true) => panic!("a bug in the pass"),
                    Some(false) => Err(FlowError::Sftp("refused".into())),
                    None => Ok(PassReport::new(flow.as_str(), 1)),
                }
            })
        }

        fn prune_calls(
            self: Arc<Self>,
            older_than: DateTime<Utc>,
        ) -> BoxFuture<'static, Result<u64, StoreError>> {
            Box::pin(async move {
                self.prunes.lock().expect("lock").push(older_than);
                Ok(2)
            })
        }
    }

    struct Running {
        fake: Arc<Fake>,
        clock: Arc<ManualClock>,
        triggers: Triggers,
        shutdown: Option<tokio::sync::oneshot::Sender<()>>,
        daemon: tokio::task::JoinHandle<DaemonReport>,
    }

    fn start(
        fake: Fake,
        schedules: Vec<(FlowName, Schedule)>,
        retention: Option<chrono::Duration>,
    ) -> Running {
        let fake = Arc::new(fake);
        let clock = fake.clock.clone();
        let triggers = Triggers::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let daemon = tokio::spawn(run(
            fake.clone(),
            triggers.clone(),
            schedules,
            clock.clone(),
            retention,
            async move {
                let _ = rx.await;
            },
        ));
        Running {
            fake,
            clock,
            triggers,
            shutdown: Some(tx),
            daemon,
        }
    }

    impl Running {
        async fn stop(mut self) -> DaemonReport {
            if let Some(tx) = self.shutdown.take() {
                let _ = tx.send(());
            }
            tokio::time::timeout(Duration::from_secs(5), self.daemon)
                .await
                .expect("the daemon stops promptly")
                .expect("the daemon does not panic")
        }
    }

    #[tokio::test]
    async fn each_flow_fires_at_its_instants_and_only_then() {
        let clock = Arc::new(ManualClock::new(at(8, 0, 0)));
        let d = start(
            Fake::new(clock.clone()),
            vec![
                (FlowName::Invoices, schedule("0 * * * *")),
                (FlowName::Payments, schedule("*/10 * * * * *")),
            ],
            None,
        );
        // Steps of 5 s: every other step reaches a payments instant, none falls between.
        for _ in 0..720 {
            d.clock.until_waiting(2).await;
            d.clock.advance(Duration::from_secs(5));
        }
        d.clock.until_waiting(2).await;
        let expected: Vec<DateTime<Utc>> = (1..=360)
            .map(|i| at(8, 0, 0) + chrono::Duration::seconds(10 * i))
            .collect();
        assert_eq!(d.fake.ran(FlowName::Payments), expected);
        assert_eq!(d.fake.ran(FlowName::Invoices), vec![at(9, 0, 0)]);
        let fake = d.fake.clone();
        let report = d.stop().await;
        assert_eq!(report.passes[&FlowName::Payments], 360);
        assert_eq!(report.passes[&FlowName::Invoices], 1);
        assert_eq!(report.passes[&FlowName::PayPayments], 0);
        assert!(report.skipped.is_empty(), "{report:?}");
        assert!(fake.ran(FlowName::PayPayments).is_empty());
    }

    #[tokio::test]
    async fn a_pass_longer_than_the_interval_skips_the_instants_it_overran() {
        let clock = Arc::new(ManualClock::new(at(8, 0, 0)));
        let fake = Fake::new(clock.clone());
        fake.takes
            .lock()
            .expect("lock")
            .insert(FlowName::Payments, Duration::from_secs(25));
        let d = start(
            fake,
            vec![(FlowName::Payments, schedule("*/10 * * * * *"))],
            None,
        );
        d.clock.until_waiting(1).await;
        d.clock.set(at(8, 0, 10));
        // The pass ends at 08:00:35: 08:00:20 and 08:00:30 went by during it.
        d.clock.until_waiting(1).await;
        assert_eq!(d.clock.now(), at(8, 0, 35));
        d.clock.set(at(8, 0, 39));
        tokio::task::yield_now().await;
        d.clock.until_waiting(1).await;
        assert_eq!(d.fake.ran(FlowName::Payments), vec![at(8, 0, 10)]);
        d.clock.set(at(8, 0, 40));
        d.clock.until_waiting(1).await;
        assert_eq!(
            d.fake.ran(FlowName::Payments),
            vec![at(8, 0, 10), at(8, 0, 40)]
        );
        let report = d.stop().await;
        assert_eq!(report.skipped.get(&FlowName::Payments), Some(&2));
        assert_eq!(report.passes[&FlowName::Payments], 2);
    }

    #[tokio::test]
    async fn triggers_during_a_pass_make_exactly_one_more_pass() {
        let clock = Arc::new(ManualClock::new(at(8, 0, 0)));
        let mut fake = Fake::new(clock.clone());
        fake.gated = Some(FlowName::Invoices);
        let d = start(
            fake,
            vec![(FlowName::Invoices, schedule("0 0 1 1 *"))],
            None,
        );
        d.clock.until_waiting(1).await;
        let started = d.fake.started.notified();
        d.triggers.trigger(FlowName::Invoices);
        started.await;
        for _ in 0..3 {
            d.triggers.trigger(FlowName::Invoices);
        }
        // Both passes may go through the gate; the second is the one the triggers asked for.
        d.fake.gate.add_permits(2);
        d.clock.until_waiting(1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        d.clock.until_waiting(1).await;
        assert_eq!(d.fake.ran(FlowName::Invoices), vec![at(8, 0, 0); 2]);
        let report = d.stop().await;
        assert_eq!(report.passes[&FlowName::Invoices], 2);
    }

    #[tokio::test]
    async fn a_trigger_runs_an_unscheduled_flow() {
        let clock = Arc::new(ManualClock::new(at(8, 0, 0)));
        let d = start(Fake::new(clock.clone()), Vec::new(), None);
        let started = d.fake.started.notified();
        d.triggers.trigger(FlowName::PayPayments);
        tokio::time::timeout(Duration::from_secs(5), started)
            .await
            .expect("the trigger starts a pass");
        let report = d.stop().await;
        assert_eq!(report.passes[&FlowName::PayPayments], 1);
        assert_eq!(report.passes[&FlowName::Invoices], 0);
    }

    #[tokio::test]
    async fn shutdown_stops_the_pass_in_flight_and_starts_no_other() {
        let clock = Arc::new(ManualClock::new(at(8, 0, 0)));
        let mut fake = Fake::new(clock.clone());
        fake.gated = Some(FlowName::Invoices);
        fake.until_stopped = true;
        let d = start(
            fake,
            vec![(FlowName::Invoices, schedule("*/10 * * * * *"))],
            None,
        );
        d.clock.until_waiting(1).await;
        let started = d.fake.started.notified();
        d.clock.advance(Duration::from_secs(10));
        started.await;
        // Pending work that must not start once the daemon is stopping.
        d.triggers.trigger(FlowName::Invoices);
        d.clock.advance(Duration::from_secs(60));
        let fake = d.fake.clone();
        let report = d.stop().await;
        assert_eq!(report.passes[&FlowName::Invoices], 1);
        assert_eq!(fake.ran(FlowName::Invoices), vec![at(8, 0, 10)]);
    }

    #[tokio::test]
    async fn failed_and_panicking_passes_are_counted_and_the_schedule_goes_on() {
        let clock = Arc::new(ManualClock::new(at(8, 0, 0)));
        let fake = Fake::new(clock.clone());
        // Popped from the end: an error, then a panic.
        *fake.endings.lock().expect("lock") = vec![true, false];
        let d = start(
            fake,
            vec![(FlowName::Payments, schedule("*/10 * * * * *"))],
            None,
        );
        for _ in 0..3 {
            d.clock.until_waiting(1).await;
            d.clock.advance(Duration::from_secs(10));
        }
        d.clock.until_waiting(1).await;
        assert_eq!(
            d.fake.ran(FlowName::Payments),
            vec![at(8, 0, 10), at(8, 0, 20), at(8, 0, 30)]
        );
        let report = d.stop().await;
        assert_eq!(report.passes[&FlowName::Payments], 3);
        assert_eq!(report.failed.get(&FlowName::Payments), Some(&2));
    }

    #[tokio::test]
    async fn retention_prunes_at_start_and_hourly() {
        let clock = Arc::new(ManualClock::new(at(8, 0, 0)));
        let d = start(
            Fake::new(clock.clone()),
            Vec::new(),
            Some(chrono::Duration::days(30)),
        );
        d.clock.until_waiting(1).await;
        d.clock.advance(Duration::from_secs(3_599));
        d.clock.until_waiting(1).await;
        assert_eq!(d.fake.prunes.lock().expect("lock").len(), 1);
        d.clock.advance(Duration::from_secs(1));
        d.clock.until_waiting(1).await;
        let fake = d.fake.clone();
        let report = d.stop().await;
        assert_eq!(
            *fake.prunes.lock().expect("lock"),
            vec![
                at(8, 0, 0) - chrono::Duration::days(30),
                at(9, 0, 0) - chrono::Duration::days(30)
            ]
        );
        assert_eq!(report.pruned, 4);
    }

    #[test]
    fn the_next_fire_skips_what_a_pass_overran() {
        let every_10s = schedule("*/10 * * * * *");
        // On time: the instant after the one served.
        assert_eq!(
            next_fire(&every_10s, Some(at(8, 0, 10)), true, at(8, 0, 12)),
            (Some(at(8, 0, 20)), 0)
        );
        // Overran two instants.
        assert_eq!(
            next_fire(&every_10s, Some(at(8, 0, 10)), true, at(8, 0, 35)),
            (Some(at(8, 0, 40)), 2)
        );
        // A trigger's pass leaves the awaited instant in place, unless it ran past it.
        assert_eq!(
            next_fire(&every_10s, Some(at(8, 0, 10)), false, at(8, 0, 5)),
            (Some(at(8, 0, 10)), 0)
        );
        assert_eq!(
            next_fire(&every_10s, Some(at(8, 0, 10)), false, at(8, 0, 10)),
            (Some(at(8, 0, 20)), 1)
        );
        // A day's outage of an every-second schedule is not counted instant by instant.
        let every_s = schedule("* * * * * *");
        let (next, skipped) = next_fire(&every_s, Some(at(0, 0, 0)), true, at(23, 0, 0));
        assert_eq!(next, Some(at(23, 0, 1)));
        assert_eq!(skipped, MAX_COUNTED_SKIPS);
    }
}

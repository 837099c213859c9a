//! Several `coupa-bridge run` processes (replicas) on shared state stores, and several tenants
//! (Coupa instances) in one process.
//!
//! Each tenant's flows run in one replica at a time: the replica that holds the tenant's lease
//! ([`FLOWS_LEASE`] in the tenant's state store). While it holds it, it runs the tenant's
//! [`daemon`](super::run) and renews the lease; the store writes under the lease's fence, so a
//! replica that lost the lease cannot record another step. A replica that dies stops renewing,
//! and another takes the lease once it expires: takeover within one lease time.
//!
//! The unit of the lease is the tenant, not the flow, because Coupa's rate budget is per
//! instance: with all of one instance's calls in one process, its one rate governor keeps the
//! whole group within the budget, bursts included.
//!
//! Tenants spread over the replicas: each replica records a heartbeat in every tenant's store and
//! holds at most its fair share, `ceil(tenants / live replicas)`. A replica holding more than
//! that (another one has just started) lets the surplus go at the end of the passes in flight.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{DaemonOptions, DaemonReport, Triggers};
use crate::connector::Connector;
use crate::store::leases::LeaseRow;
use crate::store::{FLOWS_LEASE, Fence, Store, StoreError};

/// One tenant's daemon, as [`run`] starts it while this replica holds the tenant's lease.
pub struct TenantDaemon {
    pub name: String,
    pub connector: Arc<Connector>,
    pub triggers: Triggers,
    pub options: DaemonOptions,
}

/// How long a lease lasts and how often it is renewed and asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    /// A holder that stops renewing loses the lease after this long.
    pub ttl: Duration,
    /// How often the holder renews (and the replica records its heartbeat).
    pub renew_every: Duration,
    /// How often a replica asks for a lease it does not hold.
    pub retry_every: Duration,
}

impl LeaseTiming {
    /// Renewal five times per lease, a request for a free lease ten times per lease (at most
    /// every 2 s).
    pub fn from_ttl(ttl: Duration) -> LeaseTiming {
        LeaseTiming {
            ttl,
            renew_every: ttl / 5,
            retry_every: (ttl / 10).clamp(Duration::from_millis(50), Duration::from_secs(2)),
        }
    }
}

impl Default for LeaseTiming {
    fn default() -> Self {
        LeaseTiming::from_ttl(Duration::from_secs(10))
    }
}

/// What one tenant's daemon did in this replica.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantReport {
    /// Times this replica took the tenant's lease.
    pub terms: u64,
    /// Terms that ended because the lease was lost (taken over, or not renewable in time).
    pub lost: u64,
    /// Terms that ended by handing the tenant to a replica with fewer tenants.
    pub handed_over: u64,
    /// The daemon's passes over every term.
    pub daemon: DaemonReport,
}

/// A new replica id, unique per process start: `<host>:<pid namespace>:<pid>:<random>`. The
/// middle parts let a process on the same host tell that a holder has died (see
/// [`dead_here`]).
pub fn replica_id() -> String {
    let mut bytes = [0u8; 4];
    // Without randomness, the process id and the time still tell two starts apart.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        bytes = (std::process::id() ^ nanos).to_le_bytes();
    }
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}:{}:{}:{suffix}",
        host_name(),
        pid_namespace(),
        std::process::id()
    )
}

/// Whether `holder` was a process of this host and PID namespace that no longer exists. Then
/// its lease can be taken at once rather than after it expires: a restart after a crash, or a
/// `sync` after a killed one, goes on without waiting. A holder elsewhere, or one whose process
/// id is alive (even if reused), is never judged dead.
pub fn dead_here(holder: &str) -> bool {
    let mut parts = holder.split(':');
    let (Some(host), Some(ns), Some(pid), Some(_), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    let here = pid_namespace();
    host == host_name()
        && ns == here
        && here != "0"
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn pid_namespace() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .and_then(|l| {
            let l = l.to_string_lossy().into_owned();
            let digits: String = l.chars().filter(char::is_ascii_digit).collect();
            (!digits.is_empty()).then_some(digits)
        })
        .unwrap_or_else(|| "0".to_owned())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().replace(':', "-"))
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "replica".to_owned())
}

/// Takes lease `name` for `holder`: when free or expired, or from a holder [`dead_here`].
async fn acquire(store: &Store, holder: &str, ttl: Duration) -> Result<Acquired, StoreError> {
    if let Some(fence) = store.lease_acquire(FLOWS_LEASE, holder, ttl).await? {
        return Ok(Acquired::Granted(fence));
    }
    let Some(current) = store
        .leases()
        .await?
        .into_iter()
        .find(|l| l.name == FLOWS_LEASE)
    else {
        return Ok(Acquired::Busy(None));
    };
    if dead_here(&current.holder)
        && let Some(fence) = store.lease_take_over(&current, holder, ttl).await?
    {
        tracing::info!(
            from = %current.holder,
            "took the lease over from {}, a process of this host that is gone",
            current.holder
        );
        return Ok(Acquired::Granted(fence));
    }
    Ok(Acquired::Busy(Some(current)))
}

enum Acquired {
    Granted(Fence),
    Busy(Option<LeaseRow>),
}

/// A lease held for a one-off `sync`: renewed in the background until released.
pub struct Held {
    store: Store,
    fence: Fence,
    renewer: tokio::task::JoinHandle<()>,
}

impl Held {
    /// Stops renewing and gives the lease up.
    pub async fn release(self) {
        self.renewer.abort();
        self.store.set_fence(None);
        if let Err(e) = self.store.lease_release(&self.fence).await {
            tracing::warn!(error = %e, "cannot release the lease (it will expire)");
        }
    }
}

/// Takes the tenant's lease for a one-off pass (`coupa-bridge sync`), so it never runs beside a
/// daemon's: waits up to one lease time for a holder to let go (a killed `sync`'s lease expires
/// by then), and fails naming the holder otherwise.
pub async fn hold(store: &Store, holder: &str, timing: LeaseTiming) -> Result<Held, String> {
    let deadline = Instant::now() + timing.ttl + timing.retry_every;
    loop {
        match acquire(store, holder, timing.ttl).await {
            Ok(Acquired::Granted(fence)) => {
                store.set_fence(Some(fence.clone()));
                let (s, f) = (store.clone(), fence.clone());
                let renewer = tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(timing.renew_every).await;
                        match s.lease_renew(&f, timing.ttl).await {
                            Ok(true) => {}
                            Ok(false) => {
                                tracing::error!("the lease was taken over: this pass stops");
                                return;
                            }
                            Err(e) => tracing::warn!(error = %e, "cannot renew the lease"),
                        }
                    }
                });
                return Ok(Held {
                    store: store.clone(),
                    fence,
                    renewer,
                });
            }
            Ok(Acquired::Busy(current)) if Instant::now() >= deadline => {
                return Err(match current {
                    Some(l) => format!(
                        "replica {} runs this tenant's flows (`coupa-bridge run`; its lease has \
                         {} ms left): a one-off sync would run beside it. Stop it, or let it run \
                         the flows (its dashboard's Retry, or the ERP push endpoint)",
                        l.holder,
                        l.remaining_ms.max(0)
                    ),
                    None => "the lease stayed busy".to_owned(),
                });
            }
            Ok(Acquired::Busy(_)) => {}
            Err(e) => return Err(format!("cannot take the lease: {e}")),
        }
        tokio::time::sleep(timing.retry_every).await;
    }
}

/// What the tenants of this process share: how many leases it holds and how many replicas
/// are alive.
struct Share {
    tenants: usize,
    held: AtomicUsize,
    live: AtomicUsize,
}

impl Share {
    fn fair(&self) -> usize {
        self.tenants
            .div_ceil(self.live.load(Ordering::SeqCst).max(1))
    }

    /// Reserves a slot for one more lease if within the fair share.
    fn reserve(&self) -> bool {
        let fair = self.fair();
        self.held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |h| {
                (h < fair).then_some(h + 1)
            })
            .is_ok()
    }

    /// Gives one slot up if over the fair share; `true` when this caller should hand over.
    fn surplus(&self) -> bool {
        let fair = self.fair();
        self.held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |h| {
                (h > fair).then(|| h - 1)
            })
            .is_ok()
    }

    fn release(&self) {
        let _ = self
            .held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |h| h.checked_sub(1));
    }
}

/// Runs replica `id`: each tenant's daemon while this replica holds its lease, until `shutdown`
/// resolves; then stops the passes in flight, releases the leases and returns per tenant.
pub async fn run(
    id: String,
    tenants: Vec<TenantDaemon>,
    timing: LeaseTiming,
    shutdown: impl Future<Output = ()> + Send,
) -> BTreeMap<String, TenantReport> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stores: Vec<Store> = tenants.iter().map(|t| t.connector.store.clone()).collect();
    let share = Arc::new(Share {
        tenants: tenants.len(),
        held: AtomicUsize::new(0),
        live: AtomicUsize::new(1),
    });
    // The first heartbeat before any lease is asked for, so a replica that starts beside
    // running ones asks only for its share.
    heartbeat(&id, &stores, timing, &share).await;
    let beats = tokio::spawn(heartbeats(
        id.clone(),
        stores.clone(),
        timing,
        share.clone(),
        stop_rx.clone(),
    ));
    let mut tasks = JoinSet::new();
    for tenant in tenants {
        let (id, share, stop) = (id.clone(), share.clone(), stop_rx.clone());
        tasks.spawn(async move {
            let name = tenant.name.clone();
            (name, tenant_loop(id, tenant, timing, share, stop).await)
        });
    }
    shutdown.await;
    stop_tx.send_replace(true);
    let mut reports = BTreeMap::new();
    while let Some(ended) = tasks.join_next().await {
        match ended {
            Ok((name, report)) => {
                reports.insert(name, report);
            }
            Err(e) => tracing::error!(error = %e, "a tenant's task ended abnormally"),
        }
    }
    beats.abort();
    for store in &stores {
        if let Err(e) = store.replica_gone(&id).await {
            tracing::warn!(error = %e, "cannot remove this replica from the replica list");
        }
    }
    reports
}

async fn heartbeats(
    id: String,
    stores: Vec<Store>,
    timing: LeaseTiming,
    share: Arc<Share>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(timing.renew_every) => {}
        }
        heartbeat(&id, &stores, timing, &share).await;
    }
}

/// Records this replica in every tenant's store and keeps the largest count of live replicas.
async fn heartbeat(id: &str, stores: &[Store], timing: LeaseTiming, share: &Share) {
    let host = host_name();
    let mut live = None;
    for store in stores {
        match store.replica_heartbeat(id, &host, timing.ttl).await {
            Ok(n) => live = Some(live.map_or(n, |l: usize| l.max(n))),
            Err(e) => tracing::warn!(error = %e, "cannot record this replica's heartbeat"),
        }
    }
    if let Some(live) = live {
        let before = share.live.swap(live, Ordering::SeqCst);
        if before != live {
            tracing::info!(replicas = live, "{live} replica(s) share the tenants");
        }
    }
}

/// One tenant: ask for its lease until shutdown; while held, run its daemon.
async fn tenant_loop(
    id: String,
    tenant: TenantDaemon,
    timing: LeaseTiming,
    share: Arc<Share>,
    mut stop: watch::Receiver<bool>,
) -> TenantReport {
    let mut report = TenantReport::default();
    let store = tenant.connector.store.clone();
    let mut waiting_logged = false;
    let mut first = true;
    loop {
        if !first {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                () = tokio::time::sleep(jitter(timing.retry_every)) => {}
            }
        }
        first = false;
        if *stop.borrow() {
            break;
        }
        if !share.reserve() {
            continue;
        }
        let fence = match acquire(&store, &id, timing.ttl).await {
            Ok(Acquired::Granted(fence)) => fence,
            Ok(Acquired::Busy(holder)) => {
                share.release();
                if !waiting_logged {
                    waiting_logged = true;
                    if let Some(l) = holder {
                        tracing::info!(
                            tenant = %tenant.name,
                            holder = %l.holder,
                            "{}: replica {} runs its flows (its lease runs {} ms more)",
                            tenant.name,
                            l.holder,
                            l.remaining_ms.max(0)
                        );
                    }
                }
                continue;
            }
            Err(e) => {
                share.release();
                tracing::warn!(tenant = %tenant.name, error = %e, "cannot ask for the lease");
                continue;
            }
        };
        waiting_logged = false;
        report.terms += 1;
        tracing::info!(
            tenant = %tenant.name,
            token = fence.token,
            "{}: this replica now runs its flows (lease token {})",
            tenant.name,
            fence.token
        );
        let end = term(&tenant, fence, timing, &share, stop.clone(), &mut report).await;
        match end {
            TermEnd::Lost(why) => {
                report.lost += 1;
                share.release();
                tracing::warn!(tenant = %tenant.name, "{}: lease lost: {why}", tenant.name);
            }
            TermEnd::HandedOver => {
                report.handed_over += 1;
                tracing::info!(
                    tenant = %tenant.name,
                    "{}: handed to another replica (this one holds more than its share)",
                    tenant.name
                );
            }
            TermEnd::Shutdown => {
                share.release();
                break;
            }
        }
    }
    report
}

enum TermEnd {
    Shutdown,
    Lost(String),
    /// The share slot was already given back by [`Share::surplus`].
    HandedOver,
}

/// One term of holding the lease: the tenant's daemon runs while a keeper renews the lease;
/// the daemon is stopped on shutdown, on loss of the lease, or to hand the tenant over.
async fn term(
    tenant: &TenantDaemon,
    fence: Fence,
    timing: LeaseTiming,
    share: &Arc<Share>,
    stop: watch::Receiver<bool>,
    report: &mut TenantReport,
) -> TermEnd {
    let store = tenant.connector.store.clone();
    store.set_fence(Some(fence.clone()));
    let (end_tx, mut end_rx) = watch::channel(None::<TermEndSignal>);
    let (done_tx, done_rx) = watch::channel(false);
    let keeper = tokio::spawn(keep(
        store.clone(),
        fence.clone(),
        timing,
        share.clone(),
        stop,
        end_tx,
        done_rx,
    ));
    let until = async move {
        let _ = end_rx.wait_for(Option::is_some).await;
    };
    let daemon = super::run(
        tenant.connector.clone(),
        tenant.triggers.clone(),
        tenant.options.clone(),
        until,
    )
    .await;
    merge(&mut report.daemon, daemon);
    // The keeper renewed while the passes finished their documents; now it can go.
    done_tx.send_replace(true);
    let signal = keeper.await.ok().flatten();
    let end = match signal {
        Some(TermEndSignal::Lost(why)) => TermEnd::Lost(why),
        Some(TermEndSignal::HandedOver) => TermEnd::HandedOver,
        Some(TermEndSignal::Shutdown) | None => TermEnd::Shutdown,
    };
    store.set_fence(None);
    if !matches!(end, TermEnd::Lost(_))
        && let Err(e) = store.lease_release(&fence).await
    {
        tracing::warn!(tenant = %tenant.name, error = %e, "cannot release the lease (it will expire)");
    }
    end
}

#[derive(Clone, Debug)]
enum TermEndSignal {
    Shutdown,
    Lost(String),
    HandedOver,
}

/// Renews the lease every `renew_every` until the term must end, then says why and keeps
/// renewing until the daemon is `done`, so the passes that finish their documents in hand still
/// hold the lease they write under.
async fn keep(
    store: Store,
    fence: Fence,
    timing: LeaseTiming,
    share: Arc<Share>,
    mut stop: watch::Receiver<bool>,
    end: watch::Sender<Option<TermEndSignal>>,
    mut done: watch::Receiver<bool>,
) -> Option<TermEndSignal> {
    let mut renewed = Instant::now();
    let mut ended: Option<TermEndSignal> = None;
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s), if ended.is_none() => {
                ended = Some(TermEndSignal::Shutdown);
                end.send_replace(ended.clone());
                continue;
            }
            () = tokio::time::sleep(timing.renew_every) => {}
            _ = done.wait_for(|d| *d) => return ended,
        }
        match store.lease_renew(&fence, timing.ttl).await {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => {
                let why = "another replica holds it now".to_owned();
                if ended.is_none() {
                    end.send_replace(Some(TermEndSignal::Lost(why.clone())));
                }
                return Some(TermEndSignal::Lost(why));
            }
            Err(e) => {
                // Stop before the lease could expire under us: half its time is the margin.
                if renewed.elapsed() > timing.ttl / 2 {
                    let why = format!("not renewed for {:?}: {e}", renewed.elapsed());
                    if ended.is_none() {
                        end.send_replace(Some(TermEndSignal::Lost(why.clone())));
                    }
                    return Some(TermEndSignal::Lost(why));
                }
                tracing::warn!(error = %e, "cannot renew the lease; trying again");
            }
        }
        if ended.is_none() && share.surplus() {
            ended = Some(TermEndSignal::HandedOver);
            end.send_replace(ended.clone());
        }
    }
}

fn merge(total: &mut DaemonReport, term: DaemonReport) {
    for (flow, n) in term.passes {
        *total.passes.entry(flow).or_default() += n;
    }
    for (flow, n) in term.failed {
        *total.failed.entry(flow).or_default() += n;
    }
    for (flow, n) in term.skipped {
        *total.skipped.entry(flow).or_default() += n;
    }
    total.pruned += term.pruned;
}

/// `d` give or take a quarter, so replicas started together do not ask in step.
fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 1];
    let r = if getrandom::fill(&mut b).is_ok() {
        f64::from(b[0]) / 255.0
    } else {
        0.5
    };
    d.mul_f64(0.75 + r / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(tenants: usize, live: usize, held: usize) -> Share {
        Share {
            tenants,
            held: AtomicUsize::new(held),
            live: AtomicUsize::new(live),
        }
    }

    #[test]
    fn a_replica_holds_at_most_its_fair_share() {
        let s = share(3, 2, 0);
        assert_eq!(s.fair(), 2);
        assert!(s.reserve());
        assert!(s.reserve());
        assert!(!s.reserve(), "a third lease is over the share of 2");
        assert!(!s.surplus());
        s.live.store(3, Ordering::SeqCst);
        assert!(s.surplus(), "with 3 replicas the share is 1: one goes");
        assert!(!s.surplus(), "only one goes");
        assert_eq!(s.held.load(Ordering::SeqCst), 1);
        s.release();
        s.release();
        assert_eq!(s.held.load(Ordering::SeqCst), 0, "never below zero");
    }

    #[test]
    fn one_tenant_is_always_within_the_share() {
        let s = share(1, 5, 0);
        assert_eq!(s.fair(), 1);
        assert!(s.reserve());
        assert!(!s.surplus());
    }

    #[test]
    fn timing_renews_well_within_the_lease() {
        let t = LeaseTiming::from_ttl(Duration::from_secs(10));
        assert_eq!(t.renew_every, Duration::from_secs(2));
        assert_eq!(t.retry_every, Duration::from_secs(1));
        let t = LeaseTiming::from_ttl(Duration::from_secs(60));
        assert_eq!(t.retry_every, Duration::from_secs(2));
    }

    #[test]
    fn replica_ids_differ_per_start() {
        assert_ne!(replica_id(), replica_id());
    }

    #[test]
    fn only_a_gone_process_of_this_host_is_dead() {
        let me = replica_id();
        assert!(!dead_here(&me), "this process is alive");
        let parts: Vec<&str> = me.split(':').collect();
        assert_eq!(parts.len(), 4, "{me}");
        // A process id above Linux's maximum (2^22) cannot exist.
        let gone = format!("{}:{}:{}:ab", parts[0], parts[1], 4_194_305);
        if std::path::Path::new("/proc/self/ns/pid").exists() {
            assert!(dead_here(&gone), "{gone}");
        }
        let elsewhere = format!("another-host:{}:{}:ab", parts[1], 4_194_305);
        assert!(!dead_here(&elsewhere));
        let other_ns = format!("{}:1:{}:ab", parts[0], 4_194_305);
        assert!(!dead_here(&other_ns));
        assert!(!dead_here("garbage"));
        assert!(!dead_here("a:b:c:d:e"));
    }
}

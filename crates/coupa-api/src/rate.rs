//! The rate governor: one per Coupa instance, shared by every task that calls it.
//!
//! Coupa's limit (about 25 requests/s, bursts of 20) applies to the instance, not to a
//! connection, so per-task limiters or per-request retries cannot keep us under it: eight tasks
//! each "politely" retrying still add up to a storm. Every request therefore takes a slot from
//! one shared schedule before it is sent, and a 429 seen by any task slows everyone.
//!
//! Why it is hand-written rather than the `governor` crate: that crate reads its own clock and
//! ignores `tokio::time::pause`, so tests of throttling would take real seconds or be flaky.
//! Here the core ([`Bucket`]) is a pure struct that is told `now`, unit-tested with explicit
//! instants, and the async wrapper ([`Governor`]) only reads `tokio::time::Instant` and sleeps
//! with `tokio::time::sleep_until`, so a paused test clock drives it.
//!
//! The choices, and why:
//! - GCRA (virtual scheduling) rather than a token count: a reservation is one instant, so
//!   callers queue FIFO with no thundering herd when a slot frees up.
//! - The burst allowance is a time window (`(burst - 1) / per_second`) measured at full rate,
//!   so when the rate is cut after a 429 the burst shrinks with it.
//! - A 429 halves the rate (down to `min_fraction`), forfeits any saved-up burst (the server
//!   just told us its bucket is empty), and, with `Retry-After`, holds every next slot until
//!   then. Tasks already asleep on a slot granted before the 429 take a new one when they wake.
//! - 429s within [`THROTTLE_DEBOUNCE`] of the last halving count as the same overload: the
//!   requests in flight when Coupa started refusing all come back 429 together, and halving
//!   once per answer would drop straight to the floor.
//! - Recovery is linear: the rate climbs from its level at the last 429 back to full over
//!   `recovery`. Linear is predictable in metrics and slow enough that we do not oscillate
//!   against a limit we cannot see.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// 429s this close to the last halving do not halve again (they still restart recovery and
/// still honour `Retry-After`). One second because Coupa's window is one second.
pub const THROTTLE_DEBOUNCE: Duration = Duration::from_secs(1);

/// The longest gap between slots, however low the rate is configured (guards instant
/// arithmetic against absurd configs).
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// The longest `Retry-After` the governor will hold everyone for (the retry policy caps it far
/// lower; this only guards instant arithmetic).
const MAX_HOLD: Duration = Duration::from_secs(86_400);

/// The lowest `per_second` accepted; a non-positive or NaN rate means a broken config, not
/// "stop" and not "unlimited" (use [`Governor::unlimited`] for that).
const MIN_PER_SECOND: f64 = 0.01;

/// The lowest `min_fraction` accepted, so the rate never reaches zero.
const MIN_FRACTION_FLOOR: f64 = 0.001;

/// The schedule one Coupa instance gets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateConfig {
    /// Steady requests per second at full rate. The default, 20, stays under Coupa's published
    /// 25 so that other integrations on the same instance and clock drift leave us headroom.
    pub per_second: f64,
    /// Requests that may go at once after an idle spell (at full rate). The default, 10, is
    /// half Coupa's published burst, for the same reason.
    pub burst: u32,
    /// The rate never drops below this fraction of `per_second`, however many 429s arrive.
    pub min_fraction: f64,
    /// How long after the last 429 the rate takes to climb back, linearly, to full.
    pub recovery: Duration,
}

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig {
            per_second: 20.0,
            burst: 10,
            min_fraction: 0.1,
            recovery: Duration::from_secs(30),
        }
    }
}

impl RateConfig {
    fn sanitized(self) -> RateConfig {
        let per_second = if self.per_second >= MIN_PER_SECOND {
            self.per_second
        } else {
            MIN_PER_SECOND
        };
        let min_fraction = if self.min_fraction.is_nan() {
            RateConfig::default().min_fraction
        } else {
            self.min_fraction.clamp(MIN_FRACTION_FLOOR, 1.0)
        };
        RateConfig {
            per_second,
            burst: self.burst.max(1),
            min_fraction,
            recovery: self.recovery,
        }
    }
}

/// The pure core: GCRA with an adaptive rate factor. Every method takes `now`; callers must
/// pass instants that do not go backwards.
#[derive(Clone, Debug)]
pub struct Bucket {
    cfg: RateConfig,
    /// The burst allowance as a time window, at full rate.
    tolerance: Duration,
    /// The theoretical arrival time: when the schedule is next "due" with no burst credit.
    tat: Instant,
    /// The rate factor (1.0 = full) just after the last 429.
    factor_at_429: f64,
    last_429: Option<Instant>,
    last_halving: Option<Instant>,
    /// How many 429s have been reported; a waiter whose slot predates one re-reserves.
    throttles: u64,
}

impl Bucket {
    /// A bucket at full rate with its whole burst available at `now`.
    pub fn new(cfg: RateConfig, now: Instant) -> Self {
        let cfg = cfg.sanitized();
        let tolerance = secs(f64::from(cfg.burst - 1) / cfg.per_second);
        Bucket {
            cfg,
            tolerance,
            tat: now,
            factor_at_429: 1.0,
            last_429: None,
            last_halving: None,
            throttles: 0,
        }
    }

    /// Reserves one request slot: returns the instant at which the caller may send (`== now`
    /// if it may send at once). Reservations are FIFO-fair: each call pushes the next slot
    /// later. The gap a reservation adds is taken at the rate of `now`, so slots queued deep
    /// during recovery are, if anything, a little conservative.
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let due = self.tat.max(now);
        let send_at = due
            .checked_sub(self.tolerance)
            .map_or(now, |earliest| earliest.max(now));
        self.tat = due + self.interval(now);
        send_at
    }

    /// A 429 was answered: halve the effective rate (not below `min_fraction * per_second`;
    /// at most once per [`THROTTLE_DEBOUNCE`]), forfeit the saved-up burst, and, if
    /// `retry_after` is `Some`, hold the next slot for everyone until `now + retry_after`.
    pub fn throttled(&mut self, now: Instant, retry_after: Option<Duration>) {
        let current = self.factor(now);
        let debounced = self
            .last_halving
            .is_some_and(|at| now.saturating_duration_since(at) < THROTTLE_DEBOUNCE);
        self.factor_at_429 = if debounced {
            current
        } else {
            self.last_halving = Some(now);
            (current / 2.0).max(self.cfg.min_fraction)
        };
        self.last_429 = Some(now);
        self.throttles += 1;

        // No burst right after a 429: the next slot is one (new) interval away.
        self.tat = self.tat.max(now + self.tolerance + self.interval(now));
        if let Some(hold) = retry_after {
            self.tat = self.tat.max(now + hold.min(MAX_HOLD) + self.tolerance);
        }
    }

    /// Current effective requests per second (after slowdown and recovery), for metrics.
    pub fn effective_rate(&self, now: Instant) -> f64 {
        self.cfg.per_second * self.factor(now)
    }

    /// The rate factor at `now`: 1.0 until the first 429, then climbing linearly from its
    /// level at the last 429 back to 1.0 over `recovery`.
    fn factor(&self, now: Instant) -> f64 {
        let Some(at) = self.last_429 else {
            return 1.0;
        };
        let since = now.saturating_duration_since(at);
        if since >= self.cfg.recovery {
            return 1.0;
        }
        let progress = since.as_secs_f64() / self.cfg.recovery.as_secs_f64();
        self.factor_at_429 + (1.0 - self.factor_at_429) * progress
    }

    /// The gap between slots at `now`'s rate.
    fn interval(&self, now: Instant) -> Duration {
        secs(1.0 / self.effective_rate(now))
    }
}

fn secs(value: f64) -> Duration {
    Duration::try_from_secs_f64(value)
        .unwrap_or(MAX_INTERVAL)
        .min(MAX_INTERVAL)
}

/// The async, shareable governor. Clones share one schedule; the lock is never held across an
/// `.await`.
#[derive(Clone, Debug)]
pub struct Governor {
    bucket: Option<Arc<Mutex<Bucket>>>,
}

impl Governor {
    /// A governor at full rate with its whole burst available.
    pub fn new(cfg: RateConfig) -> Self {
        Governor {
            bucket: Some(Arc::new(Mutex::new(Bucket::new(cfg, Instant::now())))),
        }
    }

    /// No limit at all, for tests and benchmarks of our own throughput.
    pub fn unlimited() -> Self {
        Governor { bucket: None }
    }

    /// Waits for a slot; returns how long it waited (for metrics and the observer).
    ///
    /// If a 429 is reported while this call sleeps, the slot it held was granted under the old
    /// schedule, so it takes a new one. Dropping the future while it sleeps gives up its slot
    /// without handing it back: the schedule stays as if the request had been sent, which errs
    /// on the slow side.
    pub async fn acquire(&self) -> Duration {
        let Some(bucket) = &self.bucket else {
            return Duration::ZERO;
        };
        let start = Instant::now();
        loop {
            let now = Instant::now();
            let (send_at, throttles) = {
                let mut bucket = bucket.lock();
                (bucket.reserve(now), bucket.throttles)
            };
            if send_at <= now {
                break;
            }
            tokio::time::sleep_until(send_at).await;
            if bucket.lock().throttles == throttles {
                break;
            }
        }
        Instant::now().saturating_duration_since(start)
    }

    /// Reports a 429 (with its `Retry-After`, if any); see [`Bucket::throttled`].
    pub fn throttled(&self, retry_after: Option<Duration>) {
        if let Some(bucket) = &self.bucket {
            bucket.lock().throttled(Instant::now(), retry_after);
        }
    }

    /// Current effective requests per second; infinite when unlimited.
    pub fn effective_rate(&self) -> f64 {
        match &self.bucket {
            Some(bucket) => bucket.lock().effective_rate(Instant::now()),
            None => f64::INFINITY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// 10/s (100 ms apart), burst 5: round numbers for exact instants.
    fn cfg() -> RateConfig {
        RateConfig {
            per_second: 10.0,
            burst: 5,
            min_fraction: 0.1,
            recovery: Duration::from_secs(30),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Offsets from `t0` of `n` reservations all made at `now`.
    fn reserve_n(bucket: &mut Bucket, t0: Instant, now: Instant, n: usize) -> Vec<Duration> {
        (0..n).map(|_| bucket.reserve(now) - t0).collect()
    }

    /// The most sends in any half-open window `[s, s + window)` starting at a send.
    fn max_in_window(sends: &[Instant], window: Duration) -> usize {
        let mut sorted = sends.to_vec();
        sorted.sort();
        sorted
            .iter()
            .enumerate()
            .map(|(i, &start)| {
                sorted
                    .iter()
                    .skip(i)
                    .take_while(|&&s| s < start + window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn default_config_matches_the_design() {
        let c = RateConfig::default();
        assert!(close(c.per_second, 20.0));
        assert_eq!(c.burst, 10);
        assert!(close(c.min_fraction, 0.1));
        assert_eq!(c.recovery, Duration::from_secs(30));
    }

    #[test]
    fn burst_then_steady_spacing() {
        let t0 = Instant::now();
        let mut b = Bucket::new(cfg(), t0);
        let got = reserve_n(&mut b, t0, t0, 8);
        assert_eq!(
            got,
            vec![ms(0), ms(0), ms(0), ms(0), ms(0), ms(100), ms(200), ms(300)]
        );
    }

    #[test]
    fn reservations_are_fifo_and_evenly_spaced() {
        let t0 = Instant::now();
        let mut b = Bucket::new(cfg(), t0);
        let mut previous = t0;
        for k in 0..50u32 {
            let slot = b.reserve(t0);
            assert!(slot >= previous, "slot {k} went backwards");
            if k >= 5 {
                assert_eq!(slot - previous, ms(100), "slot {k}");
            }
            previous = slot;
        }
        // The 30th request (index 29) goes at (30 - 5) * 100 ms.
        let mut b = Bucket::new(cfg(), t0);
        let slots = reserve_n(&mut b, t0, t0, 30);
        assert_eq!(slots.last(), Some(&ms(2500)));
    }

    #[test]
    fn steady_callers_at_the_rate_never_wait() {
        let t0 = Instant::now();
        let mut b = Bucket::new(cfg(), t0);
        for k in 0..100u32 {
            let now = t0 + ms(100) * k;
            assert_eq!(b.reserve(now), now, "request {k}");
        }
    }

    #[test]
    fn idleness_refills_the_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new(cfg(), t0);
        reserve_n(&mut b, t0, t0, 20); // backlog until 1.5 s
        let later = t0 + Duration::from_secs(5);
        let got = reserve_n(&mut b, later, later, 7);
        assert_eq!(
            got,
            vec![ms(0), ms(0), ms(0), ms(0), ms(0), ms(100), ms(200)]
        );
    }

    #[test]
    fn partial_idleness_refills_part_of_the_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new(cfg(), t0);
        reserve_n(&mut b, t0, t0, 5); // burst spent; next slot at 100 ms
        let later = t0 + ms(300);
        // 300 ms of idleness earns 3 requests (the first one due at 100 ms plus two more).
        let got = reserve_n(&mut b, later, later, 4);
        assert_eq!(got, vec![ms(0), ms(0), ms(0), ms(100)]);
    }

    #[test]
    fn throttled_halves_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(cfg(), t0);
        assert!(close(b.effective_rate(t0), 10.0));
        b.throttled(t0, None);
        assert!(close(b.effective_rate(t0), 5.0));
        // Burst forfeited; then 200 ms apart.
        let got = reserve_n(&mut b, t0, t0, 4);
        assert_eq!(got, vec![ms(200), ms(400), ms(600), ms(800)]);
    }

    #[test]
    fn throttled_forfeits_the_burst_even_after_idleness() {
        let t0 = Instant::now();
        let mut b = Bucket::new(cfg(), t0);
        let now = t0 + Duration::from_secs(10);
        b.throttled(now, None);
        assert_eq!(b.reserve(now), now + ms(200));
    }

    #[test]
    fn the_burst_shrinks_with_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(cfg(), t0);
        b.throttled(t0, None);
        // Long enough idle to refill, short against the 30 s recovery: the 400 ms burst
        // window at 5.5/s (about 180 ms apart) holds 3 requests, not 5.
        let later = t0 + ms(3_000);
        let rate = b.effective_rate(later);
        assert!(rate > 5.0 && rate < 5.6, "{rate}");
        let immediate = reserve_n(&mut b, later, later, 5)
            .iter()
            .filter(|d| d.is_zero())
            .count();
        assert_eq!(immediate, 3);
    }

    #[test]
    fn repeated_throttles_halve_down_to_the_floor() {
        let t0 = Instant::now();
        let cfg = RateConfig {
            recovery: Duration::from_secs(3600),
            ..cfg()
        };
        let mut b = Bucket::new(cfg, t0);
        let mut rates = Vec::new();
        for k in 0..6u32 {
            let now = t0 + Duration::from_secs(2) * k;
            b.throttled(now, None);
            rates.push(b.effective_rate(now));
        }
        // 5, 2.5, 1.25, then clamped at 10% of 10/s (recovery over an hour barely moves it).
        assert!((rates[0] - 5.0).abs() < 0.01, "{rates:?}");
        assert!((rates[1] - 2.5).abs() < 0.01, "{rates:?}");
        assert!((rates[2] - 1.25).abs() < 0.01, "{rates:?}");
        for rate in &rates[3..] {
            assert!(close(*rate, 1.0), "{rates:?}");
        }
    }

    #[test]
    fn floor_spacing_is_one_over_the_floor_rate() {
        let t0 = Instant::now();
        let cfg = RateConfig {
            min_fraction: 0.5,
            ..cfg()
        };
        let mut b = Bucket::new(cfg, t0);
        for k in 0..4u32 {
            b.throttled(t0 + Duration::from_secs(2) * k, None);
        }
        let now = t0 + Duration::from_secs(6);
        let rate = b.effective_rate(now);
        assert!(close(rate, 5.0), "{rate}");
        let first = b.reserve(now);
        assert_eq!(b.reserve(now) - first, ms(200));
    }

    #[test]
    fn throttles_within_the_debounce_halve_once() {
        let t0 = Instant::now();
        let mut b = Bucket::new(cfg(), t0);
        for k in 0..8u32 {
            b.throttled(t0 + ms(50) * k, None);
        }
        // Halved once (plus the little recovery each debounced 429 re-anchors), not 2^-8.
        let rate = b.effective_rate(t0 + ms(350));
        assert!(rate > 5.0 && rate < 5.1, "{rate}");
        // A second past the first halving, the next 429 halves again.
        b.throttled(t0 + ms(1_000), None);
        let rate = b.effective_rate(t0 + ms(1_000));
        assert!(rate > 2.5 && rate < 2.6, "{rate}");
    }

    #[test]
    fn debounced_throttles_restart_recovery() {
        let t0 = Instant::now();
        let mut b = Bucket::new(cfg(), t0);
        b.throttled(t0, None);
        b.throttled(t0 + ms(900), None);
        // Recovery now counts from 900 ms: at 30.5 s it is not complete yet.
        let rate = b.effective_rate(t0 + ms(30_500));
        assert!(rate < 10.0, "{rate}");
        assert!(close(b.effective_rate(t0 + ms(30_900)), 10.0));
    }

    #[test]
    fn recovery_is_linear_back_to_full() {
        let t0 = Instant::now();
        let mut b = Bucket::new(cfg(), t0);
        b.throttled(t0, None);
        let at = |s: u64| b.effective_rate(t0 + Duration::from_secs(s));
        assert!(close(at(0), 5.0));
        assert!(close(at(15), 7.5));
        assert!(close(at(24), 9.0));
        assert!(close(at(30), 10.0));
        assert!(close(at(300), 10.0));
    }

    #[test]
    fn recovery_shortens_the_spacing() {
        let t0 = Instant::now();
        let mut b = Bucket::new(cfg(), t0);
        b.throttled(t0, None);
        let now = t0 + Duration::from_secs(60);
        reserve_n(&mut b, now, now, 5);
        let a = b.reserve(now);
        let c = b.reserve(now);
        assert_eq!(c - a, ms(100));
    }

    #[test]
    fn a_throttle_during_recovery_halves_the_current_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(cfg(), t0);
        b.throttled(t0, None);
        let now = t0 + Duration::from_secs(15); // recovered to 7.5/s
        b.throttled(now, None);
        assert!(close(b.effective_rate(now), 3.75));
    }

    #[test]
    fn zero_recovery_returns_at_once() {
        let t0 = Instant::now();
        let cfg = RateConfig {
            recovery: Duration::ZERO,
            ..cfg()
        };
        let mut b = Bucket::new(cfg, t0);
        b.throttled(t0, None);
        assert!(close(b.effective_rate(t0), 10.0));
    }

    #[test]
    fn retry_after_holds_everyone() {
        let t0 = Instant::now();
        let mut b = Bucket::new(cfg(), t0);
        reserve_n(&mut b, t0, t0, 2); // some burst used, plenty left
        b.throttled(t0, Some(Duration::from_secs(2)));
        // Every next slot, reserved now or later, is at or after 2 s, and they are spaced
        // at the halved rate rather than bursting when the hold ends.
        let now = reserve_n(&mut b, t0, t0, 2);
        assert_eq!(now, vec![ms(2_000), ms(2_200)]);
        let later = reserve_n(&mut b, t0, t0 + ms(1_500), 2);
        assert_eq!(later.first(), Some(&ms(2_400)));
        // Reserved at 1.5 s, 5% into recovery: a little under 200 ms.
        let gap = later[1] - later[0];
        assert!(gap > ms(185) && gap < ms(200), "{later:?}");
    }

    #[test]
    fn retry_after_shorter_than_the_backlog_changes_nothing_for_the_backlog() {
        let t0 = Instant::now();
        let mut b = Bucket::new(cfg(), t0);
        reserve_n(&mut b, t0, t0, 30); // the 30th at 2.5 s, the next due at 2.6 s
        b.throttled(t0, Some(ms(500)));
        assert_eq!(b.reserve(t0) - t0, ms(2_600));
    }

    #[test]
    fn a_huge_retry_after_does_not_panic() {
        let t0 = Instant::now();
        let mut b = Bucket::new(cfg(), t0);
        b.throttled(t0, Some(Duration::MAX));
        assert_eq!(b.reserve(t0) - t0, MAX_HOLD);
    }

    #[test]
    fn broken_configs_are_tamed() {
        let t0 = Instant::now();
        for per_second in [0.0, -5.0, f64::NAN] {
            let mut b = Bucket::new(
                RateConfig {
                    per_second,
                    burst: 0,
                    min_fraction: f64::NAN,
                    recovery: Duration::ZERO,
                },
                t0,
            );
            assert!(close(b.effective_rate(t0), MIN_PER_SECOND));
            assert_eq!(b.reserve(t0), t0);
            assert_eq!(b.reserve(t0) - t0, secs(1.0 / MIN_PER_SECOND));
        }
        let mut b = Bucket::new(
            RateConfig {
                min_fraction: 0.0,
                recovery: Duration::from_secs(3600),
                ..cfg()
            },
            t0,
        );
        for k in 0..20u32 {
            b.throttled(t0 + Duration::from_secs(2) * k, None);
        }
        assert!(b.effective_rate(t0 + Duration::from_secs(40)) > 0.0);
    }

    #[test]
    fn an_infinite_rate_never_waits() {
        let t0 = Instant::now();
        let mut b = Bucket::new(
            RateConfig {
                per_second: f64::INFINITY,
                ..cfg()
            },
            t0,
        );
        for _ in 0..1000 {
            assert_eq!(b.reserve(t0), t0);
        }
    }

    /// Eight tasks, each sending, waiting 30 ms for the answer and asking again, through one
    /// bucket: simulated with explicit instants, no runtime.
    #[test]
    fn eight_simulated_tasks_never_exceed_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(cfg(), t0);
        let mut ready = [t0; 8];
        let mut sends = Vec::new();
        for _ in 0..200 {
            let (task, &now) = ready
                .iter()
                .enumerate()
                .min_by_key(|(_, at)| **at)
                .expect("eight tasks");
            let slot = b.reserve(now);
            assert!(slot >= now);
            sends.push(slot);
            if let Some(next) = ready.get_mut(task) {
                *next = slot + ms(30);
            }
        }
        // GCRA bound: n sends in a window shorter than L need (n - burst) * T < L, so a 1 s
        // window at 10/s with burst 5 holds at most 5 + 10 - 1.
        assert_eq!(max_in_window(&sends, Duration::from_secs(1)), 14);
        let last = sends.iter().max().expect("200 sends");
        assert_eq!(*last - t0, ms(100) * (200 - 5));
    }

    // ---- the async wrapper ----

    #[tokio::test]
    async fn unlimited_never_waits() {
        let g = Governor::unlimited();
        for _ in 0..1000 {
            assert_eq!(g.acquire().await, Duration::ZERO);
        }
        g.throttled(Some(Duration::from_secs(5)));
        assert_eq!(g.acquire().await, Duration::ZERO);
        assert!(g.effective_rate().is_infinite());
    }

    #[test]
    fn acquire_can_be_spawned() {
        // The transport's callers spawn tasks: the lock must never live across the sleep.
        fn assert_send<T: Send + 'static>(_: T) {}
        let g = Governor::new(cfg());
        assert_send(async move { g.acquire().await });
    }

    /// Real time, so only lower bounds: a sleep never ends early, however loaded the machine.
    #[tokio::test]
    async fn acquire_waits_at_least_the_schedule_in_real_time() {
        let g = Governor::new(RateConfig {
            per_second: 200.0,
            burst: 2,
            ..RateConfig::default()
        });
        let start = Instant::now();
        for _ in 0..12 {
            g.acquire().await;
        }
        assert!(start.elapsed() >= ms(50), "{:?}", start.elapsed()); // 10 gaps of 5 ms

        let before = Instant::now();
        g.throttled(Some(ms(100)));
        assert!(g.effective_rate() < 101.0);
        let waited = g.acquire().await;
        assert!(before.elapsed() >= ms(100), "{:?}", before.elapsed());
        assert!(waited > Duration::ZERO);
    }

    /// These drive the governor on tokio's paused clock, which needs tokio's `test-util`
    /// feature in this crate's dev-dependencies:
    /// `tokio = { workspace = true, features = ["test-util"] }`.
    /// Until it is there they are compiled out; delete the `cfg(any())` line to enable them.
    mod paused {
        use super::*;

        /// Within `tolerance` either side (the timer rounds deadlines up to whole
        /// milliseconds, and recovery shortens gaps a little after a 429).
        fn about(actual: Duration, expected: Duration, tolerance: Duration) -> bool {
            actual + tolerance >= expected && actual <= expected + tolerance
        }

        #[tokio::test(start_paused = true)]
        async fn acquire_spreads_requests_over_virtual_time() {
            let g = Governor::new(cfg());
            let start = Instant::now();
            let mut at = Vec::new();
            for _ in 0..30 {
                g.acquire().await;
                at.push(start.elapsed());
            }
            assert!(at.iter().take(5).all(|d| d.is_zero()), "{at:?}");
            assert!(about(at[5], ms(100), ms(1)), "{at:?}");
            assert!(about(at[29], ms(2_500), ms(1)), "{at:?}");

            // A 429: half the rate, no burst.
            g.throttled(None);
            assert!(close(g.effective_rate(), 5.0));
            let mut after = Vec::new();
            for _ in 0..5 {
                after.push(g.acquire().await);
            }
            // The 31st was due at 2.6 s; the 429 at 2.5 s moves it to 2.7 s, then about 200 ms
            // apart (recovery has begun, so each gap is a little shorter).
            assert!(about(after[0], ms(200), ms(1)), "{after:?}");
            for waited in &after {
                assert!(about(*waited, ms(200), ms(10)), "{after:?}");
            }
        }

        #[tokio::test(start_paused = true)]
        async fn retry_after_holds_tasks_already_waiting() {
            let g = Governor::new(cfg());
            for _ in 0..5 {
                g.acquire().await; // burst spent
            }
            let start = Instant::now();
            let waiters: Vec<_> = (0..3)
                .map(|_| {
                    let g = g.clone();
                    tokio::spawn(async move {
                        g.acquire().await;
                        Instant::now()
                    })
                })
                .collect();
            // Let them take their slots (100, 200, 300 ms) and go to sleep.
            tokio::task::yield_now().await;
            tokio::time::sleep(ms(50)).await;
            g.throttled(Some(Duration::from_secs(2)));
            let mut sent = Vec::new();
            for w in waiters {
                sent.push(w.await.expect("waiter task") - start);
            }
            sent.sort();
            // The hold began at 50 ms; then 200 ms apart at the halved rate.
            assert!(about(sent[0], ms(2_050), ms(1)), "{sent:?}");
            assert!(about(sent[1], ms(2_250), ms(5)), "{sent:?}");
            assert!(about(sent[2], ms(2_450), ms(5)), "{sent:?}");
        }

        #[tokio::test(start_paused = true)]
        async fn eight_tasks_sharing_a_governor_never_exceed_the_rate() {
            let g = Governor::new(cfg());
            let sends = Arc::new(Mutex::new(Vec::new()));
            let start = Instant::now();
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let g = g.clone();
                    let sends = Arc::clone(&sends);
                    tokio::spawn(async move {
                        for _ in 0..20 {
                            g.acquire().await;
                            sends.lock().push(Instant::now());
                            tokio::time::sleep(ms(30)).await; // the answer
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("task");
            }
            let sends = sends.lock().clone();
            assert_eq!(sends.len(), 160);
            // Whole virtual seconds after the start: the burst plus the rate, at most.
            let mut per_second = [0usize; 32];
            for s in &sends {
                let second = (*s - start).as_secs() as usize;
                if let Some(count) = per_second.get_mut(second) {
                    *count += 1;
                }
            }
            assert!(per_second.iter().all(|&n| n <= 5 + 10), "{per_second:?}");
            assert!(
                per_second.iter().skip(1).all(|&n| n <= 10),
                "{per_second:?}"
            );
            // Any sliding second: the GCRA bound.
            assert!(max_in_window(&sends, Duration::from_secs(1)) <= 14);
            let last = sends.iter().max().expect("160 sends");
            assert!(
                about(*last - start, ms(100) * (160 - 5), ms(1)),
                "{:?}",
                *last - start
            );
        }
    }
}

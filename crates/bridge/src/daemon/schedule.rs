//! When a flow's next pass is due: a cron expression (croner: five fields, or six with a leading
//! seconds field) read in UTC, and the [`Clock`] the daemon reads and sleeps on, so tests drive
//! time by hand.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

/// A parsed `[schedule]` entry.
#[derive(Clone, Debug)]
pub struct Schedule {
    expression: String,
    cron: croner::Cron,
}

impl Schedule {
    /// Parses a cron expression; the error says what is wrong with it, for the config loader
    /// to put beside the key.
    pub fn parse(expression: &str) -> Result<Schedule, String> {
        let cron: croner::Cron = expression
            .trim()
            .parse()
            .map_err(|e| format!("invalid cron expression \"{expression}\": {e}"))?;
        let schedule = Schedule {
            expression: expression.trim().to_owned(),
            cron,
        };
        // A pattern that never fires (`0 0 30 2 *`) would park the flow silently.
        let probe = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(20_000);
        if schedule.next_after(probe).is_none() {
            return Err(format!(
                "cron expression \"{expression}\" never fires (no date matches it)"
            ));
        }
        Ok(schedule)
    }

    /// The first instant strictly after `after` that the expression matches.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }
}

/// The daemon's time: what it is now, and a sleep until an instant. [`SystemClock`] in
/// production; tests pass a clock they move by hand.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// Resolves once [`Clock::now`] has reached `until`.
    fn sleep_until(&self, until: DateTime<Utc>) -> BoxFuture<'static, ()>;
}

/// Wall-clock time.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, until: DateTime<Utc>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            // Re-read the clock after each sleep: a suspended machine or a clock step must not
            // make a pass fire early.
            loop {
                let left = until - Utc::now();
                let Ok(left) = left.to_std() else { return };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(Duration::from_secs(60))).await;
            }
        })
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// A clock that only moves when told to: tests (and demos) drive the daemon through hours of
/// schedule in milliseconds. [`ManualClock::advance`] and [`ManualClock::set`] wake every sleeper
/// whose instant is reached; [`ManualClock::until_waiting`] tells when the daemon has settled.
#[derive(Debug)]
pub struct ManualClock {
    now: tokio::sync::watch::Sender<DateTime<Utc>>,
    sleepers: Arc<Sleepers>,
}

/// The instants pending [`Clock::sleep_until`] futures wait for, so a test can see that every
/// task of the daemon is idle again before moving the clock on.
#[derive(Debug, Default)]
struct Sleepers {
    until: std::sync::Mutex<(u64, std::collections::BTreeMap<u64, DateTime<Utc>>)>,
    changed: tokio::sync::Notify,
}

impl Sleepers {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, (u64, std::collections::BTreeMap<u64, DateTime<Utc>>)> {
        // The map stays consistent whatever panicked while holding it.
        self.until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Unregisters a sleeper when its future ends or is dropped (a `select!` that took another
/// branch).
struct Registration {
    sleepers: Arc<Sleepers>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.sleepers.lock().1.remove(&self.id);
        self.sleepers.changed.notify_waiters();
    }
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            now: tokio::sync::watch::Sender::new(start),
            sleepers: Arc::default(),
        }
    }

    /// What time it is on this clock (also [`Clock::now`], without the trait in scope).
    pub fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        self.now
            .send_modify(|now| *now = now.checked_add_signed(by).unwrap_or(*now));
        self.sleepers.changed.notify_waiters();
    }

    /// Sets the clock to `to` (backwards too: sleepers then wait for the instant again).
    pub fn set(&self, to: DateTime<Utc>) {
        self.now.send_replace(to);
        self.sleepers.changed.notify_waiters();
    }

    /// How many sleepers wait for an instant still ahead of [`Clock::now`]: with one sleeper per
    /// idle daemon task, the daemon has settled when this equals its task count.
    pub fn waiting(&self) -> usize {
        let now = self.now();
        self.sleepers
            .lock()
            .1
            .values()
            .filter(|until| **until > now)
            .count()
    }

    /// Resolves once at least `n` sleepers wait for an instant ahead of now.
    pub async fn until_waiting(&self, n: usize) {
        loop {
            let changed = self.sleepers.changed.notified();
            let mut changed = std::pin::pin!(changed);
            // Registered before the check, so a change between the check and the await is seen.
            changed.as_mut().enable();
            if self.waiting() >= n {
                return;
            }
            changed.await;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        ManualClock::now(self)
    }

    fn sleep_until(&self, until: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let mut now = self.now.subscribe();
        let registration = {
            let mut sleepers = self.sleepers.lock();
            let id = sleepers.0;
            sleepers.0 += 1;
            sleepers.1.insert(id, until);
            Registration {
                sleepers: self.sleepers.clone(),
                id,
            }
        };
        self.sleepers.changed.notify_waiters();
        Box::pin(async move {
            let _registration = registration;
            // The clock is gone: nobody can move time any more.
            if now.wait_for(|now| *now >= until).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, h, m, s)
            .single()
            .expect("valid")
    }

    #[test]
    fn five_fields_fire_on_the_minute_and_six_on_the_second() {
        let hourly = Schedule::parse("0 * * * *").expect("parses");
        assert_eq!(hourly.next_after(at(8, 20, 5)), Some(at(9, 0, 0)));
        assert_eq!(hourly.next_after(at(9, 0, 0)), Some(at(10, 0, 0)));
        let every_10s = Schedule::parse("*/10 * * * * *").expect("parses");
        assert_eq!(every_10s.next_after(at(8, 20, 5)), Some(at(8, 20, 10)));
        assert_eq!(every_10s.next_after(at(8, 20, 10)), Some(at(8, 20, 20)));
    }

    #[test]
    fn the_defaults_parse() {
        let d = crate::config::ScheduleConfig::default();
        for e in [&d.invoices, &d.payments, &d.pay_payments] {
            Schedule::parse(e).expect("default parses");
        }
    }

    #[test]
    fn bad_and_impossible_expressions_are_explained() {
        let e = Schedule::parse("every hour").expect_err("not cron");
        assert!(e.contains("\"every hour\""), "{e}");
        let e = Schedule::parse("0 0 30 2 *").expect_err("never fires");
        assert!(e.contains("never fires"), "{e}");
    }

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_when_their_instant_is_reached() {
        let clock = Arc::new(ManualClock::new(at(8, 0, 0)));
        let early = tokio::spawn(clock.sleep_until(at(8, 0, 10)));
        let late = tokio::spawn(clock.sleep_until(at(8, 1, 0)));
        clock.until_waiting(2).await;
        clock.advance(Duration::from_secs(9));
        tokio::task::yield_now().await;
        assert!(!early.is_finished() && !late.is_finished());
        assert_eq!(clock.waiting(), 2);
        clock.advance(Duration::from_secs(1));
        early.await.expect("woken at 08:00:10");
        assert_eq!(clock.waiting(), 1);
        assert!(!late.is_finished());
        clock.set(at(8, 5, 0));
        late.await.expect("woken by set");
        assert_eq!(clock.waiting(), 0);
        assert_eq!(clock.now(), at(8, 5, 0));
        // An instant already reached does not sleep.
        clock.sleep_until(at(8, 0, 0)).await;
    }

    #[tokio::test]
    async fn a_dropped_sleep_stops_counting_as_waiting() {
        let clock = ManualClock::new(at(8, 0, 0));
        let sleep = clock.sleep_until(at(9, 0, 0));
        assert_eq!(clock.waiting(), 1);
        drop(sleep);
        assert_eq!(clock.waiting(), 0);
    }
}

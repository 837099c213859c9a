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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, h, m, s).single().expect("valid")
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
}

//! Whether, and when, to repeat a request: a pure decision, kept apart from the I/O loop.
//!
//! Retries are where Coupa connectors most often do harm. Blind retries of a POST that creates,
//! or of a PUT that appends a payment, apply it twice when the first attempt timed out after the
//! server had acted; fast retries of a 429 burn the per-second budget that every other task
//! shares. So the rules live here, as one function of (policy, idempotency, outcome, attempt,
//! jitter, now), with no clock and no randomness of its own: every rule has an exact unit test,
//! and the transport loop only sleeps for what [`decide`] returns (the same split as vector's
//! `RetryLogic` and async-stripe's `RequestStrategy`).
//!
//! The choices, and why:
//! - A 429 is retried for every request, safe or not: Coupa refused it before acting on it.
//! - A 5xx, a 408, a timeout or a dropped connection is retried only when repeating cannot
//!   change the outcome ([`Idempotency::Idempotent`]); for an unsafe request the server may have
//!   acted, so the caller gets [`Decision::GiveUp`] and must look before trying again.
//! - A connection that could not be established is retried for every request: nothing was sent.
//! - `Retry-After` is honoured (seconds or HTTP-date), capped so a bogus header cannot park a
//!   run for hours, and not jittered: the shared rate governor spaces out the tasks that were
//!   told to wait for the same instant.
//! - Without `Retry-After`, a 429 waits at least [`THROTTLE_FLOOR`] plus the jittered backoff:
//!   Coupa's window is one second, so coming back sooner only burns the next window's budget.

use std::fmt;
use std::time::{Duration, SystemTime};

/// The shortest delay ever returned: a retry is never immediate, even when `Retry-After` says 0
/// or names an instant already past (clock skew between us and Coupa is common).
pub const MIN_DELAY: Duration = Duration::from_millis(10);

/// The added wait for a 429 that came without `Retry-After`: Coupa counts requests per second,
/// so a retry inside the same second is throttled again.
pub const THROTTLE_FLOOR: Duration = Duration::from_secs(1);

/// Whether repeating a request can change the outcome on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Idempotency {
    /// Repeating it leaves the server as one success would: GET, a PUT that sets fields,
    /// marking a document exported, resolving an integration error.
    Idempotent,
    /// Repeating it may act twice: a POST that creates, a PUT that appends payments.
    Unsafe,
}

/// What one attempt came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Any HTTP answer, with its `Retry-After` if it had a readable one.
    Status {
        status: u16,
        retry_after: Option<RetryAfter>,
    },
    /// No answer within the timeout; the request may have been processed.
    Timeout,
    /// The connection could not be established; the request was never sent.
    Connect,
    /// The connection closed or the body was cut off mid-answer; the request may have been
    /// processed.
    Dropped,
}

/// A `Retry-After` header value (RFC 9110 §10.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: 120`
    Seconds(u64),
    /// `Retry-After: Fri, 31 Dec 1999 23:59:59 GMT`
    At(SystemTime),
}

impl RetryAfter {
    /// Reads delta-seconds or an HTTP-date; anything else (negative, fractional, garbage) is
    /// `None`, and the caller falls back to its own backoff. Delta-seconds too large for a
    /// `u64` saturate (the policy's cap applies later anyway).
    pub fn parse(header: &str) -> Option<RetryAfter> {
        let value = header.trim();
        if value.is_empty() {
            return None;
        }
        if value.bytes().all(|b| b.is_ascii_digit()) {
            return Some(RetryAfter::Seconds(value.parse().unwrap_or(u64::MAX)));
        }
        httpdate::parse_http_date(value).ok().map(RetryAfter::At)
    }

    /// How long from `now` the server asked us to wait; zero for an instant already past.
    /// Uncapped: [`decide`] applies the policy's cap, and the transport may pass this to the
    /// rate governor.
    pub fn delay_from(&self, now: SystemTime) -> Duration {
        match *self {
            RetryAfter::Seconds(secs) => Duration::from_secs(secs),
            RetryAfter::At(at) => at.duration_since(now).unwrap_or(Duration::ZERO),
        }
    }
}

/// How many attempts and how long to wait between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; `1` (or `0`) never retries.
    pub max_attempts: u32,
    /// Backoff before the second attempt (before jitter); doubles per attempt.
    pub base_delay: Duration,
    /// The most the backoff grows to (before jitter).
    pub max_delay: Duration,
    /// The most a server's `Retry-After` can make us wait.
    pub retry_after_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            retry_after_cap: Duration::from_secs(60),
        }
    }
}

/// What to do after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A success, or a final answer to hand to the caller (2xx, 3xx, and 4xx other than 408 and
    /// 429; a 401 re-mint is the caller's business, not a retry).
    Done,
    /// Sleep `after`, then send the request again.
    Retry {
        after: Duration,
        reason: RetryReason,
    },
    /// Retryable in kind, but the attempts are used up or repeating is unsafe.
    GiveUp { reason: RetryReason },
}

/// Why an attempt was retryable in kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetryReason {
    /// 429 Too Many Requests.
    Throttled,
    /// A 5xx that may be transient (not 501 or 505).
    ServerError(u16),
    /// No answer within the client's timeout.
    Timeout,
    /// The connection could not be established.
    Connect,
    /// The connection dropped mid-answer.
    Dropped,
    /// 408 Request Timeout.
    RequestTimeout,
}

impl RetryReason {
    /// A stable, low-cardinality name for metric labels (no status code).
    pub fn label(&self) -> &'static str {
        match self {
            RetryReason::Throttled => "throttled",
            RetryReason::ServerError(_) => "server_error",
            RetryReason::Timeout => "timeout",
            RetryReason::Connect => "connect",
            RetryReason::Dropped => "dropped",
            RetryReason::RequestTimeout => "request_timeout",
        }
    }
}

impl fmt::Display for RetryReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryReason::Throttled => f.write_str("throttled (HTTP 429)"),
            RetryReason::ServerError(status) => write!(f, "server error (HTTP {status})"),
            RetryReason::Timeout => f.write_str("timed out"),
            RetryReason::Connect => f.write_str("could not connect"),
            RetryReason::Dropped => f.write_str("connection dropped"),
            RetryReason::RequestTimeout => f.write_str("request timeout (HTTP 408)"),
        }
    }
}

/// Decides what follows attempt number `attempt` (1 for the first) of a request.
///
/// `jitter` is a number in [0, 1) from the caller (see [`jitter`]), so the function is pure and
/// tests are exact; values outside are clamped and NaN counts as 0.5. `now` is used only to
/// turn an HTTP-date `Retry-After` into a delay.
pub fn decide(
    policy: &RetryPolicy,
    idempotency: Idempotency,
    outcome: &Outcome,
    attempt: u32,
    jitter: f64,
    now: SystemTime,
) -> Decision {
    let idempotent = idempotency == Idempotency::Idempotent;
    let (reason, repeatable, retry_after) = match *outcome {
        Outcome::Status {
            status,
            retry_after,
        } => match status {
            429 => (RetryReason::Throttled, true, retry_after),
            408 => (RetryReason::RequestTimeout, idempotent, retry_after),
            // 501 and 505 say the server cannot do this at all: asking again changes nothing.
            501 | 505 => return Decision::Done,
            500..=599 => (RetryReason::ServerError(status), idempotent, retry_after),
            _ => return Decision::Done,
        },
        Outcome::Timeout => (RetryReason::Timeout, idempotent, None),
        Outcome::Connect => (RetryReason::Connect, true, None),
        Outcome::Dropped => (RetryReason::Dropped, idempotent, None),
    };
    if !repeatable || attempt >= policy.max_attempts {
        return Decision::GiveUp { reason };
    }
    let after = match retry_after {
        Some(retry_after) => retry_after
            .delay_from(now)
            .min(policy.retry_after_cap)
            .max(MIN_DELAY),
        None if reason == RetryReason::Throttled => {
            THROTTLE_FLOOR.saturating_add(backoff(policy, attempt, jitter))
        }
        None => backoff(policy, attempt, jitter),
    };
    Decision::Retry { after, reason }
}

/// The wait after failed attempt number `attempt` (1 for the first): exponential with
/// "equal jitter".
///
/// The un-jittered delay is `base_delay * 2^(attempt - 1)`, capped at `max_delay`; the result
/// is half of it plus `jitter` times the other half, so it lies in [d/2, d). Equal rather than
/// full jitter because full jitter can return almost nothing on any attempt: against a server
/// that is struggling (5xx) we want the wait to really grow, while the random half still keeps
/// tasks that failed together from coming back together. Never below [`MIN_DELAY`].
pub fn backoff(policy: &RetryPolicy, attempt: u32, jitter: f64) -> Duration {
    let doublings = attempt.saturating_sub(1);
    let full = 2u32
        .checked_pow(doublings)
        .and_then(|factor| policy.base_delay.checked_mul(factor))
        .map_or(policy.max_delay, |d| d.min(policy.max_delay));
    let half = full / 2;
    let spread = full - half;
    let jittered = half.saturating_add(spread.mul_f64(clamp_jitter(jitter)));
    jittered.max(MIN_DELAY)
}

fn clamp_jitter(jitter: f64) -> f64 {
    if jitter.is_nan() {
        0.5
    } else {
        jitter.clamp(0.0, 1.0)
    }
}

/// A uniform number in [0, 1) from the operating system's random source, for the I/O loop to
/// pass to [`decide`]. Falls back to 0.5 if the source fails: a retry with a fixed jitter is
/// still a retry.
pub fn jitter() -> f64 {
    match getrandom::u64() {
        // The top 53 bits fill an f64 mantissa exactly, so the result is < 1.
        Ok(bits) => (bits >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::Idempotency::{Idempotent, Unsafe};

    const BOTH: [Idempotency; 2] = [Idempotent, Unsafe];

    fn now() -> SystemTime {
        // A fixed, whole-second instant so HTTP-dates round-trip exactly.
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn status(status: u16) -> Outcome {
        Outcome::Status {
            status,
            retry_after: None,
        }
    }

    fn status_after(status: u16, retry_after: RetryAfter) -> Outcome {
        Outcome::Status {
            status,
            retry_after: Some(retry_after),
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
    }

    fn run(idempotency: Idempotency, outcome: Outcome, attempt: u32) -> Decision {
        decide(&policy(), idempotency, &outcome, attempt, 0.5, now())
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    // ---- defaults ----

    #[test]
    fn default_policy_matches_the_design() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts, 6);
        assert_eq!(p.base_delay, ms(250));
        assert_eq!(p.max_delay, Duration::from_secs(30));
        assert_eq!(p.retry_after_cap, Duration::from_secs(60));
    }

    // ---- final answers ----

    #[test]
    fn success_redirect_and_client_errors_are_done_for_both() {
        for idem in BOTH {
            for code in [
                200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 405, 409, 410, 422,
            ] {
                assert_eq!(
                    run(idem, status(code), 1),
                    Decision::Done,
                    "{code} {idem:?}"
                );
            }
        }
    }

    #[test]
    fn final_answers_are_done_even_with_retry_after() {
        for idem in BOTH {
            let outcome = status_after(400, RetryAfter::Seconds(5));
            assert_eq!(run(idem, outcome, 1), Decision::Done);
        }
    }

    #[test]
    fn final_answers_are_done_on_the_last_attempt() {
        assert_eq!(run(Idempotent, status(200), 6), Decision::Done);
        assert_eq!(run(Unsafe, status(404), 99), Decision::Done);
    }

    #[test]
    fn not_implemented_and_version_not_supported_are_done() {
        for idem in BOTH {
            assert_eq!(run(idem, status(501), 1), Decision::Done);
            assert_eq!(run(idem, status(505), 1), Decision::Done);
        }
    }

    // ---- 429 ----

    #[test]
    fn throttled_without_retry_after_waits_floor_plus_backoff_for_both() {
        for idem in BOTH {
            // attempt 1, jitter 0.5: backoff = 125ms + 62.5ms
            let d = run(idem, status(429), 1);
            assert_eq!(
                d,
                Decision::Retry {
                    after: THROTTLE_FLOOR + Duration::from_micros(187_500),
                    reason: RetryReason::Throttled
                },
                "{idem:?}"
            );
        }
    }

    #[test]
    fn throttled_without_retry_after_never_waits_less_than_a_second() {
        for idem in BOTH {
            for attempt in 1..6 {
                for jitter in [0.0, 0.25, 0.999_999] {
                    match decide(&policy(), idem, &status(429), attempt, jitter, now()) {
                        Decision::Retry { after, reason } => {
                            assert_eq!(reason, RetryReason::Throttled);
                            assert!(after >= THROTTLE_FLOOR, "{after:?}");
                        }
                        other => panic!("expected a retry, got {other:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn throttled_without_retry_after_keeps_growing_and_jittering() {
        let at =
            |attempt, jitter| match decide(&policy(), Unsafe, &status(429), attempt, jitter, now())
            {
                Decision::Retry { after, .. } => after,
                other => panic!("expected a retry, got {other:?}"),
            };
        assert_eq!(at(3, 0.0), THROTTLE_FLOOR + ms(500));
        assert_eq!(at(5, 0.0), THROTTLE_FLOOR + ms(2000));
        assert!(at(1, 0.0) < at(1, 0.9));
    }

    #[test]
    fn throttled_with_retry_after_seconds_waits_exactly_that() {
        for idem in BOTH {
            let d = run(idem, status_after(429, RetryAfter::Seconds(7)), 1);
            assert_eq!(
                d,
                Decision::Retry {
                    after: Duration::from_secs(7),
                    reason: RetryReason::Throttled
                }
            );
        }
    }

    #[test]
    fn throttled_with_retry_after_date_waits_until_then() {
        let at = RetryAfter::At(now() + Duration::from_secs(12));
        for idem in BOTH {
            assert_eq!(
                run(idem, status_after(429, at), 2),
                Decision::Retry {
                    after: Duration::from_secs(12),
                    reason: RetryReason::Throttled
                }
            );
        }
    }

    #[test]
    fn throttled_with_past_date_waits_the_minimum() {
        let at = RetryAfter::At(now() - Duration::from_secs(30));
        assert_eq!(
            run(Unsafe, status_after(429, at), 1),
            Decision::Retry {
                after: MIN_DELAY,
                reason: RetryReason::Throttled
            }
        );
    }

    #[test]
    fn throttled_with_retry_after_zero_waits_the_minimum() {
        assert_eq!(
            run(Idempotent, status_after(429, RetryAfter::Seconds(0)), 1),
            Decision::Retry {
                after: MIN_DELAY,
                reason: RetryReason::Throttled
            }
        );
    }

    #[test]
    fn retry_after_is_capped() {
        let p = policy();
        for ra in [
            RetryAfter::Seconds(3600),
            RetryAfter::Seconds(u64::MAX),
            RetryAfter::At(now() + Duration::from_secs(86_400)),
        ] {
            assert_eq!(
                decide(&p, Unsafe, &status_after(429, ra), 1, 0.5, now()),
                Decision::Retry {
                    after: p.retry_after_cap,
                    reason: RetryReason::Throttled
                },
                "{ra:?}"
            );
        }
    }

    #[test]
    fn garbage_retry_after_falls_back_to_backoff() {
        // The transport maps an unreadable header to None; check that path end to end.
        let parsed = RetryAfter::parse("soon, maybe");
        assert_eq!(parsed, None);
        let outcome = Outcome::Status {
            status: 429,
            retry_after: parsed,
        };
        assert_eq!(
            decide(&policy(), Idempotent, &outcome, 1, 0.0, now()),
            Decision::Retry {
                after: THROTTLE_FLOOR + ms(125),
                reason: RetryReason::Throttled
            }
        );
    }

    #[test]
    fn throttled_gives_up_when_attempts_are_exhausted() {
        for idem in BOTH {
            assert_eq!(
                run(idem, status(429), 6),
                Decision::GiveUp {
                    reason: RetryReason::Throttled
                }
            );
            assert_eq!(
                run(idem, status_after(429, RetryAfter::Seconds(1)), 7),
                Decision::GiveUp {
                    reason: RetryReason::Throttled
                }
            );
        }
    }

    // ---- 5xx ----

    #[test]
    fn server_errors_retry_idempotent_with_backoff() {
        for code in [500, 502, 503, 504] {
            assert_eq!(
                run(Idempotent, status(code), 1),
                Decision::Retry {
                    after: Duration::from_micros(187_500),
                    reason: RetryReason::ServerError(code)
                },
                "{code}"
            );
        }
    }

    #[test]
    fn server_errors_give_up_for_unsafe() {
        for code in [500, 502, 503, 504] {
            assert_eq!(
                run(Unsafe, status(code), 1),
                Decision::GiveUp {
                    reason: RetryReason::ServerError(code)
                },
                "{code}"
            );
        }
    }

    #[test]
    fn unsafe_server_error_gives_up_even_with_retry_after() {
        assert_eq!(
            run(Unsafe, status_after(503, RetryAfter::Seconds(2)), 1),
            Decision::GiveUp {
                reason: RetryReason::ServerError(503)
            }
        );
    }

    #[test]
    fn service_unavailable_honours_retry_after_capped() {
        assert_eq!(
            run(Idempotent, status_after(503, RetryAfter::Seconds(20)), 1),
            Decision::Retry {
                after: Duration::from_secs(20),
                reason: RetryReason::ServerError(503)
            }
        );
        assert_eq!(
            run(
                Idempotent,
                status_after(503, RetryAfter::At(now() + Duration::from_secs(3))),
                1
            ),
            Decision::Retry {
                after: Duration::from_secs(3),
                reason: RetryReason::ServerError(503)
            }
        );
        assert_eq!(
            run(Idempotent, status_after(503, RetryAfter::Seconds(600)), 1),
            Decision::Retry {
                after: Duration::from_secs(60),
                reason: RetryReason::ServerError(503)
            }
        );
    }

    #[test]
    fn server_error_without_retry_after_has_no_throttle_floor() {
        match run(Idempotent, status(500), 1) {
            Decision::Retry { after, .. } => assert!(after < THROTTLE_FLOOR, "{after:?}"),
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    #[test]
    fn server_errors_give_up_when_attempts_are_exhausted() {
        assert_eq!(
            run(Idempotent, status(502), 6),
            Decision::GiveUp {
                reason: RetryReason::ServerError(502)
            }
        );
    }

    // ---- 408 ----

    #[test]
    fn request_timeout_behaves_like_a_server_error() {
        assert_eq!(
            run(Idempotent, status(408), 2),
            Decision::Retry {
                after: Duration::from_micros(375_000),
                reason: RetryReason::RequestTimeout
            }
        );
        assert_eq!(
            run(Unsafe, status(408), 1),
            Decision::GiveUp {
                reason: RetryReason::RequestTimeout
            }
        );
        assert_eq!(
            run(Idempotent, status_after(408, RetryAfter::Seconds(4)), 1),
            Decision::Retry {
                after: Duration::from_secs(4),
                reason: RetryReason::RequestTimeout
            }
        );
        assert_eq!(
            run(Idempotent, status(408), 6),
            Decision::GiveUp {
                reason: RetryReason::RequestTimeout
            }
        );
    }

    // ---- transport failures ----

    #[test]
    fn timeout_retries_idempotent_and_gives_up_unsafe() {
        assert_eq!(
            run(Idempotent, Outcome::Timeout, 1),
            Decision::Retry {
                after: Duration::from_micros(187_500),
                reason: RetryReason::Timeout
            }
        );
        assert_eq!(
            run(Unsafe, Outcome::Timeout, 1),
            Decision::GiveUp {
                reason: RetryReason::Timeout
            }
        );
    }

    #[test]
    fn dropped_retries_idempotent_and_gives_up_unsafe() {
        assert_eq!(
            run(Idempotent, Outcome::Dropped, 3),
            Decision::Retry {
                after: ms(750),
                reason: RetryReason::Dropped
            }
        );
        assert_eq!(
            run(Unsafe, Outcome::Dropped, 1),
            Decision::GiveUp {
                reason: RetryReason::Dropped
            }
        );
    }

    #[test]
    fn connect_retries_for_both() {
        for idem in BOTH {
            assert_eq!(
                run(idem, Outcome::Connect, 1),
                Decision::Retry {
                    after: Duration::from_micros(187_500),
                    reason: RetryReason::Connect
                },
                "{idem:?}"
            );
        }
    }

    #[test]
    fn transport_failures_give_up_when_attempts_are_exhausted() {
        for outcome in [Outcome::Timeout, Outcome::Connect, Outcome::Dropped] {
            for idem in BOTH {
                match run(idem, outcome, 6) {
                    Decision::GiveUp { .. } => {}
                    other => panic!("{outcome:?} {idem:?}: expected give-up, got {other:?}"),
                }
            }
        }
    }

    // ---- attempts ----

    #[test]
    fn the_attempt_before_the_last_still_retries() {
        assert!(matches!(
            run(Idempotent, Outcome::Timeout, 5),
            Decision::Retry { .. }
        ));
        assert!(matches!(
            run(Idempotent, Outcome::Timeout, 6),
            Decision::GiveUp { .. }
        ));
    }

    #[test]
    fn a_single_attempt_policy_never_retries() {
        for max_attempts in [0, 1] {
            let p = RetryPolicy {
                max_attempts,
                ..RetryPolicy::default()
            };
            assert_eq!(
                decide(&p, Idempotent, &Outcome::Connect, 1, 0.5, now()),
                Decision::GiveUp {
                    reason: RetryReason::Connect
                }
            );
        }
    }

    // ---- Retry-After parsing ----

    #[test]
    fn parse_delta_seconds() {
        assert_eq!(RetryAfter::parse("120"), Some(RetryAfter::Seconds(120)));
        assert_eq!(RetryAfter::parse(" 0 "), Some(RetryAfter::Seconds(0)));
        assert_eq!(
            RetryAfter::parse("99999999999999999999999"),
            Some(RetryAfter::Seconds(u64::MAX))
        );
    }

    #[test]
    fn parse_http_dates() {
        let expected = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        for value in [
            "Sun, 06 Nov 1994 08:49:37 GMT",  // IMF-fixdate
            "Sunday, 06-Nov-94 08:49:37 GMT", // RFC 850
            "Sun Nov  6 08:49:37 1994",       // asctime
        ] {
            assert_eq!(
                RetryAfter::parse(value),
                Some(RetryAfter::At(expected)),
                "{value}"
            );
        }
    }

    #[test]
    fn parse_round_trips_a_formatted_date() {
        let at = now() + Duration::from_secs(30);
        let header = httpdate::fmt_http_date(at);
        let parsed = RetryAfter::parse(&header).expect("a formatted date parses");
        assert_eq!(parsed.delay_from(now()), Duration::from_secs(30));
    }

    #[test]
    fn parse_rejects_garbage() {
        for value in [
            "",
            "   ",
            "-5",
            "1.5",
            "+3",
            "5s",
            "soon",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "2024-01-01T00:00:00Z",
        ] {
            assert_eq!(RetryAfter::parse(value), None, "{value:?}");
        }
    }

    #[test]
    fn delay_from_a_past_date_is_zero() {
        let at = RetryAfter::At(now() - Duration::from_secs(1));
        assert_eq!(at.delay_from(now()), Duration::ZERO);
    }

    // ---- backoff ----

    #[test]
    fn backoff_doubles_per_attempt() {
        let p = policy();
        // jitter 0 gives the lower edge, d/2.
        let lower: Vec<Duration> = (1..=6).map(|a| backoff(&p, a, 0.0)).collect();
        assert_eq!(
            lower,
            vec![ms(125), ms(250), ms(500), ms(1000), ms(2000), ms(4000)]
        );
    }

    #[test]
    fn backoff_is_capped_at_max_delay() {
        let p = policy();
        for attempt in [9, 10, 20, 32, 33, 64, u32::MAX] {
            let upper = backoff(&p, attempt, 0.999_999_9);
            assert!(upper <= p.max_delay, "{attempt}: {upper:?}");
            assert!(upper >= p.max_delay - ms(1), "{attempt}: {upper:?}");
            assert_eq!(backoff(&p, attempt, 0.0), p.max_delay / 2, "{attempt}");
        }
    }

    #[test]
    fn backoff_stays_within_the_jitter_bounds() {
        let p = policy();
        for attempt in 1..=12 {
            let full = (p.base_delay * 2u32.pow(attempt - 1)).min(p.max_delay);
            for i in 0..100 {
                let jitter = f64::from(i) / 100.0;
                let d = backoff(&p, attempt, jitter);
                assert!(d >= full / 2, "{attempt} {jitter}: {d:?}");
                assert!(d < full, "{attempt} {jitter}: {d:?}");
            }
        }
    }

    #[test]
    fn backoff_grows_with_jitter() {
        let p = policy();
        assert!(backoff(&p, 2, 0.1) < backoff(&p, 2, 0.2));
        assert_eq!(backoff(&p, 2, 0.5), ms(375));
    }

    #[test]
    fn backoff_clamps_out_of_range_jitter() {
        let p = policy();
        assert_eq!(backoff(&p, 1, -3.0), backoff(&p, 1, 0.0));
        assert_eq!(backoff(&p, 1, 7.0), ms(250));
        assert_eq!(backoff(&p, 1, f64::NAN), backoff(&p, 1, 0.5));
        assert_eq!(backoff(&p, 1, f64::INFINITY), ms(250));
    }

    #[test]
    fn backoff_is_never_zero() {
        let p = RetryPolicy {
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            ..RetryPolicy::default()
        };
        assert_eq!(backoff(&p, 1, 0.0), MIN_DELAY);
        assert_eq!(backoff(&p, 0, 0.0), MIN_DELAY);
    }

    #[test]
    fn attempt_zero_is_treated_like_the_first() {
        let p = policy();
        assert_eq!(backoff(&p, 0, 0.3), backoff(&p, 1, 0.3));
    }

    // ---- reason and jitter source ----

    #[test]
    fn reasons_display_for_logs() {
        assert_eq!(RetryReason::Throttled.to_string(), "throttled (HTTP 429)");
        assert_eq!(
            RetryReason::ServerError(503).to_string(),
            "server error (HTTP 503)"
        );
        assert_eq!(RetryReason::Timeout.to_string(), "timed out");
        assert_eq!(RetryReason::Connect.to_string(), "could not connect");
        assert_eq!(RetryReason::Dropped.to_string(), "connection dropped");
        assert_eq!(
            RetryReason::RequestTimeout.to_string(),
            "request timeout (HTTP 408)"
        );
        assert_eq!(RetryReason::ServerError(502).label(), "server_error");
    }

    #[test]
    fn jitter_is_in_the_unit_interval_and_varies() {
        let draws: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)), "{draws:?}");
        assert!(
            draws.iter().any(|j| (j - draws[0]).abs() > f64::EPSILON),
            "64 identical draws: {draws:?}"
        );
    }
}

//! Every attempt the client makes is reported here, so the connector's logging engine can
//! persist it (the seeds' "record every API response") and metrics can count it. The client
//! never puts a token or secret in an [`Attempt`]: credentials travel in headers and form
//! bodies, which are not reported.

use std::sync::Arc;
use std::time::Duration;

/// Who is calling: set by the flow so a logged call can be traced to its run and document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallContext {
    /// `invoices`, `payments`, `pay-payments`, or empty outside a flow.
    pub flow: String,
    /// The connector's own run id (its state store's), when inside a run.
    pub run: Option<i64>,
    /// The document the call is about, as the flow's journal keys it: `invoice:1042`.
    pub document: Option<String>,
}

/// One attempt of one request.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub context: Arc<CallContext>,
    pub method: String,
    /// Path and query as sent (`/api/invoices?exported=false&...`).
    pub path: String,
    /// 1 for the first attempt of a request.
    pub attempt: u32,
    /// The HTTP status, when an answer came.
    pub status: Option<u16>,
    pub duration: Duration,
    /// Time spent waiting for the rate governor before this attempt.
    pub waited: Duration,
    pub bytes_sent: usize,
    pub bytes_received: usize,
    /// Coupa's error messages, or the transport error, when the attempt failed.
    pub error: Option<String>,
    /// What the client does next: `None` when this attempt ended the request.
    pub retry_in: Option<Duration>,
}

impl Attempt {
    /// `2xx`, `4xx`, ... or `error` when no answer came: the status class used in logs and
    /// metrics.
    pub fn status_class(&self) -> &'static str {
        match self.status {
            Some(200..=299) => "2xx",
            Some(300..=399) => "3xx",
            Some(429) => "429",
            Some(400..=499) => "4xx",
            Some(_) => "5xx",
            None => "error",
        }
    }
}

/// Receives every attempt. Called inline on the request path: keep it cheap (queue, don't
/// write to a database synchronously).
pub trait Observer: Send + Sync {
    fn attempt(&self, attempt: &Attempt);
}

/// Logs each attempt as a `tracing` event (debug for successes, warn for failures).
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingObserver;

impl Observer for TracingObserver {
    fn attempt(&self, a: &Attempt) {
        let ms = a.duration.as_millis() as u64;
        match (&a.error, a.status) {
            (None, _) => tracing::debug!(
                flow = %a.context.flow, method = %a.method, path = %a.path,
                status = a.status, attempt = a.attempt, ms, "coupa call"
            ),
            (Some(err), _) => tracing::warn!(
                flow = %a.context.flow, method = %a.method, path = %a.path,
                status = a.status, attempt = a.attempt, ms,
                retry_in_ms = a.retry_in.map(|d| d.as_millis() as u64),
                error = %err, "coupa call failed"
            ),
        }
    }
}

/// Fans attempts out to several observers.
impl Observer for Vec<Arc<dyn Observer>> {
    fn attempt(&self, attempt: &Attempt) {
        for o in self {
            o.attempt(attempt);
        }
    }
}

/// Keeps every attempt in memory: for tests and the demo's summary.
#[derive(Debug, Default)]
pub struct Recorder {
    attempts: parking_lot::Mutex<Vec<Attempt>>,
}

impl Recorder {
    pub fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().clone()
    }

    pub fn clear(&self) {
        self.attempts.lock().clear();
    }
}

impl Observer for Recorder {
    fn attempt(&self, attempt: &Attempt) {
        self.attempts.lock().push(attempt.clone());
    }
}

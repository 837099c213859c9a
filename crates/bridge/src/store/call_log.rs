//! [`CallLog`]: the client's [`Observer`] that persists every attempt through
//! [`Store::log_calls`] without slowing requests down.
//!
//! The observer runs inline on the request path, so it only converts the attempt and pushes it
//! into an unbounded channel (attempts are rate-limited by the client's governor, so the queue
//! cannot outgrow a few seconds of traffic). One background task takes whatever queues up within
//! a few milliseconds of a call, up to [`MAX_BATCH`], and writes it in one transaction: under
//! load the batches grow by themselves, idle it writes each call shortly after it comes.
//! [`CallLogHandle::flush`] ends the task after everything queued before it has been written.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use coupa_api::observe::{Attempt, Observer};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{CallRecord, Store};
use crate::db;

/// Most calls written in one transaction.
pub const MAX_BATCH: usize = 1_000;
/// How long the first call of a batch waits for others before the batch is written.
const LINGER: Duration = Duration::from_millis(20);
/// Waits before retrying a failed batch write; then the batch is given up (and counted).
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(400),
    Duration::from_millis(1_600),
];

enum Msg {
    Call(CallRecord),
    Flush,
}

/// The observer half: cheap to clone, hand it to the Coupa client.
#[derive(Clone, Debug)]
pub struct CallLog {
    tx: mpsc::UnboundedSender<Msg>,
    dropped: Arc<AtomicU64>,
}

/// The writer half: [`CallLogHandle::flush`] it at the end of a sync.
#[derive(Debug)]
pub struct CallLogHandle {
    tx: mpsc::UnboundedSender<Msg>,
    task: JoinHandle<CallLogStats>,
    dropped: Arc<AtomicU64>,
}

/// What the writer did over its life.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallLogStats {
    /// Calls stored.
    pub written: u64,
    /// Calls whose batch could not be written after retries.
    pub failed: u64,
    /// Calls observed after the flush closed the log (nothing was there to write them).
    pub dropped: u64,
    /// The last write error, if any batch failed.
    pub last_error: Option<String>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Call(c) => f.debug_tuple("Call").field(c).finish(),
            Msg::Flush => f.write_str("Flush"),
        }
    }
}

impl CallLog {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn(store: Store) -> (CallLog, CallLogHandle) {
        let (tx, rx) = mpsc::unbounded_channel();
        let dropped = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(write_loop(store, rx));
        (
            CallLog {
                tx: tx.clone(),
                dropped: Arc::clone(&dropped),
            },
            CallLogHandle { tx, task, dropped },
        )
    }
}

impl Observer for CallLog {
    fn attempt(&self, attempt: &Attempt) {
        if self.tx.send(Msg::Call(record(attempt))).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                method = %attempt.method, path = %attempt.path,
                "API call observed after the call log was flushed; not stored"
            );
        }
    }
}

impl CallLogHandle {
    /// Writes everything observed so far, stops the writer and says what it did. Attempts
    /// observed afterwards are not stored: each is reported as a `tracing` warning (and counted
    /// in `dropped` while the flush is still running).
    pub async fn flush(self) -> CallLogStats {
        // If the task is gone the send fails; joining still reports what it did.
        let _ = self.tx.send(Msg::Flush);
        drop(self.tx);
        let mut stats = match self.task.await {
            Ok(stats) => stats,
            Err(e) => CallLogStats {
                last_error: Some(format!("call log writer ended abnormally: {e}")),
                ..CallLogStats::default()
            },
        };
        stats.dropped = self.dropped.load(Ordering::Relaxed);
        stats
    }
}

/// The stored form of an attempt. `at` is when the attempt started (observers are called when
/// it ends).
pub fn record(a: &Attempt) -> CallRecord {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let started = Utc::now() - chrono::Duration::from_std(a.duration).unwrap_or_default();
    CallRecord {
        at: db::truncate_micros(started),
        flow: a.context.flow.clone(),
        run: a.context.run,
        document: a.context.document.clone(),
        method: a.method.clone(),
        path: a.path.clone(),
        status: a.status,
        duration_ms: ms(a.duration),
        waited_ms: ms(a.waited),
        attempt: a.attempt,
        bytes_sent: a.bytes_sent as u64,
        bytes_received: a.bytes_received as u64,
        error: a.error.clone(),
    }
}

async fn write_loop(store: Store, mut rx: mpsc::UnboundedReceiver<Msg>) -> CallLogStats {
    let mut stats = CallLogStats::default();
    let mut batch = Vec::new();
    loop {
        let mut flushing = match rx.recv().await {
            Some(Msg::Call(c)) => {
                batch.push(c);
                false
            }
            Some(Msg::Flush) => true,
            // Every sender is gone (handle dropped without flush, observers dropped).
            None => break,
        };
        // Let the calls of the next few milliseconds join this one: under load one transaction
        // then carries dozens of calls instead of a few, and leaves the state store's write
        // lock to the journal. A flush (or a full batch) writes at once.
        let until = tokio::time::Instant::now() + LINGER;
        while !flushing && batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(Msg::Call(c))) => batch.push(c),
                Ok(Some(Msg::Flush)) => flushing = true,
                Ok(None) | Err(_) => break,
            }
        }
        write(&store, &mut batch, &mut stats).await;
        if flushing {
            break;
        }
    }
    // Refuse new calls, then write what raced in before the refusal.
    rx.close();
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Call(c) = msg {
            batch.push(c);
            if batch.len() >= MAX_BATCH {
                write(&store, &mut batch, &mut stats).await;
            }
        }
    }
    write(&store, &mut batch, &mut stats).await;
    stats
}

async fn write(store: &Store, batch: &mut Vec<CallRecord>, stats: &mut CallLogStats) {
    if batch.is_empty() {
        return;
    }
    let mut delays = RETRY_DELAYS.iter();
    loop {
        match store.log_calls(batch).await {
            Ok(()) => {
                stats.written += batch.len() as u64;
                break;
            }
            Err(e) => match delays.next() {
                Some(delay) => tokio::time::sleep(*delay).await,
                None => {
                    tracing::warn!(calls = batch.len(), error = %e, "API calls not logged");
                    stats.failed += batch.len() as u64;
                    stats.last_error = Some(e.to_string());
                    break;
                }
            },
        }
    }
    batch.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use coupa_api::observe::CallContext;

    fn attempt(i: u32) -> Attempt {
        Attempt {
            context: Arc::new(CallContext {
                flow: "invoices".into(),
                run: Some(3),
                document: Some(format!("invoice {i}")),
            }),
            method: "PUT".into(),
            path: format!("/api/invoices/{i}"),
            attempt: 1,
            status: Some(200),
            duration: Duration::from_millis(25),
            waited: Duration::from_millis(4),
            bytes_sent: 10,
            bytes_received: 20,
            error: None,
            retry_in: None,
        }
    }

    #[test]
    fn record_copies_the_attempt() {
        let r = record(&attempt(7));
        assert_eq!(r.document.as_deref(), Some("invoice 7"));
        assert_eq!((r.duration_ms, r.waited_ms, r.bytes_received), (25, 4, 20));
        assert!(r.at <= Utc::now());
    }

    #[tokio::test]
    async fn flush_writes_everything_and_later_calls_are_counted() {
        let store = Store::connect("sqlite::memory:")
            .await
            .expect("in-memory store");
        let (log, handle) = CallLog::spawn(store.clone());
        for i in 0..50 {
            log.attempt(&attempt(i));
        }
        let stats = handle.flush().await;
        assert_eq!((stats.written, stats.failed, stats.dropped), (50, 0, 0));
        log.attempt(&attempt(99));
        let stored = store
            .calls(&crate::store::CallFilter {
                limit: 1_000,
                ..Default::default()
            })
            .await
            .expect("list");
        assert_eq!(stored.len(), 50);
    }
}

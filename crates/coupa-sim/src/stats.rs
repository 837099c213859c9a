//! What the simulator served: calls per endpoint and status, 429s, injected faults. Tests and
//! benchmarks read it through the admin API to count a connector's calls from the server side.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Stats {
    endpoints: parking_lot::Mutex<BTreeMap<String, EndpointStats>>,
    throttled: AtomicU64,
    faults: AtomicU64,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct EndpointStats {
    pub calls: u64,
    pub by_status: BTreeMap<u16, u64>,
}

impl Stats {
    /// Records one answered call; `endpoint` is `"GET /api/invoices/{id}"`.
    pub fn record(&self, endpoint: String, status: u16) {
        let mut map = self.endpoints.lock();
        let e = map.entry(endpoint).or_default();
        e.calls += 1;
        *e.by_status.entry(status).or_default() += 1;
    }

    pub fn record_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_fault(&self) {
        self.faults.fetch_add(1, Ordering::Relaxed);
    }

    pub fn endpoint(&self, endpoint: &str) -> EndpointStats {
        self.endpoints
            .lock()
            .get(endpoint)
            .cloned()
            .unwrap_or_default()
    }

    /// Calls over every endpoint.
    pub fn total_calls(&self) -> u64 {
        self.endpoints.lock().values().map(|e| e.calls).sum()
    }

    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    pub fn faults(&self) -> u64 {
        self.faults.load(Ordering::Relaxed)
    }

    pub fn reset(&self) {
        self.endpoints.lock().clear();
        self.throttled.store(0, Ordering::Relaxed);
        self.faults.store(0, Ordering::Relaxed);
    }

    /// `{"total_calls":..,"throttled":..,"faults":..,"endpoints":{"GET /api/invoices":{"calls":..,"by_status":{"200":..}}}}`
    pub fn to_json(&self) -> serde_json::Value {
        let endpoints: serde_json::Map<String, serde_json::Value> = self
            .endpoints
            .lock()
            .iter()
            .map(|(k, e)| {
                let by_status: serde_json::Map<String, serde_json::Value> = e
                    .by_status
                    .iter()
                    .map(|(s, n)| (s.to_string(), (*n).into()))
                    .collect();
                (
                    k.clone(),
                    serde_json::json!({ "calls": e.calls, "by_status": by_status }),
                )
            })
            .collect();
        serde_json::json!({
            "total_calls": self.total_calls(),
            "throttled": self.throttled(),
            "faults": self.faults(),
            "endpoints": endpoints,
        })
    }
}

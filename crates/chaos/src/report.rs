//! The figures of a run and their printing: one line per figure and per violation, or one JSON
//! object.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use coupa_chaos::invariants::{
    Activity, Baseline, ErpSnapshot, PAY_STATUSES, SimSnapshot, Violation,
};
use coupa_doc::Value;
use serde::Serialize;

use crate::Args;
use crate::workers::Tally;

/// Violations of one invariant printed in full; the rest are counted.
const SHOWN_PER_INVARIANT: usize = 25;

#[derive(Debug, Serialize)]
pub struct InvoiceFigures {
    /// Eligible when the run began (approved or voided, not exported).
    pub eligible: usize,
    /// Of those, exported in Coupa at the end.
    pub exported: usize,
    /// Rows in the ERP.
    pub posted: usize,
    /// Approved, exported, not in the ERP, with an unresolved integration error.
    pub rejected: usize,
    pub voided: usize,
    /// Export resets a clerk made.
    pub resets: usize,
}

#[derive(Debug, Serialize)]
pub struct PaymentFigures {
    pub recorded: usize,
    pub synced: usize,
    pub failed: usize,
    pub pending: usize,
    pub transport: &'static str,
}

#[derive(Debug, Serialize)]
pub struct PayFigures {
    /// Rows the ERP booked.
    pub booked: usize,
    /// Status changes Coupa Pay made during the chaos.
    pub status_changes: usize,
    /// Of the ERP's rows, those with an eligible status at the end.
    pub completed: usize,
}

#[derive(Debug, Serialize)]
pub struct Figures {
    pub seed: u64,
    pub duration_secs: u64,
    pub replicas: usize,
    pub backend: &'static str,
    pub sabotage: Option<&'static str>,
    pub sabotage_compiled: bool,
    pub invoices: InvoiceFigures,
    pub payments: PaymentFigures,
    pub pay_payments: PayFigures,
    pub kills: u64,
    pub kills_skipped: u64,
    pub failpoint_crashes: u64,
    pub sabotage_crashes: u64,
    pub restarts: u64,
    pub unexpected_exits: usize,
    /// Faults the simulator served, by kind.
    pub faults: BTreeMap<String, u64>,
    pub faults_total: u64,
    /// 429s the simulator answered: its rate limit's and the injected ones.
    pub throttled: u64,
    pub injected_429s: u64,
    pub api_calls: u64,
    /// State-store runs (passes) of every flow, and those a killed process left unfinished.
    pub store_runs: usize,
    pub store_runs_unfinished: usize,
    pub activity_errors: Vec<String>,
    pub chaos_secs: f64,
    pub settle_secs: f64,
    pub elapsed_secs: f64,
    pub folder: String,
    pub databases: Vec<String>,
    pub databases_dropped: bool,
}

/// What the figures are made of.
pub struct Inputs<'a> {
    pub args: &'a Args,
    pub base: &'a Baseline,
    pub sim: &'a SimSnapshot,
    pub erp: &'a ErpSnapshot,
    pub activity: &'a Activity,
    pub tally: &'a Tally,
    pub stats: &'a coupa_sim::stats::Stats,
    pub faults: &'a BTreeMap<String, u64>,
    pub activity_errors: &'a [String],
    pub runs: &'a [coupa_bridge::store::RunRecord],
    pub chaos_secs: f64,
    pub settle_secs: f64,
    pub began: Instant,
    pub dir: &'a Path,
}

impl Figures {
    pub fn gather(i: Inputs<'_>) -> Figures {
        let exported =
            |o: &coupa_doc::Object| o.get("exported").and_then(Value::as_bool) == Some(true);
        let status = |o: &coupa_doc::Object| {
            o.get("status")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let in_erp: std::collections::BTreeSet<i64> =
            i.erp.invoices.iter().map(|r| r.coupa_invoice_id).collect();
        let mut inv = InvoiceFigures {
            eligible: i.base.eligible.len(),
            exported: 0,
            posted: i.erp.invoices.len(),
            rejected: 0,
            voided: 0,
            resets: i.activity.resets.values().sum(),
        };
        for id in i.base.eligible.keys() {
            let Some(o) = i.sim.invoices.get(id) else {
                continue;
            };
            if !exported(o) {
                continue;
            }
            inv.exported += 1;
            match status(o).as_str() {
                "voided" => inv.voided += 1,
                "approved" if !in_erp.contains(id) => inv.rejected += 1,
                _ => {}
            }
        }
        let count = |s: &str| i.erp.payments.iter().filter(|p| p.sync_status == s).count();
        let faults_total = i.stats.faults();
        let injected_429s = ["429", "429-retry-after"]
            .iter()
            .filter_map(|k| i.faults.get(*k))
            .sum();
        Figures {
            seed: i.args.seed,
            duration_secs: i.args.duration,
            replicas: i.args.replicas,
            backend: if i.args.pg.is_some() {
                "postgres"
            } else {
                "sqlite"
            },
            sabotage: i.args.sabotage.map(crate::SabotageArg::as_str),
            sabotage_compiled: coupa_bridge::SABOTAGE_COMPILED,
            invoices: inv,
            payments: PaymentFigures {
                recorded: i.erp.payments.len(),
                synced: count("synced"),
                failed: count("failed"),
                pending: count("pending"),
                transport: match i.args.transport {
                    crate::TransportArg::Api => "api",
                    crate::TransportArg::Csv => "csv",
                },
            },
            pay_payments: PayFigures {
                booked: i.erp.pay_payments.len(),
                status_changes: i.activity.pay_changes.values().sum(),
                completed: i
                    .erp
                    .pay_payments
                    .iter()
                    .filter(|p| PAY_STATUSES.contains(&p.status.as_str()))
                    .count(),
            },
            kills: i.tally.kills,
            kills_skipped: i.tally.kills_skipped,
            failpoint_crashes: i.tally.failpoint_crashes,
            sabotage_crashes: i.tally.sabotage_crashes,
            restarts: i.tally.restarts,
            unexpected_exits: i.tally.unexpected.len(),
            faults: i.faults.clone(),
            faults_total,
            throttled: i.stats.throttled(),
            injected_429s,
            api_calls: i.stats.total_calls(),
            store_runs: i.runs.len(),
            store_runs_unfinished: i.runs.iter().filter(|r| r.finished_at.is_none()).count(),
            activity_errors: i.activity_errors.to_vec(),
            chaos_secs: i.chaos_secs,
            settle_secs: i.settle_secs,
            elapsed_secs: i.began.elapsed().as_secs_f64(),
            folder: i.dir.display().to_string(),
            databases: Vec::new(),
            databases_dropped: false,
        }
    }
}

pub struct Outcome {
    pub figures: Figures,
    pub violations: Vec<Violation>,
}

impl Outcome {
    /// The violations to show: every one up to [`SHOWN_PER_INVARIANT`] per invariant, then a
    /// line counting the rest.
    fn shown(&self) -> Vec<String> {
        let mut per: BTreeMap<&str, usize> = BTreeMap::new();
        let mut out = Vec::new();
        for v in &self.violations {
            let n = per.entry(v.invariant).or_default();
            *n += 1;
            if *n <= SHOWN_PER_INVARIANT {
                out.push(v.to_string());
            }
        }
        for (invariant, n) in per {
            if n > SHOWN_PER_INVARIANT {
                out.push(format!(
                    "{invariant}: ... and {} more",
                    n - SHOWN_PER_INVARIANT
                ));
            }
        }
        out
    }

    pub fn print(&self, json: bool) {
        if json {
            let mut value = serde_json::to_value(&self.figures).unwrap_or_default();
            if let Some(map) = value.as_object_mut() {
                map.insert(
                    "violation_count".into(),
                    serde_json::Value::from(self.violations.len()),
                );
                map.insert("violations".into(), serde_json::Value::from(self.shown()));
            }
            println!("{value}");
            return;
        }
        let f = &self.figures;
        println!("coupa-chaos: seed {}", f.seed);
        println!(
            "  chaos                 {:.1}s (asked {}s), settled in {:.1}s, {:.1}s in all",
            f.chaos_secs, f.duration_secs, f.settle_secs, f.elapsed_secs
        );
        println!(
            "  replicas              {} on {}, payments by {}",
            f.replicas, f.backend, f.payments.transport
        );
        println!(
            "  sabotage              {} (compiled in: {})",
            f.sabotage.unwrap_or("none"),
            if f.sabotage_compiled { "yes" } else { "no" }
        );
        let i = &f.invoices;
        println!(
            "  invoices              {} eligible, {} exported: {} in the ERP, {} rejected, {} voided; {} export resets",
            i.eligible, i.exported, i.posted, i.rejected, i.voided, i.resets
        );
        let p = &f.payments;
        println!(
            "  ERP payments          {} recorded: {} synced, {} failed, {} pending",
            p.recorded, p.synced, p.failed, p.pending
        );
        println!(
            "  Coupa Pay             {} booked ({} completed at the end), {} status changes",
            f.pay_payments.booked, f.pay_payments.completed, f.pay_payments.status_changes
        );
        println!(
            "  workers               {} SIGKILLs ({} planned while down), {} failpoint crashes, {} sabotage crashes, {} restarts, {} unexpected exits",
            f.kills,
            f.kills_skipped,
            f.failpoint_crashes,
            f.sabotage_crashes,
            f.restarts,
            f.unexpected_exits
        );
        let kinds: Vec<String> = f.faults.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!(
            "  faults served         {} ({})",
            f.faults_total,
            kinds.join(", ")
        );
        println!(
            "  429s                  {} ({} injected)",
            f.throttled, f.injected_429s
        );
        println!("  API calls             {}", f.api_calls);
        println!(
            "  passes                {} runs in the state store ({} left unfinished by kills)",
            f.store_runs, f.store_runs_unfinished
        );
        for e in &f.activity_errors {
            println!("  activity skipped      {e}");
        }
        println!("  folder                {}", f.folder);
        if !f.databases.is_empty() {
            println!(
                "  databases             {}{}",
                f.databases.join(", "),
                if f.databases_dropped {
                    " (dropped)"
                } else {
                    " (kept)"
                }
            );
        }
        println!("  violations            {}", self.violations.len());
        for line in self.shown() {
            println!("    {line}");
        }
    }
}

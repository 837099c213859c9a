//! `coupa-bridge doctor`: every thing a first sync needs, checked one at a time, each with a
//! verdict a person can act on.
//!
//! The checks run in the order a first hour meets them: the configuration, then Coupa (`coupa`:
//! the instance answers, a token, each enabled flow's scopes by the read calls it makes, the
//! invoice custom fields, the Integrations and their contacts), then what is local to the
//! connector (`local`: Coupa's SFTP server for the CSV transport, the ERP, the state store). A
//! check whose premise failed (no token, so no scopes) is skipped, saying why. Nothing is
//! written anywhere unless `fix` is set, and then only what coupa-bridge may create itself:
//! the Integration records and the ERP's schema.

mod coupa;
mod local;

use std::io::Write;
use std::path::Path;

use crate::config::{Config, LoadedConfig};

/// A check's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Works, but deserves a look (a deprecated API key).
    Warn,
    /// Was missing and `--fix` created it.
    Fixed,
    Fail,
    /// Not checked: the flow is disabled, or a check it rests on failed.
    Skip,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fixed => "FIXED",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// `config`, `token`, `scopes: invoices`, `integration: ERP-INVOICES`...
    pub name: String,
    pub verdict: Verdict,
    /// What was found.
    pub found: String,
    /// What to do, for a failure (and for a warning, when there is something to do).
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(name: impl Into<String>, found: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            verdict: Verdict::Pass,
            found: found.into(),
            fix: None,
        }
    }

    pub fn fail(
        name: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name: name.into(),
            verdict: Verdict::Fail,
            found: found.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn skip(name: impl Into<String>, why: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            verdict: Verdict::Skip,
            found: why.into(),
            fix: None,
        }
    }

    fn with_verdict(mut self, verdict: Verdict) -> Check {
        self.verdict = verdict;
        self
    }

    /// The line printed: verdict, name, what was found, and the fix.
    pub fn line(&self) -> String {
        let mut line = format!("{:<5} {}: {}", self.verdict.label(), self.name, self.found);
        if let Some(fix) = &self.fix {
            line.push_str(" -> fix: ");
            line.push_str(fix);
        }
        line
    }
}

/// What `doctor` was asked.
#[derive(Clone, Debug)]
pub struct Options<'a> {
    pub config: &'a Path,
    pub tenant: Option<&'a str>,
    /// Create the missing Integrations and the ERP's schema.
    pub fix: bool,
}

/// Every check, each written to `out` as it ends; the checks, for the exit status.
pub async fn examine(
    options: &Options<'_>,
    env: impl IntoIterator<Item = (String, String)>,
    out: &mut impl Write,
) -> std::io::Result<Vec<Check>> {
    let mut checks = Vec::new();
    let mut say = |check: Check, out: &mut dyn Write| -> std::io::Result<()> {
        writeln!(out, "{}", check.line())?;
        checks.push(check);
        Ok(())
    };
    let loaded = match Config::load_tenant(options.config, env, options.tenant) {
        Ok(loaded) => loaded,
        Err(e) => {
            say(
                Check::fail(
                    "config",
                    format!("{}: {e}", options.config.display()),
                    "correct the lines named (`coupa-bridge config check` prints every \
                     effective value; `coupa-bridge init` writes a new file)",
                ),
                out,
            )?;
            say(
                Check::skip("everything else", "needs a valid configuration"),
                out,
            )?;
            return Ok(checks);
        }
    };
    for check in config_checks(options.config, &loaded) {
        say(check, out)?;
    }
    let config = loaded.config;
    for check in coupa::checks(&config, options.fix).await {
        say(check, out)?;
    }
    for check in local::checks(&config, options.fix).await {
        say(check, out)?;
    }
    Ok(checks)
}

/// The configuration loaded: one pass line, then one warning line per warning.
fn config_checks(path: &Path, loaded: &LoadedConfig) -> Vec<Check> {
    let flows: Vec<&str> = loaded
        .config
        .enabled_flows()
        .iter()
        .map(|f| f.as_str())
        .collect();
    let file = if path.exists() {
        path.display().to_string()
    } else {
        format!("{} not found, environment and defaults", path.display())
    };
    let mut checks = vec![Check::pass(
        "config",
        format!(
            "{file}: valid; flows enabled: {}",
            if flows.is_empty() {
                "none".to_owned()
            } else {
                flows.join(", ")
            }
        ),
    )];
    for warning in &loaded.warnings {
        let (key, said) = warning.split_once(": ").unwrap_or(("config", warning));
        checks.push(Check {
            name: format!("config: {key}"),
            verdict: Verdict::Warn,
            found: said.to_owned(),
            fix: None,
        });
    }
    checks
}

/// The summary line and the exit status: 0 only when no check failed.
pub fn summary(checks: &[Check]) -> (String, bool) {
    let count = |v: Verdict| checks.iter().filter(|c| c.verdict == v).count();
    let failed = count(Verdict::Fail);
    let mut parts = vec![format!("{} passed", count(Verdict::Pass))];
    for (v, word) in [
        (Verdict::Fixed, "fixed"),
        (Verdict::Warn, "warning(s)"),
        (Verdict::Skip, "skipped"),
        (Verdict::Fail, "failed"),
    ] {
        let n = count(v);
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    let verdict = if failed == 0 {
        "ready: next, `coupa-bridge sync all --dry-run`"
    } else {
        "fix what failed and run `coupa-bridge doctor` again"
    };
    (
        format!("doctor: {}; {verdict}", parts.join(", ")),
        failed == 0,
    )
}

//! The connector processes: started, SIGKILLed, restarted (some with a crash point armed),
//! reaped, and stopped with SIGTERM at the end.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};

const SIGABRT: i32 = 6;

struct Worker {
    child: Option<Child>,
    starts: u32,
    /// The failpoints the running process has armed.
    armed: Option<String>,
    /// When a stopped worker starts again, and with which failpoint.
    restart: Option<(Instant, Option<String>)>,
}

/// What happened to the workers, for the figures.
#[derive(Debug, Default)]
pub struct Tally {
    pub kills: u64,
    /// Kills planned while their worker was down.
    pub kills_skipped: u64,
    pub failpoint_crashes: u64,
    pub sabotage_crashes: u64,
    pub restarts: u64,
    /// Exits nobody caused: each is a violation.
    pub unexpected: Vec<String>,
    /// Every instant a worker died (killed, crashed or exited), for the runs' overlap check.
    pub deaths: Vec<DateTime<Utc>>,
}

pub struct Pool {
    exe: PathBuf,
    config: PathBuf,
    dir: PathBuf,
    env: Vec<(String, String)>,
    workers: Vec<Worker>,
    /// `COUPA_BRIDGE_SABOTAGE`, when set.
    sabotage: Option<String>,
    /// A failpoint every start arms (the sabotage's), while the chaos lasts.
    pub arm_every_start: Option<String>,
    pub tally: Tally,
}

impl Pool {
    pub fn new(
        replicas: usize,
        config: &Path,
        dir: &Path,
        env: Vec<(String, String)>,
        sabotage: Option<String>,
    ) -> anyhow::Result<Pool> {
        Ok(Pool {
            exe: std::env::current_exe().context("cannot find this program to start workers")?,
            config: config.to_owned(),
            dir: dir.to_owned(),
            env,
            workers: (0..replicas)
                .map(|_| Worker {
                    child: None,
                    starts: 0,
                    armed: None,
                    restart: None,
                })
                .collect(),
            sabotage,
            arm_every_start: None,
            tally: Tally::default(),
        })
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("worker-{i}.log"))
    }

    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.workers.len() {
            self.start(i, None)?;
        }
        Ok(())
    }

    fn start(&mut self, i: usize, failpoint: Option<String>) -> anyhow::Result<()> {
        let armed: Vec<String> = failpoint
            .into_iter()
            .chain(self.arm_every_start.clone())
            .collect();
        let armed = (!armed.is_empty()).then(|| armed.join(","));
        let log = self.log_path(i);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let w = &mut self.workers[i];
        w.starts += 1;
        writeln!(
            file,
            "--- coupa-chaos: start {} of worker {i} at {}{} ---",
            w.starts,
            Utc::now().to_rfc3339(),
            armed
                .as_deref()
                .map(|a| format!(", failpoints {a}"))
                .unwrap_or_default()
        )
        .with_context(|| format!("cannot write {}", log.display()))?;
        let mut cmd = Command::new(&self.exe);
        cmd.args(["worker", "run", "--config"])
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove(coupa_bridge::failpoint::ENV)
            .env_remove("COUPA_BRIDGE_SABOTAGE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        if let Some(a) = &armed {
            cmd.env(coupa_bridge::failpoint::ENV, a);
        }
        if let Some(s) = &self.sabotage {
            cmd.env("COUPA_BRIDGE_SABOTAGE", s);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start worker {i}"))?;
        w.child = Some(child);
        w.armed = armed;
        w.restart = None;
        if w.starts > 1 {
            self.tally.restarts += 1;
        }
        Ok(())
    }

    /// SIGKILLs worker `i` if it is up, and plans its restart.
    pub fn kill(
        &mut self,
        i: usize,
        restart_after: Duration,
        failpoint: Option<String>,
    ) -> anyhow::Result<()> {
        self.reap()?;
        let Some(w) = self.workers.get_mut(i) else {
            return Ok(());
        };
        let Some(mut child) = w.child.take() else {
            self.tally.kills_skipped += 1;
            return Ok(());
        };
        self.tally.deaths.push(Utc::now());
        child
            .kill()
            .with_context(|| format!("cannot SIGKILL worker {i}"))?;
        child
            .wait()
            .with_context(|| format!("cannot reap worker {i}"))?;
        self.tally.kills += 1;
        w.restart = Some((Instant::now() + restart_after, failpoint));
        Ok(())
    }

    /// Reaps the workers that ended by themselves, then starts those due.
    pub fn poll(&mut self) -> anyhow::Result<()> {
        self.reap()?;
        let now = Instant::now();
        for i in 0..self.workers.len() {
            let due = match &self.workers[i].restart {
                Some((at, _)) => *at <= now,
                None => false,
            };
            if due {
                let failpoint = self.workers[i].restart.take().and_then(|(_, f)| f);
                self.start(i, failpoint)?;
            }
        }
        Ok(())
    }

    /// Starts every stopped worker now, without failpoints.
    pub fn restart_stopped_now(&mut self) -> anyhow::Result<()> {
        self.reap()?;
        for i in 0..self.workers.len() {
            if self.workers[i].child.is_none() {
                self.start(i, None)?;
            }
        }
        Ok(())
    }

    fn reap(&mut self) -> anyhow::Result<()> {
        for i in 0..self.workers.len() {
            let exited = match &mut self.workers[i].child {
                Some(child) => child
                    .try_wait()
                    .with_context(|| format!("cannot wait for worker {i}"))?,
                None => None,
            };
            if let Some(status) = exited {
                self.exited(i, status);
            }
        }
        Ok(())
    }

    fn exited(&mut self, i: usize, status: ExitStatus) {
        self.tally.deaths.push(Utc::now());
        let log = self.log_path(i);
        let w = &mut self.workers[i];
        w.child = None;
        let armed = w.armed.take();
        let delay = if status.signal() == Some(SIGABRT) && armed.is_some() {
            // A sabotaged run arms no other failpoint (see `PlanSettings::failpoints`).
            if armed
                .as_deref()
                .is_some_and(|a| a.contains(crate::harness::SABOTAGE_FAILPOINT))
            {
                self.tally.sabotage_crashes += 1;
            } else {
                self.tally.failpoint_crashes += 1;
            }
            Duration::from_millis(200)
        } else {
            self.tally.unexpected.push(format!(
                "worker {i} exited by itself ({status}); see {}",
                log.display()
            ));
            Duration::from_secs(1)
        };
        w.restart = Some((Instant::now() + delay, None));
    }

    /// SIGTERM to every worker, then waits for each to end; what went wrong, one line each.
    pub async fn stop_all(&mut self, grace: Duration) -> anyhow::Result<Vec<String>> {
        self.reap()?;
        let mut problems = Vec::new();
        for (i, w) in self.workers.iter_mut().enumerate() {
            w.restart = None;
            if let Some(child) = &w.child {
                let sent = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                if !sent.is_ok_and(|s| s.success()) {
                    problems.push(format!("could not send SIGTERM to worker {i}"));
                }
            }
        }
        let deadline = Instant::now() + grace;
        for i in 0..self.workers.len() {
            let log = self.log_path(i);
            let Some(mut child) = self.workers[i].child.take() else {
                continue;
            };
            loop {
                if let Some(status) = child
                    .try_wait()
                    .with_context(|| format!("cannot wait for worker {i}"))?
                {
                    if !status.success() {
                        problems.push(format!(
                            "worker {i} ended with {status} after SIGTERM; see {}",
                            log.display()
                        ));
                    }
                    break;
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    problems.push(format!(
                        "worker {i} did not stop within {}s of SIGTERM; see {}",
                        grace.as_secs(),
                        log.display()
                    ));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(problems)
    }

    /// SIGKILLs whatever still runs (on a harness error).
    pub fn abort_all(&mut self) {
        for w in &mut self.workers {
            if let Some(mut child) = w.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.abort_all();
    }
}

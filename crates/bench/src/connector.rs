//! The connector under measurement: a process of its own (this binary's `worker` command, which
//! is exactly `coupa-bridge`), so its memory is not the simulator's. It reports its own peak
//! resident set as it exits, which is exact where sampling `/proc` from outside would miss the
//! last instants.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use coupa_sim::config::DEFAULT_CLIENT_SECRET;

/// Where a worker writes its peak RSS (kilobytes) when it exits.
const RSS_FILE_ENV: &str = "COUPA_BENCH_RSS_FILE";

/// `coupa-bench worker <args>`: `coupa-bridge <args>`, then the peak RSS into the file
/// [`RSS_FILE_ENV`] names.
pub fn worker(args: impl Iterator<Item = OsString>) -> ExitCode {
    let code =
        coupa_bridge::cli::main_with(std::iter::once(OsString::from("coupa-bridge")).chain(args));
    if let Some(path) = std::env::var_os(RSS_FILE_ENV) {
        let kb = peak_rss_kb().unwrap_or(0);
        if let Err(e) = std::fs::write(&path, kb.to_string()) {
            eprintln!("coupa-bench worker: cannot write {}: {e}", path.display());
        }
    }
    code
}

/// This process's peak resident set in kB: `VmHWM`, the high-water mark of its own memory.
/// (`getrusage`'s `ru_maxrss` would not do: Linux carries the parent's resident set at `fork`
/// into it, and the parent here holds the simulator.)
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A connector process started by [`start`].
pub struct Running {
    child: Child,
    started: Instant,
    rss_file: PathBuf,
    log: PathBuf,
}

/// How a connector process ended.
#[derive(Debug)]
pub struct Ended {
    pub code: Option<i32>,
    pub wall: Duration,
    /// Peak resident set, bytes.
    pub peak_rss: u64,
}

/// Starts `coupa-bridge <args> --config <config>`, its log in `dir/<name>.log`.
pub fn start(dir: &Path, name: &str, args: &[&str], config: &Path) -> anyhow::Result<Running> {
    let rss_file = dir.join(format!("{name}.rss"));
    let log = dir.join(format!("{name}.log"));
    let _ = std::fs::remove_file(&rss_file);
    let log_file =
        std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let exe = std::env::current_exe().context("cannot find this program to start the connector")?;
    // `COUPA_BENCH_WRAP="perf record -g -o FILE"` (or heaptrack, strace -c ...) profiles the
    // connector process.
    let wrap = std::env::var("COUPA_BENCH_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace();
    let mut command = match words.next() {
        Some(tool) => {
            let mut c = Command::new(tool);
            c.args(words).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let started = Instant::now();
    let child = command
        .arg("worker")
        .args(args)
        .arg("--config")
        .arg(config)
        .env("COUPA_BRIDGE__COUPA__CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
        .env(RSS_FILE_ENV, &rss_file)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .context("cannot start the connector")?;
    Ok(Running {
        child,
        started,
        rss_file,
        log,
    })
}

impl Running {
    /// Waits for the process to end on its own.
    pub async fn wait(mut self) -> anyhow::Result<Ended> {
        loop {
            if let Some(status) = self.child.try_wait().context("waiting for the connector")? {
                return self.ended(status.code());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Asks the process to stop (SIGTERM: it finishes what it started) and waits for it.
    pub async fn stop(self) -> anyhow::Result<Ended> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("cannot run kill")?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        self.wait().await
    }

    fn ended(&self, code: Option<i32>) -> anyhow::Result<Ended> {
        let wall = self.started.elapsed();
        let kb: u64 = std::fs::read_to_string(&self.rss_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .with_context(|| {
                format!(
                    "the connector did not report its memory (exit {code:?}); its log: {}",
                    self.log.display()
                )
            })?;
        Ok(Ended {
            code,
            wall,
            peak_rss: kb * 1024,
        })
    }
}

/// A scenario that fails half-way leaves no connector behind (a daemon would run on).
impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `coupa-bridge <args>` to its end; an exit status other than 0 is an error naming the log.
pub async fn run(dir: &Path, name: &str, args: &[&str], config: &Path) -> anyhow::Result<Ended> {
    let running = start(dir, name, args, config)?;
    let log = running.log.clone();
    let ended = running.wait().await?;
    anyhow::ensure!(
        ended.code == Some(0),
        "`coupa-bridge {}` exited with {:?}; its log: {}",
        args.join(" "),
        ended.code,
        log.display()
    );
    Ok(ended)
}

//! A throwaway PostgreSQL cluster for the tests, started from the machine's binaries
//! (`/usr/lib/postgresql/<newest>/bin`), and [`each_backend`], which runs one test body on
//! SQLite and then on PostgreSQL.
//!
//! One cluster per test binary, started lazily by the first test that asks; each test gets its
//! own database (`t_<n>`). PostgreSQL refuses to run as root, so as root (CI, containers) the
//! cluster runs as the `postgres` user through `runuser`. A static is never dropped, so a small
//! watchdog process stops the cluster and deletes its folder once this test process is gone.

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::{Connection, Executor};

const PG_ROOT: &str = "/usr/lib/postgresql";

/// A running cluster.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

static CLUSTER: OnceLock<Result<Option<Cluster>, String>> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// Runs `body` with a fresh SQLite database URL, then with a fresh PostgreSQL one (skipped, loudly,
/// when PostgreSQL is not installed).
pub async fn each_backend<F, Fut>(test: &str, body: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("a temporary folder for SQLite");
    let url = format!("sqlite://{}/{test}.db", dir.path().display());
    eprintln!("{test}: on SQLite ({url})");
    body(url).await;
    if let Some(url) = database().await {
        eprintln!("{test}: on PostgreSQL ({url})");
        body(url).await;
    }
}

/// A URL to a new, empty database in the shared cluster; `None` (after printing SKIPPED) when
/// PostgreSQL is not installed here. In CI (`CI=true`) a missing PostgreSQL fails the test
/// instead: `.ci/run` installs it.
pub async fn database() -> Option<String> {
    let cluster = tokio::task::spawn_blocking(|| CLUSTER.get_or_init(start).as_ref())
        .await
        .expect("the cluster start-up did not panic");
    let cluster = match cluster {
        Ok(Some(c)) => c,
        Ok(None) => {
            let msg = format!(
                "SKIPPED: PostgreSQL binaries not found in {PG_ROOT}/*/bin (install postgresql)"
            );
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{msg}; CI must run the PostgreSQL tests"
            );
            eprintln!("{msg}");
            return None;
        }
        Err(e) => panic!("starting the test PostgreSQL cluster failed: {e}"),
    };
    let name = format!("t_{}", NEXT_DB.fetch_add(1, Ordering::SeqCst));
    let mut conn = sqlx::PgConnection::connect(&cluster.url("postgres"))
        .await
        .expect("connecting to the test cluster");
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("creating a test database");
    conn.close().await.expect("closing the admin connection");
    Some(cluster.url(&name))
}

impl Cluster {
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// `program` from the cluster's bin folder, as the `postgres` user when we are root.
    fn command(&self, program: &str) -> Command {
        command(&self.bin, program, self.as_postgres)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["stop", "-m", "immediate"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn command(bin: &Path, program: &str, as_postgres: bool) -> Command {
    let program = bin.join(program);
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb` and `pg_ctl`.
fn find_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(PG_ROOT)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry
                .file_name()
                .to_str()?
                .split('.')
                .next()?
                .parse()
                .ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs `cmd` with its output in `log`; on failure, the error quotes the log.
fn run(mut cmd: Command, log: &Path, what: &str) -> Result<(), String> {
    let file = std::fs::File::create(log).map_err(|e| format!("{what}: {e}"))?;
    let file2 = file.try_clone().map_err(|e| format!("{what}: {e}"))?;
    // Output goes to a file, never a pipe: the server inherits it and would keep a pipe open.
    let status = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(file2)
        .status()
        .map_err(|e| format!("{what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        let output = std::fs::read_to_string(log).unwrap_or_default();
        Err(format!("{what} failed ({status}):\n{output}"))
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

fn start() -> Result<Option<Cluster>, String> {
    let Some(bin) = find_bin() else {
        return Ok(None);
    };
    let as_postgres = is_root();
    let dir = tempfile::Builder::new()
        .prefix("coupa-bridge-pg-")
        .tempdir()
        .map_err(|e| format!("creating the cluster folder: {e}"))?
        .keep();
    if as_postgres {
        let mut chown = Command::new("chown");
        chown.args(["-R", "postgres:postgres"]).arg(&dir);
        run(chown, &dir.join("chown.out"), "chown")?;
        make_parents_traversable(&dir)?;
    }
    let data = dir.join("data");
    let mut initdb = command(&bin, "initdb", as_postgres);
    initdb.arg("-D").arg(&data).args([
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--no-locale",
        "--no-sync",
    ]);
    run(initdb, &dir.join("initdb.out"), "initdb")?;

    // The port is free when we look; another process may take it before the server binds, so
    // try a few.
    let mut last_error = String::new();
    for _ in 0..3 {
        let port = free_port()?;
        let mut pg_ctl = command(&bin, "pg_ctl", as_postgres);
        pg_ctl
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 \
                 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                dir.display()
            ))
            .arg("start");
        match run(pg_ctl, &dir.join("pg_ctl.out"), "pg_ctl start") {
            Ok(()) => {
                spawn_watchdog(&bin, &dir, as_postgres);
                return Ok(Some(Cluster {
                    bin,
                    dir,
                    port,
                    as_postgres,
                }));
            }
            Err(e) => {
                let server_log =
                    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                last_error = format!("{e}\nserver.log:\n{server_log}");
            }
        }
    }
    Err(last_error)
}

/// The `postgres` user must reach the cluster folder through its parents (`/tmp` is usually
/// fine; a private `TMPDIR` may not be).
fn make_parents_traversable(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    for parent in dir.ancestors().skip(1) {
        let meta = std::fs::metadata(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        let mode = meta.permissions().mode();
        if mode & 0o001 == 0 {
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(mode | 0o001))
                .map_err(|e| format!("making {} traversable: {e}", parent.display()))?;
        }
    }
    Ok(())
}

/// Stops the cluster and removes its folder once this process has exited.
fn spawn_watchdog(bin: &Path, dir: &Path, as_postgres: bool) {
    let pg_ctl = bin.join("pg_ctl");
    let stop = if as_postgres {
        "runuser -u postgres -- \"$2\" -D \"$3/data\" stop -m immediate"
    } else {
        "\"$2\" -D \"$3/data\" stop -m immediate"
    };
    let script = format!(
        "while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf \"$3\""
    );
    let _ = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("watchdog")
        .arg(std::process::id().to_string())
        .arg(pg_ctl)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

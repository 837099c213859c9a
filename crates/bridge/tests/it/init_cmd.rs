//! `coupa-bridge init`: from flags as a process, and interactively through its `Prompter` with
//! scripted answers; every file it writes must pass `config check` with the chosen values.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use coupa_bridge::commands::init::{self, InitArgs, Prompter};

const SECRET: &str = "init-client-secret-5150";
const SFTP_PASSWORD: &str = "init-sftp-password-8086";
const SECRET_VAR: &str = "COUPA_BRIDGE__COUPA__CLIENT_SECRET";
const SFTP_VAR: &str = "COUPA_BRIDGE__PAYMENTS__SFTP__PASSWORD";
const HOST_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEjUQiFcREiAqIwDD3El/XGjLS5i/G4TCyh7rfDeQJRN";

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coupa-bridge"));
    // Only the variables a test names: none of the caller's COUPA_BRIDGE__ settings.
    cmd.env_clear();
    cmd
}

/// `coupa-bridge init --config <path> <args>` with only `vars` in the environment. Its stdin is
/// not a terminal, so it reads flags even without `--non-interactive`.
fn run_init(path: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    bin()
        .arg("init")
        .arg("--config")
        .arg(path)
        .args(args)
        .envs(vars.iter().copied())
        .output()
        .expect("the binary runs")
}

fn config_check(path: &Path, vars: &[(&str, &str)]) -> Output {
    bin()
        .args(["config", "check", "--config"])
        .arg(path)
        .envs(vars.iter().copied())
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `config check` passes, and its printout; the value of `key` is `effective(&out, key)`.
fn check_passes(path: &Path, vars: &[(&str, &str)]) -> String {
    let out = config_check(path, vars);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "config check:\n{stdout}\nstderr:\n{}\nfile:\n{}",
        text(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
    stdout
}

/// The effective value `config check` prints for `key`, as TOML (`"runs"`, `false`).
fn effective(check: &str, key: &str) -> String {
    let prefix = format!("{key} = ");
    let line = check
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {key} in:\n{check}"));
    let value = &line[prefix.len()..];
    value
        .split("   # from")
        .next()
        .unwrap_or(value)
        .trim()
        .to_owned()
}

fn source(check: &str, key: &str) -> String {
    let prefix = format!("{key} = ");
    check
        .lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.split("# from ").nth(1))
        .unwrap_or_else(|| panic!("no {key} in:\n{check}"))
        .to_owned()
}

fn assert_next_steps(stdout: &str) {
    let at = |needle: &str| {
        stdout
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing:\n{stdout}"))
    };
    let steps = [
        at("coupa-bridge doctor"),
        at("coupa-bridge sync all --dry-run"),
        at("coupa-bridge sync all --config"),
        at("coupa-bridge run"),
    ];
    assert!(steps.is_sorted(), "the steps in order:\n{stdout}");
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("the file")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn non_interactive_writes_a_file_that_config_check_accepts_with_the_chosen_values() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("bridge.toml");
    let out = run_init(
        &path,
        &[
            "--non-interactive",
            "--base-url",
            "https://acme.coupahost.com/api/",
            "--client-id",
            "bridge-client",
            "--flows",
            "invoices,payments",
            "--monitoring",
            "history",
            "--payment-transport",
            "api",
            "--erp-url",
            "sqlite://ledger.db",
            "--state-url",
            "sqlite://bridge-state.db",
        ],
        // Set, but not to be written: init must leave it out of the file and the output.
        &[(SECRET_VAR, SECRET)],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains(&path.display().to_string()), "{stdout}");
    assert!(stdout.contains(SECRET_VAR), "names the variable:\n{stdout}");
    assert_next_steps(&stdout);

    let file = std::fs::read_to_string(&path).expect("the file");
    assert!(
        file.contains(&format!("# client_secret: set {SECRET_VAR}")),
        "{file}"
    );
    for shown in [&file, &stdout, &stderr] {
        assert!(!shown.contains(SECRET), "the secret leaked:\n{shown}");
    }
    assert!(file.contains("coupa-bridge.example.toml"), "{file}");
    assert!(file.contains("OAuth2/OpenID Connect Clients"), "{file}");
    assert!(
        !file.contains("\n[payments.sftp]\n"),
        "api needs no SFTP:\n{file}"
    );
    assert!(
        !file.contains("insecure_http_simulator_only"),
        "https needs no switch:\n{file}"
    );
    // No temporary file left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("the dir")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("bridge.toml")]);

    // Relative SQLite paths are the config file's folder's.
    assert!(file.contains("url = \"sqlite://ledger.db\"\n"), "{file}");
    let ledger = format!("\"sqlite://{}/ledger.db\"", dir.path().display());
    let state = format!("\"sqlite://{}/bridge-state.db\"", dir.path().display());
    let check = check_passes(&path, &[(SECRET_VAR, SECRET)]);
    for (key, value) in [
        ("coupa.base_url", "\"https://acme.coupahost.com\""),
        ("coupa.client_id", "\"bridge-client\""),
        ("invoices.enabled", "true"),
        ("invoices.monitoring", "\"history\""),
        ("payments.enabled", "true"),
        ("payments.transport", "\"api\""),
        ("pay_payments.enabled", "false"),
        ("erp.url", ledger.as_str()),
        ("state.url", state.as_str()),
    ] {
        assert_eq!(effective(&check, key), value, "{key} in:\n{check}");
        assert!(source(&check, key).starts_with("file"), "{key}:\n{check}");
    }
    assert!(
        source(&check, "coupa.client_secret").contains(SECRET_VAR),
        "{check}"
    );

    // Without the variable the file is incomplete: the secret really is not in it.
    let out = config_check(&path, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("coupa.client_secret: required"),
        "{}",
        text(&out.stderr)
    );
}

/// The script: one answer per line, with invalid answers that must be asked again.
const SCRIPT: &str = "\
http://127.0.0.1:9000
n
ftp://globex.example
https://Globex.coupahost.com/
bridge-client
invoices,bogus
invoices, pay-payments
nosuch
custom-fields

sqlite://state.db

";

#[test]
fn interactive_answers_are_checked_asked_again_and_written() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("coupa-bridge.toml");
    let args = InitArgs {
        config: path.clone(),
        ..InitArgs::default()
    };
    let mut prompter = Prompter::new(Cursor::new(SCRIPT), Vec::new());
    let mut out = Vec::new();
    init::init(&args, Some(&mut prompter), &|_| None, &mut out).expect("init succeeds");
    let dialogue = text(&prompter.into_output());
    let out = text(&out);

    // Defaults in brackets, and each refusal with its reason.
    for expected in [
        "Is this the coupa-bridge simulator? [y/N]",
        "https:// only",
        "expected an https:// URL",
        "unknown `bogus`: choose from invoices, payments, pay-payments",
        "[invoices,payments,pay-payments]",
        "unknown `nosuch`: choose from custom-fields, history, runs",
        "[runs]",
        "[sqlite://erp.db]",
    ] {
        assert!(
            dialogue.contains(expected),
            "{expected:?} missing:\n{dialogue}"
        );
    }
    assert!(
        !dialogue.contains("How ERP payments reach Coupa"),
        "no transport question without the payments flow:\n{dialogue}"
    );
    assert!(out.contains(SECRET_VAR), "{out}");
    assert_next_steps(&out);

    let file = std::fs::read_to_string(&path).expect("the file");
    assert!(
        file.contains(&format!("# client_secret: set {SECRET_VAR}")),
        "{file}"
    );
    let erp = format!("\"sqlite://{}/erp.db\"", dir.path().display());
    let state = format!("\"sqlite://{}/state.db\"", dir.path().display());
    let check = check_passes(&path, &[(SECRET_VAR, SECRET)]);
    for (key, value) in [
        ("coupa.base_url", "\"https://globex.coupahost.com\""),
        ("coupa.client_id", "\"bridge-client\""),
        ("invoices.enabled", "true"),
        ("invoices.monitoring", "\"custom-fields\""),
        ("payments.enabled", "false"),
        ("pay_payments.enabled", "true"),
        ("erp.url", erp.as_str()),
        ("state.url", state.as_str()),
    ] {
        assert_eq!(effective(&check, key), value, "{key} in:\n{check}");
    }
}

#[test]
fn interactive_csv_with_secrets_and_the_simulator_switch() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("coupa-bridge.toml");
    let args = InitArgs {
        config: path.clone(),
        // Flags are the defaults of the questions: Enter takes them.
        client_id: Some("coupa-bridge".into()),
        sftp_host: Some("127.0.0.1".into()),
        ..InitArgs::default()
    };
    let script = format!(
        "http://127.0.0.1:8080\ny\n\n\n\nbad\ncsv\n\n2222\ncoupa\nnot a key\n127.0.0.1 {HOST_KEY}\n\
         \n\ny\n\n{SECRET}\n{SFTP_PASSWORD}\n"
    );
    let mut prompter = Prompter::new(Cursor::new(script), Vec::new());
    let mut out = Vec::new();
    init::init(&args, Some(&mut prompter), &|_| None, &mut out).expect("init succeeds");
    let dialogue = text(&prompter.into_output());
    let out = text(&out);
    assert!(dialogue.contains("[coupa-bridge]"), "{dialogue}");
    assert!(dialogue.contains("[127.0.0.1]"), "{dialogue}");
    assert!(
        dialogue.contains("unknown `bad`: choose from api, csv"),
        "{dialogue}"
    );
    assert!(
        dialogue.contains("expected an OpenSSH public key line"),
        "{dialogue}"
    );
    assert!(dialogue.contains("must not be empty"), "{dialogue}");
    for shown in [&dialogue, &out] {
        assert!(
            !shown.contains(SECRET) && !shown.contains(SFTP_PASSWORD),
            "{shown}"
        );
    }
    assert!(!out.contains(SECRET_VAR), "nothing to set:\n{out}");

    let file = std::fs::read_to_string(&path).expect("the file");
    assert!(file.contains("!!! FOR THE SIMULATOR ONLY !!!"), "{file}");
    assert!(
        file.contains("insecure_http_simulator_only = true"),
        "{file}"
    );
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600, "a file with a secret is private");
    let check = check_passes(&path, &[]);
    for (key, value) in [
        ("coupa.base_url", "\"http://127.0.0.1:8080\""),
        ("coupa.insecure_http_simulator_only", "true"),
        ("payments.transport", "\"csv\""),
        ("payments.sftp.host", "\"127.0.0.1\""),
        ("payments.sftp.port", "2222"),
        ("payments.sftp.username", "\"coupa\""),
        ("payments.sftp.host_key", &format!("\"{HOST_KEY}\"")),
        ("invoices.monitoring", "\"runs\""),
    ] {
        assert_eq!(effective(&check, key), value, "{key} in:\n{check}");
    }
    assert!(source(&check, "coupa.client_secret").starts_with("file"));
    assert!(source(&check, "payments.sftp.password").starts_with("file"));
    assert!(check.contains("# warning: coupa.insecure_http_simulator_only"));
}

#[test]
fn write_secrets_puts_them_in_a_private_file_and_nowhere_else() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("coupa-bridge.toml");
    let out = run_init(
        &path,
        &[
            "--non-interactive",
            "--write-secrets",
            "--base-url",
            "https://acme.coupahost.com",
            "--client-id",
            "bridge-client",
        ],
        &[(SECRET_VAR, SECRET)],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
    assert!(
        !stdout.contains(SECRET_VAR),
        "nothing left to set:\n{stdout}"
    );
    let file = std::fs::read_to_string(&path).expect("the file");
    assert!(
        file.contains(&format!("client_secret = \"{SECRET}\"")),
        "{file}"
    );
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
    // Valid with nothing in the environment.
    let check = check_passes(&path, &[]);
    assert!(source(&check, "coupa.client_secret").starts_with("file"));
    assert!(!check.contains(SECRET), "config check redacts it:\n{check}");

    // Without the variable there is nothing to write: an error naming it, and no file.
    let other = dir.path().join("other.toml");
    let out = run_init(
        &other,
        &[
            "--write-secrets",
            "--base-url",
            "https://acme.coupahost.com",
            "--client-id",
            "bridge-client",
        ],
        &[],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains(SECRET_VAR),
        "{}",
        text(&out.stderr)
    );
    assert!(!other.exists());
}

#[test]
fn csv_writes_the_sftp_section_with_the_pinned_host_key() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("coupa-bridge.toml");
    let keyscan_line = format!("sftp.acme.coupahost.com {HOST_KEY}");
    let out = run_init(
        &path,
        &[
            "--base-url",
            "https://acme.coupahost.com",
            "--client-id",
            "bridge-client",
            "--payment-transport",
            "csv",
            "--sftp-host",
            "sftp.acme.coupahost.com",
            "--sftp-username",
            "acme-ap",
            // As ssh-keyscan prints it: the host is dropped.
            "--sftp-host-key",
            &keyscan_line,
        ],
        &[(SECRET_VAR, SECRET), (SFTP_VAR, SFTP_PASSWORD)],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(SECRET_VAR) && stdout.contains(SFTP_VAR),
        "{stdout}"
    );
    let file = std::fs::read_to_string(&path).expect("the file");
    let sftp = file
        .split("\n[payments.sftp]\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no [payments.sftp]:\n{file}"));
    assert!(
        sftp.contains(&format!("host_key = \"{HOST_KEY}\"\n")),
        "{file}"
    );
    assert!(
        sftp.contains(&format!("# password: set {SFTP_VAR}")),
        "{file}"
    );
    for shown in [&file, &stdout, &stderr] {
        assert!(!shown.contains(SFTP_PASSWORD) && !shown.contains(SECRET));
    }
    let check = check_passes(&path, &[(SECRET_VAR, SECRET), (SFTP_VAR, SFTP_PASSWORD)]);
    for (key, value) in [
        ("payments.transport", "\"csv\""),
        ("payments.sftp.host", "\"sftp.acme.coupahost.com\""),
        ("payments.sftp.port", "22"),
        ("payments.sftp.username", "\"acme-ap\""),
        ("payments.sftp.host_key", &format!("\"{HOST_KEY}\"")),
        ("invoices.monitoring", "\"runs\""),
        ("pay_payments.enabled", "true"),
    ] {
        assert_eq!(effective(&check, key), value, "{key} in:\n{check}");
    }

    // csv without the host key: an error naming the flag.
    let other = dir.path().join("other.toml");
    let out = run_init(
        &other,
        &[
            "--base-url",
            "https://acme.coupahost.com",
            "--client-id",
            "bridge-client",
            "--payment-transport",
            "csv",
            "--sftp-host",
            "sftp.acme.coupahost.com",
            "--sftp-username",
            "acme-ap",
        ],
        &[],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("--sftp-host-key"),
        "{}",
        text(&out.stderr)
    );
    assert!(!other.exists());
}

#[test]
fn an_existing_file_is_kept_without_force() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("coupa-bridge.toml");
    std::fs::write(&path, "# mine\n").expect("write");
    let flags = [
        "--non-interactive",
        "--base-url",
        "https://acme.coupahost.com",
        "--client-id",
        "bridge-client",
    ];
    let out = run_init(&path, &flags, &[]);
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "# mine\n");

    let mut forced = flags.to_vec();
    forced.push("--force");
    let out = run_init(&path, &forced, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        std::fs::read_to_string(&path)
            .expect("read")
            .contains("[coupa]")
    );
}

#[test]
fn missing_or_invalid_flags_are_errors_naming_the_flag() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("coupa-bridge.toml");
    let cases: [(&[&str], &str); 5] = [
        (&["--client-id", "c"], "--base-url is required"),
        (
            &["--base-url", "https://acme.coupahost.com"],
            "--client-id is required",
        ),
        (
            &["--base-url", "http://127.0.0.1:8080", "--client-id", "c"],
            "--insecure-http-simulator-only",
        ),
        (
            &[
                "--base-url",
                "https://acme.coupahost.com",
                "--client-id",
                "c",
                "--erp-url",
                "postgres://bridge:hunter2@db/erp",
            ],
            "--erp-url: this URL carries a password",
        ),
        (
            &[
                "--base-url",
                "https://acme.coupahost.com/invoices/7",
                "--client-id",
                "c",
            ],
            "--base-url: give the instance's address alone",
        ),
    ];
    for (args, expected) in cases {
        let mut args = args.to_vec();
        args.push("--non-interactive");
        let out = run_init(&path, &args, &[]);
        let stderr = text(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
        assert!(!path.exists(), "{args:?} wrote a file");
    }
}

#[test]
fn values_are_escaped_as_toml() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path: PathBuf = dir.path().join("coupa-bridge.toml");
    let out = run_init(
        &path,
        &[
            "--base-url",
            "https://acme.coupahost.com",
            "--client-id",
            r#"a"b\c"#,
            "--state-url",
            "sqlite://st\"ate.db",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let check = check_passes(&path, &[(SECRET_VAR, SECRET)]);
    // The printout's TOML may quote either way: compare the values it stands for.
    let value = |key: &str| -> String {
        let line = format!("v = {}", effective(&check, key));
        let table: toml::Table = toml::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        table["v"].as_str().expect("a string").to_owned()
    };
    assert_eq!(value("coupa.client_id"), r#"a"b\c"#);
    let state = format!("sqlite://{}/st\"ate.db", dir.path().display());
    assert_eq!(value("state.url"), state);
}

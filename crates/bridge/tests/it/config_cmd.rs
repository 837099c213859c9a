//! The configuration as a user meets it: the checked-in example, and `config check` as a
//! process.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use coupa_bridge::config::{self, Config, PaymentTransport};

const SECRET: &str = "supersecret-123";

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../coupa-bridge.example.toml")
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `(section, key)` pairs of the config block in design.md section 2 ("Config keys").
fn design_keys() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/design.md");
    let design = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} (shared/ beside the checkout): {e}", path.display()));
    let block = design
        .split("### Config keys")
        .nth(1)
        .and_then(|rest| rest.split("```toml").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("design.md has a ```toml block under \"### Config keys\"");
    let mut section = String::new();
    let mut keys = Vec::new();
    for line in block.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_owned();
            continue;
        }
        // The sftp line lists several keys separated by `;`.
        for part in line.split(';') {
            if let Some((key, _)) = part.split_once('=') {
                keys.push((section.clone(), key.trim().to_owned()));
            }
        }
    }
    assert!(
        keys.len() >= 20,
        "too few keys read from design.md: {keys:?}"
    );
    keys
}

/// Keys the example sets, and keys it documents in a comment (`# client_secret: ...`,
/// `# issuing_bank = ...`), as `section.key`.
fn example_keys(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let candidate = line.strip_prefix('#').map(str::trim_start).unwrap_or(line);
        let name: String = candidate
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        let after = candidate[name.len()..].trim_start();
        if !name.is_empty()
            && !section.is_empty()
            && (after.starts_with('=') || after.starts_with(':'))
        {
            keys.insert(format!("{section}.{name}"));
        }
    }
    keys
}

#[test]
fn the_example_file_loads_and_holds_every_documented_key() {
    let path = example_path();
    let loaded = Config::load(
        &path,
        env(&[("COUPA_BRIDGE__COUPA__CLIENT_SECRET", "sim-secret")]),
    )
    .unwrap_or_else(|e| panic!("the example loads: {e}"));
    // The example points at the simulator over plain HTTP: the switch's warning, and no other.
    assert!(
        matches!(&loaded.warnings[..], [w] if w.starts_with("coupa.insecure_http_simulator_only")),
        "{:?}",
        loaded.warnings
    );
    let config = &loaded.config;
    assert_eq!(config.coupa.base_url, "http://127.0.0.1:8080");
    assert!(config.coupa.insecure_http_simulator_only);
    assert_eq!(config.coupa.client_id.as_deref(), Some("coupa-bridge"));
    assert!(
        config.coupa.client_secret.is_some(),
        "the secret comes from the environment"
    );

    // Switching to CSV needs only the password, from the environment.
    let csv = Config::load(
        &path,
        env(&[
            ("COUPA_BRIDGE__COUPA__CLIENT_SECRET", "sim-secret"),
            ("COUPA_BRIDGE__PAYMENTS__TRANSPORT", "csv"),
            (
                "COUPA_BRIDGE__PAYMENTS__SFTP__PASSWORD",
                "sim-sftp-password",
            ),
        ]),
    )
    .unwrap_or_else(|e| panic!("the example loads with transport = csv: {e}"));
    assert_eq!(csv.config.payments.transport, PaymentTransport::Csv);

    let text = std::fs::read_to_string(&path).expect("the example file");
    let present = example_keys(&text);
    for (section, key) in design_keys() {
        let path = format!("{section}.{key}");
        assert!(
            present.contains(&path),
            "design.md's {path} is not in the example file"
        );
    }
    for path in config::key_paths() {
        assert!(present.contains(path), "{path} is not in the example file");
    }
}

fn check(config: &Path, vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coupa-bridge"))
        .args(["config", "check", "--config"])
        .arg(config)
        // Only the variables this test names: none of the caller's COUPA_BRIDGE__ settings.
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .expect("the binary runs")
}

#[test]
fn config_check_prints_the_effective_config_with_secrets_redacted() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("coupa-bridge.toml");
    std::fs::write(
        &path,
        "[coupa]\nbase_url = \"http://127.0.0.1:8080\"\nclient_id = \"coupa-bridge\"\n\n\
         insecure_http_simulator_only = true\n\
         [payments.sftp]\npassword = \"file-password-42\"\n",
    )
    .expect("write the config");
    let out = check(&path, &[("COUPA_BRIDGE__COUPA__CLIENT_SECRET", SECRET)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let secret_line = stdout
        .lines()
        .find(|l| l.starts_with("coupa.client_secret ="))
        .unwrap_or_else(|| panic!("no client_secret line:\n{stdout}"));
    assert!(secret_line.contains("\"[redacted]\""), "{secret_line}");
    assert!(
        secret_line.ends_with("# from env COUPA_BRIDGE__COUPA__CLIENT_SECRET"),
        "{secret_line}"
    );
    assert!(
        stdout.contains("coupa.base_url = \"http://127.0.0.1:8080\""),
        "{stdout}"
    );
    assert!(stdout.contains("# from default"), "{stdout}");
    for secret in [SECRET, "file-password-42"] {
        assert!(!stdout.contains(secret), "{secret} in stdout:\n{stdout}");
        assert!(!stderr.contains(secret), "{secret} in stderr:\n{stderr}");
    }
}

#[test]
fn config_check_exits_2_naming_a_mistyped_key_and_its_line() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("coupa-bridge.toml");
    std::fs::write(
        &path,
        "[coupa]\nbase_url = \"http://127.0.0.1:8080\"\nclinet_id = \"coupa-bridge\"\n",
    )
    .expect("write the config");
    let out = check(&path, &[("COUPA_BRIDGE__COUPA__CLIENT_SECRET", SECRET)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains("coupa-bridge.toml:3: unknown field `clinet_id`, expected one of"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `client_id`?"), "{stderr}");
    assert!(!stderr.contains(SECRET), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout for an invalid config"
    );
}

#[test]
fn config_check_exits_2_when_there_is_no_config_file() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("coupa-bridge.toml");
    let out = check(&path, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("no config file at"), "{stderr}");
    assert!(stderr.contains("coupa-bridge.example.toml"), "{stderr}");
}

#[test]
fn the_check_command_writes_to_any_writer() {
    let mut out = Vec::new();
    coupa_bridge::commands::config::check(
        &example_path(),
        env(&[
            ("COUPA_BRIDGE__COUPA__CLIENT_SECRET", SECRET),
            ("COUPA_BRIDGE__COUPA__REQUESTS_PER_SECOND", "30"),
        ]),
        &mut out,
    )
    .expect("the example is valid");
    let out = String::from_utf8(out).expect("UTF-8");
    assert!(
        out.contains("# from env COUPA_BRIDGE__COUPA__REQUESTS_PER_SECOND"),
        "{out}"
    );
    assert!(
        out.contains("# warning: coupa.requests_per_second: 30"),
        "{out}"
    );
    // The other warning is the example's simulator-only switch.
    assert!(out.trim_end().ends_with("# valid, 2 warnings"), "{out}");
    assert!(!out.contains(SECRET), "{out}");
}

/// Two tenants: each its own Coupa instance, state store, ERP and listen address; the client id
/// and the rate are shared from the top level.
const TWO_TENANTS: &str = r#"[coupa]
client_id = "coupa-bridge"
requests_per_second = 5

[tenants.acme.coupa]
base_url = "https://acme.coupahost.com"
[tenants.acme.state]
url = "sqlite://acme-state.db"
[tenants.acme.erp]
url = "sqlite://acme-erp.db"
[tenants.acme.server]
listen = "127.0.0.1:0"

[tenants.globex.coupa]
base_url = "https://globex.coupahost.com"
burst = 4
[tenants.globex.state]
url = "sqlite://globex-state.db"
[tenants.globex.erp]
url = "sqlite://globex-erp.db"
[tenants.globex.server]
listen = "127.0.0.1:0"
"#;

const ACME_SECRET: &str = "acme-secret-771";
const GLOBEX_SECRET: &str = "globex-secret-772";

fn tenant_secrets() -> [(&'static str, &'static str); 2] {
    [
        (
            "COUPA_BRIDGE__TENANTS__ACME__COUPA__CLIENT_SECRET",
            ACME_SECRET,
        ),
        (
            "COUPA_BRIDGE__TENANTS__GLOBEX__COUPA__CLIENT_SECRET",
            GLOBEX_SECRET,
        ),
    ]
}

fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("coupa-bridge.toml");
    std::fs::write(&path, text).expect("write the config");
    (dir, path)
}

#[test]
fn config_check_prints_every_tenant_under_its_heading() {
    let (_dir, path) = write_config(TWO_TENANTS);
    let out = check(&path, &tenant_secrets());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for heading in [
        "# tenant acme\n[tenants.acme]\n",
        "# tenant globex\n[tenants.globex]\n",
    ] {
        assert!(stdout.contains(heading), "{heading:?} missing:\n{stdout}");
    }
    let acme_at = stdout.find("[tenants.acme]").expect("acme");
    let globex_at = stdout.find("[tenants.globex]").expect("globex");
    assert!(acme_at < globex_at, "in the file's order:\n{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with("# valid: 2 tenants (acme, globex)"),
        "{stdout}"
    );
    // Each tenant's values, with where they came from; the printout stays TOML.
    let globex = &stdout[globex_at..];
    assert!(
        globex.contains("coupa.base_url = \"https://globex.coupahost.com\""),
        "{globex}"
    );
    assert!(globex.contains("(tenants.globex.coupa.burst)"), "{globex}");
    assert!(
        globex.contains("# from env COUPA_BRIDGE__TENANTS__GLOBEX__COUPA__CLIENT_SECRET"),
        "{globex}"
    );
    let reparsed: toml::Table = toml::from_str(&stdout).expect("the printout is TOML");
    let burst = |name: &str| reparsed["tenants"][name]["coupa"]["burst"].as_integer();
    assert_eq!(burst("acme"), Some(10));
    assert_eq!(burst("globex"), Some(4));
    for secret in [ACME_SECRET, GLOBEX_SECRET] {
        assert!(!stdout.contains(secret), "{secret} in stdout:\n{stdout}");
        assert!(!stderr.contains(secret), "{secret} in stderr:\n{stderr}");
    }

    // --tenant prints that tenant alone.
    let out = Command::new(env!("CARGO_BIN_EXE_coupa-bridge"))
        .args(["config", "check", "--tenant", "globex", "--config"])
        .arg(&path)
        .env_clear()
        .envs(tenant_secrets())
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(", tenant globex\n"), "{stdout}");
    assert!(
        stdout.contains("coupa.base_url = \"https://globex.coupahost.com\""),
        "{stdout}"
    );
    assert!(!stdout.contains("acme.coupahost.com"), "{stdout}");
}

#[test]
fn config_check_exits_2_when_one_tenant_is_invalid_naming_its_key_and_line() {
    let text = TWO_TENANTS.replace("burst = 4", "burst = \"four\"");
    let line = text
        .lines()
        .position(|l| l == "burst = \"four\"")
        .expect("the bad line")
        + 1;
    let (_dir, path) = write_config(&text);
    let out = check(&path, &tenant_secrets());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "coupa-bridge.toml:{line}: tenants.globex.coupa.burst: expected an integer"
        )),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout for an invalid config"
    );

    // A tenant without its secret: the tenant's key path names it.
    let (_dir, path) = write_config(TWO_TENANTS);
    let out = check(&path, &tenant_secrets()[..1]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains("tenants.globex.coupa.client_secret: required"),
        "{stderr}"
    );
    assert!(!stderr.contains(ACME_SECRET), "{stderr}");
}

#[test]
fn sync_with_an_unknown_tenant_exits_2_naming_the_tenants() {
    let (dir, path) = write_config(TWO_TENANTS);
    let run = |tenant: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coupa-bridge"));
        cmd.args(["sync", "invoices", "--config"]).arg(&path);
        if let Some(tenant) = tenant {
            cmd.args(["--tenant", tenant]);
        }
        cmd.env_clear()
            .envs(tenant_secrets())
            .output()
            .expect("the binary runs")
    };
    let out = run(Some("nosuch"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains("no tenant `nosuch`: this file configures tenants acme, globex"),
        "{stderr}"
    );
    let out = run(None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains("this file configures tenants acme, globex: choose one with --tenant"),
        "{stderr}"
    );
    for secret in [ACME_SECRET, GLOBEX_SECRET] {
        assert!(!stderr.contains(secret), "{stderr}");
    }
    // Nothing was opened: no state store or ERP file was created.
    let created: Vec<_> = std::fs::read_dir(dir.path())
        .expect("the temp dir")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .filter(|name| name != "coupa-bridge.toml")
        .collect();
    assert!(created.is_empty(), "{created:?}");
}

#[test]
fn a_mapping_mistake_stops_config_check_and_sync_naming_the_mapping_line() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/erp-mapping.toml"),
    )
    .expect("the example mapping");
    // A typo in a canonical field name and a strftime pattern that is not one, on known lines.
    let broken = example
        .replace("XBLNR = \"invoice_number\"", "XBLNR = \"invoice_nubmer\"")
        .replace("date = \"%d.%m.%Y\" }", "date = \"%d.%m.%Q\" }");
    let line_of = |needle: &str| {
        broken
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("{needle} not in the mapping"))
    };
    let (typo, pattern) = (line_of("invoice_nubmer"), line_of("%d.%m.%Q"));
    std::fs::write(dir.path().join("erp-mapping.toml"), &broken).expect("write the mapping");
    let path = dir.path().join("coupa-bridge.toml");
    std::fs::write(
        &path,
        "[coupa]\nbase_url = \"http://127.0.0.1:8080\"\nclient_id = \"coupa-bridge\"\n\
         insecure_http_simulator_only = true\n\n[erp]\nkind = \"files\"\n\
         mapping = \"erp-mapping.toml\"\n\n[erp.files]\noutbox = \"out\"\ninbox = \"in\"\n",
    )
    .expect("write the config");
    let out = check(&path, &[("COUPA_BRIDGE__COUPA__CLIENT_SECRET", SECRET)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    for line in [typo, pattern] {
        assert!(
            stderr.contains(&format!("erp-mapping.toml:{line}:")),
            "line {line} named in:\n{stderr}"
        );
    }
    assert!(stderr.contains("invoice_nubmer"), "{stderr}");

    // `sync` refuses to start on the same mistake, before any Coupa call.
    let out = Command::new(env!("CARGO_BIN_EXE_coupa-bridge"))
        .args(["sync", "invoices", "--config"])
        .arg(&path)
        .env_clear()
        .env("COUPA_BRIDGE__COUPA__CLIENT_SECRET", SECRET)
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains(&format!("erp-mapping.toml:{typo}:")),
        "{stderr}"
    );
}

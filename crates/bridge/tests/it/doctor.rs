//! `coupa-bridge doctor` against the simulator, its SFTP server and SQLite: each check failing
//! for its reason and passing once fixed, `--fix` creating only what it may, and the exit status.

use std::path::PathBuf;
use std::process::Command;

use coupa_bridge::doctor::{self, Check, Options, Verdict};
use coupa_doc::{Object, Value};
use coupa_sim::config::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_SFTP_PASSWORD, DEFAULT_SFTP_USER, OAuthClient,
};
use coupa_sim::{SimConfig, SimHandle};

struct Setup {
    sim: SimHandle,
    dir: tempfile::TempDir,
    path: PathBuf,
}

fn sim_config() -> SimConfig {
    SimConfig {
        invoices: 5,
        pay_payments: 2,
        ..SimConfig::default()
    }
}

/// A simulator and a config for all three flows, CSV payments, SQLite ERP and state store;
/// `extra` is appended to the file (later keys of a section go in their own tables).
async fn setup(sim_config: SimConfig, edit: impl FnOnce(String) -> String) -> Setup {
    let sim = coupa_sim::spawn(sim_config).await.expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        r#"[coupa]
base_url = "{base}"
insecure_http_simulator_only = true
client_id = "{DEFAULT_CLIENT_ID}"

[state]
url = "sqlite://state.db"

[erp]
url = "sqlite://erp.db"

[invoices]
monitoring = "runs"

[payments]
transport = "csv"

[payments.sftp]
host = "127.0.0.1"
port = {port}
username = "{DEFAULT_SFTP_USER}"
host_key = "{key}"
"#,
        base = sim.base_url(),
        port = sim.sftp_addr.port(),
        key = sim.sftp_host_key,
    );
    let path = dir.path().join("coupa-bridge.toml");
    std::fs::write(&path, edit(text)).expect("config");
    Setup { sim, dir, path }
}

fn env() -> Vec<(String, String)> {
    vec![
        (
            "COUPA_BRIDGE__COUPA__CLIENT_SECRET".into(),
            DEFAULT_CLIENT_SECRET.into(),
        ),
        (
            "COUPA_BRIDGE__PAYMENTS__SFTP__PASSWORD".into(),
            DEFAULT_SFTP_PASSWORD.into(),
        ),
    ]
}

impl Setup {
    async fn doctor(&self, fix: bool) -> (Vec<Check>, String) {
        let mut out = Vec::new();
        let checks = doctor::examine(
            &Options {
                config: &self.path,
                tenant: None,
                fix,
            },
            env(),
            &mut out,
        )
        .await
        .expect("report written");
        (checks, String::from_utf8(out).expect("utf-8"))
    }

    /// Gives every Integration one contact, as an administrator would.
    fn add_contacts(&self) {
        let mut db = self.sim.state.db.lock();
        let integrations: Vec<(i64, String)> = db
            .integrations
            .rows()
            .map(|r| {
                (
                    r.get("id").and_then(Value::as_i64).unwrap_or_default(),
                    r.get("code")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect();
        for (id, code) in integrations {
            db.integration_contacts.insert_with(|_| {
                Object::new()
                    .with("contact-alert-type", "Functional")
                    .with("contactable-type", "User")
                    .with("contactable-id", 1)
                    .with(
                        "integration",
                        Object::new().with("id", id).with("code", code),
                    )
            });
        }
    }
}

fn check<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {checks:#?}"))
}

fn failed(checks: &[Check]) -> Vec<&str> {
    checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| c.name.as_str())
        .collect()
}

#[tokio::test]
async fn fix_creates_the_integrations_and_the_erp_schema_and_nothing_else() {
    let s = setup(sim_config(), |t| t).await;
    let (invoices_before, seeded, contacts) = {
        let db = s.sim.state.db.lock();
        (
            db.invoices.clone(),
            db.integrations.len(),
            db.integration_contacts.len(),
        )
    };
    let (checks, out) = s.doctor(false).await;
    for name in [
        "integration: ERP-INVOICES",
        "integration: ERP-PAYMENTS",
        "integration: ERP-COUPA-PAY",
        "erp",
    ] {
        let c = check(&checks, name);
        assert_eq!(c.verdict, Verdict::Fail, "{out}");
        assert!(
            c.fix.as_deref().is_some_and(|f| f.contains("doctor --fix")),
            "{out}"
        );
    }
    assert_eq!(
        s.sim.state.db.lock().integrations.len(),
        seeded,
        "checking creates nothing"
    );
    assert!(!s.dir.path().join("erp.db").exists(), "nor the ERP's file");
    for passing in [
        "config",
        "instance",
        "token",
        "custom fields",
        "sftp",
        "state store",
    ] {
        assert_eq!(check(&checks, passing).verdict, Verdict::Pass, "{out}");
    }
    assert_eq!(
        out.lines().count(),
        checks.len(),
        "one line per check:\n{out}"
    );

    let (fixed, out) = s.doctor(true).await;
    for name in [
        "integration: ERP-INVOICES",
        "integration: ERP-PAYMENTS",
        "integration: ERP-COUPA-PAY",
        "erp",
    ] {
        assert_eq!(check(&fixed, name).verdict, Verdict::Fixed, "{out}");
    }
    // Contacts are people: --fix leaves them to an administrator.
    assert_eq!(
        failed(&fixed),
        [
            "contacts: ERP-INVOICES",
            "contacts: ERP-PAYMENTS",
            "contacts: ERP-COUPA-PAY"
        ],
        "{out}"
    );
    {
        let db = s.sim.state.db.lock();
        let made: Vec<(String, String, String, String)> = db
            .integrations
            .rows()
            .skip(seeded)
            .map(|r| {
                let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                (
                    text("code"),
                    text("business-object"),
                    text("direction"),
                    text("end-system-type"),
                )
            })
            .collect();
        let expected = [
            ("ERP-INVOICES", "InvoiceHeader", "from_coupa", "erp"),
            ("ERP-PAYMENTS", "InvoiceHeader", "to_coupa", "erp"),
            ("ERP-COUPA-PAY", "CoupaPay::Payment", "from_coupa", "erp"),
        ]
        .map(|(a, b, c, d)| (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned()));
        assert_eq!(made, expected);
        // Nothing else in Coupa changed.
        assert!(db.integration_runs.is_empty() && db.history_records.is_empty());
        assert_eq!(db.integration_contacts.len(), contacts);
        let unchanged: Vec<&Object> = invoices_before.rows().collect();
        let now: Vec<&Object> = db.invoices.rows().collect();
        assert_eq!(unchanged, now, "no invoice touched");
    }
    s.add_contacts();
    let (ready, out) = s.doctor(false).await;
    assert!(failed(&ready).is_empty(), "{out}");
    let (summary, ok) = doctor::summary(&ready);
    assert!(ok && summary.contains("sync all --dry-run"), "{summary}");
    assert_eq!(
        check(&ready, "contacts: ERP-PAYMENTS").verdict,
        Verdict::Pass
    );
}

#[tokio::test]
async fn a_missing_scope_fails_the_flows_that_need_it_and_names_it() {
    let mut config = sim_config();
    config.clients = vec![OAuthClient {
        id: DEFAULT_CLIENT_ID.into(),
        secret: DEFAULT_CLIENT_SECRET.into(),
        scopes: coupa_sim::config::ALL_SCOPES
            .iter()
            .filter(|s| **s != "core.pay.payments.read")
            .map(|s| (*s).to_owned())
            .collect(),
    }];
    let s = setup(config.clone(), |t| t).await;
    let (checks, out) = s.doctor(false).await;
    let token = check(&checks, "token");
    assert_eq!(token.verdict, Verdict::Fail, "{out}");
    assert!(token.found.contains("core.pay.payments.read"), "{out}");
    let pay = check(&checks, "scopes: pay-payments");
    assert_eq!(pay.verdict, Verdict::Fail, "{out}");
    assert!(
        pay.fix
            .as_deref()
            .is_some_and(|f| f.contains("grant core.pay.payments.read")),
        "{out}"
    );
    assert_eq!(
        check(&checks, "scopes: invoices").verdict,
        Verdict::Pass,
        "{out}"
    );
    assert_eq!(
        check(&checks, "scopes: payments").verdict,
        Verdict::Pass,
        "{out}"
    );
    // The flows that have their scopes are still checked further.
    assert_eq!(
        check(&checks, "custom fields").verdict,
        Verdict::Pass,
        "{out}"
    );

    // Disabled, the flow needs nothing: the scopes asked are then the others' only.
    let s = setup(config, |t| {
        t.replace(
            "client_id = \"coupa-bridge\"\n",
            "client_id = \"coupa-bridge\"\nscopes = [\"core.invoice.read\", \"core.invoice.write\", \"core.integration.read\", \"core.integration.write\", \"core.common.read\"]\n",
        ) + "\n[pay_payments]\nenabled = false\n"
    })
    .await;
    let (checks, out) = s.doctor(false).await;
    assert_eq!(check(&checks, "token").verdict, Verdict::Pass, "{out}");
    assert_eq!(
        check(&checks, "scopes: pay-payments").verdict,
        Verdict::Skip,
        "{out}"
    );
    assert!(
        !checks
            .iter()
            .any(|c| c.name == "integration: ERP-COUPA-PAY"),
        "{out}"
    );
}

#[tokio::test]
async fn a_scope_refused_on_a_read_names_the_scope() {
    // Asking for every scope of the client ([]): the token comes, the reads tell what is missing.
    let mut config = sim_config();
    config.clients[0]
        .scopes
        .retain(|s| s != "core.integration.read");
    let s = setup(config, |t| {
        t.replace(
            "client_id = \"coupa-bridge\"\n",
            "client_id = \"coupa-bridge\"\nscopes = []\n",
        )
    })
    .await;
    let (checks, out) = s.doctor(false).await;
    assert_eq!(check(&checks, "token").verdict, Verdict::Pass, "{out}");
    let invoices = check(&checks, "scopes: invoices");
    assert_eq!(invoices.verdict, Verdict::Fail, "{out}");
    assert!(invoices.found.contains("integrations"), "{out}");
    assert!(
        invoices
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("core.integration.read")),
        "{out}"
    );
}

#[tokio::test]
async fn a_missing_custom_field_fails_naming_the_key_then_passes_once_defined() {
    let s = setup(sim_config(), |t| {
        t.replace("monitoring = \"runs\"", "monitoring = \"custom-fields\"")
    })
    .await;
    s.sim
        .state
        .db
        .lock()
        .define_invoice_custom_fields(vec!["cf-erp-invoice-number".into()]);
    let (checks, out) = s.doctor(false).await;
    let c = check(&checks, "custom fields");
    assert_eq!(c.verdict, Verdict::Fail, "{out}");
    assert!(
        c.found
            .contains("cf-integration-status (invoices.status_field)"),
        "{out}"
    );
    assert!(
        c.fix
            .as_deref()
            .is_some_and(|f| f.contains("Setup > Custom Fields")),
        "{out}"
    );
    // Option 1 files nothing under an Integration: none is asked for.
    assert!(
        !checks.iter().any(|c| c.name == "integration: ERP-INVOICES"),
        "{out}"
    );
    s.sim.state.db.lock().define_invoice_custom_fields(vec![
        "cf-erp-invoice-number".into(),
        "cf-integration-status".into(),
    ]);
    let (checks, out) = s.doctor(false).await;
    assert_eq!(
        check(&checks, "custom fields").verdict,
        Verdict::Pass,
        "{out}"
    );
}

#[tokio::test]
async fn a_wrong_sftp_host_key_fails_and_says_where_to_get_the_right_one() {
    let wrong = coupa_sim::sftp::openssh_line(coupa_sim::sftp::host_key_for_seed(999).public_key());
    let s = setup(sim_config(), |t| t).await;
    let right = s.sim.sftp_host_key.clone();
    let text = std::fs::read_to_string(&s.path).expect("config");
    std::fs::write(&s.path, text.replace(&right, &wrong)).expect("config");
    let (checks, out) = s.doctor(false).await;
    let c = check(&checks, "sftp");
    assert_eq!(c.verdict, Verdict::Fail, "{out}");
    assert!(c.found.contains("not the pinned"), "{out}");
    assert!(
        c.fix
            .as_deref()
            .is_some_and(|f| f.contains("payments.sftp.host_key")),
        "{out}"
    );
    assert!(
        !out.contains(DEFAULT_SFTP_PASSWORD),
        "no secret in the report"
    );
    std::fs::write(
        &s.path,
        std::fs::read_to_string(&s.path)
            .expect("config")
            .replace(&wrong, &right),
    )
    .expect("config");
    let (checks, out) = s.doctor(false).await;
    assert_eq!(check(&checks, "sftp").verdict, Verdict::Pass, "{out}");
}

#[tokio::test]
async fn an_unreachable_erp_and_an_unanswering_instance_fail() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let s = setup(sim_config(), |t| {
        t.replace(
            "url = \"sqlite://erp.db\"",
            &format!("url = \"postgres://erp:erp-password@127.0.0.1:{closed}/erp\""),
        )
    })
    .await;
    let (checks, out) = s.doctor(false).await;
    let c = check(&checks, "erp");
    assert_eq!(c.verdict, Verdict::Fail, "{out}");
    assert!(c.found.contains("cannot reach the ERP"), "{out}");
    assert!(
        !out.contains("erp-password"),
        "the URL's password is not shown:\n{out}"
    );

    let s = setup(sim_config(), |t| t).await;
    let text = std::fs::read_to_string(&s.path).expect("config");
    let text = text.replace(&s.sim.base_url(), &format!("http://127.0.0.1:{closed}"));
    std::fs::write(&s.path, text).expect("config");
    let (checks, out) = s.doctor(false).await;
    assert_eq!(check(&checks, "instance").verdict, Verdict::Fail, "{out}");
    assert_eq!(check(&checks, "Coupa").verdict, Verdict::Skip, "{out}");
}

#[tokio::test]
async fn a_legacy_api_key_is_warned_about_with_coupas_deadline() {
    let mut config = sim_config();
    config.api_key = Some("legacy-key-123".into());
    let s = setup(config, |t| t.replace("client_id = \"coupa-bridge\"\n", "")).await;
    let mut out = Vec::new();
    let mut env: Vec<(String, String)> = env()
        .into_iter()
        .filter(|(k, _)| !k.contains("CLIENT_SECRET"))
        .collect();
    env.push((
        "COUPA_BRIDGE__COUPA__API_KEY".into(),
        "legacy-key-123".into(),
    ));
    let checks = doctor::examine(
        &Options {
            config: &s.path,
            tenant: None,
            fix: false,
        },
        env,
        &mut out,
    )
    .await
    .expect("report");
    let out = String::from_utf8(out).expect("utf-8");
    let warning = check(&checks, "config: coupa.api_key");
    assert_eq!(warning.verdict, Verdict::Warn, "{out}");
    assert!(warning.found.contains("R35 (January 2023)"), "{out}");
    assert_eq!(
        check(&checks, "scopes: invoices").verdict,
        Verdict::Pass,
        "{out}"
    );
    assert!(!out.contains("legacy-key-123"), "no secret in the report");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_0_only_when_every_check_passes() {
    let s = setup(sim_config(), |t| t).await;
    let run = |fix: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coupa-bridge"));
        cmd.arg("doctor").arg("--config").arg(&s.path);
        if fix {
            cmd.arg("--fix");
        }
        for (k, v) in env() {
            cmd.env(k, v);
        }
        cmd.output().expect("doctor runs")
    };
    let out = tokio::task::block_in_place(|| run(true));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "contacts are missing:\n{stdout}"
    );
    assert!(
        stdout.contains("FIXED integration: ERP-INVOICES"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .is_some_and(|l| l.contains("3 failed")),
        "{stdout}"
    );
    s.add_contacts();
    let out = tokio::task::block_in_place(|| run(false));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(!stdout.contains(DEFAULT_CLIENT_SECRET) && !stdout.contains(DEFAULT_SFTP_PASSWORD));
}

#[tokio::test]
async fn an_external_erp_is_checked_where_it_answers() {
    // Files: a missing folder fails, naming it; created, the check passes.
    let s = setup(sim_config(), |t| {
        t.replace(
            "[erp]\nurl = \"sqlite://erp.db\"\n",
            "[erp]\nurl = \"sqlite://erp.db\"\nkind = \"files\"\n\n[erp.files]\n\
             outbox = \"erp-out\"\ninbox = \"erp-in\"\n",
        )
    })
    .await;
    std::fs::create_dir(s.dir.path().join("erp-out")).expect("outbox");
    let (checks, _) = s.doctor(false).await;
    let c = check(&checks, "erp endpoint");
    assert_eq!(c.verdict, Verdict::Fail, "{c:?}");
    assert!(c.found.contains("erp-in"), "{c:?}");
    assert!(!c.found.contains("erp-out"), "{c:?}");
    std::fs::create_dir(s.dir.path().join("erp-in")).expect("inbox");
    let (checks, _) = s.doctor(false).await;
    assert_eq!(check(&checks, "erp endpoint").verdict, Verdict::Pass);

    // HTTP: nothing listening fails; a server that answers anything passes.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let closed_port = closed.local_addr().expect("addr").port();
    drop(closed);
    let http = |port: u16| {
        move |t: String| {
            t.replace(
                "[erp]\nurl = \"sqlite://erp.db\"\n",
                &format!(
                    "[erp]\nurl = \"sqlite://erp.db\"\nkind = \"http\"\n\n[erp.http]\n\
                     invoices_url = \"http://127.0.0.1:{port}/invoices\"\n\
                     cancel_url = \"http://127.0.0.1:{port}/cancel\"\n\
                     pay_payments_url = \"http://127.0.0.1:{port}/pay\"\n"
                ),
            )
        }
    };
    let s = setup(sim_config(), http(closed_port)).await;
    let (checks, _) = s.doctor(false).await;
    let c = check(&checks, "erp endpoint");
    assert_eq!(c.verdict, Verdict::Fail, "{c:?}");
    assert!(c.found.contains("cannot connect"), "{c:?}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let app = axum::Router::new().fallback(|| async { axum::http::StatusCode::METHOD_NOT_ALLOWED });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let s = setup(sim_config(), http(port)).await;
    let (checks, _) = s.doctor(false).await;
    let c = check(&checks, "erp endpoint");
    assert_eq!(c.verdict, Verdict::Pass, "{c:?}");
    assert!(c.found.contains("HTTP 405"), "{c:?}");
}

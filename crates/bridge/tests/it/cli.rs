//! `coupa-bridge sim` and `coupa-bridge demo` as processes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn sim_starts_prints_its_urls_and_answers_a_token_and_a_listing() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coupa-bridge"))
        .args([
            "sim",
            "--seed",
            "7",
            "--invoices",
            "500",
            "--listen",
            "127.0.0.1:0",
            "--sftp-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let _guard = Killed(child);
    let mut base = None;
    let mut banner = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        banner.push_str(&line);
        banner.push('\n');
        if let Some(url) = line.trim().strip_prefix("API") {
            base = url.trim().strip_suffix("/api/invoices").map(str::to_owned);
        }
        if line.trim_start().starts_with("data") {
            break;
        }
    }
    let base = base.unwrap_or_else(|| panic!("no API URL in:\n{banner}"));
    assert!(banner.contains("500 invoices"), "{banner}");
    assert!(banner.contains("ssh-ed25519 "), "{banner}");
    assert!(
        !banner.contains(coupa_sim::config::DEFAULT_CLIENT_SECRET),
        "the secret is not printed"
    );

    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{base}/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", coupa_sim::config::DEFAULT_CLIENT_ID),
            ("client_secret", coupa_sim::config::DEFAULT_CLIENT_SECRET),
            ("scope", "core.invoice.read"),
        ])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token JSON");
    let token = token["access_token"].as_str().expect("access_token");
    let page: Vec<serde_json::Value> = http
        .get(format!("{base}/api/invoices?limit=5"))
        .bearer_auth(token)
        .header("accept", "application/json")
        .send()
        .await
        .expect("listing")
        .json()
        .await
        .expect("JSON list");
    assert_eq!(page.len(), 5);
    assert!(page.iter().all(|i| i["invoice-number"].is_string()));
}

/// The number after a summary line's label (`  listed                  240`).
fn figure(stdout: &str, label: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no figure for '{label}' in:\n{stdout}"))
}

#[test]
fn demo_exports_every_eligible_invoice_and_a_second_pass_finds_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_coupa-bridge"))
        .args(["demo", "--invoices", "120", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = figure(&stdout, "listed");
    assert!(listed > 20, "{stdout}");
    assert_eq!(figure(&stdout, "marked exported"), listed);
    assert_eq!(figure(&stdout, "left for the next pass"), 0);
    assert_eq!(
        figure(&stdout, "posted to the ERP")
            + figure(&stdout, "cancelled (voided)")
            + figure(&stdout, "rejected by the ERP"),
        listed
    );
    assert_eq!(
        figure(&stdout, "in the ERP now"),
        figure(&stdout, "posted to the ERP")
    );
    assert_eq!(figure(&stdout, "second pass"), 0);
    // The second ERP, over HTTP: every invoice answered, each held once, payments read back.
    let http_listed = figure(&stdout, "invoices listed");
    assert!(http_listed > 5, "{stdout}");
    assert_eq!(
        figure(&stdout, "POSTed and accepted")
            + figure(&stdout, "cancelled over HTTP")
            + figure(&stdout, "refused by the ERP"),
        http_listed
    );
    assert_eq!(
        figure(&stdout, "held by the ERP now"),
        figure(&stdout, "POSTed and accepted")
    );
    assert_eq!(
        figure(&stdout, "payments onto Coupa") + figure(&stdout, "payments failed"),
        figure(&stdout, "ERP payments on its feed")
    );
    assert_eq!(figure(&stdout, "second passes"), 0);
    assert!(dir.path().join("erp.db").exists() && dir.path().join("state.db").exists());
    assert!(
        stdout.contains(&dir.path().display().to_string()),
        "names its data folder"
    );
}

#[test]
fn sync_without_a_config_exits_2_saying_what_to_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_coupa-bridge"))
        .args(["sync", "invoices", "--config"])
        .arg(dir.path().join("missing.toml"))
        .env_clear()
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

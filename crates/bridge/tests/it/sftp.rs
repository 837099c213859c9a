//! The SFTP client against the simulator's real SFTP server: atomic uploads, refusing to
//! overwrite, the pinned host key, password and key authentication, and errors that say
//! whether to retry without showing a secret.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use coupa_bridge::config::SftpConfig;
use coupa_bridge::sftp::{Sftp, SftpAuth, SftpError, SftpTarget};
use coupa_sim::config::{DEFAULT_SFTP_PASSWORD, DEFAULT_SFTP_USER, SftpUser};
use coupa_sim::{SimConfig, SimHandle};
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{HashAlg, PrivateKey, PublicKey};
use secrecy::SecretString;

const DIR: &str = "/Incoming/InvoicePayments";

/// A simulator whose CSV loader will not run during the test, so uploads stay where they land.
async fn sim(sftp_users: Option<Vec<SftpUser>>) -> SimHandle {
    let mut config = SimConfig {
        invoices: 0,
        pay_payments: 0,
        csv_pickup: Duration::from_secs(3600),
        ..Default::default()
    };
    if let Some(users) = sftp_users {
        config.sftp_users = users;
    }
    coupa_sim::spawn(config)
        .await
        .expect("starting the simulator")
}

fn target(sim: &SimHandle, username: &str, auth: SftpAuth) -> SftpTarget {
    SftpTarget {
        host: sim.sftp_addr.ip().to_string(),
        port: sim.sftp_addr.port(),
        username: username.to_owned(),
        auth,
        host_key: sim.sftp_host_key.clone(),
        timeout: Duration::from_secs(10),
    }
}

fn password(p: &str) -> SftpAuth {
    SftpAuth::Password(SecretString::from(p.to_owned()))
}

fn default_target(sim: &SimHandle) -> SftpTarget {
    target(sim, DEFAULT_SFTP_USER, password(DEFAULT_SFTP_PASSWORD))
}

fn fingerprint(openssh_line: &str) -> String {
    PublicKey::from_openssh(openssh_line)
        .expect("an OpenSSH public key line")
        .fingerprint(HashAlg::Sha256)
        .to_string()
}

/// `len` bytes that are not all alike, so a misplaced chunk shows.
fn payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((i * 31 + i / 4096) % 251).expect("below 251"))
        .collect()
}

#[tokio::test]
async fn a_password_upload_lands_whole_under_its_name_and_leaves_no_temporary_file() {
    let sim = sim(None).await;
    let bytes = payload(3 * 1024 * 1024 + 123);
    let sftp = Sftp::connect(&default_target(&sim))
        .await
        .expect("connecting with the password");

    // Watches the folder from another thread while the upload runs: the final name must never
    // show a partial file, and the data must go through the temporary name.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (state, stop, full) = (sim.state.clone(), stop.clone(), bytes.len() as u64);
        std::thread::spawn(move || {
            let (mut saw_part, mut saw_partial_final) = (false, false);
            while !stop.load(Ordering::Relaxed) {
                for (name, size) in state.files.list_files(DIR) {
                    saw_part |= name == ".payments_x_.csv.part";
                    saw_partial_final |= name == "payments_x_.csv" && size != full;
                }
                std::thread::yield_now();
            }
            (saw_part, saw_partial_final)
        })
    };
    let uploaded = sftp.upload(DIR, "payments_x_.csv", &bytes).await;
    stop.store(true, Ordering::Relaxed);
    let (saw_part, saw_partial_final) = watcher.join().expect("the watcher thread");
    uploaded.expect("uploading");
    assert!(saw_part, "the bytes went to .payments_x_.csv.part first");
    assert!(
        !saw_partial_final,
        "the final name never held a partial file"
    );

    let path = format!("{DIR}/payments_x_.csv");
    assert_eq!(
        sim.state.files.list_files(DIR),
        vec![("payments_x_.csv".to_owned(), bytes.len() as u64)],
        "exactly the uploaded file, no .part left"
    );
    assert!(
        sim.state.files.read_file(&path) == Some(bytes),
        "the file holds exactly the uploaded bytes"
    );
    assert!(sftp.exists(&path).await.expect("stat of the file"));
    assert!(sftp.exists(DIR).await.expect("stat of the folder"));
    assert!(
        !sftp
            .exists(&format!("{DIR}/missing.csv"))
            .await
            .expect("stat of a missing file")
    );
    assert!(
        !sftp
            .exists("/no/such/folder/file.csv")
            .await
            .expect("stat below a missing folder")
    );
    sftp.close().await;
}

#[tokio::test]
async fn an_upload_onto_an_existing_name_is_refused_and_leaves_the_original_alone() {
    let sim = sim(None).await;
    let path = format!("{DIR}/payments_1.csv");
    sim.state
        .files
        .write_file(&path, b"original".to_vec())
        .expect("seeding the file");
    let sftp = Sftp::connect(&default_target(&sim))
        .await
        .expect("connecting");

    let err = sftp
        .upload(DIR, "payments_1.csv", b"replacement")
        .await
        .expect_err("the name is taken");

    assert!(
        matches!(&err, SftpError::Exists(p) if *p == path),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(
        sim.state.files.read_file(&path).as_deref(),
        Some(&b"original"[..])
    );
    assert_eq!(
        sim.state.files.list_files(DIR),
        vec![("payments_1.csv".to_owned(), 8)],
        "no temporary file left"
    );
    sftp.close().await;
}

#[tokio::test]
async fn a_stale_temporary_file_is_replaced_by_the_next_upload() {
    let sim = sim(None).await;
    sim.state
        .files
        .write_file(
            &format!("{DIR}/.payments_2.csv.part"),
            b"half of an earlier attempt that was much longer".to_vec(),
        )
        .expect("seeding a stale part file");
    let sftp = Sftp::connect(&default_target(&sim))
        .await
        .expect("connecting");

    sftp.upload(&format!("{DIR}/"), "payments_2.csv", b"a,b\n1,2\n")
        .await
        .expect("uploading over a stale part file");

    assert_eq!(
        sim.state.files.list_files(DIR),
        vec![("payments_2.csv".to_owned(), 8)]
    );
    assert_eq!(
        sim.state
            .files
            .read_file(&format!("{DIR}/payments_2.csv"))
            .as_deref(),
        Some(&b"a,b\n1,2\n"[..])
    );
    sftp.close().await;
}

#[tokio::test]
async fn another_host_key_than_the_pinned_one_is_refused_before_logging_in() {
    let sim = sim(None).await;
    let other = coupa_sim::sftp::openssh_line(coupa_sim::sftp::host_key_for_seed(99).public_key());
    assert_ne!(other, sim.sftp_host_key);
    let mut target = default_target(&sim);
    target.host_key = format!("{other} pinned@elsewhere");

    let err = Sftp::connect(&target)
        .await
        .expect_err("the key does not match");

    let (offered, pinned) = (fingerprint(&sim.sftp_host_key), fingerprint(&other));
    match &err {
        SftpError::HostKeyMismatch {
            host,
            offered: o,
            pinned: p,
        } => {
            assert_eq!(host, &target.host);
            assert_eq!(o, &offered);
            assert_eq!(p, &pinned);
        }
        other => panic!("expected HostKeyMismatch, got {other:?}"),
    }
    let shown = err.to_string();
    assert!(
        shown.contains(&offered) && shown.contains(&pinned),
        "{shown}"
    );
    assert!(!err.is_transient());
    assert!(sim.state.files.list_files(DIR).is_empty());
}

#[tokio::test]
async fn the_pinned_key_matches_whatever_its_comment() {
    let sim = sim(None).await;
    let mut target = default_target(&sim);
    target.host_key = format!("  {} some comment here\n", sim.sftp_host_key);
    let sftp = Sftp::connect(&target)
        .await
        .expect("the same key with a comment");
    sftp.close().await;

    target.host_key = "ssh-ed25519 not-base64".to_owned();
    let err = Sftp::connect(&target)
        .await
        .expect_err("a pinned key that does not parse");
    assert!(matches!(err, SftpError::PinnedKey(_)), "{err:?}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_error_that_never_shows_the_password() {
    let sim = sim(None).await;
    let secret = "wrong-but-secret-Pa55word";
    let target = target(&sim, DEFAULT_SFTP_USER, password(secret));
    assert!(!format!("{target:?}").contains(secret));

    let err = Sftp::connect(&target)
        .await
        .expect_err("the password is wrong");

    assert!(
        matches!(&err, SftpError::Auth { username, host } if username == DEFAULT_SFTP_USER && *host == target.host),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert!(!err.to_string().contains(secret), "{err}");
    assert!(!format!("{err:?}").contains(secret), "{err:?}");
    assert!(err.to_string().contains(DEFAULT_SFTP_USER));
}

/// An Ed25519 key from fixed bytes, written to a file in OpenSSH format.
fn key_file(dir: &tempfile::TempDir, seed: u8) -> (std::path::PathBuf, String) {
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]));
    let path = dir.path().join(format!("id_ed25519_{seed}"));
    let text = key.to_openssh(LineEnding::LF).expect("encoding the key");
    std::fs::write(&path, text.as_bytes()).expect("writing the key file");
    (path, coupa_sim::sftp::openssh_line(key.public_key()))
}

#[tokio::test]
async fn a_key_authorized_for_the_user_logs_in_and_uploads() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (authorized, public) = key_file(&dir, 7);
    let (stranger, _) = key_file(&dir, 8);
    let sim = sim(Some(vec![SftpUser {
        name: "erp".to_owned(),
        password: None,
        authorized_keys: vec![public],
    }]))
    .await;

    let sftp = Sftp::connect(&target(&sim, "erp", SftpAuth::Key(authorized)))
        .await
        .expect("connecting with the key");
    sftp.upload(DIR, "payments_key.csv", b"x,y\n")
        .await
        .expect("uploading");
    sftp.close().await;
    assert_eq!(
        sim.state
            .files
            .read_file(&format!("{DIR}/payments_key.csv"))
            .as_deref(),
        Some(&b"x,y\n"[..])
    );

    let err = Sftp::connect(&target(&sim, "erp", SftpAuth::Key(stranger)))
        .await
        .expect_err("a key that is not authorized");
    assert!(matches!(err, SftpError::Auth { .. }), "{err:?}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn an_unusable_key_file_is_named_without_its_content() {
    let sim = sim(None).await;
    let dir = tempfile::tempdir().expect("a temp dir");

    let missing = dir.path().join("no_such_key");
    let err = Sftp::connect(&target(&sim, "erp", SftpAuth::Key(missing.clone())))
        .await
        .expect_err("the key file is missing");
    assert!(
        matches!(&err, SftpError::Key { path, .. } if *path == missing),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert!(err.to_string().contains("no_such_key"), "{err}");

    let garbage = dir.path().join("garbage_key");
    let content = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END OPENSSH PRIVATE KEY-----\n";
    std::fs::write(&garbage, content).expect("writing a broken key file");
    let err = Sftp::connect(&target(&sim, "erp", SftpAuth::Key(garbage.clone())))
        .await
        .expect_err("the key file does not parse");
    assert!(
        matches!(&err, SftpError::Key { path, .. } if *path == garbage),
        "{err:?}"
    );
    assert!(!err.is_transient());
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains("c2VjcmV0LWtleS1tYXRlcmlhbA"), "{shown}");
    }
}

#[tokio::test]
async fn a_closed_port_is_a_transient_connect_error() {
    let sim = sim(None).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a port");
    let port = listener.local_addr().expect("its address").port();
    drop(listener);
    let mut target = default_target(&sim);
    target.port = port;

    let err = Sftp::connect(&target)
        .await
        .expect_err("nothing listens there");

    assert!(
        matches!(&err, SftpError::Connect { addr, .. } if *addr == format!("127.0.0.1:{port}")),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let sim = sim(None).await;
    // Accepts the connection (the backlog does) but never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a port");
    let mut target = default_target(&sim);
    target.port = silent.local_addr().expect("its address").port();
    target.timeout = Duration::from_millis(500);

    let started = std::time::Instant::now();
    let err = Sftp::connect(&target)
        .await
        .expect_err("the server says nothing");

    assert!(
        matches!(err, SftpError::Timeout { op: "connect" }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn the_target_comes_from_the_config_and_names_what_is_missing() {
    let complete = SftpConfig {
        host: Some("sftp.example.com".to_owned()),
        port: 2222,
        username: Some("acme".to_owned()),
        password: Some(SecretString::from("hunter2-secret".to_owned())),
        private_key_path: Some("/keys/id_ed25519".into()),
        host_key: Some("ssh-ed25519 AAAA".to_owned()),
        ..Default::default()
    };
    let target = SftpTarget::from_config(&complete).expect("a complete config");
    assert_eq!(target.host, "sftp.example.com");
    assert_eq!(target.port, 2222);
    assert_eq!(target.username, "acme");
    assert!(
        matches!(&target.auth, SftpAuth::Key(p) if p.as_os_str() == "/keys/id_ed25519"),
        "key auth wins: {:?}",
        target.auth
    );
    assert_eq!(target.timeout, Duration::from_secs(30));

    let password_only = SftpConfig {
        private_key_path: None,
        ..complete.clone()
    };
    let target = SftpTarget::from_config(&password_only).expect("password auth");
    assert!(matches!(target.auth, SftpAuth::Password(_)));
    assert!(!format!("{target:?}").contains("hunter2"));

    for (config, key) in [
        (
            SftpConfig {
                host: None,
                ..complete.clone()
            },
            "payments.sftp.host",
        ),
        (
            SftpConfig {
                username: None,
                ..complete.clone()
            },
            "payments.sftp.username",
        ),
        (
            SftpConfig {
                host_key: None,
                ..complete.clone()
            },
            "payments.sftp.host_key",
        ),
        (
            SftpConfig {
                password: None,
                private_key_path: None,
                ..complete.clone()
            },
            "payments.sftp.password",
        ),
    ] {
        let err = SftpTarget::from_config(&config).expect_err("a key is missing");
        assert!(err.contains(key), "{err} should name {key}");
    }
}

//! SFTP server and CSV loader, over the real protocol.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use coupa_doc::{Object, Value};
use coupa_sim::config::SftpUser;
use coupa_sim::csv_loader::{ARCHIVE_DIR, INCOMING_DIR, pickup_now};
use coupa_sim::vfs::{INCOMING_FOLDERS, OUTGOING_FOLDERS};
use coupa_sim::{SimConfig, SimHandle};
use russh::client::{self, AuthResult};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh_sftp::client::SftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{OpenFlags, StatusCode};
use tokio::io::AsyncWriteExt;

const USER: &str = "coupa";
const PASSWORD: &str = "sim-sftp-password";
const KEY_USER: &str = "erp-batch";

/// A key pair for the client side, fixed so the test config can list it.
fn client_key(byte: u8) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[byte; 32]))
}

fn config(seed: u64) -> SimConfig {
    let authorized = client_key(7)
        .public_key()
        .to_openssh()
        .expect("an Ed25519 key encodes");
    SimConfig {
        seed,
        invoices: 0,
        pay_payments: 0,
        // The tests call `pickup_now` themselves; the background pass must not race them.
        csv_pickup: Duration::from_secs(3600),
        sftp_users: vec![
            SftpUser {
                name: USER.to_owned(),
                password: Some(PASSWORD.to_owned()),
                authorized_keys: Vec::new(),
            },
            SftpUser {
                name: KEY_USER.to_owned(),
                password: None,
                authorized_keys: vec!["not a key".to_owned(), authorized],
            },
        ],
        ..Default::default()
    }
}

async fn sim(seed: u64) -> SimHandle {
    coupa_sim::spawn(config(seed))
        .await
        .expect("simulator starts")
}

/// Records the host key the server presents and accepts it (the test compares it afterwards).
struct Client {
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        if let PublicKeyOrCertificate::PublicKey { key, .. } = key {
            let line = key.to_openssh().unwrap_or_default();
            if let Ok(mut seen) = self.seen.lock() {
                *seen = Some(line.trim().to_owned());
            }
        }
        Ok(true)
    }
}

struct Connection {
    ssh: client::Handle<Client>,
    host_key: Arc<Mutex<Option<String>>>,
}

async fn connect(sim: &SimHandle) -> Connection {
    let host_key = Arc::new(Mutex::new(None));
    let ssh = client::connect(
        Arc::new(client::Config::default()),
        sim.sftp_addr,
        Client {
            seen: host_key.clone(),
        },
    )
    .await
    .expect("SSH connection");
    Connection { ssh, host_key }
}

impl Connection {
    fn host_key(&self) -> Option<String> {
        self.host_key.lock().ok().and_then(|k| k.clone())
    }

    async fn password(&mut self, user: &str, password: &str) -> bool {
        self.ssh
            .authenticate_password(user, password)
            .await
            .expect("auth exchange")
            .success()
    }

    async fn key(&mut self, user: &str, key: PrivateKey) -> AuthResult {
        self.ssh
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), None))
            .await
            .expect("auth exchange")
    }

    async fn sftp(&self) -> SftpSession {
        let channel = self
            .ssh
            .channel_open_session()
            .await
            .expect("session channel");
        channel
            .request_subsystem(true, "sftp")
            .await
            .expect("sftp subsystem");
        SftpSession::new(channel.into_stream())
            .await
            .expect("SFTP session")
    }
}

async fn logged_in(sim: &SimHandle) -> (Connection, SftpSession) {
    let mut conn = connect(sim).await;
    assert!(conn.password(USER, PASSWORD).await, "password login");
    let sftp = conn.sftp().await;
    (conn, sftp)
}

async fn names(sftp: &SftpSession, dir: &str) -> Vec<String> {
    let mut names: Vec<String> = sftp
        .read_dir(dir)
        .await
        .expect("directory lists")
        .map(|e| e.file_name())
        .collect();
    names.sort();
    names
}

async fn upload(sftp: &SftpSession, path: &str, bytes: &[u8]) {
    let mut f = sftp.create(path).await.expect("file created");
    f.write_all(bytes).await.expect("file written");
    f.shutdown().await.expect("file closed");
}

fn status_code(e: SftpError) -> StatusCode {
    match e {
        SftpError::Status(s) => s.status_code,
        other => panic!("expected an SFTP status, got {other:?}"),
    }
}

#[tokio::test]
async fn password_login_shows_the_coupa_folders() {
    let sim = sim(1).await;
    let (_conn, sftp) = logged_in(&sim).await;
    assert_eq!(sftp.canonicalize(".").await.expect("realpath"), "/");
    assert_eq!(
        sftp.canonicalize("Incoming/./InvoicePayments/")
            .await
            .expect("realpath"),
        "/Incoming/InvoicePayments"
    );
    assert_eq!(names(&sftp, "/").await, ["Archive", "Incoming", "Outgoing"]);
    let mut incoming: Vec<String> = INCOMING_FOLDERS.iter().map(|s| (*s).to_owned()).collect();
    incoming.sort();
    assert_eq!(names(&sftp, "/Incoming").await, incoming);
    assert_eq!(names(&sftp, "/Archive/Incoming").await, incoming);
    let mut outgoing: Vec<String> = OUTGOING_FOLDERS.iter().map(|s| (*s).to_owned()).collect();
    outgoing.sort();
    assert_eq!(names(&sftp, "Outgoing").await, outgoing);
    let meta = sftp
        .metadata("/Incoming/InvoicePayments")
        .await
        .expect("stat");
    assert!(meta.is_dir());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_wrong_password_or_an_unknown_user_is_refused() {
    let sim = sim(1).await;
    let mut conn = connect(&sim).await;
    assert!(!conn.password(USER, "wrong").await);
    assert!(!conn.password("nobody", PASSWORD).await);
    // A key-only account has no password to match.
    assert!(!conn.password(KEY_USER, "").await);
    // The connection stays usable for a correct attempt, as with OpenSSH.
    assert!(conn.password(USER, PASSWORD).await);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_listed_public_key_logs_in_and_another_is_refused() {
    let sim = sim(1).await;
    let mut conn = connect(&sim).await;
    assert!(!conn.key(KEY_USER, client_key(8)).await.success());
    // The right key for the wrong user.
    assert!(!conn.key(USER, client_key(7)).await.success());
    assert!(conn.key(KEY_USER, client_key(7)).await.success());
    let sftp = conn.sftp().await;
    assert_eq!(names(&sftp, "/").await, ["Archive", "Incoming", "Outgoing"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_host_key_is_the_advertised_one_and_follows_the_seed() {
    let a = sim(1).await;
    let b = sim(1).await;
    let c = sim(2).await;
    assert!(
        a.sftp_host_key.starts_with("ssh-ed25519 AAAA"),
        "{}",
        a.sftp_host_key
    );
    assert_eq!(a.sftp_host_key, b.sftp_host_key);
    assert_ne!(a.sftp_host_key, c.sftp_host_key);
    assert_eq!(
        a.sftp_host_key,
        coupa_sim::sftp::openssh_line(coupa_sim::sftp::host_key_for_seed(1).public_key())
    );
    for sim in [&a, &b, &c] {
        let mut conn = connect(sim).await;
        // The key is checked during key exchange, before authentication.
        assert!(conn.password(USER, PASSWORD).await);
        assert_eq!(conn.host_key().as_deref(), Some(sim.sftp_host_key.as_str()));
    }
    a.shutdown().await;
    b.shutdown().await;
    c.shutdown().await;
}

fn add_invoice(sim: &SimHandle, number: &str) -> i64 {
    let date =
        coupa_doc::lenient::parse_datetime("2025-01-15T00:00:00-07:00").expect("test date parses");
    sim.state.db.lock().invoices.insert_with(|id| {
        Object::new()
            .with("id", id)
            .with("status", "approved")
            .with("invoice-number", number)
            .with("invoice-date", date)
            .with(
                "supplier",
                Object::new()
                    .with("id", 9101)
                    .with("name", "SFTP Test Supplier")
                    .with("number", "SFTP-S-1"),
            )
            .with("payments", Value::Array(Vec::new()))
    })
}

#[tokio::test]
async fn an_uploaded_and_renamed_file_is_archived_and_loaded() {
    let sim = sim(1).await;
    let invoice = add_invoice(&sim, "SFTP-INV-1");
    let (_conn, sftp) = logged_in(&sim).await;
    let csv = "\"Supplier Name\",\"Supplier Number\",\"Invoice Number\",\"Check Amount Paid\",\"Check # / Note\",\"Check Payment Date\"\r\n\
               \"SFTP Test Supplier\",\"SFTP-S-1\",\"SFTP-INV-1\",\"125.40\",\"CHK-77\",\"2025-02-03\"\r\n\
               \"SFTP Test Supplier\",\"SFTP-S-1\",\"SFTP-INV-404\",\"10.00\",\"CHK-78\",\"2025-02-03\"\r\n";
    let tmp = format!("{INCOMING_DIR}/payments_20250203_120000Z_.csv.tmp");
    let fin = format!("{INCOMING_DIR}/payments_20250203_120000Z_.csv");
    upload(&sftp, &tmp, csv.as_bytes()).await;
    // Still under its temporary name: the loader leaves it alone.
    assert!(pickup_now(&sim.state).is_empty());
    sftp.rename(&tmp, &fin).await.expect("renamed");
    assert_eq!(
        sftp.metadata(&fin).await.expect("stat").size,
        Some(csv.len() as u64)
    );

    let ids = pickup_now(&sim.state);
    assert_eq!(ids.len(), 1);
    assert!(names(&sftp, INCOMING_DIR).await.is_empty());
    assert!(
        names(&sftp, ARCHIVE_DIR)
            .await
            .contains(&"payments_20250203_120000Z_.csv".to_owned())
    );
    let archived = sftp
        .read(format!("{ARCHIVE_DIR}/payments_20250203_120000Z_.csv"))
        .await
        .expect("archived file reads");
    assert_eq!(archived, csv.as_bytes());

    // Copies, so no lock is held across the awaits below.
    let (invoice, record) = {
        let db = sim.state.db.lock();
        (
            db.invoices.get(invoice).cloned().expect("invoice"),
            db.data_file_sources.get(ids[0]).cloned().expect("record"),
        )
    };
    let payments = invoice
        .get("payments")
        .and_then(Value::as_array)
        .map(<[Value]>::to_vec)
        .unwrap_or_default();
    assert_eq!(payments.len(), 1);
    assert_eq!(
        payments[0]
            .pointer(&["amount-paid"])
            .and_then(Value::as_decimal),
        "125.40".parse().ok()
    );
    assert_eq!(
        payments[0].pointer(&["notes"]).and_then(Value::as_str),
        Some("CHK-77")
    );
    assert_eq!(record.get("status").and_then(Value::as_str), Some("done"));
    assert_eq!(
        record.get("file-file-name").and_then(Value::as_str),
        Some("_Incoming_InvoicePayments_payments_20250203_120000Z_.csv")
    );
    assert_eq!(
        record.get("result-text").and_then(Value::as_str),
        Some("2 rows processed, creating 1 new row and updating 0 rows. 1 row failed.")
    );
    let errors = record
        .get("upload-errors")
        .and_then(Value::as_array)
        .unwrap_or_default();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].pointer(&["type"]).and_then(Value::as_str),
        Some("UploadRowError")
    );
    assert_eq!(errors[0].pointer(&["row"]), Some(&Value::Int(3)));
    let message = errors[0]
        .pointer(&["field-errors"])
        .and_then(Value::as_array)
        .and_then(|m| m.first())
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        message.starts_with("No approved invoice matches invoice number 'SFTP-INV-404'"),
        "{message}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn file_operations_answer_with_sftp_status_codes() {
    let sim = sim(1).await;
    let (_conn, sftp) = logged_in(&sim).await;
    let dir = "/Outgoing/Invoices";

    assert_eq!(
        status_code(sftp.metadata("/Nope").await.expect_err("missing")),
        StatusCode::NoSuchFile
    );
    assert_eq!(
        status_code(
            sftp.open(format!("{dir}/missing.csv"))
                .await
                .err()
                .expect("missing")
        ),
        StatusCode::NoSuchFile
    );
    assert_eq!(
        status_code(
            sftp.remove_dir("/Incoming/Users")
                .await
                .expect_err("protected")
        ),
        StatusCode::PermissionDenied
    );
    assert_eq!(
        status_code(
            sftp.rename("/Incoming", "/Elsewhere")
                .await
                .expect_err("protected")
        ),
        StatusCode::PermissionDenied
    );

    upload(&sftp, &format!("{dir}/a.csv"), b"first").await;
    upload(&sftp, &format!("{dir}/b.csv"), b"second").await;
    assert_eq!(
        status_code(
            sftp.rename(format!("{dir}/a.csv"), format!("{dir}/b.csv"))
                .await
                .expect_err("target exists")
        ),
        StatusCode::Failure
    );
    assert_eq!(
        status_code(
            sftp.open_with_flags(
                format!("{dir}/a.csv"),
                OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE
            )
            .await
            .err()
            .expect("exists")
        ),
        StatusCode::Failure
    );

    // Append, then read back what the tree holds.
    let mut f = sftp
        .open_with_flags(format!("{dir}/a.csv"), OpenFlags::WRITE | OpenFlags::APPEND)
        .await
        .expect("opens for append");
    f.write_all(b"+more").await.expect("appends");
    f.shutdown().await.expect("closes");
    assert_eq!(
        sftp.read(format!("{dir}/a.csv")).await.expect("reads"),
        b"first+more"
    );
    assert_eq!(
        sim.state.files.read_file(&format!("{dir}/a.csv")),
        Some(b"first+more".to_vec())
    );
    // A bigger file crosses several SFTP packets each way.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    upload(&sftp, &format!("{dir}/big.bin"), &big).await;
    assert_eq!(
        sftp.read(format!("{dir}/big.bin")).await.expect("reads"),
        big
    );

    sftp.create_dir(format!("{dir}/sub")).await.expect("mkdir");
    assert_eq!(
        status_code(
            sftp.create_dir(format!("{dir}/sub"))
                .await
                .expect_err("exists")
        ),
        StatusCode::Failure
    );
    upload(&sftp, &format!("{dir}/sub/c.csv"), b"c").await;
    assert_eq!(
        status_code(
            sftp.remove_dir(format!("{dir}/sub"))
                .await
                .expect_err("not empty")
        ),
        StatusCode::Failure
    );
    sftp.remove_file(format!("{dir}/sub/c.csv"))
        .await
        .expect("removes");
    sftp.remove_dir(format!("{dir}/sub")).await.expect("rmdir");
    assert!(!sftp.try_exists(format!("{dir}/sub")).await.expect("stat"));
    assert_eq!(
        status_code(
            sftp.remove_file(format!("{dir}/sub/c.csv"))
                .await
                .expect_err("gone")
        ),
        StatusCode::NoSuchFile
    );
    // setstat is accepted and changes nothing.
    let meta = sftp.metadata(format!("{dir}/a.csv")).await.expect("stat");
    sftp.set_metadata(format!("{dir}/a.csv"), meta)
        .await
        .expect("setstat");
    // The client hides "." and "..", which the server sends as OpenSSH does.
    assert_eq!(names(&sftp, dir).await, ["a.csv", "b.csv", "big.bin"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_open_sessions() {
    let sim = sim(1).await;
    let addr = sim.sftp_addr;
    let (_conn, sftp) = logged_in(&sim).await;
    assert_eq!(names(&sftp, "/").await, ["Archive", "Incoming", "Outgoing"]);
    tokio::time::timeout(Duration::from_secs(10), sim.shutdown())
        .await
        .expect("the simulator stops with a session open");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

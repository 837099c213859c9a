//! The SFTP client that uploads payment CSV files to Coupa's SFTP server (russh + russh-sftp).
//!
//! What it guarantees:
//!
//! - **The server is the one configured.** The server's host key is pinned
//!   (`payments.sftp.host_key`) and checked during the key exchange, before any credential is
//!   sent: any other key, or a certificate, is refused with [`SftpError::HostKeyMismatch`]
//!   naming the SHA256 fingerprints of both keys. There is no "trust on first use".
//! - **No partial file under the final name.** [`Sftp::upload`] writes `dir/.{name}.part` (a
//!   name Coupa's loader skips), closes it, then renames it to `dir/name`. SFTP v3 `rename`
//!   refuses an existing target, so a file already there is never replaced: the upload answers
//!   [`SftpError::Exists`] and removes its temporary file.
//! - **Nothing waits forever.** Connecting and authenticating together, starting the SFTP
//!   session, and each SFTP request are bounded by [`SftpTarget::timeout`] and fail with
//!   [`SftpError::Timeout`] naming the step.
//! - **Secrets stay secret.** The password is a [`SecretString`], the private key file's content
//!   is only held while it is parsed; neither appears in an error, a log line or `Debug` output.
//! - **Errors say what to do.** [`SftpError::is_transient`] separates what is worth retrying on
//!   the next pass (connection, I/O, timeouts) from what a person must fix (host key,
//!   credentials, key file, an existing file).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::StreamExt as _;
use russh::client::{self, Handle};
use russh::keys::{
    Algorithm, HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate,
};
use russh::{ChannelMsg, Disconnect, Preferred};
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpClientError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use secrecy::{ExposeSecret, SecretString};

use crate::config::SftpConfig;

/// Bytes per SFTP `write` request: 32 KiB, the size every SFTP server must accept.
const CHUNK: usize = 32 * 1024;

/// Write requests in flight at once, so a long upload is not one round trip per chunk.
const WRITES_IN_FLIGHT: usize = 8;

/// The bound on each network step when the configuration does not give one.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to connect: one SFTP account on one server.
#[derive(Clone, Debug)]
pub struct SftpTarget {
    /// Host name or address of the SFTP server.
    pub host: String,
    /// SSH port.
    pub port: u16,
    /// SFTP user.
    pub username: String,
    /// How the user proves who it is.
    pub auth: SftpAuth,
    /// The server's public host key as an OpenSSH line ("ssh-ed25519 AAAA..." , an optional
    /// trailing comment ignored). Pinned: any other key is refused.
    pub host_key: String,
    /// Bound on connecting+authenticating and on each SFTP operation.
    pub timeout: Duration,
}

/// How the SFTP user authenticates.
#[derive(Clone)]
pub enum SftpAuth {
    /// A password (redacted in `Debug`).
    Password(SecretString),
    /// An unencrypted OpenSSH private key file (`-----BEGIN OPENSSH PRIVATE KEY-----`).
    Key(PathBuf),
}

impl fmt::Debug for SftpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SftpAuth::Password(_) => f.write_str("Password(<redacted>)"),
            SftpAuth::Key(path) => f.debug_tuple("Key").field(path).finish(),
        }
    }
}

impl SftpTarget {
    /// From `[payments.sftp]`. `Err(String)` naming the missing key (`payments.sftp.host` etc.)
    /// when a required field is absent (an empty value counts as absent). Key auth wins when
    /// `private_key_path` is set; the timeout is 30 s.
    pub fn from_config(c: &SftpConfig) -> Result<SftpTarget, String> {
        fn required(value: Option<&String>, key: &str) -> Result<String, String> {
            value
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("{key} is not set"))
        }
        let host = required(c.host.as_ref(), "payments.sftp.host")?;
        let username = required(c.username.as_ref(), "payments.sftp.username")?;
        let host_key = required(c.host_key.as_ref(), "payments.sftp.host_key")?;
        let auth = match (&c.private_key_path, &c.password) {
            (Some(path), _) if !path.as_os_str().is_empty() => SftpAuth::Key(path.clone()),
            (_, Some(password)) if !password.expose_secret().is_empty() => {
                SftpAuth::Password(password.clone())
            }
            _ => {
                return Err(
                    "payments.sftp.password or payments.sftp.private_key_path is not set"
                        .to_owned(),
                );
            }
        };
        Ok(SftpTarget {
            host,
            port: c.port,
            username,
            auth,
            host_key,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why an SFTP step failed.
#[derive(Debug, thiserror::Error)]
pub enum SftpError {
    /// The server offered another key than the pinned one. Messages show SHA256 fingerprints of
    /// both keys (never a secret).
    #[error(
        "the SFTP server {host} offered host key {offered}, not the pinned {pinned}: refusing to \
         connect (if the server's key really changed, update payments.sftp.host_key)"
    )]
    HostKeyMismatch {
        host: String,
        offered: String,
        pinned: String,
    },
    /// The pinned key in the config does not parse.
    #[error("the pinned SFTP host key (payments.sftp.host_key) is not usable: {0}")]
    PinnedKey(String),
    /// Password or key refused.
    #[error("the SFTP server {host} refused the credentials of user {username}")]
    Auth { username: String, host: String },
    /// The private key file cannot be read or parsed (path named, never its content).
    #[error("cannot use the SSH private key {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    /// The SSH connection could not be set up or broke down.
    #[error("cannot connect to the SFTP server {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// The upload's final name is already taken; nothing was replaced.
    #[error("{0} already exists on the SFTP server; it was not replaced")]
    Exists(String),
    /// An SFTP operation failed: which operation, on which path, why.
    #[error("SFTP {op} of {path} failed: {reason}")]
    Io {
        op: &'static str,
        path: String,
        reason: String,
    },
    /// A step took longer than [`SftpTarget::timeout`].
    #[error("SFTP {op} timed out")]
    Timeout { op: &'static str },
}

impl SftpError {
    /// Connection problems, I/O and timeouts are worth retrying next pass; host key, auth and
    /// key-file errors are configuration errors a person must fix (and an existing file stays
    /// existing).
    pub fn is_transient(&self) -> bool {
        match self {
            SftpError::Connect { .. } | SftpError::Io { .. } | SftpError::Timeout { .. } => true,
            SftpError::HostKeyMismatch { .. }
            | SftpError::PinnedKey(_)
            | SftpError::Auth { .. }
            | SftpError::Key { .. }
            | SftpError::Exists(_) => false,
        }
    }
}

/// The russh client handler: accepts exactly the pinned host key.
struct PinnedHostKey {
    pinned: PublicKey,
    /// The fingerprint of a refused key, for the error `connect` returns.
    refused: Arc<OnceLock<String>>,
}

impl client::Handler for PinnedHostKey {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        match offered {
            // The key data, not the comment, is the identity.
            PublicKeyOrCertificate::PublicKey { key, .. }
                if key.key_data() == self.pinned.key_data() =>
            {
                Ok(true)
            }
            // We advertise no certificate algorithms; a certificate is not the pinned key.
            _ => {
                let _ = self.refused.set(fingerprint(&offered.public_key()));
                Ok(false)
            }
        }
    }
}

fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Parses the pinned key, refusing algorithms russh cannot negotiate.
fn parse_pinned(line: &str) -> Result<PublicKey, SftpError> {
    let key = PublicKey::from_openssh(line.trim())
        .map_err(|e| SftpError::PinnedKey(format!("not an OpenSSH public key line ({e})")))?;
    match key.algorithm() {
        Algorithm::Ed25519 | Algorithm::Ecdsa { .. } | Algorithm::Rsa { .. } => Ok(key),
        other => Err(SftpError::PinnedKey(format!(
            "host key algorithm {other} is not supported (use an ssh-ed25519, ecdsa-sha2-* or \
             ssh-rsa key)"
        ))),
    }
}

/// Host key algorithms to ask for: only the pinned key's, so a server with several host keys
/// presents the one we pinned.
fn host_key_algorithms(pinned: &PublicKey) -> Vec<Algorithm> {
    match pinned.algorithm() {
        Algorithm::Rsa { .. } => vec![
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
            Algorithm::Rsa { hash: None },
        ],
        other => vec![other],
    }
}

/// Reads and parses an unencrypted OpenSSH private key; errors name the path, never the content.
async fn load_key(path: &Path) -> Result<PrivateKey, SftpError> {
    let error = |reason: String| SftpError::Key {
        path: path.to_owned(),
        reason,
    };
    // Held as a secret so the text is wiped when dropped.
    let text = SecretString::from(
        tokio::fs::read_to_string(path)
            .await
            .map_err(|e| error(e.to_string()))?,
    );
    let key = PrivateKey::from_openssh(text.expose_secret())
        .map_err(|e| error(format!("not an OpenSSH private key ({e})")))?;
    if key.is_encrypted() {
        return Err(error(
            "the key is protected by a passphrase; only unencrypted keys are supported".to_owned(),
        ));
    }
    Ok(key)
}

fn connect_error(addr: &str, e: &russh::Error) -> SftpError {
    SftpError::Connect {
        addr: addr.to_owned(),
        reason: e.to_string(),
    }
}

/// `dir/name`, with one slash between them.
fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

fn is_no_such_file(e: &SftpClientError) -> bool {
    matches!(e, SftpClientError::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

/// What `connect` authenticates with, the key file already read.
enum Credential<'a> {
    Password(&'a SecretString),
    Key(Arc<PrivateKey>),
}

/// An open SFTP session over an authenticated SSH connection.
pub struct Sftp {
    ssh: Handle<PinnedHostKey>,
    sftp: RawSftpSession,
    timeout: Duration,
    addr: String,
    username: String,
}

impl fmt::Debug for Sftp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sftp")
            .field("addr", &self.addr)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Sftp {
    /// Connects, checks the host key against the pinned one, authenticates and starts the SFTP
    /// subsystem. The pinned key and the private key file are checked before any network step.
    pub async fn connect(target: &SftpTarget) -> Result<Sftp, SftpError> {
        let pinned = parse_pinned(&target.host_key)?;
        let credential = match &target.auth {
            SftpAuth::Password(password) => Credential::Password(password),
            SftpAuth::Key(path) => Credential::Key(Arc::new(load_key(path).await?)),
        };
        let addr = target.addr();
        let refused = Arc::new(OnceLock::new());
        let handler = PinnedHostKey {
            pinned: pinned.clone(),
            refused: refused.clone(),
        };
        let config = Arc::new(client::Config {
            preferred: Preferred {
                key: Cow::Owned(host_key_algorithms(&pinned)),
                ..Preferred::DEFAULT
            },
            nodelay: true,
            ..Default::default()
        });

        let login = async {
            let mut ssh =
                match client::connect(config, (target.host.as_str(), target.port), handler).await {
                    Ok(ssh) => ssh,
                    Err(e) => {
                        return Err(match refused.get() {
                            Some(offered) => SftpError::HostKeyMismatch {
                                host: target.host.clone(),
                                offered: offered.clone(),
                                pinned: fingerprint(&pinned),
                            },
                            None => connect_error(&addr, &e),
                        });
                    }
                };
            let result = match credential {
                Credential::Password(password) => {
                    ssh.authenticate_password(target.username.as_str(), password.expose_secret())
                        .await
                }
                Credential::Key(key) => {
                    let hash = if key.algorithm().is_rsa() {
                        // No answer means no `server-sig-algs`: rsa-sha2 is still the best bet.
                        match ssh.best_supported_rsa_hash().await {
                            Ok(Some(hash)) => hash,
                            Ok(None) => Some(HashAlg::Sha256),
                            Err(e) => return Err(connect_error(&addr, &e)),
                        }
                    } else {
                        None
                    };
                    ssh.authenticate_publickey(
                        target.username.as_str(),
                        PrivateKeyWithHashAlg::new(key, hash),
                    )
                    .await
                }
            }
            .map_err(|e| connect_error(&addr, &e))?;
            if !result.success() {
                let _ = ssh
                    .disconnect(Disconnect::ByApplication, "authentication refused", "en")
                    .await;
                return Err(SftpError::Auth {
                    username: target.username.clone(),
                    host: target.host.clone(),
                });
            }
            Ok(ssh)
        };
        let ssh = tokio::time::timeout(target.timeout, login)
            .await
            .map_err(|_| SftpError::Timeout { op: "connect" })??;

        let start = async {
            let mut channel = ssh
                .channel_open_session()
                .await
                .map_err(|e| connect_error(&addr, &e))?;
            channel
                .request_subsystem(true, "sftp")
                .await
                .map_err(|e| connect_error(&addr, &e))?;
            loop {
                match channel.wait().await {
                    Some(ChannelMsg::Success) => break,
                    Some(ChannelMsg::Failure) => {
                        return Err(SftpError::Connect {
                            addr: addr.clone(),
                            reason: "the server refused the sftp subsystem".to_owned(),
                        });
                    }
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                        return Err(SftpError::Connect {
                            addr: addr.clone(),
                            reason: "the server closed the channel before starting sftp".to_owned(),
                        });
                    }
                    Some(_) => {}
                }
            }
            let sftp = RawSftpSession::new_with_config(
                channel.into_stream(),
                russh_sftp::client::Config {
                    // Our own bound comes first; the library's is a backstop.
                    request_timeout_secs: target.timeout.as_secs().saturating_add(1),
                    ..Default::default()
                },
            );
            match sftp.init().await {
                Ok(_) => Ok(sftp),
                Err(SftpClientError::Timeout) => Err(SftpError::Timeout { op: "start sftp" }),
                Err(e) => Err(SftpError::Connect {
                    addr: addr.clone(),
                    reason: format!("starting sftp: {e}"),
                }),
            }
        };
        let sftp = match tokio::time::timeout(target.timeout, start).await {
            Ok(Ok(sftp)) => sftp,
            Ok(Err(e)) => {
                disconnect(&ssh, target.timeout).await;
                return Err(e);
            }
            Err(_) => {
                disconnect(&ssh, target.timeout).await;
                return Err(SftpError::Timeout { op: "start sftp" });
            }
        };
        tracing::info!(addr = %addr, user = %target.username, "SFTP session started");
        Ok(Sftp {
            ssh,
            sftp,
            timeout: target.timeout,
            addr,
            username: target.username.clone(),
        })
    }

    /// Uploads `bytes` as `dir/name` atomically: writes `dir/.{name}.part` (removing a stale one
    /// first), closes it, then renames it to `dir/name`. The final name never holds a partial
    /// file. If `dir/name` already exists, returns SftpError::Exists and leaves the temporary
    /// file removed.
    ///
    /// `name` must be a plain file name (no `/`). After a `Timeout` on the final rename the
    /// outcome is unknown: [`Sftp::exists`] on `dir/name` tells.
    pub async fn upload(&self, dir: &str, name: &str, bytes: &[u8]) -> Result<(), SftpError> {
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            return Err(SftpError::Io {
                op: "upload",
                path: name.to_owned(),
                reason: "not a plain file name".to_owned(),
            });
        }
        let target = join(dir, name);
        let part = join(dir, &format!(".{name}.part"));
        if self.exists(&target).await? {
            return Err(SftpError::Exists(target));
        }
        self.remove_if_present(&part).await?;

        if let Err(e) = self.write_file(&part, bytes).await {
            if !matches!(e, SftpError::Timeout { .. }) {
                self.discard(&part).await;
            }
            return Err(e);
        }

        let renamed = self
            .call(
                "rename",
                &part,
                self.sftp.rename(part.as_str(), target.as_str()),
            )
            .await;
        match renamed {
            Ok(_) => {
                tracing::info!(addr = %self.addr, path = %target, bytes = bytes.len(), "SFTP upload done");
                Ok(())
            }
            Err(e @ SftpError::Timeout { .. }) => Err(e),
            Err(e) => {
                self.discard(&part).await;
                // SFTP v3 refuses to rename onto an existing name: someone put it there meanwhile.
                if matches!(self.exists(&target).await, Ok(true)) {
                    Err(SftpError::Exists(target))
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Whether a file or folder exists at `path` (stat; "no such file" = false; other failures =
    /// Err).
    pub async fn exists(&self, path: &str) -> Result<bool, SftpError> {
        match self.bounded("stat", self.sftp.stat(path)).await? {
            Ok(_) => Ok(true),
            Err(e) if is_no_such_file(&e) => Ok(false),
            Err(e) => Err(io_error("stat", path, &e)),
        }
    }

    /// Removes the file at `path`; a file that is not there is not an error (removing is
    /// idempotent), any other failure is.
    pub async fn remove(&self, path: &str) -> Result<(), SftpError> {
        self.remove_if_present(path).await
    }

    /// The regular files directly in `dir`, by name (`.` and `..`, folders and anything else
    /// left out), read page by page until the server says it is done. An entry listed without
    /// its type (a server may leave it out) is asked about with `stat`.
    pub async fn list_files(&self, dir: &str) -> Result<Vec<String>, SftpError> {
        let handle = self
            .call("opendir", dir, self.sftp.opendir(dir))
            .await?
            .handle;
        let mut names = Vec::new();
        let mut untyped = Vec::new();
        let listed = loop {
            match self
                .bounded("readdir", self.sftp.readdir(handle.as_str()))
                .await
            {
                Ok(Ok(page)) => {
                    for f in page.files {
                        if f.filename == "." || f.filename == ".." {
                            continue;
                        }
                        match f.attrs.permissions {
                            None => untyped.push(f.filename),
                            Some(_) if f.attrs.file_type().is_file() => names.push(f.filename),
                            Some(_) => {}
                        }
                    }
                }
                Ok(Err(SftpClientError::Status(s))) if s.status_code == StatusCode::Eof => {
                    break Ok(());
                }
                Ok(Err(e)) => break Err(io_error("readdir", dir, &e)),
                Err(e) => break Err(e),
            }
        };
        let closed = self
            .call("close", dir, self.sftp.close(handle.as_str()))
            .await;
        listed?;
        closed?;
        for name in untyped {
            let path = join(dir, &name);
            let attrs = self
                .call("stat", &path, self.sftp.stat(path.as_str()))
                .await?;
            if attrs.attrs.file_type().is_file() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// The whole content of the file at `path`.
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>, SftpError> {
        let handle = self
            .call(
                "open",
                path,
                self.sftp
                    .open(path, OpenFlags::READ, FileAttributes::empty()),
            )
            .await?
            .handle;
        let mut bytes = Vec::new();
        let read = loop {
            let offset = bytes.len() as u64;
            let chunk = self
                .bounded(
                    "read",
                    self.sftp.read(handle.as_str(), offset, CHUNK as u32),
                )
                .await;
            match chunk {
                // Servers may answer short reads: only EOF (or an empty answer) ends the file.
                Ok(Ok(data)) if data.data.is_empty() => break Ok(()),
                Ok(Ok(data)) => bytes.extend_from_slice(&data.data),
                Ok(Err(SftpClientError::Status(s))) if s.status_code == StatusCode::Eof => {
                    break Ok(());
                }
                Ok(Err(e)) => break Err(io_error("read", path, &e)),
                Err(e) => break Err(e),
            }
        };
        if let Err(e @ SftpError::Timeout { .. }) = read {
            return Err(e);
        }
        let closed = self
            .call("close", path, self.sftp.close(handle.as_str()))
            .await;
        read?;
        closed?;
        Ok(bytes)
    }

    /// Creates or truncates the file at `path` and writes `bytes` into it, not atomically: for
    /// a temporary name that a later [`Sftp::rename`] publishes.
    pub async fn write(&self, path: &str, bytes: &[u8]) -> Result<(), SftpError> {
        self.write_file(path, bytes).await
    }

    /// Renames `from` to `to` (one SFTP v3 `rename`: atomic on the server, refused when `to`
    /// exists).
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), SftpError> {
        self.call("rename", from, self.sftp.rename(from, to))
            .await
            .map(|_| ())
    }

    /// Creates the folder `path` unless it is already there (its parent must exist).
    pub async fn mkdir_if_missing(&self, path: &str) -> Result<(), SftpError> {
        if self.exists(path).await? {
            return Ok(());
        }
        match self
            .bounded("mkdir", self.sftp.mkdir(path, FileAttributes::empty()))
            .await?
        {
            Ok(_) => Ok(()),
            // Made meanwhile by someone else: what was asked for.
            Err(e) => match self.exists(path).await {
                Ok(true) => Ok(()),
                _ => Err(io_error("mkdir", path, &e)),
            },
        }
    }

    /// Ends the SFTP session and the SSH connection politely.
    pub async fn close(self) {
        if let Err(e) = self.sftp.close_session() {
            tracing::debug!(addr = %self.addr, error = %e, "closing the SFTP session");
        }
        disconnect(&self.ssh, self.timeout).await;
        tracing::debug!(addr = %self.addr, "SFTP connection closed");
    }

    /// Creates or truncates `path`, writes `bytes` in chunks (a few in flight), closes it.
    async fn write_file(&self, path: &str, bytes: &[u8]) -> Result<(), SftpError> {
        let handle = self
            .call(
                "open",
                path,
                self.sftp.open(
                    path,
                    OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
                    FileAttributes::empty(),
                ),
            )
            .await?
            .handle;

        // Up to WRITES_IN_FLIGHT writes at once. A plain loop over `FuturesUnordered`, not a
        // `stream::iter(..).map(..).buffer_unordered(..)` chain: through that chain rustc cannot
        // prove the upload's future `Send` for every lifetime, and a daemon spawns it.
        let mut chunks = bytes.chunks(CHUNK).enumerate();
        let mut writes = futures_util::stream::FuturesUnordered::new();
        let mut written = Ok(());
        loop {
            while writes.len() < WRITES_IN_FLIGHT {
                let Some((i, chunk)) = chunks.next() else {
                    break;
                };
                let offset = (i * CHUNK) as u64;
                writes.push(self.call(
                    "write",
                    path,
                    self.sftp.write(handle.as_str(), offset, chunk.to_vec()),
                ));
            }
            match writes.next().await {
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    written = Err(e);
                    break;
                }
                None => break,
            }
        }
        drop(writes);

        if let Err(e @ SftpError::Timeout { .. }) = written {
            // The session is stalled: closing would only wait again.
            return Err(e);
        }
        let closed = self
            .call("close", path, self.sftp.close(handle.as_str()))
            .await;
        written?;
        closed.map(|_| ())
    }

    /// Removes `path` if it is there.
    async fn remove_if_present(&self, path: &str) -> Result<(), SftpError> {
        match self.bounded("remove", self.sftp.remove(path)).await? {
            Ok(_) => Ok(()),
            Err(e) if is_no_such_file(&e) => Ok(()),
            Err(e) => Err(io_error("remove", path, &e)),
        }
    }

    /// Best-effort removal of a temporary file after a failure; the next upload removes a
    /// leftover anyway.
    async fn discard(&self, path: &str) {
        if let Err(e) = self.remove_if_present(path).await {
            tracing::warn!(addr = %self.addr, path, error = %e, "could not remove a temporary upload file");
        }
    }

    /// Runs one SFTP request within the timeout; failures become [`SftpError::Io`].
    async fn call<T>(
        &self,
        op: &'static str,
        path: &str,
        request: impl Future<Output = Result<T, SftpClientError>>,
    ) -> Result<T, SftpError> {
        self.bounded(op, request)
            .await?
            .map_err(|e| io_error(op, path, &e))
    }

    /// Runs one SFTP request within the timeout, leaving its own error to the caller.
    async fn bounded<T>(
        &self,
        op: &'static str,
        request: impl Future<Output = Result<T, SftpClientError>>,
    ) -> Result<Result<T, SftpClientError>, SftpError> {
        match tokio::time::timeout(self.timeout, request).await {
            Err(_) | Ok(Err(SftpClientError::Timeout)) => Err(SftpError::Timeout { op }),
            Ok(result) => Ok(result),
        }
    }
}

fn io_error(op: &'static str, path: &str, e: &SftpClientError) -> SftpError {
    SftpError::Io {
        op,
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// Sends SSH_MSG_DISCONNECT, within `timeout`; failures only matter to the log.
async fn disconnect(ssh: &Handle<PinnedHostKey>, timeout: Duration) {
    let bye = ssh.disconnect(Disconnect::ByApplication, "done", "en");
    match tokio::time::timeout(timeout, bye).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "SSH disconnect"),
        Err(_) => tracing::debug!("SSH disconnect timed out"),
    }
}

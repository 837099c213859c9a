//! The simulator's SFTP server: Coupa's SFTP site over the in-memory [`Vfs`].
//!
//! SSH comes from russh, the SFTP protocol (version 3, what OpenSSH and most libraries speak)
//! from russh-sftp; this module supplies authentication and the file operations.
//!
//! - **Accounts.** `config.sftp_users`: a user logs in with its password (when it has one) or
//!   with a key from its `authorized_keys` (OpenSSH public key lines; lines that do not parse are
//!   logged and ignored). Everything else is refused. Coupa authenticates "by username and
//!   password or by SSH key" (C-SFTP).
//! - **Host key.** Ed25519, derived from `config.seed` (see [`host_key_for_seed`]): the same seed
//!   always gives the same host key, so a client can pin it (`known_hosts`, or
//!   [`Server::host_key_openssh`] / `RunningSim::sftp_host_key`), and different seeds give
//!   different keys. Anyone who knows the seed knows the private key: this is for a simulator,
//!   never for a server that guards anything.
//! - **Operations.** `realpath`, `opendir`/`readdir`, `stat`/`lstat`/`fstat`, `open` (read,
//!   write, create, truncate, append, exclusive), `read`, `write`, `close`, `rename` (fails when
//!   the target exists, as SFTP v3 says; no `posix-rename` extension is offered), `remove`,
//!   `mkdir`, `rmdir`, and `setstat`/`fsetstat` (accepted, nothing changes: the tree keeps no
//!   owners or modes). Symlinks are not supported (`OpUnsupported`). Every session starts at `/`,
//!   and relative paths are relative to it.
//! - **Errors.** A missing path answers `NoSuchFile`; touching Coupa's own folders (removing or
//!   renaming them) and writing through a read-only handle answer `PermissionDenied`; anything
//!   else (target exists, not empty, not a directory, bad handle) answers `Failure` with a message
//!   that says why.
//! - **Shell.** There is none: `exec` and `shell` requests are refused, only the `sftp` subsystem
//!   is served.
//! - **Shutdown.** When the shutdown future completes the server stops accepting and disconnects
//!   the open sessions.
//!
//! Coupa announces a limit of 5 SFTP connections per user "in an upcoming release"; it is not
//! enforced here.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};
use russh::server::{
    Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Server as _, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;
use tokio::net::TcpListener;

use crate::SimState;
use crate::vfs::{self, FileId, Kind, Meta, OpenOptions, Vfs, VfsError};

/// Mixed into the seed so the host key does not share its stream with other seeded data.
const HOST_KEY_DOMAIN: u64 = 0x5346_5450_484f_5354; // "SFTPHOST"

/// Most bytes one `read` returns (clients ask for 32 to 256 KiB; SFTP allows short reads).
const MAX_READ: u32 = 256 * 1024;

/// Most handles one session may hold open, so a leaking client cannot grow the server.
const MAX_HANDLES: usize = 1024;

/// The SFTP server of one simulator.
pub struct Server {
    state: Arc<SimState>,
    host_key: PrivateKey,
}

/// The host key for a seed, derived deterministically so users can pin it.
///
/// The 32-byte Ed25519 seed is four outputs of SplitMix64, little-endian, started from
/// `seed ^ 0x5346_5450_484f_5354` ("SFTPHOST"); the key pair is the standard Ed25519 expansion
/// of those bytes (RFC 8032).
pub fn host_key_for_seed(seed: u64) -> PrivateKey {
    let mut state = seed ^ HOST_KEY_DOMAIN;
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_exact_mut(8) {
        chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    PrivateKey::from(Ed25519Keypair::from_seed(&bytes))
}

/// SplitMix64 (Steele, Lea and Flood): a tiny, well-mixed generator, enough to spread a `u64`
/// seed over 32 bytes reproducibly.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The OpenSSH line of a public key (`ssh-ed25519 AAAA...`), without a comment.
pub fn openssh_line(key: &PublicKey) -> String {
    match key.to_openssh() {
        Ok(line) => line.trim().to_owned(),
        // Encoding a parsed or generated key into a String cannot fail; an empty line simply
        // matches nothing if it ever did.
        Err(e) => {
            tracing::error!(error = %e, "could not encode an SSH public key");
            String::new()
        }
    }
}

impl Server {
    pub fn new(state: Arc<SimState>) -> Self {
        let host_key = host_key_for_seed(state.config.seed);
        Server { state, host_key }
    }

    /// The host key's public half in OpenSSH form (`ssh-ed25519 AAAA...`), for pinning.
    pub fn host_key_openssh(&self) -> String {
        openssh_line(self.host_key.public_key())
    }

    /// Serves SFTP on `listener` until `shutdown` completes, then disconnects every session.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let config = Arc::new(russh::server::Config {
            keys: vec![self.host_key.clone()],
            methods: MethodSet::from(&[MethodKind::Password, MethodKind::PublicKey][..]),
            // russh delays every rejection to this time so timing does not tell which part was
            // wrong; a simulator needs no more than a token delay, and tests stay fast.
            auth_rejection_time: Duration::from_millis(200),
            // OpenSSH clients probe with "none" first; answering it at once is what servers do.
            auth_rejection_time_initial: Some(Duration::ZERO),
            ..Default::default()
        });
        let mut acceptor = Acceptor {
            state: self.state.clone(),
            users: Arc::new(Users::from_config(&self.state)),
        };
        let mut running = acceptor.run_on_socket(config, &listener);
        let handle = running.handle();
        tokio::pin!(shutdown);
        tokio::select! {
            result = &mut running => {
                if let Err(e) = result {
                    tracing::error!(error = %e, "simulator SFTP server failed");
                }
                return;
            }
            () = &mut shutdown => {}
        }
        handle.shutdown("simulator shutting down".to_owned());
        if let Err(e) = running.await {
            tracing::error!(error = %e, "simulator SFTP server failed while stopping");
        }
    }
}

/// The accounts, with their keys parsed once.
#[derive(Debug, Default)]
struct Users {
    users: Vec<User>,
}

#[derive(Debug)]
struct User {
    name: String,
    password: Option<String>,
    keys: Vec<PublicKey>,
}

impl Users {
    fn from_config(state: &SimState) -> Users {
        let users = state
            .config
            .sftp_users
            .iter()
            .map(|u| User {
                name: u.name.clone(),
                password: u.password.clone(),
                keys: u
                    .authorized_keys
                    .iter()
                    .filter_map(|line| match PublicKey::from_openssh(line.trim()) {
                        Ok(k) => Some(k),
                        Err(e) => {
                            tracing::warn!(user = %u.name, error = %e, "ignoring an authorized key that does not parse");
                            None
                        }
                    })
                    .collect(),
            })
            .collect();
        Users { users }
    }

    fn get(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    fn password_ok(&self, name: &str, password: &str) -> bool {
        self.get(name)
            .and_then(|u| u.password.as_deref())
            .is_some_and(|expected| constant_time_eq(expected.as_bytes(), password.as_bytes()))
    }

    fn key_ok(&self, name: &str, key: &PublicKey) -> bool {
        self.get(name)
            .is_some_and(|u| u.keys.iter().any(|k| k.key_data() == key.key_data()))
    }
}

/// Compares without stopping at the first difference, so response time says nothing about
/// how much of a password was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Makes one [`SshSession`] per connection.
struct Acceptor {
    state: Arc<SimState>,
    users: Arc<Users>,
}

impl russh::server::Server for Acceptor {
    type Handler = SshSession;

    fn new_client(&mut self, peer: Option<SocketAddr>) -> SshSession {
        SshSession {
            state: self.state.clone(),
            users: self.users.clone(),
            peer,
            user: None,
            channels: HashMap::new(),
        }
    }

    fn handle_session_error(&mut self, error: russh::Error) {
        tracing::debug!(error = %error, "SFTP connection ended with an error");
    }
}

/// One SSH connection: authentication and the channel that carries SFTP.
struct SshSession {
    state: Arc<SimState>,
    users: Arc<Users>,
    peer: Option<SocketAddr>,
    /// Set once authenticated.
    user: Option<String>,
    /// Session channels opened and not yet turned into SFTP.
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl russh::server::Handler for SshSession {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if self.users.password_ok(user, password) {
            tracing::info!(user, peer = ?self.peer, "SFTP login with password");
            self.user = Some(user.to_owned());
            Ok(Auth::Accept)
        } else {
            tracing::info!(user, peer = ?self.peer, "SFTP password refused");
            Ok(Auth::reject())
        }
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // Refusing unknown keys here spares the client a signature that would be refused.
        if self.users.key_ok(user, offer.public_key) {
            Ok(Auth::Accept)
        } else {
            Ok(Auth::reject())
        }
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.users.key_ok(user, key.public_key) {
            tracing::info!(user, peer = ?self.peer, "SFTP login with public key");
            self.user = Some(user.to_owned());
            Ok(Auth::Accept)
        } else {
            tracing::info!(user, peer = ?self.peer, "SFTP public key refused");
            Ok(Auth::reject())
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // The client sends nothing more: close our side so the client's wait ends too.
        session.close(channel)?;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel_id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let channel = match (name, self.user.as_ref()) {
            ("sftp", Some(_)) => self.channels.remove(&channel_id),
            _ => None,
        };
        let Some(channel) = channel else {
            return session.channel_failure(channel_id);
        };
        session.channel_success(channel_id)?;
        let handler = SftpSession::new(self.state.clone(), self.user.clone().unwrap_or_default());
        // Spawns the protocol loop; it ends when the channel closes.
        russh_sftp::server::run(channel.into_stream(), handler).await;
        Ok(())
    }
}

/// What an SFTP handle refers to.
#[derive(Debug)]
enum OpenHandle {
    File {
        id: FileId,
        read: bool,
        write: bool,
        append: bool,
    },
    Dir {
        path: String,
        /// The listing taken at `opendir`, sent whole by the first `readdir`.
        entries: Option<Vec<File>>,
    },
}

/// One SFTP session over the shared file tree.
struct SftpSession {
    state: Arc<SimState>,
    user: String,
    handles: HashMap<String, OpenHandle>,
    next_handle: u64,
}

impl Drop for SftpSession {
    /// A client that disconnects without closing its files must not leave them marked open
    /// (the CSV loader skips open files).
    fn drop(&mut self) {
        for (_, h) in self.handles.drain() {
            if let OpenHandle::File { id, .. } = h {
                self.state.files.close(id);
            }
        }
    }
}

fn status_of(e: VfsError) -> StatusReply {
    let code = match e {
        VfsError::NotFound(_) => StatusCode::NoSuchFile,
        VfsError::PermissionDenied(_) => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    };
    code.with_message(e.to_string())
}

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".to_owned(),
        language_tag: "en-US".to_owned(),
    }
}

fn bad_handle() -> StatusReply {
    StatusCode::Failure.with_message("invalid handle")
}

fn attrs_of(meta: Meta) -> FileAttributes {
    let mtime = meta
        .mtime
        .duration_since(UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0);
    let mode = match meta.kind {
        Kind::Dir => 0o040_755,
        Kind::File => 0o100_644,
    };
    FileAttributes {
        size: Some(meta.size),
        uid: Some(0),
        user: None,
        gid: Some(0),
        group: None,
        permissions: Some(mode),
        atime: Some(mtime),
        mtime: Some(mtime),
    }
}

impl SftpSession {
    fn new(state: Arc<SimState>, user: String) -> Self {
        SftpSession {
            state,
            user,
            handles: HashMap::new(),
            next_handle: 1,
        }
    }

    fn files(&self) -> &Vfs {
        &self.state.files
    }

    fn add_handle(&mut self, h: OpenHandle) -> Result<String, StatusReply> {
        if self.handles.len() >= MAX_HANDLES {
            if let OpenHandle::File { id, .. } = h {
                self.state.files.close(id);
            }
            return Err(StatusCode::Failure.with_message("too many open handles"));
        }
        let name = self.next_handle.to_string();
        self.next_handle += 1;
        self.handles.insert(name.clone(), h);
        Ok(name)
    }

    fn file(&self, handle: &str) -> Result<(FileId, bool, bool, bool), StatusReply> {
        match self.handles.get(handle) {
            Some(OpenHandle::File {
                id,
                read,
                write,
                append,
            }) => Ok((*id, *read, *write, *append)),
            _ => Err(bad_handle()),
        }
    }
}

impl russh_sftp::server::Handler for SftpSession {
    type Error = StatusReply;

    fn unimplemented(&self) -> StatusReply {
        StatusCode::OpUnsupported.with_message("not supported by this server")
    }

    async fn init(
        &mut self,
        version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, StatusReply> {
        tracing::debug!(user = %self.user, version, "SFTP session started");
        // Version 3 whatever the client offers; no extensions, so clients use plain v3 calls.
        Ok(Version::new())
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, StatusReply> {
        Ok(Name {
            id,
            files: vec![File::dummy(vfs::normalize(&path))],
        })
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, StatusReply> {
        let path = vfs::normalize(&path);
        let listing = self.files().list(&path).map_err(status_of)?;
        let own = self.files().stat(&path).map_err(status_of)?;
        let parent = self
            .files()
            .stat(&vfs::join(&path, ".."))
            .map_err(status_of)?;
        let mut entries = vec![
            File::new(".", attrs_of(own)),
            File::new("..", attrs_of(parent)),
        ];
        entries.extend(
            listing
                .into_iter()
                .map(|(name, meta)| File::new(name, attrs_of(meta))),
        );
        let handle = self.add_handle(OpenHandle::Dir {
            path,
            entries: Some(entries),
        })?;
        Ok(Handle { id, handle })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, StatusReply> {
        match self.handles.get_mut(&handle) {
            Some(OpenHandle::Dir { entries, .. }) => match entries.take() {
                Some(files) => Ok(Name { id, files }),
                None => Err(StatusCode::Eof.into()),
            },
            _ => Err(bad_handle()),
        }
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> Result<Handle, StatusReply> {
        let append = pflags.contains(OpenFlags::APPEND);
        let write = pflags.contains(OpenFlags::WRITE) || append;
        // A request with neither flag can only mean reading.
        let read = pflags.contains(OpenFlags::READ) || !write;
        let opts = OpenOptions {
            create: pflags.contains(OpenFlags::CREATE),
            exclusive: pflags.contains(OpenFlags::EXCLUDE),
            truncate: pflags.contains(OpenFlags::TRUNCATE) && write,
        };
        let file = self.files().open(&filename, opts).map_err(status_of)?;
        tracing::debug!(user = %self.user, path = %vfs::normalize(&filename), ?pflags, "SFTP open");
        let handle = self.add_handle(OpenHandle::File {
            id: file,
            read,
            write,
            append,
        })?;
        Ok(Handle { id, handle })
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, StatusReply> {
        let (file, read, _, _) = self.file(&handle)?;
        if !read {
            return Err(StatusCode::PermissionDenied.with_message("handle not open for reading"));
        }
        let len = usize::try_from(len.min(MAX_READ)).unwrap_or(usize::MAX);
        let data = self.files().read_at(file, offset, len).map_err(status_of)?;
        if data.is_empty() && len > 0 {
            return Err(StatusCode::Eof.into());
        }
        Ok(Data { id, data })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, StatusReply> {
        let (file, _, write, append) = self.file(&handle)?;
        if !write {
            return Err(StatusCode::PermissionDenied.with_message("handle not open for writing"));
        }
        let at = if append { None } else { Some(offset) };
        self.files().write_at(file, at, &data).map_err(status_of)?;
        Ok(ok(id))
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, StatusReply> {
        match self.handles.remove(&handle) {
            Some(OpenHandle::File { id: file, .. }) => {
                self.files().close(file);
                Ok(ok(id))
            }
            Some(OpenHandle::Dir { .. }) => Ok(ok(id)),
            None => Err(bad_handle()),
        }
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, StatusReply> {
        let meta = self.files().stat(&path).map_err(status_of)?;
        Ok(Attrs {
            id,
            attrs: attrs_of(meta),
        })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, StatusReply> {
        // There are no symlinks, so lstat is stat.
        self.stat(id, path).await
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, StatusReply> {
        let meta = match self.handles.get(&handle) {
            Some(OpenHandle::File { id: file, .. }) => self.files().fstat(*file),
            Some(OpenHandle::Dir { path, .. }) => self.files().stat(path),
            None => return Err(bad_handle()),
        }
        .map_err(status_of)?;
        Ok(Attrs {
            id,
            attrs: attrs_of(meta),
        })
    }

    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, StatusReply> {
        // Clients set modes and times after an upload; the tree keeps neither, so accept.
        self.files().stat(&path).map_err(status_of)?;
        Ok(ok(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        _attrs: FileAttributes,
    ) -> Result<Status, StatusReply> {
        if self.handles.contains_key(&handle) {
            Ok(ok(id))
        } else {
            Err(bad_handle())
        }
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, StatusReply> {
        self.files().rename(&oldpath, &newpath).map_err(status_of)?;
        tracing::debug!(user = %self.user, from = %vfs::normalize(&oldpath), to = %vfs::normalize(&newpath), "SFTP rename");
        Ok(ok(id))
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, StatusReply> {
        self.files().remove(&filename).map_err(status_of)?;
        Ok(ok(id))
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, StatusReply> {
        self.files().mkdir(&path).map_err(status_of)?;
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, StatusReply> {
        self.files().rmdir(&path).map_err(status_of)?;
        Ok(ok(id))
    }
}

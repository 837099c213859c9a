//! A folder of the `files` adapter: a local directory or a directory on the ERP's SFTP server,
//! with the few operations the adapter needs. Every failure is an [`ErpError::Unavailable`]
//! naming the folder's role and path (never a credential).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::AsyncWriteExt as _;
use tokio::sync::Mutex;

use crate::erp::ErpError;
use crate::sftp::{Sftp, SftpTarget};

/// The ERP's SFTP server, shared by the adapter's folders: one session, opened on first use and
/// opened again after any failure (a broken connection is not told apart from a refused
/// request; reconnecting is cheap next to a stuck pass).
pub struct Remote {
    target: SftpTarget,
    session: Mutex<Option<Sftp>>,
}

impl Remote {
    pub fn new(target: SftpTarget) -> Arc<Remote> {
        Arc::new(Remote {
            target,
            session: Mutex::new(None),
        })
    }
}

enum Place {
    Local(PathBuf),
    Remote { dir: String, server: Arc<Remote> },
}

/// One folder (`erp.files.outbox`, `inbox`, `payments_inbox`).
pub struct Folder {
    /// `outbox`, `inbox`, `payments inbox`: for messages.
    role: &'static str,
    place: Place,
}

/// Runs one SFTP operation on the shared session, connecting first if needed; on failure the
/// session is dropped so the next operation reconnects. A macro, not a function taking a
/// closure: the operation's future borrows both the session and the caller's arguments.
macro_rules! remote {
    ($folder:expr, $server:expr, $what:expr, |$s:ident| $call:expr) => {{
        let mut guard = $server.session.lock().await;
        if guard.is_none() {
            let session = Sftp::connect(&$server.target)
                .await
                .map_err(|e| $folder.error($what, &e))?;
            *guard = Some(session);
        }
        let result = match guard.as_ref() {
            Some($s) => $call.await.map_err(|e| $folder.error($what, &e)),
            None => Err($folder.error($what, &"no SFTP session")),
        };
        if result.is_err() {
            // Dropped, not closed: a dead connection would only make a polite close wait.
            drop(guard.take());
        }
        result
    }};
}

impl Folder {
    pub fn local(role: &'static str, path: impl Into<PathBuf>) -> Folder {
        Folder {
            role,
            place: Place::Local(path.into()),
        }
    }

    pub fn remote(role: &'static str, dir: &str, server: Arc<Remote>) -> Folder {
        Folder {
            role,
            place: Place::Remote {
                dir: dir.trim_end_matches('/').to_owned(),
                server,
            },
        }
    }

    /// Where the folder is, for messages.
    pub fn shown(&self) -> String {
        match &self.place {
            Place::Local(p) => p.display().to_string(),
            Place::Remote { dir, server } => {
                format!("sftp://{}:{}{dir}", server.target.host, server.target.port)
            }
        }
    }

    /// `name` inside the folder, for messages.
    pub fn shown_file(&self, name: &str) -> String {
        format!("{}/{name}", self.shown().trim_end_matches('/'))
    }

    fn error(&self, what: &str, e: &dyn std::fmt::Display) -> ErpError {
        // The SFTP client names the payment loader's settings; here they are the ERP's.
        let e = e.to_string().replace("payments.sftp.", "erp.files.sftp.");
        ErpError::Unavailable(format!(
            "the ERP's {} folder {}: {what}: {e}",
            self.role,
            self.shown()
        ))
    }

    fn local_path(dir: &Path, name: &str) -> PathBuf {
        dir.join(name)
    }

    fn remote_path(dir: &str, name: &str) -> String {
        format!("{dir}/{name}")
    }

    /// The names of the files directly in the folder, in name order: dot files (temporary
    /// names) and folders left out.
    pub async fn list(&self) -> Result<Vec<String>, ErpError> {
        let mut names = match &self.place {
            Place::Local(dir) => {
                let mut out = Vec::new();
                let mut entries = tokio::fs::read_dir(dir)
                    .await
                    .map_err(|e| self.error("listing", &e))?;
                while let Some(entry) = entries
                    .next_entry()
                    .await
                    .map_err(|e| self.error("listing", &e))?
                {
                    let is_file = entry
                        .file_type()
                        .await
                        .map_err(|e| self.error("listing", &e))?
                        .is_file();
                    if let (true, Some(name)) = (is_file, entry.file_name().to_str()) {
                        out.push(name.to_owned());
                    }
                }
                out
            }
            Place::Remote { dir, server } => {
                remote!(self, server, "listing", |s| s.list_files(dir))?
            }
        };
        names.retain(|n| !n.starts_with('.'));
        names.sort();
        Ok(names)
    }

    /// The content of the file `name`.
    pub async fn read(&self, name: &str) -> Result<Vec<u8>, ErpError> {
        let what = format!("reading {name}");
        match &self.place {
            Place::Local(dir) => tokio::fs::read(Self::local_path(dir, name))
                .await
                .map_err(|e| self.error(&what, &e)),
            Place::Remote { dir, server } => {
                let path = Self::remote_path(dir, name);
                remote!(self, server, &what, |s| s.read_file(&path))
            }
        }
    }

    /// Whether the file `name` is there.
    pub async fn exists(&self, name: &str) -> Result<bool, ErpError> {
        let what = format!("looking for {name}");
        match &self.place {
            Place::Local(dir) => tokio::fs::try_exists(Self::local_path(dir, name))
                .await
                .map_err(|e| self.error(&what, &e)),
            Place::Remote { dir, server } => {
                let path = Self::remote_path(dir, name);
                remote!(self, server, &what, |s| s.exists(&path))
            }
        }
    }

    /// Writes `bytes` to `name` (created or truncated), locally flushed to disk before it
    /// returns. Not atomic: for a temporary name only.
    pub async fn write(&self, name: &str, bytes: &[u8]) -> Result<(), ErpError> {
        let what = format!("writing {name}");
        match &self.place {
            Place::Local(dir) => {
                let write = async {
                    let mut f = tokio::fs::File::create(Self::local_path(dir, name)).await?;
                    f.write_all(bytes).await?;
                    f.sync_all().await
                };
                write.await.map_err(|e| self.error(&what, &e))
            }
            Place::Remote { dir, server } => {
                let path = Self::remote_path(dir, name);
                remote!(self, server, &what, |s| s.write(&path, bytes))
            }
        }
    }

    /// Renames `from` to `to` within the folder, atomically; refused when `to` exists (checked
    /// first locally, where `rename` would replace it). Locally the folder is flushed after.
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), ErpError> {
        let what = format!("renaming {from} to {to}");
        match &self.place {
            Place::Local(dir) => {
                let target = Self::local_path(dir, to);
                if tokio::fs::try_exists(&target)
                    .await
                    .map_err(|e| self.error(&what, &e))?
                {
                    return Err(self.error(&what, &"the target already exists"));
                }
                tokio::fs::rename(Self::local_path(dir, from), &target)
                    .await
                    .map_err(|e| self.error(&what, &e))?;
                sync_dir(dir).await.map_err(|e| self.error(&what, &e))
            }
            Place::Remote { dir, server } => {
                let (from, to) = (Self::remote_path(dir, from), Self::remote_path(dir, to));
                remote!(self, server, &what, |s| s.rename(&from, &to))
            }
        }
    }

    /// Moves the file `name` into the sub-folder `sub` (created if missing), under the same
    /// name, or `name.1`, `name.2`... when a file of that name is there already (an ERP that
    /// reuses its file names). Returns where it went, for messages.
    pub async fn move_into(&self, name: &str, sub: &str) -> Result<String, ErpError> {
        self.mkdir(sub).await?;
        let mut target = format!("{sub}/{name}");
        let mut n = 0u32;
        while self.exists(&target).await? {
            n += 1;
            target = format!("{sub}/{name}.{n}");
        }
        self.rename(name, &target).await?;
        Ok(self.shown_file(&target))
    }

    /// Creates the sub-folder `sub` unless it is there.
    async fn mkdir(&self, sub: &str) -> Result<(), ErpError> {
        let what = format!("creating {sub}/");
        match &self.place {
            Place::Local(dir) => tokio::fs::create_dir_all(Self::local_path(dir, sub))
                .await
                .map_err(|e| self.error(&what, &e)),
            Place::Remote { dir, server } => {
                let path = Self::remote_path(dir, sub);
                remote!(self, server, &what, |s| s.mkdir_if_missing(&path))
            }
        }
    }
}

/// Flushes a directory's entries (a rename) to disk. Not every platform can open a directory
/// for that; where it cannot, the rename stands unflushed.
async fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match tokio::fs::File::open(dir).await {
        Ok(d) => d.sync_all().await,
        Err(_) => Ok(()),
    }
}

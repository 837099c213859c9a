//! The SFTP server's in-memory file tree, shared with the CSV loader.
//!
//! Coupa's SFTP site is a fixed folder skeleton (`/Incoming/<Object>`,
//! `/Archive/Incoming/<Object>`, `/Outgoing/<Object>`, `coupa-api.md` section 9) into which
//! clients drop files and from which Coupa's loaders take them. [`Vfs::with_coupa_folders`]
//! creates that skeleton; its folders cannot be removed or renamed, as on Coupa's own site where
//! the layout belongs to Coupa.
//!
//! Files are inodes: a directory entry names an inode, and an open SFTP handle holds the inode,
//! not the path. A client may therefore rename a file it still has open (or the loader may move
//! it to the archive) and keep writing to it, as on a POSIX file system; an unlinked file lives
//! until its last handle closes. The loader uses [`Vfs::is_open`] to leave a file alone while a
//! client still holds it open.
//!
//! Paths are normalised before use: relative paths are relative to `/` (every session starts
//! there), `.` and empty components are dropped, `..` goes up (and stays at `/` at the top), and
//! trailing slashes are ignored.
//!
//! One mutex guards the whole tree: every operation is a few map lookups and a copy, so
//! contention is not a concern and each operation (notably rename) is atomic.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use parking_lot::Mutex;

/// Folders under `/Incoming` (and `/Archive/Incoming`) on Coupa's SFTP site (C-SFTP).
pub const INCOMING_FOLDERS: &[&str] = &[
    "Accounts",
    "AccountValidationRules",
    "Addresses",
    "ApprovalChains",
    "BudgetLines",
    "BusinessGroups",
    "Commodities",
    "Contracts",
    "Departments",
    "ExchangeRates",
    "ExpensePayments",
    "InvoicePayments",
    "Invoices",
    "Items",
    "LookupValues",
    "Receipts",
    "RemitToAddresses",
    "Requisitions",
    "Suppliers",
    "Users",
];

/// Folders under `/Outgoing` on Coupa's SFTP site (C-SFTP).
pub const OUTGOING_FOLDERS: &[&str] = &[
    "ExpenseReports",
    "Invoices",
    "PurchaseOrders",
    "Receipts",
    "Requisitions",
    "Suppliers",
    "SupplierInformations",
];

/// Largest file the tree accepts. Coupa's loaders take at most 8 MB per file; the cap is well
/// above that so an oversized upload still arrives (and is rejected by the loader, as Coupa
/// would) while a runaway client cannot exhaust the simulator's memory.
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Why a file operation failed. The SFTP server maps these to SFTP status codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VfsError {
    #[error("no such file or directory: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("not a directory: {0}")]
    NotADirectory(String),
    #[error("is a directory: {0}")]
    IsADirectory(String),
    #[error("directory not empty: {0}")]
    NotEmpty(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("file too large: {0} (the limit is {MAX_FILE_SIZE} bytes)")]
    TooLarge(String),
    #[error("invalid operation: {0}")]
    Invalid(String),
}

/// What a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

/// Metadata of a file or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    /// Size in bytes; 0 for directories.
    pub size: u64,
    pub mtime: SystemTime,
}

/// An open file, as an SFTP handle holds it: the inode, whatever it is named now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId(u64);

/// How to open a file (the SFTP `pflags` that matter to the tree).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Create the file if it does not exist.
    pub create: bool,
    /// Fail if the file exists (with `create`).
    pub exclusive: bool,
    /// Empty the file on open.
    pub truncate: bool,
}

/// The in-memory file tree.
#[derive(Debug)]
pub struct Vfs {
    tree: Mutex<Tree>,
}

#[derive(Debug)]
struct Tree {
    root: Dir,
    inodes: HashMap<u64, Inode>,
    next_inode: u64,
}

#[derive(Debug)]
struct Dir {
    entries: BTreeMap<String, Entry>,
    mtime: SystemTime,
    /// Part of Coupa's skeleton: cannot be removed or renamed.
    protected: bool,
}

#[derive(Debug)]
enum Entry {
    Dir(Dir),
    File(u64),
}

#[derive(Debug)]
struct Inode {
    data: Vec<u8>,
    mtime: SystemTime,
    /// Whether a directory entry still names it (there are no hard links).
    linked: bool,
    /// Open handles.
    open: u32,
}

impl Dir {
    fn new(protected: bool) -> Self {
        Dir {
            entries: BTreeMap::new(),
            mtime: SystemTime::now(),
            protected,
        }
    }
}

impl Default for Vfs {
    fn default() -> Self {
        Vfs {
            tree: Mutex::new(Tree {
                root: Dir::new(true),
                inodes: HashMap::new(),
                next_inode: 1,
            }),
        }
    }
}

/// The components of `path` after normalisation (see the module doc).
fn components(path: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// `path` in canonical form: absolute, no `.`/`..`, no trailing slash (`/` for the root).
pub fn normalize(path: &str) -> String {
    let parts = components(path);
    if parts.is_empty() {
        "/".to_owned()
    } else {
        format!("/{}", parts.join("/"))
    }
}

/// `parent` joined with `name`, normalised.
pub fn join(parent: &str, name: &str) -> String {
    normalize(&format!("{parent}/{name}"))
}

impl Tree {
    fn dir(&self, parts: &[&str]) -> Result<&Dir, VfsError> {
        let mut cur = &self.root;
        for (i, p) in parts.iter().enumerate() {
            cur = match cur.entries.get(*p) {
                Some(Entry::Dir(d)) => d,
                Some(Entry::File(_)) => return Err(VfsError::NotADirectory(shown(&parts[..=i]))),
                None => return Err(VfsError::NotFound(shown(&parts[..=i]))),
            };
        }
        Ok(cur)
    }

    fn dir_mut(&mut self, parts: &[&str]) -> Result<&mut Dir, VfsError> {
        let mut cur = &mut self.root;
        for (i, p) in parts.iter().enumerate() {
            cur = match cur.entries.get_mut(*p) {
                Some(Entry::Dir(d)) => d,
                Some(Entry::File(_)) => return Err(VfsError::NotADirectory(shown(&parts[..=i]))),
                None => return Err(VfsError::NotFound(shown(&parts[..=i]))),
            };
        }
        Ok(cur)
    }

    fn entry(&self, parts: &[&str]) -> Result<EntryRef<'_>, VfsError> {
        match parts.split_last() {
            None => Ok(EntryRef::Dir(&self.root)),
            Some((name, parent)) => match self.dir(parent)?.entries.get(*name) {
                Some(Entry::Dir(d)) => Ok(EntryRef::Dir(d)),
                Some(Entry::File(ino)) => Ok(EntryRef::File(*ino)),
                None => Err(VfsError::NotFound(shown(parts))),
            },
        }
    }

    fn meta(&self, parts: &[&str]) -> Result<Meta, VfsError> {
        match self.entry(parts)? {
            EntryRef::Dir(d) => Ok(Meta {
                kind: Kind::Dir,
                size: 0,
                mtime: d.mtime,
            }),
            EntryRef::File(ino) => self.inode_meta(ino),
        }
    }

    fn inode_meta(&self, ino: u64) -> Result<Meta, VfsError> {
        let inode = self
            .inodes
            .get(&ino)
            .ok_or_else(|| VfsError::NotFound(format!("inode {ino}")))?;
        Ok(Meta {
            kind: Kind::File,
            size: inode.data.len() as u64,
            mtime: inode.mtime,
        })
    }

    fn inode_mut(&mut self, id: FileId) -> Result<&mut Inode, VfsError> {
        self.inodes
            .get_mut(&id.0)
            .ok_or_else(|| VfsError::Invalid("the file handle is closed".to_owned()))
    }

    /// Drops the directory entry's claim on an inode, freeing it if no handle holds it.
    fn unlink_inode(&mut self, ino: u64) {
        let free = match self.inodes.get_mut(&ino) {
            Some(inode) => {
                inode.linked = false;
                inode.open == 0
            }
            None => false,
        };
        if free {
            self.inodes.remove(&ino);
        }
    }

    fn new_inode(&mut self, data: Vec<u8>) -> u64 {
        let ino = self.next_inode;
        self.next_inode += 1;
        self.inodes.insert(
            ino,
            Inode {
                data,
                mtime: SystemTime::now(),
                linked: true,
                open: 0,
            },
        );
        ino
    }
}

enum EntryRef<'a> {
    Dir(&'a Dir),
    File(u64),
}

fn shown(parts: &[&str]) -> String {
    format!("/{}", parts.join("/"))
}

fn check_size(path: &str, size: u64) -> Result<(), VfsError> {
    if size > MAX_FILE_SIZE {
        return Err(VfsError::TooLarge(path.to_owned()));
    }
    Ok(())
}

impl Vfs {
    /// An empty tree (just `/`).
    pub fn new() -> Self {
        Self::default()
    }

    /// The tree with Coupa's SFTP folders: `/Incoming/<each>`, `/Archive/Incoming/<each>` and
    /// `/Outgoing/<each>`, all protected.
    pub fn with_coupa_folders() -> Self {
        let vfs = Vfs::default();
        {
            let mut tree = vfs.tree.lock();
            let mut add = |parts: &[&str]| {
                let mut cur = &mut tree.root;
                for p in parts {
                    let entry = cur
                        .entries
                        .entry((*p).to_owned())
                        .or_insert_with(|| Entry::Dir(Dir::new(true)));
                    cur = match entry {
                        Entry::Dir(d) => d,
                        // Only directories are created here.
                        Entry::File(_) => return,
                    };
                }
            };
            for name in INCOMING_FOLDERS {
                add(&["Incoming", name]);
                add(&["Archive", "Incoming", name]);
            }
            for name in OUTGOING_FOLDERS {
                add(&["Outgoing", name]);
            }
        }
        vfs
    }

    /// Metadata of a file or directory.
    pub fn stat(&self, path: &str) -> Result<Meta, VfsError> {
        self.tree.lock().meta(&components(path))
    }

    /// Whether `path` names a file or directory.
    pub fn exists(&self, path: &str) -> bool {
        self.stat(path).is_ok()
    }

    /// The entries of a directory, in name order.
    pub fn list(&self, dir: &str) -> Result<Vec<(String, Meta)>, VfsError> {
        let tree = self.tree.lock();
        let parts = components(dir);
        let d = match tree.entry(&parts)? {
            EntryRef::Dir(d) => d,
            EntryRef::File(_) => return Err(VfsError::NotADirectory(normalize(dir))),
        };
        d.entries
            .iter()
            .map(|(name, e)| {
                let meta = match e {
                    Entry::Dir(d) => Meta {
                        kind: Kind::Dir,
                        size: 0,
                        mtime: d.mtime,
                    },
                    Entry::File(ino) => tree.inode_meta(*ino)?,
                };
                Ok((name.clone(), meta))
            })
            .collect()
    }

    /// Files (not directories) directly in `dir` with their sizes, in name order; empty if
    /// `dir` does not exist. For tests and the admin API.
    pub fn list_files(&self, dir: &str) -> Vec<(String, u64)> {
        self.list(dir)
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, m)| m.kind == Kind::File)
            .map(|(name, m)| (name, m.size))
            .collect()
    }

    /// The whole content of a file; `None` if it is missing or a directory.
    pub fn read_file(&self, path: &str) -> Option<Vec<u8>> {
        let tree = self.tree.lock();
        match tree.entry(&components(path)).ok()? {
            EntryRef::File(ino) => tree.inodes.get(&ino).map(|i| i.data.clone()),
            EntryRef::Dir(_) => None,
        }
    }

    /// Creates or replaces a file with `bytes`, creating missing parent directories. For tests,
    /// the admin API and Coupa's own exports.
    pub fn write_file(&self, path: &str, bytes: impl Into<Vec<u8>>) -> Result<(), VfsError> {
        let parts = components(path);
        let Some((name, parent)) = parts.split_last() else {
            return Err(VfsError::IsADirectory("/".to_owned()));
        };
        let bytes = bytes.into();
        check_size(path, bytes.len() as u64)?;
        let mut tree = self.tree.lock();
        // mkdir -p of the parent.
        let mut cur = &mut tree.root;
        for (i, p) in parent.iter().enumerate() {
            let entry = cur
                .entries
                .entry((*p).to_owned())
                .or_insert_with(|| Entry::Dir(Dir::new(false)));
            cur = match entry {
                Entry::Dir(d) => d,
                Entry::File(_) => return Err(VfsError::NotADirectory(shown(&parent[..=i]))),
            };
        }
        match cur.entries.get(*name) {
            Some(Entry::Dir(_)) => Err(VfsError::IsADirectory(shown(&parts))),
            Some(Entry::File(ino)) => {
                let ino = *ino;
                let inode = tree.inode_mut(FileId(ino))?;
                inode.data = bytes;
                inode.mtime = SystemTime::now();
                Ok(())
            }
            None => {
                let ino = tree.new_inode(bytes);
                let dir = tree.dir_mut(parent)?;
                dir.entries.insert((*name).to_owned(), Entry::File(ino));
                dir.mtime = SystemTime::now();
                Ok(())
            }
        }
    }

    /// Opens a file for a handle: creates or truncates it as `opts` say. Pair every
    /// successful call with [`Vfs::close`].
    pub fn open(&self, path: &str, opts: OpenOptions) -> Result<FileId, VfsError> {
        let parts = components(path);
        let Some((name, parent)) = parts.split_last() else {
            return Err(VfsError::IsADirectory("/".to_owned()));
        };
        let mut tree = self.tree.lock();
        let existing = match tree.dir(parent)?.entries.get(*name) {
            Some(Entry::Dir(_)) => return Err(VfsError::IsADirectory(shown(&parts))),
            Some(Entry::File(ino)) => Some(*ino),
            None => None,
        };
        let ino = match existing {
            Some(_) if opts.create && opts.exclusive => {
                return Err(VfsError::AlreadyExists(shown(&parts)));
            }
            Some(ino) => {
                if opts.truncate {
                    let inode = tree.inode_mut(FileId(ino))?;
                    inode.data.clear();
                    inode.mtime = SystemTime::now();
                }
                ino
            }
            None if opts.create => {
                let ino = tree.new_inode(Vec::new());
                let dir = tree.dir_mut(parent)?;
                dir.entries.insert((*name).to_owned(), Entry::File(ino));
                dir.mtime = SystemTime::now();
                ino
            }
            None => return Err(VfsError::NotFound(shown(&parts))),
        };
        tree.inode_mut(FileId(ino))?.open += 1;
        Ok(FileId(ino))
    }

    /// Releases a handle; a file removed while open is freed now.
    pub fn close(&self, id: FileId) {
        let mut tree = self.tree.lock();
        let free = match tree.inodes.get_mut(&id.0) {
            Some(inode) => {
                inode.open = inode.open.saturating_sub(1);
                inode.open == 0 && !inode.linked
            }
            None => false,
        };
        if free {
            tree.inodes.remove(&id.0);
        }
    }

    /// Whether some handle holds the file at `path` open (a client may still be writing it).
    pub fn is_open(&self, path: &str) -> bool {
        let tree = self.tree.lock();
        match tree.entry(&components(path)) {
            Ok(EntryRef::File(ino)) => tree.inodes.get(&ino).is_some_and(|i| i.open > 0),
            _ => false,
        }
    }

    /// Metadata of an open file.
    pub fn fstat(&self, id: FileId) -> Result<Meta, VfsError> {
        self.tree.lock().inode_meta(id.0)
    }

    /// Up to `len` bytes from `offset`; empty at or past the end of the file.
    pub fn read_at(&self, id: FileId, offset: u64, len: usize) -> Result<Vec<u8>, VfsError> {
        let mut tree = self.tree.lock();
        let data = &tree.inode_mut(id)?.data;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(len).min(data.len());
        Ok(data[start..end].to_vec())
    }

    /// Writes `bytes` at `offset` (a gap past the end is filled with zeros, as POSIX does), or
    /// at the end when `offset` is `None` (append mode).
    pub fn write_at(&self, id: FileId, offset: Option<u64>, bytes: &[u8]) -> Result<(), VfsError> {
        let mut tree = self.tree.lock();
        let inode = tree.inode_mut(id)?;
        let start = offset.unwrap_or(inode.data.len() as u64);
        let end = start.saturating_add(bytes.len() as u64);
        check_size("an open file", end)?;
        // Both fit in usize: they are at most MAX_FILE_SIZE.
        let (start, end) = (start as usize, end as usize);
        if inode.data.len() < end {
            inode.data.resize(end, 0);
        }
        inode.data[start..end].copy_from_slice(bytes);
        inode.mtime = SystemTime::now();
        Ok(())
    }

    /// Renames a file or directory. Fails if the target exists (SFTP v3 `SSH_FXP_RENAME`
    /// semantics; clients that want to replace remove first), if a directory would move into
    /// itself, or if the source is one of Coupa's folders.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), VfsError> {
        let src = components(from);
        let dst = components(to);
        let (Some((src_name, src_parent)), Some((dst_name, dst_parent))) =
            (src.split_last(), dst.split_last())
        else {
            return Err(VfsError::PermissionDenied("/".to_owned()));
        };
        if src == dst {
            // Renaming onto itself: the target exists.
            return Err(VfsError::AlreadyExists(shown(&dst)));
        }
        if dst.starts_with(&src) {
            return Err(VfsError::Invalid(format!(
                "cannot move {} into itself",
                shown(&src)
            )));
        }
        let mut tree = self.tree.lock();
        match tree.dir(src_parent)?.entries.get(*src_name) {
            None => return Err(VfsError::NotFound(shown(&src))),
            Some(Entry::Dir(d)) if d.protected => {
                return Err(VfsError::PermissionDenied(shown(&src)));
            }
            Some(_) => {}
        }
        if tree.dir(dst_parent)?.entries.contains_key(*dst_name) {
            return Err(VfsError::AlreadyExists(shown(&dst)));
        }
        let now = SystemTime::now();
        let src_dir = tree.dir_mut(src_parent)?;
        let entry = src_dir
            .entries
            .remove(*src_name)
            .ok_or_else(|| VfsError::NotFound(shown(&src)))?;
        src_dir.mtime = now;
        let dst_dir = tree.dir_mut(dst_parent)?;
        dst_dir.entries.insert((*dst_name).to_owned(), entry);
        dst_dir.mtime = now;
        Ok(())
    }

    /// Removes a file (not a directory).
    pub fn remove(&self, path: &str) -> Result<(), VfsError> {
        let parts = components(path);
        let Some((name, parent)) = parts.split_last() else {
            return Err(VfsError::IsADirectory("/".to_owned()));
        };
        let mut tree = self.tree.lock();
        let dir = tree.dir_mut(parent)?;
        let ino = match dir.entries.get(*name) {
            Some(Entry::File(ino)) => *ino,
            Some(Entry::Dir(_)) => return Err(VfsError::IsADirectory(shown(&parts))),
            None => return Err(VfsError::NotFound(shown(&parts))),
        };
        dir.entries.remove(*name);
        dir.mtime = SystemTime::now();
        tree.unlink_inode(ino);
        Ok(())
    }

    /// Creates a directory; its parent must exist.
    pub fn mkdir(&self, path: &str) -> Result<(), VfsError> {
        let parts = components(path);
        let Some((name, parent)) = parts.split_last() else {
            return Err(VfsError::AlreadyExists("/".to_owned()));
        };
        let mut tree = self.tree.lock();
        let dir = tree.dir_mut(parent)?;
        if dir.entries.contains_key(*name) {
            return Err(VfsError::AlreadyExists(shown(&parts)));
        }
        dir.entries
            .insert((*name).to_owned(), Entry::Dir(Dir::new(false)));
        dir.mtime = SystemTime::now();
        Ok(())
    }

    /// Removes an empty directory that is not one of Coupa's folders.
    pub fn rmdir(&self, path: &str) -> Result<(), VfsError> {
        let parts = components(path);
        let Some((name, parent)) = parts.split_last() else {
            return Err(VfsError::PermissionDenied("/".to_owned()));
        };
        let mut tree = self.tree.lock();
        let dir = tree.dir_mut(parent)?;
        match dir.entries.get(*name) {
            None => return Err(VfsError::NotFound(shown(&parts))),
            Some(Entry::File(_)) => return Err(VfsError::NotADirectory(shown(&parts))),
            Some(Entry::Dir(d)) if d.protected => {
                return Err(VfsError::PermissionDenied(shown(&parts)));
            }
            Some(Entry::Dir(d)) if !d.entries.is_empty() => {
                return Err(VfsError::NotEmpty(shown(&parts)));
            }
            Some(Entry::Dir(_)) => {}
        }
        dir.entries.remove(*name);
        dir.mtime = SystemTime::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create() -> OpenOptions {
        OpenOptions {
            create: true,
            truncate: true,
            exclusive: false,
        }
    }

    #[test]
    fn paths_are_normalised() {
        assert_eq!(normalize(""), "/");
        assert_eq!(normalize("."), "/");
        assert_eq!(normalize("/.."), "/");
        assert_eq!(
            normalize("Incoming/InvoicePayments/"),
            "/Incoming/InvoicePayments"
        );
        assert_eq!(
            normalize("/Incoming/./x/../InvoicePayments//a.csv"),
            "/Incoming/InvoicePayments/a.csv"
        );
        assert_eq!(join("/Incoming", "../Outgoing"), "/Outgoing");
    }

    #[test]
    fn coupa_folders_exist_and_are_protected() {
        let vfs = Vfs::with_coupa_folders();
        let top: Vec<String> = vfs
            .list("/")
            .expect("root lists")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(top, ["Archive", "Incoming", "Outgoing"]);
        assert_eq!(
            vfs.list("/Incoming").expect("lists").len(),
            INCOMING_FOLDERS.len()
        );
        assert_eq!(
            vfs.list("/Archive/Incoming").expect("lists").len(),
            INCOMING_FOLDERS.len()
        );
        assert_eq!(
            vfs.list("/Outgoing").expect("lists").len(),
            OUTGOING_FOLDERS.len()
        );
        assert_eq!(
            vfs.stat("/Incoming/InvoicePayments").map(|m| m.kind),
            Ok(Kind::Dir)
        );
        assert!(matches!(
            vfs.rmdir("/Incoming/Users"),
            Err(VfsError::PermissionDenied(_))
        ));
        assert!(matches!(
            vfs.rename("/Incoming/Users", "/Incoming/People"),
            Err(VfsError::PermissionDenied(_))
        ));
        assert!(matches!(vfs.rmdir("/"), Err(VfsError::PermissionDenied(_))));
    }

    #[test]
    fn write_read_list_and_helpers() {
        let vfs = Vfs::with_coupa_folders();
        vfs.write_file("Incoming/InvoicePayments/b.csv", "bb")
            .expect("writes");
        vfs.write_file("/Incoming/InvoicePayments/a.csv", "a")
            .expect("writes");
        vfs.mkdir("/Incoming/InvoicePayments/sub").expect("mkdir");
        assert_eq!(
            vfs.list_files("/Incoming/InvoicePayments"),
            [("a.csv".to_owned(), 1), ("b.csv".to_owned(), 2)]
        );
        assert_eq!(vfs.list_files("/nope"), []);
        assert_eq!(
            vfs.read_file("/Incoming/InvoicePayments/b.csv"),
            Some(b"bb".to_vec())
        );
        assert_eq!(vfs.read_file("/Incoming/InvoicePayments"), None);
        // write_file replaces and creates parents.
        vfs.write_file("/Incoming/InvoicePayments/b.csv", "x")
            .expect("writes");
        assert_eq!(
            vfs.stat("/Incoming/InvoicePayments/b.csv").map(|m| m.size),
            Ok(1)
        );
        vfs.write_file("/tmp/deep/f", "z").expect("creates parents");
        assert_eq!(vfs.read_file("/tmp/deep/f"), Some(b"z".to_vec()));
        assert!(matches!(
            vfs.write_file("/Incoming", "z"),
            Err(VfsError::IsADirectory(_))
        ));
    }

    #[test]
    fn handles_read_write_append_truncate() {
        let vfs = Vfs::with_coupa_folders();
        let id = vfs
            .open("/Outgoing/Invoices/f.csv", create())
            .expect("opens");
        vfs.write_at(id, Some(0), b"hello").expect("writes");
        vfs.write_at(id, Some(7), b"!")
            .expect("writes past the end");
        assert_eq!(vfs.read_at(id, 0, 100), Ok(b"hello\0\0!".to_vec()));
        vfs.write_at(id, None, b"+").expect("appends");
        assert_eq!(vfs.read_at(id, 8, 100), Ok(b"+".to_vec()));
        assert_eq!(vfs.read_at(id, 100, 10), Ok(Vec::new()));
        assert_eq!(vfs.fstat(id).map(|m| m.size), Ok(9));
        assert!(vfs.is_open("/Outgoing/Invoices/f.csv"));
        vfs.close(id);
        assert!(!vfs.is_open("/Outgoing/Invoices/f.csv"));

        let id = vfs
            .open(
                "/Outgoing/Invoices/f.csv",
                OpenOptions {
                    truncate: true,
                    ..Default::default()
                },
            )
            .expect("opens");
        assert_eq!(vfs.fstat(id).map(|m| m.size), Ok(0));
        vfs.close(id);

        assert!(matches!(
            vfs.open(
                "/Outgoing/Invoices/f.csv",
                OpenOptions {
                    create: true,
                    exclusive: true,
                    truncate: false
                }
            ),
            Err(VfsError::AlreadyExists(_))
        ));
        assert!(matches!(
            vfs.open("/Outgoing/Invoices/missing", OpenOptions::default()),
            Err(VfsError::NotFound(_))
        ));
        assert!(matches!(
            vfs.open("/NoSuchDir/f", create()),
            Err(VfsError::NotFound(_))
        ));
        assert!(matches!(
            vfs.open("/Outgoing", create()),
            Err(VfsError::IsADirectory(_))
        ));
    }

    #[test]
    fn rename_refuses_an_existing_target_and_keeps_open_handles() {
        let vfs = Vfs::with_coupa_folders();
        let id = vfs
            .open("/Incoming/InvoicePayments/p.csv.tmp", create())
            .expect("opens");
        vfs.write_at(id, Some(0), b"ab").expect("writes");
        vfs.rename(
            "/Incoming/InvoicePayments/p.csv.tmp",
            "/Incoming/InvoicePayments/p.csv",
        )
        .expect("renames");
        // The handle follows the file, not the name.
        vfs.write_at(id, None, b"c").expect("writes after rename");
        vfs.close(id);
        assert_eq!(
            vfs.read_file("/Incoming/InvoicePayments/p.csv"),
            Some(b"abc".to_vec())
        );
        assert!(!vfs.exists("/Incoming/InvoicePayments/p.csv.tmp"));

        vfs.write_file("/Incoming/InvoicePayments/q.csv", "q")
            .expect("writes");
        assert!(matches!(
            vfs.rename(
                "/Incoming/InvoicePayments/q.csv",
                "/Incoming/InvoicePayments/p.csv"
            ),
            Err(VfsError::AlreadyExists(_))
        ));
        assert!(matches!(
            vfs.rename(
                "/Incoming/InvoicePayments/zz",
                "/Incoming/InvoicePayments/y"
            ),
            Err(VfsError::NotFound(_))
        ));
        vfs.mkdir("/Incoming/InvoicePayments/d").expect("mkdir");
        assert!(matches!(
            vfs.rename(
                "/Incoming/InvoicePayments/d",
                "/Incoming/InvoicePayments/d/e"
            ),
            Err(VfsError::Invalid(_))
        ));
        vfs.rename(
            "/Incoming/InvoicePayments/q.csv",
            "/Archive/Incoming/InvoicePayments/q.csv",
        )
        .expect("moves across folders");
        assert_eq!(
            vfs.list_files("/Archive/Incoming/InvoicePayments"),
            [("q.csv".to_owned(), 1)]
        );
    }

    #[test]
    fn remove_mkdir_rmdir() {
        let vfs = Vfs::with_coupa_folders();
        vfs.mkdir("/Outgoing/Invoices/done").expect("mkdir");
        assert!(matches!(
            vfs.mkdir("/Outgoing/Invoices/done"),
            Err(VfsError::AlreadyExists(_))
        ));
        assert!(matches!(vfs.mkdir("/a/b"), Err(VfsError::NotFound(_))));
        vfs.write_file("/Outgoing/Invoices/done/f", "x")
            .expect("writes");
        assert!(matches!(
            vfs.rmdir("/Outgoing/Invoices/done"),
            Err(VfsError::NotEmpty(_))
        ));
        assert!(matches!(
            vfs.remove("/Outgoing/Invoices/done"),
            Err(VfsError::IsADirectory(_))
        ));
        assert!(matches!(
            vfs.rmdir("/Outgoing/Invoices/done/f"),
            Err(VfsError::NotADirectory(_))
        ));
        vfs.remove("/Outgoing/Invoices/done/f").expect("removes");
        assert!(matches!(
            vfs.remove("/Outgoing/Invoices/done/f"),
            Err(VfsError::NotFound(_))
        ));
        vfs.rmdir("/Outgoing/Invoices/done").expect("rmdir");
        assert!(!vfs.exists("/Outgoing/Invoices/done"));
    }

    #[test]
    fn a_removed_file_lives_until_its_handle_closes() {
        let vfs = Vfs::with_coupa_folders();
        let id = vfs.open("/Outgoing/Invoices/f", create()).expect("opens");
        vfs.write_at(id, Some(0), b"data").expect("writes");
        vfs.remove("/Outgoing/Invoices/f").expect("removes");
        assert_eq!(vfs.read_at(id, 0, 10), Ok(b"data".to_vec()));
        vfs.close(id);
        assert!(vfs.read_at(id, 0, 10).is_err());
        assert!(vfs.tree.lock().inodes.is_empty());
    }

    #[test]
    fn files_are_capped() {
        let vfs = Vfs::with_coupa_folders();
        let id = vfs.open("/Outgoing/Invoices/big", create()).expect("opens");
        assert!(matches!(
            vfs.write_at(id, Some(MAX_FILE_SIZE), b"x"),
            Err(VfsError::TooLarge(_))
        ));
        vfs.close(id);
    }
}

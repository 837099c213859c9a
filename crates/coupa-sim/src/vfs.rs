//! The SFTP server's in-memory file tree. (Placeholder: being written.)

#[derive(Debug, Default)]
pub struct Vfs {}

impl Vfs {
    pub fn with_coupa_folders() -> Self {
        Vfs {}
    }
}

//! SFTP server and CSV loader, over the real protocol.

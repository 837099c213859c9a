//! The SFTP server. (Placeholder: being written.)

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::SimState;

pub struct Server {
    _state: Arc<SimState>,
}

impl Server {
    pub fn new(state: Arc<SimState>) -> Self {
        Server { _state: state }
    }

    pub fn host_key_openssh(&self) -> String {
        String::new()
    }

    pub async fn serve(self, _listener: TcpListener, shutdown: impl Future<Output = ()>) {
        shutdown.await;
    }
}

//! A test server on an ephemeral 127.0.0.1 port, run on its own thread and single-threaded
//! runtime (so sync tests that run a child process and async tests can both use it) until
//! dropped. Shared by the fake API server and its TLS front.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::future::Future;
use std::net::SocketAddr;

/// The running server; it stops at once when dropped, even with a request still streaming.
pub struct Loopback {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Loopback {
    /// Bind 127.0.0.1:0 and run `serve(listener)` until this value is dropped.
    pub fn serve<F, Fut>(serve: F) -> Self
    where
        F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                tokio::select! {
                    () = serve(listener) => {}
                    _ = stop_rx => {}
                }
            });
        });
        Self {
            addr: addr_rx.recv().unwrap(),
            shutdown: Some(stop_tx),
        }
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
    }
}

//! The accept loop of one listener: at most `max_connections` connections at once (a new one
//! waits for room, and idle connections are asked to make it), accept errors such as EMFILE
//! met with a growing pause instead of a spin, and draining on shutdown.
//!
//! The connection limit is what keeps file descriptors free for everything else, the
//! certificate reload included: [`connection_limit`] holds it below `RLIMIT_NOFILE`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};

use super::connection::{Phase, Signals};
use crate::metrics::Metrics;

/// File descriptors kept free of connections: listeners, the runtime, standard streams, the
/// certificate files while they are re-read.
pub(crate) const FD_RESERVE: u64 = 64;

/// Most connections at once on the health listener (probes and scrapes).
pub(crate) const HEALTH_MAX_CONNECTIONS: usize = 16;

/// Longest a new connection waits for room before it is dropped.
const ROOM_WAIT: Duration = Duration::from_secs(10);

/// Pause after the first failed accept; doubled per failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause between failed accepts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Why the connection limit cannot be honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "RLIMIT_NOFILE {nofile} leaves no file descriptors for connections (at least {needed} needed: {FD_RESERVE} reserved, {HEALTH_MAX_CONNECTIONS} for the health listener, 1 connection); raise it (ulimit -n)"
)]
pub struct FdLimitError {
    /// The soft limit.
    pub nofile: u64,
    /// The least that works.
    pub needed: u64,
}

/// `wanted` connections, or fewer if the soft `RLIMIT_NOFILE` (`nofile`, `None` unlimited) has
/// no room for them beside the reserve and the health listener.
pub(crate) fn connection_limit(wanted: usize, nofile: Option<u64>) -> Result<usize, FdLimitError> {
    let Some(nofile) = nofile else {
        return Ok(wanted.max(1));
    };
    let needed = FD_RESERVE + HEALTH_MAX_CONNECTIONS as u64 + 1;
    if nofile < needed {
        return Err(FdLimitError { nofile, needed });
    }
    let room = nofile - FD_RESERVE - HEALTH_MAX_CONNECTIONS as u64;
    Ok(wanted
        .max(1)
        .min(usize::try_from(room).unwrap_or(usize::MAX)))
}

/// The soft `RLIMIT_NOFILE` of this process (`None`: unlimited).
pub(crate) fn nofile_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Something that accepts connections (a TCP listener; a fake in tests).
pub(crate) trait Accept: Send + 'static {
    /// An accepted connection.
    type Stream: Send + 'static;
    /// The next connection.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;
}

impl Accept for TcpListener {
    type Stream = TcpStream;

    async fn accept(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        // TCP_NODELAY: without it, Nagle holds a response back until the previous segment
        // (e.g. TLS session tickets) is acknowledged, up to the peer's 40 ms delayed ACK.
        let _ = stream.set_nodelay(true);
        Ok((stream, peer))
    }
}

/// Errors of one connection (the peer gave up before we accepted): accept the next at once.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// A listener's limits and what its connections listen to.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Most connections at once.
    pub(crate) max_connections: usize,
    /// What the server says to every connection.
    pub(crate) signals: Signals,
}

/// Accept on `listener` until the phase leaves [`Phase::Serving`], handing each connection,
/// with its place among the `max_connections`, to `serve` (which spawns). Then wait until
/// every connection has ended.
pub(crate) async fn run<L, F>(mut listener: L, limits: Limits, metrics: Arc<Metrics>, serve: F)
where
    L: Accept,
    F: Fn(L::Stream, OwnedSemaphorePermit),
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut phase = limits.signals.phase.clone();
    let room = limits.signals.room.clone();
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped_serving(&mut phase) => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => {
                backoff = Duration::ZERO;
                stream
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                metrics.accept_error();
                if backoff.is_zero() {
                    tracing::warn!(error = %e, "accepting a connection failed; pausing before the next try");
                }
                backoff = (backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => continue,
                    _ = stopped_serving(&mut phase) => break,
                }
            }
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Full: this connection waits (the loop accepts no other meanwhile) while idle
                // connections are asked to close.
                match wait_for_room(&slots, &room).await {
                    Some(slot) => slot,
                    None => {
                        tracing::warn!(
                            max_connections = limits.max_connections,
                            "no room for a new connection; dropped it"
                        );
                        continue;
                    }
                }
            }
        };
        serve(stream, slot);
    }
    drop(listener);
    // Every connection holds a slot until it ends.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

/// Resolves when the phase is no longer [`Phase::Serving`].
async fn stopped_serving(phase: &mut watch::Receiver<Phase>) {
    let _ = phase.wait_for(|p| *p != Phase::Serving).await;
}

/// A slot, asking idle connections to close until one is free, for at most [`ROOM_WAIT`].
async fn wait_for_room(slots: &Arc<Semaphore>, room: &Notify) -> Option<OwnedSemaphorePermit> {
    let deadline = tokio::time::Instant::now() + ROOM_WAIT;
    loop {
        room.notify_waiters();
        tokio::select! {
            slot = slots.clone().acquire_owned() => return slot.ok(),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = tokio::time::sleep_until(deadline) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_connection_limit_stays_under_the_descriptor_limit() {
        assert_eq!(connection_limit(256, None), Ok(256));
        assert_eq!(connection_limit(256, Some(1_048_576)), Ok(256));
        // 256 descriptors: 64 reserved, 16 for health, 176 for connections.
        assert_eq!(connection_limit(256, Some(256)), Ok(176));
        assert_eq!(connection_limit(0, None), Ok(1));
        let err = connection_limit(256, Some(64)).unwrap_err();
        assert_eq!(err.needed, 81);
        assert!(err.to_string().contains("ulimit -n"), "{err}");
    }

    /// A listener whose every accept fails with EMFILE, counting the tries.
    struct OutOfFiles(Arc<AtomicUsize>);

    impl Accept for OutOfFiles {
        type Stream = ();

        async fn accept(&mut self) -> io::Result<((), SocketAddr)> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(io::Error::from_raw_os_error(24)) // EMFILE
        }
    }

    #[tokio::test(start_paused = true)]
    async fn emfile_backs_off_instead_of_spinning() {
        let tries = Arc::new(AtomicUsize::new(0));
        let (phase_tx, phase) = watch::channel(Phase::Serving);
        let limits = Limits {
            max_connections: 4,
            signals: Signals {
                phase,
                room: Arc::new(Notify::new()),
            },
        };
        let metrics = Arc::new(Metrics::new());
        let task = tokio::spawn(run(
            OutOfFiles(tries.clone()),
            limits,
            metrics.clone(),
            |_, _| {},
        ));
        // Ten seconds of a descriptor table that stays full.
        for _ in 0..100 {
            tokio::time::advance(Duration::from_millis(100)).await;
            tokio::task::yield_now().await;
        }
        let n = tries.load(Ordering::SeqCst);
        // 10 ms, 20, 40, ... then once a second: about 17 tries, never thousands.
        assert!((5..=25).contains(&n), "{n} accept calls in 10 s");
        assert!(
            metrics
                .render()
                .contains(&format!("tkeha_webhook_accept_errors_total {n}")),
            "{}",
            metrics.render()
        );
        phase_tx.send(Phase::Draining).unwrap();
        task.await.unwrap();
    }

    /// A listener that hands out `n` connections, then waits forever.
    struct Hands(usize);

    impl Accept for Hands {
        type Stream = usize;

        async fn accept(&mut self) -> io::Result<(usize, SocketAddr)> {
            if self.0 == 0 {
                std::future::pending::<()>().await;
            }
            self.0 -= 1;
            Ok((self.0, "127.0.0.1:1".parse().unwrap()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_listener_asks_idle_connections_to_make_room() {
        let (phase_tx, phase) = watch::channel(Phase::Serving);
        let room = Arc::new(Notify::new());
        let limits = Limits {
            max_connections: 2,
            signals: Signals {
                phase,
                room: room.clone(),
            },
        };
        // Each "connection" holds its slot until room is asked for, as an idle one would.
        let served = Arc::new(AtomicUsize::new(0));
        let counter = served.clone();
        let room_for_conns = room.clone();
        let task = tokio::spawn(run(
            Hands(3),
            limits,
            Arc::new(Metrics::new()),
            move |_, slot| {
                counter.fetch_add(1, Ordering::SeqCst);
                let room = room_for_conns.clone();
                tokio::spawn(async move {
                    room.notified().await;
                    drop(slot);
                });
            },
        ));
        for _ in 0..10 {
            tokio::time::advance(Duration::from_millis(50)).await;
            tokio::task::yield_now().await;
        }
        assert_eq!(served.load(Ordering::SeqCst), 3, "the third got room");
        phase_tx.send(Phase::Draining).unwrap();
        room.notify_waiters();
        task.await.unwrap();
    }
}

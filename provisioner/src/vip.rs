//! Watching which masters hold the VIP (one streaming script per host) and waiting for the VIP to answer TCP from this host.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::fleet::Host;
use crate::net::Network;
use crate::scripts::watch::{self, watch_script};
use crate::transport::{Route, TransportError};

/// What the watchers saw so far (indexed like the hosts).
#[derive(Debug)]
pub(crate) struct HolderView {
    latest: Mutex<Vec<Option<bool>>>,
    ever: Mutex<Vec<bool>>,
    first_held: Mutex<Vec<Option<Instant>>>,
    stop: AtomicBool,
}

impl HolderView {
    pub fn new(n: usize) -> Self {
        HolderView {
            latest: Mutex::new(vec![None; n]),
            ever: Mutex::new(vec![false; n]),
            first_held: Mutex::new(vec![None; n]),
            stop: AtomicBool::new(false),
        }
    }
    fn set(&self, i: usize, holds: bool) {
        if let Some(slot) = self
            .latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(i)
        {
            *slot = Some(holds);
        }
        if holds
            && let Some(slot) = self
                .ever
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(i)
        {
            *slot = true;
        }
        if holds
            && let Some(slot) = self
                .first_held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(i)
        {
            slot.get_or_insert_with(Instant::now);
        }
    }
    /// Latest answer per host (None: not heard from yet or not watched).
    pub fn latest(&self) -> Vec<Option<bool>> {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    /// Hosts that held the VIP at any time during the watch.
    pub fn ever(&self) -> Vec<bool> {
        self.ever.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// When each host was first seen holding the VIP (line arrival time on this host).
    pub fn first_held(&self) -> Vec<Option<Instant>> {
        self.first_held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Spawn a watcher on each given host inside `scope`; they end when `view.stop()` is called or after `secs`.
pub(crate) fn spawn_watchers<'scope, 'env, 'a: 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    hosts: impl Iterator<Item = &'env mut Host<'a>>,
    vip: IpAddr,
    interval_ms: u32,
    secs: u32,
    view: &'env HolderView,
) {
    let script = watch_script(vip, interval_ms, secs);
    for h in hosts {
        let script = script.clone();
        scope.spawn(move || {
            let i = h.index;
            if let Some(remote) = h.remote.as_mut() {
                let r = remote.stream(&script, Duration::from_secs(5), &mut |line| {
                    if let Some(holds) = watch::parse_line(line) {
                        view.set(i, holds);
                    }
                    !view.stopped()
                });
                if let Err(e) = r {
                    h.report.notes.push(format!("VIP watch ended: {e}"));
                }
            }
            h.sync_round_trips();
        });
    }
}

/// Exactly one of the watched hosts holds the VIP: its index.
pub(crate) fn single_holder(latest: &[Option<bool>], watched: &[usize]) -> Option<usize> {
    if watched
        .iter()
        .any(|&i| latest.get(i).copied().flatten().is_none())
    {
        return None;
    }
    let holders: Vec<usize> = watched
        .iter()
        .copied()
        .filter(|&i| latest.get(i).copied().flatten() == Some(true))
        .collect();
    (holders.len() == 1).then(|| holders[0])
}

/// Wait until exactly one usable host holds the VIP, steadily for `stable`. Returns its index, or the last view.
pub(crate) fn wait_single_holder(
    hosts: &mut [Host<'_>],
    vip: IpAddr,
    timeout: Duration,
    stable: Duration,
) -> Result<usize, Vec<Option<bool>>> {
    let n = hosts.len();
    let view = HolderView::new(n);
    let watched: Vec<usize> = hosts
        .iter()
        .filter(|h| h.usable())
        .map(|h| h.index)
        .collect();
    let secs = u32::try_from(timeout.as_secs())
        .unwrap_or(u32::MAX)
        .saturating_add(2);
    let deadline = Instant::now() + timeout;
    let mut result = Err(Vec::new());
    std::thread::scope(|s| {
        spawn_watchers(
            s,
            hosts.iter_mut().filter(|h| h.usable()),
            vip,
            100,
            secs,
            &view,
        );
        let mut since: Option<(usize, Instant)> = None;
        loop {
            let latest = view.latest();
            match single_holder(&latest, &watched) {
                Some(i) => {
                    let (j, t) = *since.get_or_insert((i, Instant::now()));
                    if j != i {
                        since = Some((i, Instant::now()));
                    } else if t.elapsed() >= stable {
                        result = Ok(i);
                        break;
                    }
                }
                None => since = None,
            }
            if Instant::now() >= deadline {
                result = Err(latest);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        view.stop();
    });
    result
}

/// Poll `addr` from this host along `route` until it answers (`Ok(true)`) or the deadline
/// passes (`Ok(false)`).
///
/// # Errors
///
/// The proxy of `route` failed: the probe could not be made (and is not made directly).
pub(crate) fn wait_tcp(
    network: &dyn Network,
    route: &Route,
    addr: SocketAddr,
    deadline: Instant,
) -> Result<bool, TransportError> {
    loop {
        if network.tcp_answers(route, addr, Duration::from_millis(300))? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The report's words for a probe the proxy could not make.
pub(crate) fn unprobed(addr: SocketAddr, e: &TransportError) -> String {
    format!(
        "cannot probe {addr} from this host: {e} (probes take the masters' route and are never made directly)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_holder_needs_every_watched_host() {
        assert_eq!(
            single_holder(&[Some(false), Some(true), None], &[0, 1, 2]),
            None
        );
        assert_eq!(
            single_holder(&[Some(false), Some(true), None], &[0, 1]),
            Some(1)
        );
        assert_eq!(single_holder(&[Some(true), Some(true)], &[0, 1]), None);
        assert_eq!(single_holder(&[Some(false), Some(false)], &[0, 1]), None);
    }
}

//! Sampling a lab from outside while faults are injected: who holds the VIP (by `ip -n NS addr`)
//! and, optionally, who answers `GET http://VIP:6443/`, every `every` ms in a background thread.

use crate::lab::hosts::HostLab;
use crate::lab::{Lab, netns, probe};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One observation.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Since the watch started.
    pub at: Duration,
    /// Indexes of masters holding the VIP.
    pub holders: Vec<usize>,
    /// Body of `GET VIP:port` (`apiserver <hostname>`), if asked for and answered.
    pub answer: Option<String>,
}

/// A running sampler; `stop` returns what it saw.
#[derive(Debug)]
pub struct Watch {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Vec<Sample>>>,
    /// When sampling began: sample times are offsets from it.
    pub started: Instant,
}

impl Watch {
    /// Starts sampling every `every`; with `http_port`, also GETs VIP:port (timeout = `every`).
    pub fn start(lab: &Lab, every: Duration, http_port: Option<u16>) -> Watch {
        let namespaces: Vec<String> = lab.masters.iter().map(|m| m.ns.clone()).collect();
        let vip = lab.vip();
        let holders = move || {
            (0..namespaces.len())
                .filter(|&i| netns::holds(&namespaces[i], &vip))
                .collect()
        };
        Watch::start_with(holders, every, http_port.map(|p| lab.vip_addr(p)))
    }

    /// Starts sampling the booted lab `lab` every `every` (see [`Watch::start`]).
    pub fn start_hosts(lab: &HostLab, every: Duration, http_port: Option<u16>) -> Watch {
        Watch::start_with(
            lab.holder_probe(),
            every,
            http_port.map(|p| lab.vip_addr(p)),
        )
    }

    /// Starts sampling `holders()` every `every`, and `GET addr` when given.
    pub fn start_with(
        mut holders: impl FnMut() -> Vec<usize> + Send + 'static,
        every: Duration,
        addr: Option<SocketAddr>,
    ) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let started = Instant::now();
        let handle = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let tick = Instant::now();
                let holders = holders();
                let answer =
                    addr.and_then(|a| probe::http_get(a, every.max(Duration::from_millis(100))));
                samples.push(Sample {
                    at: started.elapsed(),
                    holders,
                    answer,
                });
                if let Some(rest) = every.checked_sub(tick.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
            samples
        });
        Watch {
            stop,
            handle: Some(handle),
            started,
        }
    }

    /// Stops the sampler and returns the samples.
    pub fn stop(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Samples in which more than one master held the VIP.
pub fn split_samples(samples: &[Sample]) -> Vec<&Sample> {
    samples.iter().filter(|s| s.holders.len() > 1).collect()
}

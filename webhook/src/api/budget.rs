//! The memory budget for request bodies in flight, shared by every connection and HTTP/2 stream:
//! a body takes its share before it is read and gives it back when its answer is built.
//!
//! Bodies over [`SMALL_BODY`] may fill the budget only up to [`SMALL_RESERVE`] short of the whole,
//! so that however many large bodies stall, an ordinary review (a few KiB) still finds room.
//! Reviewing a large body also waits for the one large-review lane, so only one amplifies its
//! input into parsed objects and errors at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bodies up to this size (an ordinary review, with its old object and managed fields) may use
/// the whole budget and skip the large-review lane.
pub const SMALL_BODY: usize = 64 * 1024;

/// The part of the budget that only bodies up to [`SMALL_BODY`] may use.
pub const SMALL_RESERVE: usize = 4 * 1024 * 1024;

/// Default budget: room for four bodies at the 3 MiB limit beside the reserve.
pub const DEFAULT_BODY_BUDGET: usize = 16 * 1024 * 1024;

/// Bytes of request bodies held at once, with room kept for small ones.
#[derive(Debug)]
pub struct BodyBudget {
    limit: usize,
    used: AtomicUsize,
    large_lane: Arc<Semaphore>,
    /// `used`, as the metrics show it.
    gauge: Gauge,
}

/// Why the budget could not cover a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OverBudget {
    /// The budget in bytes.
    pub(crate) limit: usize,
    /// What the body asked for, in bytes.
    pub(crate) wanted: usize,
}

impl BodyBudget {
    /// A budget of `limit` bytes (at least [`SMALL_RESERVE`] plus one large body are useful).
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
            large_lane: Arc::new(Semaphore::new(1)),
            gauge: Gauge::default(),
        }
    }

    /// The same budget, reporting the bytes in flight to `gauge`.
    pub(crate) fn reporting_to(mut self, gauge: Gauge) -> Self {
        self.gauge = gauge;
        self
    }

    /// The budget in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held now.
    pub fn in_use(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The most that bodies of `size` bytes may bring the total to.
    fn ceiling(&self, size: usize) -> usize {
        if size <= SMALL_BODY {
            self.limit
        } else {
            self.limit.saturating_sub(SMALL_RESERVE)
        }
    }

    /// Take `bytes` more for a body that will then be `size` bytes in all.
    fn take(&self, bytes: usize, size: usize) -> Result<(), OverBudget> {
        let ceiling = self.ceiling(size);
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= ceiling)
            })
            .map(|_| {
                self.gauge.inc_by(bytes as i64);
            })
            .map_err(|_| OverBudget {
                limit: self.limit,
                wanted: size,
            })
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        self.gauge.dec_by(bytes as i64);
    }

    /// A share of `bytes` (0 for a body of unknown length, grown as it arrives).
    pub(crate) fn reserve(self: &Arc<Self>, bytes: usize) -> Result<Reservation, OverBudget> {
        self.take(bytes, bytes)?;
        Ok(Reservation {
            budget: self.clone(),
            bytes,
        })
    }

    /// Wait for the large-review lane.
    pub(crate) async fn large_lane(&self) -> Option<OwnedSemaphorePermit> {
        self.large_lane.clone().acquire_owned().await.ok()
    }
}

/// A body's share of the budget, given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<BodyBudget>,
    bytes: usize,
}

impl Reservation {
    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Grow the share to `bytes`.
    pub(crate) fn grow_to(&mut self, bytes: usize) -> Result<(), OverBudget> {
        if bytes > self.bytes {
            self.budget.take(bytes - self.bytes, bytes)?;
            self.bytes = bytes;
        }
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn large_bodies_leave_the_reserve_to_small_ones() {
        let budget = Arc::new(BodyBudget::new(16 * MIB));
        let mut large = Vec::new();
        while let Ok(r) = budget.reserve(3 * MIB) {
            large.push(r);
        }
        // 12 MiB usable by large bodies: four of 3 MiB.
        assert_eq!(large.len(), 4);
        let refused = budget.reserve(3 * MIB).unwrap_err();
        assert_eq!(
            refused,
            OverBudget {
                limit: 16 * MIB,
                wanted: 3 * MIB
            }
        );
        // Ordinary reviews still fit, up to the whole budget.
        let small: Vec<_> = (0..64)
            .map(|_| budget.reserve(SMALL_BODY).unwrap())
            .collect();
        assert_eq!(budget.in_use(), 16 * MIB);
        assert!(budget.reserve(1).is_err());
        drop(small);
        drop(large);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn a_growing_body_becomes_large_once_past_the_small_size() {
        let budget = Arc::new(BodyBudget::new(SMALL_RESERVE + MIB));
        let mut r = budget.reserve(0).unwrap();
        r.grow_to(SMALL_BODY).unwrap();
        r.grow_to(MIB).unwrap();
        // Past the large ceiling (the whole budget minus the reserve).
        assert!(r.grow_to(MIB + 1).is_err());
        assert_eq!(r.bytes(), MIB);
        drop(r);
        assert_eq!(budget.in_use(), 0);
    }
}

//! The memory meter: every allocation of the process goes through a counting shim over the
//! system allocator, and [`measure`] reports the peak of one call above what was live before it.
//!
//! The shim is `peak_alloc` (two atomic counters around `System`), installed here as the global
//! allocator, so every binary that links this crate (the test runs and the libFuzzer targets)
//! is metered. Memory that C code takes with its own `malloc` (libssh2) is not seen.

use std::sync::Mutex;

use peak_alloc::PeakAlloc;

#[global_allocator]
static METER: PeakAlloc = PeakAlloc;

/// One measured call at a time: the counters are process-wide.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Run `f` and return its result with the peak number of bytes allocated during the call above
/// those live when it started (what it kept is counted too: it was live at the peak or after).
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let before = METER.current_usage();
    METER.reset_peak_usage();
    let out = f();
    let peak = METER.peak_usage().saturating_sub(before);
    (out, peak)
}

/// A memory bound of the form `per_byte * input + fixed` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// Bytes allowed per byte of input (K).
    pub per_byte: usize,
    /// Bytes allowed whatever the input (C).
    pub fixed: usize,
}

impl Bound {
    /// The bytes allowed for an input of `len` bytes.
    pub fn allowed(&self, len: usize) -> usize {
        self.per_byte.saturating_mul(len).saturating_add(self.fixed)
    }
}

/// Run `f` on an input of `len` bytes; panic (a finding for the fuzzer and the tests) when its
/// peak allocation is over `bound`. `what` names the call in the message.
pub fn within<R>(what: &str, len: usize, bound: Bound, f: impl FnOnce() -> R) -> R {
    let (out, peak) = measure(f);
    let allowed = bound.allowed(len);
    assert!(
        peak <= allowed,
        "{what}: peak allocation {peak} bytes for {len} bytes of input, over the bound {} x {len} + {} = {allowed}",
        bound.per_byte,
        bound.fixed
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meter_sees_an_allocation_and_its_peak() {
        let (len, peak) = measure(|| {
            let big = vec![1u8; 1 << 20];
            drop(big);
            vec![0u8; 10].len()
        });
        assert_eq!(len, 10);
        assert!(peak >= 1 << 20, "{peak}");
        assert!(peak < (1 << 20) + 4096, "{peak}");
    }

    #[test]
    #[should_panic(expected = "over the bound")]
    fn a_call_over_its_bound_panics() {
        within(
            "test",
            10,
            Bound {
                per_byte: 1,
                fixed: 100,
            },
            || vec![0u8; 1000].len(),
        );
    }
}

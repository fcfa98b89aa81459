//! Interrupting a run: a flag that SIGINT or SIGTERM sets and a drill polls, so that it puts back what it moved before the process ends.
//!
//! The library installs no signal handler by itself; a binary asks for one with
//! [`Interrupt::on_signals`] for the actions that must clean up (the drill) and hands it over in
//! [`Options`](crate::Options). A second signal ends the process at once (exit 130); what the
//! drill moved is then put back by the guard it armed on the master.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag a run polls to stop early and clean up.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// A flag that only [`Interrupt::trigger`] sets.
    pub fn new() -> Self {
        Interrupt::default()
    }

    /// A flag that SIGINT and SIGTERM set; the second such signal ends the process with 130.
    ///
    /// # Errors
    ///
    /// When a handler cannot be installed.
    pub fn on_signals() -> std::io::Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            // The shutdown first: it only fires once the flag is already set.
            signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&flag))?;
            signal_hook::flag::register(signal, Arc::clone(&flag))?;
        }
        Ok(Interrupt(flag))
    }

    /// Set the flag (what a signal does).
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the run was interrupted.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Two flags are equal when they are the same flag.
impl PartialEq for Interrupt {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Interrupt {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_sees_the_trigger() {
        let i = Interrupt::new();
        let seen_by = i.clone();
        assert!(!seen_by.is_set());
        i.trigger();
        assert!(seen_by.is_set());
        assert_eq!(i, seen_by);
        assert_ne!(i, Interrupt::new());
    }
}

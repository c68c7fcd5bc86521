//! SIGINT, SIGTERM and SIGHUP end ustat cleanly: the loops check this flag, so every exit
//! goes through the same path that restores the terminal and detaches the probes.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

#[derive(Clone)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// Installs the handlers.
    pub fn install() -> std::io::Result<Self> {
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            signal_hook::flag::register(signal, Arc::clone(&flag))?;
        }
        Ok(Self(flag))
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Sleeps until `deadline`, or until a signal arrives; returns whether one did.
    pub fn sleep_until(&self, deadline: std::time::Instant) -> bool {
        while std::time::Instant::now() < deadline {
            if self.is_set() {
                return true;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            std::thread::sleep(left.min(std::time::Duration::from_millis(50)));
        }
        self.is_set()
    }
}

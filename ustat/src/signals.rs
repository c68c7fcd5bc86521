//! SIGINT, SIGTERM and SIGHUP end ustat cleanly: the loops check this flag, so every exit
//! goes through the same path that restores the terminal and detaches the probes.
//!
//! A watchdog backs that up: if the clean path has not ended the process a little after the
//! signal (a terminal that hung up can keep crossterm's input poll from ever returning), it
//! exits anyway. Nothing is lost: the kernel detaches every probe and lowers every semaphore
//! of a process that exits, however it exits.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

/// How long the clean path gets after a signal.
const GRACE: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// Installs the handlers and the watchdog.
    pub fn install() -> std::io::Result<Self> {
        let flag = Arc::new(AtomicBool::new(false));
        let signals = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
        for signal in signals {
            signal_hook::flag::register(signal, Arc::clone(&flag))?;
        }
        let mut watched = signal_hook::iterator::Signals::new(signals)?;
        std::thread::Builder::new()
            .name("ustat-watchdog".into())
            .spawn(move || {
                if watched.forever().next().is_some() {
                    std::thread::sleep(GRACE);
                    // The terminal may be gone: best effort, then out.
                    let _ = crossterm::terminal::disable_raw_mode();
                    std::process::exit(0);
                }
            })?;
        Ok(Self(flag))
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Sleeps until `deadline`, or until a signal arrives; returns whether one did.
    pub fn sleep_until(&self, deadline: Instant) -> bool {
        while Instant::now() < deadline {
            if self.is_set() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
        self.is_set()
    }
}

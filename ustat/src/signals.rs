//! SIGINT, SIGTERM and SIGHUP end ustat cleanly: the loops check this flag, so every exit
//! goes through the same path, which writes what is still due (the last, partial CSV interval,
//! the `--folded` file), restores the terminal and closes every link before the process ends.
//!
//! Only a terminal can keep that path from running: one that hung up can keep crossterm's
//! input poll, or a write to it, from ever returning. For that case alone a watchdog is armed
//! while the dashboard holds the terminal: if the terminal is still held a little after the
//! signal, the watchdog closes every link itself and exits. It never exits while links are
//! being closed or created (it waits for the lock that covers both, see `bpf/links.rs`): a
//! process that exits then leaks uprobes, and can leave semaphores raised in traced processes.

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crate::bpf::Links;

/// How long the clean path gets, after a signal, to let go of the terminal.
const GRACE: Duration = Duration::from_secs(2);
/// How often the watchdog looks again while a signal came but the terminal was not held.
const RECHECK: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct StopFlag {
    flag: Arc<AtomicBool>,
    /// The links to close and since when, while the terminal is held.
    terminal: Arc<Mutex<Option<(Links, Instant)>>>,
}

/// The watchdog is armed while this lives (see `StopFlag::watch_terminal`).
pub struct TerminalWatch {
    terminal: Arc<Mutex<Option<(Links, Instant)>>>,
}

impl Drop for TerminalWatch {
    fn drop(&mut self) {
        *self.terminal.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

impl StopFlag {
    /// Installs the handlers and the watchdog (which does nothing until a terminal is watched).
    pub fn install() -> std::io::Result<Self> {
        let flag = Arc::new(AtomicBool::new(false));
        let signals = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
        for signal in signals {
            signal_hook::flag::register(signal, Arc::clone(&flag))?;
        }
        let terminal: Arc<Mutex<Option<(Links, Instant)>>> = Arc::default();
        let mut watched = signal_hook::iterator::Signals::new(signals)?;
        let watched_terminal = Arc::clone(&terminal);
        std::thread::Builder::new()
            .name("ustat-watchdog".into())
            .spawn(move || {
                if watched.forever().next().is_some() {
                    watchdog(Instant::now(), &watched_terminal);
                }
            })?;
        Ok(Self { flag, terminal })
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Arms the watchdog while the returned guard lives: the terminal is in use, and `links`
    /// are what it must close if the terminal hangs the clean path. Drop the guard once the
    /// terminal is restored.
    pub fn watch_terminal(&self, links: Links) -> TerminalWatch {
        *self.terminal.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((links, Instant::now()));
        TerminalWatch {
            terminal: Arc::clone(&self.terminal),
        }
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

/// After a signal at `signalled`: once the terminal has been held for `GRACE` since the signal
/// and since it was taken, closes the links and exits. Returns never; the process ends first.
fn watchdog(signalled: Instant, terminal: &Mutex<Option<(Links, Instant)>>) {
    let held = || {
        terminal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|(links, since)| (links.clone(), signalled.max(*since) + GRACE))
    };
    loop {
        match held() {
            Some((links, due)) if Instant::now() >= due => {
                // Waits while links are being created or closed; holds the lock to the end.
                let mut locked = links.lock();
                // The clean path may have let go of the terminal meanwhile: it goes on.
                if held().is_some() {
                    locked.close_all();
                    // The terminal may be gone: best effort, then out.
                    let _ = crossterm::terminal::disable_raw_mode();
                    std::process::exit(0);
                }
            }
            Some((_, due)) => std::thread::sleep(due.saturating_duration_since(Instant::now())),
            None => std::thread::sleep(RECHECK),
        }
    }
}

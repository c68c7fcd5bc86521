//! The links a tracer holds, and closing them: promptly, in order, and never half-way.
//!
//! Closing a uprobe link unregisters its uprobes and waits for an RCU grace period, tens of
//! milliseconds each; one after another, the 40 links of ten traced processes took almost two
//! seconds. They are closed concurrently instead, each by a thread of its own.
//!
//! Unregistering fails if the closing thread has a fatal signal pending (the kernel then logs
//! "failed to unregister, leaking uprobe", and the breakpoint and the semaphore stay in the
//! traced process). So nothing may end the process while links are being created or closed:
//! both happen under this lock, and whoever must exit in a hurry (the watchdog) takes the lock,
//! closes what is left, and exits while holding it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Group, Link, Program};

/// A link, with what closing it must respect.
struct Held {
    group: Group,
    /// The program ends what another began (a GC's end, a method's return).
    ends: bool,
    link: Link,
}

/// The links of one tracer, shared with whoever may have to close them (see the module docs).
#[derive(Clone, Default)]
pub struct Links(Arc<Mutex<Vec<Held>>>);

/// The links, locked: nothing else creates or closes any while this lives.
pub struct LockedLinks<'a>(MutexGuard<'a, Vec<Held>>);

/// At most this many threads close links at once; each closes its share one by one.
const CLOSERS: usize = 32;

impl Links {
    pub fn lock(&self) -> LockedLinks<'_> {
        // A panic while holding the lock leaves the list itself consistent.
        LockedLinks(self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Closes every link.
    pub fn close_all(&self) {
        self.lock().close_all();
    }
}

impl LockedLinks<'_> {
    pub fn push(&mut self, group: Group, program: Program, link: Link) {
        self.0.push(Held {
            group,
            ends: program.closes(),
            link,
        });
    }

    /// How many probe sites the links cover.
    pub fn sites(&self) -> usize {
        self.0.iter().map(|held| held.link.sites()).sum()
    }

    /// Closes every link. While the lock is held, none can be created or half-closed.
    pub fn close_all(&mut self) {
        self.close(|_| true);
    }

    /// Closes the links of `group`.
    pub fn close_group(&mut self, group: Group) {
        self.close(|g| g == group);
    }

    /// Closes the links whose group `pick` picks: every begin first, then every end (ends
    /// are attached before begins, and go after them), so no call begins that could not end.
    /// Each wave closes concurrently and is over when this returns.
    fn close(&mut self, pick: impl Fn(Group) -> bool) {
        let (gone, kept): (Vec<Held>, Vec<Held>) = std::mem::take(&mut *self.0)
            .into_iter()
            .partition(|held| pick(held.group));
        *self.0 = kept;
        let (ends, begins): (Vec<Held>, Vec<Held>) = gone.into_iter().partition(|held| held.ends);
        close_concurrently(begins.into_iter().map(|held| held.link).collect());
        close_concurrently(ends.into_iter().map(|held| held.link).collect());
    }
}

/// Closes `links` from up to `CLOSERS` threads and returns when all are closed. A thread that
/// cannot be started leaves its share to the calling thread.
fn close_concurrently(mut links: Vec<Link>) {
    if links.len() <= 1 {
        drop(links);
        return;
    }
    let share = links.len().div_ceil(CLOSERS);
    std::thread::scope(|scope| {
        while !links.is_empty() {
            let chunk = links.split_off(links.len().saturating_sub(share));
            // On failure the closure, and the chunk in it, is dropped here: closed inline.
            let _ = std::thread::Builder::new()
                .name("ustat-close".into())
                .spawn_scoped(scope, move || drop(chunk));
        }
    });
}

//! The dashboard as a library: state (`app`, `flow`, and `sampled`, each process's sampled
//! stacks), keys (`keys`), drawing (`render`) and the event loop (`event_loop`), which runs
//! over any `Source + CallSource` with any terminal backend and any source of key events. It
//! does no setup: `commands::dashboard` checks privileges, installs the signal handlers,
//! starts the source and enters the terminal.

pub mod app;
pub mod event_loop;
pub mod flow;
pub mod keys;
pub mod render;
pub mod sampled;

pub use event_loop::{Events, Step, TerminalEvents, run};

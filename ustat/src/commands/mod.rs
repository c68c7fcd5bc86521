//! One module per subcommand, and everything around the views: privileges, signals, the
//! terminal, starting the source, choosing the dashboard, CSV or text.

pub mod dashboard;
pub mod flow;
pub mod list;
pub mod prometheus;
mod terminal;
pub mod trace;
mod trace_go;
mod trace_specs;
pub mod watch;

//! One module per subcommand.

pub mod flow;
pub mod list;
pub mod trace;
pub mod watch;

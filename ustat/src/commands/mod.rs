//! One module per subcommand.

pub mod list;
pub mod trace;
pub mod watch;

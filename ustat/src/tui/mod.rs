//! The dashboard.

use crate::cli::WatchArgs;

pub fn run(_args: &WatchArgs) -> anyhow::Result<()> {
    anyhow::bail!("the dashboard is not built yet; use --csv")
}

//! `USTAT_DEBUG_MAPS=FILE`: the kernel maps' sizes after every poll, for the tests that check
//! the maps return to their size.

use super::KernelSource;
use crate::sanitize;

/// The environment variable naming a file that gets the kernel maps' sizes after each poll.
pub const DEBUG_MAPS_VARIABLE: &str = "USTAT_DEBUG_MAPS";

impl KernelSource {
    /// With `USTAT_DEBUG_MAPS=FILE`, appends the number of entries of each kernel map, the
    /// hits lost to full maps, and the pids with entries to FILE after every poll (the tests
    /// check that the maps return to their size).
    pub(super) fn debug_maps(&mut self) {
        let Some(path) = std::env::var_os(DEBUG_MAPS_VARIABLE) else {
            return;
        };
        let line = match self.tracer.map_sizes() {
            Ok(sizes) => {
                let mut fields: Vec<String> = sizes
                    .entries
                    .iter()
                    .map(|(name, n)| format!("{name}={n}"))
                    .collect();
                if let Ok(lost) = self.tracer.lost() {
                    fields.push(format!("lost_map_full={}", lost.map_full));
                }
                let pids: Vec<String> = sizes.pids.iter().map(u32::to_string).collect();
                fields.push(format!("pids={}", pids.join(",")));
                fields.join(" ")
            }
            Err(e) => format!("error={e}"),
        };
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| {
                std::io::Write::write_all(&mut file, format!("{line}\n").as_bytes())
            });
        if let Err(e) = written {
            self.warnings
                .push(sanitize::text(&format!("{DEBUG_MAPS_VARIABLE}: {e}")));
        }
    }
}

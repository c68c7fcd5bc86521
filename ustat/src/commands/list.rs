//! `ustat list TARGET`: the USDT probes of a binary, or of every binary a process maps.

use std::{collections::HashSet, io::Write};

use serde::Serialize;

use crate::{
    cli::{ListArgs, ListFormat},
    sanitize,
    target::{self, ProbedBinary},
    usdt::Probe,
};

pub fn run(args: &ListArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let probed = target::probed_binaries(&args.target)?;
    for line in &probed.skipped {
        eprintln!("ustat: {line}");
    }
    // A write per line would be a system call per probe: a file may have 100,000.
    let mut out = std::io::BufWriter::new(out);
    render(args.format, &probed.binaries, &mut out)?;
    out.flush()?;
    Ok(())
}

/// Writes the probes of `binaries` in `format`.
pub fn render(
    format: ListFormat,
    binaries: &[ProbedBinary],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match format {
        ListFormat::Table => table(binaries, out)?,
        ListFormat::Csv => csv(binaries, out)?,
        ListFormat::Json => {
            let rows: Vec<JsonBinary> = binaries.iter().map(JsonBinary::from).collect();
            serde_json::to_writer_pretty(&mut *out, &rows)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

/// The distinct argument specs of a probe's sites, in site order.
fn distinct_args(probe: &Probe) -> Vec<&str> {
    let mut seen = HashSet::new();
    probe
        .sites
        .iter()
        .map(|site| site.arg_text.as_str())
        .filter(|spec| seen.insert(*spec))
        .collect()
}

/// The widest a table column is padded to: a longer name (they come from the file, any
/// length) overflows its own line rather than padding every line to its length — and
/// `format!` panics on widths over 65,535.
const MAX_COLUMN: usize = 64;

/// Why some sites cannot be traced, one reason per line.
fn problems(probe: &Probe) -> Vec<String> {
    probe
        .sites
        .iter()
        .filter_map(|site| {
            let reason = site.target.as_ref().err()?;
            Some(format!("site {:#x}: {reason}", site.address))
        })
        .collect()
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The probes as an aligned table, one block per binary.
fn table(binaries: &[ProbedBinary], out: &mut dyn Write) -> std::io::Result<()> {
    for (i, binary) in binaries.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        let sites: usize = binary.probes.iter().map(|p| p.sites.len()).sum();
        writeln!(
            out,
            "{}: {} probes, {} sites",
            sanitize::text(&binary.path.to_string_lossy()),
            binary.probes.len(),
            sites
        )?;
        let width = |f: fn(&Probe) -> usize, title: &str| {
            binary
                .probes
                .iter()
                .map(f)
                .max()
                .unwrap_or(0)
                .clamp(title.len(), MAX_COLUMN)
        };
        let pw = width(|p| p.provider.chars().count(), "PROVIDER");
        let nw = width(|p| p.name.chars().count(), "NAME");
        writeln!(
            out,
            "  {:pw$}  {:nw$}  SITES  SEMAPHORE  ARGUMENTS",
            "PROVIDER", "NAME"
        )?;
        for probe in &binary.probes {
            writeln!(
                out,
                "  {:pw$}  {:nw$}  {:>5}  {:9}  {}",
                sanitize::text(&probe.provider),
                sanitize::text(&probe.name),
                probe.sites.len(),
                yes_no(probe.has_semaphore()),
                sanitize::text(&distinct_args(probe).join(" | ")),
            )?;
            for problem in problems(probe) {
                writeln!(
                    out,
                    "  {:pw$}  {:nw$}  ! {}",
                    "",
                    "",
                    sanitize::text(&problem)
                )?;
            }
        }
    }
    Ok(())
}

/// The probes as CSV, one row per probe.
fn csv(binaries: &[ProbedBinary], out: &mut dyn Write) -> anyhow::Result<()> {
    let mut writer = ::csv::Writer::from_writer(out);
    writer.write_record([
        "file",
        "provider",
        "name",
        "sites",
        "semaphore",
        "arguments",
        "unsupported",
    ])?;
    for binary in binaries {
        for probe in &binary.probes {
            writer.write_record([
                sanitize::csv_cell(&binary.path.to_string_lossy()),
                sanitize::csv_cell(&probe.provider),
                sanitize::csv_cell(&probe.name),
                probe.sites.len().to_string(),
                yes_no(probe.has_semaphore()).to_string(),
                sanitize::csv_cell(&distinct_args(probe).join(" | ")),
                sanitize::csv_cell(&problems(probe).join("; ")),
            ])?;
        }
    }
    writer.flush()?;
    Ok(())
}

#[derive(Serialize)]
struct JsonBinary {
    file: String,
    probes: Vec<JsonProbe>,
}

#[derive(Serialize)]
struct JsonProbe {
    provider: String,
    name: String,
    semaphore: bool,
    sites: Vec<JsonSite>,
}

#[derive(Serialize)]
struct JsonSite {
    address: u64,
    file_offset: Option<u64>,
    semaphore_address: Option<u64>,
    semaphore_offset: Option<u64>,
    arguments: String,
    unsupported: Option<String>,
}

impl From<&ProbedBinary> for JsonBinary {
    fn from(binary: &ProbedBinary) -> Self {
        Self {
            file: binary.path.to_string_lossy().into_owned(),
            probes: binary
                .probes
                .iter()
                .map(|probe| JsonProbe {
                    provider: probe.provider.clone(),
                    name: probe.name.clone(),
                    semaphore: probe.has_semaphore(),
                    sites: probe
                        .sites
                        .iter()
                        .map(|site| JsonSite {
                            address: site.address,
                            file_offset: site.target.as_ref().ok().map(|t| t.offset),
                            semaphore_address: site.semaphore_address,
                            semaphore_offset: site
                                .target
                                .as_ref()
                                .ok()
                                .and_then(|t| t.semaphore_offset),
                            arguments: site.arg_text.clone(),
                            unsupported: site.target.as_ref().err().map(ToString::to_string),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{binary::Binary, usdt::Site};

    fn listed(name: &str) -> ProbedBinary {
        let site = Site {
            address: 0x1000,
            semaphore_address: None,
            arg_text: "8@%rax".into(),
            target: Err(crate::usdt::SiteError::NotCode { address: 0x1000 }),
        };
        ProbedBinary {
            path: "/bin/true".into(),
            binary: Binary::open_given(Path::new("/bin/true")).unwrap(),
            probes: vec![
                Probe {
                    provider: "p".into(),
                    name: name.into(),
                    sites: vec![site.clone()],
                },
                Probe {
                    provider: "p".into(),
                    name: "short".into(),
                    sites: vec![site],
                },
            ],
        }
    }

    fn rendered(format: ListFormat, name: &str) -> String {
        let mut out = Vec::new();
        render(format, &[listed(name)], &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn names_of_any_length_render_and_do_not_widen_every_line() {
        let long = "n".repeat(70_000);
        let table = rendered(ListFormat::Table, &long);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[2].starts_with(&format!("  p         {long}      1  no ")));
        let short = lines.iter().find(|l| l.contains("short")).unwrap();
        assert_eq!(
            short.len(),
            "  PROVIDER  ".len() + 64 + "      1  no         8@%rax".len()
        );
        for format in [ListFormat::Csv, ListFormat::Json] {
            assert!(rendered(format, &long).contains(&long));
        }
    }
}

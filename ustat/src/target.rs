//! What the user pointed ustat at: a process or a file, and the binaries with probes in it.

use std::{
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
};

use crate::{
    binary::{self, Binary, Identity, OpenError},
    process::{self, ProcessError},
    usdt::{self, Probe, UsdtError},
};

/// A PID (all digits) or a path to an executable or shared library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Pid(u32),
    Path(PathBuf),
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("expected a PID or a path".into());
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return match s.parse() {
                Ok(0) | Err(_) => Err(format!("`{s}` is not a valid PID")),
                Ok(pid) => Ok(Self::Pid(pid)),
            };
        }
        Ok(Self::Path(PathBuf::from(s)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Usdt(#[from] UsdtError),
    #[error("process {0} maps no binary with USDT probes")]
    NoProbesInProcess(u32),
    #[error("process {pid} has no such probes: {detail}")]
    NoSuchProbe { pid: u32, detail: String },
    #[error("process {pid} does not map {path}", path = path.display())]
    NotMapped { pid: u32, path: PathBuf },
}

/// A binary and its probes.
#[derive(Debug, Clone)]
pub struct ProbedBinary {
    /// The path to show: as the process sees it, or as the user gave it.
    pub path: PathBuf,
    /// The file, open: probes are attached to exactly the file that was parsed.
    pub binary: Arc<Binary>,
    pub probes: Vec<Probe>,
}

/// The binaries with probes a target stands for, and the files ustat would not open.
#[derive(Debug, Default)]
pub struct Probed {
    pub binaries: Vec<ProbedBinary>,
    /// One line per file skipped, naming it and saying why.
    pub skipped: Vec<String>,
}

/// The binaries with probes that `target` stands for: the file itself, or the executable and
/// every library the process maps (each opened as `binary` explains).
pub fn probed_binaries(target: &Target) -> Result<Probed, TargetError> {
    match target {
        Target::Path(path) => Ok(Probed {
            binaries: vec![probed_file(path)?],
            skipped: Vec::new(),
        }),
        Target::Pid(pid) => {
            let mut probed = Probed::default();
            let uid = process::uid(*pid)?;
            for object in process::mapped_objects(*pid)? {
                let binary = match Binary::open_mapped(*pid, &object, uid) {
                    Ok(binary) => binary,
                    Err(OpenError::Refused { path, reason }) => {
                        probed.skipped.push(binary::skip_line(*pid, &path, &reason));
                        continue;
                    }
                    // Gone since maps was read, or unreadable: nothing to list there.
                    Err(_) => continue,
                };
                match usdt::probes_in_binary(&binary) {
                    Ok(probes) => probed.binaries.push(ProbedBinary {
                        path: object.path,
                        binary,
                        probes,
                    }),
                    // Most libraries have no probes; that is not an error here.
                    Err(_) => continue,
                }
            }
            if probed.binaries.is_empty() {
                if !process::exists(*pid) {
                    return Err(ProcessError::NotFound(*pid).into());
                }
                if probed.skipped.is_empty() {
                    return Err(TargetError::NoProbesInProcess(*pid));
                }
            }
            Ok(probed)
        }
    }
}

/// Files a process maps after ustat first looked: the ELF objects with USDT probes that
/// libstapsdt writes (into `/tmp`) and `dlopen`s when a program registers probes at run time,
/// or any library loaded later. Each new file is opened as `binary` explains (inside the
/// process's root, no links, the maps entry's identity, owned by root or the process's user
/// and writable by no one else: libstapsdt's `mkstemp` file is the process user's, mode 0600).
#[derive(Debug)]
pub struct NewMappings {
    pid: u32,
    uid: u32,
    seen: std::collections::HashSet<Identity>,
}

impl NewMappings {
    /// Starts watching `pid`; the files it maps now count as seen.
    pub fn new(pid: u32) -> Result<Self, TargetError> {
        let uid = process::uid(pid)?;
        let seen = process::mapped_objects(pid)?
            .iter()
            .map(Identity::of_mapping)
            .collect();
        Ok(Self { pid, uid, seen })
    }

    /// The process watched.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The files mapped since the last look that have USDT probes, and one line per file
    /// skipped. A file that cannot be read yet is looked at again next time.
    pub fn poll(&mut self) -> Result<Probed, TargetError> {
        let mut probed = Probed::default();
        for object in process::mapped_objects(self.pid)? {
            let identity = Identity::of_mapping(&object);
            if self.seen.contains(&identity) {
                continue;
            }
            let binary = match Binary::open_mapped(self.pid, &object, self.uid) {
                Ok(binary) => binary,
                Err(OpenError::Refused { path, reason }) => {
                    self.seen.insert(identity);
                    probed
                        .skipped
                        .push(binary::skip_line(self.pid, &path, &reason));
                    continue;
                }
                Err(_) => continue,
            };
            self.seen.insert(identity);
            if let Ok(probes) = usdt::probes_in_binary(&binary) {
                probed.binaries.push(ProbedBinary {
                    path: object.path,
                    binary,
                    probes,
                });
            }
        }
        Ok(probed)
    }
}

/// Checks that each process maps `binary` (for `trace FILE -p PID`).
pub fn check_mapped(binary: &ProbedBinary, pids: &[u32]) -> Result<(), TargetError> {
    for &pid in pids {
        let mapped = process::mapped_objects(pid)?
            .iter()
            .any(|object| Identity::of_mapping(object) == binary.binary.identity());
        if !mapped {
            return Err(TargetError::NotMapped {
                pid,
                path: binary.path.clone(),
            });
        }
    }
    Ok(())
}

fn probed_file(path: &Path) -> Result<ProbedBinary, TargetError> {
    let binary = Binary::open_given(path).map_err(UsdtError::from)?;
    Ok(ProbedBinary {
        path: path.to_path_buf(),
        probes: usdt::probes_in_binary(&binary)?,
        binary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_a_pid_anything_else_a_path() {
        assert_eq!("1234".parse(), Ok(Target::Pid(1234)));
        assert_eq!("./1234".parse(), Ok(Target::Path("./1234".into())));
        assert_eq!(
            "/usr/bin/python3".parse(),
            Ok(Target::Path("/usr/bin/python3".into()))
        );
        assert!("0".parse::<Target>().is_err());
        assert!("99999999999999".parse::<Target>().is_err());
        assert!("".parse::<Target>().is_err());
    }
}

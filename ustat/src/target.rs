//! What the user pointed ustat at: a process or a file, and the binaries with probes in it.

use std::{
    path::{Path, PathBuf},
    str::FromStr,
};

use crate::{
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
}

/// A binary and its probes.
#[derive(Debug, Clone)]
pub struct ProbedBinary {
    /// The path to show: as the process sees it, or as the user gave it.
    pub path: PathBuf,
    /// The path to open and attach to from here.
    pub host_path: PathBuf,
    pub probes: Vec<Probe>,
}

/// The binaries with probes that `target` stands for: the file itself, or the executable and
/// every library the process maps.
pub fn probed_binaries(target: &Target) -> Result<Vec<ProbedBinary>, TargetError> {
    match target {
        Target::Path(path) => Ok(vec![probed_file(path)?]),
        Target::Pid(pid) => {
            let mut binaries = Vec::new();
            for object in process::mapped_objects(*pid)? {
                match usdt::probes_in_file(&object.host_path) {
                    Ok(probes) => binaries.push(ProbedBinary {
                        path: object.path,
                        host_path: object.host_path,
                        probes,
                    }),
                    // Most libraries have no probes; that is not an error here.
                    Err(_) => continue,
                }
            }
            if binaries.is_empty() {
                if !process::exists(*pid) {
                    return Err(ProcessError::NotFound(*pid).into());
                }
                return Err(TargetError::NoProbesInProcess(*pid));
            }
            Ok(binaries)
        }
    }
}

fn probed_file(path: &Path) -> Result<ProbedBinary, TargetError> {
    Ok(ProbedBinary {
        path: path.to_path_buf(),
        host_path: path.to_path_buf(),
        probes: usdt::probes_in_file(path)?,
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

//! Recognising a Go binary by its `.go.buildinfo` section: the Go version that built it and
//! the main module's path.
//!
//! The section starts with the 14-byte magic `\xff Go buildinf:`, a pointer size and a flags
//! byte. Since Go 1.18 (flag bit 1) the version and the module information follow at offset 32
//! as two strings, each preceded by its length as an unsigned varint. Before, offsets 16 and
//! 16 + pointer size hold the addresses of two Go string headers (pointer, length), which
//! point into the binary's data.

use super::GoError;

const MAGIC: &[u8] = b"\xff Go buildinf:";
/// Flag bit: the strings are inline (Go 1.18 and later).
const FLAG_INLINE: u8 = 0x2;
/// Flag bit: big-endian pointers (never on x86-64).
const FLAG_BIG_ENDIAN: u8 = 0x1;
/// The module information is framed by 16 bytes before and after.
const MODINFO_FRAME: usize = 16;

/// What `.go.buildinfo` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// `go1.19.8`
    pub version: String,
    /// The main module's path (`path` line), when built in module mode: `example.com/app`,
    /// `command-line-arguments` for `go build file.go`.
    pub module_path: Option<String>,
}

impl BuildInfo {
    /// (major, minor) of `go1.19.8`, `go1.21rc2`, `devel go1.22-abcdef`.
    pub fn version_number(&self) -> Option<(u32, u32)> {
        let at = self.version.find("go1.")?;
        let rest = &self.version[at + 2..];
        let mut parts = rest.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    }

    /// Whether arguments travel in registers (the register ABI, Go 1.17 and later on amd64).
    pub fn register_abi(&self) -> Option<bool> {
        self.version_number().map(|v| v >= (1, 17))
    }
}

/// Parses the section's bytes; `read` gives `len` bytes at a virtual address (for the older,
/// pointer form).
pub fn parse(
    section: &[u8],
    read: &dyn Fn(u64, u64) -> Option<Vec<u8>>,
) -> Result<BuildInfo, GoError> {
    let bad = |why: &str| GoError::BadBuildInfo(why.to_string());
    if !section.starts_with(MAGIC) || section.len() < 32 {
        return Err(bad("it does not start with the build info magic"));
    }
    let pointer_size = usize::from(section[14]);
    let flags = section[15];
    let (version, modinfo) = if flags & FLAG_INLINE != 0 {
        let (version, rest) = varint_string(&section[32..]).ok_or_else(|| bad("version"))?;
        let (modinfo, _) = varint_string(rest).ok_or_else(|| bad("module information"))?;
        (version.to_vec(), modinfo.to_vec())
    } else {
        if pointer_size != 8 || flags & FLAG_BIG_ENDIAN != 0 {
            return Err(bad("pointers are not 8-byte little-endian"));
        }
        let pointer = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(
                section.get(at..at + 8)?.try_into().ok()?,
            ))
        };
        let go_string = |header_address: u64| -> Option<Vec<u8>> {
            let header = read(header_address, 16)?;
            let data = u64::from_le_bytes(header.get(0..8)?.try_into().ok()?);
            let len = u64::from_le_bytes(header.get(8..16)?.try_into().ok()?);
            if len == 0 {
                return Some(Vec::new());
            }
            // Build info strings are short; a huge length is a corrupt file.
            if len > 1 << 20 {
                return None;
            }
            read(data, len)
        };
        let version = pointer(16)
            .and_then(go_string)
            .ok_or_else(|| bad("version"))?;
        let modinfo = pointer(24).and_then(go_string).unwrap_or_default();
        (version, modinfo)
    };
    let version = String::from_utf8_lossy(&version).into_owned();
    if version.is_empty() {
        return Err(bad("no version"));
    }
    Ok(BuildInfo {
        version,
        module_path: module_path(&modinfo),
    })
}

/// The `path` line of the module information.
fn module_path(modinfo: &[u8]) -> Option<String> {
    let inner = if modinfo.len() >= 2 * MODINFO_FRAME {
        &modinfo[MODINFO_FRAME..modinfo.len() - MODINFO_FRAME]
    } else {
        modinfo
    };
    String::from_utf8_lossy(inner)
        .lines()
        .find_map(|line| line.strip_prefix("path\t").map(str::to_string))
}

/// A string preceded by its length as an unsigned LEB128 varint, and what follows it.
fn varint_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut len: u64 = 0;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        len |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let start = i + 1;
            let end = start.checked_add(usize::try_from(len).ok()?)?;
            return Some((bytes.get(start..end)?, &bytes[end..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline_section(version: &str, modinfo: &str) -> Vec<u8> {
        let mut s = MAGIC.to_vec();
        s.push(8);
        s.push(FLAG_INLINE);
        s.resize(32, 0);
        s.push(version.len() as u8);
        s.extend_from_slice(version.as_bytes());
        s.push(modinfo.len() as u8);
        s.extend_from_slice(modinfo.as_bytes());
        s
    }

    #[test]
    fn inline_form_gives_version_and_module() {
        let framed = format!(
            "{}path\texample.com/app\nmod\texample.com/app\t(devel)\t\n{}",
            "0".repeat(16),
            "1".repeat(16)
        );
        let info = parse(&inline_section("go1.19.8", &framed), &|_, _| None).unwrap();
        assert_eq!(info.version, "go1.19.8");
        assert_eq!(info.module_path.as_deref(), Some("example.com/app"));
        assert_eq!(info.version_number(), Some((1, 19)));
        assert_eq!(info.register_abi(), Some(true));
    }

    #[test]
    fn pointer_form_reads_string_headers() {
        let mut s = MAGIC.to_vec();
        s.push(8);
        s.push(0);
        s.extend_from_slice(&0x1000u64.to_le_bytes());
        s.extend_from_slice(&0x2000u64.to_le_bytes());
        let read = |address: u64, len: u64| -> Option<Vec<u8>> {
            let mut header = Vec::new();
            match (address, len) {
                (0x1000, 16) => {
                    header.extend_from_slice(&0x3000u64.to_le_bytes());
                    header.extend_from_slice(&8u64.to_le_bytes());
                    Some(header)
                }
                (0x2000, 16) => {
                    header.extend_from_slice(&0u64.to_le_bytes());
                    header.extend_from_slice(&0u64.to_le_bytes());
                    Some(header)
                }
                (0x3000, 8) => Some(b"go1.16.4".to_vec()),
                _ => None,
            }
        };
        let info = parse(&s, &read).unwrap();
        assert_eq!(info.version, "go1.16.4");
        assert_eq!(info.module_path, None);
        assert_eq!(info.register_abi(), Some(false));
    }

    #[test]
    fn versions_of_every_spelling() {
        let v = |s: &str| {
            BuildInfo {
                version: s.into(),
                module_path: None,
            }
            .version_number()
        };
        assert_eq!(v("go1.21rc2"), Some((1, 21)));
        assert_eq!(v("devel go1.22-abcdef Tue"), Some((1, 22)));
        assert_eq!(v("go1.17"), Some((1, 17)));
        assert_eq!(v("weird"), None);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse(b"not build info at all, not at all", &|_, _| None).is_err());
        let mut truncated = inline_section("go1.19.8", "");
        truncated.truncate(36);
        assert!(parse(&truncated, &|_, _| None).is_err());
    }
}

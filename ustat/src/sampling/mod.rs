//! The CPU sampler's userspace half for CPython: finding and checking a process's layout
//! (`python.rs`), naming code objects (`names.rs`) by reading its memory (`memory.rs`), and
//! turning the kernel's counted stacks into each interval's `Sampled`.

pub mod memory;
pub mod names;
pub mod python;

use std::collections::HashMap;

use ustat_common::{SAMPLE_ENTRY_BIT, SAMPLE_NATIVE, SampleKey, SampleTarget, sample_status};

use crate::{
    binary::Binary,
    discovery::Found,
    process,
    snapshot::{FrameKind, Sampled, SampledFrame, SampledStack},
};
use memory::Remote;
use names::{CodeNames, unknown};
use python::{NotReady, Prepared, Symbols};

/// Where one process's sampling stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Not walked yet (its interpreter is not set up); the reason, for the record.
    Pending(String),
    Ready(Prepared),
    /// Never walked: why, in one sentence.
    Unreadable(String),
}

/// One sampled CPython process.
#[derive(Debug)]
pub struct ProcessSampler {
    pid: u32,
    start: u64,
    version: Option<(u32, u32)>,
    symbols: Result<Symbols, String>,
    state: State,
    names: CodeNames,
    /// Each stack's count at the previous interval (the kernel's counts only grow).
    previous: HashMap<SampleKey, u64>,
}

/// The C code between two Python frames.
fn native_frame() -> SampledFrame {
    SampledFrame {
        function: "(C code)".into(),
        file: String::new(),
        line: 0,
        kind: FrameKind::Native,
    }
}

impl ProcessSampler {
    /// A process about to be sampled, with its binary's symbols placed in it (or why they
    /// cannot be); its layout is found at the first `prepare`.
    pub fn new(found: &Found, symbols: Result<Symbols, String>, version: Option<&str>) -> Self {
        Self {
            pid: found.pid,
            start: found.start_time,
            version: version.and_then(python::parse_version),
            symbols,
            state: State::Pending("not looked at yet".into()),
            names: CodeNames::default(),
            previous: HashMap::new(),
        }
    }

    /// The kernel's target for this process: its layout once known, else one that only
    /// counts. Returns a new target when it changed (to be written to the kernel).
    pub fn prepare(&mut self) -> Option<SampleTarget> {
        let State::Pending(_) = self.state else {
            return None;
        };
        let memory = Remote::new(self.pid);
        let prepared = match &self.symbols {
            Ok(symbols) => python::prepare(&memory, self.version, symbols),
            Err(why) => Err(NotReady::Unreadable(why.clone())),
        };
        match prepared {
            Ok(prepared) => {
                self.state = State::Ready(prepared);
                Some(SampleTarget {
                    start: self.start,
                    interp: prepared.interp,
                    ..prepared.layout.kernel
                })
            }
            Err(NotReady::Later(why)) => {
                self.state = State::Pending(why);
                None
            }
            Err(NotReady::Unreadable(why)) => {
                self.state = State::Unreadable(why);
                None
            }
        }
    }

    /// The target that only counts samples (before the layout is known, or when it is not).
    pub fn counting_target(&self) -> SampleTarget {
        SampleTarget {
            start: self.start,
            ..SampleTarget::default()
        }
    }

    /// Why the process is not walked, when it is not.
    pub fn unreadable(&self) -> Option<&str> {
        match &self.state {
            State::Unreadable(why) => Some(why),
            _ => None,
        }
    }

    /// This interval's samples, from the kernel's counts since the process became a target
    /// (`stacks`: this process's keys; others' are skipped).
    pub fn interval(&mut self, hz: u32, stacks: &[(SampleKey, u64)]) -> Sampled {
        let memory = Remote::new(self.pid);
        let mut named: HashMap<Vec<SampledFrame>, u64> = HashMap::new();
        let mut frame_of: HashMap<u64, SampledFrame> = HashMap::new();
        let mut samples = 0;
        let mut now = HashMap::new();
        for (key, count) in stacks
            .iter()
            .filter(|(k, _)| k.pid == self.pid && k.start == self.start)
        {
            let count = *count;
            now.insert(*key, count);
            let new = count.saturating_sub(self.previous.get(key).copied().unwrap_or(0));
            if new == 0 {
                continue;
            }
            samples += new;
            let frames = match (&self.state, key.status) {
                (_, sample_status::UNREADABLE | sample_status::NO_TASK_LAYOUT) => continue,
                (State::Ready(prepared), _) => {
                    let mut name = |address: u64| {
                        frame_of
                            .entry(address)
                            .or_insert_with(|| self.names.frame(&memory, prepared, address))
                            .clone()
                    };
                    decode(key, &mut name)
                }
                // Walked with a layout no longer trusted: counted only.
                _ => continue,
            };
            *named.entry(frames).or_default() += new;
        }
        self.previous = now;
        let mut stacks: Vec<SampledStack> = named
            .into_iter()
            .map(|(frames, count)| SampledStack { frames, count })
            .collect();
        stacks.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.frames.len().cmp(&b.frames.len()))
        });
        Sampled {
            hz,
            samples,
            stacks,
            unreadable: self.unreadable().map(str::to_string),
        }
    }
}

/// A key's frames, outermost first, named by `name`; what the status says becomes a frame:
/// a thread outside Python, a stack cut short, a read that failed.
pub fn decode(key: &SampleKey, name: &mut impl FnMut(u64) -> SampledFrame) -> Vec<SampledFrame> {
    let labelled = |function: &str, kind| {
        vec![SampledFrame {
            function: function.to_string(),
            file: String::new(),
            line: 0,
            kind,
        }]
    };
    match key.status {
        sample_status::NO_THREAD_STATE => {
            return labelled("(thread without Python state)", FrameKind::Native);
        }
        sample_status::NO_FRAME => return labelled("(no Python frame)", FrameKind::Native),
        sample_status::TOO_MANY_THREADS => {
            return labelled("(thread beyond the first 128)", FrameKind::Unknown);
        }
        sample_status::READ_FAILED => return labelled("(stack unreadable)", FrameKind::Unknown),
        _ => {}
    }
    let depth = (key.depth as usize).min(key.frames.len());
    let mut frames = Vec::with_capacity(depth + 1);
    if key.status == sample_status::TRUNCATED {
        frames.push(unknown("(outer frames not sampled)"));
    }
    for &entry in key.frames[..depth].iter().rev() {
        if entry == SAMPLE_NATIVE {
            // C code called back into Python here: shown between Python frames only.
            if !frames.is_empty() {
                frames.push(native_frame());
            }
            continue;
        }
        if entry & SAMPLE_ENTRY_BIT != 0 {
            if !frames.is_empty() {
                frames.push(native_frame());
            }
            frames.push(name(entry & !SAMPLE_ENTRY_BIT));
            continue;
        }
        frames.push(name(entry));
    }
    frames
}

/// The symbols the sampler reads, as a CPython binary's file gives them (read once per
/// binary, however many processes map it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinarySymbols {
    symbols: Symbols,
    /// The virtual address the mapping at file offset 0 starts at, before relocation.
    first_page: u64,
}

impl BinarySymbols {
    pub fn read(binary: &Binary) -> Result<Self, String> {
        let data = binary.data();
        let elf = binary
            .elf(&data)
            .map_err(|e| format!("{:#}", anyhow::Error::from(e)))?;
        let first = elf
            .segments()
            .iter()
            .min_by_key(|s| s.offset)
            .ok_or("its CPython binary has no loadable segment")?;
        let at = |name: &str| elf.symbol_address(name).ok();
        Ok(Self {
            symbols: Symbols {
                runtime: at("_PyRuntime"),
                interp_head: at("interp_head"),
                code_type: at("PyCode_Type"),
                frame_type: at("PyFrame_Type"),
                py_version: at("Py_Version"),
            },
            first_page: (first.vaddr - first.offset) & !0xfff,
        })
    }

    /// The symbols' addresses in process `found`, where it mapped the binary.
    pub fn in_process(&self, found: &Found) -> Result<Symbols, String> {
        let load = process::load_address(found.pid, found.binary.dev, found.binary.inode)
            .map_err(|e| format!("{:#}", anyhow::Error::from(e)))?
            .ok_or("its CPython binary's start is not mapped")?;
        let bias = load.wrapping_sub(self.first_page);
        let place = |address: Option<u64>| address.map(|a| a.wrapping_add(bias));
        let s = &self.symbols;
        Ok(Symbols {
            runtime: place(s.runtime),
            interp_head: place(s.interp_head),
            code_type: place(s.code_type),
            frame_type: place(s.frame_type),
            py_version: place(s.py_version),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ustat_common::MAX_SAMPLE_DEPTH;

    fn key(status: u32, frames: &[u64]) -> SampleKey {
        let mut key = SampleKey {
            pid: 1,
            status,
            start: 2,
            depth: frames.len() as u32,
            _pad: 0,
            frames: [0; MAX_SAMPLE_DEPTH],
        };
        key.frames[..frames.len()].copy_from_slice(frames);
        key
    }

    fn by_address(address: u64) -> SampledFrame {
        SampledFrame {
            function: format!("f{address:x}"),
            file: "w.py".into(),
            line: 1,
            kind: FrameKind::Managed,
        }
    }

    fn names(frames: &[SampledFrame]) -> Vec<&str> {
        frames.iter().map(|f| f.function.as_str()).collect()
    }

    #[test]
    fn frames_come_outermost_first_with_c_code_only_between_python_frames() {
        // Innermost first, as the kernel walks: a 3.12 stack with shim frames.
        let k = key(
            sample_status::OK,
            &[0x300, SAMPLE_NATIVE, 0x200, 0x100, SAMPLE_NATIVE],
        );
        let frames = decode(&k, &mut by_address);
        assert_eq!(names(&frames), ["f100", "f200", "(C code)", "f300"]);
        assert_eq!(frames[2].kind, FrameKind::Native);
        // 3.11: an entry frame has C code outside it, except the outermost.
        let k = key(sample_status::OK, &[0x300 | 1, 0x200, 0x100 | 1]);
        assert_eq!(
            names(&decode(&k, &mut by_address)),
            ["f100", "f200", "(C code)", "f300"]
        );
    }

    #[test]
    fn statuses_become_frames_that_say_what_happened() {
        let k = key(sample_status::TRUNCATED, &[0x200, 0x100]);
        let frames = decode(&k, &mut by_address);
        assert_eq!(
            names(&frames),
            ["(outer frames not sampled)", "f100", "f200"]
        );
        assert_eq!(frames[0].kind, FrameKind::Unknown);
        let frames = decode(&key(sample_status::NO_FRAME, &[]), &mut by_address);
        assert_eq!(names(&frames), ["(no Python frame)"]);
        let frames = decode(&key(sample_status::READ_FAILED, &[0x100]), &mut by_address);
        assert_eq!(frames[0].kind, FrameKind::Unknown);
    }
}

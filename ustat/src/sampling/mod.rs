//! The CPU sampler's userspace half: finding and checking a process's layout (CPython:
//! `python.rs`; HotSpot: `hotspot.rs` from its `vmstructs.rs`), naming what the kernel
//! recorded (`names.rs`, `hotspot::MethodNames`) by reading the process's memory
//! (`memory.rs`), and turning the kernel's counted stacks into each interval's `Sampled`.

pub mod hotspot;
pub mod memory;
pub mod names;
pub mod python;
pub mod vmstructs;

use std::collections::HashMap;

use ustat_common::{
    HotspotTarget, SAMPLE_ENTRY_BIT, SAMPLE_NATIVE, SampleKey, SampleTarget, sample_status,
};

use crate::{
    binary::Binary,
    discovery::Found,
    process,
    snapshot::{FrameKind, Sampled, SampledFrame, SampledStack},
};
use memory::Remote;
use names::{CodeNames, unknown};
use python::{NotReady, Prepared, Symbols};

/// Where one process's sampling stands (`P`: what the kernel walks it with).
#[derive(Debug, Clone, PartialEq, Eq)]
enum State<P> {
    /// Not walked yet (its interpreter is not set up); the reason, for the record.
    Pending(String),
    Ready(P),
    /// Never walked: why, in one sentence.
    Unreadable(String),
}

impl<P: Copy> State<P> {
    /// Takes what looking at the process found; what the kernel walks it with, when ready.
    fn settle(&mut self, prepared: Result<P, NotReady>) -> Option<P> {
        match prepared {
            Ok(prepared) => {
                *self = State::Ready(prepared);
                Some(prepared)
            }
            Err(NotReady::Later(why)) => {
                *self = State::Pending(why);
                None
            }
            Err(NotReady::Unreadable(why)) => {
                *self = State::Unreadable(why);
                None
            }
        }
    }

    fn unreadable(&self) -> Option<&str> {
        match self {
            State::Unreadable(why) => Some(why),
            _ => None,
        }
    }
}

/// One sampled CPython process.
#[derive(Debug)]
pub struct ProcessSampler {
    pid: u32,
    start: u64,
    version: Option<(u32, u32)>,
    symbols: Result<Symbols, String>,
    state: State<Prepared>,
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
        self.state.settle(prepared).map(|prepared| SampleTarget {
            start: self.start,
            interp: prepared.interp,
            ..prepared.layout.kernel
        })
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
        self.state.unreadable()
    }

    /// This interval's samples, from the kernel's counts since the process became a target
    /// (`stacks`: this process's keys; others' are skipped).
    pub fn interval(&mut self, hz: u32, stacks: &[(SampleKey, u64)]) -> Sampled {
        let memory = Remote::new(self.pid);
        let mut frame_of: HashMap<u64, SampledFrame> = HashMap::new();
        let (state, names) = (&self.state, &mut self.names);
        let (tallied, now) = tally(self.pid, self.start, &self.previous, stacks, |key| {
            match (state, key.status) {
                (_, sample_status::UNREADABLE | sample_status::NO_TASK_LAYOUT) => None,
                (State::Ready(prepared), _) => {
                    let mut name = |address: u64| {
                        frame_of
                            .entry(address)
                            .or_insert_with(|| names.frame(&memory, prepared, address))
                            .clone()
                    };
                    Some(decode(key, &mut name))
                }
                // Walked with a layout no longer trusted: counted only.
                _ => None,
            }
        });
        self.previous = now;
        tallied.into_sampled(hz, self.unreadable())
    }
}

/// One interval's samples of a process, before they become a `Sampled`.
struct Tallied {
    samples: u64,
    named: HashMap<Vec<SampledFrame>, u64>,
}

impl Tallied {
    fn into_sampled(self, hz: u32, unreadable: Option<&str>) -> Sampled {
        let mut stacks: Vec<SampledStack> = self
            .named
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
            samples: self.samples,
            stacks,
            unreadable: unreadable.map(str::to_string),
        }
    }
}

/// The samples process (`pid`, `start`) gained since `previous` (the kernel's counts only
/// grow), each stack named by `name` (None: counted, not named); and the counts now.
fn tally(
    pid: u32,
    start: u64,
    previous: &HashMap<SampleKey, u64>,
    stacks: &[(SampleKey, u64)],
    mut name: impl FnMut(&SampleKey) -> Option<Vec<SampledFrame>>,
) -> (Tallied, HashMap<SampleKey, u64>) {
    let mut tallied = Tallied {
        samples: 0,
        named: HashMap::new(),
    };
    let mut now = HashMap::new();
    for (key, count) in stacks
        .iter()
        .filter(|(k, _)| k.pid == pid && k.start == start)
    {
        let count = *count;
        now.insert(*key, count);
        let new = count.saturating_sub(previous.get(key).copied().unwrap_or(0));
        if new == 0 {
            continue;
        }
        tallied.samples += new;
        if let Some(frames) = name(key) {
            *tallied.named.entry(frames).or_default() += new;
        }
    }
    (tallied, now)
}

/// One sampled JVM.
#[derive(Debug)]
pub struct JvmSampler {
    pid: u32,
    start: u64,
    /// The process addresses of `vmstructs::SYMBOLS`, or why they are not known.
    symbols: Result<[u64; 12], String>,
    state: State<hotspot::Prepared>,
    names: hotspot::MethodNames,
    previous: HashMap<SampleKey, u64>,
}

impl JvmSampler {
    pub fn new(found: &Found, symbols: Result<[u64; 12], String>) -> Self {
        Self {
            pid: found.pid,
            start: found.start_time,
            symbols,
            state: State::Pending("not looked at yet".into()),
            names: hotspot::MethodNames::default(),
            previous: HashMap::new(),
        }
    }

    /// As `ProcessSampler::prepare`.
    pub fn prepare(&mut self) -> Option<HotspotTarget> {
        let State::Pending(_) = self.state else {
            return None;
        };
        let prepared = match &self.symbols {
            Ok(symbols) => hotspot::prepare(&Remote::new(self.pid), symbols),
            Err(why) => Err(NotReady::Unreadable(why.clone())),
        };
        self.state.settle(prepared).map(|prepared| HotspotTarget {
            start: self.start,
            ..prepared.target
        })
    }

    pub fn counting_target(&self) -> HotspotTarget {
        HotspotTarget {
            start: self.start,
            ..HotspotTarget::default()
        }
    }

    pub fn unreadable(&self) -> Option<&str> {
        self.state.unreadable()
    }

    /// This interval's samples; `generation` reads the JVM's count of unloaded classes now.
    /// Names are read as of the count before; if a class unloaded while they were read,
    /// they are forgotten and read again as of the count after. While classes keep
    /// unloading (a GC unloading many), the last pass reads nothing and names only what
    /// was named before: none read across an unload is kept.
    pub fn interval(
        &mut self,
        hz: u32,
        stacks: &[(SampleKey, u64)],
        generation: impl Fn() -> u32,
    ) -> Sampled {
        const PASSES: usize = 3;
        let memory = Remote::new(self.pid);
        let mut reading_as_of = Some(generation());
        let mut pass = 0;
        let (tallied, now) = loop {
            pass += 1;
            let (state, names) = (&self.state, &mut self.names);
            let result = tally(self.pid, self.start, &self.previous, stacks, |key| {
                match (state, key.status) {
                    (_, sample_status::UNREADABLE | sample_status::NO_TASK_LAYOUT) => None,
                    (State::Ready(prepared), _) => Some(decode_jvm(key, &mut |entry| {
                        names.frame(&memory, prepared, entry, key.generation, reading_as_of)
                    })),
                    _ => None,
                }
            });
            let Some(before) = reading_as_of else {
                break result;
            };
            let after = generation();
            if after == before {
                break result;
            }
            self.names.forget_generation(before);
            reading_as_of = (pass + 1 < PASSES).then_some(after);
        };
        self.previous = now;
        tallied.into_sampled(hz, self.unreadable())
    }
}

/// What a sample's status says, as its one frame, where it says the stack was not read.
fn status_frame(status: u32, runtime: &str) -> Option<SampledFrame> {
    let labelled = |function: String, kind| SampledFrame {
        function,
        file: String::new(),
        line: 0,
        kind,
    };
    Some(match status {
        sample_status::NO_THREAD_STATE => labelled(
            format!("(thread without {runtime} state)"),
            FrameKind::Native,
        ),
        sample_status::NO_FRAME => labelled(format!("(no {runtime} frame)"), FrameKind::Native),
        sample_status::NO_JAVA_FRAME => {
            labelled("(JVM code, no Java frame)".into(), FrameKind::Native)
        }
        sample_status::TOO_MANY_THREADS => {
            labelled("(thread beyond the first 128)".into(), FrameKind::Unknown)
        }
        sample_status::READ_FAILED => labelled("(stack unreadable)".into(), FrameKind::Unknown),
        _ => return None,
    })
}

/// A JVM key's frames, outermost first: `Method*`s named by `name`; the JVM's own or native
/// code the thread was in (innermost) shown as such. A walk that failed part way keeps the
/// frames it read, under a frame that says the outer ones are missing.
pub fn decode_jvm(
    key: &SampleKey,
    name: &mut impl FnMut(u64) -> SampledFrame,
) -> Vec<SampledFrame> {
    let depth = (key.depth as usize).min(key.frames.len());
    if depth == 0 || key.status == sample_status::NO_JAVA_FRAME {
        return status_frame(key.status, "Java").into_iter().collect();
    }
    let mut frames = Vec::with_capacity(depth + 1);
    if key.status != sample_status::OK {
        frames.push(unknown("(outer frames not sampled)"));
    }
    for &entry in key.frames[..depth].iter().rev() {
        if entry == SAMPLE_NATIVE {
            frames.push(SampledFrame {
                function: "(JVM or native code)".into(),
                file: String::new(),
                line: 0,
                kind: FrameKind::Native,
            });
            continue;
        }
        frames.push(name(entry));
    }
    frames
}

/// A key's frames, outermost first, named by `name`; what the status says becomes a frame:
/// a thread outside Python, a stack cut short, a read that failed.
pub fn decode(key: &SampleKey, name: &mut impl FnMut(u64) -> SampledFrame) -> Vec<SampledFrame> {
    if let Some(frame) = status_frame(key.status, "Python") {
        return vec![frame];
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

/// Symbols the sampler reads, as a runtime binary's file gives them (read once per binary,
/// however many processes map it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinarySymbols {
    addresses: HashMap<&'static str, u64>,
    /// The virtual address the mapping at file offset 0 starts at, before relocation.
    first_page: u64,
}

/// The CPython symbols the sampler reads.
pub const PYTHON_SYMBOLS: [&str; 5] = [
    "_PyRuntime",
    "interp_head",
    "PyCode_Type",
    "PyFrame_Type",
    "Py_Version",
];

impl BinarySymbols {
    /// Those of `names` that `binary` defines.
    pub fn read(binary: &Binary, names: &[&'static str]) -> Result<Self, String> {
        let data = binary.data();
        let elf = binary
            .elf(&data)
            .map_err(|e| format!("{:#}", anyhow::Error::from(e)))?;
        let first = elf
            .segments()
            .iter()
            .min_by_key(|s| s.offset)
            .ok_or("its binary has no loadable segment")?;
        let addresses = names
            .iter()
            .filter_map(|&name| Some((name, elf.symbol_address(name).ok()?)))
            .collect();
        Ok(Self {
            addresses,
            first_page: (first.vaddr - first.offset) & !0xfff,
        })
    }

    /// The symbols' addresses in process `found`, where it mapped the binary.
    pub fn in_process(&self, found: &Found) -> Result<Placed, String> {
        let load = process::load_address(found.pid, found.binary.dev, found.binary.inode)
            .map_err(|e| format!("{:#}", anyhow::Error::from(e)))?
            .ok_or("its binary's start is not mapped")?;
        let bias = load.wrapping_sub(self.first_page);
        Ok(Placed(
            self.addresses
                .iter()
                .map(|(&name, &address)| (name, address.wrapping_add(bias)))
                .collect(),
        ))
    }
}

/// Symbols' addresses in one process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placed(HashMap<&'static str, u64>);

impl Placed {
    pub fn get(&self, name: &str) -> Option<u64> {
        self.0.get(name).copied()
    }

    /// CPython's, as `python::prepare` takes them.
    pub fn python(&self) -> Symbols {
        Symbols {
            runtime: self.get("_PyRuntime"),
            interp_head: self.get("interp_head"),
            code_type: self.get("PyCode_Type"),
            frame_type: self.get("PyFrame_Type"),
            py_version: self.get("Py_Version"),
        }
    }

    /// HotSpot's tables, as `hotspot::prepare` takes them; every one is needed.
    pub fn hotspot(&self) -> Result<[u64; 12], String> {
        let mut out = [0; 12];
        for (slot, name) in out.iter_mut().zip(vmstructs::SYMBOLS) {
            *slot = self.get(name).ok_or_else(|| {
                format!("its libjvm exports no {name}, which describes its layout")
            })?;
        }
        Ok(out)
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
            generation: 0,
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

//! Loading the eBPF object: maps created through aya, programs relocated by aya-obj and
//! loaded here, because aya 0.14 cannot load a uprobe program for `uprobe_multi` links
//! (`expected_attach_type = BPF_TRACE_UPROBE_MULTI`), which attach every site of a binary in
//! one link and detach it with one RCU grace period instead of one per site (a minute for
//! libjvm.so's 531 sites). Kernels without `uprobe_multi` (before 6.6) get the programs
//! loaded plainly and attached through perf events. The exit hook is a raw tracepoint
//! program (and a kprobe on older kernels).

use std::{
    collections::{HashMap, HashSet},
    ffi::CString,
    io,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd},
};

use aya::maps::{Map, MapData};
use aya_obj::generated::{bpf_attach_type, bpf_cmd, bpf_prog_type};

use super::{LoadError, Program, ProgramKind, sys};

/// How programs attach on this kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One `uprobe_multi` link per program and binary (kernel 6.6+).
    Multi,
    /// One uprobe perf event and link per site.
    PerfEvent,
}

/// The environment variable that picks the attach mode instead of the kernel.
pub const MODE_VARIABLE: &str = "USTAT_ATTACH";

impl Mode {
    /// The mode `USTAT_ATTACH` asks for: None (unset or `auto`) lets the kernel decide.
    fn from_env() -> Result<Option<Self>, LoadError> {
        let Some(value) = std::env::var_os(MODE_VARIABLE) else {
            return Ok(None);
        };
        match value.to_str() {
            Some("" | "auto") => Ok(None),
            Some("uprobe-multi") => Ok(Some(Self::Multi)),
            Some("perf-event") => Ok(Some(Self::PerfEvent)),
            _ => Err(LoadError::Setting(format!(
                "{MODE_VARIABLE} must be auto, uprobe-multi or perf-event, not `{}`",
                crate::sanitize::text(&value.to_string_lossy())
            ))),
        }
    }
}

pub struct Loaded {
    object: aya_obj::Object,
    maps: HashMap<String, Map>,
    programs: HashMap<Program, OwnedFd>,
    mode: Option<Mode>,
    /// The mode was set by USTAT_ATTACH: no falling back.
    chosen: bool,
    /// The object's BTF, loaded into the kernel, for programs with `bpf_loop` callbacks (the
    /// verifier wants their functions' BTF); or why it could not be loaded.
    btf: Result<OwnedFd, String>,
}

fn kernel(what: &'static str, detail: impl std::fmt::Display) -> LoadError {
    LoadError::Kernel {
        what,
        detail: detail.to_string(),
    }
}

impl Loaded {
    /// Parses the object, creates its maps, and relocates its programs against them.
    pub fn new(bytes: &[u8]) -> Result<Self, LoadError> {
        let chosen = Mode::from_env()?;
        let mut object = aya_obj::Object::parse(bytes).map_err(|e| kernel("object", e))?;
        let btf = load_object_btf(&mut object);
        let definitions = object.maps.clone();
        let mut created = Vec::with_capacity(definitions.len());
        for (name, definition) in &definitions {
            let data = MapData::create(definition.clone(), name, None)
                .map_err(|e| kernel("maps", format!("{name}: {e}")))?;
            fill_global_data(data.fd().as_fd(), definition)
                .map_err(|e| kernel("maps", format!("{name}: {e}")))?;
            created.push((name.clone(), data));
        }
        let text_sections: HashSet<usize> = object
            .functions
            .keys()
            .map(|(section, _)| *section)
            .collect();
        object
            .relocate_maps(
                created.iter().map(|(name, data)| {
                    (
                        name.as_str(),
                        data.fd().as_fd().as_raw_fd(),
                        &definitions[name],
                    )
                }),
                &text_sections,
            )
            .map_err(|e| kernel("object", e))?;
        object
            .relocate_calls(&text_sections)
            .map_err(|e| kernel("object", e))?;
        let maps = created
            .into_iter()
            .map(|(name, data)| {
                Ok((
                    name,
                    Map::from_map_data(data).map_err(|e| kernel("maps", e))?,
                ))
            })
            .collect::<Result<_, LoadError>>()?;
        Ok(Self {
            object,
            maps,
            programs: HashMap::new(),
            mode: chosen,
            chosen: chosen.is_some(),
            btf,
        })
    }

    pub fn map(&self, name: &str) -> Option<&Map> {
        self.maps.get(name)
    }

    pub fn map_mut(&mut self, name: &str) -> Option<&mut Map> {
        self.maps.get_mut(name)
    }

    pub fn take_map(&mut self, name: &str) -> Option<Map> {
        self.maps.remove(name)
    }

    /// How programs attach; known once one is loaded.
    pub fn mode(&self) -> Option<Mode> {
        self.mode
    }

    /// The program, loaded into the kernel on first use.
    pub fn program(&mut self, program: Program) -> Result<BorrowedFd<'_>, LoadError> {
        if !self.programs.contains_key(&program) {
            let fd = self.load(program)?;
            self.programs.insert(program, fd);
        }
        Ok(self.programs[&program].as_fd())
    }

    fn load(&mut self, program: Program) -> Result<OwnedFd, LoadError> {
        let name = program.name();
        let found = self
            .object
            .programs
            .get(name)
            .ok_or_else(|| kernel("program", format!("{name} is missing from the object")))?;
        let function = &self.object.functions[&found.function_key()];
        let license = found.license.clone();
        let instructions = &function.instructions;
        let btf = if program.uses_callbacks() {
            let fd = self.btf.as_ref().map_err(|e| {
                kernel(
                    "program",
                    format!("{name} needs the object's BTF, which the kernel refused: {e}"),
                )
            })?;
            Some(FuncBtf {
                fd: fd.as_fd(),
                function,
            })
        } else {
            None
        };
        match program.kind() {
            ProgramKind::Uprobe => {}
            ProgramKind::RawTracepoint => {
                let kind = bpf_prog_type::BPF_PROG_TYPE_RAW_TRACEPOINT;
                return prog_load(
                    kind,
                    name,
                    instructions,
                    &license,
                    Attach::NONE,
                    None,
                    false,
                )
                .map_err(|e| refused(kind, name, instructions, &license, Attach::NONE, None, e));
            }
            ProgramKind::PerfEvent => {
                let kind = bpf_prog_type::BPF_PROG_TYPE_PERF_EVENT;
                return prog_load(kind, name, instructions, &license, Attach::NONE, btf, false)
                    .map_err(|e| {
                        refused(kind, name, instructions, &license, Attach::NONE, btf, e)
                    });
            }
            ProgramKind::FEntry(function) => {
                let kind = bpf_prog_type::BPF_PROG_TYPE_TRACING;
                let target = Attach {
                    kind: Some(bpf_attach_type::BPF_TRACE_FENTRY),
                    btf_id: kernel_function_id(function)?,
                };
                return prog_load(kind, name, instructions, &license, target, None, false)
                    .map_err(|e| refused(kind, name, instructions, &license, target, None, e));
            }
        }
        let kind = bpf_prog_type::BPF_PROG_TYPE_KPROBE;
        if self.mode != Some(Mode::PerfEvent) {
            match prog_load(
                kind,
                name,
                instructions,
                &license,
                Attach::to(bpf_attach_type::BPF_TRACE_UPROBE_MULTI),
                btf,
                false,
            ) {
                Ok(fd) => {
                    self.mode = Some(Mode::Multi);
                    return Ok(fd);
                }
                // A kernel without uprobe_multi does not know the attach type.
                Err(e)
                    if self.mode.is_none()
                        && !self.chosen
                        && e.raw_os_error() == Some(libc::EINVAL) => {}
                Err(e) => {
                    return Err(refused(
                        kind,
                        name,
                        instructions,
                        &license,
                        Attach::to(bpf_attach_type::BPF_TRACE_UPROBE_MULTI),
                        btf,
                        e,
                    ));
                }
            }
        }
        match prog_load(kind, name, instructions, &license, Attach::NONE, btf, false) {
            Ok(fd) => {
                self.mode = Some(Mode::PerfEvent);
                Ok(fd)
            }
            Err(e) => Err(refused(
                kind,
                name,
                instructions,
                &license,
                Attach::NONE,
                btf,
                e,
            )),
        }
    }
}

/// Gives a global-data map (`.rodata`, `.data`) its initial contents, and makes `.rodata`
/// read-only so the verifier can treat its values as constants; as aya's loader does.
fn fill_global_data(map: BorrowedFd<'_>, definition: &aya_obj::Map) -> io::Result<()> {
    let data = definition.data();
    if !data.is_empty() {
        let key = 0u32;
        let attr = MapElemAttr {
            map_fd: map.as_raw_fd() as u32,
            _pad: 0,
            key: &key as *const u32 as u64,
            value: data.as_ptr() as u64,
            flags: 0,
        };
        sys::bpf(bpf_cmd::BPF_MAP_UPDATE_ELEM, &attr)?;
    }
    if definition.section_kind() == aya_obj::EbpfSectionKind::Rodata {
        let attr = MapElemAttr {
            map_fd: map.as_raw_fd() as u32,
            _pad: 0,
            key: 0,
            value: 0,
            flags: 0,
        };
        sys::bpf(bpf_cmd::BPF_MAP_FREEZE, &attr)?;
    }
    Ok(())
}

/// The prefix of `union bpf_attr` that map element commands (and BPF_MAP_FREEZE) read.
#[repr(C)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// The error for a program the kernel refused, with the end of the verifier's log.
fn refused(
    kind: bpf_prog_type,
    name: &str,
    instructions: &[aya_obj::generated::bpf_insn],
    license: &CString,
    attach: Attach,
    btf: Option<FuncBtf<'_>>,
    error: io::Error,
) -> LoadError {
    let log = prog_load(kind, name, instructions, license, attach, btf, true)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(8).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    kernel("program", format!("{name}: {error}\n{}", tail.join("\n")))
}

/// The object's BTF and a program's function info, for programs with callbacks.
#[derive(Clone, Copy)]
struct FuncBtf<'a> {
    fd: BorrowedFd<'a>,
    function: &'a aya_obj::Function,
}

/// Fixes up the object's BTF for this kernel (as aya's loader does) and loads it.
fn load_object_btf(object: &mut aya_obj::Object) -> Result<OwnedFd, String> {
    let features = aya::features()
        .btf()
        .ok_or("this kernel has no BTF support")?;
    let btf = object
        .fixup_and_sanitize_btf(features)
        .map_err(|e| e.to_string())?
        .ok_or("the object has no BTF")?;
    let bytes = btf.to_bytes();
    let attr = BtfLoadAttr {
        btf: bytes.as_ptr() as u64,
        btf_log_buf: 0,
        btf_size: bytes.len() as u32,
        btf_log_size: 0,
        btf_log_level: 0,
        _pad: 0,
    };
    sys::bpf_fd(bpf_cmd::BPF_BTF_LOAD, &attr).map_err(|e| e.to_string())
}

/// `union bpf_attr` for BPF_BTF_LOAD.
#[repr(C)]
struct BtfLoadAttr {
    btf: u64,
    btf_log_buf: u64,
    btf_size: u32,
    btf_log_size: u32,
    btf_log_level: u32,
    _pad: u32,
}

/// What a program is loaded for: its expected attach type, and for a tracing program the
/// BTF id of the kernel function.
#[derive(Debug, Clone, Copy)]
struct Attach {
    kind: Option<bpf_attach_type>,
    btf_id: u32,
}

impl Attach {
    const NONE: Self = Self {
        kind: None,
        btf_id: 0,
    };

    fn to(kind: bpf_attach_type) -> Self {
        Self {
            kind: Some(kind),
            btf_id: 0,
        }
    }
}

/// The BTF id of the kernel function `name`, from the kernel's own BTF.
fn kernel_function_id(name: &str) -> Result<u32, LoadError> {
    let btf = aya_obj::btf::Btf::from_sys_fs().map_err(|e| kernel("kernel BTF", e))?;
    btf.id_by_type_name_kind(name, aya_obj::btf::BtfKind::Func)
        .map_err(|e| kernel("kernel BTF", format!("{name}: {e}")))
}

/// `union bpf_attr` for BPF_PROG_LOAD, up to `attach_btf_obj_fd`.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    /// 0: `attach_btf_id` is in the kernel's own BTF.
    attach_btf_obj_fd: u32,
    _pad: u32,
}
const _: () = assert!(std::mem::offset_of!(ProgLoadAttr, attach_btf_id) == 108);

/// Loads a program; with `log`, a failure's error text is the verifier's log.
fn prog_load(
    kind: bpf_prog_type,
    name: &str,
    instructions: &[aya_obj::generated::bpf_insn],
    license: &CString,
    attach: Attach,
    btf: Option<FuncBtf<'_>>,
    log: bool,
) -> io::Result<OwnedFd> {
    let mut log_buf = if log { vec![0u8; 16 << 20] } else { Vec::new() };
    let mut prog_name = [0u8; 16];
    let short = &name.as_bytes()[..name.len().min(15)];
    prog_name[..short.len()].copy_from_slice(short);
    let attr = ProgLoadAttr {
        prog_type: kind as u32,
        insn_cnt: instructions.len() as u32,
        insns: instructions.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: u32::from(log),
        log_size: log_buf.len() as u32,
        // The kernel refuses a buffer without a log level: an empty Vec's pointer is not null.
        log_buf: if log { log_buf.as_mut_ptr() as u64 } else { 0 },
        kern_version: 0,
        prog_flags: 0,
        prog_name,
        prog_ifindex: 0,
        expected_attach_type: attach.kind.map_or(0, |a| a as u32),
        prog_btf_fd: btf.map_or(0, |b| b.fd.as_raw_fd() as u32),
        func_info_rec_size: btf.map_or(0, |b| b.function.func_info_rec_size as u32),
        func_info: btf.map_or(0, |b| b.function.func_info.func_info.as_ptr() as u64),
        func_info_cnt: btf.map_or(0, |b| b.function.func_info.func_info.len() as u32),
        line_info_rec_size: 0,
        line_info: 0,
        line_info_cnt: 0,
        attach_btf_id: attach.btf_id,
        attach_btf_obj_fd: 0,
        _pad: 0,
    };
    sys::bpf_fd(bpf_cmd::BPF_PROG_LOAD, &attr).map_err(|error| {
        if !log {
            return error;
        }
        let end = log_buf
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(log_buf.len());
        io::Error::new(
            error.kind(),
            String::from_utf8_lossy(&log_buf[..end]).into_owned(),
        )
    })
}

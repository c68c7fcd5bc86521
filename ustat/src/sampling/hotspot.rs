//! The CPU sampler's userspace half for HotSpot JVMs: the layout the kernel walks frames
//! with, taken from the JVM's own `gHotSpotVMStructs` and checked (`prepare`), and the
//! names of sampled methods (`MethodNames`), read from the JVM's memory once per `Method*`.
//!
//! A `Method*` is memory the JVM frees when its class unloads, and may give to another
//! class's method. So each sample carries the JVM's count of unloaded classes when it was
//! taken (`SampleKey::generation`), and a name is used only for samples of the generation
//! it was read in: a sample taken before an unload that is named after it is "unknown",
//! never another class's method.

use std::collections::HashMap;

use ustat_common::{CodeHeapRange, HotspotTarget, MAX_CODE_HEAPS, hotspot_frame};

use super::{
    memory::Remote,
    names::unknown,
    python::NotReady,
    vmstructs::{self, VmStructs},
};
use crate::{
    sanitize,
    snapshot::{FrameKind, SampledFrame},
};

/// Bytes of a code blob the kernel reads at once (`BLOB_READ` in the walker): every offset
/// it uses must lie within.
const KERNEL_BLOB_READ: u64 = 128;

/// Longest symbol (class, method, signature or file name) read.
const MAX_SYMBOL: usize = 1024;

/// Most methods remembered per process; the cache starts over beyond.
const MAX_CACHED: usize = 65_536;

/// Where the fields the names are read from are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NameOffsets {
    method_const_method: u64,
    const_method_constants: u64,
    const_method_name_index: u64,
    const_method_signature_index: u64,
    pool_holder: u64,
    pool_length: u64,
    pool_source_file_index: u64,
    pool_size: u64,
    klass_name: u64,
    symbol_length: u64,
    symbol_body: u64,
}

/// Where the JVM's code cache and interpreter are found at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Roots {
    code_heaps: u64,
    growable_length: u64,
    growable_data: u64,
    heap_memory: u64,
    heap_segmap: u64,
    heap_log2_segment: u64,
    space_low: u64,
    space_high: u64,
    interpreter_code: u64,
    stub_buffer: u64,
    stub_buffer_limit: u64,
    call_stub_return: u64,
}

/// A JVM's layout, from its tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The kernel's offsets (no addresses yet).
    kernel: HotspotTarget,
    names: NameOffsets,
    roots: Roots,
}

/// A JVM the kernel can walk: its target, addresses filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepared {
    pub target: HotspotTarget,
    names: NameOffsets,
}

/// Finds every offset the walker and the names need; a missing one, or one the kernel
/// could not read within its bounds, makes the JVM unreadable (said in one line).
pub fn layout(vm: &VmStructs) -> Result<Layout, String> {
    let offset = |t: &str, f: &str| vm.offset(t, f);
    let small = |value: u64, what: &str| {
        u32::try_from(value).map_err(|_| format!("its {what} offset {value} is implausible"))
    };
    let (blob_code, code_is_offset) =
        vm.offset_of_any("CodeBlob", &["_code_begin", "_code_offset"])?;
    let (nmethod_method, _) = vm
        .offset_of_any("nmethod", &["_method"])
        .or_else(|_| vm.offset_of_any("CompiledMethod", &["_method"]))?;
    let frame_complete = offset("CodeBlob", "_frame_complete_offset")?;
    let frame_complete_width = match vm.field_type("CodeBlob", "_frame_complete_offset") {
        Some("int16_t" | "short") => 2,
        _ => 4,
    };
    let osthread = offset("JavaThread", "_osthread").or_else(|_| offset("Thread", "_osthread"))?;
    let anchor = offset("JavaThread", "_anchor")?;
    let wrapper = offset("JavaCallWrapper", "_anchor")?;
    let (last_sp, last_pc, last_fp) = (
        offset("JavaFrameAnchor", "_last_Java_sp")?,
        offset("JavaFrameAnchor", "_last_Java_pc")?,
        offset("JavaFrameAnchor", "_last_Java_fp")?,
    );
    let anchored = |base: u64, field: u64| small(base + field, "JavaFrameAnchor");
    let kernel = HotspotTarget {
        heap_block_size: small(vm.size("HeapBlock")?, "HeapBlock")?,
        blob_name: small(offset("CodeBlob", "_name")?, "CodeBlob::_name")?,
        blob_frame_size: small(offset("CodeBlob", "_frame_size")?, "CodeBlob::_frame_size")?,
        blob_frame_complete: small(frame_complete, "CodeBlob::_frame_complete_offset")?,
        blob_frame_complete_width: frame_complete_width,
        blob_code: small(blob_code, "CodeBlob code")?,
        blob_code_is_offset: u32::from(code_is_offset == 1),
        nmethod_method: small(nmethod_method, "nmethod::_method")?,
        list_length: small(offset("ThreadsList", "_length")?, "ThreadsList::_length")?,
        list_threads: small(offset("ThreadsList", "_threads")?, "ThreadsList::_threads")?,
        thread_osthread: small(osthread, "Thread::_osthread")?,
        osthread_pthread_id: small(offset("OSThread", "_pthread_id")?, "OSThread::_pthread_id")?,
        anchor_sp: anchored(anchor, last_sp)?,
        anchor_pc: anchored(anchor, last_pc)?,
        anchor_fp: anchored(anchor, last_fp)?,
        wrapper_sp: anchored(wrapper, last_sp)?,
        wrapper_pc: anchored(wrapper, last_pc)?,
        wrapper_fp: anchored(wrapper, last_fp)?,
        ..HotspotTarget::default()
    };
    for (value, width, what) in [
        (kernel.blob_name, 8, "CodeBlob::_name"),
        (kernel.blob_frame_size, 4, "CodeBlob::_frame_size"),
        (
            kernel.blob_frame_complete,
            frame_complete_width,
            "_frame_complete_offset",
        ),
        (kernel.blob_code, 8, "CodeBlob's code"),
        (kernel.nmethod_method, 8, "nmethod::_method"),
    ] {
        if u64::from(value) + u64::from(width) > KERNEL_BLOB_READ {
            return Err(format!(
                "its {what} lies beyond the code blob header ustat reads"
            ));
        }
    }
    let names = NameOffsets {
        method_const_method: offset("Method", "_constMethod")?,
        const_method_constants: offset("ConstMethod", "_constants")?,
        const_method_name_index: offset("ConstMethod", "_name_index")?,
        const_method_signature_index: offset("ConstMethod", "_signature_index")?,
        pool_holder: offset("ConstantPool", "_pool_holder")?,
        pool_length: offset("ConstantPool", "_length")?,
        pool_source_file_index: offset("ConstantPool", "_source_file_name_index")?,
        pool_size: vm.size("ConstantPool")?,
        klass_name: offset("Klass", "_name")?,
        symbol_length: offset("Symbol", "_length")?,
        symbol_body: offset("Symbol", "_body")?,
    };
    let roots = Roots {
        code_heaps: vm.address("CodeCache", "_heaps")?,
        growable_length: offset("GrowableArrayBase", "_len")?,
        growable_data: offset("GrowableArray<int>", "_data")?,
        heap_memory: offset("CodeHeap", "_memory")?,
        heap_segmap: offset("CodeHeap", "_segmap")?,
        heap_log2_segment: offset("CodeHeap", "_log2_segment_size")?,
        space_low: offset("VirtualSpace", "_low_boundary")?,
        space_high: offset("VirtualSpace", "_high_boundary")?,
        interpreter_code: vm.address("AbstractInterpreter", "_code")?,
        stub_buffer: offset("StubQueue", "_stub_buffer")?,
        stub_buffer_limit: offset("StubQueue", "_buffer_limit")?,
        call_stub_return: vm.address("StubRoutines", "_call_stub_return_address")?,
    };
    let mut kernel = kernel;
    kernel.thread_list = vm.address("ThreadsSMRSupport", "_java_thread_list")?;
    Ok(Layout {
        kernel,
        names,
        roots,
    })
}

/// Reads the tables of the JVM in `memory` (`symbols`: the process addresses of
/// `vmstructs::SYMBOLS`), then where its code is. `Later` while the JVM is still starting.
pub fn prepare(memory: &Remote, symbols: &[u64; 12]) -> Result<Prepared, NotReady> {
    let vm = vmstructs::read(memory, symbols).map_err(NotReady::Unreadable)?;
    let layout = layout(&vm).map_err(NotReady::Unreadable)?;
    place(memory, &layout)
}

/// The addresses of the code heaps and the interpreter, checked.
fn place(memory: &Remote, layout: &Layout) -> Result<Prepared, NotReady> {
    let r = &layout.roots;
    let unreadable = |what: &str| NotReady::Unreadable(format!("its {what} cannot be read"));
    let u64_at = |address: u64, what: &str| memory.u64(address).map_err(|_| unreadable(what));
    let u32_at = |address: u64, what: &str| memory.u32(address).map_err(|_| unreadable(what));
    let heaps = u64_at(r.code_heaps, "code cache")?;
    let stubs = u64_at(r.interpreter_code, "interpreter")?;
    if heaps == 0 || stubs == 0 {
        return Err(NotReady::Later("the JVM is still starting".into()));
    }
    let count = u32_at(heaps + r.growable_length, "code heaps")? as usize;
    let data = u64_at(heaps + r.growable_data, "code heaps")?;
    if count == 0 || count > MAX_CODE_HEAPS {
        return Err(NotReady::Unreadable(format!(
            "its code cache has {count} heaps, not 1 to {MAX_CODE_HEAPS}"
        )));
    }
    let mut target = layout.kernel;
    for i in 0..count {
        let heap = u64_at(data + 8 * i as u64, "code heap")?;
        let low = u64_at(heap + r.heap_memory + r.space_low, "code heap")?;
        let high = u64_at(heap + r.heap_memory + r.space_high, "code heap")?;
        let segmap = u64_at(heap + r.heap_segmap + r.space_low, "code heap")?;
        let log2_segment = u32_at(heap + r.heap_log2_segment, "code heap")?;
        if low == 0 || high <= low || segmap == 0 || !(4..=16).contains(&log2_segment) {
            return Err(NotReady::Unreadable(format!(
                "its code heap {i} does not look like one ({low:#x}-{high:#x}, segments of \
                 2^{log2_segment} bytes)"
            )));
        }
        target.heaps[i] = CodeHeapRange {
            low,
            high,
            segmap,
            log2_segment,
            _pad: 0,
        };
    }
    target.heap_count = count as u32;
    let buffer = u64_at(stubs + r.stub_buffer, "interpreter")?;
    let limit = u32_at(stubs + r.stub_buffer_limit, "interpreter")?;
    if buffer == 0 || limit == 0 {
        return Err(NotReady::Later(
            "its interpreter is not generated yet".into(),
        ));
    }
    target.interpreter_low = buffer;
    target.interpreter_high = buffer + u64::from(limit);
    target.call_stub_return = u64_at(r.call_stub_return, "call stub")?;
    if target.call_stub_return == 0 {
        return Err(NotReady::Later("its call stub is not generated yet".into()));
    }
    Ok(Prepared {
        target,
        names: layout.names,
    })
}

/// Names of sampled methods, each tagged with the generation (classes unloaded) it was
/// read in.
#[derive(Debug, Default)]
pub struct MethodNames {
    cache: HashMap<u64, (u32, SampledFrame)>,
}

impl MethodNames {
    /// The frame of a sampled entry (a tagged `Method*`) of a sample of `generation`. Names
    /// not remembered for that generation are read when the JVM is at it now (`now`; None:
    /// nothing may be read) and remembered as of it.
    pub fn frame(
        &mut self,
        memory: &Remote,
        process: &Prepared,
        entry: u64,
        generation: u32,
        now: Option<u32>,
    ) -> SampledFrame {
        let method = entry & !hotspot_frame::TAG_MASK;
        if let Some((read_in, frame)) = self.cache.get(&method)
            && *read_in == generation
        {
            return frame.clone();
        }
        if now != Some(generation) {
            return unknown("(method of a class unloaded since)");
        }
        let Some(mut frame) = read_method(memory, &process.names, method) else {
            self.cache.remove(&method);
            return unknown("(method unreadable)");
        };
        frame.function = sanitize::text(&frame.function);
        frame.file = sanitize::text(&frame.file);
        if self.cache.len() >= MAX_CACHED {
            self.cache.clear();
        }
        self.cache.insert(method, (generation, frame.clone()));
        frame
    }

    /// Forgets the names read as of `generation` (read while a class unloaded).
    pub fn forget_generation(&mut self, generation: u32) {
        self.cache.retain(|_, (read_in, _)| *read_in != generation);
    }
}

/// `pkg.Class.method(int, String)` and its source file, from the method's constant pool.
fn read_method(memory: &Remote, n: &NameOffsets, method: u64) -> Option<SampledFrame> {
    let const_method = memory.u64(method + n.method_const_method).ok()?;
    let pool = memory.u64(const_method + n.const_method_constants).ok()?;
    let index = |at: u64| memory.u16(at).ok();
    // `ConstantPool::_length` is an int: its bits as a u32 give the same value.
    let length = memory.u32(pool + n.pool_length).ok()? as i32;
    let symbol_at = |i: u16| -> Option<String> {
        if i == 0 || i32::from(i) >= length {
            return None;
        }
        let symbol = memory.u64(pool + n.pool_size + 8 * u64::from(i)).ok()?;
        read_symbol(memory, n, symbol)
    };
    let name = symbol_at(index(const_method + n.const_method_name_index)?)?;
    let signature = symbol_at(index(const_method + n.const_method_signature_index)?)?;
    let holder = memory.u64(pool + n.pool_holder).ok()?;
    let class = read_symbol(memory, n, memory.u64(holder + n.klass_name).ok()?)?;
    if name.is_empty() || class.is_empty() || !signature.starts_with('(') {
        return None;
    }
    let file = index(pool + n.pool_source_file_index)
        .and_then(symbol_at)
        .unwrap_or_default();
    Some(SampledFrame {
        function: ustat_runtimes::jvm::method_label(&class, &name, &signature),
        file,
        line: 0,
        kind: FrameKind::Managed,
    })
}

/// A `Symbol`'s text (modified UTF-8, read as UTF-8, bounded).
fn read_symbol(memory: &Remote, n: &NameOffsets, symbol: u64) -> Option<String> {
    if symbol == 0 {
        return None;
    }
    let length = usize::from(memory.u16(symbol + n.symbol_length).ok()?).min(MAX_SYMBOL);
    let body = memory.bytes(symbol + n.symbol_body, length).ok()?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::vmstructs::Field;

    /// JDK 17's tables, as far as the sampler reads them (from a running OpenJDK 17.0).
    fn jdk17() -> VmStructs {
        let mut vm = VmStructs::default();
        let mut field = |t: &str, f: &str, value: Field, c_type: &str| {
            vm.fields.insert((t.into(), f.into()), value);
            vm.field_types
                .insert((t.into(), f.into()), c_type.to_string());
        };
        use Field::{Offset, Static};
        field("CodeBlob", "_name", Offset(96), "const char*");
        field("CodeBlob", "_frame_size", Offset(28), "int");
        field("CodeBlob", "_frame_complete_offset", Offset(20), "int");
        field("CodeBlob", "_code_begin", Offset(32), "address");
        field("CompiledMethod", "_method", Offset(112), "Method*");
        field("ThreadsList", "_length", Offset(4), "const uint");
        field(
            "ThreadsList",
            "_threads",
            Offset(16),
            "JavaThread *const *const",
        );
        field("JavaThread", "_osthread", Offset(560), "OSThread*");
        field("JavaThread", "_anchor", Offset(656), "JavaFrameAnchor");
        field("OSThread", "_pthread_id", Offset(24), "pthread_t");
        field("JavaFrameAnchor", "_last_Java_sp", Offset(0), "intptr_t*");
        field("JavaFrameAnchor", "_last_Java_pc", Offset(8), "address");
        field("JavaFrameAnchor", "_last_Java_fp", Offset(16), "intptr_t*");
        field("Method", "_constMethod", Offset(8), "ConstMethod*");
        field("ConstMethod", "_constants", Offset(8), "ConstantPool*");
        field("ConstMethod", "_name_index", Offset(34), "u2");
        field("ConstMethod", "_signature_index", Offset(36), "u2");
        field("ConstantPool", "_pool_holder", Offset(24), "InstanceKlass*");
        field("ConstantPool", "_length", Offset(60), "int");
        field("ConstantPool", "_source_file_name_index", Offset(54), "u2");
        field("Klass", "_name", Offset(24), "Symbol*");
        field("Symbol", "_length", Offset(4), "u2");
        field("Symbol", "_body", Offset(6), "u1");
        field(
            "CodeCache",
            "_heaps",
            Static(0x7f00_0000),
            "GrowableArray<CodeHeap*>*",
        );
        field("GrowableArrayBase", "_len", Offset(0), "int");
        field("GrowableArray<int>", "_data", Offset(8), "int*");
        field("CodeHeap", "_memory", Offset(8), "VirtualSpace");
        field("CodeHeap", "_segmap", Offset(120), "VirtualSpace");
        field("CodeHeap", "_log2_segment_size", Offset(256), "int");
        field("VirtualSpace", "_low_boundary", Offset(0), "char*");
        field("VirtualSpace", "_high_boundary", Offset(8), "char*");
        field(
            "AbstractInterpreter",
            "_code",
            Static(0x7f00_1000),
            "StubQueue*",
        );
        field("StubQueue", "_stub_buffer", Offset(8), "address");
        field("StubQueue", "_buffer_limit", Offset(20), "int");
        field(
            "ThreadsSMRSupport",
            "_java_thread_list",
            Static(0x7f00_2000),
            "ThreadsList*",
        );
        field("JavaCallWrapper", "_anchor", Offset(32), "JavaFrameAnchor");
        field(
            "StubRoutines",
            "_call_stub_return_address",
            Static(0x7f00_3000),
            "address",
        );
        vm.sizes.insert("HeapBlock".into(), 16);
        vm.sizes.insert("ConstantPool".into(), 72);
        vm
    }

    #[test]
    fn jdk17_offsets_reach_the_kernel_as_the_tables_give_them() {
        let layout = layout(&jdk17()).unwrap();
        let k = layout.kernel;
        assert_eq!((k.blob_name, k.blob_frame_size, k.blob_code), (96, 28, 32));
        assert_eq!(
            (k.blob_frame_complete, k.blob_frame_complete_width),
            (20, 4)
        );
        assert_eq!((k.blob_code_is_offset, k.nmethod_method), (0, 112));
        assert_eq!((k.anchor_sp, k.anchor_pc, k.anchor_fp), (656, 664, 672));
        assert_eq!((k.wrapper_sp, k.wrapper_pc, k.wrapper_fp), (32, 40, 48));
        assert_eq!((k.thread_osthread, k.osthread_pthread_id), (560, 24));
        assert_eq!((k.heap_block_size, k.thread_list), (16, 0x7f00_2000));
    }

    /// JDK 23+ keeps the code's start as an offset and `_frame_complete_offset` in 16 bits.
    #[test]
    fn jdk25_code_offsets_and_narrow_frame_complete() {
        let mut vm = jdk17();
        vm.fields
            .remove(&("CodeBlob".to_string(), "_code_begin".to_string()));
        vm.fields.insert(
            ("CodeBlob".into(), "_code_offset".into()),
            Field::Offset(36),
        );
        vm.field_types.insert(
            ("CodeBlob".into(), "_frame_complete_offset".into()),
            "int16_t".into(),
        );
        let k = layout(&vm).unwrap().kernel;
        assert_eq!((k.blob_code, k.blob_code_is_offset), (36, 1));
        assert_eq!(k.blob_frame_complete_width, 2);
    }

    #[test]
    fn a_missing_field_or_one_beyond_the_kernel_s_read_is_one_clear_reason() {
        let mut vm = jdk17();
        vm.fields
            .remove(&("Method".to_string(), "_constMethod".to_string()));
        assert_eq!(
            layout(&vm).unwrap_err(),
            "its gHotSpotVMStructs has no Method::_constMethod"
        );
        let mut vm = jdk17();
        vm.fields.insert(
            ("CompiledMethod".into(), "_method".into()),
            Field::Offset(400),
        );
        assert!(layout(&vm).unwrap_err().contains("nmethod::_method"));
    }
}

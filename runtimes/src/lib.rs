//! What ustat knows about each language runtime: how to recognise it in a process, which
//! probes (USDT, or uprobes on its own functions) to attach, and what each event means.
//!
//! A runtime module is data plus small functions; the engine in `ustat` does the attaching,
//! reading and diffing. A new runtime is one new file here and a line in `ALL`.

pub mod jvm;
pub mod node;
pub mod python;
mod rule;

use std::path::Path;

pub use rule::{Action, Arg, Feature, Key, Point, Rule};

/// A runtime ustat can trace.
#[derive(Debug)]
pub struct Runtime {
    /// Short name, as in the `runtime` CSV column and the `--runtime` filter: `jvm`.
    pub name: &'static str,
    /// The binaries that carry it, for messages: `libjvm.so`.
    pub binary_hint: &'static str,
    /// How well a mapped file (by file name) serves as the runtime's binary: `None` when it
    /// is not one, lower is better (libpython over a python executable that links it).
    pub binary_rank: fn(&str) -> Option<u8>,
    /// What to attach, feature by feature.
    pub features: &'static [Feature],
    /// The kind of a GC, from its subkey: one of `gen0`, `gen1`, `gen2`, `minor`, `major`,
    /// `other` (the CSV has a column for each of the first five).
    pub gc_kind: fn(u64) -> &'static str,
    /// Every kind `gc_kind` can return (the CSV leaves the other kinds' columns empty).
    pub gc_kinds: &'static [&'static str],
    /// How to show a `keyed` key, per category, from its names (empty where a slot has
    /// none) and its values: `java.lang.String.hashCode`.
    pub key_label: fn(category: u32, names: [&str; 3], values: [u64; 3]) -> String,
    /// The runtime's version, from its binary's path (as the process sees it) or small files
    /// next to it, read only through the given reader (which refuses links, FIFOs, devices and
    /// large files another user may have put there).
    pub version: fn(&Path, ReadText<'_>) -> Option<String>,
    /// What the process's settings leave out, each saying what to do about it.
    pub missing: fn(&ProcessFacts) -> Vec<Missing>,
    /// Method entry and return probes for the flow view and per-method timing, if any.
    pub flow: Option<Flow>,
}

/// Reads a small text file by its path as the traced process sees it; `None` when it cannot
/// or may not.
pub type ReadText<'a> = &'a dyn Fn(&Path) -> Option<String>;

/// A runtime's method entry and return probes.
#[derive(Debug, Clone, Copy)]
pub struct Flow {
    pub entry: Point,
    pub exit: Point,
    /// What identifies a method in both probes; a slot the calls feature keys on but this
    /// leaves out (`Key::None`) is merged (CPython's return probe carries the return line).
    pub keys: [Key; 3],
    /// How a name prefix the user types for slot 0 looks in the runtime's own strings
    /// (`java.util` is `java/util` in HotSpot).
    pub class_prefix: fn(&str) -> String,
}

/// What ustat learned about a process, for `Runtime::missing`.
#[derive(Debug, Default, Clone)]
pub struct ProcessFacts {
    /// Command-line arguments (argv).
    pub args: Vec<String>,
    /// Environment variables that runtimes read options from (`JAVA_TOOL_OPTIONS`, ...).
    pub env: Vec<(String, String)>,
    /// The runtime's version, where known (`17.0.15`).
    pub version: Option<String>,
    /// The features that resolved in the process's binary.
    pub resolved: Vec<&'static str>,
}

impl ProcessFacts {
    pub fn env(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Something a process's runtime or settings keep ustat from seeing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The categories that stay empty; if their events show up after all, the line goes.
    pub categories: Vec<u32>,
    /// One line that says what is missing and what to do about it.
    pub text: String,
}

/// Every runtime, in the order ustat checks them.
pub static ALL: &[&Runtime] = &[&jvm::JVM, &python::PYTHON, &node::NODE];

/// The runtime with this short name.
pub fn by_name(name: &str) -> Option<&'static Runtime> {
    ALL.iter().copied().find(|r| r.name == name)
}

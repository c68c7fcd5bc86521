//! What ustat knows about each language runtime: how to recognise it in a process, which
//! probes (USDT, or uprobes on its own functions) to attach, and what each event means.
//!
//! A runtime module is data plus small functions; the engine in `ustat` does the attaching,
//! reading and diffing. A runtime owns its facts: how to recognise its binary (by name, or
//! by content through `Candidate`), the environment variables it reads options from, what
//! its method probes' name slots are called and what its flow needs. A new runtime that
//! fits the existing categories is one new file here, and a `mod` line and an entry in `ALL`.

pub mod jvm;
pub mod node;
pub mod php;
pub mod python;
pub mod ruby;
mod rule;

use std::path::Path;

pub use rule::{Action, Arg, CloneCheck, Feature, Key, OnDemand, Point, Rule, ValueWidth};

/// A runtime ustat can trace.
#[derive(Debug)]
pub struct Runtime {
    /// Short name, as in the `runtime` CSV column and the `--runtime` filter: `jvm`.
    pub name: &'static str,
    /// The binaries that carry it, for messages: `libjvm.so`.
    pub binary_hint: &'static str,
    /// How well a file a process maps serves as the runtime's binary: `None` when it is not
    /// one, lower is better (libpython over a python executable that links it). It may look
    /// at the file's name only, or into the ELF file (`Candidate::elf`, `has_symbol`).
    pub detect: fn(&dyn Candidate) -> Option<u8>,
    /// Environment variables the runtime reads options from (`JAVA_TOOL_OPTIONS`); ustat
    /// reads these from each process for `missing`.
    pub option_variables: &'static [&'static str],
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
    /// What the runtime calls the first two name slots: `["class", "method"]`,
    /// `["file", "function"]` (the flow view's filters say these).
    pub slots: [&'static str; 2],
    /// What the flow needs from the process, shown while no call has arrived.
    pub hint: &'static str,
    /// The feature whose probes these are: when it is on demand, so are they.
    pub feature: &'static str,
}

/// A file a process maps, as a runtime's `detect` sees it. The ELF facts are read only when
/// asked for, once per file.
pub trait Candidate {
    /// The file name: `libjvm.so`.
    fn file_name(&self) -> &str;
    /// What the ELF file says about itself; `None` when it cannot be read as one.
    fn elf(&self) -> Option<&ElfFacts>;
    /// Whether the ELF file defines this symbol (its symbol table or dynamic symbols).
    fn has_symbol(&self, name: &str) -> bool;
}

/// What an ELF file says about itself, for detection by content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfFacts {
    /// Its section names: `.go.buildinfo` marks a Go binary.
    pub sections: Vec<String>,
    /// The libraries it needs (`DT_NEEDED`): `libpython3.12.so.1.0`, `libnode.so.108`.
    pub needed: Vec<String>,
    /// Its GNU build id, if it has one.
    pub build_id: Option<Vec<u8>>,
}

impl ElfFacts {
    /// Does it need a library whose name starts with this (`libpython3`)?
    pub fn needs(&self, prefix: &str) -> bool {
        self.needed.iter().any(|n| n.starts_with(prefix))
    }
}

/// A candidate known by its file name only (tests, and callers that cannot open the file).
#[derive(Debug, Clone, Copy)]
pub struct NameOnly<'a>(pub &'a str);

impl Candidate for NameOnly<'_> {
    fn file_name(&self) -> &str {
        self.0
    }

    fn elf(&self) -> Option<&ElfFacts> {
        None
    }

    fn has_symbol(&self, _name: &str) -> bool {
        false
    }
}

impl Runtime {
    /// The feature named `name`.
    pub fn feature(&self, name: &str) -> Option<&'static Feature> {
        self.features.iter().find(|f| f.name == name)
    }

    /// Every rule of every feature, in every alternative: what the runtime can attach.
    pub fn rules(&self) -> impl Iterator<Item = &'static Rule> + '_ {
        self.features
            .iter()
            .flat_map(|f| f.alternatives.iter().copied().flatten())
    }

    /// Whether following calls (the flow, per-method times) raises probes that are on
    /// demand, and so needs the user to ask.
    pub fn flow_on_demand(&self) -> Option<OnDemand> {
        self.feature(self.flow?.feature)?.on_demand
    }
}

/// The names of every on-demand feature of every runtime (what `--with` accepts).
pub fn on_demand_features() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = ALL
        .iter()
        .flat_map(|r| r.features.iter())
        .filter(|f| f.on_demand.is_some())
        .map(|f| f.name)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The `MAJOR.MINOR[...]` version `text` starts with (`3.1.so.3.1` -> `3.1`), if it starts with
/// one: runtimes that name their binaries by version (`libruby-3.1.so`, `php8.2`) read it there.
pub fn leading_version(text: &str) -> Option<String> {
    let version: String = text
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let version = version.trim_end_matches('.');
    version.contains('.').then(|| version.to_string())
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

/// How a runtime's line says its setting is fixed when the process starts (a JVM's
/// `-XX:` flag, PHP's `USE_ZEND_DTRACE=1`), so what it keeps from ustat stays missing for
/// the life of the process.
pub const FIXED_AT_START: &str = "cannot be switched on in a running";

impl Missing {
    /// Whether it stays missing as long as the process runs (see `FIXED_AT_START`); a
    /// CPython 3.11 waiting for a profiler, or a Ruby for a TracePoint, may start any time.
    pub fn lasts(&self) -> bool {
        self.text.contains(FIXED_AT_START)
    }
}

/// Every runtime, in the order ustat checks them.
pub static ALL: &[&Runtime] = &[
    &jvm::JVM,
    &python::PYTHON,
    &node::NODE,
    &ruby::RUBY,
    &php::PHP,
];

/// The runtime with this short name.
pub fn by_name(name: &str) -> Option<&'static Runtime> {
    ALL.iter().copied().find(|r| r.name == name)
}

//! What ustat knows about each language runtime: how to recognise it in a process, which
//! probes (USDT, or uprobes on its own functions) to attach, and what each event means.
//!
//! A runtime module is data plus small functions; the engine in `ustat` does the attaching,
//! reading and diffing. A new runtime is one new file here and a line in `ALL`.

pub mod jvm;
mod rule;

pub use rule::{Action, Arg, Key, Point, Rule};

/// A runtime ustat can trace.
#[derive(Debug)]
pub struct Runtime {
    /// Short name, as in the `runtime` CSV column and the `--runtime` filter: `jvm`.
    pub name: &'static str,
    /// Is a mapped file with this file name the runtime's binary (the one with its probes or
    /// symbols)? Called with the last path component.
    pub is_binary: fn(&str) -> bool,
    /// The binary's name, for messages: `libjvm.so`.
    pub binary_hint: &'static str,
    /// What to attach in that binary.
    pub rules: &'static [Rule],
    /// The kind of a GC, from its subkey: one of `gen0`, `gen1`, `gen2`, `minor`, `major`,
    /// `other` (the CSV has a column for each of the first five).
    pub gc_kind: fn(u64) -> &'static str,
    /// Every kind `gc_kind` can return (the CSV leaves the other kinds' columns empty).
    pub gc_kinds: &'static [&'static str],
    /// How to show a `keyed` key, per category, from its names (empty where a slot has
    /// none) and its values: `java.lang.String.hashCode`.
    pub key_label: fn(category: u32, names: [&str; 3], values: [u64; 3]) -> String,
    /// The runtime's version, from files next to its binary (at this path).
    pub version: fn(&std::path::Path) -> Option<String>,
    /// What the process's settings leave out, each saying what to do about it.
    pub missing: fn(&ProcessFacts) -> Vec<Missing>,
}

/// Something a process's settings keep ustat from seeing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The category that stays empty; if its events show up after all, the line goes.
    pub category: u32,
    /// One line that says what is missing and what to do about it.
    pub text: String,
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
}

impl ProcessFacts {
    pub fn env(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every runtime, in the order ustat checks them.
pub static ALL: &[&Runtime] = &[&jvm::JVM];

/// The runtime with this short name.
pub fn by_name(name: &str) -> Option<&'static Runtime> {
    ALL.iter().copied().find(|r| r.name == name)
}

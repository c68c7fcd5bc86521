//! The declarative pieces of a runtime module: where to attach and what to do there.

/// Where a rule attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Every site of a USDT probe.
    Usdt {
        provider: &'static str,
        name: &'static str,
    },
    /// The entry of a function, by symbol name (a trailing `*` matches any suffix, for C++
    /// names whose parameter types change between versions). `args` says where the
    /// arguments are, in the USDT argument language: `8@%rdi -4@%esi 1@72(%rdi)`.
    Function {
        symbol: &'static str,
        args: &'static str,
    },
    /// The return of a function; `args` is usually `8@%rax` (the return value).
    Return {
        symbol: &'static str,
        args: &'static str,
    },
    /// The entry of the function whose address the data object `object` holds `offset`
    /// bytes in: a C type's slot (`PyModule_Type`'s `tp_init`), which reaches a static
    /// function of a binary whose symbol table was stripped. Only where the linker wrote the
    /// address into the file (an executable not built position-independent); in a PIE or a
    /// shared library the loader writes it, and the rule does not hold.
    Slot {
        object: &'static str,
        offset: u64,
        args: &'static str,
    },
}

/// An argument of the probe (0-based), or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    None,
    N(u8),
}

/// One slot of a `keyed` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    None,
    /// The argument's value itself (a line number, a thread id).
    Value(u8),
    /// A string given as (pointer argument, length argument), as HotSpot passes names.
    PtrLen(u8, u8),
    /// A NUL-terminated string (pointer argument) that stays put while the runtime keeps it.
    CStr(u8),
    /// A NUL-terminated string in memory the runtime reuses (Ruby's class names are fresh
    /// temporary strings): keyed by its bytes, which costs a hash of the string per hit.
    CStrText(u8),
}

/// What the kernel does when the point fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Count per process and category, split by `subkey`; sum `value`.
    Count {
        category: u32,
        subkey: Arg,
        value: Arg,
    },
    /// Open a span of `category` on the thread, remembering `subkey`.
    SpanBegin { category: u32, subkey: Arg },
    /// Close the thread's innermost open span of `category`; sum `value`.
    SpanEnd { category: u32, value: Arg },
    /// Set the subkey of the thread's innermost open span of `category` (a runtime that
    /// decides what a span is about after it began).
    SpanSubkey { category: u32, subkey: Arg },
    /// Count per process, category and key; sum `value`.
    Keyed {
        category: u32,
        keys: [Key; 3],
        value: Arg,
    },
}

/// What a compiler clone's code must show for a rule to hold in it: its parameters are the
/// function's minus those the compiler folded in, which its name does not say. Checked by
/// decoding the clone's first instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneCheck {
    /// The first use of the first argument register reads it as a 32-bit value (`%edi`):
    /// the clone's first parameter is an `int`.
    FirstArgInt32,
    /// The first use of the first argument register reads it whole (`%rdi`): the clone's
    /// first parameter is a pointer (or another 64-bit value).
    FirstArgPointer,
}

/// A summed value that only sites passing it this wide can be trusted with: a runtime whose
/// probe takes a narrower one is a version whose callers do not all pass it (HotSpot 17's
/// `object__alloc` takes an `int` size its interpreter never sets). Elsewhere the value is not
/// summed, and `otherwise`, under `category` (a pseudo-category naming the value), says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueWidth {
    pub bytes: u8,
    pub category: u32,
    pub otherwise: &'static str,
}

/// Attach `action` at `point`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub point: Point,
    pub action: Action,
    /// Summed values must be below this (0: no limit); others are garbage, not summed.
    pub value_max: u64,
    /// The value is summed only at sites that pass it this wide; elsewhere it is not summed
    /// and the line says why (see `ValueWidth`).
    pub value_width: Option<ValueWidth>,
    /// Set in the high 32 bits of the subkey, so userspace can tell which rule (and so which
    /// encoding) a subkey came from when a feature has alternatives.
    pub subkey_tag: u32,
    /// The kinds of compiler clone of a `Function`/`Return` symbol (`constprop` for
    /// `name.constprop.N`) whose arguments are known to sit where `args` says; the rule
    /// attaches to each such clone as well as to the function itself. Empty: no clone.
    pub clones: &'static [&'static str],
    /// Where set, a clone is taken only if its code shows this (see `CloneCheck`); the
    /// function itself too, as the rule is meant for builds where only clones exist.
    pub clone_check: Option<CloneCheck>,
    /// A library the runtime's binary may link rather than contain this rule's symbol (a
    /// file-name prefix, `libuv.so`): when the binary does not define it, the feature is
    /// planned in the library of that name that the process maps (Debian's libnode links
    /// `libuv.so.1`).
    pub library: Option<&'static str>,
    /// The rule holds only in a binary that defines (`true`) or does not define (`false`)
    /// this symbol: a layout that changed in some version, told apart by what that version
    /// added (CPython 3.8 added `PyCode_NewWithPosOnlyArgs` and moved `collect`'s
    /// generation to the second argument).
    pub only_if: Option<(&'static str, bool)>,
}

impl Rule {
    pub const fn new(point: Point, action: Action) -> Self {
        Self {
            point,
            action,
            value_max: 0,
            value_width: None,
            subkey_tag: 0,
            clones: &[],
            clone_check: None,
            library: None,
            only_if: None,
        }
    }

    pub const fn usdt(provider: &'static str, name: &'static str, action: Action) -> Self {
        Self::new(Point::Usdt { provider, name }, action)
    }

    pub const fn function(symbol: &'static str, args: &'static str, action: Action) -> Self {
        Self::new(Point::Function { symbol, args }, action)
    }

    /// The function a data object's slot points to (see `Point::Slot`).
    pub const fn slot(
        object: &'static str,
        offset: u64,
        args: &'static str,
        action: Action,
    ) -> Self {
        Self::new(
            Point::Slot {
                object,
                offset,
                args,
            },
            action,
        )
    }

    pub const fn function_return(symbol: &'static str, args: &'static str, action: Action) -> Self {
        Self::new(Point::Return { symbol, args }, action)
    }

    pub const fn values_below(self, value_max: u64) -> Self {
        Self { value_max, ..self }
    }

    /// Sum the value only where the site passes it `width.bytes` wide (see `ValueWidth`).
    pub const fn values_only_if(self, width: ValueWidth) -> Self {
        Self {
            value_width: Some(width),
            ..self
        }
    }

    pub const fn subkey_tag(self, subkey_tag: u32) -> Self {
        Self { subkey_tag, ..self }
    }

    /// Attach to these kinds of compiler clone too (see `clones`): only for kinds whose
    /// argument layout was checked against the clone's code.
    pub const fn clones(self, clones: &'static [&'static str]) -> Self {
        Self { clones, ..self }
    }

    /// Attach to these kinds of compiler clone whose code shows `check` (see `CloneCheck`).
    pub const fn clones_checked(self, clones: &'static [&'static str], check: CloneCheck) -> Self {
        Self {
            clones,
            clone_check: Some(check),
            ..self
        }
    }

    /// Only in a binary that defines `symbol` (see `only_if`).
    pub const fn if_defined(self, symbol: &'static str) -> Self {
        Self {
            only_if: Some((symbol, true)),
            ..self
        }
    }

    /// Only in a binary that does not define `symbol` (see `only_if`).
    pub const fn unless_defined(self, symbol: &'static str) -> Self {
        Self {
            only_if: Some((symbol, false)),
            ..self
        }
    }

    /// The symbol may be in a linked library of this name instead (see `library`).
    pub const fn or_in_library(self, prefix: &'static str) -> Self {
        Self {
            library: Some(prefix),
            ..self
        }
    }
}

/// Something ustat shows (GCs, threads, calls), and the ways to get it from a binary, best
/// first: the first alternative whose every rule resolves in the binary is used.
#[derive(Debug, Clone, Copy)]
pub struct Feature {
    pub name: &'static str,
    /// The categories it fills; they are "not traced" when no alternative resolves.
    pub categories: &'static [u32],
    pub alternatives: &'static [&'static [Rule]],
    /// The line shown when no alternative resolves: what is missing and why.
    pub unavailable: &'static str,
    /// Set when the feature is attached only when a view asks for it (`None`: always).
    pub on_demand: Option<OnDemand>,
}

/// Why a feature is attached only on request: raising its probes makes the runtime run code
/// of its own that can fail on the traced program's data, so ustat's default modes never
/// do; the user asks for it (a key, a flag) knowing why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnDemand {
    /// The start of the detail view's line; ustat adds how to turn it on:
    /// `function calls: not traced by default: CPython's call probes can ...`.
    pub line: &'static str,
    /// The risk in full, with a reference, for when the user asks for something that needs
    /// the feature (the flow): `CPython's code behind ... (python/cpython#156118)`.
    pub risk: &'static str,
}

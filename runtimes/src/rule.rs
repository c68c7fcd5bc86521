//! The declarative pieces of a runtime module: where to attach and what to do there.

/// Where a rule attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Every site of a USDT probe.
    Usdt {
        provider: &'static str,
        name: &'static str,
    },
    /// The entry of a function, found by symbol name; arguments are read as the x86-64
    /// System V ABI passes them (`Arg::N(0)` is %rdi, ...).
    Function { symbol: &'static str },
    /// The return of a function; `Arg::N(0)` is the return value (%rax).
    Return { symbol: &'static str },
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
    /// A NUL-terminated string (pointer argument).
    CStr(u8),
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
    /// Count per process, category and key; sum `value`.
    Keyed {
        category: u32,
        keys: [Key; 3],
        value: Arg,
    },
}

/// Attach `action` at `point`. Optional rules may be missing from a binary (older builds)
/// without making the runtime unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub point: Point,
    pub action: Action,
    pub optional: bool,
    /// Summed values must be below this (0: no limit); others are garbage, not summed.
    pub value_max: u64,
}

impl Rule {
    pub const fn new(point: Point, action: Action) -> Self {
        Self {
            point,
            action,
            optional: false,
            value_max: 0,
        }
    }

    pub const fn usdt(provider: &'static str, name: &'static str, action: Action) -> Self {
        Self::new(Point::Usdt { provider, name }, action)
    }

    pub const fn optional(self) -> Self {
        Self {
            optional: true,
            ..self
        }
    }

    pub const fn values_below(self, value_max: u64) -> Self {
        Self { value_max, ..self }
    }
}

//! `ustat trace` specs (`p:`, `r:`, `u:`): parsed, resolved to files and sites, and compiled
//! into what the kernel's generic `trace` program reads.
//!
//! # The seam between a language and the kernel
//!
//! The kernel side knows nothing about calling conventions. For each attached site it reads
//! the values a spec names from **locations** userspace gives it (`ustat_common::ArgSpec` in
//! the site's `ProbeSpec`, found through the attach cookie: a register of `pt_regs`, memory
//! at a register plus an offset, a constant — the USDT argument language), then does what
//! the probe's `TraceConfig` says (found through `ProbeSpec::tag`): evaluate the filter
//! table, read strings (`char *` or pointer + length), and print, count or time.
//!
//! So a language is a [`location::CallingConvention`]: given a [`spec::Value`] (`arg3`,
//! `retval`) at a probe, where is it. C functions use [`location::SysV`] (rdi, rsi, rdx,
//! rcx, r8, r9, then the stack; rax on return); USDT sites use their note's own argument
//! specs ([`location::UsdtSite`]). Go's register ABI (rax, rbx, rcx, rdi, rsi, r8–r11) is one
//! more implementation; a Go `string` parameter is two values, which a spec prints as
//! `PTR:LEN` ([`spec::Arg::PtrLen`]), or a convention can hand the planner such a pair for
//! one `argN` ([`location::Located::PtrLen`]). Return probes of languages where uretprobes
//! are unsafe are ordinary entry-kind sites at the function's `RET` instructions, attached
//! with `retprobe: false`; [`plan::Site`] carries that choice.

pub mod go;
pub mod known;
pub mod location;
pub mod output;
pub mod plan;
pub mod resolve;
pub mod spec;

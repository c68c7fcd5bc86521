//! The probe spec grammar of `ustat trace`, BCC `trace`'s:
//!
//! ```text
//! SPEC     := KIND ':' BINARY ':' WHERE [ '(' FILTER ')' ] [ '"' FORMAT '"' { ',' ARG } ]
//! KIND     := 'p' (function entry) | 'r' (function return) | 'u' (USDT probe)
//! BINARY   := a path (has a '/'), a library name (`c`, `pthread`: libc.so.6, ...),
//!             or empty: the executable of `-p PID`
//! WHERE    := FUNCTION (with '*' wildcards) for p/r;  [PROVIDER ':'] NAME for u
//! FILTER   := TERM { '&&' TERM }        TERM := VALUE OP CONST   OP := == != < <= > >=
//! CONST    := an integer (decimal, 0x hex, negative) or a "string"
//! ARG      := VALUE | VALUE ':' VALUE   (a pointer and a length: exactly that many bytes)
//! VALUE    := argN (1-based) | retval
//! FORMAT   := text with %d %i %u %x %ld %lu %lx %lld %llu %llx %p %c %s %%
//! ```
//!
//! Parsing is pure: what the names mean (which register, which binary) is decided later
//! (`location`, `resolve`). Errors carry the byte offset where the spec went wrong.

use std::{fmt, path::PathBuf};

/// Most values a format may print (the kernel reads this many per event).
pub const MAX_FIELDS: usize = ustat_common::TRACE_FIELDS;
/// Most comparisons in a filter.
pub const MAX_TERMS: usize = ustat_common::FILTER_TERMS;
/// Longest string constant in a filter.
pub const MAX_FILTER_TEXT: usize = ustat_common::FILTER_TEXT_LEN;

/// Where the probe fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `p:` a function's entry.
    Entry,
    /// `r:` a function's return (`retval`).
    Return,
    /// `u:` a USDT probe.
    Usdt,
}

/// The BINARY part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinaryRef {
    /// Has a `/`: this file.
    Path(PathBuf),
    /// A library name as BCC takes it: `c` is `libc.so.6`, `pthread` `libpthread.so.0`.
    Library(String),
    /// Empty: the executable of the `-p` process.
    Executable,
}

/// The WHERE part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Point {
    /// A function name or pattern (`*` matches any run of characters).
    Function(String),
    /// A USDT probe: its provider (any when absent) and name (both may hold `*`).
    Usdt {
        provider: Option<String>,
        name: String,
    },
}

/// A value of the probed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Value {
    /// `argN`: the Nth argument, 1-based.
    Arg(u8),
    /// `retval`: what the function returned (`r:` only).
    Retval,
}

/// One printed argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// A value, formatted by its conversion.
    Value(Value),
    /// `PTR:LEN`: the string of exactly LEN bytes at PTR (`%s` only).
    PtrLen { ptr: Value, len: Value },
}

/// A conversion of the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// `%d %i %ld %lld`: signed decimal of the 32-bit (`%d %i`) or 64-bit value.
    Signed { wide: bool },
    /// `%u %lu %llu`.
    Unsigned { wide: bool },
    /// `%x %lx %llx`.
    Hex { wide: bool },
    /// `%p`: `0x` and hex.
    Pointer,
    /// `%c`: one byte.
    Char,
    /// `%s`: a NUL-terminated string (bounded), or a `PTR:LEN` string.
    Str,
}

/// A piece of the format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Conversion(Conversion),
}

/// How a filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// What a filter compares with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constant {
    Int(i64),
    /// A string: the value is a `char *` (or a `PTR:LEN` string) compared byte for byte.
    Text(Vec<u8>),
}

/// One comparison; a filter is all of them (`&&`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub arg: Arg,
    pub op: Op,
    pub constant: Constant,
}

/// A parsed spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The spec as given (for messages and output).
    pub text: String,
    pub kind: Kind,
    pub binary: BinaryRef,
    pub point: Point,
    pub filter: Vec<Term>,
    /// The format's pieces; empty when the spec has no format.
    pub format: Vec<Piece>,
    /// One per conversion, in order.
    pub args: Vec<Arg>,
}

impl Spec {
    /// The conversions with the argument each prints.
    pub fn fields(&self) -> impl Iterator<Item = (Conversion, Arg)> + '_ {
        self.format
            .iter()
            .filter_map(|piece| match piece {
                Piece::Conversion(c) => Some(*c),
                Piece::Text(_) => None,
            })
            .zip(self.args.iter().copied())
    }

    /// Every value the probe reads (formatted or filtered), in first-use order.
    pub fn values(&self) -> Vec<Value> {
        let mut values = Vec::new();
        let args = self.args.iter().chain(self.filter.iter().map(|t| &t.arg));
        for arg in args {
            let (a, b) = match *arg {
                Arg::Value(v) => (v, None),
                Arg::PtrLen { ptr, len } => (ptr, Some(len)),
            };
            for v in std::iter::once(a).chain(b) {
                if !values.contains(&v) {
                    values.push(v);
                }
            }
        }
        values
    }
}

/// Why a spec does not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad probe spec `{spec}` at column {column}: {reason}", column = at + 1)]
pub struct SpecError {
    pub spec: String,
    /// Byte offset in `spec`.
    pub at: usize,
    pub reason: String,
}

/// Whether `text` is written in the spec grammar (rather than a PID, path or probe name).
pub fn looks_like_spec(text: &str) -> bool {
    ["p:", "r:", "u:"].iter().any(|k| text.starts_with(k))
}

/// Parses one spec.
pub fn parse(text: &str) -> Result<Spec, SpecError> {
    Parser { text, at: 0 }.spec()
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn fail<T>(&self, at: usize, reason: impl fmt::Display) -> Result<T, SpecError> {
        Err(SpecError {
            spec: crate::sanitize::text(self.text),
            at,
            reason: reason.to_string(),
        })
    }

    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn skip_spaces(&mut self) {
        let trimmed = self.rest().trim_start();
        self.at = self.text.len() - trimmed.len();
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn spec(mut self) -> Result<Spec, SpecError> {
        let kind = match self.text.get(..2) {
            Some("p:") => Kind::Entry,
            Some("r:") => Kind::Return,
            Some("u:") => Kind::Usdt,
            _ => return self.fail(0, "a spec starts with p: (entry), r: (return) or u: (USDT)"),
        };
        self.at = 2;
        // The probe part ends at the first space, `(` or `"` — except a Go method's receiver,
        // `.(` up to its `)` (`net/http.(*Client).Get`), which is part of the name.
        let end = probe_end(self.rest()).map_or(self.text.len(), |i| self.at + i);
        let probe_at = self.at;
        let probe = &self.text[probe_at..end];
        let parts: Vec<&str> = probe.split(':').collect();
        let (binary, point) = match (kind, parts.as_slice()) {
            (Kind::Entry | Kind::Return, [binary, function]) => {
                (*binary, Point::Function((*function).to_string()))
            }
            (Kind::Usdt, [binary, name]) => (
                *binary,
                Point::Usdt {
                    provider: None,
                    name: (*name).to_string(),
                },
            ),
            (Kind::Usdt, [binary, provider, name]) => (
                *binary,
                Point::Usdt {
                    provider: Some((*provider).to_string()),
                    name: (*name).to_string(),
                },
            ),
            (Kind::Usdt, _) => {
                return self.fail(
                    probe_at,
                    "expected BINARY:PROVIDER:NAME or BINARY:NAME after u:",
                );
            }
            _ => return self.fail(probe_at, "expected BINARY:FUNCTION after p: or r:"),
        };
        let name_at = end - probe.rsplit(':').next().map_or(0, str::len);
        match &point {
            Point::Function(f) | Point::Usdt { name: f, .. } if f.is_empty() => {
                return self.fail(name_at, "the function or probe name is empty");
            }
            Point::Function(f) if !f.chars().all(|c| symbol_char(c) || c == '*') => {
                return self.fail(
                    name_at,
                    "a function name holds letters, digits, _ . $ @ and *, and Go's / ( ) - ~ %",
                );
            }
            _ => {}
        }
        let binary = if binary.is_empty() {
            BinaryRef::Executable
        } else if binary.contains('/') {
            BinaryRef::Path(PathBuf::from(binary))
        } else {
            BinaryRef::Library(binary.to_string())
        };
        self.at = end;
        self.skip_spaces();
        let mut filter = Vec::new();
        if self.eat("(") {
            filter = self.filter(kind)?;
            self.skip_spaces();
        }
        let mut format = Vec::new();
        let mut args = Vec::new();
        if self.rest().starts_with('"') {
            let format_at = self.at;
            format = self.format()?;
            self.skip_spaces();
            while self.eat(",") {
                self.skip_spaces();
                args.push(self.arg(kind)?);
                self.skip_spaces();
            }
            let conversions: Vec<Conversion> = format
                .iter()
                .filter_map(|p| match p {
                    Piece::Conversion(c) => Some(*c),
                    Piece::Text(_) => None,
                })
                .collect();
            if conversions.len() != args.len() {
                return self.fail(
                    format_at,
                    format!(
                        "the format has {} conversions but {} arguments follow it",
                        conversions.len(),
                        args.len()
                    ),
                );
            }
            if conversions.len() > MAX_FIELDS {
                return self.fail(format_at, format!("at most {MAX_FIELDS} values per probe"));
            }
            for (conversion, arg) in conversions.iter().zip(&args) {
                if matches!(arg, Arg::PtrLen { .. }) && *conversion != Conversion::Str {
                    return self.fail(format_at, "a PTR:LEN argument is printed with %s");
                }
            }
            let strings = conversions
                .iter()
                .filter(|c| **c == Conversion::Str)
                .count();
            if strings > ustat_common::TRACE_STRINGS {
                return self.fail(
                    format_at,
                    format!(
                        "at most {} strings (%s) per probe",
                        ustat_common::TRACE_STRINGS
                    ),
                );
            }
        }
        if self.at != self.text.len() {
            return self.fail(self.at, "unexpected text (a filter goes in parentheses before the format, the format in double quotes)");
        }
        Ok(Spec {
            text: self.text.to_string(),
            kind,
            binary,
            point,
            filter,
            format,
            args,
        })
    }

    fn value(&mut self, kind: Kind) -> Result<Value, SpecError> {
        let at = self.at;
        let word: String = self
            .rest()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        self.at += word.len();
        if word == "retval" {
            if kind != Kind::Return {
                return self.fail(at, "retval exists only in r: specs");
            }
            return Ok(Value::Retval);
        }
        let Some(n) = word.strip_prefix("arg") else {
            return self.fail(at, "expected arg1, arg2, ... or retval");
        };
        match n.parse::<u8>() {
            Ok(n @ 1..=12) => Ok(Value::Arg(n)),
            _ => self.fail(at, "arguments are arg1 to arg12"),
        }
    }

    fn arg(&mut self, kind: Kind) -> Result<Arg, SpecError> {
        let ptr = self.value(kind)?;
        if self.eat(":") {
            let len = self.value(kind)?;
            return Ok(Arg::PtrLen { ptr, len });
        }
        Ok(Arg::Value(ptr))
    }

    fn filter(&mut self, kind: Kind) -> Result<Vec<Term>, SpecError> {
        let mut terms = Vec::new();
        loop {
            self.skip_spaces();
            let term_at = self.at;
            let arg = self.arg(kind)?;
            self.skip_spaces();
            let op_at = self.at;
            let op = if self.eat("==") {
                Op::Eq
            } else if self.eat("!=") {
                Op::Ne
            } else if self.eat("<=") {
                Op::Le
            } else if self.eat(">=") {
                Op::Ge
            } else if self.eat("<") {
                Op::Lt
            } else if self.eat(">") {
                Op::Gt
            } else {
                return self.fail(op_at, "expected == != < <= > or >=");
            };
            self.skip_spaces();
            let constant_at = self.at;
            let constant = if self.rest().starts_with('"') {
                let text = self.quoted()?;
                if !matches!(op, Op::Eq | Op::Ne) {
                    return self.fail(op_at, "strings compare with == or != only");
                }
                if text.len() > MAX_FILTER_TEXT {
                    return self.fail(
                        constant_at,
                        format!("a filter string has at most {MAX_FILTER_TEXT} bytes"),
                    );
                }
                Constant::Text(text.into_bytes())
            } else {
                Constant::Int(self.integer()?)
            };
            terms.push(Term { arg, op, constant });
            if terms.len() > MAX_TERMS {
                return self.fail(term_at, format!("at most {MAX_TERMS} comparisons"));
            }
            if matches!(arg, Arg::PtrLen { .. })
                && !matches!(terms.last().map(|t| &t.constant), Some(Constant::Text(_)))
            {
                return self.fail(term_at, "a PTR:LEN string compares with a \"string\"");
            }
            self.skip_spaces();
            if self.eat("&&") {
                continue;
            }
            if self.eat(")") {
                return Ok(terms);
            }
            if self.rest().starts_with("||") {
                return self.fail(self.at, "only && joins comparisons (give two specs for ||)");
            }
            return self.fail(self.at, "expected && or )");
        }
    }

    fn integer(&mut self) -> Result<i64, SpecError> {
        let at = self.at;
        let token: String = self
            .rest()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        self.at += token.len();
        let (negative, digits) = match token.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, token.as_str()),
        };
        let magnitude = match digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => digits.parse::<u64>(),
        };
        match magnitude {
            Ok(m) if negative && m <= 1 << 63 => Ok((m as i64).wrapping_neg()),
            Ok(m) if !negative => Ok(m as i64),
            _ => self.fail(at, "expected an integer or a \"string\""),
        }
    }

    /// A double-quoted string with C escapes (`\n \t \\ \" \0 \xHH`).
    fn quoted(&mut self) -> Result<String, SpecError> {
        let start = self.at;
        self.at += 1;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, '0')) => out.push('\0'),
                    Some((_, '\\')) => out.push('\\'),
                    Some((_, '"')) => out.push('"'),
                    Some((_, c)) => {
                        return self.fail(self.at + i, format!("unknown escape \\{c}"));
                    }
                    None => break,
                },
                c => out.push(c),
            }
        }
        self.fail(start, "the string has no closing \"")
    }

    fn format(&mut self) -> Result<Vec<Piece>, SpecError> {
        let format_at = self.at;
        let text = self.quoted()?;
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text.as_str();
        while let Some(i) = rest.find('%') {
            literal.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            if let Some(r) = rest.strip_prefix('%') {
                literal.push('%');
                rest = r;
                continue;
            }
            let conversions: [(&str, Conversion); 13] = [
                ("lld", Conversion::Signed { wide: true }),
                ("llu", Conversion::Unsigned { wide: true }),
                ("llx", Conversion::Hex { wide: true }),
                ("ld", Conversion::Signed { wide: true }),
                ("lu", Conversion::Unsigned { wide: true }),
                ("lx", Conversion::Hex { wide: true }),
                ("d", Conversion::Signed { wide: false }),
                ("i", Conversion::Signed { wide: false }),
                ("u", Conversion::Unsigned { wide: false }),
                ("x", Conversion::Hex { wide: false }),
                ("p", Conversion::Pointer),
                ("c", Conversion::Char),
                ("s", Conversion::Str),
            ];
            let Some((token, conversion)) = conversions
                .iter()
                .find(|(token, _)| rest.starts_with(token))
            else {
                return self.fail(
                    format_at,
                    "the format's conversions are %d %i %u %x %ld %lu %lx %lld %llu %llx %p %c %s %%",
                );
            };
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Conversion(*conversion));
            rest = &rest[token.len()..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(pieces)
    }
}

fn symbol_char(c: char) -> bool {
    // Go's names add the import path's `/` (and `-`, `~`, `%` escapes in it) and a pointer
    // receiver's parentheses: `golang.org/x/net/http2.(*Framer).ReadFrame`.
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | '.' | '$' | '@' | '/' | '(' | ')' | '-' | '~' | '%')
}

/// Where the probe part of `rest` ends: at the first space, `(` or `"`, where a `(` right
/// after a `.` opens a Go receiver, which runs to its `)`.
fn probe_end(rest: &str) -> Option<usize> {
    let mut in_receiver = false;
    let mut previous = '\0';
    for (i, c) in rest.char_indices() {
        match c {
            '(' if previous == '.' && !in_receiver => in_receiver = true,
            ')' if in_receiver => in_receiver = false,
            c if c.is_whitespace() || c == '(' || c == '"' => return Some(i),
            _ => {}
        }
        previous = c;
    }
    None
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(mut tail) = text.strip_prefix(head) else {
                return false;
            };
            loop {
                if glob(rest, tail) {
                    return true;
                }
                let mut chars = tail.chars();
                if chars.next().is_none() {
                    return false;
                }
                tail = chars.as_str();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redis_spec() {
        let spec = parse(r#"p:/usr/bin/redis-server:createStringObject "%s", arg1:arg2"#).unwrap();
        assert_eq!(spec.kind, Kind::Entry);
        assert_eq!(spec.binary, BinaryRef::Path("/usr/bin/redis-server".into()));
        assert_eq!(spec.point, Point::Function("createStringObject".into()));
        assert_eq!(spec.format, vec![Piece::Conversion(Conversion::Str)]);
        assert_eq!(
            spec.args,
            vec![Arg::PtrLen {
                ptr: Value::Arg(1),
                len: Value::Arg(2)
            }]
        );
        assert_eq!(spec.values(), vec![Value::Arg(1), Value::Arg(2)]);
    }

    #[test]
    fn filters_formats_and_libraries() {
        let spec = parse(
            r#"p:c:write (arg1 == 1 && arg3 > 0x10) "fd %d wrote %llu: %s", arg1, arg3, arg2"#,
        )
        .unwrap();
        assert_eq!(spec.binary, BinaryRef::Library("c".into()));
        assert_eq!(
            spec.filter,
            vec![
                Term {
                    arg: Arg::Value(Value::Arg(1)),
                    op: Op::Eq,
                    constant: Constant::Int(1)
                },
                Term {
                    arg: Arg::Value(Value::Arg(3)),
                    op: Op::Gt,
                    constant: Constant::Int(16)
                },
            ]
        );
        assert_eq!(
            spec.format,
            vec![
                Piece::Text("fd ".into()),
                Piece::Conversion(Conversion::Signed { wide: false }),
                Piece::Text(" wrote ".into()),
                Piece::Conversion(Conversion::Unsigned { wide: true }),
                Piece::Text(": ".into()),
                Piece::Conversion(Conversion::Str),
            ]
        );
        let spec = parse(r#"p::handle (arg1 == "GET") "%s", arg1"#).unwrap();
        assert_eq!(spec.binary, BinaryRef::Executable);
        assert_eq!(spec.filter[0].constant, Constant::Text(b"GET".to_vec()));
        let spec = parse(r#"p:./a.out:lookup (arg2 >= -5)"#).unwrap();
        assert_eq!(spec.filter[0].constant, Constant::Int(-5));
        assert!(spec.format.is_empty());
    }

    #[test]
    fn returns_usdt_and_wildcards() {
        let spec = parse(r#"r:/bin/x:f* "%d", retval"#).unwrap();
        assert_eq!(spec.kind, Kind::Return);
        assert_eq!(spec.point, Point::Function("f*".into()));
        assert_eq!(spec.args, vec![Arg::Value(Value::Retval)]);
        let spec = parse(r#"u:/lib/libjvm.so:hotspot:class__loaded "%s", arg1:arg2"#).unwrap();
        assert_eq!(
            spec.point,
            Point::Usdt {
                provider: Some("hotspot".into()),
                name: "class__loaded".into()
            }
        );
        let spec = parse("u::gc__begin").unwrap();
        assert_eq!(
            spec.point,
            Point::Usdt {
                provider: None,
                name: "gc__begin".into()
            }
        );
        assert!(glob("f*", "foo") && !glob("f*", "bar"));
    }

    #[test]
    fn errors_say_where() {
        let column = |text: &str| parse(text).unwrap_err().at;
        assert_eq!(column("x:/bin/ls:main"), 0);
        assert_eq!(column("p:/bin/ls"), 2);
        assert_eq!(column(r#"p:/bin/ls:main "%d""#), 15);
        assert_eq!(column(r#"p:/bin/ls:main "%q", arg1"#), 15);
        assert_eq!(column(r#"p:/bin/ls:main "%d", arg0"#), 21);
        assert_eq!(column(r#"p:/bin/ls:main "%d", retval"#), 21);
        assert_eq!(column(r#"p:/bin/ls:main (arg1 ~ 3)"#), 21);
        assert_eq!(column(r#"p:/bin/ls:main (arg1 == 3 || arg2 == 1)"#), 26);
        assert_eq!(column(r#"p:/bin/ls:main (arg1 > "x")"#), 21);
        assert_eq!(column(r#"p:/bin/ls:main "%d", arg1:arg2"#), 15);
        assert_eq!(column(r#"p:/bin/ls:main "%d", arg1 junk"#), 26);
        assert_eq!(column("p:/bin/ls:ma;in"), 10);
        let e = parse("p:/bin/ls:main \"%d\"").unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad probe spec `p:/bin/ls:main \"%d\"` at column 16: the format has 1 conversions but 0 arguments follow it"
        );
    }

    #[test]
    fn go_names_with_paths_and_receivers() {
        let spec = parse(r#"p::net/http.(*Client).Get (arg2 == "x") "%s", arg2"#).unwrap();
        assert_eq!(spec.binary, BinaryRef::Executable);
        assert_eq!(spec.point, Point::Function("net/http.(*Client).Get".into()));
        assert_eq!(spec.filter.len(), 1);
        let spec = parse("r:/tmp/app:main.(*T).*").unwrap();
        assert_eq!(spec.point, Point::Function("main.(*T).*".into()));
        // A `(` not after a `.` still opens the filter.
        let spec = parse("p:c:write(arg1 == 1)").unwrap();
        assert_eq!(spec.point, Point::Function("write".into()));
        assert_eq!(spec.filter.len(), 1);
    }
}

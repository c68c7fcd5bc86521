//! Go's register ABI on amd64 (Go 1.17 and later): which registers hold each parameter and
//! result at a function's entry and at its returns.
//!
//! Integer-like values take the next of RAX, RBX, RCX, RDI, RSI, R8, R9, R10, R11; floats the
//! next of X0..X14. A string is (pointer, length), a slice (pointer, length, capacity), an
//! interface (type, data); a struct is its fields in order; an array of one element is that
//! element, of none nothing. A value that does not fit in the registers left goes on the stack
//! whole, and the registers it would have taken stay free for the next ones. Parameters
//! (the receiver first) and results are assigned separately, each from RAX and X0.
//! (`src/cmd/compile/abi-internal.md` in Go's sources.)

use ustat_common::pt_regs;

/// The integer registers in the order Go assigns them, with their `pt_regs` offsets.
pub const INT_REGISTERS: [(&str, u16); 9] = [
    ("rax", pt_regs::RAX),
    ("rbx", pt_regs::RBX),
    ("rcx", pt_regs::RCX),
    ("rdi", pt_regs::RDI),
    ("rsi", pt_regs::RSI),
    ("r8", pt_regs::R8),
    ("r9", pt_regs::R9),
    ("r10", pt_regs::R10),
    ("r11", pt_regs::R11),
];
/// X0..X14.
const FLOAT_REGISTERS: usize = 15;
/// The current goroutine (`g`) under the register ABI.
pub const G_REGISTER: (&str, u16) = ("r14", pt_regs::R14);

/// The layout of a Go type, as far as register assignment cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// An integer of `size` bytes (also `uintptr`, `bool`, a rune).
    Int {
        size: u8,
        signed: bool,
    },
    Bool,
    /// A pointer, map, channel, function or `unsafe.Pointer`: one word.
    Pointer,
    /// float32 or float64.
    Float,
    /// complex64 or complex128: two floats.
    Complex,
    /// (pointer, length).
    String,
    /// (pointer, length, capacity).
    Slice,
    /// (type or itab, data).
    Interface,
    Struct(Vec<Shape>),
    Array {
        len: u64,
        element: Box<Shape>,
    },
    /// A type ustat could not read from DWARF (named in the reason).
    Unknown(String),
}

/// One register of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub register: &'static str,
    /// `pt_regs` offset.
    pub reg_off: u16,
    /// Bytes of the register the value uses.
    pub size: u8,
    pub signed: bool,
}

/// Where a value is at entry (parameters) or at a return (results).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// In these integer registers, in order.
    Registers(Vec<Piece>),
    /// Wholly or partly in floating-point registers, which uprobes do not give eBPF.
    Float,
    /// On the stack (it did not fit in the registers left).
    Stack,
    /// Its type could not be read.
    Unknown(String),
}

impl Placement {
    /// Why the value cannot be read, or `None` when it can.
    pub fn unreadable(&self) -> Option<String> {
        match self {
            Self::Registers(_) => None,
            Self::Float => Some(
                "it is passed in floating-point registers, which eBPF cannot read in a uprobe"
                    .into(),
            ),
            Self::Stack => Some(
                "it is passed on the stack (it did not fit in the registers left); ustat reads register-passed values only"
                    .into(),
            ),
            Self::Unknown(why) => Some(why.clone()),
        }
    }
}

/// The register assignment in progress.
#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    int: usize,
    float: usize,
}

/// Places each value in order from RAX and X0 (call it once for the parameters, once for the
/// results).
pub fn assign(shapes: &[Shape]) -> Vec<Placement> {
    let mut cursor = Cursor::default();
    shapes
        .iter()
        .map(|shape| {
            if let Shape::Unknown(why) = shape {
                // Its size is unknown too, so nothing after it can be placed with certainty.
                cursor.int = INT_REGISTERS.len();
                return Placement::Unknown(why.clone());
            }
            let saved = cursor;
            let mut pieces = Vec::new();
            let mut floats = false;
            if place(shape, &mut cursor, &mut pieces, &mut floats) {
                if floats {
                    Placement::Float
                } else {
                    Placement::Registers(pieces)
                }
            } else {
                cursor = saved;
                Placement::Stack
            }
        })
        .collect()
}

/// Assigns `shape`'s registers; false when they run out (or a part cannot go in registers).
fn place(shape: &Shape, cursor: &mut Cursor, pieces: &mut Vec<Piece>, floats: &mut bool) -> bool {
    let mut int = |cursor: &mut Cursor, size: u8, signed: bool| -> bool {
        let Some(&(register, reg_off)) = INT_REGISTERS.get(cursor.int) else {
            return false;
        };
        cursor.int += 1;
        pieces.push(Piece {
            register,
            reg_off,
            size,
            signed,
        });
        true
    };
    match shape {
        Shape::Int { size, signed } => int(cursor, *size, *signed),
        Shape::Bool => int(cursor, 1, false),
        Shape::Pointer => int(cursor, 8, false),
        Shape::String | Shape::Interface => int(cursor, 8, false) && int(cursor, 8, false),
        Shape::Slice => int(cursor, 8, false) && int(cursor, 8, false) && int(cursor, 8, false),
        Shape::Float | Shape::Complex => {
            let needed = if *shape == Shape::Complex { 2 } else { 1 };
            *floats = true;
            cursor.float += needed;
            cursor.float <= FLOAT_REGISTERS
        }
        Shape::Struct(fields) => fields.iter().all(|f| place(f, cursor, pieces, floats)),
        Shape::Array { len: 0, .. } => true,
        Shape::Array { len: 1, element } => place(element, cursor, pieces, floats),
        Shape::Array { .. } => false,
        Shape::Unknown(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registers(p: &Placement) -> Vec<&'static str> {
        match p {
            Placement::Registers(pieces) => pieces.iter().map(|p| p.register).collect(),
            other => panic!("not in registers: {other:?}"),
        }
    }

    #[test]
    fn receiver_then_string_take_three_registers() {
        // (*Client).Get(c *Client, url string)
        let placed = assign(&[Shape::Pointer, Shape::String]);
        assert_eq!(registers(&placed[0]), ["rax"]);
        assert_eq!(registers(&placed[1]), ["rbx", "rcx"]);
    }

    #[test]
    fn slices_interfaces_and_narrow_ints() {
        let placed = assign(&[
            Shape::Slice,
            Shape::Interface,
            Shape::Int {
                size: 4,
                signed: true,
            },
            Shape::Bool,
        ]);
        assert_eq!(registers(&placed[0]), ["rax", "rbx", "rcx"]);
        assert_eq!(registers(&placed[1]), ["rdi", "rsi"]);
        assert_eq!(registers(&placed[2]), ["r8"]);
        let Placement::Registers(p) = &placed[2] else {
            unreachable!()
        };
        assert_eq!((p[0].size, p[0].signed), (4, true));
        assert_eq!(registers(&placed[3]), ["r9"]);
    }

    #[test]
    fn floats_use_their_own_registers() {
        let placed = assign(&[Shape::Float, Shape::Pointer, Shape::Complex, Shape::String]);
        assert_eq!(placed[0], Placement::Float);
        assert_eq!(registers(&placed[1]), ["rax"]);
        assert_eq!(placed[2], Placement::Float);
        assert_eq!(registers(&placed[3]), ["rbx", "rcx"]);
    }

    #[test]
    fn what_does_not_fit_goes_to_the_stack_and_frees_its_registers() {
        // Eight words used, then a string (two) does not fit, but a pointer after it does.
        let mut shapes = vec![Shape::Pointer; 8];
        shapes.push(Shape::String);
        shapes.push(Shape::Pointer);
        let placed = assign(&shapes);
        assert_eq!(placed[8], Placement::Stack);
        assert_eq!(registers(&placed[9]), ["r11"]);
        // An array of two is never in registers; of one it is its element.
        let placed = assign(&[
            Shape::Array {
                len: 2,
                element: Box::new(Shape::Pointer),
            },
            Shape::Array {
                len: 1,
                element: Box::new(Shape::String),
            },
        ]);
        assert_eq!(placed[0], Placement::Stack);
        assert_eq!(registers(&placed[1]), ["rax", "rbx"]);
    }

    #[test]
    fn structs_are_their_fields() {
        let placed = assign(&[
            Shape::Struct(vec![Shape::Pointer, Shape::Struct(vec![]), Shape::String]),
            Shape::Pointer,
        ]);
        assert_eq!(registers(&placed[0]), ["rax", "rbx", "rcx"]);
        assert_eq!(registers(&placed[1]), ["rdi"]);
        let mixed = assign(&[Shape::Struct(vec![Shape::Pointer, Shape::Float])]);
        assert_eq!(mixed[0], Placement::Float);
    }
}

//! The expression language of shapes and bounds: `n_head_kv * head_dim`, `n_embd / n_head`,
//! `file_bytes + 64 MiB`. Integers and floats, `+ - * /`, parentheses, unary minus, names of
//! hyperparameters, `int(x)` (a float that must be integral, as `head_dim * 0.4`), and the unit
//! suffixes KiB, MiB and GiB. Integer arithmetic is checked:
//! overflow and inexact division are errors, never a silently wrong shape.

use std::fmt;

/// A number: shapes are integers, bounds and rope θ may be floats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub fn ty(self) -> Ty {
        match self {
            Num::Int(_) => Ty::Int,
            Num::Float(_) => Ty::Float,
        }
    }

    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::Int(i) => write!(f, "{i}"),
            Num::Float(x) => write!(f, "{x:?}"),
        }
    }
}

/// The type of an expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ty {
    Int,
    Float,
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ty::Int => "int",
            Ty::Float => "float",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

/// A parsed expression. `column` fields are 0-based character offsets into the source text,
/// so errors point at the exact token.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Lit(Num),
    Name {
        name: String,
        column: usize,
    },
    Neg(Box<Expr>),
    /// `int(x)`: the value of x, which must be integral.
    Int {
        arg: Box<Expr>,
        column: usize,
    },
    Bin {
        op: Op,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        column: usize,
    },
}

/// An error in an expression, at a 0-based character column of its text.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    pub column: usize,
    pub message: String,
}

fn err<T>(column: usize, message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError { column, message: message.into() })
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(Num),
    Ident(String),
    Sym(char),
}

fn tokenize(text: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_') {
                // An exponent sign belongs to the literal: 1e-6.
                if matches!(chars[i], 'e' | 'E') && matches!(chars.get(i + 1), Some('+' | '-')) {
                    i += 1;
                }
                i += 1;
            }
            let lit: String = chars[start..i].iter().filter(|&&c| c != '_').collect();
            let num = if lit.contains(['.', 'e', 'E']) {
                lit.parse::<f64>().ok().filter(|f| f.is_finite()).map(Num::Float)
            } else {
                lit.parse::<i64>().ok().map(Num::Int)
            };
            match num {
                Some(n) => out.push((Tok::Num(n), start)),
                None => return err(start, format!("`{lit}` is not a number")),
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(chars[start..i].iter().collect()), start));
        } else if "+-*/()".contains(c) {
            out.push((Tok::Sym(c), i));
            i += 1;
        } else {
            return err(i, format!("unexpected character `{c}`"));
        }
    }
    Ok(out)
}

/// Parses an expression.
pub fn parse(text: &str) -> Result<Expr, ExprError> {
    let toks = tokenize(text)?;
    let end = text.chars().count();
    let mut p = Parser { toks, pos: 0, end };
    let expr = p.sum()?;
    match p.toks.get(p.pos) {
        None => Ok(expr),
        Some((_, col)) => err(*col, "expected an operator or the end of the expression"),
    }
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek_sym(&self) -> Option<(char, usize)> {
        match self.toks.get(self.pos) {
            Some((Tok::Sym(c), col)) => Some((*c, *col)),
            _ => None,
        }
    }

    fn sum(&mut self) -> Result<Expr, ExprError> {
        let mut lhs = self.product()?;
        while let Some((c @ ('+' | '-'), column)) = self.peek_sym() {
            self.pos += 1;
            let rhs = self.product()?;
            let op = if c == '+' { Op::Add } else { Op::Sub };
            lhs = Expr::Bin { op, lhs: Box::new(lhs), rhs: Box::new(rhs), column };
        }
        Ok(lhs)
    }

    fn product(&mut self) -> Result<Expr, ExprError> {
        let mut lhs = self.unary()?;
        while let Some((c @ ('*' | '/'), column)) = self.peek_sym() {
            self.pos += 1;
            let rhs = self.unary()?;
            let op = if c == '*' { Op::Mul } else { Op::Div };
            lhs = Expr::Bin { op, lhs: Box::new(lhs), rhs: Box::new(rhs), column };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if let Some(('-', _)) = self.peek_sym() {
            self.pos += 1;
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        let primary = self.primary()?;
        // A unit suffix scales the primary before it: `64 MiB`, `(a + b) GiB`.
        if let Some((Tok::Ident(unit), column)) = self.toks.get(self.pos) {
            let scale = match unit.as_str() {
                "KiB" => 1i64 << 10,
                "MiB" => 1 << 20,
                "GiB" => 1 << 30,
                _ => return err(*column, format!("expected an operator before `{unit}`")),
            };
            let column = *column;
            self.pos += 1;
            let rhs = Box::new(Expr::Lit(Num::Int(scale)));
            return Ok(Expr::Bin { op: Op::Mul, lhs: Box::new(primary), rhs, column });
        }
        Ok(primary)
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let Some((tok, column)) = self.toks.get(self.pos).cloned() else {
            return err(self.end, "expected a number, a name or `(`");
        };
        self.pos += 1;
        match tok {
            Tok::Num(n) => Ok(Expr::Lit(n)),
            Tok::Ident(name) if matches!(name.as_str(), "KiB" | "MiB" | "GiB") => {
                err(column, format!("unit `{name}` needs a number before it"))
            }
            Tok::Ident(name) if name == "int" && matches!(self.peek_sym(), Some(('(', _))) => {
                let arg = self.primary()?;
                Ok(Expr::Int { arg: Box::new(arg), column })
            }
            Tok::Ident(name) => Ok(Expr::Name { name, column }),
            Tok::Sym('(') => {
                let inner = self.sum()?;
                match self.peek_sym() {
                    Some((')', _)) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => err(self.toks.get(self.pos).map_or(self.end, |t| t.1), "expected `)`"),
                }
            }
            Tok::Sym(c) => err(column, format!("expected a number, a name or `(`, found `{c}`")),
        }
    }
}

impl Expr {
    /// Infers the type, asking `lookup` for the type of each name. Unknown names are errors.
    pub fn ty(&self, lookup: &dyn Fn(&str) -> Option<Ty>) -> Result<Ty, ExprError> {
        match self {
            Expr::Lit(n) => Ok(n.ty()),
            Expr::Name { name, column } => match lookup(name) {
                Some(t) => Ok(t),
                None => err(*column, format!("unknown name `{name}`")),
            },
            Expr::Neg(e) => e.ty(lookup),
            Expr::Int { arg, .. } => arg.ty(lookup).map(|_| Ty::Int),
            Expr::Bin { lhs, rhs, .. } => {
                let (a, b) = (lhs.ty(lookup)?, rhs.ty(lookup)?);
                Ok(if a == Ty::Int && b == Ty::Int { Ty::Int } else { Ty::Float })
            }
        }
    }

    /// Names the expression uses, in order of appearance.
    pub fn names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_names(&mut out);
        out
    }

    fn collect_names<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Lit(_) => {}
            Expr::Name { name, .. } => out.push(name),
            Expr::Neg(e) | Expr::Int { arg: e, .. } => e.collect_names(out),
            Expr::Bin { lhs, rhs, .. } => {
                lhs.collect_names(out);
                rhs.collect_names(out);
            }
        }
    }

    /// Evaluates with `value` giving each name's value.
    pub fn eval(&self, value: &dyn Fn(&str) -> Option<Num>) -> Result<Num, ExprError> {
        match self {
            Expr::Lit(n) => Ok(*n),
            Expr::Name { name, column } => match value(name) {
                Some(v) => Ok(v),
                None => err(*column, format!("`{name}` has no value")),
            },
            Expr::Neg(e) => match e.eval(value)? {
                Num::Int(i) => i.checked_neg().map(Num::Int).ok_or_else(|| overflow(0)),
                Num::Float(f) => Ok(Num::Float(-f)),
            },
            Expr::Int { arg, column } => match arg.eval(value)? {
                Num::Int(i) => Ok(Num::Int(i)),
                Num::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Num::Int(f as i64)),
                Num::Float(f) => err(*column, format!("int({f}): not an integer")),
            },
            Expr::Bin { op, lhs, rhs, column } => {
                let (a, b) = (lhs.eval(value)?, rhs.eval(value)?);
                apply(*op, a, b, *column)
            }
        }
    }
}

fn overflow(column: usize) -> ExprError {
    ExprError { column, message: "integer overflow".into() }
}

fn apply(op: Op, a: Num, b: Num, column: usize) -> Result<Num, ExprError> {
    if let (Num::Int(x), Num::Int(y)) = (a, b) {
        let r = match op {
            Op::Add => x.checked_add(y),
            Op::Sub => x.checked_sub(y),
            Op::Mul => x.checked_mul(y),
            Op::Div if y == 0 => return err(column, format!("{x} / 0: division by zero")),
            Op::Div if x % y != 0 => {
                return err(column, format!("{x} / {y} is not an integer; integer division must be exact"));
            }
            Op::Div => x.checked_div(y),
        };
        return r.map(Num::Int).ok_or_else(|| overflow(column));
    }
    let (x, y) = (a.as_f64(), b.as_f64());
    let r = match op {
        Op::Add => x + y,
        Op::Sub => x - y,
        Op::Mul => x * y,
        Op::Div => x / y,
    };
    if r.is_finite() { Ok(Num::Float(r)) } else { err(column, format!("{x} {op:?} {y} is not finite")) }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Lit(n) => write!(f, "{n}"),
            Expr::Name { name, .. } => f.write_str(name),
            Expr::Neg(e) => write!(f, "-({e})"),
            Expr::Int { arg, .. } => write!(f, "int({arg})"),
            Expr::Bin { op, lhs, rhs, .. } => {
                let sym = match op {
                    Op::Add => '+',
                    Op::Sub => '-',
                    Op::Mul => '*',
                    Op::Div => '/',
                };
                write!(f, "({lhs} {sym} {rhs})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<Num> {
        match name {
            "n_embd" => Some(Num::Int(256)),
            "n_head" => Some(Num::Int(8)),
            "n_head_kv" => Some(Num::Int(2)),
            "three" => Some(Num::Int(3)),
            "eps" => Some(Num::Float(1e-6)),
            _ => None,
        }
    }

    fn ev(text: &str) -> Result<Num, ExprError> {
        parse(text)?.eval(&env)
    }

    #[test]
    fn arithmetic_precedence_and_units() {
        assert_eq!(ev("n_head_kv * (n_embd / n_head)").unwrap(), Num::Int(64));
        assert_eq!(ev("1 + 2 * 3 - 4").unwrap(), Num::Int(3));
        assert_eq!(ev("-2 * -3").unwrap(), Num::Int(6));
        assert_eq!(ev("64 MiB").unwrap(), Num::Int(64 << 20));
        assert_eq!(ev("2 GiB + 1 KiB").unwrap(), Num::Int((2 << 30) + 1024));
        assert_eq!(ev("(1 + 1) KiB").unwrap(), Num::Int(2048));
        assert_eq!(ev("1.5 * 2").unwrap(), Num::Float(3.0));
        assert_eq!(ev("1e-6").unwrap(), Num::Float(1e-6));
        assert_eq!(ev("10000.0").unwrap(), Num::Float(10000.0));
        assert_eq!(ev("eps * 2").unwrap(), Num::Float(2e-6));
        assert_eq!(ev("int(n_embd * 0.25)").unwrap(), Num::Int(64));
        assert!(ev("int(n_embd * 0.3)").unwrap_err().message.contains("not an integer"));
    }

    #[test]
    fn errors_point_at_the_token() {
        let e = parse("n_embd + ").unwrap_err();
        assert_eq!(e.column, 9);
        let e = parse("n_embd $ 2").unwrap_err();
        assert_eq!((e.column, e.message.as_str()), (7, "unexpected character `$`"));
        let e = parse("(n_embd").unwrap_err();
        assert!(e.message.contains("`)`"), "{e}");
        let e = parse("n_embd n_head").unwrap_err();
        assert_eq!(e.column, 7);
        let e = parse("MiB").unwrap_err();
        assert!(e.message.contains("needs a number"));
        let e = parse("12x").unwrap_err();
        assert!(e.message.contains("not a number"));
    }

    #[test]
    fn checked_integer_arithmetic() {
        assert!(ev("n_embd / three").unwrap_err().message.contains("not an integer"));
        assert!(ev("n_embd / 0").unwrap_err().message.contains("division by zero"));
        assert!(ev("9223372036854775807 + 1").unwrap_err().message.contains("overflow"));
        assert!(ev("8 GiB * 8 GiB * 8 GiB").unwrap_err().message.contains("overflow"));
        assert!(ev("1.0 / 0").unwrap_err().message.contains("not finite"));
        let e = ev("n_embd * nope").unwrap_err();
        assert_eq!(e.column, 9);
    }

    #[test]
    fn types_and_names() {
        let lookup = |n: &str| env(n).map(Num::ty);
        assert_eq!(parse("n_embd / n_head").unwrap().ty(&lookup).unwrap(), Ty::Int);
        assert_eq!(parse("n_embd * eps").unwrap().ty(&lookup).unwrap(), Ty::Float);
        let e = parse("n_embd * missing").unwrap().ty(&lookup).unwrap_err();
        assert_eq!((e.column, e.message.as_str()), (9, "unknown name `missing`"));
        assert_eq!(parse("a * (b + a)").unwrap().names(), vec!["a", "b", "a"]);
    }
}

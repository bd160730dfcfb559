//! `--where`: a small typed filter language over the header facts of a record
//! ([`RecordInfo`]), shared by `ls --records`, `fetch` and `convert` (issue 15).
//!
//! ```text
//! expr   := and ("or" and)*
//! and    := unary ("and" unary)*
//! unary  := "not" unary | "(" expr ")" | cmp
//! cmp    := operand (("==" | "!=" | "<" | "<=" | ">" | ">=") operand
//!                    | ["not"] "in" operand)
//! operand:= NUMBER | "string" | 'string' | FIELD
//! ```
//!
//! Fields and their types: `record` (text), `fs` (number, Hz), `n_sig`, `sig_len`
//! (frames), `duration` (seconds), `size` (bytes of the record's files), `n_seg` (0 for
//! single-segment records), `sig_name`, `units`, `comments` (lists of text),
//! `base_date`, `base_time` (text, ISO 8601). `x in LIST` is membership, `x in TEXT` a
//! substring test. Types are checked when the expression is parsed, so
//! `fs == "500"` is an error naming the column, not a silent "no match". A comparison
//! with a value the header does not give (a missing `sig_len`, `base_date`) is false.
//!
//! Example: `fs == 500 and "V1" in sig_name and duration >= 10`.

use std::fmt;

use super::RecordInfo;

/// A `--where` expression that could not be parsed, with the 0-based character column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--where: column {}: {message}\n  {expr}\n  {caret}^", .column + 1, caret = " ".repeat(*.column))]
pub struct WhereError {
    /// The expression as given.
    pub expr: String,
    /// 0-based character column of the offending token.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// The type of a field or literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Num,
    Text,
    List,
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ty::Num => "a number",
            Ty::Text => "text",
            Ty::List => "a list of text",
        })
    }
}

/// A record field usable in an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Record,
    Fs,
    NSig,
    SigLen,
    Duration,
    Size,
    NSeg,
    SigName,
    Units,
    Comments,
    BaseDate,
    BaseTime,
}

const FIELDS: &[(&str, Field)] = &[
    ("record", Field::Record),
    ("fs", Field::Fs),
    ("n_sig", Field::NSig),
    ("sig_len", Field::SigLen),
    ("duration", Field::Duration),
    ("size", Field::Size),
    ("n_seg", Field::NSeg),
    ("sig_name", Field::SigName),
    ("units", Field::Units),
    ("comments", Field::Comments),
    ("base_date", Field::BaseDate),
    ("base_time", Field::BaseTime),
];

impl Field {
    fn ty(self) -> Ty {
        match self {
            Field::Record | Field::BaseDate | Field::BaseTime => Ty::Text,
            Field::SigName | Field::Units | Field::Comments => Ty::List,
            _ => Ty::Num,
        }
    }
}

/// A value during evaluation (`Missing` when the header does not give it).
#[derive(Debug, Clone, PartialEq)]
enum Value<'a> {
    Num(f64),
    Text(&'a str),
    List(&'a [String]),
    Missing,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Num(f64),
    Text(String),
    Field(Field),
}

impl Operand {
    fn ty(&self) -> Ty {
        match self {
            Operand::Num(_) => Ty::Num,
            Operand::Text(_) => Ty::Text,
            Operand::Field(f) => f.ty(),
        }
    }

    fn value<'a>(&'a self, r: &'a RecordInfo) -> Value<'a> {
        let num = |v: Option<f64>| v.map_or(Value::Missing, Value::Num);
        match self {
            Operand::Num(n) => Value::Num(*n),
            Operand::Text(s) => Value::Text(s),
            Operand::Field(f) => match f {
                Field::Record => Value::Text(&r.name),
                Field::Fs => Value::Num(r.fs),
                Field::NSig => Value::Num(r.sig_name.len() as f64),
                Field::SigLen => num(r.sig_len.map(|n| n as f64)),
                Field::Duration => num(r.duration()),
                Field::Size => num(r.size()),
                Field::NSeg => Value::Num(r.segments.len() as f64),
                Field::SigName => Value::List(&r.sig_name),
                Field::Units => Value::List(&r.units),
                Field::Comments => Value::List(&r.comments),
                Field::BaseDate => r.base_date.as_deref().map_or(Value::Missing, Value::Text),
                Field::BaseTime => r.base_time.as_deref().map_or(Value::Missing, Value::Text),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Or(Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Cmp(Operand, CmpOp, Operand),
}

/// A parsed, type-checked `--where` expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    root: Node,
    text: String,
}

impl Filter {
    /// Parses and type-checks `expr`.
    pub fn parse(expr: &str) -> Result<Filter, WhereError> {
        let tokens = lex(expr)?;
        let mut p = Parser {
            expr,
            tokens,
            at: 0,
        };
        let root = p.or()?;
        if let Some(t) = p.peek() {
            return Err(p.error(t.column, format!("unexpected {}", t.kind)));
        }
        Ok(Filter {
            root,
            text: expr.to_string(),
        })
    }

    /// True when `record` satisfies the expression.
    pub fn matches(&self, record: &RecordInfo) -> bool {
        eval(&self.root, record)
    }

    /// The expression as given.
    pub fn text(&self) -> &str {
        &self.text
    }
}

fn eval(node: &Node, r: &RecordInfo) -> bool {
    match node {
        Node::Or(a, b) => eval(a, r) || eval(b, r),
        Node::And(a, b) => eval(a, r) && eval(b, r),
        Node::Not(a) => !eval(a, r),
        Node::Cmp(a, op, b) => compare(&a.value(r), *op, &b.value(r)),
    }
}

fn compare(a: &Value<'_>, op: CmpOp, b: &Value<'_>) -> bool {
    use std::cmp::Ordering;
    match op {
        CmpOp::In | CmpOp::NotIn => {
            let found = match (a, b) {
                (Value::Text(x), Value::List(l)) => l.iter().any(|s| s == x),
                (Value::Text(x), Value::Text(s)) => s.contains(x),
                _ => return false,
            };
            found == (op == CmpOp::In)
        }
        _ => {
            let ord = match (a, b) {
                (Value::Num(x), Value::Num(y)) => x.partial_cmp(y),
                (Value::Text(x), Value::Text(y)) => Some(x.cmp(y)),
                _ => None,
            };
            let Some(ord) = ord else { return false };
            match op {
                CmpOp::Eq => ord == Ordering::Equal,
                CmpOp::Ne => ord != Ordering::Equal,
                CmpOp::Lt => ord == Ordering::Less,
                CmpOp::Le => ord != Ordering::Greater,
                CmpOp::Gt => ord == Ordering::Greater,
                CmpOp::Ge => ord != Ordering::Less,
                CmpOp::In | CmpOp::NotIn => false,
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Num(f64),
    Text(String),
    Ident(String),
    Op(&'static str),
    LParen,
    RParen,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Num(n) => write!(f, "number {n}"),
            Kind::Text(s) => write!(f, "string {s:?}"),
            Kind::Ident(s) => write!(f, "`{s}`"),
            Kind::Op(o) => write!(f, "`{o}`"),
            Kind::LParen => f.write_str("`(`"),
            Kind::RParen => f.write_str("`)`"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    kind: Kind,
    column: usize,
}

fn lex(expr: &str) -> Result<Vec<Token>, WhereError> {
    let err = |column: usize, message: String| WhereError {
        expr: expr.to_string(),
        column,
        message,
    };
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let kind = match c {
            '(' => {
                i += 1;
                Kind::LParen
            }
            ')' => {
                i += 1;
                Kind::RParen
            }
            '"' | '\'' => {
                i += 1;
                let mut s = String::new();
                loop {
                    match chars.get(i) {
                        None => return Err(err(start, "unterminated string".into())),
                        Some(&q) if q == c => break,
                        Some('\\') if chars.get(i + 1).is_some() => {
                            s.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                i += 1;
                Kind::Text(s)
            }
            '=' | '!' | '<' | '>' => {
                let two = chars.get(i + 1) == Some(&'=');
                let op = match (c, two) {
                    ('=', true) => "==",
                    ('!', true) => "!=",
                    ('<', true) => "<=",
                    ('>', true) => ">=",
                    ('<', false) => "<",
                    ('>', false) => ">",
                    ('=', false) => return Err(err(start, "`=` is written `==`".into())),
                    _ => return Err(err(start, "`!` is written `!=` or `not`".into())),
                };
                i += if two { 2 } else { 1 };
                Kind::Op(op)
            }
            c if c.is_ascii_digit() || c == '.' || c == '-' => {
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_')
                {
                    // Exponents: 1e-3.
                    if (chars[i] == 'e' || chars[i] == 'E')
                        && matches!(chars.get(i + 1), Some('-') | Some('+'))
                    {
                        i += 1;
                    }
                    i += 1;
                }
                let text: String = chars[start..i].iter().filter(|&&c| c != '_').collect();
                let n = text
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| err(start, format!("{text:?} is not a number")))?;
                Kind::Num(n)
            }
            c if c.is_alphabetic() || c == '_' => {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                Kind::Ident(chars[start..i].iter().collect())
            }
            other => return Err(err(start, format!("unexpected character {other:?}"))),
        };
        out.push(Token {
            kind,
            column: start,
        });
    }
    Ok(out)
}

struct Parser<'a> {
    expr: &'a str,
    tokens: Vec<Token>,
    at: usize,
}

impl Parser<'_> {
    fn error(&self, column: usize, message: String) -> WhereError {
        WhereError {
            expr: self.expr.to_string(),
            column,
            message,
        }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn end_column(&self) -> usize {
        self.expr.chars().count()
    }

    fn keyword(&mut self, word: &str) -> bool {
        match self.peek() {
            Some(Token {
                kind: Kind::Ident(w),
                ..
            }) if w.eq_ignore_ascii_case(word) => {
                self.at += 1;
                true
            }
            _ => false,
        }
    }

    fn or(&mut self) -> Result<Node, WhereError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            let right = self.and()?;
            left = Node::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, WhereError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            let right = self.unary()?;
            left = Node::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, WhereError> {
        if self.keyword("not") {
            return Ok(Node::Not(Box::new(self.unary()?)));
        }
        if let Some(Token {
            kind: Kind::LParen,
            column,
        }) = self.peek()
        {
            let open = *column;
            self.at += 1;
            let inner = self.or()?;
            return match self.peek() {
                Some(Token {
                    kind: Kind::RParen, ..
                }) => {
                    self.at += 1;
                    Ok(inner)
                }
                Some(t) => Err(self.error(t.column, format!("expected `)`, found {}", t.kind))),
                None => Err(self.error(open, "this `(` is never closed".into())),
            };
        }
        self.cmp()
    }

    fn operand(&mut self) -> Result<(Operand, usize), WhereError> {
        let Some(t) = self.peek().cloned() else {
            return Err(self.error(
                self.end_column(),
                "expected a field, number or string, found the end".into(),
            ));
        };
        self.at += 1;
        let op = match t.kind {
            Kind::Num(n) => Operand::Num(n),
            Kind::Text(s) => Operand::Text(s),
            Kind::Ident(name) => {
                let field = FIELDS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, f)| *f)
                    .ok_or_else(|| {
                        let known: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).collect();
                        self.error(
                            t.column,
                            format!(
                                "unknown field `{name}` (fields: {}; quote text: \"{name}\")",
                                known.join(", ")
                            ),
                        )
                    })?;
                Operand::Field(field)
            }
            other => {
                return Err(self.error(
                    t.column,
                    format!("expected a field, number or string, found {other}"),
                ));
            }
        };
        Ok((op, t.column))
    }

    fn cmp(&mut self) -> Result<Node, WhereError> {
        let (left, lcol) = self.operand()?;
        let (op, opcol) = match self.peek().cloned() {
            Some(Token {
                kind: Kind::Op(o),
                column,
            }) => {
                self.at += 1;
                let op = match o {
                    "==" => CmpOp::Eq,
                    "!=" => CmpOp::Ne,
                    "<" => CmpOp::Lt,
                    "<=" => CmpOp::Le,
                    ">" => CmpOp::Gt,
                    _ => CmpOp::Ge,
                };
                (op, column)
            }
            Some(Token {
                kind: Kind::Ident(w),
                column,
            }) if w.eq_ignore_ascii_case("in") => {
                self.at += 1;
                (CmpOp::In, column)
            }
            Some(Token {
                kind: Kind::Ident(w),
                column,
            }) if w.eq_ignore_ascii_case("not") => {
                self.at += 1;
                if !self.keyword("in") {
                    return Err(self.error(column, "expected `not in`".into()));
                }
                (CmpOp::NotIn, column)
            }
            Some(t) => {
                return Err(self.error(
                    t.column,
                    format!(
                        "expected a comparison (==, !=, <, <=, >, >=, in), found {}",
                        t.kind
                    ),
                ));
            }
            None => {
                return Err(self.error(
                    self.end_column(),
                    "expected a comparison (==, !=, <, <=, >, >=, in) after this".into(),
                ));
            }
        };
        let (right, rcol) = self.operand()?;
        let (lt, rt) = (left.ty(), right.ty());
        match op {
            CmpOp::In | CmpOp::NotIn => {
                if lt != Ty::Text {
                    return Err(self.error(lcol, format!("`in` needs text on its left, not {lt}")));
                }
                if rt == Ty::Num {
                    return Err(self.error(
                        rcol,
                        "`in` needs a list (sig_name, units, comments) or text on its right".into(),
                    ));
                }
            }
            _ => {
                if lt == Ty::List || rt == Ty::List {
                    let col = if lt == Ty::List { lcol } else { rcol };
                    return Err(self.error(
                        col,
                        "a list cannot be compared; use `\"NAME\" in sig_name`".into(),
                    ));
                }
                if lt != rt {
                    return Err(self.error(opcol, format!("cannot compare {lt} with {rt}")));
                }
            }
        }
        Ok(Node::Cmp(left, op, right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> RecordInfo {
        RecordInfo {
            name: "records500/00000/00001_hr".into(),
            fs: 500.0,
            sig_len: Some(5000),
            sig_name: ["I", "II", "V1"].iter().map(|s| s.to_string()).collect(),
            units: vec!["mV".into(); 3],
            comments: vec!["age: 56".into()],
            base_date: None,
            base_time: Some("10:00:00".into()),
            segments: Vec::new(),
            files: vec![("records500/00000/00001_hr.dat".into(), Some(60000))],
            headers: vec![("records500/00000/00001_hr.hea".into(), Some(500))],
            error: None,
        }
    }

    macro_rules! matches_table {
        ($($expr:expr => $want:expr),* $(,)?) => {{
            let r = rec();
            $(
                let f = Filter::parse($expr).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(f.matches(&r), $want, "{}", $expr);
            )*
        }};
    }

    #[test]
    fn evaluates() {
        matches_table! {
            "fs == 500" => true,
            "fs == 500 and \"V1\" in sig_name and duration >= 10" => true,
            "fs == 500 and 'V2' in sig_name" => false,
            "'V2' not in sig_name" => true,
            "not (fs < 500) and duration == 10.0" => true,
            "fs == 100 or sig_len > 4999" => true,
            "n_sig >= 3 and size == 60500 and n_seg == 0" => true,
            "\"_hr\" in record" => true,
            "record == \"records500/00000/00001_hr\"" => true,
            "base_date == '2000-01-01'" => false,
            "base_date != '2000-01-01'" => false,
            "base_time >= \"09:00:00\"" => true,
            "'age: 56' in comments" => true,
            "duration < 1e3" => true,
            "fs == 500 AND 'I' IN sig_name" => true, // keywords in any case
        }
    }

    #[test]
    fn errors_carry_a_column() {
        for (expr, column, what) in [
            ("fs = 500", 3, "`==`"),
            ("fs == \"500\"", 3, "cannot compare a number with text"),
            ("V1 in sig_name", 0, "unknown field `V1`"),
            ("fs == 500 and", 13, "found the end"),
            ("(fs == 500", 0, "never closed"),
            ("fs 500", 3, "expected a comparison"),
            ("sig_name == 'V1'", 0, "list cannot be compared"),
            ("fs in sig_name", 0, "`in` needs text"),
            ("'x' in fs", 7, "list"),
            ("fs == 500 )", 10, "unexpected `)`"),
            ("'abc", 0, "unterminated"),
            ("fs == 5x", 6, "not a number"),
        ] {
            let e = Filter::parse(expr).unwrap_err();
            assert_eq!(e.column, column, "{expr}: {e}");
            assert!(e.message.contains(what), "{expr}: {e}");
            assert!(e.to_string().contains(&format!("column {}", column + 1)));
        }
    }
}

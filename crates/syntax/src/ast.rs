//! The syntax tree of a .kcl file. Every node an error can point at carries its [`Span`].
//! Comments are not in the tree: they are kept beside it in [`File::comments`] and put
//! back by position when formatting.
//!
//! Names (identifiers, block labels) are [`Name`]s, which keep up to 23 bytes inline: the
//! tree of a large configuration holds hundreds of thousands of them, and as `String`s each
//! was an allocation to make, to follow when it is read, and to free.

use crate::diag::Span;

/// A name or label as written: up to 23 bytes inline (almost every one), so a tree of a
/// large configuration does not allocate each of its thousands of names.
pub use smol_str::SmolStr as Name;

#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub body: Body,
    pub comments: Vec<Comment>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    pub span: Span,
    /// The comment as written, delimiters included.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Body {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Attribute(Attribute),
    Block(Block),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Attribute(a) => a.span,
            Item::Block(b) => b.span,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub kind: Ident,
    pub labels: Vec<Label>,
    pub body: Body,
    pub span: Span,
}

impl Block {
    /// The block's header (`node_group "workers"`), where "missing attribute" errors point.
    pub fn header(&self) -> Span {
        self.labels.last().map_or(self.kind.span, |l| self.kind.span.to(l.span))
    }
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.body.attributes()
    }
    pub fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.body.blocks()
    }
}

impl Body {
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.items.iter().filter_map(|i| match i {
            Item::Attribute(a) => Some(a),
            Item::Block(_) => None,
        })
    }
    pub fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.items.iter().filter_map(|i| match i {
            Item::Block(b) => Some(b),
            Item::Attribute(_) => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: Name,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The label with escapes resolved.
    pub value: Name,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Range,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Range => "..",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TemplatePart {
    Lit(String),
    Interp(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ObjectKey {
    /// A bare identifier key: `team = …`.
    Ident(Ident),
    /// Any other key expression: a string, or `(expr)`.
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObjectItem {
    pub key: ObjectKey,
    pub value: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ForExpr {
    /// The key variable in `for k, v in …`; `None` in `for v in …`.
    pub key_var: Option<Ident>,
    pub value_var: Ident,
    pub collection: Expr,
    /// The key expression of an object `for`; `None` for a list `for`.
    pub key: Option<Expr>,
    pub value: Expr,
    /// `...` after the value: group values with the same key into lists.
    pub grouping: bool,
    pub cond: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Number(f64),
    /// Milliseconds.
    Duration(u64),
    Percent(f64),
    Template(Vec<TemplatePart>),
    Heredoc {
        marker: String,
        indent: bool,
        parts: Vec<TemplatePart>,
    },
    List(Vec<Expr>),
    Object(Vec<ObjectItem>),
    /// A bare name: the root of a reference (`var`, `local`, `each`, `cluster`, a `for` variable)
    /// or a type keyword (`string`) where a type is expected.
    Variable(Ident),
    GetAttr(Box<Expr>, Ident),
    Index(Box<Expr>, Box<Expr>),
    Call(Ident, Vec<Expr>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Conditional(Box<Expr>, Box<Expr>, Box<Expr>),
    For(Box<ForExpr>),
    Paren(Box<Expr>),
}

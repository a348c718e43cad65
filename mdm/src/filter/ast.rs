//! What a filter is made of: operators, values, terms. Built by `parser`, read by `eval`.

use super::fields::{Field, FieldKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `~`: the value contains the text.
    Contains,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "~",
        }
    }

    pub(super) fn allowed(kind: FieldKind) -> &'static [Op] {
        match kind {
            FieldKind::Text => &[Op::Eq, Op::Ne, Op::Contains],
            FieldKind::Version => &[Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Contains],
            FieldKind::Bool => &[Op::Eq, Op::Ne],
        }
    }
}

/// A term's value, checked against its field's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Lowercased (text comparisons ignore case); also a version field's `~` text.
    Text(String),
    Version(String),
    Bool(bool),
}

/// `field op value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub field: &'static Field,
    pub op: Op,
    pub value: Value,
}

/// A parsed filter: its terms, all of which must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub(super) text: String,
    pub(super) terms: Vec<Term>,
}

impl Filter {
    /// The filter as given (trimmed).
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn terms(&self) -> &[Term] {
        &self.terms
    }
}

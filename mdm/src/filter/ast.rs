//! What a filter is made of: operators, values, terms. Built by `parser`, read by `eval`.

use super::fields::{Answer, Field, FieldKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

    pub(super) fn allowed(field: &Field) -> &'static [Op] {
        if field.answer == Answer::Qualifier {
            // One app's version: `!=` and `~` would read as "some other app".
            return &[Op::Eq, Op::Lt, Op::Le, Op::Gt, Op::Ge];
        }
        match field.kind {
            FieldKind::Text => &[Op::Eq, Op::Ne, Op::Contains],
            FieldKind::Version => &[Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Contains],
            FieldKind::Bool => &[Op::Eq, Op::Ne],
        }
    }
}

/// A term's value, checked against its field's kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// Lowercased (text comparisons ignore case); also a version field's `~` text.
    Text(String),
    Version(String),
    Bool(bool),
}

/// `field op value`, and for an `app` term the `app_version` terms right after it: one app
/// must satisfy them all (`app = "com.microsoft.Excel" and app_version < 16.80`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Term {
    pub field: &'static Field,
    pub op: Op,
    pub value: Value,
    /// `(op, version)` pairs (never `!=` or `~`).
    pub versions: Vec<(Op, String)>,
}

impl Term {
    /// The term a [`super::Facts::lookup`] answers: `!=` asks the `=` question (and negates
    /// its answer), so `app != X` and `app = X` share one query.
    pub fn positive(&self) -> Term {
        let mut t = self.clone();
        if t.op == Op::Ne {
            t.op = Op::Eq;
        }
        t
    }
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

    /// The terms [`super::Facts::lookup`] answers, as asked ([`Term::positive`]).
    pub fn lookups(&self) -> impl Iterator<Item = Term> + '_ {
        self.terms
            .iter()
            .filter(|t| t.field.answer == Answer::Lookup)
            .map(Term::positive)
    }

    /// Does any term name this field?
    pub fn names(&self, field: &str) -> bool {
        self.terms.iter().any(|t| t.field.name == field)
    }
}

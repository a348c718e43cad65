//! A [`Filter`] tested against one device's facts.

use super::ast::{Filter, Op, Term, Value};
use super::fields::{Answer, FieldKind};
use super::version::compare_versions;
use std::borrow::Cow;
use std::cmp::Ordering;

/// What a device's facts say for one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact<'a> {
    /// Not reported (or not known) for this device.
    Missing,
    /// A text or version field.
    Text(Cow<'a, str>),
    Bool(bool),
    /// A field with several values (installed apps, groups): a term holds if it holds for
    /// one of them (`!=`: for none).
    Many(Vec<Cow<'a, str>>),
}

/// A device as a filter sees it. Must answer every field of [`super::FIELDS`].
pub trait Facts {
    /// A [`Answer::Row`] field's value.
    fn fact(&self, field: &str) -> Fact<'_>;

    /// Whether the device is among those a [`Answer::Lookup`] term (as [`Term::positive`]
    /// gives it) finds; `None` when the term was not looked up, which reads as "not found".
    fn lookup(&self, _term: &Term) -> Option<bool> {
        None
    }
}

impl Filter {
    /// Do these facts pass every term?
    pub fn matches(&self, facts: &dyn Facts) -> bool {
        self.terms().iter().all(|t| t.matches(facts))
    }
}

impl Term {
    pub fn matches(&self, facts: &dyn Facts) -> bool {
        if self.field.answer == Answer::Lookup {
            return if self.op == Op::Ne {
                !facts.lookup(&self.positive()).unwrap_or(false)
            } else {
                facts.lookup(self).unwrap_or(false)
            };
        }
        let fact = facts.fact(self.field.name);
        match self.op {
            // The exact negation of `=`, unreported facts included.
            Op::Ne => !self.holds(Op::Eq, &fact),
            op => self.holds(op, &fact),
        }
    }

    fn holds(&self, op: Op, fact: &Fact<'_>) -> bool {
        match fact {
            Fact::Missing if self.field.kind == FieldKind::Text => self.holds_for(op, ""),
            Fact::Missing => false,
            Fact::Text(v) if v.is_empty() && self.field.kind == FieldKind::Version => false,
            Fact::Text(v) => self.holds_for(op, v),
            Fact::Bool(b) => op == Op::Eq && self.value == Value::Bool(*b),
            Fact::Many(vs) => vs.iter().any(|v| self.holds_for(op, v)),
        }
    }

    fn holds_for(&self, op: Op, have: &str) -> bool {
        match &self.value {
            Value::Text(want) => {
                let have = have.to_lowercase();
                match op {
                    Op::Contains => have.contains(want.as_str()),
                    _ => have == *want,
                }
            }
            Value::Version(want) => {
                let o = compare_versions(have, want);
                match op {
                    Op::Eq => o == Ordering::Equal,
                    Op::Lt => o == Ordering::Less,
                    Op::Le => o != Ordering::Greater,
                    Op::Gt => o == Ordering::Greater,
                    Op::Ge => o != Ordering::Less,
                    // `!=` is answered by the caller; `~` on a version is text.
                    Op::Ne | Op::Contains => false,
                }
            }
            Value::Bool(_) => false,
        }
    }
}

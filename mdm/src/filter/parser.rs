//! Tokens → a checked [`Filter`]: every field known, every operator allowed for its field's
//! kind, every value of the right kind. What is left for evaluation cannot fail.

use super::ast::{Filter, Op, Term, Value};
use super::fields::{APP_VERSION, Answer, FIELDS, Field, FieldKind, field};
use super::lexer::{Kind, Token, tokens};
use super::version::is_version;
use super::{FilterError, MAX_FILTER_LEN};

fn err(position: usize, term: &str, expected: impl Into<String>) -> FilterError {
    FilterError {
        position,
        term: term.to_owned(),
        expected: expected.into(),
    }
}

fn field_names() -> String {
    FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        if text.len() > MAX_FILTER_LEN {
            let at = text.floor_char_boundary(MAX_FILTER_LEN);
            return Err(err(
                at,
                &text[at..],
                format!("the end of the filter (at most {MAX_FILTER_LEN} bytes)"),
            ));
        }
        let toks = tokens(text)?;
        let mut p = Parser {
            text,
            toks: &toks,
            at: 0,
        };
        let mut terms: Vec<Term> = Vec::new();
        let mut push = |(term, start): (Term, usize)| -> Result<(), FilterError> {
            if term.field.answer != Answer::Qualifier {
                terms.push(term);
                return Ok(());
            }
            // `app_version` narrows the `app` term before it: one app must satisfy both.
            match terms.last_mut() {
                Some(app) if app.field.name == "app" => {
                    if let Value::Version(v) = term.value {
                        app.versions.push((term.op, v));
                    }
                    Ok(())
                }
                _ => Err(err(
                    start,
                    APP_VERSION,
                    format!(
                        "an app term before {APP_VERSION} (`app = \"com.microsoft.Excel\" and \
                         {APP_VERSION} < 16.80`)"
                    ),
                )),
            }
        };
        push(p.term()?)?;
        loop {
            match p.next() {
                None => break,
                Some(t) if matches!(&t.kind, Kind::Word(w) if w.eq_ignore_ascii_case("and")) => {
                    push(p.term()?)?;
                }
                Some(t) => {
                    let also = match &t.kind {
                        Kind::Word(w) if w.eq_ignore_ascii_case("or") => {
                            " (terms are joined by `and` only)"
                        }
                        _ => "",
                    };
                    return Err(err(
                        t.start,
                        p.source(t),
                        format!("`and` or the end of the filter{also}"),
                    ));
                }
            }
        }
        Ok(Filter {
            text: text.trim().to_owned(),
            terms,
        })
    }
}

struct Parser<'a> {
    text: &'a str,
    toks: &'a [Token],
    at: usize,
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Option<&'a Token> {
        let t = self.toks.get(self.at);
        self.at += 1;
        t
    }

    fn source(&self, t: &Token) -> &'a str {
        &self.text[t.start..t.end]
    }

    fn end(&self) -> usize {
        self.text.len()
    }

    /// One term and the byte position it starts at.
    fn term(&mut self) -> Result<(Term, usize), FilterError> {
        let names = || format!("a field name ({})", field_names());
        let (field, at) = match self.next() {
            None => return Err(err(self.end(), "", names())),
            Some(t) => match &t.kind {
                Kind::Word(w) => (field(w).ok_or_else(|| err(t.start, w, names()))?, t.start),
                _ => return Err(err(t.start, self.source(t), names())),
            },
        };
        let allowed = Op::allowed(field);
        let ops = allowed
            .iter()
            .map(|o| o.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let op = match self.next() {
            None => return Err(err(self.end(), "", format!("an operator ({ops})"))),
            Some(t) => match &t.kind {
                Kind::Op(op) if allowed.contains(op) => *op,
                Kind::Op(_) => {
                    return Err(err(
                        t.start,
                        self.source(t),
                        format!(
                            "an operator for the {} field {} ({ops})",
                            field.kind.as_str(),
                            field.name
                        ),
                    ));
                }
                _ => {
                    return Err(err(t.start, self.source(t), format!("an operator ({ops})")));
                }
            },
        };
        let (raw, start) = match self.next() {
            None => return Err(err(self.end(), "", expected_value(field, op))),
            Some(t) => match &t.kind {
                Kind::Word(w) | Kind::Quoted(w) => (w.as_str(), t.start),
                Kind::Op(_) => {
                    return Err(err(t.start, self.source(t), expected_value(field, op)));
                }
            },
        };
        let bad = || err(start, raw, expected_value(field, op));
        let value = match (field.kind, op) {
            (FieldKind::Text, _) | (FieldKind::Version, Op::Contains) => {
                Value::Text(raw.to_lowercase())
            }
            (FieldKind::Version, _) if is_version(raw) => Value::Version(raw.to_owned()),
            (FieldKind::Version, _) => return Err(bad()),
            (FieldKind::Bool, _) => Value::Bool(parse_bool(raw).ok_or_else(bad)?),
        };
        Ok((
            Term {
                field,
                op,
                value,
                versions: Vec::new(),
            },
            at,
        ))
    }
}

fn expected_value(field: &Field, op: Op) -> String {
    match (field.kind, op) {
        (FieldKind::Text, _) | (FieldKind::Version, Op::Contains) => "a value".into(),
        (FieldKind::Version, _) => format!("a version for {}, like 14.6 or 15.0.1", field.name),
        (FieldKind::Bool, _) => format!("true or false for {}", field.name),
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    }
}

//! Filter text → tokens, each with the byte span it came from (for errors).

use super::FilterError;
use super::ast::Op;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// A bare word: a field name, `and`, or an unquoted value.
    Word(String),
    /// A quoted value, unescaped.
    Quoted(String),
    Op(Op),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub kind: Kind,
    /// Byte offsets into the filter text.
    pub start: usize,
    pub end: usize,
}

const OP_CHARS: &[char] = &['=', '!', '<', '>', '~'];

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && c != '"' && c != '\'' && !OP_CHARS.contains(&c)
}

pub(super) fn tokens(text: &str) -> Result<Vec<Token>, FilterError> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' || c == '\'' {
            let quote = c;
            chars.next();
            let mut value = String::new();
            let mut closed = None;
            while let Some((i, ch)) = chars.next() {
                if ch == '\\' {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                } else if ch == quote {
                    closed = Some(i + 1);
                    break;
                } else {
                    value.push(ch);
                }
            }
            let Some(end) = closed else {
                return Err(FilterError {
                    position: start,
                    term: text[start..].to_owned(),
                    expected: format!("a closing {c} after the quoted value"),
                });
            };
            out.push(Token {
                kind: Kind::Quoted(value),
                start,
                end,
            });
            continue;
        }
        if OP_CHARS.contains(&c) {
            chars.next();
            let next = chars.peek().map(|&(_, n)| n);
            let (op, len) = match (c, next) {
                ('!', Some('=')) => (Op::Ne, 2),
                ('<', Some('=')) => (Op::Le, 2),
                ('>', Some('=')) => (Op::Ge, 2),
                ('=', _) => (Op::Eq, 1),
                ('<', _) => (Op::Lt, 1),
                ('>', _) => (Op::Gt, 1),
                ('~', _) => (Op::Contains, 1),
                _ => {
                    return Err(FilterError {
                        position: start,
                        term: c.to_string(),
                        expected: "an operator (= != < <= > >= ~); a lone ! is none".into(),
                    });
                }
            };
            if len == 2 {
                chars.next();
            }
            out.push(Token {
                kind: Kind::Op(op),
                start,
                end: start + len,
            });
            continue;
        }
        let mut end = start;
        while let Some(&(i, c)) = chars.peek() {
            if !is_word_char(c) {
                break;
            }
            end = i + c.len_utf8();
            chars.next();
        }
        out.push(Token {
            kind: Kind::Word(text[start..end].to_owned()),
            start,
            end,
        });
    }
    Ok(out)
}

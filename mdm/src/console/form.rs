//! What the catalog pages' forms share: which field a service's refusal is about (the
//! services name it first, `field: why`, so the reason can be shown next to that field), and
//! names made safe for a path segment of a link (group and image names may hold spaces, `&`,
//! `+`, `'`).

use axum::http::StatusCode;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters kept as they are in a path segment: the unreserved ones.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `name` as one path segment (`/groups/{segment}`).
pub fn segment(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

/// A refusal to show beside a form field: the field's name, the API's status and message.
#[derive(Debug, Clone)]
pub struct FieldRefusal {
    pub field: &'static str,
    pub status: StatusCode,
    pub message: String,
}

impl FieldRefusal {
    /// The field of `fields` the refusal's message names first (`field: …` or `field
    /// …`, as the services write them), else `fallback`.
    pub fn new(
        (status, message): (StatusCode, String),
        fields: &[&'static str],
        fallback: &'static str,
    ) -> FieldRefusal {
        let field = named_field(&message, fields).unwrap_or(fallback);
        FieldRefusal {
            field,
            status,
            message,
        }
    }

    /// The message when the refusal is about `field`.
    pub fn on(&self, field: &str) -> Option<&str> {
        (self.field == field).then_some(self.message.as_str())
    }
}

/// The first of `fields` that `message` starts with, followed by `:`, `.` or a space; the
/// longest first, so `apple_silicon.url` wins over `apple_silicon`.
fn named_field(message: &str, fields: &[&'static str]) -> Option<&'static str> {
    let mut by_length: Vec<&'static str> = fields.to_vec();
    by_length.sort_by_key(|f| std::cmp::Reverse(f.len()));
    by_length.into_iter().find(|f| {
        message
            .strip_prefix(*f)
            .is_some_and(|rest| rest.starts_with(':') || rest.starts_with(' '))
    })
}

/// What a form's error slot shows for `field`: the message, or nothing.
pub fn error_on(refusal: &Option<FieldRefusal>, field: &str) -> Option<String> {
    refusal
        .as_ref()
        .and_then(|r| r.on(field))
        .map(str::to_owned)
}

/// A text field as given, `None` when blank.
pub fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// "1 Mac", "2 Macs".
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Serial numbers or UDIDs typed one per line, or separated by commas or spaces.
pub fn device_list(raw: &str) -> Vec<String> {
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_lands_on_the_field_it_names() {
        let fields = ["apple_silicon", "apple_silicon.url", "name", "deadline"];
        let r = |m: &str| FieldRefusal::new((StatusCode::BAD_REQUEST, m.into()), &fields, "name");
        assert_eq!(r("apple_silicon.url: not a URL").field, "apple_silicon.url");
        assert_eq!(
            r("deadline: 2020-01-01T00:00:00 has passed").field,
            "deadline"
        );
        assert_eq!(r("group name \"\": a group needs a name").field, "name");
        assert_eq!(r("namespace: other").field, "name", "the fallback");
        assert_eq!(r("deadline: x").on("deadline"), Some("deadline: x"));
        assert_eq!(r("deadline: x").on("name"), None);
    }

    #[test]
    fn names_become_one_path_segment() {
        assert_eq!(segment("Design & Web"), "Design%20%26%20Web");
        assert_eq!(segment("a/b?c#d"), "a%2Fb%3Fc%23d");
        assert_eq!(segment("com.acme.dock-1_x~"), "com.acme.dock-1_x~");
    }

    #[test]
    fn device_lists_split_on_lines_commas_and_spaces() {
        assert_eq!(
            device_list("C02X, C02Y\nUDID-1  \n"),
            ["C02X", "C02Y", "UDID-1"]
        );
        assert!(device_list(" \n, ").is_empty());
        assert_eq!(count(1u32, "Mac"), "1 Mac");
        assert_eq!(count(0u32, "group"), "0 groups");
    }
}

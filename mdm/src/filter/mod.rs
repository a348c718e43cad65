//! The device filter language (contract v2, "Device search"): what smart groups and
//! `GET /api/v1/devices?filter=` select devices with. Pure: text in, a [`Filter`] out, and a
//! filter tested against any [`Facts`]; no store, no HTTP.
//!
//! ```text
//! filter = term { "and" term }
//! term   = field op value
//! op     = "=" | "!=" | "<" | "<=" | ">" | ">=" | "~"        ("~" = contains)
//! value  = bare word | "double quoted" | 'single quoted'
//! ```
//!
//! e.g. `os_version < 15.0 and model_name = "MacBook Air"`. The rules:
//!
//! - Field names come from [`FIELDS`] (a registry features add to). Field names and `and` are
//!   case-insensitive. Terms are joined by `and` only.
//! - A bare value runs to the next space, quote or operator character; quote anything else.
//!   Inside quotes a backslash escapes the quote and itself.
//! - Text comparisons (`=`, `!=`, `~`) ignore case: serial numbers, model names and UDIDs are
//!   found however an admin types them.
//! - Versions compare component by component, as versions ([`compare_versions`]):
//!   14.10.1 > 14.9, 15 = 15.0; letters sort after digits within a component, so builds
//!   compare too (24B83 > 24A335).
//! - `app`, `group` and `console_user` hold many values per Mac; a term holds when one of them
//!   matches (`!=`: when none does). The caller answers them with one query per term
//!   ([`Facts::lookup`]). `app = "X"` matches an app whose bundle ID or name is X (errata,
//!   "Wave 2"); `app_version` terms right after an `app` term narrow it to one app:
//!   `app = "com.microsoft.Excel" and app_version < 16.80` is a Mac with an Excel older than
//!   16.80 (and with `app !=`, a Mac without one).
//! - A fact a Mac has not reported: a text field reads as `""` (`dep_profile = ""` finds Macs
//!   without a DEP profile); version and boolean comparisons are false. `!=` matches exactly
//!   what `=` does not, unreported facts included.
//!
//! Errors name the byte position (from 0) of the offending token, the token, and what was
//! expected there, so the API's 400 can point at it.

mod ast;
mod eval;
mod fields;
mod lexer;
mod parser;
mod version;

#[cfg(test)]
mod tests;

pub use ast::{Filter, Op, Term, Value};
pub use eval::{Fact, Facts};
pub use fields::{APP_VERSION, Answer, FIELDS, Field, FieldKind, field};
pub use version::{compare_versions, is_version, version_key};

/// The longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 2000;

/// Why a filter does not parse: at byte `position`, `term` (the token found there; empty at
/// the end of the text) where `expected` was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid filter at position {position} ({}): expected {expected}",
    shown(term)
)]
pub struct FilterError {
    pub position: usize,
    pub term: String,
    pub expected: String,
}

fn shown(term: &str) -> String {
    if term.is_empty() {
        "the end of the filter".to_owned()
    } else {
        format!("`{term}`")
    }
}

/// Parse a filter: [`Filter::parse`].
pub fn parse(text: &str) -> Result<Filter, FilterError> {
    Filter::parse(text)
}

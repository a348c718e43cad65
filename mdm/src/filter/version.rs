//! Versions compared as versions: macOS `OSVersion` (`14.10.1 > 14.9`, `15 = 15.0`) and,
//! by the same rule, build numbers (`24B83 > 24A335 > 23G80`).

use std::cmp::Ordering;

/// Order two version strings. Components are split on `.`; trailing zero components do not
/// count (`15` = `15.0` = `15.0.0`); a version with more components is the later one
/// (`14.1 > 14`). Within a component, runs of digits compare as numbers, other runs as
/// case-insensitive text, and a digit run sorts before a text run at the same place
/// (`10 < 10a < 11`). Total on any input: what a Mac reports is never refused.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (a, b) = (components(a), components(b));
    for (x, y) in a.iter().zip(&b) {
        match compare_component(x, y) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    a.len().cmp(&b.len())
}

/// Is `v` a version a filter may compare with: components of ASCII letters and digits, each
/// starting with a digit, joined by `.`; at most 32 characters (`15.0.1`, `24B83`, `15.0b1`).
pub fn is_version(v: &str) -> bool {
    v.len() <= 32
        && v.split('.').all(|c| {
            c.bytes().next().is_some_and(|b| b.is_ascii_digit())
                && c.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

fn components(v: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = v.trim().split('.').collect();
    while parts.last().is_some_and(|p| p.bytes().all(|b| b == b'0')) {
        parts.pop();
    }
    parts
}

#[derive(Debug)]
enum Run<'a> {
    /// Digits without leading zeros (`""` for zero).
    Number(&'a str),
    Text(&'a str),
}

fn runs(component: &str) -> Vec<Run<'_>> {
    let mut out = Vec::new();
    let mut rest = component;
    while let Some(first) = rest.chars().next() {
        let digits = first.is_ascii_digit();
        let end = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() != digits)
            .map_or(rest.len(), |(i, _)| i);
        let (run, tail) = rest.split_at(end);
        out.push(if digits {
            Run::Number(run.trim_start_matches('0'))
        } else {
            Run::Text(run)
        });
        rest = tail;
    }
    out
}

fn compare_component(a: &str, b: &str) -> Ordering {
    let (a, b) = (runs(a), runs(b));
    for (x, y) in a.iter().zip(&b) {
        let o = match (x, y) {
            // Without leading zeros, the longer number is the larger (no overflow for long
            // digit runs).
            (Run::Number(x), Run::Number(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
            (Run::Text(x), Run::Text(y)) => x
                .chars()
                .flat_map(char::to_lowercase)
                .cmp(y.chars().flat_map(char::to_lowercase)),
            (Run::Number(_), Run::Text(_)) => Ordering::Less,
            (Run::Text(_), Run::Number(_)) => Ordering::Greater,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

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

/// A text key whose byte order is the order of [`compare_versions`], for an index: a database
/// answers "Excel < 16.80" with `version_key < version_key('16.80')` on the apps table. Each
/// number run is `0`, its length in two digits, its digits; each text run is `1` and the text
/// lowercased; every run ends in `\x02` and components are joined by `\x01` (below every
/// printable byte, so a shorter component or version sorts first, as `compare_versions` says).
/// Compare keys bytewise (PostgreSQL: `COLLATE "C"`). Control characters are dropped.
pub fn version_key(v: &str) -> String {
    let mut key = String::new();
    for (i, component) in components(v).iter().enumerate() {
        if i > 0 {
            key.push('\u{1}');
        }
        for run in runs(component) {
            match run {
                Run::Number(n) => {
                    // Runs of more than 99 digits sort as 99-digit ones (no real version has one).
                    key.push('0');
                    key.push_str(&format!("{:02}", n.len().min(99)));
                    key.push_str(n);
                }
                Run::Text(t) => {
                    key.push('1');
                    key.extend(
                        t.chars()
                            .flat_map(char::to_lowercase)
                            .filter(|c| !c.is_control()),
                    );
                }
            }
            key.push('\u{2}');
        }
    }
    key
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
            // digit runs); past 99 digits, as `version_key` sorts them.
            (Run::Number(x), Run::Number(y)) => {
                x.len().min(99).cmp(&y.len().min(99)).then_with(|| x.cmp(y))
            }
            // Control characters do not count, as in `version_key`: the filter's answer and
            // the database index's must agree (found by `tests/tests/hostile_input.rs`).
            (Run::Text(x), Run::Text(y)) => x
                .chars()
                .flat_map(char::to_lowercase)
                .filter(|c| !c.is_control())
                .cmp(
                    y.chars()
                        .flat_map(char::to_lowercase)
                        .filter(|c| !c.is_control()),
                ),
            (Run::Number(_), Run::Text(_)) => Ordering::Less,
            (Run::Text(_), Run::Number(_)) => Ordering::Greater,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

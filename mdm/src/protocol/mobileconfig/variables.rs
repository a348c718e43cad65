//! Per-device variables in configuration profiles, expanded when a profile is delivered.
//!
//! In any string value of an unsigned profile (not in dictionary keys, not in `<data>`):
//!
//! - `$NAME` or `${NAME}` is a variable. `NAME` is upper-case letters, digits and `_`, starting
//!   with a letter, and must be one Russet knows ([`Variable`]); any other name is refused at
//!   upload, so a typo (`$SERIALNUMBER`) cannot reach a Mac as literal text. Use `${NAME}` when
//!   the text right after the variable is a letter, digit or `_`: `${SERIAL}_mac`.
//! - `$$` right before a name or `{` is a literal `$`: `$$HOME` delivers `$HOME`.
//! - every other `$` is literal (`pa$$word`, `$5`, `US$`), untouched.
//!
//! A signed profile is delivered byte for byte, so it cannot carry variables (expanding them
//! would break the signature); one that names a known variable is refused at upload.

use std::collections::BTreeSet;
use std::fmt;

use plist::Value;

/// A variable Russet can fill in for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Variable {
    /// The Mac's serial number.
    Serial,
    /// The Mac's UDID (its device-channel enrollment ID).
    Udid,
    /// The device name the Mac last reported.
    DeviceName,
    /// The short name of the user whose channel the profile is installed on (user profiles
    /// only: a system profile has no user).
    UserShortName,
}

impl Variable {
    pub const ALL: [Variable; 4] = [
        Variable::Serial,
        Variable::Udid,
        Variable::DeviceName,
        Variable::UserShortName,
    ];

    /// The name as written after `$`.
    pub fn name(self) -> &'static str {
        match self {
            Variable::Serial => "SERIAL",
            Variable::Udid => "UDID",
            Variable::DeviceName => "DEVICE_NAME",
            Variable::UserShortName => "USER_SHORT_NAME",
        }
    }

    pub fn from_name(name: &str) -> Option<Variable> {
        Variable::ALL.into_iter().find(|v| v.name() == name)
    }

    /// `$SERIAL, $UDID, $DEVICE_NAME, $USER_SHORT_NAME`, for messages.
    pub fn known_list() -> String {
        Variable::ALL
            .iter()
            .map(|v| format!("${}", v.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.name())
    }
}

/// The values of one device (and, for a user profile, one user channel).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceVars {
    pub serial: Option<String>,
    pub udid: Option<String>,
    pub device_name: Option<String>,
    pub user_short_name: Option<String>,
}

impl DeviceVars {
    fn get(&self, v: Variable) -> Option<&str> {
        match v {
            Variable::Serial => self.serial.as_deref(),
            Variable::Udid => self.udid.as_deref(),
            Variable::DeviceName => self.device_name.as_deref(),
            Variable::UserShortName => self.user_short_name.as_deref(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExpandError {
    /// The profile uses a variable this device (or channel) has no value for.
    #[error("the profile uses {0}, which has no value for this device")]
    Missing(Variable),
    /// The stored template is not a plist (a damaged database, or a signed profile).
    #[error("the stored profile is not an XML plist: {0}")]
    Template(String),
}

/// One piece of a string value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token<'a> {
    Text(&'a str),
    /// `$NAME` or `${NAME}`: the name, known or not.
    Reference(&'a str),
    /// `$$` before a name: one literal `$`.
    Escape,
}

fn name_len(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(b) if b.is_ascii_uppercase() => bytes
            .iter()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_')
            .count(),
        _ => 0,
    }
}

/// Splits a string into text, references and escapes (the rules at the top of this file).
/// Only ASCII bytes are matched, so every slice falls on a character boundary.
pub(super) fn tokens<'a>(s: &'a str) -> Vec<Token<'a>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut start) = (0, 0);
    let cut = |out: &mut Vec<Token<'a>>, from: usize, to: usize| {
        if from < to {
            out.push(Token::Text(&s[from..to]));
        }
    };
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        let next = b.get(i + 1).copied();
        let after = b.get(i + 2).copied();
        if next == Some(b'$') && after.is_some_and(|c| c.is_ascii_uppercase() || c == b'{') {
            cut(&mut out, start, i);
            out.push(Token::Escape);
            i += 2;
            start = i;
            continue;
        }
        if next == Some(b'{') {
            let n = name_len(&b[i + 2..]);
            if n > 0 && b.get(i + 2 + n) == Some(&b'}') {
                cut(&mut out, start, i);
                out.push(Token::Reference(&s[i + 2..i + 2 + n]));
                i += 3 + n;
                start = i;
                continue;
            }
        } else {
            let n = name_len(&b[i + 1..]);
            if n > 0 {
                cut(&mut out, start, i);
                out.push(Token::Reference(&s[i + 1..i + 1 + n]));
                i += 1 + n;
                start = i;
                continue;
            }
        }
        i += 1;
    }
    cut(&mut out, start, b.len());
    out
}

/// What the strings of a profile hold: known variables, unknown names (with their key
/// paths), and whether anything would change on expansion.
#[derive(Debug, Default)]
pub(super) struct Scan {
    pub known: BTreeSet<Variable>,
    /// (key path, known variable) for every use, e.g. to refuse them in a signed profile.
    pub uses: Vec<(String, Variable)>,
    /// (key path, name) of `$NAME`s that are no variable.
    pub unknown: Vec<(String, String)>,
    pub escapes: bool,
}

impl Scan {
    /// Expansion would change the profile: it must be expanded per device.
    pub fn templated(&self) -> bool {
        !self.known.is_empty() || self.escapes
    }
}

/// Scans every string value under `value`; `path` names it (`PayloadContent[0].Password`).
pub(super) fn scan(value: &Value, path: &str, out: &mut Scan) {
    match value {
        Value::String(s) => {
            for t in tokens(s) {
                match t {
                    Token::Reference(name) => match Variable::from_name(name) {
                        Some(v) => {
                            out.known.insert(v);
                            out.uses.push((path.to_string(), v));
                        }
                        None => out.unknown.push((path.to_string(), name.to_string())),
                    },
                    Token::Escape => out.escapes = true,
                    Token::Text(_) => {}
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                scan(item, &format!("{path}[{i}]"), out);
            }
        }
        Value::Dictionary(d) => {
            for (k, v) in d {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                scan(v, &p, out);
            }
        }
        _ => {}
    }
}

fn expand_string(s: &str, vars: &DeviceVars) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(s.len());
    for t in tokens(s) {
        match t {
            Token::Text(text) => out.push_str(text),
            Token::Escape => out.push('$'),
            Token::Reference(name) => match Variable::from_name(name) {
                Some(v) => out.push_str(vars.get(v).ok_or(ExpandError::Missing(v))?),
                // Refused at upload; never expanded into something else.
                None => {
                    out.push('$');
                    out.push_str(name);
                }
            },
        }
    }
    Ok(out)
}

/// Expands every string value under `value` in place.
pub fn expand_value(value: &mut Value, vars: &DeviceVars) -> Result<(), ExpandError> {
    match value {
        Value::String(s) => *s = expand_string(s, vars)?,
        Value::Array(items) => {
            for item in items {
                expand_value(item, vars)?;
            }
        }
        Value::Dictionary(d) => {
            for (_, v) in d.iter_mut() {
                expand_value(v, vars)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The profile for one device: the stored (unsigned, XML) template with its variables filled
/// in and its `$$` escapes resolved, as an XML plist. The template was validated at upload.
pub fn expand(template: &[u8], vars: &DeviceVars) -> Result<Vec<u8>, ExpandError> {
    crate::protocol::check_plist(template, crate::protocol::MAX_DEPTH)
        .map_err(|e| ExpandError::Template(e.to_string()))?;
    let mut value =
        Value::from_reader_xml(template).map_err(|e| ExpandError::Template(e.to_string()))?;
    expand_value(&mut value, vars)?;
    let mut out = Vec::with_capacity(template.len());
    value
        .to_writer_xml(&mut out)
        .map_err(|e| ExpandError::Template(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> DeviceVars {
        DeviceVars {
            serial: Some("C02XK1ZZJG5H".into()),
            udid: Some("0000FE00-1234-5678-9ABC-DEF012345678".into()),
            device_name: Some("Ana's MacBook <Air> & Co".into()),
            user_short_name: None,
        }
    }

    #[test]
    fn references_escapes_and_plain_dollars() {
        assert_eq!(
            tokens("a $SERIAL ${UDID}_x $$HOME pa$$word $5 US$"),
            vec![
                Token::Text("a "),
                Token::Reference("SERIAL"),
                Token::Text(" "),
                Token::Reference("UDID"),
                Token::Text("_x "),
                Token::Escape,
                Token::Text("HOME pa$$word $5 US$"),
            ]
        );
        // A name runs as far as it can: `$SERIAL_X` is one (unknown) name.
        assert_eq!(tokens("$SERIAL_X"), vec![Token::Reference("SERIAL_X")]);
        // An unclosed or lower-case brace is text.
        assert_eq!(tokens("${SERIAL"), vec![Token::Text("${SERIAL")]);
        assert_eq!(tokens("${home}"), vec![Token::Text("${home}")]);
        assert_eq!(
            tokens("$${SERIAL}"),
            vec![Token::Escape, Token::Text("{SERIAL}")]
        );
        assert_eq!(
            tokens("ünï$UDID"),
            vec![Token::Text("ünï"), Token::Reference("UDID")]
        );
    }

    #[test]
    fn expansion_fills_values_and_resolves_escapes() {
        let s = "Mac $DEVICE_NAME (${SERIAL}) $$HOME pa$$word";
        assert_eq!(
            expand_string(s, &vars()).unwrap(),
            "Mac Ana's MacBook <Air> & Co (C02XK1ZZJG5H) $HOME pa$$word"
        );
        assert_eq!(
            expand_string("$USER_SHORT_NAME", &vars()),
            Err(ExpandError::Missing(Variable::UserShortName))
        );
    }

    #[test]
    fn expand_rewrites_a_whole_profile_and_escapes_xml() {
        let template =
            include_bytes!("../../../testdata/profiles/loginwindow-variables.mobileconfig");
        let out = expand(template, &vars()).unwrap();
        let v = Value::from_reader_xml(out.as_slice()).unwrap();
        let text = v
            .as_dictionary()
            .and_then(|d| d.get("PayloadContent"))
            .and_then(Value::as_array)
            .and_then(|a| a[0].as_dictionary())
            .and_then(|d| d.get("LoginwindowText"))
            .and_then(Value::as_string)
            .unwrap();
        assert_eq!(
            text,
            "Property of ACME Corp · Ana's MacBook <Air> & Co (serial C02XK1ZZJG5H) · call \
             $HELPDESK on 555-0100"
        );
        // The device name's `<` and `&` are escaped in the XML, not written raw.
        let xml = String::from_utf8(out).unwrap();
        assert!(xml.contains("&lt;Air&gt; &amp; Co"), "{xml}");
        assert!(expand(b"not a plist", &vars()).is_err());
    }

    #[test]
    fn scan_finds_paths_of_known_and_unknown_names() {
        let mut d = plist::Dictionary::new();
        d.insert("A".into(), Value::String("$UDID and $HOME".into()));
        d.insert(
            "B".into(),
            Value::Array(vec![
                Value::String("$$X".into()),
                Value::Data(b"$UDID".to_vec()),
            ]),
        );
        let mut s = Scan::default();
        scan(&Value::Dictionary(d), "", &mut s);
        assert_eq!(s.known, BTreeSet::from([Variable::Udid]));
        assert_eq!(s.unknown, vec![("A".to_string(), "HOME".to_string())]);
        assert!(s.escapes && s.templated());
    }
}

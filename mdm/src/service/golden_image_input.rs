//! What an admin may give for a golden image, checked and normalised: pure, no store. Each
//! refusal names the field (`name`, `description`, `apple_silicon.url`, `intel.sha256`, …), so
//! the 400 says what to fix.
//!
//! The seed guide's golden image: a name and an optional description (both shown to users in
//! Parallels Desktop), and per architecture a download URL ("HTTP/HTTPS, no authentication")
//! and the image's SHA-256 checksum (64 hex). Admins copy the checksum from `shasum -a 256`
//! output or from a `.sha256.txt` file published next to the image, so both are accepted.

pub const MAX_NAME_CHARS: usize = 128;
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Longer URLs are not links an admin pastes; browsers and proxies start to refuse near here.
pub const MAX_URL_CHARS: usize = 2048;

/// A refused field: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn refuse<T>(field: &str, message: impl Into<String>) -> Result<T, FieldError> {
    Err(FieldError {
        field: field.to_owned(),
        message: message.into(),
    })
}

/// The two architectures a golden image may carry an image for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    AppleSilicon,
    Intel,
}

impl Arch {
    /// The key in the API's JSON and the prefix of the field names in errors.
    pub fn key(self) -> &'static str {
        match self {
            Arch::AppleSilicon => "apple_silicon",
            Arch::Intel => "intel",
        }
    }
}

/// An image of one architecture, checked: an http(s) URL with a host, and the SHA-256 as 64
/// lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSource {
    pub url: String,
    pub sha256: String,
}

/// A name: trimmed, 1 to 128 characters, none of them a control character (it is shown to
/// users and printed in tables).
pub fn name(raw: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    if name.is_empty() {
        return refuse("name", "a golden image needs a name");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return refuse("name", format!("at most {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return refuse("name", "printable characters only");
    }
    Ok(name.to_owned())
}

/// A description: trimmed, empty means none, at most 1000 characters; line breaks and tabs
/// are kept (the seed guide's example: "needs VPN"), other control characters are refused.
pub fn description(raw: Option<&str>) -> Result<Option<String>, FieldError> {
    let Some(d) = raw.map(str::trim).filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    if d.chars().count() > MAX_DESCRIPTION_CHARS {
        return refuse(
            "description",
            format!("at most {MAX_DESCRIPTION_CHARS} characters"),
        );
    }
    if d.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return refuse(
            "description",
            "printable characters, line breaks and tabs only",
        );
    }
    Ok(Some(d.to_owned()))
}

/// An image of `arch`: its URL and checksum, each checked.
pub fn source(arch: Arch, url_raw: &str, sha256_raw: &str) -> Result<ImageSource, FieldError> {
    Ok(ImageSource {
        url: url(&format!("{}.url", arch.key()), url_raw)?,
        sha256: sha256(&format!("{}.sha256", arch.key()), sha256_raw)?,
    })
}

/// A download URL: `http` or `https` (any case), a host, an optional port, no user name or
/// password (the seed guide: "no authentication"; a password in a URL would also be shown
/// to every user the image is offered to), no spaces or control characters. Kept as given,
/// trimmed.
pub fn url(field: &str, raw: &str) -> Result<String, FieldError> {
    let url = raw.trim();
    if url.is_empty() {
        return refuse(field, "a download URL is required");
    }
    if url.chars().count() > MAX_URL_CHARS {
        return refuse(field, format!("at most {MAX_URL_CHARS} characters"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse(
            field,
            "no spaces or control characters (percent-encode them)",
        );
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return refuse(field, "not a URL: expected http://host/… or https://host/…");
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return refuse(
            field,
            format!("scheme {scheme:?} is not allowed: http or https only"),
        );
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return refuse(
            field,
            "no user name or password in the URL: the image must download without \
             authentication",
        );
    }
    let (host, port) = split_host_port(authority);
    if host.is_empty() {
        return refuse(field, "the URL has no host");
    }
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        // An IPv6 literal.
        inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        host.chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.' || c == '_' || c == '%')
    };
    if !host_ok {
        return refuse(field, format!("{host:?} is not a host name"));
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return refuse(field, format!("{port:?} is not a port (1–65535)"));
    }
    // The last word is the downloader's: a host like `p.%1` passes the checks above but is no
    // URL `reqwest` can fetch (found by `tests/tests/hostile_input.rs`).
    if let Err(e) = reqwest::Url::parse(url) {
        return refuse(field, format!("not a URL the download can use: {e}"));
    }
    Ok(url.to_owned())
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => {
                let (host, rest) = authority.split_at(end + 1);
                (host, rest.strip_prefix(':'))
            }
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

/// A SHA-256 checksum, stored as 64 lowercase hex. Accepted as:
/// - the bare 64 hex digits (any case);
/// - a line of `shasum -a 256` / `sha256sum` output, `HASH  path` or `HASH *path` (binary
///   mode), or the content of a `.sha256.txt` file holding such lines: the first token of
///   the first non-empty line;
/// - BSD `sha256 -r`'s sibling, `SHA256 (path) = HASH` (macOS `shasum --tag`, `openssl
///   dgst -sha256`'s `SHA2-256(path)= HASH`): the text after the last `=`.
pub fn sha256(field: &str, raw: &str) -> Result<String, FieldError> {
    let text = raw.trim_start_matches('\u{feff}');
    let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return refuse(field, "a SHA-256 checksum (64 hex digits) is required");
    };
    // `sha256sum` puts a backslash before the hash when it escaped the file name.
    let first = line
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_start_matches('\\');
    let candidate = if !first.chars().all(|c| c.is_ascii_hexdigit()) && line.contains(")") {
        line.rsplit('=').next().unwrap_or_default().trim()
    } else {
        first
    };
    if !candidate.chars().all(|c| c.is_ascii_hexdigit()) {
        return refuse(
            field,
            format!(
                "{:?} is not a SHA-256 checksum: 64 hex digits expected (`shasum -a 256 FILE` \
                 prints it)",
                shorten(candidate)
            ),
        );
    }
    if candidate.len() != 64 {
        return refuse(
            field,
            format!(
                "a SHA-256 checksum has exactly 64 hex digits, this one has {}",
                candidate.len()
            ),
        );
    }
    Ok(candidate.to_ascii_lowercase())
}

fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
    const LOWER: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn field_of<T: std::fmt::Debug>(r: Result<T, FieldError>) -> String {
        match r {
            Err(e) => e.field,
            Ok(v) => panic!("accepted: {v:?}"),
        }
    }

    #[test]
    fn names_are_trimmed_printable_and_bounded() {
        assert_eq!(name("  Dev VM  ").unwrap(), "Dev VM");
        assert_eq!(
            name("Entwicklung – macOS 15").unwrap(),
            "Entwicklung – macOS 15"
        );
        assert_eq!(field_of(name("")), "name");
        assert_eq!(field_of(name("   ")), "name");
        assert_eq!(field_of(name("a\u{7}b")), "name");
        assert_eq!(field_of(name("line\nbreak")), "name");
        assert!(name(&"x".repeat(MAX_NAME_CHARS)).is_ok());
        assert_eq!(field_of(name(&"x".repeat(MAX_NAME_CHARS + 1))), "name");
    }

    #[test]
    fn descriptions_are_optional_and_bounded() {
        assert_eq!(description(None).unwrap(), None);
        assert_eq!(description(Some("  ")).unwrap(), None);
        assert_eq!(
            description(Some(" needs VPN\nask IT ")).unwrap().as_deref(),
            Some("needs VPN\nask IT")
        );
        assert!(description(Some(&"d".repeat(MAX_DESCRIPTION_CHARS))).is_ok());
        assert_eq!(
            field_of(description(Some(&"d".repeat(MAX_DESCRIPTION_CHARS + 1)))),
            "description"
        );
        assert_eq!(field_of(description(Some("bell\u{7}"))), "description");
    }

    #[test]
    fn urls_are_http_or_https_with_a_host() {
        for ok in [
            "https://images.example.com/dev.pvmp",
            "HTTP://images.example.com:8080/a/b.zip?x=1#y",
            "http://10.0.0.5/vm.zip",
            "https://[2001:db8::1]:8443/vm.zip",
            "https://host",
        ] {
            assert_eq!(url("f", ok).unwrap(), ok, "{ok}");
        }
        assert_eq!(
            url("f", " https://a.example/x ").unwrap(),
            "https://a.example/x"
        );
        for bad in [
            "",
            "ftp://images.example.com/dev.pvmp",
            "file:///tmp/vm.zip",
            "images.example.com/dev.pvmp",
            "https:///path",
            "https://:443/path",
            "https://user:secret@images.example.com/vm.zip",
            "https://a.example/with space",
            "https://a.example:0/x",
            "https://a.example:99999/x",
            "https://a.example:port/x",
            "https://[::1/x",
            "https://a<b>.example/x",
        ] {
            let e = url("intel.url", bad).unwrap_err();
            assert_eq!(e.field, "intel.url", "{bad}");
        }
        let e = url("apple_silicon.url", "ftp://a.example/x").unwrap_err();
        assert!(e.message.contains("http or https"), "{e}");
        assert_eq!(e.to_string().split(':').next(), Some("apple_silicon.url"));
    }

    #[test]
    fn checksums_accept_shasum_lines_and_files_and_are_stored_lowercase() {
        for ok in [
            HEX.to_owned(),
            LOWER.to_owned(),
            format!("  {HEX}  "),
            format!("{HEX}  Dev VM.pvmp.zip"),
            format!("{HEX} *dev.pvmp.zip"),
            format!("\n\n{LOWER}  dev.zip\n{}  other.zip\n", "0".repeat(64)),
            format!("\u{feff}{LOWER}  dev.zip\r\n"),
            format!("SHA256 (dev.zip) = {LOWER}"),
            format!("SHA2-256(dev.zip)= {HEX}"),
        ] {
            assert_eq!(sha256("f", &ok).unwrap(), LOWER, "{ok:?}");
        }
        for bad in [
            String::new(),
            "\n  \n".to_owned(),
            HEX[..63].to_owned(),
            format!("{HEX}0"),
            format!("{}g", &LOWER[..63]),
            format!("sha256:{LOWER}"),
            format!("./dev.zip  {LOWER}"),
        ] {
            assert_eq!(
                field_of(sha256("intel.sha256", &bad)),
                "intel.sha256",
                "{bad:?}"
            );
        }
        let e = sha256("f", &LOWER[..63]).unwrap_err();
        assert!(e.message.contains("exactly 64"), "{e}");
    }

    #[test]
    fn a_source_names_its_architecture_in_errors() {
        let s = source(Arch::Intel, "https://a.example/x", HEX).unwrap();
        assert_eq!(s.sha256, LOWER);
        assert_eq!(
            field_of(source(Arch::AppleSilicon, "ftp://a/x", HEX)),
            "apple_silicon.url"
        );
        assert_eq!(
            field_of(source(Arch::Intel, "https://a/x", "abc")),
            "intel.sha256"
        );
    }
}

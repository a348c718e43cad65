//! The network side of golden images (issue 15): the HEAD check on create or change and the
//! download behind `golden-image verify`. The rules (which URLs, what is audited) are
//! `service::golden_images`'; this module only talks HTTP and judges one answer.
//!
//! - The HEAD check is advice, never a refusal: an image host may be unreachable from the
//!   server yet reachable from the Macs (or the reverse), so its outcome is a warning.
//! - The download is hashed chunk by chunk (`openssl::sha::Sha256`) and never held whole in
//!   memory; it is bounded in time (connect, stall, total) and in size, and follows at most
//!   [`MAX_REDIRECTS`] redirects.

use openssl::sha::Sha256;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use std::time::{Duration, Instant};

/// Redirects followed (a CDN link usually takes one or two).
pub const MAX_REDIRECTS: usize = 5;
/// The HEAD check must not hold up a create for long.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// No byte for this long: the server has stalled.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// The whole download of one image (VM images are tens of GiB; a slow link needs hours).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(4 * 3600);
/// More than any VM image; a server that streams without end is cut off here.
pub const MAX_IMAGE_BYTES: u64 = 512 * 1024 * 1024 * 1024;
/// Progress is reported at most this often in bytes…
const PROGRESS_BYTES: u64 = 1024 * 1024;
/// …or in time, whichever comes first.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .read_timeout(READ_TIMEOUT.min(timeout))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .user_agent(concat!("russet/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {}", chain(&e)))
}

/// An error and its causes on one line (reqwest's own text is only "error sending request").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Does a redirect from `from` to `to` look like a sign-in page instead of a file: another
/// host, and a path with a login word in it (an image behind authentication, which Macs
/// cannot download).
pub fn looks_like_login_redirect(from: &reqwest::Url, to: &reqwest::Url) -> bool {
    if from.host_str() == to.host_str() {
        return false;
    }
    let path = to.path().to_ascii_lowercase();
    ["login", "signin", "sign-in", "sso", "auth"]
        .iter()
        .any(|w| path.contains(w))
}

/// A HEAD request to `url`: `None` when it answers like a direct download link, otherwise
/// why not (unreachable, not 2xx, an HTML page, a redirect to a sign-in page).
pub async fn head_warning(url: &str) -> Option<String> {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Some("not a URL".into());
    };
    let client = match client(HEAD_TIMEOUT) {
        Ok(c) => c,
        Err(e) => return Some(e),
    };
    let mut resp = match client.head(parsed.clone()).send().await {
        Ok(r) => r,
        Err(e) => return Some(format!("not reachable from the server: {}", chain(&e))),
    };
    // Some servers (object stores with GET-only signatures, minimal file servers) refuse HEAD:
    // ask for the first byte instead, so a good link is not warned about. Its body is not read.
    let refused = [
        reqwest::StatusCode::METHOD_NOT_ALLOWED,
        reqwest::StatusCode::NOT_IMPLEMENTED,
        reqwest::StatusCode::FORBIDDEN,
    ];
    if refused.contains(&resp.status())
        && let Ok(r) = client
            .get(parsed.clone())
            .header(reqwest::header::RANGE, "bytes=0-0")
            .send()
            .await
    {
        resp = r;
    }
    let end = resp.url().clone();
    if looks_like_login_redirect(&parsed, &end) {
        return Some(format!(
            "redirects to what looks like a sign-in page ({end}); Macs download without \
             authentication, so use a direct link"
        ));
    }
    let status = resp.status();
    if !status.is_success() {
        return Some(format!(
            "the server answered HTTP {status} to a HEAD request"
        ));
    }
    let html = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    if html {
        return Some(
            "answers a web page (Content-Type: text/html), not a file: use the direct \
             download link"
                .into(),
        );
    }
    None
}

/// Bytes received so far, and the size announced (Content-Length) when there is one.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub bytes: u64,
    pub total: Option<u64>,
}

/// A download hashed to the end.
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub sha256: String,
    pub bytes: u64,
}

/// GET `url` and hash it as it arrives; `on_progress` is called about every MiB or second.
/// An error names what went wrong (not reachable, not 2xx, cut off, too big).
pub async fn download_sha256(
    url: &str,
    mut on_progress: impl FnMut(Progress),
) -> Result<Downloaded, String> {
    let client = client(DOWNLOAD_TIMEOUT)?;
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("not reachable: {}", chain(&e)))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("the server answered HTTP {status}"));
    }
    let total = resp
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if total.is_some_and(|t| t > MAX_IMAGE_BYTES) {
        return Err(format!(
            "the server announces more than {MAX_IMAGE_BYTES} bytes"
        ));
    }
    let mut hasher = Sha256::new();
    let mut bytes: u64 = 0;
    let mut reported_bytes: u64 = 0;
    let mut reported_at = Instant::now();
    on_progress(Progress { bytes, total });
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                return Err(format!(
                    "the download broke off after {bytes} bytes: {}",
                    chain(&e)
                ));
            }
        };
        bytes += chunk.len() as u64;
        if bytes > MAX_IMAGE_BYTES {
            return Err(format!("more than {MAX_IMAGE_BYTES} bytes; stopped"));
        }
        hasher.update(&chunk);
        if bytes - reported_bytes >= PROGRESS_BYTES || reported_at.elapsed() >= PROGRESS_EVERY {
            on_progress(Progress { bytes, total });
            reported_bytes = bytes;
            reported_at = Instant::now();
        }
    }
    if reported_bytes != bytes {
        on_progress(Progress { bytes, total });
    }
    let sha256 = hasher.finish().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Downloaded { sha256, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).expect("test URL")
    }

    #[test]
    fn a_redirect_to_another_hosts_sign_in_page_looks_like_a_login() {
        let from = url("https://files.example.com/img.pvmp.zip");
        for to in [
            "https://login.microsoftonline.com/common/oauth2/authorize",
            "https://idp.example.net/SSO/saml",
            "https://accounts.example.org/signin?next=x",
            "https://example.org/Login.aspx",
        ] {
            assert!(looks_like_login_redirect(&from, &url(to)), "{to}");
        }
    }

    #[test]
    fn a_cdn_redirect_or_the_same_host_is_no_login() {
        let from = url("https://files.example.com/img.pvmp.zip");
        // Another host, a plain file path: a CDN.
        assert!(!looks_like_login_redirect(
            &from,
            &url("https://cdn.example.net/a/b/img.pvmp.zip")
        ));
        // The same host: the admin's own server, whatever the path says.
        assert!(!looks_like_login_redirect(
            &from,
            &url("https://files.example.com/login/img.zip")
        ));
    }
}

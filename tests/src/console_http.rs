//! The web console over plain HTTP, for what a browser would hide: the redirects, cookies,
//! headers and refusals themselves (a form posted without its CSRF token, a role's refused
//! action). Redirects are not followed, so a test sees each one.

use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

/// An answer from the console.
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// Where a redirect points.
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    /// The CSRF token of the page's forms (`name="csrf" value="…"`).
    pub fn csrf(&self) -> Option<String> {
        let at = self.body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
        let rest = &self.body[at..];
        Some(rest[..rest.find('"')?].to_string())
    }
}

/// A console client: the session cookie once signed in.
pub struct ConsoleClient {
    pub base: String,
    http: reqwest::Client,
    pub cookie: Option<String>,
}

impl ConsoleClient {
    pub fn new(base: &str) -> ConsoleClient {
        ConsoleClient {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("http client"),
            cookie: None,
        }
    }

    async fn page(resp: reqwest::Response) -> anyhow::Result<Page> {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await?;
        Ok(Page {
            status,
            headers,
            body,
        })
    }

    /// `POST /signin` with `token`; keeps the session cookie it sets. The answer (a 303 to the
    /// dashboard when the token is good).
    pub async fn sign_in(&mut self, token: &str) -> anyhow::Result<Page> {
        let resp = self
            .http
            .post(format!("{}/signin", self.base))
            .form(&[("token", token), ("next", "/")])
            .send()
            .await?;
        let page = Self::page(resp).await?;
        if let Some(set) = page.headers.get(SET_COOKIE).and_then(|v| v.to_str().ok())
            && let Some(pair) = set.split(';').next()
        {
            self.cookie = Some(pair.to_string());
        }
        Ok(page)
    }

    /// `GET path` with the session cookie (if any).
    pub async fn get(&self, path: &str) -> anyhow::Result<Page> {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header(COOKIE, c);
        }
        Self::page(req.send().await?).await
    }

    /// `POST path` with a urlencoded form (the `csrf` field is the caller's to add or leave out).
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> anyhow::Result<Page> {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(fields);
        if let Some(c) = &self.cookie {
            req = req.header(COOKIE, c);
        }
        Self::page(req.send().await?).await
    }

    /// `POST path` as htmx sends it: the CSRF token in `X-CSRF-Token`, `HX-Request: true`.
    pub async fn post_htmx(
        &self,
        path: &str,
        csrf: &str,
        fields: &[(&str, &str)],
    ) -> anyhow::Result<Page> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-csrf-token", csrf)
            .header("hx-request", "true")
            .form(fields);
        if let Some(c) = &self.cookie {
            req = req.header(COOKIE, c);
        }
        Self::page(req.send().await?).await
    }

    /// The CSRF token of this session, read off the dashboard.
    pub async fn csrf(&self) -> anyhow::Result<String> {
        self.get("/")
            .await?
            .csrf()
            .ok_or_else(|| anyhow::anyhow!("no CSRF token on the dashboard"))
    }
}

//! A real browser for the console's end-to-end tests: Debian's `chromium`, headless, driven
//! through `chromedriver` (WebDriver) by `fantoccini`. Each [`Browser`] has its own driver
//! process and empty profile; at most [`MAX_BROWSERS`] run at once (a test binary runs its
//! tests in parallel, and a Chromium is heavy on a 2-core machine).
//!
//! Tests that use it are compiled as ignored where `chromedriver` is not on `PATH`
//! (`cfg(russet_no_browser)`, see `build.rs` and [`crate::in_browser_on_both_backends`]).

use anyhow::{Context, anyhow};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Browsers at once, across the tests of one test binary.
pub const MAX_BROWSERS: usize = 2;
static SLOTS: Semaphore = Semaphore::const_new(MAX_BROWSERS);
/// How long a wait for something on a page lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// The chromium binary: `RUSSET_TEST_CHROMIUM` or Debian's.
fn chromium() -> String {
    std::env::var("RUSSET_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One headless Chromium on the console at `base` (`http://127.0.0.1:PORT`).
pub struct Browser {
    pub client: Client,
    pub base: String,
    _profile: tempfile::TempDir,
    _driver: Driver,
    _slot: SemaphorePermit<'static>,
}

impl Browser {
    /// Start chromedriver and a headless Chromium (a window the size of a laptop screen).
    pub async fn start(base: &str) -> anyhow::Result<Browser> {
        let slot = SLOTS.acquire().await.context("browser slots")?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver (apt-get install chromium-driver)")?;
        let driver = Driver(driver);
        let profile = tempfile::tempdir()?;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-extensions",
                    "--window-size=1366,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        let client = loop {
            match ClientBuilder::native()
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                // chromedriver takes a moment to listen.
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(anyhow!("connecting to chromedriver: {e}")),
            }
        };
        Ok(Browser {
            client,
            base: base.trim_end_matches('/').to_string(),
            _profile: profile,
            _driver: driver,
            _slot: slot,
        })
    }

    /// Open `path` on the console.
    pub async fn goto(&self, path: &str) -> anyhow::Result<()> {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .with_context(|| format!("opening {path}"))
    }

    /// Sign in with an admin token on the sign-in page and land on the dashboard.
    pub async fn sign_in(&self, token: &str) -> anyhow::Result<()> {
        self.goto("/signin").await?;
        self.fill("#token", token).await?;
        self.click("form button[type=submit]").await?;
        self.wait_for("header.top .who").await?;
        Ok(())
    }

    /// The path (and query) of the page shown now.
    pub async fn path(&self) -> anyhow::Result<String> {
        let url = self.client.current_url().await?;
        Ok(match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        })
    }

    /// The element `css` matches, waiting for it to appear (htmx swaps take a moment).
    pub async fn wait_for(&self, css: &str) -> anyhow::Result<Element> {
        let page = self.path().await.unwrap_or_default();
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("waiting for {css} on {page}"))
    }

    /// Wait until the element `css` matches contains `text`; its whole text then.
    pub async fn wait_text(&self, css: &str, text: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await
                && let Ok(t) = el.text().await
                && t.contains(text)
            {
                return Ok(t);
            }
            if Instant::now() > deadline {
                let now = self.text(css).await.unwrap_or_default();
                return Err(anyhow!("{css} never showed {text:?}; it shows {now:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The visible text of the element `css` matches (waiting for it).
    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        Ok(self.wait_for(css).await?.text().await?)
    }

    /// Type `value` into the field `css` matches, replacing what it held.
    pub async fn fill(&self, css: &str, value: &str) -> anyhow::Result<()> {
        let el = self.wait_for(css).await?;
        el.clear().await?;
        el.send_keys(value).await?;
        Ok(())
    }

    /// Choose the option whose value is `value` in the `<select>` `css` matches.
    pub async fn select(&self, css: &str, value: &str) -> anyhow::Result<()> {
        self.wait_for(css)
            .await?
            .select_by_value(value)
            .await
            .with_context(|| format!("selecting {value} in {css}"))
    }

    /// Click the element `css` matches.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.wait_for(css).await?.click().await?;
        Ok(())
    }

    /// Whether anything on the page matches `css` now (no waiting).
    pub async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// Attach a local file to the `<input type=file>` `css` matches.
    pub async fn attach(&self, css: &str, file: &std::path::Path) -> anyhow::Result<()> {
        let el = self.wait_for(css).await?;
        el.send_keys(&file.display().to_string()).await?;
        Ok(())
    }

    /// Save a PNG of the page as `docs/console/<name>.png` when `RUSSET_CONSOLE_SCREENSHOTS`
    /// names the repository's root (how the README's pictures are made); otherwise nothing.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<()> {
        let Ok(root) = std::env::var("RUSSET_CONSOLE_SCREENSHOTS") else {
            return Ok(());
        };
        let png = self.client.screenshot().await?;
        let dir = PathBuf::from(root).join("docs/console");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{name}.png")), png)?;
        Ok(())
    }

    /// End the browser session (the driver process stops when this is dropped).
    pub async fn close(self) -> anyhow::Result<()> {
        self.client.clone().close().await?;
        Ok(())
    }
}

/// Run each `async fn(Backend)` browser scenario on SQLite and on PostgreSQL, compiled as
/// ignored where there is no `chromedriver` (and PostgreSQL's when it is opted out), on a
/// multi-threaded runtime.
#[macro_export]
macro_rules! in_browser_on_both_backends {
    ($($name:ident),* $(,)?) => {
        /// Browser scenarios (`browser::sqlite::…`, `browser::postgres::…`), beside any
        /// `on_both_backends!` ones in the same file.
        mod browser {
            mod sqlite {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    #[cfg_attr(russet_no_browser, ignore = "chromedriver is not on PATH (apt-get install chromium-driver; .ci/run installs it)")]
                    async fn $name() {
                        super::super::$name($crate::Backend::Sqlite).await
                    }
                )*
            }
            mod postgres {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    #[cfg_attr(any(russet_no_browser, russet_skip_postgres), ignore = "chromedriver is not on PATH, or RUSSET_TEST_SKIP_POSTGRES is set")]
                    async fn $name() {
                        super::super::$name($crate::Backend::Postgres).await
                    }
                )*
            }
        }
    };
}

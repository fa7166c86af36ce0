//! A real browser for the console's tests: Debian's `chromium`, driven through `chromedriver`
//! (WebDriver) with fantoccini. Headless, no sandbox (tests run as root in CI), no first-run,
//! background networking, component updates or sync, a fresh profile each time; one browser at
//! a time (`SERIAL`). Without chromium or chromedriver a test is skipped with a message, except
//! under `CI=true`, where it fails (scripts/test.sh installs both).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// One browser at a time: two cores do not run two Chromiums and a gateway well.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    /// Where this test's screenshots go.
    shots: PathBuf,
    pub base: String,
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// `target/console-screenshots` (or under `CARGO_TARGET_DIR`).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("console-screenshots")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Browser {
    /// A browser whose languages are `accept_language` (`en-US,en` or `zh-CN,zh`), its window
    /// `width`×`height`; `None` (after saying why) when Chromium is missing and CI is not set.
    pub async fn start(
        base: &str,
        test: &str,
        accept_language: &str,
        size: (u32, u32),
    ) -> Option<Browser> {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            if !std::path::Path::new(tool).exists() {
                assert!(
                    !required(),
                    "{tool} is missing (apt-get install chromium chromium-driver; scripts/test.sh does)"
                );
                eprintln!("SKIPPED: {tool} is missing (apt-get install chromium chromium-driver)");
                return None;
            }
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().expect("profile dir");
        let lang = accept_language.split(',').next().unwrap_or("en-US");
        let caps = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={},{}", size.0, size.1),
                    format!("--lang={lang}"),
                ],
                "prefs": { "intl.accept_languages": accept_language },
            }
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "no WebDriver session from chromedriver: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        let shots = screenshot_dir().join(test);
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Some(Browser {
            client,
            driver,
            _profile: profile,
            shots,
            base: base.to_string(),
        })
    }

    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("navigate");
    }

    /// The current URL's path and query.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("url");
        match url.query().filter(|q| !q.is_empty()) {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// The whole page (the window grown to its height for the shot), as `name.png`.
    pub async fn screenshot(&self, name: &str) {
        let (w, h) = self.client.get_window_size().await.expect("window size");
        let (w, h) = (w as u32, h as u32);
        let sizes = self
            .js("return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];")
            .await;
        let page = sizes[0].as_u64().unwrap_or(u64::from(h)) as u32;
        let chrome = sizes[1].as_u64().unwrap_or(0) as u32;
        let tall = (page + chrome).clamp(h, 6000);
        if tall > h {
            self.client.set_window_size(w, tall).await.expect("resize");
        }
        let png = self.client.screenshot().await.expect("screenshot");
        if tall > h {
            self.client
                .set_window_size(w, h)
                .await
                .expect("resize back");
        }
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
    }

    pub async fn text_of(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .expect("text")
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Clicks something that loads another page, and waits until that page has loaded.
    pub async fn click_and_wait(&self, css: &str) {
        self.js("window.__tgOldPage = true; return true;").await;
        self.click(css).await;
        self.wait_for(
            "window.__tgOldPage === undefined && document.readyState === 'complete'",
            Duration::from_secs(10),
            &format!("the page after clicking {css}"),
        )
        .await;
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let e = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    pub async fn source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    /// Signs in on the sign-in page the browser is at.
    pub async fn sign_in(&self, token: &str) {
        self.fill("#token", token).await;
        self.click_and_wait("form.sign-in button[type=submit]")
            .await;
    }

    /// Polls `script` (a JS expression returning a boolean) until it is true (at most `within`).
    pub async fn wait_for(&self, script: &str, within: Duration, what: &str) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.js(&format!("return !!({script});")).await == json!(true) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: never ({script})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the WebDriver session (Chromium quits) and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // After a failed test the session was not closed: the driver goes, and so do the
        // Chromium processes of this test's own profile (found by its unique directory).
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let profile = self._profile.path().display().to_string();
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for p in procs.flatten() {
                let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains(&profile) {
                    // SAFETY: a plain kill(2) of a process this test started.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
        }
    }
}

//! A real headless Chromium for the portal's browser tests, driven over the W3C WebDriver
//! protocol through chromedriver (Debian's `chromium` and `chromium-driver`; the test
//! command installs them when missing).
//!
//! The client is the handful of WebDriver calls the tests make (session, navigate, find,
//! click, type, read, run a script, screenshot) over reqwest, which the tests already
//! build: the WebDriver crates bring a Unicode segmentation stack whose build costs more
//! on a 2-core machine than these calls are long. Nothing here stands in for the browser:
//! pages load, scripts run and server-sent events arrive in Chromium itself.
//!
//! The accessibility check injects axe-core (`LEADROUTE_AXE_JS`, default
//! `.leadroute/tools/axe.min.js`, which the test command fetches) into the page.

use base64::Engine;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The chromedriver binary: `LEADROUTE_CHROMEDRIVER`, default `/usr/bin/chromedriver`.
fn chromedriver() -> String {
    std::env::var("LEADROUTE_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

/// The Chromium binary: `LEADROUTE_CHROMIUM`, default `/usr/bin/chromium`.
fn chromium() -> String {
    std::env::var("LEADROUTE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// A running chromedriver (killed when dropped).
pub struct Driver {
    url: String,
    _child: Child,
    client: reqwest::Client,
}

impl Driver {
    /// Start chromedriver on a free port and wait until it is ready.
    pub async fn start() -> Driver {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().expect("bound").port()
        };
        let child = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "browser tests need chromedriver at {} (apt-get install chromium \
                     chromium-driver; deploy/local/test.sh installs them): {e}",
                    chromedriver()
                )
            });
        let driver = Driver {
            url: format!("http://127.0.0.1:{port}"),
            _child: child,
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = driver
                .client
                .get(format!("{}/status", driver.url))
                .send()
                .await;
            if let Ok(answer) = ready {
                let body: Value = answer.json().await.unwrap_or_default();
                if body["value"]["ready"] == json!(true) {
                    return driver;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not get ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new headless Chromium whose browser asks for `language` (`Accept-Language`).
    pub async fn browser(&self, language: &str) -> Browser {
        let profile = tempfile::tempdir().expect("a profile directory");
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1280,900".into(),
            format!("--lang={language}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": args,
                "prefs": {"intl.accept_languages": language},
            },
        }}});
        let answer = self
            .client
            .post(format!("{}/session", self.url))
            .json(&capabilities)
            .send()
            .await
            .expect("chromedriver answers");
        let body: Value = answer.json().await.expect("a session answer");
        let session = body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("Chromium did not start: {body}"))
            .to_string();
        Browser {
            base: format!("{}/session/{session}", self.url),
            client: self.client.clone(),
            _profile: profile,
        }
    }
}

/// One browser window (a WebDriver session).
pub struct Browser {
    base: String,
    client: reqwest::Client,
    _profile: tempfile::TempDir,
}

/// The key of a web element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long [`Browser::wait_for`] and friends wait by default.
pub const WAIT: Duration = Duration::from_secs(10);

impl Browser {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.expect("chromedriver answers");
        let body: Value = answer.json().await.unwrap_or_default();
        body["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Open `url`.
    pub async fn goto(&self, url: &str) {
        let answer = self.post("/url", json!({ "url": url })).await;
        assert!(answer.is_null(), "navigating to {url} failed: {answer}");
    }

    /// The current address.
    pub async fn url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The document's title.
    pub async fn title(&self) -> String {
        self.get("/title")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The element `css` selects now, if any.
    pub async fn find(&self, css: &str) -> Option<String> {
        let found = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        found[ELEMENT].as_str().map(str::to_string)
    }

    /// The element `css` selects, waiting up to `timeout` for it.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(element) = self.find(css).await {
                return element;
            }
            assert!(
                Instant::now() < deadline,
                "no element {css} within {timeout:?} on {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until nothing matches `css`.
    pub async fn wait_gone(&self, css: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.find(css).await.is_some() {
            assert!(
                Instant::now() < deadline,
                "{css} still there after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Click the element `css` selects (found again when a live update replaced it
    /// between finding and clicking).
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let element = self.wait_for(css, WAIT).await;
            let answer = self
                .post(&format!("/element/{element}/click"), json!({}))
                .await;
            if answer.is_null() {
                return;
            }
            assert!(Instant::now() < deadline, "clicking {css} failed: {answer}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Type `text` into the field `css` selects.
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.wait_for(css, WAIT).await;
        let answer = self
            .post(
                &format!("/element/{element}/value"),
                json!({ "text": text }),
            )
            .await;
        assert!(answer.is_null(), "typing into {css} failed: {answer}");
    }

    /// Choose the option of value `value` in the select `css` selects.
    pub async fn select(&self, css: &str, value: &str) {
        self.click(&format!("{css} option[value=\"{value}\"]"))
            .await;
    }

    /// The visible text of the element `css` selects (read in the page, so a live update
    /// that replaces the element in between cannot make it stale).
    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css, WAIT).await;
        let read = "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';";
        self.script(read, json!([css]))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Run `script` (a function body; `arguments` are `args`) and return its value.
    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Run `script`, which calls `arguments[arguments.length - 1](value)` when done.
    pub async fn script_async(&self, script: &str, args: Value) -> Value {
        self.post("/execute/async", json!({ "script": script, "args": args }))
            .await
    }

    /// A screenshot of the window, written to `path` as PNG.
    pub async fn screenshot(&self, path: &Path) {
        let shot = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().expect("a screenshot"))
            .expect("a base64 screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("a screenshot directory");
        }
        std::fs::write(path, png).expect("the screenshot is written");
    }

    /// The serious and critical accessibility violations axe-core finds on the page, as
    /// `rule: target` lines.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        let axe = std::fs::read_to_string(axe_path()).unwrap_or_else(|e| {
            panic!(
                "the accessibility check needs axe-core at {} (LEADROUTE_AXE_JS; \
                 deploy/local/test.sh fetches it): {e}",
                axe_path().display()
            )
        });
        self.script(&format!("{axe}\nreturn true;"), json!([]))
            .await;
        let result = self
            .script_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']})
                    .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact,
                        nodes: v.nodes.map(n => n.target.join(' '))}))))
                    .catch(e => done({error: String(e)}));",
                json!([]),
            )
            .await;
        let violations = result
            .as_array()
            .unwrap_or_else(|| panic!("axe did not run: {result}"));
        violations
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .map(|v| format!("{}: {}", v["id"], v["nodes"]))
            .collect()
    }

    /// End the session.
    pub async fn close(self) {
        self.call(reqwest::Method::DELETE, "", None).await;
    }
}

/// Where axe-core's script is.
pub fn axe_path() -> PathBuf {
    std::env::var("LEADROUTE_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join(".leadroute/tools/axe.min.js"))
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

//! The Settings page in headless Chromium (Debian `chromium` + `chromium-driver`), driven over
//! WebDriver: sign in as the dev user, paste a .env with one bad line, see that line's error,
//! fix it, apply, see masked values, delete one; open a link carrying another account's token
//! and be asked before switching; a screenshot is kept in
//! `artifacts/settings-page.png`. Skips with a message when Chromium is missing, unless CI=true.

use crate::support::gateway::{TestGateway, gateway_config, unused_addr};
use crate::support::settings::{TestSettings, master_keys_text, settings_config, spawn_auth};
use crate::support::{Backend, SYNC_SECRET, TestDb};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// WebDriver's key codes (W3C WebDriver, "keyboard actions").
const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";
const SHIFT: &str = "\u{E008}";

/// A chromedriver process, killed on drop.
struct Driver {
    child: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Driver {
        let port = unused_addr().port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(response) = ready
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            "--window-size=1100,1000".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args }
        } } });
        let response: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .unwrap();
        let session = response["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {response}"))
            .to_owned();
        Driver {
            child,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response: Value = request.send().await.unwrap().json().await.unwrap();
        response["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// The element matching `css`, if any, right now.
    async fn find(&self, css: &str) -> Option<String> {
        let value = self
            .post("/element", json!({ "using": "css selector", "value": css }))
            .await;
        value[ELEMENT].as_str().map(str::to_owned)
    }

    /// Waits up to 10 s for `css` to match (and be displayed).
    async fn wait_for(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(id) = self.find(css).await
                && self
                    .call(
                        reqwest::Method::GET,
                        &format!("/element/{id}/displayed"),
                        None,
                    )
                    .await
                    == true
            {
                return id;
            }
            if started.elapsed() > Duration::from_secs(10) {
                let status = self.text_of("#status").await;
                let source = self.source().await;
                panic!("timed out waiting for {css}; page status: {status:?}\n{source}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether `css` matches a displayed element right now.
    async fn displayed(&self, css: &str) -> bool {
        let Some(id) = self.find(css).await else {
            return false;
        };
        self.call(
            reqwest::Method::GET,
            &format!("/element/{id}/displayed"),
            None,
        )
        .await
            == true
    }

    /// Waits up to 10 s for `css` to show `text`.
    async fn wait_for_text(&self, css: &str, text: &str) {
        let started = Instant::now();
        loop {
            if self.displayed(css).await && self.text_of(css).await.as_deref() == Some(text) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{css} never showed {text:?}: {:?}",
                self.text_of(css).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_gone(&self, css: &str) {
        let started = Instant::now();
        while self.find(css).await.is_some() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{css} is still there"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        let id = self.wait_for(css).await;
        self.post(&format!("/element/{id}/click"), json!({})).await;
    }

    async fn text(&self, id: &str) -> String {
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn text_of(&self, css: &str) -> Option<String> {
        let id = self.find(css).await?;
        Some(self.text(&id).await)
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.wait_for(css).await;
        self.post(&format!("/element/{id}/clear"), json!({})).await;
        self.post(&format!("/element/{id}/value"), json!({ "text": text }))
            .await;
    }

    /// Presses and releases each character of `text` in turn on the focused element, through
    /// the WebDriver actions API: the keyboard only, no element is targeted.
    async fn press(&self, text: &str) {
        let actions: Vec<Value> = text
            .chars()
            .flat_map(|key| {
                let key = key.to_string();
                [
                    json!({ "type": "keyDown", "value": key }),
                    json!({ "type": "keyUp", "value": key }),
                ]
            })
            .collect();
        self.key_actions(actions).await;
    }

    /// Holds every key of `keys` down together, then lets them go (e.g. Shift+Tab).
    async fn chord(&self, keys: &[&str]) {
        let downs = keys
            .iter()
            .map(|k| json!({ "type": "keyDown", "value": k }));
        let ups = keys
            .iter()
            .rev()
            .map(|k| json!({ "type": "keyUp", "value": k }));
        self.key_actions(downs.chain(ups).collect()).await;
    }

    async fn key_actions(&self, actions: Vec<Value>) {
        let sequence = json!([{ "type": "key", "id": "keyboard", "actions": actions }]);
        self.post("/actions", json!({ "actions": sequence })).await;
        self.call(reqwest::Method::DELETE, "/actions", None).await;
    }

    /// What has the keyboard focus: its id, or its tag and what it is for.
    async fn focused(&self) -> String {
        let script = "const a = document.activeElement; return a.id || (a.tagName.toLowerCase() + ':' + (a.dataset.name || a.getAttribute('href') || ''))";
        self.script(script)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits up to 10 s for the keyboard focus to be on `expected` (as [`Driver::focused`] names
    /// it): the page moves focus after its refresh, which ends after the status is shown.
    async fn wait_focus(&self, expected: &str) {
        let started = Instant::now();
        loop {
            let focused = self.focused().await;
            if focused == expected {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "focus never reached {expected:?}: it is on {focused:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits up to 10 s for the status line to contain `text`.
    async fn wait_status(&self, text: &str) {
        let started = Instant::now();
        loop {
            let status = self.text_of("#status").await.unwrap_or_default();
            if status.contains(text) {
                return;
            }
            if started.elapsed() > Duration::from_secs(10) {
                let focused = self.focused().await;
                panic!("the status never said {text:?}: {status:?} (focus on {focused:?})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn script(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    async fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let data = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().expect("screenshot data"))
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    async fn quit(self) {
        self.call(reqwest::Method::DELETE, "", None).await;
    }
}

fn chromium_available() -> bool {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !ci,
            "CI=true but {CHROMIUM} or {CHROMEDRIVER} is missing: run .ci/install-browser (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "skipping browser test: {CHROMIUM} / {CHROMEDRIVER} not installed (apt-get install chromium chromium-driver); set CI=true to make this fatal"
        );
    }
    present
}

const FLY: &str = "fo1_abcdefghijklmnopqrstuvwxyz";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_page_in_headless_chromium() {
    if !chromium_available() {
        return;
    }
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let listener = TestSettings::reserve().await;
    let settings_url = format!("http://{}", listener.local_addr().unwrap());
    let auth = spawn_auth(&db, Some(settings_url)).await;
    let config = settings_config(&db, &auth.url(), &master_keys_text(&["k1"]));
    let settings = TestSettings::spawn_on(config, listener, &auth).await;
    let mut config = gateway_config(&auth.url(), &settings.url());
    config.dev_session = Some(SYNC_SECRET.to_owned().into());
    let gw = TestGateway::spawn_with(config).await;

    let driver = Driver::start().await;
    driver.goto(&gw.url("/")).await;
    driver.click("#dev-signin").await;
    driver.wait_for("#import-form").await;
    let who = driver.wait_for("#who-email").await;
    assert_eq!(driver.text(&who).await, "dev@latchkey.localhost");

    // One bad line: its number and reason are shown, nothing is saved.
    let bad = format!(
        "FLY_API_TOKEN={FLY}\nTHIS LINE IS BROKEN\nOPENROUTER_API_KEY=sk-or-v1-0123456789abcdef\n"
    );
    driver.type_into("#dotenv", &bad).await;
    driver.click("#preview").await;
    let line = driver.wait_for("#bad-lines li[data-line=\"2\"]").await;
    let message = driver.text(&line).await;
    assert!(message.starts_with("Line 2"), "{message}");
    let apply = driver.find("#apply").await.unwrap();
    assert_eq!(
        driver
            .call(
                reqwest::Method::GET,
                &format!("/element/{apply}/enabled"),
                None
            )
            .await,
        false,
        "apply stays disabled after a failed preview"
    );

    // Fixed: preview lists what will be added, apply saves, the list shows masked values.
    let fixed = bad.replace("THIS LINE IS BROKEN", "THIS_LINE=fixed-value");
    driver.type_into("#dotenv", &fixed).await;
    driver.click("#preview").await;
    driver.wait_gone("#bad-lines").await;
    let summary = driver.text_of("#preview-result .summary").await.unwrap();
    assert!(summary.contains("3 to add"), "{summary}");
    driver.click("#apply").await;
    let row = driver
        .wait_for("#settings-list tr[data-name=\"FLY_API_TOKEN\"]")
        .await;
    let row_text = driver.text(&row).await;
    assert!(
        row_text.contains("wxyz") && !row_text.contains(FLY),
        "{row_text}"
    );
    driver
        .wait_for("#settings-list tr[data-name=\"THIS_LINE\"]")
        .await;
    assert!(
        !driver.source().await.contains(FLY),
        "plaintext never reaches the page"
    );

    // Delete one (two clicks: arm, confirm).
    driver
        .click("#settings-list button[data-name=\"THIS_LINE\"]")
        .await;
    driver
        .click("#settings-list button[data-name=\"THIS_LINE\"]")
        .await;
    driver
        .wait_gone("#settings-list tr[data-name=\"THIS_LINE\"]")
        .await;
    driver
        .wait_for("#settings-list tr[data-name=\"OPENROUTER_API_KEY\"]")
        .await;
    let status = driver.text_of("#status").await.unwrap_or_default();
    assert!(status.contains("Deleted THIS_LINE"), "{status}");

    driver.script("window.scrollTo(0, 0)").await;
    let artifact = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts/settings-page.png");
    driver.screenshot(&artifact).await;
    assert!(std::fs::metadata(&artifact).unwrap().len() > 1000);
    eprintln!("screenshot: {}", artifact.display());

    // Readable on a phone: same page at 390 px wide.
    driver
        .post("/window/rect", json!({ "width": 390, "height": 844 }))
        .await;
    driver
        .wait_for("#settings-list tr[data-name=\"FLY_API_TOKEN\"]")
        .await;
    driver
        .script("document.getElementById('list-title').scrollIntoView()")
        .await;
    let phone = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts/settings-page-phone.png");
    driver.screenshot(&phone).await;
    driver
        .post("/window/rect", json!({ "width": 1100, "height": 1000 }))
        .await;

    // Production path: the embedding app links to `/#token=…`; the page keeps the token in
    // sessionStorage and removes it from the address bar.
    let (_, app_token) = gw.sync_user("browser-user").await;
    driver.click("#signout").await;
    driver
        .goto(&gw.url(&format!("/?from=app#token={app_token}")))
        .await;
    let who = driver.wait_for("#who-email").await;
    let started = Instant::now();
    while driver.text(&who).await != "browser-user@example.com" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not signed in from the fragment"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let address = driver.call(reqwest::Method::GET, "/url", None).await;
    assert!(!address.as_str().unwrap().contains("token"), "{address}");

    // Login CSRF: a link carrying someone else's token does not silently replace the session;
    // the page names both accounts and keeps the current one unless told otherwise.
    let (_, other_token) = gw.sync_user("link-sender").await;
    driver
        .goto(&gw.url(&format!("/?switch=1#token={other_token}")))
        .await;
    driver.wait_for("#switch").await;
    let switch = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts/settings-page-switch.png");
    driver.screenshot(&switch).await;
    assert_eq!(
        driver.text_of("#switch-current").await.unwrap(),
        "browser-user@example.com"
    );
    assert_eq!(
        driver.text_of("#switch-new").await.unwrap(),
        "link-sender@example.com"
    );
    assert!(
        !driver.displayed("#app").await,
        "nothing can be imported before choosing"
    );
    assert_eq!(
        driver.script("return document.activeElement.id").await,
        "switch-keep",
        "keeping the current account is the default"
    );
    let address = driver.call(reqwest::Method::GET, "/url", None).await;
    assert!(!address.as_str().unwrap().contains("token"), "{address}");
    driver.click("#switch-keep").await;
    driver
        .wait_for_text("#who-email", "browser-user@example.com")
        .await;
    assert!(!driver.displayed("#switch").await);
    // Switching is a deliberate click.
    driver
        .goto(&gw.url(&format!("/?switch=2#token={other_token}")))
        .await;
    driver.click("#switch-accept").await;
    driver
        .wait_for_text("#who-email", "link-sender@example.com")
        .await;
    // A fresh token for the same user (the app renewing it) needs no question.
    let (_, renewed) = gw.sync_user("link-sender").await;
    driver
        .goto(&gw.url(&format!("/?switch=3#token={renewed}")))
        .await;
    driver
        .wait_for_text("#who-email", "link-sender@example.com")
        .await;
    assert!(!driver.displayed("#switch").await, "same user: no question");
    let stored = driver
        .script("return sessionStorage.getItem('latchkey.token')")
        .await;
    assert_eq!(stored.as_str(), Some(renewed.as_str()));

    // Errors are explained: a settings outage while signed in.
    let (_, list) = gw.get_settings("not-a-token").await;
    assert_eq!(list["code"], "TOKEN_MALFORMED");
    settings.stop().await;
    driver.click("#refresh").await;
    let started = Instant::now();
    loop {
        let status = driver.text_of("#status").await.unwrap_or_default();
        if status.contains("unavailable") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no outage message: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    driver.quit().await;
    gw.stop().await;
    auth.stop().await;
}

/// The seed app's three settings and, declared last, an optional one whose label sorts first:
/// the form must follow the declaration order, not the labels.
const BROWSER_SCHEMA: &str = r#"{
  "settings": {
    "FLY_API_TOKEN": {"label": "Fly.io API Token", "required": true, "preset": "fly_token",
                      "help": "Create one with `fly tokens create deploy`.",
                      "link": "https://fly.io/user/personal_access_tokens"},
    "OPENROUTER_API_KEY": {"label": "OpenRouter API Key", "required": true,
                           "preset": "openrouter_key", "link": "https://openrouter.ai/keys"},
    "ENCRYPTION_KEY": {"label": "Encryption Key (optional, auto-generated if empty)",
                       "generate": {"bytes": 32, "encoding": "base64"}},
    "WEBHOOK_URL": {"label": "A webhook URL (optional)", "preset": "url"}
  },
  "allow_undeclared": false
}"#;

/// The declared settings' form: the seed app's three settings declared (and one optional URL);
/// a fresh user sees what is missing first and the rest in declared order, gets a wrong-box key
/// flagged before saving, pastes a `.env` with one wrong-format key and sees that line flagged,
/// fixes it, saves, and sees nothing missing; then walks the form with Tab only (each field, its
/// links and Generate, then Save), saves a value typed + Enter and generates with Enter.
/// Screenshots at desktop and phone width go to the test's target temp dir (not committed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_declared_settings_form_in_headless_chromium() {
    use crate::declared_settings::config_with_schema;
    use latchkey_common::config as setting;
    if !chromium_available() {
        return;
    }
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let auth = spawn_auth(&db, None).await;
    let config = config_with_schema(
        &db,
        &auth.url(),
        setting::SETTINGS_SCHEMA.env(),
        BROWSER_SCHEMA.to_owned(),
    );
    let settings = TestSettings::spawn_with(config, &auth).await;
    let mut config = gateway_config(&auth.url(), &settings.url());
    config.dev_session = Some(SYNC_SECRET.to_owned().into());
    let gw = TestGateway::spawn_with(config).await;
    let fly = "fo1_T6o2yqvYx0m0Yk1Zr7cQ4JpB1nH2dS3eF4gA5bC6dE7";
    let openrouter = format!("sk-or-v1-{}", "0123456789abcdef".repeat(4));

    let driver = Driver::start().await;
    driver.goto(&gw.url("/")).await;
    driver.click("#dev-signin").await;
    driver.wait_for("#form-card").await;
    driver
        .wait_for_text(
            "#missing",
            "Still needed: Fly.io API Token, OpenRouter API Key.",
        )
        .await;
    // Missing ones first, then declared order (not by label); each a real labelled, masked
    // field; the generated key already set.
    let order = driver
        .script("return [...document.querySelectorAll('#form-fields .field')].map(f => f.dataset.name + ':' + f.dataset.state)")
        .await;
    assert_eq!(
        order,
        json!([
            "FLY_API_TOKEN:missing",
            "OPENROUTER_API_KEY:missing",
            "ENCRYPTION_KEY:set",
            "WEBHOOK_URL:empty"
        ])
    );
    let labelled = driver
        .script("return [...document.querySelectorAll('#form-fields input')].every(i => i.type === 'password' && i.labels.length === 1 && i.labels[0].textContent.length > 0)")
        .await;
    assert_eq!(
        labelled, true,
        "every field has its own <label> and is masked"
    );
    let label = driver
        .text_of("label[for=\"field-FLY_API_TOKEN\"]")
        .await
        .unwrap();
    assert_eq!(label, "Fly.io API Token (required)");
    // The table lists only undeclared settings: none.
    assert!(!driver.displayed("#settings-list tr").await);

    // The OpenRouter key in the Fly.io box: flagged as typed; Save refuses and focuses the field.
    driver.type_into("#field-FLY_API_TOKEN", &openrouter).await;
    driver.wait_for("#error-FLY_API_TOKEN").await;
    driver.click("#form-save").await;
    assert_eq!(
        driver.script("return document.activeElement.id").await,
        "field-FLY_API_TOKEN"
    );
    let page_token = driver
        .script("return sessionStorage.getItem('latchkey.token')")
        .await;
    let (_, list) = gw.get_settings(page_token.as_str().unwrap()).await;
    assert_eq!(
        list["missing"].as_array().unwrap().len(),
        2,
        "nothing saved"
    );
    driver.type_into("#field-FLY_API_TOKEN", "").await;

    // A pasted .env with one wrong-format key: its line is flagged, nothing saved.
    let bad = format!("FLY_API_TOKEN={fly}\nOPENROUTER_API_KEY=sk-or-v1-short\n");
    driver.type_into("#dotenv", &bad).await;
    driver.click("#preview").await;
    let line = driver.wait_for("#bad-lines li[data-line=\"2\"]").await;
    let message = driver.text(&line).await;
    assert!(
        message.contains("OPENROUTER_API_KEY") && message.contains("`preset`"),
        "{message}"
    );
    driver.script("window.scrollTo(0, 0)").await;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("declared-settings");
    driver.screenshot(&dir.join("flagged-desktop.png")).await;

    // Fixed: the preview marks the fields it sets; apply; nothing is missing.
    let fixed = format!("FLY_API_TOKEN={fly}\nOPENROUTER_API_KEY={openrouter}\n");
    driver.type_into("#dotenv", &fixed).await;
    driver.click("#preview").await;
    driver
        .wait_for("#form-fields .field[data-name=\"OPENROUTER_API_KEY\"][data-from-env=\"true\"]")
        .await;
    driver.click("#apply").await;
    driver
        .wait_for_text(
            "#missing",
            "Nothing missing: every required setting is set.",
        )
        .await;
    driver
        .wait_for("#form-fields .field[data-name=\"FLY_API_TOKEN\"][data-state=\"set\"]")
        .await;
    assert!(
        !driver.source().await.contains(fly),
        "values never reach the page"
    );

    // Replace one through the form, and generate a new encryption key.
    driver
        .type_into("#field-FLY_API_TOKEN", "FlyV1 fm2_replaced")
        .await;
    driver.click("#form-save").await;
    driver
        .wait_for_text(
            "#missing",
            "Nothing missing: every required setting is set.",
        )
        .await;
    // The save is done when the page has re-rendered and moved focus to the summary; a click
    // before that would land on a button the re-render replaces.
    driver.wait_status("Saved 1 setting(s).").await;
    driver.wait_focus("missing").await;
    driver
        .click(".generate[data-name=\"ENCRYPTION_KEY\"]")
        .await;
    driver.wait_status("Generated a new").await;
    driver.wait_focus("button:ENCRYPTION_KEY").await;

    // Keyboard only. From the summary line (where the page puts focus after a save), Tab walks
    // each field in declared order, its "Where to get it" link and Generate, then Save.
    driver
        .script("document.getElementById('missing').focus()")
        .await;
    let mut walk = Vec::new();
    for _ in 0..8 {
        driver.press(TAB).await;
        walk.push(driver.focused().await);
    }
    assert_eq!(
        walk,
        [
            "field-FLY_API_TOKEN",
            "a:https://fly.io/user/personal_access_tokens",
            "field-OPENROUTER_API_KEY",
            "a:https://openrouter.ai/keys",
            "field-ENCRYPTION_KEY",
            "button:ENCRYPTION_KEY",
            "field-WEBHOOK_URL",
            "form-save",
        ]
    );
    // Shift+Tab back to the webhook field, type a value, Enter: saved without a mouse.
    driver.chord(&[SHIFT, TAB]).await;
    assert_eq!(driver.focused().await, "field-WEBHOOK_URL");
    driver.press("https://hooks.example.com/latchkey").await;
    driver.press(ENTER).await;
    driver.wait_status("Saved 1 setting(s).").await;
    driver
        .wait_for("#form-fields .field[data-name=\"WEBHOOK_URL\"][data-state=\"set\"]")
        .await;
    let (_, list) = gw.get_settings(page_token.as_str().unwrap()).await;
    let webhook = list["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "WEBHOOK_URL")
        .expect("the typed value is stored");
    assert_eq!(
        webhook["length"],
        "https://hooks.example.com/latchkey".len()
    );
    assert_eq!(webhook["valid"], true);
    // After the save, focus is back on the summary; six Tabs reach Generate, Enter presses it.
    driver.wait_focus("missing").await;
    for _ in 0..6 {
        driver.press(TAB).await;
    }
    assert_eq!(driver.focused().await, "button:ENCRYPTION_KEY");
    driver.press(ENTER).await;
    driver.wait_status("Generated a new").await;
    driver.script("window.scrollTo(0, 0)").await;
    driver.screenshot(&dir.join("complete-desktop.png")).await;
    driver
        .post("/window/rect", json!({ "width": 390, "height": 844 }))
        .await;
    driver.wait_for("#form-card").await;
    driver.script("window.scrollTo(0, 0)").await;
    driver.screenshot(&dir.join("complete-phone.png")).await;
    eprintln!("screenshots: {}", dir.display());
    driver.quit().await;
    gw.stop().await;
    settings.stop().await;
}

/// A page opened with only `#refresh_token=…` (no access token) renews through
/// `POST /api/auth/refresh` (page/refresh.js): it signs in, strips the fragment, and keeps the
/// rotated refresh token; the one in the link is retired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_page_signs_in_with_a_refresh_token() {
    if !chromium_available() {
        return;
    }
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let listener = TestSettings::reserve().await;
    let settings_url = format!("http://{}", listener.local_addr().unwrap());
    let auth = spawn_auth(&db, Some(settings_url)).await;
    let config = settings_config(&db, &auth.url(), &master_keys_text(&["k1"]));
    let settings = TestSettings::spawn_on(config, listener, &auth).await;
    let gw = TestGateway::spawn(&auth.url(), &settings.url()).await;
    gw.sync_user("page-refresh").await;
    let answer: Value = gw
        .http
        .post(gw.url("/api/auth/token"))
        .header("X-Latchkey-Sync-Secret", SYNC_SECRET)
        .json(&json!({"email": "page-refresh@example.com", "refresh": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = answer["refresh_token"].as_str().unwrap().to_owned();

    let driver = Driver::start().await;
    driver
        .goto(&gw.url(&format!("/#refresh_token={first}")))
        .await;
    let who = driver.wait_for("#who-email").await;
    assert_eq!(driver.text(&who).await, "page-refresh@example.com");
    assert_eq!(driver.script("return location.hash").await, "");
    let held = driver
        .script("return sessionStorage.getItem('latchkey.refresh')")
        .await;
    let held = held.as_str().expect("the page keeps a refresh token");
    assert!(held.starts_with("lkr_") && held != first, "{held}");
    assert!(
        !driver.source().await.contains(&first[4..]),
        "the token is not in the page"
    );
    driver.quit().await;

    // The link's token was exchanged: past the grace window it is a reuse.
    auth.clock.advance(11);
    let reused = gw
        .http
        .post(gw.url("/api/auth/refresh"))
        .json(&json!({"refresh_token": first}))
        .send()
        .await
        .unwrap();
    let body: Value = reused.json().await.unwrap();
    assert_eq!(body["code"], "REFRESH_TOKEN_REUSED", "{body}");
}

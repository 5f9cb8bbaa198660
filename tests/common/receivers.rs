//! The notification tests' real receivers (`tests/notify/receivers.py`): aiosmtpd's SMTP
//! server and an HTTP server, on 127.0.0.1; every message they receive, as JSON.

use serde_json::Value;
use std::io::BufRead;
use std::process::{Child, ChildStdin};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SMTP_USER: &str = "retentiond";
pub const SMTP_PASSWORD: &str = "s3cret-smtp";
pub const HOOK_SECRET: &str = "hook-signing-secret";

pub struct Receivers {
    child: Child,
    _stdin: ChildStdin,
    pub smtp: u16,
    pub http: u16,
    received: Arc<Mutex<Vec<Value>>>,
}

impl Receivers {
    pub fn start() -> Receivers {
        let (child, stdin, stdout, ports) = super::start_python_server(
            "tests/notify/receivers.py",
            "install aiosmtpd with `python3 -m pip install aiosmtpd==1.4.6` (README, Development)",
        );
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        Receivers {
            child,
            _stdin: stdin,
            smtp: ports["smtp"].as_u64().unwrap() as u16,
            http: ports["http"].as_u64().unwrap() as u16,
            received,
        }
    }

    /// The environment that the config's secret references read.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "SLACK_URL".into(),
                format!("http://127.0.0.1:{}/slack", self.http),
            ),
            (
                "MM_URL".into(),
                format!("http://127.0.0.1:{}/mattermost", self.http),
            ),
            ("HOOK_SECRET".into(), HOOK_SECRET.into()),
            ("SMTP_USER".into(), SMTP_USER.into()),
            ("SMTP_PASSWORD".into(), SMTP_PASSWORD.into()),
        ]
    }

    /// A `notify:` section with the four sinks and `routes`.
    pub fn config(&self, routes: &str) -> String {
        format!(
            "notify:
  sinks:
    hook: {{ type: webhook, url: \"http://127.0.0.1:{}/hook\", secret: \"${{env:HOOK_SECRET}}\" }}
    chat: {{ type: slack, url: \"${{env:SLACK_URL}}\" }}
    mm: {{ type: mattermost, url: \"${{env:MM_URL}}\" }}
    mail: {{ type: email, host: 127.0.0.1, port: {}, tls: none, username: \"${{env:SMTP_USER}}\", password: \"${{env:SMTP_PASSWORD}}\", from: retentiond@example.org, to: [ops@example.org] }}
  routes:
{routes}",
            self.http, self.smtp
        )
    }

    pub fn received(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }

    /// What the HTTP receiver got on `path`.
    pub fn posts(&self, path: &str) -> Vec<Value> {
        self.received()
            .into_iter()
            .filter(|m| m["kind"] == "http" && m["path"] == path)
            .collect()
    }

    pub fn mails(&self) -> Vec<Value> {
        self.received()
            .into_iter()
            .filter(|m| m["kind"] == "smtp")
            .collect()
    }

    /// Waits (at most 20 s) until `ready` holds of what was received.
    pub fn wait_until(&self, what: &str, ready: impl Fn(&[Value]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready(&self.received()) {
            assert!(
                Instant::now() < deadline,
                "never received {what}: {:?}",
                self.received()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receivers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `signature` (`sha256=HEX`) is the HMAC-SHA256 of `body` with `secret`.
pub fn signed(body: &str, signature: &str, secret: &str) -> bool {
    let Some(hex) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    bytes.is_some_and(|b| ring::hmac::verify(&key, body.as_bytes(), &b).is_ok())
}

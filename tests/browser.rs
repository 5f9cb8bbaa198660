//! The status page in a real browser: headless Chromium (Debian's `chromium`, driven by
//! Playwright from PyPI) loads `/` and a policy's page from a running daemon: no console
//! error, the blocked policy and the one command that lifts it, the timeline drawn, and no
//! serious or critical violation from axe-core (npm). `status`, the page and `history` agree
//! on a journal with runs from two hosts. `.ci/run` installs the three.

mod common;

use common::{json, retentiond_env, write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn axe() -> PathBuf {
    std::env::var_os("RETENTIOND_AXE")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::repo("target/browser/node_modules/axe-core/axe.min.js"))
}

fn cli(dir: &Path, host: &str, args: &[&str]) -> common::Output {
    let mut all = vec!["--config", "retentiond.yaml"];
    all.extend_from_slice(args);
    retentiond_env(dir, &all, &[("RETENTIOND_HOST", host)])
}

#[test]
fn the_status_page_shows_a_blocked_policy_in_a_real_browser_and_agrees_with_history() {
    let axe = axe();
    assert!(
        axe.exists(),
        "axe-core is not at {}: `npm install --prefix target/browser axe-core@4` (or set RETENTIOND_AXE); .ci/run does it",
        axe.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "retentiond.yaml",
        "policies: policies\nstate_dir: state\nmetrics: { listen: \"127.0.0.1:0\" }\naccounts:\n  files: { provider: local, path: backups }\n",
    );
    for day in 1..=10 {
        write(d, &format!("backups/db-202611{day:02}.dump"), "");
        write(d, &format!("backups/web-202611{day:02}.dump"), "");
    }
    let policy = |name: &str, prefix: &str, guard: &str| {
        format!(
            "name: {name}\naccount: files\nmode: enforce\nselect:\n  pattern: '^{prefix}-(?P<ts>\\d{{8}})\\.dump$'\nkeep: {{last: 3}}\nguard: {{max_delete_fraction: 1, unapproved_max_delete: 100, unapproved_max_delete_fraction: 1{guard}}}\n"
        )
    };
    write(
        d,
        "policies/blocked.yaml",
        &policy("blocked", "db", ", max_delete: 2"),
    );
    write(d, "policies/fine.yaml", &policy("fine", "web", ""));
    // Runs on two hosts of one journal; a hold on the blocked policy.
    assert_eq!(cli(d, "host-a", &["run"]).code, 5);
    let out = cli(
        d,
        "host-a",
        &[
            "hold",
            "add",
            "db-20261102.dump",
            "--policy",
            "blocked",
            "--reason",
            "audit",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(cli(d, "host-b", &["run"]).code, 5);

    // `status` agrees with `history`.
    let status = json(&cli(d, "host-c", &["status", "--format", "json"]).stdout);
    let history = json(&cli(d, "host-c", &["history", "--format", "json"]).stdout);
    for p in status["policies"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let last = history["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["policy"] == name)
            .unwrap();
        assert_eq!(p["last_run"]["id"], last["id"], "{name}");
        assert_eq!(p["last_run"]["host"], "host-b", "{name}");
        assert_eq!(p["last_run"]["outcome"], last["outcome"], "{name}");
    }
    let blocked = &status["policies"][0];
    assert_eq!(blocked["name"], "blocked");
    assert_eq!(
        blocked["unblock"],
        "retentiond run --policy blocked --accept-max-delete"
    );
    assert_eq!(blocked["holds"][0]["backup_id"], "db-20261102.dump");
    let text = cli(d, "host-c", &["status"]).stdout;
    assert!(
        text.contains("to unblock: retentiond run --policy blocked --accept-max-delete"),
        "{text}"
    );
    let run_id = blocked["last_run"]["id"].as_i64().unwrap();

    // The daemon (no policy is scheduled: it only serves the page).
    let log = d.join("daemon.log");
    let mut daemon = common::spawn_daemon(d, &log, &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("status page on")
    {
        assert!(
            Instant::now() < deadline,
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let address = common::metrics_address(&std::fs::read_to_string(&log).unwrap());
    let shot = d.join("status-page.png");
    let browser = std::process::Command::new("python3")
        .arg(common::repo("tests/browser/check_page.py"))
        .arg(&axe)
        .arg(&shot)
        .arg(format!("http://{address}/"))
        .arg(format!("http://{address}/policies/blocked"))
        .output()
        .expect("python3");
    // Read-only: nothing that writes.
    let (code, _) = post(&address, "/");
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert!(
        browser.status.success(),
        "headless Chromium did not run (Debian's chromium and `pip install playwright`; .ci/run installs them): {}",
        String::from_utf8_lossy(&browser.stderr)
    );
    let pages = json(&String::from_utf8_lossy(&browser.stdout));
    for page in pages.as_array().unwrap() {
        let url = page["url"].as_str().unwrap();
        assert_eq!(page["status"], 200, "{url}");
        assert_eq!(
            page["errors"],
            serde_json::json!([]),
            "console errors on {url}"
        );
        assert_eq!(
            page["violations"],
            serde_json::json!([]),
            "axe-core on {url}"
        );
        let text = page["text"].as_str().unwrap();
        assert!(text.contains("BLOCKED"), "{url}: {text}");
        assert!(
            text.contains("retentiond run --policy blocked --accept-max-delete"),
            "{url}: {text}"
        );
        assert!(
            text.contains("hold #1 on backup db-20261102.dump"),
            "{url}: {text}"
        );
        assert!(
            text.contains(&format!("#{run_id}")) && text.contains("host-b"),
            "{url}: {text}"
        );
        assert!(
            page["svg"]["width"].as_f64().unwrap() > 500.0,
            "{url}: {}",
            page["svg"]
        );
        assert!(
            page["svg"]["marks"].as_u64().unwrap() >= 10,
            "{url}: {}",
            page["svg"]
        );
    }
    let index = pages[0]["text"].as_str().unwrap();
    assert!(index.contains("fine") && index.contains("ok"), "{index}");
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a screenshot"
    );
    // README's picture: `RETENTIOND_SCREENSHOT=docs/status-page.png cargo test --test browser`.
    if let Some(keep) = std::env::var_os("RETENTIOND_SCREENSHOT") {
        std::fs::copy(&shot, common::repo(&keep.to_string_lossy())).unwrap();
    }
    assert_eq!(code, 405);
}

fn post(address: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    (response[9..12].parse().unwrap(), response)
}

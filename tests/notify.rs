//! Notifications against real receivers (tests/notify/receivers.py): aiosmtpd's SMTP server
//! and an HTTP server standing in for a webhook, Slack and Mattermost. A sample from `notify
//! test`; a blocked policy told once across ticks of the daemon and once more when resolved;
//! the webhook's signature; no secret in any message.

mod common;

use common::receivers::{HOOK_SECRET, Receivers, SMTP_PASSWORD, signed};
use common::{retentiond_env, write};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// A folder with ten daily dumps and policy `p` (`guard` added to its guard).
fn folder(receivers: &Receivers, routes: &str, guard: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "retentiond.yaml",
        &format!(
            "policies: policies\nstate_dir: state\nmetrics: {{ listen: \"127.0.0.1:0\" }}\naccounts:\n  files: {{ provider: local, path: backups }}\n{}",
            receivers.config(routes)
        ),
    );
    for day in 1..=10 {
        write(dir.path(), &format!("backups/db-202611{day:02}.dump"), "");
    }
    policy(dir.path(), guard);
    dir
}

fn policy(dir: &Path, guard: &str) {
    write(
        dir,
        "policies/p.yaml",
        &format!(
            "name: p\naccount: files\nmode: enforce\nschedule: \"* * * * * *\"\nselect:\n  pattern: '^db-(?P<ts>\\d{{8}})\\.dump$'\nkeep: {{last: 3}}\nguard: {{max_delete_fraction: 1, unapproved_max_delete: 100, unapproved_max_delete_fraction: 1{guard}}}\n"
        ),
    );
}

fn run(dir: &Path, receivers: &Receivers, args: &[&str]) -> common::Output {
    let env = receivers.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut all = vec!["--config", "retentiond.yaml"];
    all.extend_from_slice(args);
    retentiond_env(dir, &all, &env)
}

fn body(post: &Value) -> Value {
    serde_json::from_str(post["body"].as_str().unwrap()).unwrap()
}

#[test]
fn notify_test_reaches_each_kind_of_sink() {
    let receivers = Receivers::start();
    let dir = folder(&receivers, "    - sinks: [hook, chat, mm, mail]\n", "");
    let d = dir.path();
    for sink in ["hook", "chat", "mm", "mail"] {
        let out = run(d, &receivers, &["notify", "test", sink]);
        assert_eq!(out.code, 0, "{sink}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stdout
                .contains(&format!("sent a test message to sink {sink}")),
            "{}",
            out.stdout
        );
    }
    // The webhook: JSON, signed with the secret.
    let hook = &receivers.posts("/hook")[0];
    let signature = hook["headers"]["x-retentiond-signature"].as_str().unwrap();
    assert!(
        signed(hook["body"].as_str().unwrap(), signature, HOOK_SECRET),
        "{hook}"
    );
    assert!(!signed(
        hook["body"].as_str().unwrap(),
        signature,
        "another secret"
    ));
    assert_eq!(body(hook)["source"], "retentiond");
    // Slack's and Mattermost's incoming-webhook formats.
    let slack = body(&receivers.posts("/slack")[0]);
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .contains("test message to sink chat"),
        "{slack}"
    );
    assert_eq!(slack["blocks"][0]["text"]["type"], "mrkdwn");
    let mm = body(&receivers.posts("/mattermost")[0]);
    assert_eq!(mm["username"], "retentiond");
    assert!(mm["text"].as_str().unwrap().starts_with("#### "), "{mm}");
    // The email, through SMTP AUTH.
    let mail = &receivers.mails()[0];
    assert_eq!(mail["auth"], "retentiond");
    assert_eq!(mail["to"], serde_json::json!(["ops@example.org"]));
    assert!(
        mail["data"]
            .as_str()
            .unwrap()
            .contains("Subject: [retentiond] test message to sink mail"),
        "{mail}"
    );

    // An unknown sink, and a receiver that keeps failing.
    let out = run(d, &receivers, &["notify", "test", "hok"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("no sink named `hok` under notify.sinks; did you mean `hook`?"),
        "{}",
        out.stderr
    );
    write(
        d,
        "retentiond.yaml",
        &std::fs::read_to_string(d.join("retentiond.yaml"))
            .unwrap()
            .replace("/hook", "/fail"),
    );
    let out = run(d, &receivers, &["notify", "test", "hook"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains(
            "not delivered: the receiver answered 500 Internal Server Error (after 4 attempts)"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(receivers.posts("/fail").len(), 4, "retried with backoff");
}

#[test]
fn a_blocked_policy_is_told_once_across_ticks_and_once_more_when_resolved() {
    let receivers = Receivers::start();
    let dir = folder(
        &receivers,
        "    - sinks: [hook, chat, mail]\n      policies: [p]\n",
        ", max_delete: 2",
    );
    let d = dir.path();
    let env = receivers.env();
    let log = d.join("daemon.log");
    let mut daemon = common::spawn_daemon(d, &log, &env);
    let ticks = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("run finished")
            .count()
    };
    receivers.wait_until("the blocked message", |r| r.len() >= 3);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let first = ticks();
    while ticks() < first + 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Three ticks later: still one message per sink.
    let hooks = receivers.posts("/hook");
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(receivers.posts("/slack").len(), 1);
    assert_eq!(receivers.mails().len(), 1);
    let told = body(&hooks[0]);
    assert_eq!(
        (told["event"].as_str(), told["state"].as_str()),
        (Some("blocked"), Some("firing"))
    );
    assert!(
        told["text"]
            .as_str()
            .unwrap()
            .contains("more than guard.max_delete 2"),
        "{told}"
    );
    assert!(
        told["text"]
            .as_str()
            .unwrap()
            .contains("`retentiond run --policy p --accept-max-delete`"),
        "the one command that lifts it: {told}"
    );
    let mail = receivers.mails()[0]["data"].as_str().unwrap().to_string();
    assert!(
        mail.contains("Subject: [retentiond] policy p: blocked by a guard, nothing is deleted"),
        "{mail}"
    );
    assert!(
        mail.contains("retentiond run --policy p --accept-max-delete"),
        "{mail}"
    );

    // The guard is raised: the next tick deletes, and a "resolved" message follows, once.
    policy(d, ", max_delete: 100");
    receivers.wait_until("the resolved message", |_| {
        receivers.posts("/hook").len() >= 2
    });
    let at = ticks();
    while ticks() < at + 2 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let address = common::metrics_address(&std::fs::read_to_string(&log).unwrap());
    let (_, metrics) = common::http_get(&address, "/metrics");
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert!(
        metrics.contains("retentiond_notifications_total{sink=\"hook\",outcome=\"sent\"} 2\n"),
        "{metrics}"
    );
    let hooks = receivers.posts("/hook");
    assert_eq!(hooks.len(), 2, "{hooks:?}");
    let resolved = body(&hooks[1]);
    assert_eq!(
        (resolved["event"].as_str(), resolved["state"].as_str()),
        (Some("blocked"), Some("resolved"))
    );
    assert_eq!(receivers.posts("/slack").len(), 2);
    assert_eq!(receivers.mails().len(), 2);
    // No secret in any message.
    for m in receivers.received() {
        let text = m.to_string();
        assert!(
            !text.contains(SMTP_PASSWORD) && !text.contains(HOOK_SECRET),
            "{text}"
        );
    }
}

#[test]
fn validate_locates_what_is_wrong_in_notify() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "retentiond.yaml",
        "notify:\n  sinks:\n    x: {type: slak, url: \"${env:A}\"}\n    y: {type: email, host: mail.example.com, tls: none, from: a@b, to: c@d}\n    s: {type: slack, url: \"https://hooks.slack.com/services/T0/B0/secret\"}\n  routes:\n    - sinks: [z]\n      events: [blokked]\npolicies: p\naccounts: {}\n",
    );
    let out = common::retentiond_in(dir.path(), &["validate", "retentiond.yaml"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    for says in [
        "retentiond.yaml:3:8: `notify.sinks.x.type: slak` is not a sink; did you mean `slack`?",
        "retentiond.yaml:4:51: `notify.sinks.y.tls: none` sends the mail and the password in clear",
        "`notify.sinks.s.url` must be a secret reference",
        "`notify.routes[0].sinks`: no sink named `z` under `notify.sinks`",
        "`notify.routes[0].events`: no event `blokked`; did you mean `blocked`?",
    ] {
        assert!(out.stderr.contains(says), "{says}: {}", out.stderr);
    }
    // The webhook URL written in the config is never repeated (it is the secret).
    assert!(!out.stderr.contains("B0/secret"), "{}", out.stderr);
}

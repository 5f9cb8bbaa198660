//! `retentiond daemon` as systemd would run it: on a local folder with a 1-second schedule,
//! edited and broken policies, signals, the notify socket, `/metrics` and `/healthz`.

mod common;

use common::http_get as get;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = "policies: policies
state_dir: state
metrics: { listen: \"127.0.0.1:0\" }
shutdown_timeout: 5s
accounts:
  dumps: { provider: local, path: backups }
";

fn policy(keep_last: u32) -> String {
    format!(
        "name: nightly
account: dumps
schedule: \"* * * * * *\"
mode: enforce
select:
  pattern: '^db-(?P<ts>\\d{{8}}T\\d{{6}}Z)\\.sql$'
  timestamp_format: \"%Y%m%dT%H%M%SZ\"
keep:
  last: {keep_last}
guard:
  max_delete_fraction: 1
"
    )
}

/// A folder with the config, one policy and `n` daily dumps (1 to `n` November).
fn setup(keep_last: u32, n: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::write(dir.path(), "retentiond.yaml", CONFIG);
    common::write(dir.path(), "policies/nightly.yaml", &policy(keep_last));
    add_dumps(dir.path(), 1..=n);
    dir
}

fn add_dumps(dir: &Path, days: std::ops::RangeInclusive<u32>) {
    for day in days {
        common::write(dir, &format!("backups/db-202611{day:02}T030000Z.sql"), "");
    }
}

fn dumps(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn days(names: &[String]) -> Vec<u32> {
    names.iter().map(|n| n[9..11].parse().unwrap()).collect()
}

struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, env: &[(&str, &str)]) -> Daemon {
        Daemon::launch(dir, &[], env)
    }

    fn start_with(dir: &Path, args: &[&str]) -> Daemon {
        Daemon::launch(dir, args, &[])
    }

    /// Starts the daemon once a person approved the policies as they are (when the config
    /// loads; tests of a broken config start it all the same).
    fn launch(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        common::retentiond_in(dir, &["--config", "retentiond.yaml", "approve", "--all"]);
        // A log per daemon started in the folder (a test may start a second one).
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = dir.join(format!("daemon-{n}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_retentiond"))
            .args(["--config", "retentiond.yaml", "daemon"])
            .args(args)
            .current_dir(dir)
            .env_remove("RETENTIOND_CONFIG")
            .env_remove("STATE_DIRECTORY")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("JOURNAL_STREAM")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start retentiond daemon");
        Daemon { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most 20 s) until `ready` holds, while the daemon runs.
    fn wait_for(&mut self, what: &str, ready: impl Fn(&Daemon) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready(self) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the daemon exited ({status}) before {what}:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "never saw {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The exit code, waiting at most `limit`.
    fn exit_within(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("still running {limit:?} after the signal:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The metrics endpoint's address, from the start-up log line.
    fn metrics_address(&mut self) -> String {
        self.wait_for("the metrics endpoint", |d| {
            d.log().contains("metrics on http://")
        });
        let log = self.log();
        let rest = &log[log.find("metrics on http://").unwrap() + 18..];
        rest[..rest.find('/').unwrap()].to_string()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sample(metrics: &str, line_start: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn runs_on_schedule_applies_edits_keeps_running_on_a_broken_policy_and_stops_cleanly() {
    let dir = setup(3, 8);
    let mut daemon = Daemon::start(dir.path(), &[]);
    let address = daemon.metrics_address();

    // The first fire deletes down to the last 3.
    daemon.wait_for("the first deletions", |_| dumps(dir.path()).len() == 3);
    assert_eq!(days(&dumps(dir.path())), [6, 7, 8]);
    daemon.wait_for("the run's end", |d| d.log().contains("run finished"));
    let log = daemon.log();
    assert!(
        log.contains("deleted backup=db-20261105T030000Z.sql"),
        "{log}"
    );
    assert!(
        log.contains("run{policy=nightly account=dumps run_id=1}"),
        "{log}"
    );

    let (code, metrics) = get(&address, "/metrics");
    assert_eq!(code, 200);
    let label = "{policy=\"nightly\"}";
    assert_eq!(
        sample(&metrics, &format!("retentiond_policy_backups_kept{label}")),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &metrics,
            &format!("retentiond_policy_backups_deleted_total{label}")
        ),
        Some(5.0)
    );
    assert_eq!(
        sample(&metrics, &format!("retentiond_policy_blocked{label}")),
        Some(0.0)
    );
    assert!(
        sample(
            &metrics,
            &format!("retentiond_policy_last_success_timestamp_seconds{label}")
        )
        .unwrap()
            > 1.7e9
    );
    assert!(
        sample(
            &metrics,
            "retentiond_policy_runs_total{policy=\"nightly\",outcome=\"ok\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(get(&address, "/healthz"), (200, "ok\n".into()));
    assert!(
        sample(
            &metrics,
            "retentiond_config_last_reload_success_timestamp_seconds"
        )
        .unwrap()
            > 1.7e9
    );
    assert_eq!(
        sample(
            &metrics,
            "retentiond_config_reloads_total{result=\"success\"}"
        ),
        Some(0.0)
    );

    // An edit is reloaded at once, but a changed policy that deletes more than a tenth of a
    // group waits for a person's approval; then it applies at the next fire.
    common::write(dir.path(), "policies/nightly.yaml", &policy(2));
    daemon.wait_for("the edit held for approval", |d| {
        d.log()
            .contains("BLOCKED, nothing was deleted: policy nightly is new or changed")
    });
    assert_eq!(dumps(dir.path()).len(), 3);
    common::approve_all(dir.path());
    daemon.wait_for("the edited rule", |_| dumps(dir.path()).len() == 2);
    assert_eq!(days(&dumps(dir.path())), [7, 8]);
    assert!(
        daemon
            .log()
            .contains("reloaded: 1 policies; changed nightly")
    );

    // A broken policy is refused: the old one keeps running, the error names its line.
    common::write(
        dir.path(),
        "policies/nightly.yaml",
        "name: nightly\naccount: dumps\nkeep:\n  last: two\n",
    );
    daemon.wait_for("the reload error", |d| d.log().contains("reload failed"));
    let log = daemon.log();
    assert!(
        log.contains("policies/nightly.yaml:4:9: `keep.last` must be a count"),
        "{log}"
    );
    assert!(log.contains("reload failed with 1 error; the previous policies keep running"));
    let (code, health) = get(&address, "/healthz");
    assert_eq!(code, 503, "{health}");
    assert!(
        health.contains("the last reload failed (1 error)"),
        "{health}"
    );
    add_dumps(dir.path(), 9..=10);
    daemon.wait_for("the old rule on new dumps", |_| {
        days(&dumps(dir.path())) == [9, 10]
    });
    let (_, metrics) = get(&address, "/metrics");
    assert_eq!(
        sample(&metrics, "retentiond_config_last_reload_successful"),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "retentiond_config_reloads_total{result=\"failure\"}"
        ),
        Some(1.0)
    );

    let stop = Instant::now();
    daemon.signal("TERM");
    // The deadline is shutdown_timeout (5 s); nothing runs long here.
    assert_eq!(daemon.exit_within(Duration::from_secs(6)), 0);
    assert!(stop.elapsed() < Duration::from_secs(5));
    assert!(daemon.log().contains("stopped"));
}

#[test]
fn speaks_the_notify_protocol_at_the_right_moments() {
    let dir = setup(3, 4);
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let receive = || {
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).expect("a notification within 20 s");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    };
    // Watchdog every 0.5 s (half of WATCHDOG_USEC).
    let mut daemon = Daemon::start(
        dir.path(),
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    let mut seen: Vec<String> = Vec::new();
    let until = |what: &str, seen: &mut Vec<String>| loop {
        let message = receive();
        seen.push(message.clone());
        if message.lines().any(|l| l == what) {
            return message;
        }
    };
    let ready = until("READY=1", &mut seen);
    assert!(
        ready.contains("STATUS=1 policies (1 scheduled), 0 running"),
        "{ready}"
    );
    assert!(seen.len() == 1, "READY=1 is the first message: {seen:?}");
    // By READY the metrics socket is bound.
    assert!(daemon.log().contains("metrics on http://127.0.0.1:"));
    until("WATCHDOG=1", &mut seen);
    until("WATCHDOG=1", &mut seen);

    daemon.signal("HUP");
    until("RELOADING=1", &mut seen);
    let after = until("READY=1", &mut seen);
    assert!(after.contains("STATUS="), "{after}");
    assert!(daemon.log().contains("reloading (SIGHUP)"));

    daemon.signal("TERM");
    let stopping = until("STOPPING=1", &mut seen);
    assert!(stopping.contains("STATUS=stopping"));
    assert_eq!(daemon.exit_within(Duration::from_secs(6)), 0);
    let statuses = seen.iter().filter(|m| m.starts_with("STATUS=")).count();
    assert!(statuses > 0, "runs update STATUS=: {seen:?}");
}

#[test]
fn a_broken_config_at_start_exits_1_with_every_error() {
    let dir = setup(3, 2);
    common::write(
        dir.path(),
        "policies/other.yaml",
        "name: other\naccount: nowhere\nkeep: {last: 1}\n",
    );
    let mut daemon = Daemon::start(dir.path(), &[]);
    assert_eq!(daemon.exit_within(Duration::from_secs(10)), 1);
    let log = daemon.log();
    assert!(log.contains("policies/other.yaml:2:10: "), "{log}");
    assert!(log.contains("not started: 1 error"), "{log}");
    assert_eq!(dumps(dir.path()).len(), 2, "nothing deleted");
}

#[test]
fn json_logs_carry_the_run_span() {
    let dir = setup(1, 2);
    let mut daemon = Daemon::start_with(dir.path(), &["--log-format", "json"]);
    daemon.wait_for("a finished run", |d| d.log().contains("run finished"));
    daemon.signal("INT");
    assert_eq!(daemon.exit_within(Duration::from_secs(6)), 0);
    let log = daemon.log();
    let finished = log
        .lines()
        .map(common::json)
        .find(|v| v["fields"]["message"] == "run finished")
        .unwrap();
    assert_eq!(finished["span"]["policy"], "nightly");
    assert_eq!(finished["span"]["account"], "dumps");
    assert_eq!(finished["span"]["run_id"], 1);
    assert_eq!(finished["fields"]["outcome"], "ok");
    assert_eq!(finished["level"], "INFO");
    assert!(finished["timestamp"].is_string());
}

#[test]
fn sigterm_lets_the_deletion_in_flight_finish_and_sends_no_other() {
    use common::fake::Fault;
    use common::target::{Fake, Kind, Target};
    let fake = common::docspace::Fake::start(common::docspace::daily(20));
    let target = Target::with(
        Kind::Docspace,
        Fake::Docspace(fake),
        "{last: 2}",
        ", concurrency: 1",
    );
    let planned = target.plan();
    assert_eq!(planned.delete.len(), 18);
    let dir = target.dir.path();
    let config = std::fs::read_to_string(dir.join("retentiond.yaml")).unwrap();
    common::write(
        dir,
        "retentiond.yaml",
        &format!("{config}shutdown_timeout: 10s\n"),
    );
    let policy = std::fs::read_to_string(dir.join("policies/p.yaml")).unwrap();
    common::write(
        dir,
        "policies/p.yaml",
        &format!("{policy}schedule: \"* * * * * *\"\n"),
    );
    let server = target.server();
    server.fault(
        "DELETE",
        "/deletebackup/",
        None,
        Fault::Delay(Duration::from_millis(500)),
    );

    let mut daemon = Daemon::start(dir, common::SECRET_ENV);
    daemon.wait_for("a deletion in flight", |_| server.in_flight() > 0);

    // While the daemon runs the policy, a manual run of it on the host is refused, and so is
    // a second daemon on the same journal: both find it without a `state_dir` of their own.
    let manual = common::retentiond_in(
        dir,
        &["--config", "retentiond.yaml", "run", "--policy", "p"],
    );
    assert_eq!(manual.code, 7, "{}{}", manual.stdout, manual.stderr);
    assert!(
        manual
            .stderr
            .contains("policy p is being run by another retentiond process (pid "),
        "{}",
        manual.stderr
    );
    let mut second = Daemon::launch(dir, &[], common::SECRET_ENV);
    assert_eq!(second.exit_within(Duration::from_secs(10)), 7);
    assert!(
        second
            .log()
            .contains("not started: another retentiond daemon (pid "),
        "{}",
        second.log()
    );
    daemon.signal("TERM");
    assert_eq!(daemon.exit_within(Duration::from_secs(10)), 0);
    let log = daemon.log();
    assert!(log.contains("stopping: no new runs or deletions"), "{log}");

    let sent = target.delete_requests();
    assert!(
        (1..=2).contains(&sent.len()),
        "only what was in flight at SIGTERM is sent: {sent:?}"
    );
    assert_eq!(
        target.held().len(),
        20 - sent.len(),
        "what was sent finished"
    );
    target.check_invariants(&planned);
    let runs = target.history();
    assert_eq!(runs[0]["outcome"], "stopped", "{:#}", runs[0]);
    assert!(
        runs[0]["message"]
            .as_str()
            .unwrap()
            .contains("the next run plans them again"),
        "{:#}",
        runs[0]
    );
}

#[test]
fn metrics_after_a_restart_come_from_the_journal_with_freshness_and_the_next_run() {
    let dir = setup(3, 8);
    // Weekly: it does not fire while the test runs.
    common::write(
        dir.path(),
        "policies/nightly.yaml",
        &policy(3).replace("\"* * * * * *\"", "\"0 3 * * 1\""),
    );
    // The last run before the daemon (re)starts.
    let out = common::configured(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(dumps(dir.path()).len(), 3);

    let mut daemon = Daemon::start(dir.path(), &[]);
    let address = daemon.metrics_address();
    daemon.wait_for("ready", |d| d.log().contains("ready: "));
    let (_, metrics) = get(&address, "/metrics");
    let label = "{policy=\"nightly\"}";
    let value = |name: &str| sample(&metrics, &format!("{name}{label} "));
    assert_eq!(
        value("retentiond_policy_backups_kept"),
        Some(3.0),
        "{metrics}"
    );
    assert_eq!(value("retentiond_policy_last_run_success"), Some(1.0));
    let now = jiff::Timestamp::now().as_second() as f64;
    let last_success = value("retentiond_policy_last_success_timestamp_seconds").unwrap();
    assert!(now - last_success < 120.0, "{metrics}");
    let interval = value("retentiond_policy_schedule_interval_seconds").unwrap();
    assert!((interval - 7.0 * 86400.0).abs() <= 3600.0, "{metrics}");
    let next = value("retentiond_policy_next_run_timestamp_seconds").unwrap();
    assert!(next > now && next <= now + 7.0 * 86400.0, "{metrics}");
    // The newest dump is from 8 November 2026, 03:00 UTC.
    let newest = jiff::Timestamp::from_second(1_794_106_800).unwrap();
    assert_eq!(newest.to_string(), "2026-11-08T03:00:00Z");
    let age = value("retentiond_policy_newest_backup_age_seconds").unwrap();
    assert!(
        (age - (now - newest.as_second() as f64)).abs() < 120.0,
        "{age} {metrics}"
    );
    let folder = dir.path().join("backups").canonicalize().unwrap();
    let group = sample(
        &metrics,
        &format!(
            "retentiond_group_newest_backup_age_seconds{{policy=\"nightly\",group=\"{}\"}}",
            folder.display()
        ),
    );
    assert!(group.is_some_and(|g| (g - age).abs() < 60.0), "{metrics}");
    assert_eq!(get(&address, "/healthz"), (200, "ok\n".into()));
}

#[test]
fn a_policy_file_being_written_is_not_a_failed_reload() {
    let dir = setup(3, 4);
    let weekly = policy(3).replace("\"* * * * * *\"", "\"0 3 * * 1\"");
    common::write(dir.path(), "policies/nightly.yaml", &weekly);
    let mut daemon = Daemon::start(dir.path(), &[]);
    let address = daemon.metrics_address();
    daemon.wait_for("ready", |d| d.log().contains("ready: "));

    // A deploy truncates the file, then writes it.
    std::fs::write(dir.path().join("policies/nightly.yaml"), "").unwrap();
    daemon.wait_for("the wait for content", |d| {
        d.log()
            .contains("nightly.yaml is empty (being written?): the reload waits for its content")
    });
    assert!(!daemon.log().contains("reload failed"), "{}", daemon.log());
    assert_eq!(get(&address, "/healthz"), (200, "ok\n".into()));

    common::write(
        dir.path(),
        "policies/nightly.yaml",
        &weekly.replace("last: 3", "last: 4"),
    );
    daemon.wait_for("the reload", |d| {
        d.log().contains("reloaded: 1 policies; changed nightly")
    });
    assert!(!daemon.log().contains("reload failed"), "{}", daemon.log());
}

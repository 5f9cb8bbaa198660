//! A fleet: several `retentiond daemon`s (each with its own config folder and state, named by
//! `RETENTIOND_HOST`) sharing one PostgreSQL journal — a throwaway cluster per test. Each
//! scheduled tick runs once in the fleet; no backup is deleted twice; a host killed in the
//! middle of a run is settled by another.

mod common;

use common::docspace;
use common::fake::Fault;
use common::postgres::Postgres;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One host of the fleet: its config folder and its daemon.
struct Host {
    name: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Host {
    /// A config folder with the shared journal, `account` and the policy `policy`.
    fn new(name: &str, pg: &Postgres, account: &str, policy: &str) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let journal = pg.journal_line(dir.path());
        common::write(
            dir.path(),
            "retentiond.yaml",
            &format!(
                "policies: policies\nstate_dir: state\n{journal}metrics: {{ listen: \"127.0.0.1:0\" }}\nshutdown_timeout: 5s\naccounts:\n{account}"
            ),
        );
        common::write(dir.path(), "policies/p.yaml", policy);
        Host {
            name: name.into(),
            dir,
            child: None,
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn start(&mut self) {
        let approve = self.retentiond(&["approve", "--all"]);
        assert!(approve.status.success(), "{approve:?}");
        self.spawn();
    }

    /// The daemon alone, without the approval `start` records first.
    fn spawn(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_retentiond"))
            .args(["--config", "retentiond.yaml", "daemon"])
            .current_dir(self.dir.path())
            .env("RETENTIOND_HOST", &self.name)
            .envs(common::SECRET_ENV.iter().copied())
            .env_remove("RETENTIOND_CONFIG")
            .env_remove("STATE_DIRECTORY")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.log_path()).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn retentiond(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_retentiond"))
            .args(["--config", "retentiond.yaml"])
            .args(args)
            .current_dir(self.dir.path())
            .env("RETENTIOND_HOST", &self.name)
            .envs(common::SECRET_ENV.iter().copied())
            .env_remove("RETENTIOND_CONFIG")
            .env_remove("STATE_DIRECTORY")
            .output()
            .unwrap()
    }

    /// SIGTERM, and the exit code.
    fn stop(&mut self) -> i32 {
        let Some(mut child) = self.child.take() else {
            return 0;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().unwrap().code().unwrap_or(-1)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `ready`; on a timeout the hosts' logs are shown.
fn wait_for(what: &str, limit: Duration, hosts: &[&Host], ready: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        if Instant::now() > deadline {
            let logs: Vec<String> = hosts
                .iter()
                .map(|h| format!("--- {}:\n{}", h.name, h.log()))
                .collect();
            panic!("never saw {what}\n{}", logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

const LOCAL_POLICY: &str = r#"name: p
account: dumps
schedule: "* * * * * *"
mode: enforce
select:
  pattern: '^db-(?P<ts>\d{8}T\d{6}Z)\.sql$'
  timestamp_format: "%Y%m%dT%H%M%SZ"
keep:
  last: 5
guard:
  max_delete_fraction: 1
"#;

fn dump(folder: &Path, n: u32) {
    let day = jiff::civil::date(2026, 1, 1)
        .checked_add(jiff::Span::new().days(i64::from(n)))
        .unwrap();
    common::write(
        folder,
        &format!("db-{}T030000Z.sql", day.strftime("%Y%m%d")),
        "",
    );
}

/// The config's `accounts:` entry `portal` for a DocSpace fake.
fn portal(fake: &docspace::Fake) -> String {
    format!(
        "  portal:\n    provider: onlyoffice-docspace\n    base_url: {}\n    api_key: ${{env:TEST_DOCSPACE_KEY}}\n",
        fake.server.base
    )
}

fn files(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn three_daemons_on_one_database_run_each_tick_once_and_delete_each_backup_once() {
    let pg = Postgres::start();
    let shared = tempfile::tempdir().unwrap();
    let folder = shared.path().join("backups");
    for n in 0..40 {
        dump(&folder, n);
    }
    let account = format!(
        "  dumps: {{ provider: local, path: {} }}\n",
        folder.display()
    );
    let mut hosts: Vec<Host> = ["host-a", "host-b", "host-c"]
        .iter()
        .map(|name| Host::new(name, &pg, &account, LOCAL_POLICY))
        .collect();
    for host in &mut hosts {
        host.start();
    }
    // New dumps arrive while the fleet runs; each tick deletes what falls out of the last 5.
    let all: Vec<&Host> = hosts.iter().collect();
    wait_for("the first deletions", Duration::from_secs(20), &all, || {
        files(&folder).len() == 5
    });
    for n in 40..46 {
        dump(&folder, n);
        std::thread::sleep(Duration::from_millis(400));
    }
    let all: Vec<&Host> = hosts.iter().collect();
    wait_for(
        "the last dump's tick",
        Duration::from_secs(10),
        &all,
        || files(&folder).len() == 5,
    );
    for host in &mut hosts {
        assert_eq!(host.stop(), 0, "{}", host.log());
    }

    // The single-host result: the five newest.
    let expected: Vec<String> = files(&folder).into_iter().collect();
    assert_eq!(expected.len(), 5, "{expected:?}");
    assert_eq!(expected[0], "db-20260211T030000Z.sql");

    // One claim per tick, and one run per claim, on the host that claimed it.
    let claims = pg.sql("SELECT scheduled_at, host FROM fire_claims WHERE policy = 'p' ORDER BY 1");
    let runs =
        pg.sql("SELECT host FROM runs WHERE policy = 'p' AND command = 'daemon' ORDER BY id");
    // At least the tick of the first deletions and one after the last new dump; how many
    // between depends on the machine's load (missed ticks are not queued up: a host that wakes
    // late fires the tick that is due and then the first one after now, so on a busy machine
    // three claims were seen where four were usual).
    assert!(claims.len() >= 2, "{claims:?}");
    let skipped_on_lock = hosts
        .iter()
        .map(|h| {
            h.log()
                .matches("is being run by another retentiond process")
                .count()
        })
        .sum::<usize>();
    assert_eq!(
        runs.len() + skipped_on_lock,
        claims.len(),
        "{claims:?} {runs:?}"
    );
    let mut claimed_by: BTreeMap<String, usize> = BTreeMap::new();
    for claim in &claims {
        *claimed_by
            .entry(claim.split('|').nth(1).unwrap().to_string())
            .or_default() += 1;
    }
    let mut ran_on: BTreeMap<String, usize> = BTreeMap::new();
    for host in &runs {
        *ran_on.entry(host.clone()).or_default() += 1;
    }
    for (host, n) in &ran_on {
        assert!(
            claimed_by.get(host).is_some_and(|c| c >= n),
            "{host}: {claimed_by:?} {ran_on:?}"
        );
    }
    // The other hosts saw ticks claimed and skipped them, naming the host that claimed each.
    // (How many depends on timing: a host stopped before it fired the last tick, or still
    // busy, does not see it.)
    let log = hosts[0].log() + &hosts[1].log() + &hosts[2].log();
    let skips = regex::Regex::new(r"fire of p at (\S+) ran on (\S+); skipped here").unwrap();
    let mut seen = 0;
    for skip in skips.captures_iter(&log) {
        let tick: jiff::Timestamp = skip[1].parse().unwrap();
        let claim = format!("{}|{}", tick.as_millisecond(), &skip[2]);
        assert!(claims.contains(&claim), "{claim} not in {claims:?}");
        seen += 1;
    }
    assert!(seen >= 1, "{log}");

    // Every deletion once: 41 dumps deleted, each by one intent with outcome `deleted`.
    let deletions = pg.sql(
        "SELECT backup_id, count(*), min(outcome), max(outcome) FROM deletions GROUP BY backup_id",
    );
    assert_eq!(deletions.len(), 41, "{deletions:?}");
    assert!(
        deletions.iter().all(|d| d.ends_with("|1|deleted|deleted")),
        "{deletions:?}"
    );
    // `history` on any host shows the fleet's runs with their hosts.
    let out = hosts[2].retentiond(&["history", "--format", "json", "--limit", "1000"]);
    assert!(out.status.success());
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hosts_seen: std::collections::BTreeSet<&str> = history["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["host"].as_str())
        .collect();
    let ran_hosts: std::collections::BTreeSet<&str> = ran_on.keys().map(String::as_str).collect();
    assert_eq!(hosts_seen, ran_hosts);
}

#[test]
fn a_host_killed_mid_run_is_settled_by_another_with_no_delete_twice() {
    let pg = Postgres::start();
    let fake = docspace::Fake::start(docspace::daily(210));
    // 40 deletions go through briskly, the rest hang: the kill finds intents without outcomes.
    fake.server.fault(
        "DELETE",
        "/deletebackup/",
        Some(40),
        Fault::Delay(Duration::from_millis(10)),
    );
    fake.server.fault(
        "DELETE",
        "/deletebackup/",
        Some(4),
        Fault::Delay(Duration::from_secs(3)),
    );
    let account = portal(&fake);
    let policy = "name: p\naccount: portal\nschedule: \"* * * * * *\"\nmode: enforce\nkeep:\n  last: 10\nguard:\n  max_delete_fraction: 1\n";
    let mut a = Host::new("host-a", &pg, &account, policy);
    let mut b = Host::new("host-b", &pg, &account, policy);
    a.start();
    wait_for(
        "deletions in flight",
        Duration::from_secs(20),
        &[&a],
        || fake.server.lines("DELETE").len() >= 42,
    );
    a.kill(); // SIGKILL: its lock's session dies with it
    let open = pg.sql("SELECT count(*) FROM deletions WHERE outcome IS NULL");
    assert_ne!(open, ["0"], "the kill left intents open");
    // The calls the dead host had in flight reach the portal and are carried out.
    std::thread::sleep(Duration::from_millis(3500));
    fake.server.clear_faults();
    b.start();
    wait_for("the kept set", Duration::from_secs(30), &[&a, &b], || {
        fake.records.lock().unwrap().len() == 10
    });
    wait_for(
        "every intent settled",
        Duration::from_secs(10),
        &[&a, &b],
        || pg.sql("SELECT count(*) FROM deletions WHERE outcome IS NULL") == ["0"],
    );
    assert_eq!(b.stop(), 0, "{}", b.log());
    let kept: Vec<String> = fake
        .records
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.id.clone())
        .collect();
    let expected: Vec<String> = docspace::daily(10).into_iter().map(|r| r.id).collect();
    assert_eq!(kept, expected);
    // No backup received two DELETEs.
    let mut sent: BTreeMap<String, usize> = BTreeMap::new();
    for line in fake.server.lines("DELETE") {
        *sent.entry(line).or_default() += 1;
    }
    assert!(sent.values().all(|n| *n == 1), "{sent:?}");
    assert_eq!(sent.len(), 200);
    // Host b's run settled host a's open intents.
    let reconciled = pg.sql("SELECT count(*) FROM deletions WHERE reconciled = 1");
    assert_ne!(reconciled, ["0"]);
    let interrupted = pg.sql("SELECT host FROM runs WHERE outcome = 'interrupted'");
    assert_eq!(interrupted, ["host-a"]);
}

/// The command exited 7 and said `says` on stderr; its stderr.
fn exits_7_saying(out: &std::process::Output, says: &str) -> String {
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.contains(says), "{stderr}");
    stderr
}

/// The daemon is still running, and its `/healthz` says the journal cannot be reached.
fn assert_up_without_journal(host: &mut Host) {
    assert!(
        host.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the daemon stays up: {}",
        host.log()
    );
    let (code, body) = get(host, "/healthz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("the journal cannot be reached"), "{body}");
}

/// `GET path` on the host's metrics endpoint: (status, body).
fn get(host: &Host, path: &str) -> (u16, String) {
    common::http_get(&common::metrics_address(&host.log()), path)
}

#[test]
fn postgresql_lost_mid_run_stops_the_deletions_and_the_next_fire_completes_once_it_is_back() {
    let pg = Postgres::start();
    let fake = docspace::Fake::start(docspace::daily(60));
    // Each deletion takes a while: the database goes away in the middle of the run.
    fake.server.fault(
        "DELETE",
        "/deletebackup/",
        None,
        Fault::Delay(Duration::from_millis(150)),
    );
    let account = portal(&fake);
    let policy = "name: p\naccount: portal\nschedule: \"* * * * * *\"\nmode: enforce\nkeep:\n  last: 10\nguard: {max_delete_fraction: 1}\n";
    let mut a = Host::new("host-a", &pg, &account, policy);
    a.start();
    wait_for("deletions", Duration::from_secs(20), &[&a], || {
        fake.server.lines("DELETE").len() >= 5
    });
    pg.stop_server();
    let at_loss = fake.server.lines("DELETE").len();
    std::thread::sleep(Duration::from_secs(3));
    // At most the calls whose intents were committed before the database went away: those
    // in flight and the window recorded ahead of them (twice the account's cap of 4 calls,
    // as the provider never waited for the journal); none whose intent was not.
    let after = fake.server.lines("DELETE").len();
    assert!(after <= at_loss + 8, "{at_loss} at the loss, {after} after");
    assert_up_without_journal(&mut a);
    let (_, metrics) = get(&a, "/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("retentiond_journal_errors_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );

    pg.start_server();
    fake.server.clear_faults();
    wait_for("the kept set", Duration::from_secs(30), &[&a], || {
        fake.records.lock().unwrap().len() == 10
    });
    wait_for("healthy again", Duration::from_secs(10), &[&a], || {
        get(&a, "/healthz").0 == 200
    });
    assert_eq!(a.stop(), 0, "{}", a.log());
    let mut sent: BTreeMap<String, usize> = BTreeMap::new();
    for line in fake.server.lines("DELETE") {
        *sent.entry(line).or_default() += 1;
    }
    assert!(sent.values().all(|n| *n == 1), "no DELETE twice: {sent:?}");
    assert_eq!(sent.len(), 50);
    assert_eq!(
        pg.sql("SELECT count(*) FROM deletions WHERE outcome IS NULL"),
        ["0"]
    );
}

#[test]
fn two_run_commands_of_one_policy_on_two_hosts_one_runs_the_other_exits_7() {
    let pg = Postgres::start();
    let fake = docspace::Fake::start(docspace::daily(8));
    fake.server.fault(
        "GET",
        "/getbackuphistory",
        Some(1),
        Fault::Delay(Duration::from_secs(2)),
    );
    let account = portal(&fake);
    let policy = "name: p\naccount: portal\nmode: enforce\nkeep:\n  last: 5\nguard: {max_delete_fraction: 1}\n";
    let a = Host::new("host-a", &pg, &account, policy);
    let b = Host::new("host-b", &pg, &account, policy);
    assert!(a.retentiond(&["approve", "--all"]).status.success());
    let first = Command::new(env!("CARGO_BIN_EXE_retentiond"))
        .args(["--config", "retentiond.yaml", "run"])
        .current_dir(a.dir.path())
        .env("RETENTIOND_HOST", "host-a")
        .envs(common::SECRET_ENV.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = first;
    wait_for(
        "the first run's listing",
        Duration::from_secs(10),
        &[],
        || !fake.server.requests().is_empty(),
    );
    // The holder is named while it is still listing: recorded when it took the lock.
    let refused = b.retentiond(&["run"]);
    exits_7_saying(
        &refused,
        &format!(
            "policy p is being run by another retentiond process (pid {} on host-a since ",
            first.id()
        ),
    );
    assert!(first.wait().unwrap().success());
    assert_eq!(fake.records.lock().unwrap().len(), 5);
    assert_eq!(
        fake.server.lines("DELETE").len(),
        3,
        "deleted once, by host-a"
    );
    assert_eq!(
        pg.sql("SELECT host FROM runs WHERE outcome = 'ok'"),
        ["host-a"]
    );
}

#[test]
fn postgresql_down_at_start_the_daemon_stays_up_and_retries_and_a_run_exits_7() {
    let pg = Postgres::start();
    let folder = tempfile::tempdir().unwrap();
    for n in 0..8 {
        dump(folder.path(), n);
    }
    let account = format!(
        "  dumps:\n    provider: local\n    path: {}\n",
        folder.path().display()
    );
    let mut a = Host::new("host-a", &pg, &account, LOCAL_POLICY);
    assert!(a.retentiond(&["approve", "--all"]).status.success());
    pg.stop_server();

    // A one-shot run: exit 7 with the reason, nothing deleted.
    let stderr = exits_7_saying(
        &a.retentiond(&["run"]),
        "cannot open it: error connecting to server",
    );
    assert!(stderr.contains("; nothing was deleted\n"), "{stderr}");
    assert_eq!(stderr.matches("nothing was deleted").count(), 1, "{stderr}");
    assert!(
        stderr.contains("127.0.0.1"),
        "the server is named: {stderr}"
    );
    assert_eq!(files(folder.path()).len(), 8);

    // The daemon: up, unhealthy, trying again with a growing delay.
    a.spawn();
    wait_for("the retries", Duration::from_secs(20), &[&a], || {
        a.log().matches("the journal cannot be reached").count() >= 3
    });
    assert!(a.log().contains("trying again in 1s"), "{}", a.log());
    assert!(a.log().contains("trying again in 2s"), "{}", a.log());
    assert_up_without_journal(&mut a);
    assert_eq!(files(folder.path()).len(), 8, "nothing deleted meanwhile");

    pg.start_server();
    wait_for("the kept set", Duration::from_secs(30), &[&a], || {
        files(folder.path()).len() == 5
    });
    wait_for("healthy", Duration::from_secs(30), &[&a], || {
        get(&a, "/healthz").0 == 200
    });
    assert!(a.log().contains("the journal answers again"), "{}", a.log());
    assert_eq!(a.stop(), 0, "{}", a.log());
}

/// Backup ids with a tab, a newline, a backslash, a carriage return and COPY's end-of-data
/// line (`\.`) reach PostgreSQL (decisions through `COPY`, intents through statements) and
/// come back exactly as they were.
#[test]
fn ids_with_tabs_newlines_and_backslashes_come_back_from_postgresql_as_they_were() {
    let pg = Postgres::start();
    let shared = tempfile::tempdir().unwrap();
    let folder = shared.path().join("backups");
    let names = [
        "db-20260101T030000Z\ttab.sql",
        "db-20260102T030000Z\nnewline é.sql",
        // Kept: the local provider deletes no name with a backslash.
        "db-20260103T030000Z\n\\.\n\\N\r.sql",
    ];
    for name in names {
        common::write(&folder, name, "");
    }
    let account = format!(
        "  dumps: {{ provider: local, path: {} }}\n",
        folder.display()
    );
    let policy = LOCAL_POLICY
        .replace(r"Z)\.sql$", r"Z)(?s:.*)\.sql$")
        .replace("last: 5", "last: 1");
    let host = Host::new("host-a", &pg, &account, &policy);
    assert!(host.retentiond(&["approve", "--all"]).status.success());
    let out = host.retentiond(&["run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(files(&folder), [names[2]]);

    let history = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["history", "--format", "json"];
        all.extend_from_slice(args);
        common::json(&String::from_utf8_lossy(&host.retentiond(&all).stdout))
    };
    let run = &history(&[])["runs"][0];
    let mut deleted: Vec<&str> = run["deletions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    deleted.sort();
    assert_eq!(deleted, names[..2]);
    let decisions = history(&["--run", &run["id"].to_string()]);
    let mut decided: Vec<(&str, &str)> = decisions["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["id"].as_str().unwrap(), d["action"].as_str().unwrap()))
        .collect();
    decided.sort();
    assert_eq!(
        decided,
        [
            (names[0], "delete"),
            (names[1], "delete"),
            (names[2], "keep")
        ]
    );
}

#[test]
fn a_hold_made_on_one_host_keeps_the_backup_on_another() {
    let pg = Postgres::start();
    let shared = tempfile::tempdir().unwrap();
    let folder = shared.path().join("backups");
    for n in 0..12 {
        dump(&folder, n);
    }
    let account = format!(
        "  dumps: {{ provider: local, path: {} }}\n",
        folder.display()
    );
    let a = Host::new("host-a", &pg, &account, LOCAL_POLICY);
    let mut b = Host::new("host-b", &pg, &account, LOCAL_POLICY);
    // On host a, a plan is reviewed; then a person holds the oldest dump: `apply` of the plan
    // made before the hold is refused, and deletes nothing.
    let out = a.retentiond(&["approve", "--all"]);
    assert!(out.status.success(), "{out:?}");
    let out = a.retentiond(&["plan", "--out", "plan.json"]);
    assert!(out.status.success(), "{out:?}");
    let held = "db-20260101T030000Z.sql";
    let out = a.retentiond(&[
        "hold",
        "add",
        held,
        "--policy",
        "p",
        "--reason",
        "legal hold",
        "--ticket",
        "LEG-7",
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = a.retentiond(&["apply", "plan.json"]);
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("now keep: held: legal hold [LEG-7]"),
        "{out:?}"
    );
    assert_eq!(files(&folder).len(), 12);
    // The daemon on host b then runs the policy.
    let out = b.retentiond(&["hold", "list"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("legal hold [LEG-7]"),
        "{out:?}"
    );
    b.start();
    wait_for("host b's deletions", Duration::from_secs(20), &[&b], || {
        files(&folder).len() == 6
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(b.stop(), 0, "{}", b.log());
    let left = files(&folder);
    assert_eq!(left.len(), 6, "{left:?}");
    assert_eq!(left[0], held);
    // Released on host b, the next run on host a deletes it, and the journal says who.
    let out = b.retentiond(&["hold", "release", "1", "--reason", "case closed"]);
    assert!(out.status.success(), "{out:?}");
    let out = a.retentiond(&["run"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(files(&folder).len(), 5);
    let released = pg.sql("SELECT release_reason FROM holds WHERE id = 1");
    assert_eq!(released, ["case closed"]);
}

#[test]
fn two_daemons_on_one_database_tell_a_blocked_policy_once() {
    let pg = Postgres::start();
    let receivers = common::receivers::Receivers::start();
    let shared = tempfile::tempdir().unwrap();
    let folder = shared.path().join("backups");
    for n in 0..12 {
        dump(&folder, n);
    }
    let account = format!(
        "  dumps: {{ provider: local, path: {} }}\n",
        folder.display()
    );
    let blocked = LOCAL_POLICY.replace(
        "max_delete_fraction: 1",
        "max_delete_fraction: 1\n  max_delete: 2",
    );
    let notify = format!(
        "notify:\n  sinks:\n    hook: {{ type: webhook, url: \"http://127.0.0.1:{}/hook\" }}\n  routes:\n    - sinks: [hook]\n",
        receivers.http
    );
    let mut hosts: Vec<Host> = ["host-a", "host-b"]
        .iter()
        .map(|name| {
            let host = Host::new(name, &pg, &account, &blocked);
            let config = host.dir.path().join("retentiond.yaml");
            let text = std::fs::read_to_string(&config).unwrap();
            std::fs::write(&config, format!("{text}{notify}")).unwrap();
            host
        })
        .collect();
    for host in &mut hosts {
        host.start();
    }
    // Several ticks, on either host: the condition is told once in the fleet.
    let all: Vec<&Host> = hosts.iter().collect();
    wait_for("four blocked runs", Duration::from_secs(20), &all, || {
        pg.sql("SELECT count(*) FROM runs WHERE policy = 'p' AND outcome = 'blocked'")[0]
            .parse::<u32>()
            .unwrap()
            >= 4
    });
    std::thread::sleep(Duration::from_millis(500));
    for host in &mut hosts {
        assert_eq!(host.stop(), 0, "{}", host.log());
    }
    let posts = receivers.posts("/hook");
    assert_eq!(posts.len(), 1, "{posts:?}");
    let told: serde_json::Value = serde_json::from_str(posts[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(told["event"], "blocked");
    // Sent by the host that ran the run that found it.
    let first = pg.sql(
        "SELECT host FROM runs WHERE policy = 'p' AND outcome = 'blocked' ORDER BY id LIMIT 1",
    );
    assert_eq!(told["host"].as_str(), Some(first[0].as_str()));
    assert_eq!(files(&folder).len(), 12, "nothing deleted");
}

/// On PostgreSQL a run records its plan's decisions beside its deletions. When they cannot be
/// recorded, no deletion goes out once that is known, the run fails saying so (exit 7), and each
/// backup that went has its intent and outcome in the journal. The run's listing still counts
/// as the listing-drop baseline, so the next run is not blocked by what the failed run deleted
/// and finishes the work, decisions recorded.
#[test]
fn decisions_that_cannot_be_recorded_beside_the_deletions_stop_them_and_the_next_run_finishes() {
    let pg = Postgres::start();
    let fake = docspace::Fake::start(docspace::daily(210));
    // Deletions take a while, so the failure is known while most are still to be sent.
    fake.server.fault(
        "DELETE",
        "/deletebackup/",
        None,
        Fault::Delay(Duration::from_millis(50)),
    );
    let account = portal(&fake);
    let policy = |last: u32| {
        format!(
            "name: p\naccount: portal\nmode: enforce\nkeep:\n  last: {last}\nguard:\n  max_delete_fraction: 1\n  max_listing_drop: 0.05\n"
        )
    };
    // A first run that deletes nothing: the baseline of 210.
    let host = Host::new("host-a", &pg, &account, &policy(210));
    assert!(host.retentiond(&["approve", "--all"]).status.success());
    let out = host.retentiond(&["run"]);
    assert!(out.status.success(), "{out:?}");

    common::write(host.dir.path(), "policies/p.yaml", &policy(10));
    assert!(host.retentiond(&["approve", "--all"]).status.success());
    // The decisions fail half a second into their transaction.
    pg.sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_sleep(0.5); RAISE EXCEPTION 'no room for decisions'; END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON decision_spans
         FOR EACH ROW EXECUTE FUNCTION refuse()",
    );
    let out = host.retentiond(&["run"]);
    let stderr = exits_7_saying(&out, "no room for decisions");
    assert!(
        stderr.contains("no deletion was sent once that was known"),
        "{stderr}"
    );
    let sent = fake.server.lines("DELETE").len();
    assert!(sent > 0 && sent < 200, "{sent} of 200 deletions were sent");
    // Each one sent has its intent, and its outcome; none is left open or unsent.
    let deleted = pg.sql("SELECT count(*) FROM deletions WHERE outcome = 'deleted'");
    assert_eq!(deleted, [sent.to_string()]);
    assert_eq!(pg.sql("SELECT count(*) FROM deletions"), [sent.to_string()]);
    // Counted (the baseline), not listed (no decisions).
    let run = pg.sql("SELECT listed, outcome FROM runs ORDER BY id DESC LIMIT 1");
    assert_eq!(run, ["2|journal-failed"]);

    pg.sql("DROP TRIGGER refuse ON decision_spans");
    let out = host.retentiond(&["run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fake.records.lock().unwrap().len(), 10);
    assert_eq!(fake.server.lines("DELETE").len(), 200);
    let history = common::json(&String::from_utf8_lossy(
        &host.retentiond(&["history", "--format", "json"]).stdout,
    ));
    let last = &history["runs"][0];
    let decisions = common::json(&String::from_utf8_lossy(
        &host
            .retentiond(&[
                "history",
                "--format",
                "json",
                "--run",
                &last["id"].to_string(),
            ])
            .stdout,
    ));
    assert_eq!(decisions["decisions"].as_array().unwrap().len(), 210 - sent);
}

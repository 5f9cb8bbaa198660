use super::*;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn daily(name: &str) -> Loaded {
    Loaded {
        name: name.into(),
        account: "dumps".into(),
        provider: "local",
        interval: Some(Duration::from_secs(86_400)),
    }
}

fn figures(outcome: &'static str, at_: &str) -> RunFigures {
    RunFigures {
        at: at(at_),
        took: Duration::from_millis(1500),
        outcome,
        kept: 7,
        deleted: 3,
        would_delete: 0,
        blocked: outcome == "blocked",
        deletion_errors: if outcome == "deletions-failed" {
            vec!["server", "server", "timeout"]
        } else {
            vec![]
        },
        newest: [("main".to_string(), at("2026-11-23T03:00:00Z"))].into(),
        held: Some(2),
        waiting: 0,
    }
}

/// The sample lines of a rendering (no comments).
fn samples(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

#[test]
fn per_policy_figures_follow_prometheus_conventions() {
    let m = Metrics::new();
    m.set_policies(vec![daily("pg \"main\"")], at("2026-11-23T00:00:00Z"));
    m.run_started();
    m.run_finished("pg \"main\"", figures("ok", "2026-11-23T03:30:00Z"));
    m.run_started();
    m.run_finished(
        "pg \"main\"",
        figures("deletions-failed", "2026-11-24T03:30:00Z"),
    );
    m.skipped("pg \"main\"");
    let text = m.render(at("2026-11-24T04:00:00Z"));
    let p = "policy=\"pg \\\"main\\\"\"";
    for line in [
        format!("retentiond_policy_info{{{p},account=\"dumps\",provider=\"local\"}} 1"),
        format!("retentiond_policy_last_run_timestamp_seconds{{{p}}} 1795491000"),
        format!("retentiond_policy_last_success_timestamp_seconds{{{p}}} 1795404600"),
        format!("retentiond_policy_last_run_duration_seconds{{{p}}} 1.5"),
        format!("retentiond_policy_backups_kept{{{p}}} 7"),
        format!("retentiond_policy_backups_would_delete{{{p}}} 0"),
        format!("retentiond_policy_backups_deleted_total{{{p}}} 6"),
        format!("retentiond_policy_blocked{{{p}}} 0"),
        format!("retentiond_policy_last_run_success{{{p}}} 0"),
        format!("retentiond_policy_skipped_fires_total{{{p}}} 1"),
        format!("retentiond_policy_runs_total{{{p},outcome=\"deletions-failed\"}} 1"),
        format!("retentiond_policy_runs_total{{{p},outcome=\"ok\"}} 1"),
        "retentiond_deletion_errors_total{provider=\"local\",kind=\"server\"} 2".into(),
        "retentiond_deletion_errors_total{provider=\"local\",kind=\"timeout\"} 1".into(),
        "retentiond_policies 1".into(),
        "retentiond_config_last_reload_successful 1".into(),
        "retentiond_healthy 1".into(),
    ] {
        assert!(samples(&text).contains(&line.as_str()), "{line} in\n{text}");
    }
    // Every family has HELP and TYPE, once; counters end in _total.
    for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
        let parts: Vec<&str> = line.split(' ').collect();
        let (name, kind) = (parts[2], parts[3]);
        assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
        assert_eq!(
            text.matches(&format!("# TYPE {name} ")).count(),
            1,
            "{name}"
        );
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
    }
}

#[test]
fn provider_requests_are_counted_by_result_with_a_latency_histogram() {
    let m = Metrics::new();
    m.request(
        "portal",
        "onlyoffice-docspace",
        "ok",
        Duration::from_millis(30),
    );
    m.request(
        "portal",
        "onlyoffice-docspace",
        "ok",
        Duration::from_millis(700),
    );
    m.request(
        "portal",
        "onlyoffice-docspace",
        "rate_limited",
        Duration::from_millis(5),
    );
    let text = m.render(at("2026-11-23T00:00:00Z"));
    let labels = "account=\"portal\",provider=\"onlyoffice-docspace\"";
    for line in [
        format!("retentiond_provider_requests_total{{{labels},result=\"ok\"}} 2"),
        format!("retentiond_provider_requests_total{{{labels},result=\"rate_limited\"}} 1"),
        format!("retentiond_provider_request_duration_seconds_bucket{{{labels},le=\"0.01\"}} 1"),
        format!("retentiond_provider_request_duration_seconds_bucket{{{labels},le=\"0.05\"}} 2"),
        format!("retentiond_provider_request_duration_seconds_bucket{{{labels},le=\"0.5\"}} 2"),
        format!("retentiond_provider_request_duration_seconds_bucket{{{labels},le=\"1\"}} 3"),
        format!("retentiond_provider_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 3"),
        format!("retentiond_provider_request_duration_seconds_count{{{labels}}} 3"),
    ] {
        assert!(samples(&text).contains(&line.as_str()), "{line} in\n{text}");
    }
}

#[test]
fn a_failed_reload_is_unhealthy_until_a_good_one() {
    let m = Metrics::new();
    m.set_policies(vec![daily("p")], at("2026-11-23T00:00:00Z"));
    let now = at("2026-11-23T00:01:00Z");
    m.reloaded(
        now,
        Err(vec!["p.yaml:3:7: `keep.last` must be a count".into()]),
    );
    let health = m.health(now);
    assert_eq!(health.problems.len(), 1);
    assert!(
        health.problems[0].contains("the last reload failed (1 error)")
            && health.problems[0].contains("p.yaml:3:7"),
        "{health:?}"
    );
    let text = m.render(now);
    assert!(samples(&text).contains(&"retentiond_config_last_reload_successful 0"));
    assert!(samples(&text).contains(&"retentiond_config_reloads_total{result=\"failure\"} 1"));
    assert!(samples(&text).contains(&"retentiond_healthy 0"));
    assert!(m.status_line().contains("LAST RELOAD FAILED"));
    m.reloaded(now, Ok(()));
    assert_eq!(m.health(now).problems, Vec::<String>::new());
}

#[test]
fn a_policy_without_success_for_twice_its_interval_is_unhealthy() {
    let m = Metrics::new();
    let mut manual = daily("manual");
    manual.interval = None;
    m.set_policies(vec![daily("p"), manual], at("2026-11-20T00:00:00Z"));
    // Never ran: counted from when it was loaded.
    assert!(m.health(at("2026-11-21T23:59:00Z")).problems.is_empty());
    let problems = m.health(at("2026-11-22T00:01:00Z")).problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("policy p has not succeeded since it was loaded"));
    m.run_finished("p", figures("ok", "2026-11-22T03:30:00Z"));
    m.run_finished("p", figures("blocked", "2026-11-23T03:30:00Z"));
    m.run_finished("p", figures("listing-failed", "2026-11-24T03:30:00Z"));
    assert!(m.health(at("2026-11-24T03:29:00Z")).problems.is_empty());
    let problems = m.health(at("2026-11-24T03:31:00Z")).problems;
    assert_eq!(
        problems,
        [
            "policy p has not succeeded since 2026-11-22T03:30:00Z, more than twice its schedule interval (86400s); last run: listing-failed"
        ]
    );
    assert!(
        m.status_line().ends_with("last run not ok: p"),
        "{}",
        m.status_line()
    );
}

#[test]
fn a_fire_another_host_runs_is_not_this_hosts_silence() {
    let m = Metrics::new();
    m.set_policies(vec![daily("p")], at("2026-11-20T00:00:00Z"));
    m.run_finished("p", figures("ok", "2026-11-20T03:30:00Z"));
    // The database was down for days: this host's runs failed.
    m.run_finished("p", figures("journal-failed", "2026-11-21T03:30:00Z"));
    m.run_finished("p", figures("journal-failed", "2026-11-22T03:30:00Z"));
    assert_eq!(m.health(at("2026-11-23T03:30:30Z")).problems.len(), 1);
    // It is back, and the next fire is another host's, whose run has no outcome yet: the
    // journal's last success is still the old one, but this host is not the one to say so.
    m.run_started();
    m.ran_elsewhere("p", at("2026-11-23T03:30:00Z"), None);
    assert!(m.health(at("2026-11-23T03:30:30Z")).problems.is_empty());
    // Two intervals on with no success anywhere: unhealthy again.
    assert_eq!(m.health(at("2026-11-25T03:31:00Z")).problems.len(), 1);
}

#[test]
fn figures_of_a_report_count_what_was_and_was_not_deleted() {
    use crate::executor::{Execution, FailedDeletion, Ids};
    let mut report = PolicyReport {
        outcome: Some("deletions-failed"),
        execution: Some(Execution {
            deleted: Ids::Named(vec!["a".into(), "b".into()]),
            failed: vec![FailedDeletion {
                id: "c".into(),
                error: "HTTP 500".into(),
                kind: "server",
            }],
            ..Execution::default()
        }),
        ..PolicyReport::default()
    };
    let f = RunFigures::of(&report, at("2026-11-23T00:00:00Z"), Duration::ZERO);
    assert_eq!(
        (f.deleted, f.would_delete, f.deletion_errors),
        (2, 0, vec!["server"])
    );
    report.outcome = None;
    assert_eq!(
        RunFigures::of(&report, at("2026-11-23T00:00:00Z"), Duration::ZERO).outcome,
        "journal-failed"
    );
}

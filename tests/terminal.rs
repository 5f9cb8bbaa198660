//! The command line as a person at a terminal meets it: man pages and completions for every
//! command, a progress line only on a terminal (a pseudo-terminal through `script`), colour
//! that NO_COLOR and `--color` turn off, `--quiet` and `--verbose`.

mod common;

use common::docspace::{self, Fake};
use common::{copy_tree, repo, retentiond, retentiond_in, write};
use std::path::Path;
use std::process::Command;

/// Runs the binary under a pseudo-terminal (util-linux `script`): what the terminal showed.
fn on_a_terminal(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_retentiond"))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let out = Command::new("script")
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .env("TERM", "xterm")
        .envs(env.iter().copied())
        .output()
        .expect("util-linux `script` runs a command under a pseudo-terminal");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A copy of the example with `pg-main` in enforce mode and approved: 694 deletions to make.
fn enforcing() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo("examples/local"), dir.path());
    let policy = dir.path().join("policies/pg-main.yaml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(&policy, text.replace("mode: dry-run", "mode: enforce")).unwrap();
    common::approve_all(dir.path());
    dir
}

#[test]
fn man_pages_and_completions_cover_every_command() {
    let help = retentiond(&["--help"]).stdout;
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 15, "{commands:?}");
    let dir = tempfile::tempdir().unwrap();
    let out = retentiond(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for command in commands
        .iter()
        .copied()
        .chain(["journal-compact", "docspace-purge-history"])
    {
        let page = dir.path().join(format!("retentiond-{command}.1"));
        let text = std::fs::read_to_string(&page).unwrap_or_else(|_| panic!("{page:?}"));
        assert!(
            text.contains(".TH")
                && text.contains(".SH SYNOPSIS")
                && text.contains(".SH FILES")
                && text.contains(".SH EXIT STATUS")
                && text.contains("9  a policy selected no backup at all"),
            "{text}"
        );
    }
    let plan = std::fs::read_to_string(dir.path().join("retentiond-plan.1")).unwrap();
    assert!(
        plan.contains(".SH EXAMPLES\n.PP\n.nf\nretentiond plan \\-\\-policy pg-main"),
        "{plan}"
    );
    // The file pages, from the README's reference: every key of the config and the policy.
    let config = std::fs::read_to_string(dir.path().join("retentiond.yaml.5")).unwrap();
    let policy = std::fs::read_to_string(dir.path().join("retentiond-policy.5")).unwrap();
    assert!(config.starts_with(".TH RETENTIOND.YAML 5 "), "{config}");
    for key in [
        "state_dir:",
        "journal_keep:",
        "dry_run:",
        "metrics:",
        "defaults:",
        "accounts:",
    ] {
        assert!(config.contains(key), "{key} in retentiond.yaml(5)");
    }
    for key in [
        "schedule:",
        "select:",
        "keep:",
        "protect:",
        "guard:",
        "max_delete_fraction:",
        "failed:",
    ] {
        assert!(policy.contains(key), "{key} in retentiond-policy(5)");
    }
    let main = retentiond(&["man"]).stdout;
    assert!(
        main.contains(".TH retentiond 1") && main.contains("Exit codes"),
        "{main}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let script = retentiond(&["completions", shell]);
        assert_eq!(script.code, 0);
        for command in &commands {
            assert!(
                script.stdout.contains(command),
                "{shell} completes {command}"
            );
        }
    }
}

#[test]
fn progress_shows_on_a_terminal_only() {
    // Through pipes (a log, a CI job): no progress line.
    let dir = enforcing();
    let out = retentiond_in(
        dir.path(),
        &["--config", "retentiond.yaml", "run", "--summary"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        !out.stderr.contains("deleting") && !out.stderr.contains('\r'),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("  deleted 694 of 694\n"));

    // On a terminal: the deletions counted up to the total, then the line is cleared.
    let dir = enforcing();
    let shown = on_a_terminal(
        dir.path(),
        &["--config", "retentiond.yaml", "run", "--summary"],
        &[],
    );
    assert!(shown.contains("deleting 1/694"), "{shown}");
    assert!(shown.contains("deleting 694/694"), "{shown}");
    assert!(shown.contains("deleted 694 of 694"), "{shown}");

    // --quiet: none.
    let dir = enforcing();
    let shown = on_a_terminal(
        dir.path(),
        &["--config", "retentiond.yaml", "--quiet", "run", "--summary"],
        &[],
    );
    assert!(!shown.contains("deleting"), "{shown}");
    assert!(shown.contains("deleted 694 of 694"), "{shown}");
}

#[test]
fn colour_on_a_terminal_unless_no_color_or_never() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo("examples/local"), dir.path());
    let plan = [
        "--config",
        "retentiond.yaml",
        "plan",
        "--policy",
        "pg-analytics",
    ];
    let red_or_green =
        |text: &str| text.contains("\x1b[32mkeep") || text.contains("\x1b[31mdelete");
    assert!(red_or_green(&on_a_terminal(dir.path(), &plan, &[])));
    assert!(!red_or_green(&on_a_terminal(
        dir.path(),
        &plan,
        &[("NO_COLOR", "1")]
    )));
    let mut never = plan.to_vec();
    never.extend(["--color", "never"]);
    assert!(!on_a_terminal(dir.path(), &never, &[]).contains("\x1b["));
    // Through a pipe: none, unless asked.
    let piped = retentiond_in(dir.path(), &plan);
    assert!(!piped.stdout.contains("\x1b["));
    let mut always = plan.to_vec();
    always.extend(["--color", "always"]);
    assert!(red_or_green(&retentiond_in(dir.path(), &always).stdout));
    // History too.
    retentiond_in(
        dir.path(),
        &[
            "--config",
            "retentiond.yaml",
            "run",
            "--policy",
            "pg-analytics",
        ],
    );
    let history = on_a_terminal(dir.path(), &["--config", "retentiond.yaml", "history"], &[]);
    assert!(history.contains("\x1b[36mdry-run\x1b[0m"), "{history}");
}

#[test]
fn verbose_shows_each_provider_request() {
    let fake = Fake::start(docspace::daily(5));
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "retentiond.yaml",
        &format!(
            "policies: policies\naccounts:\n  portal:\n    provider: onlyoffice-docspace\n    base_url: {}\n    api_key: ${{env:TEST_DOCSPACE_KEY}}\n",
            fake.server.base
        ),
    );
    write(
        dir.path(),
        "policies/p.yaml",
        "name: p\naccount: portal\nkeep: {last: 3}\n",
    );
    let args = ["--config", "retentiond.yaml", "--verbose", "list"];
    let out = retentiond_in(dir.path(), &args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("request #1: account portal (onlyoffice-docspace): ok in "),
        "{}",
        out.stderr
    );
    let quiet = retentiond_in(dir.path(), &["--config", "retentiond.yaml", "list"]);
    assert!(!quiet.stderr.contains("request #"), "{}", quiet.stderr);
}

/// [`on_a_terminal`] with `input` typed at the terminal.
fn typed_at_a_terminal(dir: &Path, args: &[&str], input: &str) -> String {
    use std::io::Write;
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_retentiond"))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let mut child = Command::new("script")
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .current_dir(dir)
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux `script`");
    // The pseudo-terminal holds what is typed until the program reads it.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn approve_at_a_terminal_shows_what_the_version_would_delete_and_asks_once() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo("examples/local"), dir.path());
    let args = ["--config", "retentiond.yaml", "approve", "pg-analytics"];
    let shown = typed_at_a_terminal(dir.path(), &args, "n\n");
    assert!(
        shown.contains("policy pg-analytics (version ")
            && shown.contains(
                ") would delete 44 of 52 complete backups now (85%): the newest pg-analytics-"
            )
            && shown.contains("approve this policy? [y/N] "),
        "{shown}"
    );
    assert!(shown.contains("nothing was approved"), "{shown}");
    let listed = retentiond_in(
        dir.path(),
        &["--config", "retentiond.yaml", "approve", "--list"],
    );
    assert!(listed.stdout.contains("no approvals"), "{}", listed.stdout);
    let shown = typed_at_a_terminal(dir.path(), &args, "y\n");
    assert!(
        shown.contains("approved policy pg-analytics as in "),
        "{shown}"
    );
    let listed = retentiond_in(
        dir.path(),
        &["--config", "retentiond.yaml", "approve", "--list"],
    );
    assert!(
        listed.stdout.contains(" policy pg-analytics version "),
        "{}",
        listed.stdout
    );
}

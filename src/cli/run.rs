//! `retentiond run`: evaluate now and delete what enforce policies no longer keep, printing
//! each deletion as it happens; Ctrl-C finishes what is in flight.

use super::shared::{
    Outcome, block_on, config_policies, finish, list_policies, lock_policies, open_journal,
    open_providers, require_config, runtime, select_policies, terminal, write_failure,
};
use super::terminal::Progress;
use super::{Cli, Format, RunArgs};
use crate::executor;
use crate::exit;
use crate::policy::{Config, Policy};
use crate::render::{self, PolicyReport};
use crate::runner;
use jiff::Timestamp;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// The `(group, id)` pairs a reviewed plan deletes.
pub(super) type ReviewedSet = Vec<(String, String)>;

pub(super) fn run(cli: &Cli, names: &[String], settings: RunArgs, out: &mut dyn Write) -> Outcome {
    let config = require_config(cli, "")?;
    let all_policies = config_policies(&config)?;
    let policies = select_policies(all_policies.clone(), names)?;
    let policies = policies.into_iter().map(|p| (p, None)).collect();
    run_policies(
        &config,
        &all_policies,
        policies,
        Vec::new(),
        "run",
        settings,
        out,
    )
}

/// Locks, lists and runs each policy (with its reviewed delete set for `apply`), then prints
/// what happened.
pub(super) fn run_policies(
    config: &Config,
    all_policies: &[Policy],
    policies: Vec<(Policy, Option<ReviewedSet>)>,
    reports: Vec<PolicyReport<'static>>,
    command: &'static str,
    settings: RunArgs,
    out: &mut dyn Write,
) -> Outcome {
    let mut reports: Vec<PolicyReport> = reports;
    let journal = open_journal(config)?;
    let (reviewed, policies): (Vec<_>, Vec<_>) = policies
        .into_iter()
        .map(|(policy, reviewed)| ((policy.name.clone(), reviewed), policy))
        .unzip();
    // A run lock lost on the way (PostgreSQL) stops the deletions at once.
    let stop = executor::Stop::default();
    let (policies, _locks, skipped) = lock_policies(&journal, policies, &stop);
    reports.extend(skipped);
    let started_at = Timestamp::now();
    let places = config.places();
    let providers = open_providers(&policies, config);
    let listings = list_policies(&providers);
    // From here on Ctrl-C lets the deletions in flight finish and sends no more.
    stop_on_interrupt(&stop);
    let text = settings.format == Format::Text;
    let progress = terminal().progress;
    if text {
        render::run_text(out, &reports, settings.summary).map_err(write_failure)?;
    }
    for ((policy, provider), listing) in policies.iter().zip(&providers).zip(&listings) {
        if stop.is_set() {
            let mut report = PolicyReport::new(policy);
            report.skipped =
                Some("interrupted before this policy ran: nothing was planned or deleted".into());
            if text {
                render::run_text(out, std::slice::from_ref(&report), settings.summary)
                    .map_err(write_failure)?;
            }
            reports.push(report);
            continue;
        }
        let reviewed = reviewed
            .iter()
            .find(|(name, _)| name == &policy.name)
            .and_then(|(_, set)| set.as_deref());
        let (sender, mut printed_live) = tokio::sync::mpsc::unbounded_channel();
        let options = runner::Options {
            command,
            dry_run: runner::dry_run_reason(policy, settings.dry_run, config),
            accept_listing_drop: settings.accept_listing_drop,
            accept_max_delete: settings.accept_max_delete,
            approve: settings.approve,
            policies: all_policies,
            places: &places,
            reviewed,
            started_at,
            now: Timestamp::now(),
            stop: stop.clone(),
            watch: (text || progress).then(|| {
                Arc::new(LivePrinter {
                    sender,
                    text,
                    summary: settings.summary,
                    state: Mutex::default(),
                }) as Arc<dyn runner::Watch>
            }),
            journal_keep: config.journal_keep,
            default_grace: config.default_grace,
        };
        let tz = runner::zone(policy, Some(config));
        // The run and the printing of what it reports as it happens, side by side.
        let (report, written) = block_on(async {
            let run = async {
                let report =
                    runner::run_policy(&journal, policy, &tz, provider, listing, &options).await;
                drop(options);
                report
            };
            let print = async {
                let mut result = Ok(());
                let mut bar: Option<Progress> = None;
                while let Some(event) = printed_live.recv().await {
                    match event {
                        Live::Text(text) if result.is_ok() => {
                            if let Some(bar) = &mut bar {
                                bar.clear();
                            }
                            result = out.write_all(text.as_bytes()).and_then(|_| out.flush());
                        }
                        Live::Text(_) => {}
                        Live::Deleting(total) if progress && total > 0 => {
                            bar = Some(Progress::new("deleting", Some(total)));
                        }
                        Live::Deleting(_) => {}
                        Live::Done(n) => {
                            if let Some(bar) = &mut bar {
                                bar.advance(n);
                            }
                        }
                    }
                }
                if let Some(bar) = &mut bar {
                    bar.clear();
                }
                result
            };
            tokio::join!(run, print)
        });
        if text {
            written
                .and_then(|_| match report.plan {
                    Some(_) => render::run_tail(out, &report),
                    None => render::run_text(out, std::slice::from_ref(&report), settings.summary),
                })
                .map_err(write_failure)?;
        }
        reports.push(report);
    }
    if !text {
        render::json(out, &reports).map_err(write_failure)?;
    }
    let code = finish(&reports);
    Ok(if stop.lock_lost() {
        // The journal's database went away mid-run.
        exit::JOURNAL
    } else if stop.is_set() && code != exit::JOURNAL {
        exit::INTERRUPTED
    } else {
        code
    })
}

/// What a run tells the printer as it happens.
enum Live {
    /// Text for standard output.
    Text(String),
    /// The plan is made: this many deletions to send.
    Deleting(usize),
    /// This many more deletions ended (deleted or failed).
    Done(usize),
}

/// `run`'s output as it happens: in text, each policy's head once its plan is made, then every
/// deletion when it is recorded (deletions resumed from an earlier run, which settle before
/// the plan, right after the head); on a terminal, a progress line of the deletions.
pub(super) struct LivePrinter {
    sender: tokio::sync::mpsc::UnboundedSender<Live>,
    /// Text output (else JSON at the end: only progress now).
    text: bool,
    /// `--summary`: the head only.
    summary: bool,
    /// Whether the head is out, and the resumed lines waiting for it.
    state: Mutex<(bool, Vec<String>)>,
}

impl runner::Watch for LivePrinter {
    fn planned(&self, report: &PolicyReport) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = true;
        if self.text {
            let mut head = Vec::new();
            // Writing into a Vec cannot fail.
            let _ = render::run_head(&mut head, report);
            let mut text = String::from_utf8_lossy(&head).into_owned();
            for line in state.1.drain(..) {
                text.push_str(&line);
            }
            let _ = self.sender.send(Live::Text(text));
        }
        let deleting = report
            .plan
            .as_ref()
            .filter(|p| {
                p.blocked.is_none() && report.dry_run.is_none() && report.refused.is_empty()
            })
            .map_or(0, |p| p.summary.delete);
        let _ = self.sender.send(Live::Deleting(deleting));
    }

    fn settled(&self, outcomes: &[executor::Outcome]) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 {
            let done = outcomes
                .iter()
                .filter(|o| !matches!(o.settled, executor::Settled::Pending(_)));
            let _ = self.sender.send(Live::Done(done.count()));
        }
        if self.summary || !self.text || outcomes.is_empty() {
            return;
        }
        // The lines of one commit as one text: a million deletions are a few hundred texts to
        // hand to the printer, not a million.
        let mut lines = String::new();
        for o in outcomes {
            lines.push_str(&render::settled_line(&o.backup.id, &o.settled, !state.0));
            lines.push('\n');
        }
        match state.0 {
            true => {
                let _ = self.sender.send(Live::Text(lines));
            }
            false => state.1.push(lines),
        }
    }
}

/// On Ctrl-C (SIGINT), `stop` is set: the deletions in flight finish and are recorded, no more
/// are sent, and the run prints what it did. A second Ctrl-C quits at once (the next run
/// settles what was in flight from the journal).
pub(super) fn stop_on_interrupt(stop: &executor::Stop) {
    let stop = stop.clone();
    runtime().spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        stop.set();
        eprintln!(
            "interrupted: finishing the deletions in flight and sending no more (Ctrl-C again quits at once)"
        );
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "interrupted again: quitting; the next run settles the deletions that were in flight"
            );
            std::process::exit(i32::from(exit::INTERRUPTED));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Backup, Status};
    use runner::Watch;

    fn printer(text: bool) -> (LivePrinter, tokio::sync::mpsc::UnboundedReceiver<Live>) {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let printer = LivePrinter {
            sender,
            text,
            summary: false,
            state: Mutex::new((true, Vec::new())),
        };
        (printer, receiver)
    }

    #[test]
    fn the_deletions_of_one_commit_reach_the_printer_as_one_text() {
        let at = "2026-01-01T00:00:00Z".parse().unwrap();
        let backups: Vec<Backup> = ["a", "b", "c"]
            .iter()
            .map(|id| Backup::new(id, "g", at, Status::Complete))
            .collect();
        let settled = [
            executor::Settled::Deleted,
            executor::Settled::Pending("task 7 running"),
            executor::Settled::Failed("403 Forbidden"),
        ];
        let outcomes: Vec<executor::Outcome> = backups
            .iter()
            .zip(settled)
            .map(|(backup, settled)| executor::Outcome {
                token: 1,
                backup,
                settled,
            })
            .collect();
        let (live, mut receiver) = printer(true);
        live.settled(&outcomes);
        // The pending one has not ended yet: the progress line counts two.
        assert!(matches!(receiver.try_recv(), Ok(Live::Done(2))));
        let Ok(Live::Text(text)) = receiver.try_recv() else {
            panic!("no text");
        };
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], "deleted a");
        assert_eq!(lines[1], "pending b: task 7 running");
        assert!(lines[2].ends_with("c: 403 Forbidden"), "{text}");
        assert!(receiver.try_recv().is_err(), "one text for the commit");

        // JSON output: only the progress.
        let (live, mut receiver) = printer(false);
        live.settled(&outcomes);
        assert!(matches!(receiver.try_recv(), Ok(Live::Done(2))));
        assert!(receiver.try_recv().is_err());
    }
}

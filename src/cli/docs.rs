//! `retentiond man` and `retentiond completions`: man pages and shell completions made from
//! the same clap definitions as the commands themselves, never written by hand.

use super::Cli;
use super::shared::{Failure, Outcome, write_failure};
use crate::exit;
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

/// `retentiond man`: the main page on stdout, or with `dir` every page (`retentiond.1`,
/// `retentiond-plan.1`, `retentiond-journal-compact.1`, ...) written there.
pub(super) fn man(dir: Option<&Path>, out: &mut dyn Write) -> Outcome {
    let command = Cli::command();
    let Some(dir) = dir else {
        clap_mangen::Man::new(command)
            .render(out)
            .map_err(write_failure)?;
        return Ok(exit::OK);
    };
    std::fs::create_dir_all(dir).map_err(|e| cannot_write(dir, &e))?;
    let mut written = Vec::new();
    write_pages(&command, &["retentiond".to_string()], dir, &mut written)?;
    for (name, title, heading) in FILE_PAGES {
        let path = dir.join(format!("{name}.5"));
        std::fs::write(&path, file_page(name, title, heading))
            .map_err(|e| cannot_write(&path, &e))?;
        written.push(path);
    }
    for path in &written {
        writeln!(out, "{}", path.display()).map_err(write_failure)?;
    }
    Ok(exit::OK)
}

/// The page of `command` (`words`: its command line, `["retentiond", "journal", "compact"]`)
/// and of each of its subcommands.
fn write_pages(
    command: &clap::Command,
    words: &[String],
    dir: &Path,
    written: &mut Vec<std::path::PathBuf>,
) -> Result<(), Failure> {
    let name = words.join("-");
    let page = command.clone().name(name.clone()).bin_name(words.join(" "));
    let path = dir.join(format!("{name}.1"));
    let mut text = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut text)
        .and_then(|_| {
            text.extend_from_slice(command_sections(words).as_bytes());
            std::fs::write(&path, text)
        })
        .map_err(|e| cannot_write(&path, &e))?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let mut longer = words.to_vec();
        longer.push(sub.get_name().to_string());
        write_pages(sub, &longer, dir, written)?;
    }
    Ok(())
}

/// The file pages (section 5): their name, their one-line title, and the README section
/// they are made from, so that the reference is written once.
const FILE_PAGES: [(&str, &str, &str); 2] = [
    (
        "retentiond.yaml",
        "the retentiond daemon config: policies, state, journal, accounts",
        "## Daemon config",
    ),
    (
        "retentiond-policy",
        "retentiond policy files: selection, keep rules, guards",
        "## Policy reference",
    ),
];

/// The README the binary was built with: the file pages' source.
const README: &str = include_str!("../../README.md");

/// The FILES, EXIT STATUS and EXAMPLES sections of a command's page.
fn command_sections(words: &[String]) -> String {
    let mut out = String::from(
        ".SH FILES\n.TP\n/etc/retentiond/retentiond.yaml\nThe config (\\-\\-config, $RETENTIOND_CONFIG); see \\fBretentiond.yaml\\fR(5).\n.TP\n/etc/retentiond/policies/*.yaml\nThe policies; see \\fBretentiond\\-policy\\fR(5).\n.TP\n/var/lib/retentiond/journal.sqlite\nThe journal in state_dir (runs, decisions, deletions, approvals, holds), with locks/ and daemon.lock beside it.\n",
    );
    out.push_str(".SH EXIT STATUS\n.nf\n");
    for line in super::EXIT_CODES.lines().skip(1) {
        out.push_str(&roff_text(line));
        out.push('\n');
    }
    out.push_str(".fi\n");
    let examples: &[&str] = match words.get(1).map(String::as_str) {
        None => &[
            "retentiond validate /etc/retentiond",
            "retentiond plan",
            "retentiond run \\-\\-policy pg-main",
        ],
        Some("plan") => &[
            "retentiond plan \\-\\-policy pg-main",
            "retentiond plan \\-\\-out plan.json \\-\\-svg plan.svg",
            "retentiond plan \\-\\-policies policies \\-\\-listing backups.json",
        ],
        Some("run") => &[
            "retentiond run \\-\\-dry\\-run",
            "retentiond run \\-\\-policy pg-main \\-\\-accept\\-max\\-delete",
        ],
        Some("diff") => &[
            "retentiond diff \\-\\-base origin/main \\-\\-listing backups.json \\-\\-format markdown",
        ],
        Some("approve") => &[
            "retentiond approve pg-main",
            "retentiond approve \\-\\-list",
        ],
        Some("history") => &[
            "retentiond history \\-\\-policy pg-main \\-\\-since 7d",
            "retentiond history \\-\\-outcome blocked \\-\\-format json",
        ],
        Some("hold") => &[
            "retentiond hold add db\\-20261201.dump \\-\\-policy pg-main \\-\\-reason \\(dqincident 42\\(dq \\-\\-for 30d",
            "retentiond hold list \\-\\-all",
            "retentiond hold release 3 \\-\\-reason \\(dqincident closed\\(dq",
        ],
        Some("status") => &["retentiond status", "retentiond status \\-\\-format json"],
        Some("notify") => &["retentiond notify test ops\\-chat"],
        Some("simulate") => {
            &["retentiond simulate \\-\\-policy pg-main \\-\\-for 2y \\-\\-svg sim.svg"]
        }
        _ => &[],
    };
    if !examples.is_empty() {
        out.push_str(".SH EXAMPLES\n");
        for example in examples {
            out.push_str(&format!(".PP\n.nf\n{example}\n.fi\n"));
        }
    }
    out
}

/// A section 5 page made from the README section under `heading`: paragraphs, lists, code
/// blocks and tables, in roff.
fn file_page(name: &str, title: &str, heading: &str) -> String {
    let body = README
        .split_once(&format!("\n{heading}\n"))
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let end = body.find("\n## ").unwrap_or(body.len());
    let body = &body[..end];
    let mut out = format!(
        ".TH {} 5 \"\" \"retentiond {}\"\n.SH NAME\n{} \\- {}\n.SH DESCRIPTION\n",
        name.to_uppercase(),
        env!("CARGO_PKG_VERSION"),
        roff_text(name),
        roff_text(title)
    );
    let mut code = false;
    for line in body.lines() {
        if line.starts_with("```") {
            out.push_str(if code { ".fi\n" } else { ".PP\n.nf\n" });
            code = !code;
            continue;
        }
        if code {
            out.push_str(&roff_text(line));
            out.push('\n');
        } else if let Some(sub) = line.strip_prefix("### ") {
            out.push_str(&format!(".SS {}\n", roff_text(&plain(sub))));
        } else if line.trim().is_empty() {
            out.push_str(".PP\n");
        } else if let Some(item) = line.strip_prefix("- ") {
            out.push_str(&format!(".IP \\(bu 2\n{}\n", roff_text(&plain(item))));
        } else if line.starts_with('|') {
            if !line.starts_with("|---") {
                let cells: Vec<String> = line
                    .trim_matches('|')
                    .split(" | ")
                    .map(|c| plain(c.trim()))
                    .collect();
                out.push_str(&format!(".br\n{}\n", roff_text(&cells.join(" \u{2014} "))));
            }
        } else {
            out.push_str(&roff_text(&plain(line.trim_start())));
            out.push('\n');
        }
    }
    out.push_str(".SH SEE ALSO\n\\fBretentiond\\fR(1), \\fBretentiond.yaml\\fR(5), \\fBretentiond\\-policy\\fR(5)\n");
    out
}

/// Markdown's emphasis and code marks taken out of running text.
fn plain(text: &str) -> String {
    text.replace("**", "").replace('`', "")
}

/// Text roff shows as it is: backslashes and hyphens escaped, a leading dot or quote guarded.
fn roff_text(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    match escaped.starts_with(['.', '\'']) {
        true => format!("\\&{escaped}"),
        false => escaped,
    }
}

fn cannot_write(path: &Path, e: &std::io::Error) -> Failure {
    Failure::new(
        exit::INVALID,
        format!("cannot write the man pages to {}: {e}", path.display()),
    )
}

/// `retentiond completions SHELL`: the completion script on stdout.
pub(super) fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> Outcome {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "retentiond", out);
    Ok(exit::OK)
}

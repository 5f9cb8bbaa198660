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
        .and_then(|_| std::fs::write(&path, text))
        .map_err(|e| cannot_write(&path, &e))?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let mut longer = words.to_vec();
        longer.push(sub.get_name().to_string());
        write_pages(sub, &longer, dir, written)?;
    }
    Ok(())
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

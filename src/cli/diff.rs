//! `retentiond diff`: the base policy set (a git revision of the policy folder, read with
//! `git ls-tree`/`git show` without touching the work tree, or another folder) and the current
//! one, evaluated on the same listing at the same time; what changes in what they delete.

use super::shared::{
    Failure, Outcome, config_path, instant, list_policies, open_providers, write_failure,
};
use super::{Cli, DiffFormat};
use crate::exit;
use crate::model::{Backup, Listing};
use crate::policy::{self, Config, Policy};
use crate::review::diff::{self, Set};
use crate::runner;
use jiff::tz::TimeZone;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub(super) struct DiffArgs<'a> {
    pub(super) base: Option<&'a str>,
    pub(super) base_policies: Option<&'a Path>,
    pub(super) base_config: Option<&'a Path>,
    pub(super) policies: Option<&'a Path>,
    pub(super) listing: Option<&'a Path>,
    pub(super) now: Option<&'a str>,
    pub(super) format: DiffFormat,
}

pub(super) fn diff(cli: &Cli, args: DiffArgs, out: &mut dyn Write) -> Outcome {
    let now = instant("--now", args.now)?;
    // Offline (a saved listing and --policies) the config is optional: its default zone.
    let config = match config_path(cli) {
        Some((path, _)) => Some(policy::load_config(&path).map_err(Failure::invalid)?),
        None if args.listing.is_some() && args.policies.is_some() => None,
        None => {
            return Err(Failure::new(
                exit::INVALID,
                "no config file: pass --config PATH (or set RETENTIOND_CONFIG), or diff offline with --policies and --listing",
            ));
        }
    };
    let folders: Vec<PathBuf> = match (args.policies, &config) {
        (Some(path), _) => vec![path.to_path_buf()],
        (None, Some(config)) => config.policies.clone(),
        (None, None) => unreachable!("a config is loaded unless --policies is given"),
    };
    let (current, mut errors) = policy::load_policies(&folders);
    let (base, base_errors) = match (args.base, args.base_policies) {
        (Some(rev), None) => {
            let sources = git_sources(rev, &folders)?;
            policy::policies_from_sources(&sources)
        }
        (None, Some(path)) => policy::load_policies(&[path.to_path_buf()]),
        _ => {
            return Err(Failure::new(
                exit::USAGE,
                "diff needs the base: --base GIT-REV (the policy folder at that revision) or --base-policies PATH",
            ));
        }
    };
    errors.extend(base_errors);
    // Each side with its own config: a flip of `dry_run` or of the default zone is a change.
    let base_config = match (args.base_config, args.base, &config) {
        (Some(path), _, _) => Some(policy::load_config(path).map_err(Failure::invalid)?),
        (None, Some(rev), Some(config)) => git_config(rev, &config.file)?,
        _ => None,
    };
    if config.is_some() && base_config.is_none() && !cli.quiet {
        let why = match args.base {
            Some(rev) => format!("the config is not in the git checkout at {rev}"),
            None => "--base-policies has no config".to_string(),
        };
        eprintln!(
            "note: the base has no config of its own ({why}; --base-config PATH gives one): the current config stands for both sides"
        );
    }
    if config.is_none() && !cli.quiet {
        eprintln!(
            "note: no config (--config, $RETENTIOND_CONFIG): policies without `timezone` are evaluated in UTC on both sides, and no config `dry_run` applies"
        );
    }
    let base_config = base_config.as_ref().or(config.as_ref());
    if let Some(config) = &config {
        errors.extend(policy::check_against_config(&current, config));
    }
    if let Some(config) = base_config {
        errors.extend(policy::check_against_config(&base, config));
    }
    if !errors.is_empty() {
        return Err(Failure::invalid(errors));
    }
    let saved = match args.listing {
        Some(path) => Some(Listing::read(path).map_err(|e| Failure::new(exit::INVALID, e))?),
        None => None,
    };
    let zone = |p: &Policy| runner::zone(p, config.as_ref());
    let base_zone = |p: &Policy| runner::zone(p, base_config);
    // Live, each distinct selection (account, `select`, zone) is listed once for both sides:
    // a policy the change leaves alone is not listed twice.
    let key = |p: &Policy| {
        (
            p.account.clone(),
            p.as_written.get("select").map(ToString::to_string),
            zone(p).iana_name().map(String::from),
        )
    };
    let live_listings = match (&saved, &config) {
        (None, Some(config)) => {
            let mut distinct: Vec<Policy> = Vec::new();
            for p in base.iter().chain(&current) {
                if !distinct.iter().any(|d| key(d) == key(p)) {
                    distinct.push(p.clone());
                }
            }
            let listed = live(&distinct, config)?;
            distinct.iter().map(key).zip(listed).collect()
        }
        _ => Vec::new(),
    };
    let slices = |policies: &[Policy]| -> Vec<&[Backup]> {
        policies
            .iter()
            .map(|p| match &saved {
                Some(saved) => saved.backups.as_slice(),
                None => live_listings
                    .iter()
                    .find(|(k, _)| *k == key(p))
                    .map(|(_, b): &(_, Vec<Backup>)| b.as_slice())
                    .expect("every selection was listed above"),
            })
            .collect()
    };
    let (base_slices, current_slices) = (slices(&base), slices(&current));
    let (base_zones, current_zones): (Vec<TimeZone>, Vec<TimeZone>) = (
        base.iter().map(base_zone).collect(),
        current.iter().map(zone).collect(),
    );
    let config_edits = match (base_config, &config) {
        (Some(before), Some(after)) => config_edits(before, after),
        _ => Vec::new(),
    };
    // Both sides keep what the journal's holds keep (none without a readable journal).
    let holds = match config
        .as_ref()
        .map(crate::journal::Journal::open_config_read_only)
    {
        Some(Ok(Some(journal))) => journal.holds(false).unwrap_or_else(|e| {
            eprintln!("note: the journal's holds were not read: {e}");
            Vec::new()
        }),
        Some(Err(e)) => {
            eprintln!("note: the journal's holds were not read: {e}");
            Vec::new()
        }
        _ => Vec::new(),
    };
    let mut result = diff::diff(
        &Set {
            policies: &base,
            listings: &base_slices,
            zones: &base_zones,
            dry_run: base_config.is_some_and(|c| c.dry_run),
            holds: &holds,
        },
        &Set {
            policies: &current,
            listings: &current_slices,
            zones: &current_zones,
            dry_run: config.as_ref().is_some_and(|c| c.dry_run),
            holds: &holds,
        },
        now,
        match (args.listing, &saved) {
            (Some(path), Some(saved)) => {
                let newest = saved.backups.iter().map(|b| b.created_at).max();
                format!(
                    "the saved listing {} ({} backups{})",
                    path.display(),
                    saved.backups.len(),
                    newest
                        .map(|at| format!(", the newest from {at}"))
                        .unwrap_or_default()
                )
            }
            _ => "the providers' live listings".to_string(),
        },
        config_edits,
    );
    if let (Some(rev), Some(folder)) = (args.base, folders.first()) {
        file_moves(rev, folder, &base, &current, &mut result);
    }
    match args.format {
        DiffFormat::Text => diff::text(out, &result),
        DiffFormat::Markdown => diff::markdown(out, &result),
        DiffFormat::Json => serde_json::to_writer_pretty(&mut *out, &result)
            .map_err(std::io::Error::from)
            .and_then(|_| writeln!(out)),
    }
    .map_err(write_failure)?;
    Ok(match result.deletes_more() {
        true => exit::DIFF_DELETES_MORE,
        false => exit::OK,
    })
}

/// Each policy's live listing; a failed one ends the diff (exit 3): a review on a partial
/// listing would say less than it seems to.
fn live(policies: &[Policy], config: &Config) -> Result<Vec<Vec<Backup>>, Failure> {
    list_policies(&open_providers(policies, config))
        .into_iter()
        .zip(policies)
        .map(|(listing, policy)| {
            listing.map_err(|e| {
                Failure::new(
                    exit::LISTING_FAILED,
                    format!("policy {}: {e}; nothing was compared", policy.name),
                )
            })
        })
        .collect()
}

/// The policy files under `folders` as they are at git revision `rev`: `(REV:path, text)`.
/// Reads git's objects only; the work tree and the index are not touched.
fn git_sources(rev: &str, folders: &[PathBuf]) -> Result<Vec<(PathBuf, String)>, Failure> {
    let mut sources = Vec::new();
    for folder in folders {
        let absolute = std::path::absolute(folder).unwrap_or_else(|_| folder.clone());
        let anchor = match absolute.is_dir() {
            true => absolute.clone(),
            false => absolute.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let root = git(&anchor, &["rev-parse", "--show-toplevel"])?;
        let root = PathBuf::from(root.trim());
        let root = root.canonicalize().unwrap_or(root);
        let inside = absolute
            .canonicalize()
            .unwrap_or(absolute.clone())
            .strip_prefix(&root)
            .map(Path::to_path_buf)
            .map_err(|_| {
                Failure::new(
                    exit::INVALID,
                    format!(
                        "{} is not inside the git checkout {}",
                        folder.display(),
                        root.display()
                    ),
                )
            })?;
        let inside = inside.to_string_lossy().into_owned();
        git(&root, &["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")]).map_err(
            |_| {
                Failure::new(
                    exit::INVALID,
                    format!("--base {rev}: no such revision in {} (fetch it first, e.g. `git fetch origin main`)", root.display()),
                )
            },
        )?;
        // NUL-separated: a name git would quote (non-ASCII, `"`, `\`) arrives as it is.
        let listed = git(
            &root,
            &["ls-tree", "-r", "-z", "--name-only", rev, "--", &inside],
        )?;
        for path in listed.split('\0').filter(|p| is_policy_file(p)) {
            let text = git(&root, &["show", &format!("{rev}:{path}")])?;
            sources.push((PathBuf::from(format!("{rev}:{path}")), text));
        }
    }
    Ok(sources)
}

/// A policy whose file is another at `rev` (moved, or split out of a file of several): an
/// edit `file: OLD → NEW`, paths from the checkout's top.
fn file_moves(
    rev: &str,
    folder: &Path,
    base: &[Policy],
    current: &[Policy],
    result: &mut diff::Diff,
) {
    let absolute = std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf());
    let anchor = match absolute.is_dir() {
        true => absolute,
        false => absolute.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let Ok(root) = git(&anchor, &["rev-parse", "--show-toplevel"]) else {
        return;
    };
    let root = PathBuf::from(root.trim());
    let root = root.canonicalize().unwrap_or(root);
    let prefix = format!("{rev}:");
    for p in result
        .policies
        .iter_mut()
        .filter(|p| p.before.is_some() && p.after.is_some())
    {
        let was_name = p.renamed_from.as_deref().unwrap_or(&p.name);
        let was = base.iter().find(|b| b.name == was_name).map(|b| {
            b.file
                .to_string_lossy()
                .strip_prefix(&prefix)
                .map(PathBuf::from)
        });
        let now = current.iter().find(|c| c.name == p.name).and_then(|c| {
            let real = c.file.canonicalize().ok()?;
            real.strip_prefix(&root).ok().map(Path::to_path_buf)
        });
        if let (Some(Some(was)), Some(now)) = (was, now)
            && was != now
        {
            p.edits
                .push(format!("file: {} → {}", was.display(), now.display()));
        }
    }
}

/// The config at `rev`, when `file` is in a git checkout and the revision has it; parsed as
/// if it stood where `file` stands (its relative paths from the same folder).
fn git_config(rev: &str, file: &Path) -> Result<Option<Config>, Failure> {
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let folder = absolute.parent().unwrap_or(Path::new("/"));
    let Ok(root) = git(folder, &["rev-parse", "--show-toplevel"]) else {
        return Ok(None);
    };
    let root = PathBuf::from(root.trim());
    let root = root.canonicalize().unwrap_or(root);
    let real = absolute.canonicalize().unwrap_or(absolute.clone());
    let Ok(inside) = real.strip_prefix(&root) else {
        return Ok(None);
    };
    let Ok(text) = git(&root, &["show", &format!("{rev}:{}", inside.display())]) else {
        return Ok(None);
    };
    let label = PathBuf::from(format!("{rev}:{}", inside.display()));
    // Relative paths from the folder the current config's are taken from, written the same.
    let base = file.parent().unwrap_or(Path::new("."));
    policy::config_from_str(&label, &text, base)
        .map(Some)
        .map_err(Failure::invalid)
}

/// What changed in the config that can change what is deleted; a secret reference is named,
/// never resolved.
fn config_edits(before: &Config, after: &Config) -> Vec<String> {
    let mut edits = Vec::new();
    if before.dry_run != after.dry_run {
        edits.push(format!("dry_run: {} → {}", before.dry_run, after.dry_run));
    }
    let zone = |c: &Config| {
        c.default_timezone
            .as_ref()
            .and_then(|z| z.iana_name().map(String::from))
            .unwrap_or_else(|| "UTC (none set)".into())
    };
    if zone(before) != zone(after) {
        edits.push(format!(
            "defaults.timezone: {} → {}",
            zone(before),
            zone(after)
        ));
    }
    let grace = |c: &Config| {
        c.default_grace
            .map(|g| g.to_string())
            .unwrap_or_else(|| "none".into())
    };
    if grace(before) != grace(after) {
        edits.push(format!(
            "defaults.grace: {} → {}",
            grace(before),
            grace(after)
        ));
    }
    let keep = |c: &Config| {
        c.journal_keep
            .map(|k| k.to_string())
            .unwrap_or_else(|| "forever".into())
    };
    if keep(before) != keep(after) {
        edits.push(format!("journal_keep: {} → {}", keep(before), keep(after)));
    }
    let (places_before, places_after) = (before.places(), after.places());
    for name in before.accounts.keys().chain(after.accounts.keys()) {
        if edits
            .iter()
            .any(|e| e.ends_with(&format!("account {name}")))
        {
            continue;
        }
        let what = match (before.accounts.get(name), after.accounts.get(name)) {
            (Some(_), None) => "removed",
            (None, Some(_)) => "added",
            (Some(b), Some(a))
                if b.kind != a.kind
                    || places_before.place(name) != places_after.place(name)
                    || format!("{:?}", b.settings) != format!("{:?}", a.settings) =>
            {
                "changed"
            }
            _ => continue,
        };
        edits.push(format!("{what}: account {name}"));
    }
    edits
}

/// What `validate` reads in a folder: `*.yaml` and `*.yml`, no hidden entries.
fn is_policy_file(path: &str) -> bool {
    (path.ends_with(".yaml") || path.ends_with(".yml"))
        && !path.split('/').any(|part| part.starts_with('.'))
}

fn git(dir: &Path, args: &[&str]) -> Result<String, Failure> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| {
            Failure::new(
                exit::INVALID,
                format!("cannot run git: {e}; --base needs git"),
            )
        })?;
    if !output.status.success() {
        return Err(Failure::new(
            exit::INVALID,
            format!(
                "git {} in {}: {}",
                args.join(" "),
                dir.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ));
    }
    String::from_utf8(output.stdout)
        .map_err(|_| Failure::new(exit::INVALID, format!("git {}: not UTF-8", args.join(" "))))
}

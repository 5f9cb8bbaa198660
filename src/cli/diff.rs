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
    if let Some(config) = &config {
        errors.extend(policy::check_against_config(&current, config));
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
        base.iter().map(zone).collect(),
        current.iter().map(zone).collect(),
    );
    let result = diff::diff(
        &Set {
            policies: &base,
            listings: &base_slices,
            zones: &base_zones,
        },
        &Set {
            policies: &current,
            listings: &current_slices,
            zones: &current_zones,
        },
        now,
    );
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
        let listed = git(&root, &["ls-tree", "-r", "--name-only", rev, "--", &inside])?;
        for path in listed.lines().filter(|p| is_policy_file(p)) {
            let text = git(&root, &["show", &format!("{rev}:{path}")])?;
            sources.push((PathBuf::from(format!("{rev}:{path}")), text));
        }
    }
    Ok(sources)
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

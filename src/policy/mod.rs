//! Policy and config files: reading them from disk, validating them with located errors
//! (every error of every file, in one pass), and the checks that span files (unique policy
//! names, accounts that exist, select keys that fit the account's provider).

pub mod config;
pub mod definition;
pub mod diag;
pub mod notify;
pub mod read;
pub mod schema;
pub mod select;
pub mod yaml;

pub use config::{Account, AccountSettings, Config, Places, Secret, SecretRef};
pub use definition::{Guard, Mode, Policy, Schedule};
pub use diag::Diagnostic;
pub use select::{ProviderKind, Select};

use diag::{Diagnostics, did_you_mean};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use yaml::{Node, Pos, Value};

/// A file's text, or a diagnostic saying why it cannot be read.
fn read_source(path: &Path) -> Result<String, Diagnostic> {
    let bytes = std::fs::read(path).map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        file_error(
            path,
            format!(
                "not UTF-8 text (invalid byte at offset {}); save the file as UTF-8",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// A diagnostic about a whole file (unreadable, not UTF-8, missing): placed at 1:1.
fn file_error(path: &Path, message: String) -> Diagnostic {
    Diagnostic {
        file: path.to_path_buf(),
        pos: Pos { line: 1, column: 1 },
        message,
        source_line: None,
    }
}

/// Parses a file's YAML; empty files are an error.
fn parse_file(text: &str, d: &mut Diagnostics, what: &str) -> Option<Node> {
    if let Some((line, indent)) = text.lines().enumerate().find_map(|(i, l)| {
        l.find(|c: char| c != ' ')
            .filter(|&c| l[c..].starts_with('\t'))
            .map(|c| (i, c))
    }) {
        let pos = Pos {
            line: line as u64 + 1,
            column: indent as u64 + 1,
        };
        d.error(pos, "tab in indentation; indent YAML with spaces, not tabs");
        return None;
    }
    match yaml::parse(text) {
        Ok(node) if node.value == Value::Null => {
            d.error(Pos { line: 1, column: 1 }, format!("file is empty; {what}"));
            None
        }
        Ok(node) => Some(node),
        Err(e) => {
            d.error(e.pos, e.message);
            None
        }
    }
}

const POLICY_FILE_HINT: &str =
    "a policy file holds one policy (a mapping with name, account and keep) or a list of policies";

/// True when a document is a daemon config rather than a policy file.
pub fn looks_like_config(node: &Node) -> bool {
    let Value::Map(entries) = &node.value else {
        return false;
    };
    entries.iter().any(|(k, _)| {
        matches!(
            k.name.as_str(),
            "accounts" | "state_dir" | "policies" | "dry_run"
        )
    })
}

/// Reads and validates the daemon config at `path`.
pub fn load_config(path: &Path) -> Result<Config, Vec<Diagnostic>> {
    let text = read_source(path).map_err(|e| vec![e])?;
    config_from_str(path, &text, path.parent().unwrap_or(Path::new(".")))
}

/// Validates a config's text; `label` names it in errors (a file, or `REV:path` from git),
/// `base` is the folder its relative paths are taken from.
pub fn config_from_str(label: &Path, text: &str, base: &Path) -> Result<Config, Vec<Diagnostic>> {
    let mut d = Diagnostics::without_source(label);
    let config = parse_file(
        text,
        &mut d,
        "a config needs at least `accounts` and `policies`",
    )
    .and_then(|node| config::parse_config(&node, base, &mut d));
    match config {
        Some(config) if d.list.is_empty() => Ok(config),
        _ => Err(d.list),
    }
}

/// The YAML files a list of paths names: files as given, folders searched recursively for
/// `*.yaml`/`*.yml` (hidden entries skipped), in a stable order.
pub fn expand_paths(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_dir() {
            collect_yaml(path, &mut files, &mut errors);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            errors.push(file_error(path, "no such file or folder".into()));
        }
    }
    (files, errors)
}

fn collect_yaml(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<Diagnostic>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return errors.push(file_error(dir, format!("cannot read folder: {e}"))),
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_yaml(&path, files, errors);
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            files.push(path);
        }
    }
}

/// Where a policy name is written, for the uniqueness check (also for invalid policies).
struct NameSite {
    name: String,
    file: PathBuf,
    pos: Pos,
}

fn name_site(path: &Path, node: &Node) -> Option<NameSite> {
    let Value::Map(entries) = &node.value else {
        return None;
    };
    entries
        .iter()
        .find(|(k, _)| k.name == "name")
        .and_then(|(_, v)| match &v.value {
            Value::Str(name) => Some(NameSite {
                name: name.clone(),
                file: path.to_path_buf(),
                pos: v.pos,
            }),
            _ => None,
        })
}

/// Policies from one file's text, and where every policy name is written.
fn policies_in(
    path: &Path,
    text: &str,
    errors: &mut Vec<Diagnostic>,
    names: &mut Vec<NameSite>,
) -> Vec<Policy> {
    let mut d = Diagnostics::new(path, text);
    let mut policies = Vec::new();
    if let Some(node) = parse_file(text, &mut d, POLICY_FILE_HINT) {
        let items: Vec<&Node> = match &node.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![&node],
        };
        if looks_like_config(&node) {
            d.error(node.pos, format!("this is a daemon config, not a policy file; pass it with --config, or {POLICY_FILE_HINT}"));
        } else {
            for item in items {
                if definition::is_mapping(item) {
                    names.extend(name_site(path, item));
                    policies.extend(definition::parse_policy(item, &mut d));
                } else {
                    d.error(
                        item.pos,
                        format!("found {}: {POLICY_FILE_HINT}", item.value.kind()),
                    );
                }
            }
        }
    }
    d.list.sort_by_key(|e| e.pos);
    errors.append(&mut d.list);
    let file_sha256 = crate::hash::sha256_hex(text.as_bytes());
    for policy in &mut policies {
        policy.file_sha256.clone_from(&file_sha256);
    }
    policies
}

/// Policies from YAML text, as if read from `label` (tests, tools).
pub fn policies_from_str(label: &Path, text: &str) -> (Vec<Policy>, Vec<Diagnostic>) {
    let mut errors = Vec::new();
    let policies = policies_in(label, text, &mut errors, &mut Vec::new());
    (policies, errors)
}

/// Loads every policy of the given files and folders, with every error found.
pub fn load_policies(paths: &[PathBuf]) -> (Vec<Policy>, Vec<Diagnostic>) {
    let (files, mut errors) = expand_paths(paths);
    let mut sources = Vec::new();
    for file in files {
        match read_source(&file) {
            Ok(text) => sources.push((file, text)),
            Err(e) => errors.push(e),
        }
    }
    let (policies, more) = policies_from_sources(&sources);
    errors.extend(more);
    (policies, errors)
}

/// Every policy of a set of policy files given as `(path, text)` (read from a folder, or
/// from a git revision), with every error found, duplicate names included.
pub fn policies_from_sources(sources: &[(PathBuf, String)]) -> (Vec<Policy>, Vec<Diagnostic>) {
    let mut errors = Vec::new();
    let mut policies = Vec::new();
    let mut names = Vec::new();
    for (file, text) in sources {
        policies.extend(policies_in(file, text, &mut errors, &mut names));
    }
    errors.extend(duplicate_names(&names));
    (policies, errors)
}

fn duplicate_names(sites: &[NameSite]) -> Vec<Diagnostic> {
    let mut first: HashMap<&str, &NameSite> = HashMap::new();
    let mut errors = Vec::new();
    for site in sites {
        if let Some(earlier) = first.get(site.name.as_str()) {
            errors.push(located(
                &site.file,
                site.pos,
                format!(
                    "policy name `{}` is already used at {}:{}:{}; names must be unique across all files",
                    site.name,
                    earlier.file.display(),
                    earlier.pos.line,
                    earlier.pos.column
                ),
            ));
        } else {
            first.insert(&site.name, site);
        }
    }
    errors
}

/// Checks each policy against the config: the account exists and the `select` keys fit it.
pub fn check_against_config(policies: &[Policy], config: &Config) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    // A route naming a policy that does not exist would never send a word.
    for (i, route) in config.notify.routes.iter().enumerate() {
        for name in route
            .policies
            .iter()
            .filter(|n| !policies.iter().any(|p| p.name == **n))
        {
            let hint = did_you_mean(name, policies.iter().map(|p| p.name.as_str()));
            errors.push(Diagnostic {
                file: config.file.clone(),
                pos: Pos::default(),
                message: format!("notify.routes[{i}].policies: no policy named `{name}`{hint}"),
                source_line: None,
            });
        }
    }
    for policy in policies {
        let Some(account) = config.accounts.get(&policy.account) else {
            let names: Vec<&str> = config.accounts.keys().map(String::as_str).collect();
            let hint = did_you_mean(&policy.account, names.iter().copied());
            errors.push(located(
                &policy.file,
                policy.account_pos,
                format!(
                    "account `{}` is not in {} (accounts: {}){hint}",
                    policy.account,
                    config.file.display(),
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
            continue;
        };
        let text = std::fs::read_to_string(&policy.file).unwrap_or_default();
        let mut d = Diagnostics::new(&policy.file, &text);
        policy
            .select
            .check_provider(account.kind, &account.name, policy.account_pos, &mut d);
        errors.append(&mut d.list);
    }
    errors
}

/// A diagnostic at a position of a file, with the source line read back for context.
fn located(file: &Path, pos: Pos, message: String) -> Diagnostic {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut d = Diagnostics::new(file, &text);
    d.error(pos, message);
    d.list.remove(0)
}

/// Whether a file's top level is a daemon config (used by `validate` to tell files apart).
/// Warnings about policies of one account whose selections plainly take the same backups
/// (seen from the files alone; `plan` and `run` find every overlap in the listing and block).
pub fn overlap_warnings(policies: &[Policy], places: &Places) -> Vec<String> {
    let mut warnings = Vec::new();
    for (i, a) in policies.iter().enumerate() {
        for b in &policies[i + 1..] {
            if places.same(&a.account, &b.account) && a.select.plainly_overlaps(&b.select) {
                let accounts = match a.account == b.account {
                    true => format!("of account {}", a.account),
                    false => format!(
                        "of accounts {} and {} (which reach the same backups)",
                        a.account, b.account
                    ),
                };
                warnings.push(format!(
                    "{}:{}:{}: policies {} and {} ({}:{}:{}) {} select the same backups: each would delete what only the other keeps, so plan and run block both; make their `select` disjoint, or write one policy with both sets of keep rules",
                    a.file.display(),
                    a.name_pos.line,
                    a.name_pos.column,
                    a.name,
                    b.name,
                    b.file.display(),
                    b.name_pos.line,
                    b.name_pos.column,
                    accounts
                ));
            }
        }
    }
    warnings
}

/// Warnings about zones that exist but are probably a mistake (see
/// [`definition::zone_warning`]): each policy's own, and the config's default.
pub fn zone_warnings(policies: &[Policy], config: Option<&Config>) -> Vec<String> {
    let own = policies.iter().filter_map(|p| {
        let warning = definition::zone_warning(p.timezone.as_ref()?)?;
        Some(format!(
            "{}: policy {}: {warning}",
            p.file.display(),
            p.name
        ))
    });
    let default = config.and_then(|c| {
        let warning = definition::zone_warning(c.default_timezone.as_ref()?)?;
        Some(format!("{}: defaults: {warning}", c.file.display()))
    });
    own.chain(default).collect()
}

pub fn file_is_config(path: &Path) -> bool {
    read_source(path)
        .ok()
        .and_then(|text| yaml::parse(&text).ok())
        .is_some_and(|node| looks_like_config(&node))
}

//! One policy as written in a policy file, validated into ready-to-use values: a parsed
//! schedule, a time zone, typed keep rules, compiled regexes. No I/O.

use super::diag::{Diagnostics, did_you_mean};
use super::read;
use super::select::{Select, parse_select};
use super::yaml::{Node, Pos, Value};
use crate::retention::{CalendarDuration, KeepRules, Period};
use jiff::tz::TimeZone;
use regex::Regex;
use std::path::PathBuf;

pub const POLICY_KEYS: &[&str] = &[
    "name",
    "description",
    "account",
    "schedule",
    "jitter",
    "timezone",
    "mode",
    "select",
    "group_by",
    "keep",
    "protect",
    "failed",
    "guard",
];

pub const KEEP_KEYS: &[&str] = &[
    "last",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "yearly",
    "within",
    "within_hourly",
    "within_daily",
    "within_weekly",
    "within_monthly",
    "within_yearly",
    "tags",
];

/// Whether a policy may delete: both this and the absence of every dry-run switch are needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Mode {
    #[serde(rename = "dry-run")]
    DryRun,
    #[serde(rename = "enforce")]
    Enforce,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::DryRun => "dry-run",
            Mode::Enforce => "enforce",
        }
    }
}

/// A cron schedule as written, and parsed.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub text: String,
    pub cron: croner::Cron,
}

#[derive(Clone, Debug, Default)]
pub struct Protect {
    pub ids: Vec<String>,
    pub names: Vec<Regex>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Guard {
    pub min_keep: u32,
    pub max_delete: Option<u64>,
    pub max_delete_fraction: Option<f64>,
    /// A group whose newest complete backup is older than this is not pruned.
    pub stale_after: Option<CalendarDuration>,
    /// Backups dated later than now plus this are reported and ignored (never counted).
    pub future_tolerance: CalendarDuration,
    /// A group whose complete backups fell by more than this share since the last accepted
    /// run blocks the policy: the listing is suspect.
    pub max_listing_drop: f64,
    /// A policy version that no person approved and that never ran in enforce mode (new, or
    /// its fingerprint changed) is blocked when it deletes more than this many backups...
    pub unapproved_max_delete: u64,
    /// ... or more than this share of a group's complete backups.
    pub unapproved_max_delete_fraction: f64,
    /// A backup is deleted only once the policy has planned to delete it in every run for at
    /// least this long; `None`: the config's `defaults.grace`, zero: none.
    pub grace: Option<CalendarDuration>,
}

impl Default for Guard {
    fn default() -> Guard {
        Guard {
            min_keep: 1,
            max_delete: None,
            // Safe beyond the first approved run: a plan that deletes more than half of a
            // group's complete backups waits for `--accept-max-delete` (README, "Guards").
            max_delete_fraction: Some(0.5),
            stale_after: None,
            future_tolerance: CalendarDuration {
                hours: 1,
                ..CalendarDuration::default()
            },
            max_listing_drop: 0.5,
            unapproved_max_delete: 10,
            unapproved_max_delete_fraction: 0.1,
            grace: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Policy {
    pub name: String,
    pub description: Option<String>,
    pub account: String,
    pub schedule: Option<Schedule>,
    /// The daemon starts each scheduled run up to this much later (a fixed offset per policy
    /// and fire), spreading policies that share a schedule.
    pub jitter: Option<std::time::Duration>,
    /// The policy's own zone; `None` means the config's default, else UTC.
    pub timezone: Option<TimeZone>,
    pub mode: Mode,
    pub select: Select,
    /// `group_by: none` puts every backup of the listing into one group.
    pub group_by_resource: bool,
    pub keep: KeepRules,
    pub protect: Protect,
    /// Failed backups older than this are deleted; unset: failed backups are kept.
    pub failed_delete_after: Option<CalendarDuration>,
    pub guard: Guard,
    /// Where the policy was written, for messages.
    pub file: PathBuf,
    /// SHA-256 of the whole file the policy was read from, as the journal records it.
    pub file_sha256: String,
    /// SHA-256 of the policy as written, except `description`, `schedule` and `jitter` (which
    /// change nothing a run deletes), independent of layout, comments and key order. `apply` refuses a
    /// plan made under another fingerprint.
    pub fingerprint: String,
    /// What the fingerprint hashes: the policy as written (keys sorted), without
    /// `description`, `schedule` and `jitter`. Plans carry it, so that `apply` can say what
    /// changed.
    pub as_written: serde_json::Value,
    pub name_pos: Pos,
    pub account_pos: Pos,
}

/// The policy as the fingerprint sees it, and the fingerprint.
fn fingerprint(node: &Node) -> (serde_json::Value, String) {
    let mut canonical = node.canonical();
    if let Some(map) = canonical.as_object_mut() {
        map.remove("description");
        map.remove("schedule");
        map.remove("jitter");
    }
    let hash = crate::hash::sha256_hex(canonical.to_string().as_bytes());
    (canonical, hash)
}

/// Validates one policy mapping, recording every problem; `None` when any was found.
pub fn parse_policy(node: &Node, d: &mut Diagnostics) -> Option<Policy> {
    let before = d.list.len();
    let fields = read::mapping(node, "policy", POLICY_KEYS, d)?;
    let required = |key: &str, d: &mut Diagnostics| {
        let found = fields.get(key);
        if found.is_none() {
            d.error(fields.pos, format!("policy has no `{key}`"));
        }
        found
    };
    let name_node = required("name", d);
    let name = name_node
        .and_then(|n| read::string(n, "name", d))
        .map(String::from);
    if let (Some(name), Some(node)) = (&name, name_node) {
        check_name(name, node.pos, d);
    }
    let account_node = required("account", d);
    let account = account_node
        .and_then(|n| read::string(n, "account", d))
        .map(String::from);
    let keep_node = required("keep", d);
    let keep = keep_node.and_then(|n| parse_keep(n, d));
    let schedule = fields.get("schedule").and_then(|n| parse_schedule(n, d));
    let fingerprint = fingerprint(node);
    let jitter = fields
        .get("jitter")
        .and_then(|n| read::exact_duration(n, "jitter", d));
    if let (Some(schedule), Some(jitter), Some(n)) = (&schedule, jitter, fields.get("jitter")) {
        check_jitter(schedule, jitter, n.pos, d);
    }
    let policy = Policy {
        name: name.unwrap_or_default(),
        description: fields
            .get("description")
            .and_then(|n| read::string(n, "description", d))
            .map(String::from),
        account: account.unwrap_or_default(),
        schedule,
        jitter,
        timezone: fields
            .get("timezone")
            .and_then(|n| parse_timezone(n, "timezone", d)),
        mode: fields
            .get("mode")
            .and_then(|n| parse_mode(n, d))
            .unwrap_or(Mode::DryRun),
        select: fields
            .get("select")
            .map(|n| parse_select(n, d))
            .unwrap_or_default(),
        group_by_resource: fields
            .get("group_by")
            .and_then(|n| parse_group_by(n, d))
            .unwrap_or(true),
        keep: keep.unwrap_or_default(),
        protect: fields
            .get("protect")
            .map(|n| parse_protect(n, d))
            .unwrap_or_default(),
        failed_delete_after: fields.get("failed").and_then(|n| parse_failed(n, d)),
        guard: fields
            .get("guard")
            .map(|n| parse_guard(n, d))
            .unwrap_or_default(),
        file: d.file().to_path_buf(),
        file_sha256: String::new(),
        fingerprint: fingerprint.1,
        as_written: fingerprint.0,
        name_pos: name_node.map(|n| n.pos).unwrap_or(node.pos),
        account_pos: account_node.map(|n| n.pos).unwrap_or(node.pos),
    };
    (d.list.len() == before).then_some(policy)
}

/// What differs between two policies as written (see `Policy::as_written`), one line per key
/// path: `keep.daily: 7 → 1`, `select.pattern: added`, ...
pub fn changes(before: &serde_json::Value, after: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    fn walk(path: &str, before: Option<&Value>, after: Option<&Value>, out: &mut Vec<String>) {
        match (before, after) {
            (Some(Value::Object(a)), Some(Value::Object(b))) => {
                let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for key in keys {
                    let path = match path {
                        "" => key.clone(),
                        _ => format!("{path}.{key}"),
                    };
                    walk(&path, a.get(key), b.get(key), out);
                }
            }
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => out.push(format!("{path}: {a} → {b}")),
            (None, Some(b)) => out.push(format!("{path}: added ({b})")),
            (Some(a), None) => out.push(format!("{path}: removed (was {a})")),
            (None, None) => {}
        }
    }
    let mut out = Vec::new();
    walk("", Some(before), Some(after), &mut out);
    out
}

fn check_name(name: &str, pos: Pos, d: &mut Diagnostics) {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        d.error(
            pos,
            format!("policy name `{name}` must start with a letter or digit and use only letters, digits, `.`, `_` and `-`"),
        );
    }
}

fn parse_keep(node: &Node, d: &mut Diagnostics) -> Option<KeepRules> {
    let errors_before = d.list.len();
    let fields = read::mapping(node, "keep", KEEP_KEYS, d)?;
    let mut rules = KeepRules::default();
    let path = |k: &str| format!("keep.{k}");
    if let Some(n) = fields.get("last") {
        rules.last = read::count(n, "keep.last", d);
    }
    if let Some(n) = fields.get("within") {
        rules.within = read::duration(n, "keep.within", d);
    }
    for (i, period) in Period::ALL.iter().enumerate() {
        let count_key = period.adjective();
        if let Some(n) = fields.get(count_key) {
            rules.periods[i] = read::count(n, &path(count_key), d);
        }
        let window_key = format!("within_{count_key}");
        if let Some(n) = fields.get(&window_key) {
            rules.within_periods[i] = read::duration(n, &path(&window_key), d);
        }
    }
    if let Some(n) = fields.get("tags") {
        let tags = read::strings(n, "keep.tags", d).unwrap_or_default();
        rules.tags = tags
            .into_iter()
            .map(|(set, _)| set.split(',').map(|t| t.trim().to_string()).collect())
            .collect();
    }
    let clean = d.list.len() == errors_before;
    if rules.is_empty() && !fields.is_empty() && clean {
        d.error(
            node.pos,
            "`keep` keeps nothing: every rule is 0 or empty; a policy needs at least one rule such as `last: 3` or `daily: 7`",
        );
    } else if fields.is_empty() {
        d.error(
            node.pos,
            "`keep` has no rule; write at least one of: last, hourly, daily, weekly, monthly, yearly, within, within_<period>, tags",
        );
    }
    Some(rules)
}

/// The five crontab fields, for messages: name and what it takes.
const CRON_FIELDS: [(&str, &str); 5] = [
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 (0 and 7 are Sunday) or SUN-SAT"),
];

const CRON_HINT: &str = "write 5 fields `minute hour day-of-month month day-of-week` such as `30 3 * * *`, 6 with seconds first, or @hourly, @daily, @weekly, @monthly";

fn parse_schedule(node: &Node, d: &mut Diagnostics) -> Option<Schedule> {
    let text = read::string(node, "schedule", d)?;
    Schedule::parse(text).map_err(|e| d.error(node.pos, e)).ok()
}

impl Schedule {
    /// A cron line as `schedule:` takes it (5 or 6 fields, or `@daily` and the like); the
    /// error says what is wrong and what to write.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if !text.starts_with('@') && !(5..=6).contains(&fields.len()) {
            let n = fields.len();
            return Err(format!(
                "`schedule: {text}` has {n} field{}; {CRON_HINT}",
                if n == 1 { "" } else { "s" }
            ));
        }
        let cron = cron_parser().parse(text).map_err(|_| {
            format!(
                "`schedule: {text}` is not a valid cron line: {}; {CRON_HINT}",
                cron_fault(text, &fields)
            )
        })?;
        // A line every field of which is valid can still name no real time (`0 3 31 2 *`,
        // the 31st of February): the daemon would never run the policy.
        let now = jiff::Timestamp::now().to_zoned(TimeZone::UTC);
        if cron.find_next_occurrence(&now, false).is_err() {
            return Err(format!(
                "`schedule: {text}` never fires: no date matches its day-of-month, month and day-of-week (e.g. the 31st of a 30-day month); {CRON_HINT}"
            ));
        }
        Ok(Schedule {
            text: text.to_string(),
            cron,
        })
    }
}

fn cron_parser() -> croner::parser::CronParser {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build()
}

/// Which field of a cron line croner refused, in our words: each field is tried alone, with
/// the others `*`.
fn cron_fault(text: &str, fields: &[&str]) -> String {
    if text.starts_with('@') {
        return format!("`{text}` is not one of @hourly, @daily, @weekly, @monthly, @yearly");
    }
    let offset = fields.len() - 5;
    for (i, field) in fields.iter().enumerate() {
        let mut alone = vec!["*"; fields.len()];
        alone[i] = field;
        if cron_parser().parse(&alone.join(" ")).is_ok() {
            continue;
        }
        return match i.checked_sub(offset) {
            None => format!("the seconds field `{field}` must be 0-59"),
            Some(j) => {
                let (name, takes) = CRON_FIELDS[j];
                format!("the {name} field `{field}` must be {takes}, with `*`, `,`, `-` and `/`")
            }
        };
    }
    "its fields do not fit together".to_string()
}

/// `jitter` must be shorter than the time between two fires, or fires would run into each
/// other and be skipped.
fn check_jitter(schedule: &Schedule, jitter: std::time::Duration, pos: Pos, d: &mut Diagnostics) {
    let mut at = jiff::Timestamp::now().to_zoned(TimeZone::UTC);
    let mut gap = None::<std::time::Duration>;
    // The shortest of the next few gaps (a weekday schedule has long and short ones).
    let mut previous = None;
    for _ in 0..8 {
        let Ok(next) = schedule.cron.find_next_occurrence(&at, false) else {
            return;
        };
        if let Some(previous) = previous {
            let this = std::time::Duration::try_from(next.timestamp().duration_since(previous))
                .unwrap_or_default();
            gap = Some(gap.map_or(this, |g| g.min(this)));
        }
        previous = Some(next.timestamp());
        at = next;
    }
    if let Some(gap) = gap
        && jitter >= gap
    {
        d.error(
            pos,
            format!(
                "`jitter` ({}) is not shorter than the time between two fires of `schedule: {}` ({}): runs would be skipped; write a jitter below that, such as a tenth of it",
                humanize(jitter),
                schedule.text,
                humanize(gap)
            ),
        );
    }
}

/// A duration as the policy files write them, in its largest whole unit.
pub fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}min", s / 60),
        s => format!("{s}s"),
    }
}

/// An IANA time zone name, with a suggestion for near misses.
pub fn parse_timezone(node: &Node, path: &str, d: &mut Diagnostics) -> Option<TimeZone> {
    let name = read::string(node, path, d)?;
    match TimeZone::get(name) {
        Ok(tz) => Some(tz),
        Err(_) => {
            d.error(
                node.pos,
                format!("unknown time zone `{name}`{}", zone_hint(name)),
            );
            None
        }
    }
}

/// What to write instead of an unknown zone name: the zone of a city written in any case
/// (`berlin`, `new york`), the POSIX sign trap of `GMT+1`, else the closest name.
fn zone_hint(name: &str) -> String {
    let names: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_string())
        .collect();
    let wanted = name.trim().replace(' ', "_").to_ascii_lowercase();
    let offset = wanted
        .strip_prefix("etc/")
        .unwrap_or(&wanted)
        .strip_prefix("gmt")
        .or_else(|| wanted.strip_prefix("utc"))
        .filter(|rest| rest.starts_with(['+', '-']));
    if let Some(offset) = offset {
        let (sign, hours) = offset.split_at(1);
        let flipped = if sign == "+" { "-" } else { "+" };
        return format!(
            "; for UTC{offset} all year write `Etc/GMT{flipped}{hours}` (POSIX names read the sign backwards: `Etc/GMT{sign}{hours}` is UTC{flipped}{hours}), but a fixed offset knows no daylight saving: for a place write its zone, such as `Europe/Berlin`"
        );
    }
    let city = names.iter().find(|n| {
        let lower = n.to_ascii_lowercase();
        lower == wanted || lower.rsplit('/').next() == Some(wanted.as_str())
    });
    if let Some(city) = city {
        return format!("; did you mean `{city}`?");
    }
    let hint = did_you_mean(name, names.iter().map(String::as_str));
    if hint.is_empty() {
        "; write an IANA name such as `Europe/Berlin`, `America/New_York` or `UTC`".to_string()
    } else {
        hint
    }
}

/// Why a zone that exists is probably a mistake: an abbreviation (`EST`, `CET`) or a fixed
/// offset (`Etc/GMT-1`) instead of a place, whose days then ignore the place's daylight
/// saving. `UTC` and its aliases are meant as they are.
pub fn zone_warning(tz: &TimeZone) -> Option<String> {
    let name = tz.iana_name()?;
    let utc = [
        "UTC",
        "Etc/UTC",
        "GMT",
        "Etc/GMT",
        "UCT",
        "Etc/UCT",
        "Universal",
        "Zulu",
        "Etc/Zulu",
        "Etc/Universal",
        "GMT0",
        "Etc/GMT0",
        "Etc/GMT+0",
        "Etc/GMT-0",
        "Greenwich",
        "Etc/Greenwich",
    ];
    if utc.contains(&name) || (name.contains('/') && !name.starts_with("Etc/")) {
        return None;
    }
    let year = jiff::Timestamp::now().to_zoned(TimeZone::UTC).year();
    let offset_on = |month| {
        jiff::civil::date(year, month, 1)
            .to_zoned(TimeZone::UTC)
            .map(|z| tz.to_offset(z.timestamp()))
            .ok()
    };
    let what = match (offset_on(1), offset_on(7)) {
        (Some(winter), Some(summer)) if winter == summer => {
            format!("a fixed offset ({winter} all year, no daylight saving)")
        }
        _ => "an abbreviation, not a place".to_string(),
    };
    Some(format!(
        "`timezone: {name}` is {what}: days, weeks and months are counted in it; if the backups follow a place's clock, write its zone (such as `Europe/Berlin` or `America/New_York`)"
    ))
}

fn parse_mode(node: &Node, d: &mut Diagnostics) -> Option<Mode> {
    match read::string(node, "mode", d)? {
        "dry-run" => Some(Mode::DryRun),
        "enforce" => Some(Mode::Enforce),
        other => {
            let hint = did_you_mean(other, ["dry-run", "enforce"]);
            d.error(node.pos, format!("`mode: {other}` is not a mode; write `dry-run` (the default) or `enforce`{hint}"));
            None
        }
    }
}

fn parse_group_by(node: &Node, d: &mut Diagnostics) -> Option<bool> {
    match read::string(node, "group_by", d)? {
        "resource" => Some(true),
        "none" => Some(false),
        other => {
            d.error(
                node.pos,
                format!("`group_by: {other}`: write `resource` (the default) or `none`"),
            );
            None
        }
    }
}

fn parse_protect(node: &Node, d: &mut Diagnostics) -> Protect {
    let mut protect = Protect::default();
    let Some(fields) = read::mapping(node, "protect", &["ids", "names"], d) else {
        return protect;
    };
    if let Some(n) = fields.get("ids") {
        let ids = read::strings(n, "protect.ids", d).unwrap_or_default();
        protect.ids = ids.into_iter().map(|(s, _)| s).collect();
    }
    if let Some(n) = fields.get("names") {
        for (text, pos) in read::strings(n, "protect.names", d).unwrap_or_default() {
            protect
                .names
                .extend(read::compile_regex(&text, pos, "protect.names", d));
        }
    }
    protect
}

fn parse_failed(node: &Node, d: &mut Diagnostics) -> Option<CalendarDuration> {
    let fields = read::mapping(node, "failed", &["delete_after"], d)?;
    fields
        .get("delete_after")
        .and_then(|n| read::duration(n, "failed.delete_after", d))
}

fn parse_guard(node: &Node, d: &mut Diagnostics) -> Guard {
    let mut guard = Guard::default();
    let known = [
        "min_keep",
        "max_delete",
        "max_delete_fraction",
        "stale_after",
        "future_tolerance",
        "max_listing_drop",
        "unapproved_max_delete",
        "unapproved_max_delete_fraction",
        "grace",
    ];
    let Some(fields) = read::mapping(node, "guard", &known, d) else {
        return guard;
    };
    if let Some(n) = fields.get("min_keep") {
        let value = read::integer(n, "guard.min_keep", 1, d);
        guard.min_keep = value.and_then(|v| u32::try_from(v).ok()).unwrap_or(1);
    }
    if let Some(n) = fields.get("max_delete") {
        guard.max_delete = read::integer(n, "guard.max_delete", 0, d).map(|v| v as u64);
    }
    if let Some(n) = fields.get("max_delete_fraction") {
        let value = read::number(n, "guard.max_delete_fraction", d);
        if let Some(v) = value
            && !(v > 0.0 && v <= 1.0)
        {
            d.error(n.pos, format!("`guard.max_delete_fraction: {v}` must be more than 0 and at most 1 (0.5 = half of a group's complete backups)"));
        }
        guard.max_delete_fraction = value;
    }
    if let Some(n) = fields.get("max_listing_drop")
        && let Some(v) = read::number(n, "guard.max_listing_drop", d)
    {
        if v > 0.0 && v <= 1.0 {
            guard.max_listing_drop = v;
        } else {
            d.error(n.pos, format!("`guard.max_listing_drop: {v}` must be more than 0 and at most 1 (0.5 blocks a run when a group's complete backups fell by more than half since the last run; 1 turns this guard off)"));
        }
    }
    if let Some(n) = fields.get("unapproved_max_delete")
        && let Some(v) = read::integer(n, "guard.unapproved_max_delete", 0, d)
    {
        guard.unapproved_max_delete = v as u64;
    }
    if let Some(n) = fields.get("unapproved_max_delete_fraction")
        && let Some(v) = read::number(n, "guard.unapproved_max_delete_fraction", d)
    {
        if (0.0..=1.0).contains(&v) {
            guard.unapproved_max_delete_fraction = v;
        } else {
            d.error(n.pos, format!("`guard.unapproved_max_delete_fraction: {v}` must be from 0 to 1 (0.1: a new or changed policy may delete a tenth of a group before a person approves it)"));
        }
    }
    if let Some(n) = fields.get("stale_after") {
        guard.stale_after = read::duration(n, "guard.stale_after", d);
        if guard.stale_after.is_some_and(|v| v.is_zero()) {
            d.error(n.pos, "`guard.stale_after` must be longer than 0; remove it to prune groups whatever their age");
        }
    }
    if let Some(n) = fields.get("future_tolerance")
        && let Some(v) = read::duration(n, "guard.future_tolerance", d)
    {
        guard.future_tolerance = v;
    }
    if let Some(n) = fields.get("grace") {
        guard.grace = read::duration(n, "guard.grace", d);
    }
    guard
}

/// Whether a node could be a policy (a mapping), for files that hold a list of policies.
pub fn is_mapping(node: &Node) -> bool {
    matches!(node.value, Value::Map(_))
}

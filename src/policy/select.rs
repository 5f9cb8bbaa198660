//! The `select:` section: which backups a policy manages. Keys depend on the account's
//! provider; `name` works for all. No I/O.

use super::diag::Diagnostics;
use super::read;
use super::yaml::{Node, Pos};
use regex::Regex;
use std::fmt;

/// The provider kinds an account can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Local,
    Cloudinary,
    Docspace,
    Csbs,
    Cbr,
    Taurusdb,
    S3,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 7] = [
        ProviderKind::Local,
        ProviderKind::Cloudinary,
        ProviderKind::Docspace,
        ProviderKind::Csbs,
        ProviderKind::Cbr,
        ProviderKind::Taurusdb,
        ProviderKind::S3,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Local => "local",
            ProviderKind::Cloudinary => "cloudinary",
            ProviderKind::Docspace => "onlyoffice-docspace",
            ProviderKind::Csbs => "huaweicloud-csbs",
            ProviderKind::Cbr => "huaweicloud-cbr",
            ProviderKind::Taurusdb => "huaweicloud-taurusdb",
            ProviderKind::S3 => "s3",
        }
    }

    pub fn from_name(name: &str) -> Option<ProviderKind> {
        ProviderKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The `select` keys this provider understands, besides `name`.
    pub fn select_keys(self) -> &'static [&'static str] {
        match self {
            ProviderKind::Local => &[
                "pattern",
                "timestamp_format",
                "timestamp_zone",
                "glob",
                "mtime",
            ],
            ProviderKind::Cloudinary => &["resource_type", "type", "prefix", "tags", "asset_ids"],
            ProviderKind::Docspace => &["storage_type", "dump"],
            ProviderKind::Csbs => &["resource_ids"],
            ProviderKind::Cbr => &[
                "resource_ids",
                "vault_ids",
                "resource_type",
                "image_type",
                "automatic",
            ],
            ProviderKind::Taurusdb => &["instance_ids", "backup_type"],
            ProviderKind::S3 => &[
                "prefix",
                "pattern",
                "timestamp_format",
                "timestamp_zone",
                "glob",
                "mtime",
            ],
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every key any provider understands, `name` first.
pub fn all_select_keys() -> Vec<&'static str> {
    let mut keys = vec!["name"];
    for kind in ProviderKind::ALL {
        keys.extend_from_slice(kind.select_keys());
    }
    keys
}

/// The local provider's selection: a regex with named groups `ts` (timestamp) and optional
/// `group`, or a glob; timestamps from the name or from the modification time.
#[derive(Clone, Debug, Default)]
pub struct LocalSelect {
    pub pattern: Option<Regex>,
    pub timestamp_format: Option<String>,
    /// How times without an offset in the `ts` group are read.
    pub timestamp_zone: TimestampZone,
    pub glob: Option<glob::Pattern>,
    pub mtime: bool,
}

impl LocalSelect {
    /// Whether `name` (a file name, or an S3 key below the prefix) passes `pattern` or `glob`.
    /// A glob's `*` and `?` do not cross `/`.
    pub fn matches(&self, name: &str) -> bool {
        self.pattern.as_ref().is_none_or(|re| re.is_match(name))
            && self.glob.as_ref().is_none_or(|g| glob_matches(g, name))
    }
}

impl LocalSelect {
    /// The text every name that passes `pattern` and `glob` starts with (often the database
    /// name of a dump): a sorted listing's candidates are found by it, and two selections
    /// whose prefixes differ need no regex to tell them apart.
    pub fn literal_prefix(&self) -> String {
        let from_pattern = self.pattern.as_ref().map(|re| regex_prefix(re.as_str()));
        let from_glob = self.glob.as_ref().map(|g| glob_prefix(g.as_str()));
        // Both must hold, so the longer (one extends the other) says more.
        [from_pattern, from_glob]
            .into_iter()
            .flatten()
            .max_by_key(String::len)
            .unwrap_or_default()
    }
}

/// The literal text a match of `pattern` must start with: what follows a leading `^` up to
/// the first character with a special meaning (a quantifier takes its character back). Empty
/// when it cannot tell (no `^`, an alternative at the top, flags).
pub fn regex_prefix(pattern: &str) -> String {
    let Some(rest) = pattern.strip_prefix('^') else {
        return String::new();
    };
    // `a|b` at the top level: either side may match.
    let mut depth = 0i32;
    let mut escaped = false;
    let mut in_class = false;
    for c in pattern.chars() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '[') => in_class = true,
            (false, ']') => in_class = false,
            (false, '(') if !in_class => depth += 1,
            (false, ')') if !in_class => depth -= 1,
            (false, '|') if !in_class && depth == 0 => return String::new(),
            _ => {}
        }
    }
    let mut prefix = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        let literal = match c {
            '\\' => match chars.next() {
                // An escaped punctuation character is itself; `\d`, `\w`, ... are classes.
                Some(e) if e.is_ascii_punctuation() => e,
                _ => break,
            },
            '.' | '+' | '*' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' => break,
            c => c,
        };
        if matches!(chars.peek(), Some('?' | '*' | '{')) {
            break;
        }
        prefix.push(literal);
    }
    prefix
}

/// The literal text a name matching `glob` starts with.
fn glob_prefix(glob: &str) -> String {
    glob.chars()
        .take_while(|c| !matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\'))
        .collect()
}

/// A glob match in which `*`, `?` and `[…]` never match `/` (`**/` crosses folders).
pub fn glob_matches(glob: &glob::Pattern, name: &str) -> bool {
    glob.matches_with(
        name,
        glob::MatchOptions {
            require_literal_separator: true,
            ..glob::MatchOptions::new()
        },
    )
}

/// `select.timestamp_zone`: the zone of file-name times written without an offset.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum TimestampZone {
    #[default]
    Utc,
    /// The policy's zone (its `timezone`, else the config's default).
    Policy,
    Named(jiff::tz::TimeZone),
}

#[derive(Clone, Debug, Default)]
pub struct Select {
    /// [`Select::name_prefix`], worked out once.
    name_prefix: std::sync::OnceLock<String>,
    /// Regex on the backup name, for every provider.
    pub name: Option<Regex>,
    pub local: LocalSelect,
    pub resource_type: Option<String>,
    pub asset_type: Option<String>,
    pub prefix: Option<String>,
    pub tags: Vec<String>,
    pub asset_ids: Vec<String>,
    pub storage_type: Option<String>,
    pub dump: Option<bool>,
    pub resource_ids: Vec<String>,
    /// CBR: the vaults whose backups are listed (empty: every vault).
    pub vault_ids: Vec<String>,
    /// CBR: `backup` (the default) or `replication`.
    pub image_type: Option<String>,
    /// CBR: whether backups a vault's policy made (`auto_trigger`) are candidates (default
    /// yes).
    pub automatic: Option<bool>,
    pub instance_ids: Vec<String>,
    pub backup_type: Option<String>,
    /// The keys written, with their positions, to check them against the account's provider.
    pub keys: Vec<(String, Pos)>,
}

impl Select {
    /// Groups the selection names explicitly (asset, server or instance ids); empty = all.
    pub fn group_ids(&self) -> impl Iterator<Item = &String> {
        self.asset_ids
            .iter()
            .chain(&self.resource_ids)
            .chain(&self.instance_ids)
    }

    /// Whether a backup name passes the name filters: `name` on the whole name, and the local
    /// and S3 providers' `pattern` or `glob` (which also narrow a saved listing) on the name
    /// below `prefix` (an S3 key below the prefix; a local file name as it is).
    pub fn matches_name(&self, name: &str) -> bool {
        let below = match &self.prefix {
            Some(prefix) => match name.strip_prefix(prefix.as_str()) {
                Some(rest) => rest,
                None => return false,
            },
            None => name,
        };
        self.name.as_ref().is_none_or(|re| re.is_match(name)) && self.local.matches(below)
    }

    /// The text every name this selection takes starts with (see
    /// [`LocalSelect::literal_prefix`]): `prefix` and the pattern below it, or `name`'s.
    pub fn name_prefix(&self) -> &str {
        self.name_prefix.get_or_init(|| self.find_name_prefix())
    }

    fn find_name_prefix(&self) -> String {
        let below = format!(
            "{}{}",
            self.prefix.as_deref().unwrap_or_default(),
            self.local.literal_prefix()
        );
        let named = self.name.as_ref().map(|re| regex_prefix(re.as_str()));
        match named {
            Some(named) if named.len() > below.len() => named,
            _ => below,
        }
    }

    /// Whether this selection takes a listed backup (its name, group and tags), as far as the
    /// backup shows it: the name filters, the group ids, Cloudinary's `prefix` (on the public
    /// id) and DocSpace's `storage_type` (on the `storage:` tag). For finding policies of one
    /// account that select the same backups.
    pub fn selects(&self, name: &str, group: &str, tags: &[String]) -> bool {
        let mut ids = self.group_ids().peekable();
        self.matches_name(name)
            && (ids.peek().is_none() || ids.any(|id| id == group))
            && self.prefix.as_ref().is_none_or(|p| name.starts_with(p))
            && self.storage_type.as_ref().is_none_or(|t| {
                tags.iter()
                    .any(|tag| tag.strip_prefix("storage:") == Some(t))
            })
    }

    /// Whether two selections of one account read different listings, so that no backup can
    /// be in both: another Cloudinary resource or delivery type, disjoint Cloudinary tags,
    /// the DocSpace dump history beside the portal's, another TaurusDB backup type.
    pub fn lists_apart_from(&self, other: &Select) -> bool {
        let differ =
            |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a != b);
        let resource = |s: &Select| s.resource_type.clone().unwrap_or_else(|| "image".into());
        resource(self) != resource(other)
            || differ(&self.asset_type, &other.asset_type)
            || differ(&self.backup_type, &other.backup_type)
            || self.image_type.as_deref().unwrap_or("backup")
                != other.image_type.as_deref().unwrap_or("backup")
            || self.dump.unwrap_or(false) != other.dump.unwrap_or(false)
            || (!self.tags.is_empty()
                && !other.tags.is_empty()
                && !self.tags.iter().any(|t| other.tags.contains(t)))
    }

    /// Whether the selection takes every backup its listing holds (no name, pattern, glob,
    /// id, prefix or storage filter).
    pub fn takes_all(&self) -> bool {
        self.name.is_none()
            && self.local.pattern.is_none()
            && self.local.glob.is_none()
            && self.group_ids().next().is_none()
            && self.prefix.is_none()
            && self.storage_type.is_none()
    }

    /// The filters as written, to compare two selections.
    fn filters(&self) -> String {
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.name.as_ref().map(Regex::as_str),
            self.local.pattern.as_ref().map(Regex::as_str),
            self.local.glob.as_ref().map(glob::Pattern::as_str),
            self.prefix,
            self.storage_type,
            self.asset_ids,
            self.resource_ids,
            self.instance_ids,
            self.tags,
        )
    }

    /// Whether two selections of one account visibly take the same backups, from the files
    /// alone: the same filters, or one that takes everything its listing holds.
    pub fn plainly_overlaps(&self, other: &Select) -> bool {
        !self.lists_apart_from(other)
            && (self.takes_all() || other.takes_all() || self.filters() == other.filters())
    }

    /// Reports keys that the account's provider does not understand.
    /// `account_pos` locates errors about keys that are missing rather than wrong.
    pub fn check_provider(
        &self,
        kind: ProviderKind,
        account: &str,
        account_pos: Pos,
        d: &mut Diagnostics,
    ) {
        for (key, pos) in &self.keys {
            if key == "name" || kind.select_keys().contains(&key.as_str()) {
                continue;
            }
            let owner = ProviderKind::ALL
                .into_iter()
                .find(|k| k.select_keys().contains(&key.as_str()));
            let owner = owner
                .map(|k| format!(" is a {k} key and"))
                .unwrap_or_default();
            d.error(
                *pos,
                format!(
                    "`select.{key}`{owner} does not apply to account `{account}` ({kind}); its keys are: name, {}",
                    kind.select_keys().join(", ")
                ),
            );
        }
        match kind {
            ProviderKind::Cloudinary => self.check_cloudinary(d),
            ProviderKind::Docspace => self.check_docspace(d),
            ProviderKind::Cbr => self.check_cbr(d),
            _ => {}
        }
        if self.local.pattern.is_none() && self.local.glob.is_none() {
            let what = match kind {
                ProviderKind::Local => "a local folder",
                ProviderKind::S3 => "an S3 bucket",
                _ => return,
            };
            let items = match kind {
                ProviderKind::S3 => "backup objects",
                _ => "backup files",
            };
            d.error(
                account_pos,
                format!(
                    "account `{account}` is {what}: `select` needs `pattern` (a regex with a named group `ts`) or `glob`, so that only {items} are ever deleted"
                ),
            );
        }
        if kind == ProviderKind::S3
            && let (Some(prefix), Some(pos)) = (&self.prefix, self.key_pos("prefix"))
            && prefix.starts_with('/')
        {
            d.error(
                pos,
                format!(
                    "`select.prefix: {prefix}`: S3 keys do not start with `/`; write `{}`",
                    prefix.trim_start_matches('/')
                ),
            );
        }
    }
}

pub fn parse_select(node: &Node, d: &mut Diagnostics) -> Select {
    let keys = all_select_keys();
    let mut select = Select::default();
    let Some(fields) = read::mapping(node, "select", &keys, d) else {
        return select;
    };
    select.keys = fields.keys().map(|k| (k.name.clone(), k.pos)).collect();
    let text = |k: &str, d: &mut Diagnostics| {
        let path = format!("select.{k}");
        fields
            .get(k)
            .and_then(|n| read::string(n, &path, d))
            .map(String::from)
    };
    let list = |k: &str, d: &mut Diagnostics| {
        let path = format!("select.{k}");
        let items = fields.get(k).and_then(|n| read::strings(n, &path, d));
        let items = items.unwrap_or_default();
        for (i, (item, pos)) in items.iter().enumerate() {
            if let Some((_, first)) = items[..i].iter().find(|(earlier, _)| earlier == item) {
                d.error(
                    *pos,
                    format!(
                        "`{path}` names `{item}` again (first at line {}): a repeated id is listed twice, and the plan would count its backups twice; remove this one",
                        first.line
                    ),
                );
            }
        }
        items.into_iter().map(|(s, _)| s).collect()
    };
    select.name = fields
        .get("name")
        .and_then(|n| read::regex(n, "select.name", d));
    select.resource_type = text("resource_type", d);
    select.asset_type = text("type", d);
    select.prefix = text("prefix", d);
    select.tags = list("tags", d);
    select.asset_ids = list("asset_ids", d);
    select.storage_type = text("storage_type", d);
    select.dump = fields
        .get("dump")
        .and_then(|n| read::boolean(n, "select.dump", d));
    select.resource_ids = list("resource_ids", d);
    select.vault_ids = list("vault_ids", d);
    select.image_type = text("image_type", d);
    select.automatic = fields
        .get("automatic")
        .and_then(|n| read::boolean(n, "select.automatic", d));
    select.instance_ids = list("instance_ids", d);
    select.backup_type = text("backup_type", d);
    if let (Some(kind), Some(node)) = (&select.backup_type, fields.get("backup_type"))
        && kind != "manual"
    {
        d.error(
            node.pos,
            format!("`select.backup_type: {kind}`: only `manual` backups can be managed; automated backups follow the instance's own backup policy"),
        );
    }
    select.local = parse_local(&fields, d);
    select
}

/// Cloudinary's resource types.
pub const CLOUDINARY_RESOURCE_TYPES: [&str; 3] = ["image", "video", "raw"];

impl Select {
    fn key_pos(&self, key: &str) -> Option<Pos> {
        self.keys
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, pos)| *pos)
    }

    fn check_cbr(&self, d: &mut Diagnostics) {
        if let (Some(kind), Some(pos)) = (&self.image_type, self.key_pos("image_type"))
            && kind != "backup"
            && kind != "replication"
        {
            d.error(
                pos,
                format!("unknown `select.image_type: {kind}`; write `backup` (the default) or `replication` (copies replicated from another region)"),
            );
        }
        if let (Some(kind), Some(pos)) = (&self.resource_type, self.key_pos("resource_type"))
            && !kind.starts_with("OS::")
        {
            d.error(
                pos,
                format!("unknown `select.resource_type: {kind}`; CBR resource types are written like `OS::Nova::Server`, `OS::Cinder::Volume` or `OS::Sfs::Turbo`"),
            );
        }
    }

    fn check_cloudinary(&self, d: &mut Diagnostics) {
        if let (Some(kind), Some(pos)) = (&self.resource_type, self.key_pos("resource_type"))
            && !CLOUDINARY_RESOURCE_TYPES.contains(&kind.as_str())
        {
            let hint = super::diag::did_you_mean(kind, CLOUDINARY_RESOURCE_TYPES);
            d.error(
                pos,
                format!("unknown `select.resource_type: {kind}`{hint}; resource types are: image, video, raw"),
            );
        }
        if let (Some(pos), None) = (self.key_pos("prefix"), &self.asset_type) {
            d.error(
                pos,
                "`select.prefix` needs `select.type`, the delivery type of the assets (usually `upload`)",
            );
        }
        if let Some(pos) = self.key_pos("asset_ids") {
            let others: Vec<&str> = ["resource_type", "type", "prefix", "tags"]
                .into_iter()
                .filter(|k| self.key_pos(k).is_some())
                .collect();
            if !others.is_empty() {
                d.error(
                    pos,
                    format!(
                        "`select.asset_ids` names the assets itself; remove {} or remove asset_ids",
                        others.join(", ")
                    ),
                );
            }
        }
    }

    fn check_docspace(&self, d: &mut Diagnostics) {
        if let (Some(name), Some(pos)) = (&self.storage_type, self.key_pos("storage_type"))
            && storage_type_number(name).is_none()
        {
            let hint = super::diag::did_you_mean(name, DOCSPACE_STORAGE_TYPES.iter().copied());
            d.error(
                pos,
                format!(
                    "unknown `select.storage_type: {name}`{hint}; DocSpace storage types are: {}",
                    DOCSPACE_STORAGE_TYPES.join(", ")
                ),
            );
        }
    }
}

/// DocSpace's storage types, by their number on the wire.
pub const DOCSPACE_STORAGE_TYPES: [&str; 6] = [
    "documents",
    "thirdparty_documents",
    "custom_cloud",
    "local",
    "data_store",
    "thirdparty_consumer",
];

/// A DocSpace storage type's number from its name as a policy writes it (`data_store`) or as
/// the server may spell it (`DataStore`, `4`).
pub fn storage_type_number(text: &str) -> Option<usize> {
    if let Ok(n) = text.trim().parse::<usize>() {
        return (n < DOCSPACE_STORAGE_TYPES.len()).then_some(n);
    }
    let folded: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    DOCSPACE_STORAGE_TYPES
        .iter()
        .position(|name| name.replace('_', "") == folded)
}

fn parse_local(fields: &read::Fields, d: &mut Diagnostics) -> LocalSelect {
    let mut local = LocalSelect {
        mtime: fields
            .get("mtime")
            .and_then(|n| read::boolean(n, "select.mtime", d))
            .unwrap_or(false),
        ..LocalSelect::default()
    };
    if let Some(node) = fields.get("pattern") {
        local.pattern = read::regex(node, "select.pattern", d);
        if let Some(re) = &local.pattern
            && !local.mtime
            && !re.capture_names().any(|n| n == Some("ts"))
        {
            d.error(
                node.pos,
                "`select.pattern` has no named group `ts` for the timestamp: write for example `^db-(?P<ts>\\d{8}T\\d{6})\\.sql\\.gz$`, or set `mtime: true` to use the file's modification time",
            );
        }
    }
    if let Some(node) = fields.get("glob") {
        if let Some(text) = read::string(node, "select.glob", d) {
            local.glob = glob::Pattern::new(text)
                .map_err(|e| d.error(node.pos, format!("`select.glob` is not a valid glob: {e}")))
                .ok();
        }
        if fields.get("pattern").is_some() {
            d.error(
                node.pos,
                "write either `select.pattern` or `select.glob`, not both",
            );
        }
    }
    if let Some(node) = fields.get("timestamp_format") {
        local.timestamp_format = read::string(node, "select.timestamp_format", d).map(String::from);
        if let Some(Err(e)) = local
            .timestamp_format
            .as_deref()
            .map(crate::timestamp::check_format)
        {
            d.error(node.pos, format!("`select.timestamp_format`: {e}"));
        }
    }
    if let Some(node) = fields.get("timestamp_zone") {
        local.timestamp_zone = match read::string(node, "select.timestamp_zone", d) {
            Some("policy") => TimestampZone::Policy,
            Some(name) => match jiff::tz::TimeZone::get(name) {
                Ok(tz) => TimestampZone::Named(tz),
                Err(_) => {
                    d.error(
                        node.pos,
                        format!(
                            "unknown time zone `{name}` in `select.timestamp_zone`; write `policy` (the policy's zone), `UTC` or an IANA name such as `Europe/Berlin`"
                        ),
                    );
                    TimestampZone::Utc
                }
            },
            None => TimestampZone::Utc,
        };
    }
    for key in ["timestamp_format", "timestamp_zone"] {
        if let Some(node) = fields.get(key)
            && (fields.get("pattern").is_none() || local.mtime)
        {
            d.error(
                node.pos,
                format!(
                    "`select.{key}` reads the `ts` group of `select.pattern`; add a pattern (without `mtime: true`) or remove it"
                ),
            );
        }
    }
    local
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_tells_the_literal_text_its_names_start_with() {
        for (pattern, prefix) in [
            (r"^pg-(?P<group>main)-(?P<ts>\d{8}T\d{6}Z)\.sql\.gz$", "pg-"),
            (r"^db-0042-(?P<ts>\d+)\.dump$", "db-0042-"),
            (r"^db\.main\.\d", "db.main."),
            (r"^abc?d", "ab"),
            (r"^ab+c", "ab"),
            (r"^ab{2}", "a"),
            (r"^a|^b", ""),
            (r"pg-main", ""),
            (r"(?i)^pg", ""),
            (r"^[pq]g", ""),
            (r"^x(a|b)", "x"),
        ] {
            assert_eq!(regex_prefix(pattern), prefix, "{pattern}");
        }
        assert_eq!(glob_prefix("db-*.dump"), "db-");
        assert_eq!(glob_prefix("[ab]*"), "");
    }

    #[test]
    fn docspace_storage_types_by_name_number_or_server_spelling() {
        assert_eq!(storage_type_number("documents"), Some(0));
        assert_eq!(storage_type_number("DataStore"), Some(4));
        assert_eq!(storage_type_number("data_store"), Some(4));
        assert_eq!(storage_type_number("ThirdPartyConsumer"), Some(5));
        assert_eq!(storage_type_number("3"), Some(3));
        assert_eq!(storage_type_number("9"), None);
        assert_eq!(storage_type_number("s3"), None);
    }
}

//! The daemon config (`retentiond.yaml`): policy locations, state, global dry-run, metrics,
//! defaults and accounts with credentials by reference. Parsing is pure; only
//! [`SecretRef::resolve`] reads the environment or files.

use super::definition::parse_timezone;
use super::diag::{Diagnostics, did_you_mean};
use super::read;
use super::select::ProviderKind;
use super::yaml::{Node, Pos, Value};
use crate::retention::CalendarDuration;
pub use crate::secret::Secret;
use jiff::tz::TimeZone;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const CONFIG_KEYS: &[&str] = &[
    "policies",
    "state_dir",
    "journal",
    "journal_keep",
    "dry_run",
    "metrics",
    "shutdown_timeout",
    "defaults",
    "accounts",
    "notify",
];

/// The unit's `TimeoutStopSec=90` leaves half a minute beyond this.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct Config {
    pub file: PathBuf,
    /// Folders and files holding policies; relative paths are relative to the config file.
    pub policies: Vec<PathBuf>,
    pub state_dir: PathBuf,
    /// Where the journal lives: SQLite in `state_dir` (`None`), or a PostgreSQL database
    /// shared by a fleet of hosts.
    pub postgres: Option<PostgresJournal>,
    /// How long the journal keeps what runs decided and listed (`journal_keep`, default
    /// 90d); `None`: forever. Deletions are kept forever.
    pub journal_keep: Option<CalendarDuration>,
    /// The global switch: true forces every policy into dry-run.
    pub dry_run: bool,
    pub metrics_listen: Option<SocketAddr>,
    /// How long the daemon lets running policies finish their deletions on SIGTERM; keep it
    /// shorter than the unit's `TimeoutStopSec`.
    pub shutdown_timeout: Duration,
    pub default_timezone: Option<TimeZone>,
    /// `defaults.grace`: the grace period of policies that set no `guard.grace`.
    pub default_grace: Option<CalendarDuration>,
    pub accounts: BTreeMap<String, Account>,
    /// `notify:` sinks and routes (empty: no notifications).
    pub notify: super::notify::Notify,
}

/// `journal: {postgres: URL, ca_file: PATH}`: the fleet's journal.
#[derive(Clone, Debug, PartialEq)]
pub struct PostgresJournal {
    /// The connection URL, a secret reference (it may hold a password).
    pub url: SecretRef,
    /// Roots to verify the server's certificate with, instead of the system's.
    pub ca_file: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub struct Account {
    pub name: String,
    pub kind: ProviderKind,
    pub settings: AccountSettings,
    /// `http:` (HTTP providers only); `None` means the defaults.
    pub http: Option<HttpOverrides>,
    pub pos: Pos,
}

#[derive(Clone, Debug)]
pub enum AccountSettings {
    Local {
        path: PathBuf,
    },
    Docspace {
        base_url: String,
        auth: DocspaceAuth,
    },
    Cloudinary {
        base_url: String,
        cloud_name: String,
        api_key: SecretRef,
        api_secret: SecretRef,
    },
    Huawei {
        region: String,
        project_id: String,
        endpoint: Option<String>,
        iam_endpoint: Option<String>,
        auth: HuaweiAuth,
        /// CSBS: how long to wait for a deletion task, and how often to look.
        delete_timeout: Duration,
        poll_interval: Duration,
    },
    S3 {
        /// `None`: AWS, `https://s3.{region}.amazonaws.com`.
        endpoint: Option<String>,
        region: String,
        bucket: String,
        /// `https://endpoint/bucket/…` instead of `https://bucket.endpoint/…` (MinIO, Ceph).
        path_style: bool,
        credentials: S3Credentials,
        versions: S3Versions,
        /// `object_lock: true` (with `versions: delete`): the plan asks S3 for the Object Lock
        /// of each version it would delete (a HEAD request each) and keeps a locked one.
        object_lock: bool,
    },
}

/// An S3 account's keys; when the config names none, `${env:AWS_ACCESS_KEY_ID}`,
/// `${env:AWS_SECRET_ACCESS_KEY}` and (if set) `${env:AWS_SESSION_TOKEN}`.
#[derive(Clone, Debug)]
pub struct S3Credentials {
    pub access_key_id: SecretRef,
    pub secret_access_key: SecretRef,
    pub session_token: Option<SecretRef>,
}

/// What deleting a backup means in a versioned bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum S3Versions {
    /// Delete the key: a versioned bucket adds a delete marker and keeps the older versions
    /// (S3's own rule; lifecycle rules reclaim them).
    #[default]
    Marker,
    /// Delete every version of the key by its version id.
    Delete,
}

impl AccountSettings {
    /// Every secret reference of the account.
    pub fn secret_refs(&self) -> Vec<&SecretRef> {
        match self {
            AccountSettings::Local { .. } => Vec::new(),
            AccountSettings::Docspace { auth, .. } => match auth {
                DocspaceAuth::ApiKey(r) | DocspaceAuth::AuthToken(r) => vec![r],
            },
            AccountSettings::Cloudinary {
                api_key,
                api_secret,
                ..
            } => vec![api_key, api_secret],
            AccountSettings::Huawei { auth, .. } => match auth {
                HuaweiAuth::AkSk {
                    access_key,
                    secret_key,
                    security_token,
                } => [Some(access_key), Some(secret_key), security_token.as_ref()]
                    .into_iter()
                    .flatten()
                    .collect(),
                HuaweiAuth::Token(r) => vec![r],
                HuaweiAuth::Password { password, .. } => vec![password],
            },
            AccountSettings::S3 { credentials, .. } => [
                Some(&credentials.access_key_id),
                Some(&credentials.secret_access_key),
                credentials.session_token.as_ref(),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }
    }
}

impl AccountSettings {
    /// Where the account's backups are, written the same way for two accounts that reach the
    /// same backups: a folder's canonical path (a symlink to it is the folder), a bucket at
    /// its endpoint, a cloud, a portal, a project's region. Reads the file system (a folder's
    /// real path); a path that cannot be resolved is compared as written.
    pub fn place(&self, kind: ProviderKind) -> String {
        let site = |base: &str| match url::Url::parse(base) {
            Ok(u) => format!(
                "{}://{}:{}{}",
                u.scheme(),
                u.host_str().unwrap_or_default().trim_end_matches('.'),
                u.port_or_known_default().unwrap_or_default(),
                u.path().trim_end_matches('/')
            ),
            Err(_) => base.to_string(),
        };
        match self {
            AccountSettings::Local { path } => {
                let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
                format!("local {}", real.display())
            }
            AccountSettings::Docspace { base_url, .. } => format!("{kind} {}", site(base_url)),
            AccountSettings::Cloudinary {
                base_url,
                cloud_name,
                ..
            } => format!("{kind} {} {cloud_name}", site(base_url)),
            AccountSettings::Huawei {
                region,
                project_id,
                endpoint,
                ..
            } => {
                let at = endpoint.as_deref().map_or_else(|| region.clone(), site);
                format!("{kind} {at} {project_id}")
            }
            AccountSettings::S3 {
                endpoint,
                region,
                bucket,
                ..
            } => {
                let aws = format!("https://s3.{region}.amazonaws.com");
                format!(
                    "{kind} {} {bucket}",
                    site(endpoint.as_deref().unwrap_or(&aws))
                )
            }
        }
    }
}

/// Each account's place ([`AccountSettings::place`]), to find two accounts that reach the
/// same backups.
#[derive(Clone, Debug, Default)]
pub struct Places(BTreeMap<String, String>);

impl Places {
    /// Whether accounts `a` and `b` reach the same backups (an account reaches its own; an
    /// account the config does not name is compared by name alone).
    /// Where account `name`'s backups are, if the config has it.
    pub fn place(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn same(&self, a: &str, b: &str) -> bool {
        a == b || matches!((self.0.get(a), self.0.get(b)), (Some(x), Some(y)) if x == y)
    }
}

impl Config {
    /// Every account's place.
    pub fn places(&self) -> Places {
        Places(
            self.accounts
                .iter()
                .map(|(name, a)| (name.clone(), a.settings.place(a.kind)))
                .collect(),
        )
    }

    /// Resolves every secret reference of every account (reading the environment, files and
    /// `$CREDENTIALS_DIRECTORY`), as the daemon does at start and on reload; an error per
    /// reference that does not resolve, naming it and never a value.
    pub fn check_secrets(&self) -> Vec<super::Diagnostic> {
        let mut errors = Vec::new();
        if let Some(pg) = &self.postgres
            && let Err(e) = pg.url.resolve()
        {
            errors.push(super::Diagnostic {
                file: self.file.clone(),
                pos: Pos::default(),
                message: format!("journal.postgres: {e}"),
                source_line: None,
            });
        }
        for account in self.accounts.values() {
            for reference in account.settings.secret_refs() {
                if let Err(e) = reference.resolve() {
                    errors.push(super::Diagnostic {
                        file: self.file.clone(),
                        pos: account.pos,
                        message: format!("account `{}`: {e}", account.name),
                        source_line: None,
                    });
                }
            }
        }
        for (name, sink) in &self.notify.sinks {
            for reference in sink.secret_refs() {
                if let Err(e) = reference.resolve() {
                    errors.push(super::Diagnostic {
                        file: self.file.clone(),
                        pos: Pos::default(),
                        message: format!("notify.sinks.{name}: {e}"),
                        source_line: None,
                    });
                }
            }
        }
        errors
    }
}

#[derive(Clone, Debug)]
pub enum DocspaceAuth {
    /// Sent as `Authorization: Bearer <key>`.
    ApiKey(SecretRef),
    /// Sent as the raw `Authorization` value.
    AuthToken(SecretRef),
}

#[derive(Clone, Debug)]
pub enum HuaweiAuth {
    AkSk {
        access_key: SecretRef,
        secret_key: SecretRef,
        security_token: Option<SecretRef>,
    },
    Token(SecretRef),
    Password {
        username: String,
        password: SecretRef,
        domain: String,
    },
}

/// Where a secret lives. The config never holds a secret itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
    /// systemd `LoadCredential=`: a file in `$CREDENTIALS_DIRECTORY`.
    Credential(String),
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "${{env:{name}}}"),
            SecretRef::File(path) => write!(f, "${{file:{}}}", path.display()),
            SecretRef::Credential(name) => write!(f, "${{credential:{name}}}"),
        }
    }
}

impl SecretRef {
    pub fn parse(text: &str) -> Option<SecretRef> {
        let inner = text.trim().strip_prefix("${")?.strip_suffix('}')?;
        let (kind, name) = inner.split_once(':')?;
        if name.is_empty() {
            return None;
        }
        match kind {
            "env" => Some(SecretRef::Env(name.to_string())),
            "file" => Some(SecretRef::File(PathBuf::from(name))),
            "credential" if !name.contains('/') => Some(SecretRef::Credential(name.to_string())),
            _ => None,
        }
    }

    /// Reads the secret. Errors name the reference, never a value; a trailing newline of a
    /// file is dropped.
    pub fn resolve(&self) -> Result<Secret, String> {
        let read_file = |path: &Path| {
            std::fs::read_to_string(path)
                .map(|s| Secret::new(s.trim_end_matches(['\n', '\r']).to_string()))
                .map_err(|e| format!("secret {self}: cannot read {}: {e}", path.display()))
        };
        let secret = match self {
            SecretRef::Env(name) => std::env::var(name)
                .map(Secret::new)
                .map_err(|_| format!("secret {self}: environment variable {name} is not set"))?,
            SecretRef::File(path) => read_file(path)?,
            SecretRef::Credential(name) => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                    format!("secret {self}: $CREDENTIALS_DIRECTORY is not set (add `LoadCredential={name}:...` to the unit)")
                })?;
                read_file(&Path::new(&dir).join(name))?
            }
        };
        if secret.expose().is_empty() {
            return Err(format!("secret {self} is empty"));
        }
        Ok(secret)
    }
}

impl Config {
    /// What `validate` and the daemon warn about without refusing the config.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(address) = self.metrics_listen
            && !address.ip().is_loopback()
        {
            warnings.push(format!(
                "{}: metrics.listen {address} is not a loopback address, and /metrics and /healthz have no authentication: whoever reaches it sees policy names, accounts and counts; keep it on 127.0.0.1 or put a proxy with authentication in front",
                self.file.display()
            ));
        }
        warnings
    }
}

/// `journal_keep` when the config does not say.
pub fn default_journal_keep() -> CalendarDuration {
    CalendarDuration::parse("90d").expect("a valid duration")
}

/// Where the journal of a config without `state_dir` lives. Every command resolves it the
/// same way, so that `sudo retentiond run` or `history` on the host uses the daemon's journal
/// and its locks: a config under `/etc/retentiond` keeps it in `/var/lib/retentiond` (the
/// unit's `StateDirectory=retentiond`, whatever `$STATE_DIRECTORY` says); elsewhere the first
/// folder of `$STATE_DIRECTORY` (systemd may list several, separated by colons), else
/// `state/` beside the config file.
pub fn default_state_dir(config_file: &Path, state_directory: Option<&str>) -> PathBuf {
    let absolute = std::path::absolute(config_file).unwrap_or_else(|_| config_file.to_path_buf());
    if absolute.starts_with("/etc/retentiond") {
        return PathBuf::from("/var/lib/retentiond");
    }
    state_directory
        .and_then(|dirs| dirs.split(':').next())
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| config_file.parent().unwrap_or(Path::new("")).join("state"))
}

/// Validates a config document; `base` is the folder relative paths are taken from.
pub fn parse_config(node: &Node, base: &Path, d: &mut Diagnostics) -> Option<Config> {
    let before = d.list.len();
    let fields = read::mapping(node, "config", CONFIG_KEYS, d)?;
    let path = |p: &str| base.join(p);
    let policies = match fields.get("policies") {
        Some(n) => read::strings(n, "policies", d)
            .unwrap_or_default()
            .into_iter()
            .map(|(p, _)| path(&p))
            .collect(),
        None => vec![PathBuf::from("/etc/retentiond/policies")],
    };
    let state_dir = match fields.get("state_dir") {
        Some(n) => read::string(n, "state_dir", d)
            .map(path)
            .unwrap_or_default(),
        None => default_state_dir(d.file(), std::env::var("STATE_DIRECTORY").ok().as_deref()),
    };
    let defaults = fields
        .get("defaults")
        .and_then(|n| read::mapping(n, "defaults", &["timezone", "grace"], d));
    let config = Config {
        file: d.file().to_path_buf(),
        policies,
        state_dir,
        postgres: fields
            .get("journal")
            .and_then(|n| parse_journal(n, base, d)),
        journal_keep: match fields.get("journal_keep") {
            Some(Node {
                value: Value::Str(text),
                ..
            }) if text == "forever" => None,
            Some(n) => read::duration(n, "journal_keep", d),
            None => Some(default_journal_keep()),
        },
        dry_run: fields
            .get("dry_run")
            .and_then(|n| read::boolean(n, "dry_run", d))
            .unwrap_or(false),
        metrics_listen: fields.get("metrics").and_then(|n| parse_metrics(n, d)),
        shutdown_timeout: fields
            .get("shutdown_timeout")
            .and_then(|n| read::exact_duration(n, "shutdown_timeout", d))
            .unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT),
        default_timezone: defaults
            .as_ref()
            .and_then(|f| f.get("timezone"))
            .and_then(|n| parse_timezone(n, "defaults.timezone", d)),
        default_grace: defaults
            .as_ref()
            .and_then(|f| f.get("grace"))
            .and_then(|n| read::duration(n, "defaults.grace", d)),
        accounts: fields
            .get("accounts")
            .map(|n| parse_accounts(n, base, d))
            .unwrap_or_default(),
        notify: fields
            .get("notify")
            .and_then(|n| super::notify::parse_notify(n, d))
            .unwrap_or_default(),
    };
    (d.list.len() == before).then_some(config)
}

fn parse_journal(node: &Node, base: &Path, d: &mut Diagnostics) -> Option<PostgresJournal> {
    let fields = read::mapping(node, "journal", &["postgres", "ca_file"], d)?;
    let Some(url) = fields.get("postgres") else {
        d.error(
            fields.pos,
            "`journal` needs `postgres`: a reference to the database URL, such as \"${env:RETENTIOND_PG_URL}\" (leave `journal` out for the SQLite journal in state_dir)",
        );
        return None;
    };
    let url = secret_ref(url, "journal.postgres", d)?;
    let ca_file = fields
        .get("ca_file")
        .and_then(|n| read::string(n, "journal.ca_file", d))
        .map(|p| base.join(p));
    Some(PostgresJournal { url, ca_file })
}

fn parse_metrics(node: &Node, d: &mut Diagnostics) -> Option<SocketAddr> {
    let fields = read::mapping(node, "metrics", &["listen"], d)?;
    let listen = fields.get("listen")?;
    let text = read::string(listen, "metrics.listen", d)?;
    text.parse()
        .map_err(|_| {
            d.error(
                listen.pos,
                format!(
                    "`metrics.listen: {text}` must be an address and port such as `127.0.0.1:9464`"
                ),
            )
        })
        .ok()
}

fn parse_accounts(node: &Node, base: &Path, d: &mut Diagnostics) -> BTreeMap<String, Account> {
    let mut accounts = BTreeMap::new();
    let Value::Map(entries) = &node.value else {
        d.error(
            node.pos,
            "`accounts` must be a mapping of account names to settings",
        );
        return accounts;
    };
    for (key, value) in entries {
        if let Some(account) = parse_account(&key.name, value, base, d) {
            accounts.insert(key.name.clone(), account);
        }
    }
    accounts
}

fn account_keys(kind: ProviderKind) -> &'static [&'static str] {
    match kind {
        ProviderKind::Local => &["provider", "path"],
        ProviderKind::Docspace => &["provider", "base_url", "api_key", "auth_token", "http"],
        ProviderKind::Cloudinary => &[
            "provider",
            "base_url",
            "cloud_name",
            "api_key",
            "api_secret",
            "http",
        ],
        // `delete_timeout` and `poll_interval` are CSBS settings; parse_account says so.
        ProviderKind::Csbs | ProviderKind::Cbr | ProviderKind::Taurusdb => &[
            "provider",
            "region",
            "project_id",
            "endpoint",
            "iam_endpoint",
            "auth",
            "http",
            "delete_timeout",
            "poll_interval",
        ],
        ProviderKind::S3 => &[
            "provider",
            "endpoint",
            "region",
            "bucket",
            "path_style",
            "access_key_id",
            "secret_access_key",
            "session_token",
            "versions",
            "object_lock",
            "http",
        ],
    }
}

fn parse_account(name: &str, node: &Node, base: &Path, d: &mut Diagnostics) -> Option<Account> {
    let path = format!("accounts.{name}");
    let Value::Map(entries) = &node.value else {
        d.error(
            node.pos,
            format!("`{path}` must be a mapping with `provider` and its settings"),
        );
        return None;
    };
    let Some((_, provider)) = entries.iter().find(|(k, _)| k.name == "provider") else {
        d.error(
            node.pos,
            format!(
                "`{path}` has no `provider`; write one of: {}",
                provider_names()
            ),
        );
        return None;
    };
    let text = read::string(provider, &format!("{path}.provider"), d)?;
    let Some(kind) = ProviderKind::from_name(text) else {
        let hint = did_you_mean(text, ProviderKind::ALL.map(|k| k.name()));
        d.error(
            provider.pos,
            format!(
                "unknown provider `{text}`{hint}; providers are: {}",
                provider_names()
            ),
        );
        return None;
    };
    let fields = read::mapping(node, &path, account_keys(kind), d)?;
    let required = |key: &str, d: &mut Diagnostics| {
        let found = fields
            .get(key)
            .and_then(|n| read::string(n, &format!("{path}.{key}"), d));
        if fields.get(key).is_none() {
            d.error(fields.pos, format!("`{path}` ({kind}) needs `{key}`"));
        }
        found.map(String::from)
    };
    let secret = |key: &str, d: &mut Diagnostics| {
        fields
            .get(key)
            .and_then(|n| secret_ref(n, &format!("{path}.{key}"), d))
    };
    let url = |key: &str, d: &mut Diagnostics| {
        let node = fields.get(key)?;
        let text = read::string(node, &format!("{path}.{key}"), d)?;
        check_url(text, node.pos, &format!("{path}.{key}"), d)
            .then(|| text.trim_end_matches('/').to_string())
    };
    let settings = match kind {
        ProviderKind::Local => AccountSettings::Local {
            path: base.join(required("path", d)?),
        },
        ProviderKind::Docspace => {
            let base_url = url("base_url", d);
            if fields.get("base_url").is_none() {
                d.error(fields.pos, format!("`{path}` (onlyoffice-docspace) needs `base_url`, the portal's address such as `https://docs.example.com`"));
            }
            let auth = match (
                fields.get("api_key").is_some(),
                fields.get("auth_token").is_some(),
            ) {
                (true, false) => secret("api_key", d).map(DocspaceAuth::ApiKey),
                (false, true) => secret("auth_token", d).map(DocspaceAuth::AuthToken),
                _ => {
                    d.error(fields.pos, format!("`{path}` needs exactly one of `api_key` (sent as a Bearer token) or `auth_token` (sent as is)"));
                    None
                }
            };
            AccountSettings::Docspace {
                base_url: base_url?,
                auth: auth?,
            }
        }
        ProviderKind::Cloudinary => {
            let cloud_name = required("cloud_name", d);
            let (api_key, api_secret) = (secret("api_key", d), secret("api_secret", d));
            if fields.get("api_key").is_none() || fields.get("api_secret").is_none() {
                d.error(
                    fields.pos,
                    format!("`{path}` (cloudinary) needs `api_key` and `api_secret`"),
                );
            }
            AccountSettings::Cloudinary {
                base_url: url("base_url", d).unwrap_or_else(|| "https://api.cloudinary.com".into()),
                cloud_name: cloud_name?,
                api_key: api_key?,
                api_secret: api_secret?,
            }
        }
        ProviderKind::Csbs | ProviderKind::Cbr | ProviderKind::Taurusdb => {
            let region = required("region", d);
            check_region(&path, region.as_deref(), &fields, d);
            let project_id = required("project_id", d);
            if let (Some(id), Some(node)) = (&project_id, fields.get("project_id"))
                && !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                d.error(node.pos, format!("`{path}.project_id: {id}` is not a project id: letters, digits and `-` (the console's My Credentials page lists it per region)"));
            }
            let auth = match fields.get("auth") {
                Some(n) => parse_huawei_auth(n, &format!("{path}.auth"), d),
                None => {
                    d.error(fields.pos, format!("`{path}` ({kind}) needs `auth`: {{access_key, secret_key}}, {{token}} or {{username, password, domain}}"));
                    None
                }
            };
            let duration = |key: &str, default: Duration, d: &mut Diagnostics| {
                let Some(node) = fields.get(key) else {
                    return default;
                };
                if kind == ProviderKind::Taurusdb {
                    d.error(node.pos, format!("`{path}.{key}` is a setting of huaweicloud-csbs and huaweicloud-cbr, whose deletions run on their own (TaurusDB deletes at once); remove it"));
                    return default;
                }
                match read::exact_duration(node, &format!("{path}.{key}"), d) {
                    Some(v) if v.is_zero() => {
                        d.error(node.pos, format!("`{path}.{key}` must be longer than 0"));
                        default
                    }
                    Some(v) => v,
                    None => default,
                }
            };
            AccountSettings::Huawei {
                delete_timeout: duration("delete_timeout", Duration::from_secs(30 * 60), d),
                poll_interval: duration("poll_interval", Duration::from_secs(10), d),
                endpoint: url("endpoint", d),
                iam_endpoint: url("iam_endpoint", d),
                region: region?,
                project_id: project_id?,
                auth: auth?,
            }
        }
        ProviderKind::S3 => parse_s3(&path, &fields, d, required, secret, url)?,
    };
    let http = fields
        .get("http")
        .and_then(|n| parse_http(n, &format!("{path}.http"), d));
    Some(Account {
        name: name.to_string(),
        kind,
        settings,
        http,
        pos: node.pos,
    })
}

/// An `s3` account's settings (the caller reads `http`).
fn parse_s3(
    path: &str,
    fields: &read::Fields,
    d: &mut Diagnostics,
    required: impl Fn(&str, &mut Diagnostics) -> Option<String>,
    secret: impl Fn(&str, &mut Diagnostics) -> Option<SecretRef>,
    url: impl Fn(&str, &mut Diagnostics) -> Option<String>,
) -> Option<AccountSettings> {
    let region = required("region", d);
    check_region(path, region.as_deref(), fields, d);
    let bucket = required("bucket", d);
    if let (Some(name), Some(node)) = (&bucket, fields.get("bucket"))
        && !valid_bucket(name)
    {
        d.error(node.pos, format!("`{path}.bucket: {name}` is not an S3 bucket name: 3 to 63 lowercase letters, digits, `.` and `-`, starting and ending with a letter or digit"));
    }
    let endpoint = url("endpoint", d);
    let path_style = fields
        .get("path_style")
        .and_then(|n| read::boolean(n, &format!("{path}.path_style"), d))
        .unwrap_or(false);
    let versions = match fields.get("versions") {
        None => S3Versions::Marker,
        Some(node) => match read::string(node, &format!("{path}.versions"), d) {
            Some("marker") => S3Versions::Marker,
            Some("delete") => S3Versions::Delete,
            Some(other) => {
                d.error(node.pos, format!("unknown `{path}.versions: {other}`; write `marker` (the default: in a versioned bucket a deletion adds a delete marker and the older versions stay) or `delete` (every version of a deleted backup is deleted by its version id)"));
                S3Versions::Marker
            }
            None => S3Versions::Marker,
        },
    };
    let credentials = match (
        fields.get("access_key_id").is_some(),
        fields.get("secret_access_key").is_some(),
    ) {
        (true, true) => S3Credentials {
            access_key_id: secret("access_key_id", d)?,
            secret_access_key: secret("secret_access_key", d)?,
            session_token: match fields.get("session_token") {
                Some(_) => Some(secret("session_token", d)?),
                None => None,
            },
        },
        (false, false) => {
            if let Some(node) = fields.get("session_token") {
                d.error(node.pos, format!("`{path}.session_token` goes with `access_key_id` and `secret_access_key`; write all three, or none to use AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN from the environment"));
            }
            S3Credentials {
                access_key_id: SecretRef::Env("AWS_ACCESS_KEY_ID".into()),
                secret_access_key: SecretRef::Env("AWS_SECRET_ACCESS_KEY".into()),
                session_token: std::env::var_os("AWS_SESSION_TOKEN")
                    .map(|_| SecretRef::Env("AWS_SESSION_TOKEN".into())),
            }
        }
        _ => {
            d.error(fields.pos, format!("`{path}` needs both `access_key_id` and `secret_access_key` (or neither, to use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment)"));
            return None;
        }
    };
    let object_lock = fields
        .get("object_lock")
        .and_then(|n| read::boolean(n, &format!("{path}.object_lock"), d))
        .unwrap_or(false);
    if object_lock
        && versions != S3Versions::Delete
        && let Some(node) = fields.get("object_lock")
    {
        d.error(node.pos, format!("`{path}.object_lock: true` needs `versions: delete`: with delete markers (the default) a deletion never touches a locked version, so there is no lock to look up"));
    }
    Some(AccountSettings::S3 {
        endpoint,
        region: region?,
        bucket: bucket?,
        path_style,
        credentials,
        versions,
        object_lock,
    })
}

/// S3's bucket naming rules (the DNS-compatible ones every implementation accepts).
fn valid_bucket(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
}

pub const HTTP_KEYS: &[&str] = &[
    "timeout",
    "connect_timeout",
    "concurrency",
    "retries",
    "backoff",
    "max_wait",
];

/// An account's `http:` block as written: the fields it sets; the others keep the HTTP
/// client's defaults (README, "Daemon config").
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HttpOverrides {
    pub connect_timeout: Option<Duration>,
    pub timeout: Option<Duration>,
    pub concurrency: Option<usize>,
    pub retries: Option<u32>,
    pub backoff: Option<Duration>,
    pub max_wait: Option<Duration>,
}

fn parse_http(node: &Node, path: &str, d: &mut Diagnostics) -> Option<HttpOverrides> {
    let fields = read::mapping(node, path, HTTP_KEYS, d)?;
    let mut settings = HttpOverrides::default();
    let key = |k: &str| format!("{path}.{k}");
    let duration = |k: &str, d: &mut Diagnostics| {
        let node = fields.get(k)?;
        let value = read::exact_duration(node, &key(k), d)?;
        if value.is_zero() {
            d.error(node.pos, format!("`{}` must be longer than 0", key(k)));
            return None;
        }
        Some(value)
    };
    if let Some(v) = duration("timeout", d) {
        settings.timeout = Some(v);
    }
    if let Some(v) = duration("connect_timeout", d) {
        settings.connect_timeout = Some(v);
    }
    if let Some(v) = duration("backoff", d) {
        settings.backoff = Some(v);
    }
    if let Some(v) = duration("max_wait", d) {
        settings.max_wait = Some(v);
    }
    if let Some(n) = fields.get("concurrency")
        && let Some(v) = read::integer(n, &key("concurrency"), 1, d)
    {
        settings.concurrency = Some(v.min(64) as usize);
    }
    if let Some(n) = fields.get("retries")
        && let Some(v) = read::integer(n, &key("retries"), 0, d)
    {
        settings.retries = Some(v.min(20) as u32);
    }
    Some(settings)
}

fn parse_huawei_auth(node: &Node, path: &str, d: &mut Diagnostics) -> Option<HuaweiAuth> {
    let keys = [
        "access_key",
        "secret_key",
        "security_token",
        "token",
        "username",
        "password",
        "domain",
    ];
    let fields = read::mapping(node, path, &keys, d)?;
    let secret = |key: &str, d: &mut Diagnostics| {
        fields
            .get(key)
            .and_then(|n| secret_ref(n, &format!("{path}.{key}"), d))
    };
    let plain = |key: &str, d: &mut Diagnostics| {
        fields
            .get(key)
            .and_then(|n| read::string(n, &format!("{path}.{key}"), d))
            .map(String::from)
    };
    let written: Vec<&str> = fields.keys().map(|k| k.name.as_str()).collect();
    let has = |k: &str| written.contains(&k);
    if has("access_key") || has("secret_key") {
        if has("token") || has("username") {
            d.error(node.pos, format!("`{path}` mixes forms; write one of {{access_key, secret_key}}, {{token}} or {{username, password, domain}}"));
            return None;
        }
        let (ak, sk) = (secret("access_key", d), secret("secret_key", d));
        if !has("access_key") || !has("secret_key") {
            d.error(
                node.pos,
                format!("`{path}` needs both `access_key` and `secret_key`"),
            );
        }
        return Some(HuaweiAuth::AkSk {
            access_key: ak?,
            secret_key: sk?,
            security_token: secret("security_token", d),
        });
    }
    if has("token") {
        return secret("token", d).map(HuaweiAuth::Token);
    }
    if has("username") {
        let (user, password, domain) = (
            plain("username", d),
            secret("password", d),
            plain("domain", d),
        );
        if password.is_none() || domain.is_none() {
            d.error(
                node.pos,
                format!("`{path}` with `username` needs `password` and `domain`"),
            );
        }
        return Some(HuaweiAuth::Password {
            username: user?,
            password: password?,
            domain: domain?,
        });
    }
    d.error(node.pos, format!("`{path}` must be {{access_key, secret_key}}, {{token}} or {{username, password, domain}}"));
    None
}

fn secret_ref(node: &Node, path: &str, d: &mut Diagnostics) -> Option<SecretRef> {
    let text = read::string(node, path, d)?;
    let parsed = SecretRef::parse(text);
    if parsed.is_none() {
        // Never echo the value: it may be the secret itself.
        d.error(node.pos, format!("`{path}` must be a secret reference: `${{env:NAME}}`, `${{file:/path}}` or `${{credential:NAME}}` (systemd LoadCredential=); never write the secret itself in the config"));
    }
    parsed
}

/// Whether a URL's host is this machine: `localhost`, 127.0.0.0/8 or ::1.
pub fn loopback<S: AsRef<str>>(host: Option<&url::Host<S>>) -> bool {
    match host {
        Some(url::Host::Domain(name)) => name.as_ref().eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// https anywhere; plain http only to loopback hosts (tests, local proxies). Parsed with a URL
/// parser, as the HTTP client will read it: no `user:password@` (it hides the real host after
/// the `@`), no `?` or `#` (the request paths are appended to the base).
pub(super) fn check_url(text: &str, pos: Pos, path: &str, d: &mut Diagnostics) -> bool {
    let problem = match url::Url::parse(text) {
        Err(e) => Some(format!("is not a URL ({e})")),
        Ok(u) if !u.username().is_empty() || u.password().is_some() => Some(
            "has a `user:password@` part: the host is what follows the `@`; write the account's credentials in their own keys and the URL without them".to_string(),
        ),
        Ok(u) if u.query().is_some() || u.fragment().is_some() => {
            Some("has a `?` or `#` part: write the base address only".to_string())
        }
        Ok(u) => {
            let ok = u.host().is_some()
                && (u.scheme() == "https" || (u.scheme() == "http" && loopback(u.host().as_ref())));
            (!ok).then(|| {
                "must be an https:// URL (plain http:// only for loopback hosts such as 127.0.0.1)"
                    .to_string()
            })
        }
    };
    if let Some(problem) = &problem {
        d.error(pos, format!("`{path}: {text}` {problem}"));
    }
    problem.is_none()
}

/// A region as providers spell it (`ap-southeast-1`, `us-east-1`, `auto`): it becomes part of
/// a host name, so nothing else may pass (`x.evil.com#` would send the requests elsewhere).
fn valid_region(region: &str) -> bool {
    (1..=64).contains(&region.len())
        && region.starts_with(|c: char| c.is_ascii_lowercase())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks the `region` key of an account, if it is there and not a region.
fn check_region(path: &str, region: Option<&str>, fields: &read::Fields, d: &mut Diagnostics) {
    if let (Some(region), Some(node)) = (region, fields.get("region"))
        && !valid_region(region)
    {
        d.error(node.pos, format!("`{path}.region: {region}` is not a region name: lowercase letters, digits and `-`, such as `ap-southeast-1` (it becomes part of the endpoint's host name)"));
    }
}

fn provider_names() -> String {
    ProviderKind::ALL.map(|k| k.name()).join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_command_finds_the_same_journal_for_a_config() {
        use super::default_state_dir;
        use std::path::{Path, PathBuf};
        let etc = Path::new("/etc/retentiond/retentiond.yaml");
        // Root's shell has no $STATE_DIRECTORY, the unit has one: both reach /var/lib.
        assert_eq!(
            default_state_dir(etc, None),
            PathBuf::from("/var/lib/retentiond")
        );
        assert_eq!(
            default_state_dir(etc, Some("/var/lib/retentiond")),
            PathBuf::from("/var/lib/retentiond")
        );
        let other = Path::new("/srv/ops/retentiond.yaml");
        assert_eq!(
            default_state_dir(other, None),
            PathBuf::from("/srv/ops/state")
        );
        assert_eq!(
            default_state_dir(other, Some("/var/lib/a:/var/lib/b")),
            PathBuf::from("/var/lib/a")
        );
        assert_eq!(
            default_state_dir(Path::new("retentiond.yaml"), None),
            PathBuf::from("state")
        );
    }

    use super::*;

    #[test]
    fn secret_refs_parse_and_resolve_without_leaking() {
        assert_eq!(
            SecretRef::parse("${env:X}"),
            Some(SecretRef::Env("X".into()))
        );
        assert_eq!(
            SecretRef::parse("${credential:hw-sk}"),
            Some(SecretRef::Credential("hw-sk".into()))
        );
        assert_eq!(SecretRef::parse("hunter2"), None);
        assert_eq!(SecretRef::parse("${credential:../x}"), None);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s");
        std::fs::write(&file, "s3cr3t\n").unwrap();
        let secret = SecretRef::File(file).resolve().unwrap();
        assert_eq!(secret.expose(), "s3cr3t");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        let err = SecretRef::Env("RETENTIOND_TEST_UNSET_VARIABLE".into())
            .resolve()
            .unwrap_err();
        assert_eq!(
            err,
            "secret ${env:RETENTIOND_TEST_UNSET_VARIABLE}: environment variable RETENTIOND_TEST_UNSET_VARIABLE is not set"
        );
    }

    #[test]
    fn urls_need_https_except_loopback() {
        let mut d = Diagnostics::new(Path::new("c.yaml"), "");
        for ok in [
            "https://docs.example.com",
            "http://127.0.0.1:8080",
            "http://localhost/x",
            "http://[::1]:9",
        ] {
            assert!(check_url(ok, Pos::default(), "u", &mut d), "{ok}");
        }
        for bad in [
            "http://docs.example.com",
            "ftp://127.0.0.1",
            "docs.example.com",
            "http://10.0.0.1",
            // The host is what follows the `@`, whatever comes before it.
            "http://localhost:1@192.0.2.2",
            "http://[::1]@192.0.2.2",
            "http://127.0.0.1:x@192.0.2.2/",
            "https://user:pw@docs.example.com",
            "https://docs.example.com/#",
            "https://docs.example.com/?a=b",
        ] {
            assert!(!check_url(bad, Pos::default(), "u", &mut d), "{bad}");
        }
    }

    #[test]
    fn regions_are_names_not_hosts() {
        for ok in ["ap-southeast-1", "us-east-1", "auto", "eu-west-101"] {
            assert!(valid_region(ok), "{ok}");
        }
        for bad in ["x.evil.com#", "", "ap-southeast-1/", "Ap-1", "-x", "a b"] {
            assert!(!valid_region(bad), "{bad}");
        }
    }
}

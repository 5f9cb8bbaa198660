//! The config's `notify:` section: named sinks (a signed webhook, Slack and Mattermost
//! incoming webhooks, email over SMTP) and routes (which policies' which events go to which
//! sinks). Secrets are references, resolved when a message is sent.

use super::config::SecretRef;
use super::diag::{Diagnostics, did_you_mean};
use super::read;
use super::yaml::{Node, Value};
use std::collections::BTreeMap;

/// What a notification is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    /// A guard blocked the policy (other than the bound for unapproved versions).
    Blocked,
    /// A new or changed version of the policy waits for a person's approval.
    Approval,
    /// A run failed: its listing, its deletions, or the journal.
    Failed,
    /// Backups stopped arriving: a group's newest complete backup is older than
    /// `guard.stale_after`.
    Stale,
    /// A hold lapsed by itself.
    HoldExpired,
    /// What a run deleted (only when a route asks for it).
    Deleted,
}

pub const EVENTS: [(&str, Event); 6] = [
    ("blocked", Event::Blocked),
    ("approval", Event::Approval),
    ("failed", Event::Failed),
    ("stale", Event::Stale),
    ("hold-expired", Event::HoldExpired),
    ("deleted", Event::Deleted),
];

impl Event {
    pub fn as_str(self) -> &'static str {
        EVENTS
            .iter()
            .find(|(_, e)| *e == self)
            .map_or("?", |(name, _)| name)
    }
}

/// How an SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587); refused when the server offers none.
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS: only to a loopback host (a local relay).
    None,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Sink {
    /// A JSON body; with `secret`, an `X-Retentiond-Signature: sha256=HEX` header (HMAC-SHA256
    /// of the body).
    Webhook {
        url: String,
        secret: Option<SecretRef>,
    },
    /// A Slack incoming webhook (its URL is the secret).
    Slack { url: SecretRef },
    /// A Mattermost incoming webhook (its URL is the secret).
    Mattermost { url: SecretRef },
    Email {
        host: String,
        port: u16,
        tls: SmtpTls,
        username: Option<SecretRef>,
        password: Option<SecretRef>,
        from: String,
        to: Vec<String>,
    },
}

impl Sink {
    pub fn kind(&self) -> &'static str {
        match self {
            Sink::Webhook { .. } => "webhook",
            Sink::Slack { .. } => "slack",
            Sink::Mattermost { .. } => "mattermost",
            Sink::Email { .. } => "email",
        }
    }

    pub fn secret_refs(&self) -> Vec<&SecretRef> {
        match self {
            Sink::Webhook { secret, .. } => secret.iter().collect(),
            Sink::Slack { url } | Sink::Mattermost { url } => vec![url],
            Sink::Email {
                username, password, ..
            } => username.iter().chain(password).collect(),
        }
    }
}

/// Which policies' which events go to which sinks.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub sinks: Vec<String>,
    /// Empty: every policy.
    pub policies: Vec<String>,
    /// Empty: every event but `deleted`.
    pub events: Vec<Event>,
}

impl Route {
    pub fn wants(&self, policy: &str, event: Event) -> bool {
        (self.policies.is_empty() || self.policies.iter().any(|p| p == policy))
            && match self.events.is_empty() {
                true => event != Event::Deleted,
                false => self.events.contains(&event),
            }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Notify {
    pub sinks: BTreeMap<String, Sink>,
    pub routes: Vec<Route>,
}

impl Notify {
    /// The sinks that `policy`'s `event` goes to, each once.
    pub fn sinks_for(&self, policy: &str, event: Event) -> Vec<(&str, &Sink)> {
        let mut names: Vec<&str> = self
            .routes
            .iter()
            .filter(|r| r.wants(policy, event))
            .flat_map(|r| r.sinks.iter().map(String::as_str))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .filter_map(|n| self.sinks.get(n).map(|s| (n, s)))
            .collect()
    }
}

fn secret(node: &Node, path: &str, d: &mut Diagnostics) -> Option<SecretRef> {
    let text = read::string(node, path, d)?;
    let parsed = SecretRef::parse(text);
    if parsed.is_none() {
        d.error(node.pos, format!("`{path}` must be a secret reference: `${{env:NAME}}`, `${{file:/path}}` or `${{credential:NAME}}`; an incoming webhook's URL is its password, so it is never written in the config"));
    }
    parsed
}

fn loopback(host: &str) -> bool {
    super::config::loopback(url::Host::parse(host).ok().as_ref())
}

fn parse_sink(name: &str, node: &Node, d: &mut Diagnostics) -> Option<Sink> {
    let path = format!("notify.sinks.{name}");
    let Value::Map(entries) = &node.value else {
        d.error(node.pos, format!("`{path}` must be a mapping with `type`"));
        return None;
    };
    let kind = entries
        .iter()
        .find(|(k, _)| k.name == "type")
        .and_then(|(_, v)| read::string(v, &format!("{path}.type"), d));
    let known: &[&str] = match kind {
        Some("webhook") => &["type", "url", "secret"],
        Some("slack" | "mattermost") => &["type", "url"],
        Some("email") => &[
            "type", "host", "port", "tls", "username", "password", "from", "to",
        ],
        Some(other) => {
            let hint = did_you_mean(other, ["webhook", "slack", "mattermost", "email"]);
            d.error(
                node.pos,
                format!("`{path}.type: {other}` is not a sink{hint}; write webhook, slack, mattermost or email"),
            );
            return None;
        }
        None => {
            d.error(
                node.pos,
                format!("`{path}` needs `type`: webhook, slack, mattermost or email"),
            );
            return None;
        }
    };
    let fields = read::mapping(node, &path, known, d)?;
    let required = |key: &str, d: &mut Diagnostics| -> Option<&Node> {
        let found = fields.get(key);
        if found.is_none() {
            d.error(fields.pos, format!("`{path}` needs `{key}`"));
        }
        found
    };
    match kind? {
        "webhook" => {
            let url = required("url", d).and_then(|n| {
                let text = read::string(n, &format!("{path}.url"), d)?;
                super::config::check_url(text, n.pos, &format!("{path}.url"), d)
                    .then(|| text.to_string())
            });
            let secret = fields
                .get("secret")
                .and_then(|n| secret(n, &format!("{path}.secret"), d));
            Some(Sink::Webhook { url: url?, secret })
        }
        "slack" => Some(Sink::Slack {
            url: secret(required("url", d)?, &format!("{path}.url"), d)?,
        }),
        "mattermost" => Some(Sink::Mattermost {
            url: secret(required("url", d)?, &format!("{path}.url"), d)?,
        }),
        _ => {
            let host = required("host", d)
                .and_then(|n| read::string(n, &format!("{path}.host"), d))
                .map(str::to_string);
            let tls = match fields.get("tls") {
                None => SmtpTls::Starttls,
                Some(n) => match read::string(n, &format!("{path}.tls"), d) {
                    Some("starttls") => SmtpTls::Starttls,
                    Some("implicit") => SmtpTls::Implicit,
                    Some("none") => SmtpTls::None,
                    Some(other) => {
                        d.error(n.pos, format!("`{path}.tls: {other}` is not a choice; write starttls (the default, port 587), implicit (TLS from the start, port 465) or none (a loopback relay only)"));
                        SmtpTls::Starttls
                    }
                    None => SmtpTls::Starttls,
                },
            };
            if let (Some(host), Some(n)) = (&host, fields.get("tls"))
                && tls == SmtpTls::None
                && !loopback(host)
            {
                d.error(n.pos, format!("`{path}.tls: none` sends the mail and the password in clear: only to a loopback host (a local relay), not {host}; write starttls or implicit"));
            }
            let port = match fields.get("port") {
                Some(n) => read::integer(n, &format!("{path}.port"), 1, d)
                    .and_then(|p| u16::try_from(p).ok()),
                None => Some(match tls {
                    SmtpTls::Implicit => 465,
                    SmtpTls::Starttls => 587,
                    SmtpTls::None => 25,
                }),
            };
            let username = fields
                .get("username")
                .and_then(|n| secret(n, &format!("{path}.username"), d));
            let password = fields
                .get("password")
                .and_then(|n| secret(n, &format!("{path}.password"), d));
            if username.is_some() != password.is_some() {
                d.error(
                    fields.pos,
                    format!("`{path}` needs both `username` and `password`, or neither"),
                );
            }
            let address = |n: &Node, key: &str, d: &mut Diagnostics| -> Option<String> {
                let text = read::string(n, &format!("{path}.{key}"), d)?;
                match text.contains('@') && !text.contains(['\r', '\n']) {
                    true => Some(text.to_string()),
                    false => {
                        d.error(
                            n.pos,
                            format!("`{path}.{key}: {text}` is not an email address"),
                        );
                        None
                    }
                }
            };
            let from = required("from", d).and_then(|n| address(n, "from", d));
            let to = required("to", d).and_then(|n| match &n.value {
                Value::Seq(items) if !items.is_empty() => {
                    items.iter().map(|i| address(i, "to", d)).collect()
                }
                Value::Str(_) => address(n, "to", d).map(|a| vec![a]),
                _ => {
                    d.error(
                        n.pos,
                        format!("`{path}.to` must be an address or a list of them"),
                    );
                    None
                }
            });
            Some(Sink::Email {
                host: host?,
                port: port?,
                tls,
                username,
                password,
                from: from?,
                to: to?,
            })
        }
    }
}

/// Parses `notify:`; `policies` are the config's policy names when known (routes naming
/// another policy are checked later, against the loaded policies).
pub fn parse_notify(node: &Node, d: &mut Diagnostics) -> Option<Notify> {
    let fields = read::mapping(node, "notify", &["sinks", "routes"], d)?;
    let mut notify = Notify::default();
    if let Some(sinks) = fields.get("sinks") {
        let Value::Map(entries) = &sinks.value else {
            d.error(sinks.pos, "`notify.sinks` must be a mapping of sink names");
            return None;
        };
        for (key, node) in entries {
            if let Some(sink) = parse_sink(&key.name, node, d) {
                notify.sinks.insert(key.name.clone(), sink);
            }
        }
    }
    let Some(routes) = fields.get("routes") else {
        if !notify.sinks.is_empty() {
            d.error(fields.pos, "`notify` has sinks but no `routes`: nothing would be sent; add `routes: [{sinks: [NAME]}]` (every policy, every event but `deleted`)");
        }
        return Some(notify);
    };
    let Value::Seq(items) = &routes.value else {
        d.error(routes.pos, "`notify.routes` must be a list");
        return None;
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("notify.routes[{i}]");
        let Some(route) = read::mapping(item, &path, &["sinks", "policies", "events"], d) else {
            continue;
        };
        let list = |key: &str, d: &mut Diagnostics| {
            route
                .get(key)
                .and_then(|n| read::strings(n, &format!("{path}.{key}"), d))
                .unwrap_or_default()
        };
        let sinks = list("sinks", d);
        if sinks.is_empty() {
            d.error(
                route.pos,
                format!("`{path}` needs `sinks`: the names of sinks under `notify.sinks`"),
            );
        }
        for (name, pos) in &sinks {
            if !notify.sinks.contains_key(name) {
                let hint = did_you_mean(name, notify.sinks.keys().map(String::as_str));
                d.error(
                    *pos,
                    format!("`{path}.sinks`: no sink named `{name}` under `notify.sinks`{hint}"),
                );
            }
        }
        let mut events = Vec::new();
        for (name, pos) in list("events", d) {
            match EVENTS.iter().find(|(n, _)| *n == name) {
                Some((_, e)) => events.push(*e),
                None => {
                    let hint = did_you_mean(&name, EVENTS.iter().map(|(n, _)| *n));
                    let all: Vec<&str> = EVENTS.iter().map(|(n, _)| *n).collect();
                    d.error(
                        pos,
                        format!(
                            "`{path}.events`: no event `{name}`{hint} (events: {})",
                            all.join(", ")
                        ),
                    );
                }
            }
        }
        notify.routes.push(Route {
            sinks: sinks.into_iter().map(|(s, _)| s).collect(),
            policies: list("policies", d).into_iter().map(|(p, _)| p).collect(),
            events,
        });
    }
    Some(notify)
}

//! Notifications: what a run of a policy means for the people behind it (blocked, awaiting
//! approval, failed, backups stopped arriving, a hold expired, what was deleted), sent to the
//! sinks of the config's `notify:` routes — a signed webhook, Slack, Mattermost, email.
//!
//! One message per policy and condition until the condition changes, and a "resolved" message
//! when it clears: the journal keeps what was last said (`Journal::notified`), so a daemon
//! that restarts, or another host of a fleet, does not say it again. Only the host that ran
//! the policy decides. Delivery is retried with backoff; a failure is logged and counted,
//! never fatal. No message carries a secret: messages are made of the plan's and the journal's
//! own words, and secrets are resolved only to send.

use crate::policy::config::SecretRef;
use crate::policy::notify::{Event, Notify, Sink, SmtpTls};
use crate::render::PolicyReport;
use jiff::Timestamp;
use serde::Serialize;
use std::time::Duration;

/// A message about one policy.
#[derive(Clone, Debug, Serialize)]
pub struct Message {
    pub source: &'static str,
    pub event: &'static str,
    /// `firing`, `resolved`, or `info` (what a run deleted, a sample from `notify test`).
    pub state: &'static str,
    pub policy: String,
    pub title: String,
    pub text: String,
    pub host: Option<String>,
    pub at: Timestamp,
}

impl Message {
    pub fn new(
        policy: &str,
        event: Event,
        state: &'static str,
        title: String,
        text: String,
    ) -> Message {
        Message {
            source: "retentiond",
            event: event.as_str(),
            state,
            policy: policy.to_string(),
            title,
            text,
            host: crate::journal::host_name(),
            at: Timestamp::now(),
        }
    }
}

/// One condition of a policy as a run left it: the event, a key that changes when the
/// condition does (a different guard, another version waiting), and the message.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub event: Event,
    pub key: String,
    pub title: String,
    pub text: String,
}

/// The guards a block names, as a key: the same guards again are the same condition, whatever
/// the counts.
fn guards_of(blocked: &str) -> String {
    let known = [
        ("guard.max_delete_fraction", "max_delete_fraction"),
        ("more than guard.max_delete ", "max_delete"),
        ("guard.max_listing_drop", "listing_drop"),
        ("undo each other", "overlap"),
        ("repeated backup", "repeated"),
        ("Object Lock", "object_lock"),
    ];
    let found: Vec<&str> = known
        .iter()
        .filter(|(words, _)| blocked.contains(words))
        .map(|(_, key)| *key)
        .collect();
    match found.is_empty() {
        true => "other".to_string(),
        false => found.join(","),
    }
}

/// The conditions a run's report shows: blocked, awaiting approval, failed, stale.
pub fn conditions(report: &PolicyReport, fingerprint: &str) -> Vec<Condition> {
    let name = &report.name;
    let mut out = Vec::new();
    let failed = |outcome: &str| {
        matches!(
            outcome,
            "listing-failed" | "deletions-failed" | "journal-failed"
        )
    };
    let outcome = report.outcome.unwrap_or("journal-failed");
    if failed(outcome) {
        let why = report
            .error
            .clone()
            .or_else(|| report.journal_error.clone())
            .or_else(|| {
                report.execution.as_ref().and_then(|e| {
                    e.halted
                        .clone()
                        .or_else(|| e.failed.first().map(|f| format!("{}: {}", f.id, f.error)))
                })
            })
            .unwrap_or_default();
        out.push(Condition {
            event: Event::Failed,
            key: outcome.to_string(),
            title: format!("policy {name}: run {outcome}"),
            text: format!("The last run of policy {name} ended {outcome}: {why}. See `retentiond history --policy {name}`."),
        });
    }
    let Some(plan) = &report.plan else {
        return out;
    };
    if let Some(blocked) = &plan.blocked {
        let unapproved = blocked.contains("no person has approved this version");
        let (approval, others): (Vec<&str>, Vec<&str>) = blocked
            .split("; ")
            .partition(|part| part.contains("no person has approved this version"));
        if unapproved {
            let short = &fingerprint[..fingerprint.len().min(12)];
            out.push(Condition {
                event: Event::Approval,
                key: fingerprint.to_string(),
                title: format!("policy {name}: version {short} awaits approval"),
                text: format!(
                    "{} To approve it once reviewed: `retentiond approve {name}`.",
                    approval.join("; ")
                ),
            });
        }
        let others: Vec<&str> = others
            .into_iter()
            .filter(|p| !p.starts_with("to let one run through"))
            .collect();
        if !others.is_empty() {
            let lift = blocked
                .split("; ")
                .find(|p| p.starts_with("to let one run through"))
                .map(|p| format!(" {p}."))
                .unwrap_or_default();
            out.push(Condition {
                event: Event::Blocked,
                key: guards_of(&others.join("; ")),
                title: format!("policy {name}: blocked by a guard, nothing is deleted"),
                text: format!("{}.{lift}", others.join("; ")),
            });
        }
    }
    let stale: Vec<&String> = plan
        .warnings
        .iter()
        .filter(|w| w.contains("guard.stale_after"))
        .collect();
    if !stale.is_empty() {
        out.push(Condition {
            event: Event::Stale,
            key: "stale".to_string(),
            title: format!("policy {name}: backups stopped arriving"),
            text: stale
                .iter()
                .map(|w| w.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    out
}

/// What a run deleted, for routes that ask for `deleted`.
pub fn deleted_summary(report: &PolicyReport) -> Option<Message> {
    let plan = report.plan.as_ref();
    let deleted: Vec<&str> = report
        .execution
        .iter()
        .flat_map(|e| e.deleted.iter(plan))
        .collect();
    if deleted.is_empty() {
        return None;
    }
    let shown: Vec<&str> = deleted.iter().take(20).copied().collect();
    let more = match deleted.len() {
        n if n > 20 => format!(" and {} more", n - 20),
        _ => String::new(),
    };
    Some(Message::new(
        &report.name,
        Event::Deleted,
        "info",
        format!("policy {}: deleted {} backups", report.name, deleted.len()),
        format!("{}{more}", shown.join(", ")),
    ))
}

/// How a sink's delivery went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    Failed(String),
}

/// Attempts per message, and the first wait between two (doubled each time).
const ATTEMPTS: u32 = 4;
const BACKOFF: Duration = Duration::from_millis(500);
const TIMEOUT: Duration = Duration::from_secs(20);

fn resolve(secret: &SecretRef) -> Result<String, String> {
    secret.resolve().map(|s| s.expose().to_string())
}

/// The webhook's JSON body, and its `sha256=HEX` signature with `secret`.
pub fn signed_body(message: &Message, secret: Option<&str>) -> (Vec<u8>, Option<String>) {
    let body = serde_json::to_vec(message).unwrap_or_default();
    let signature = secret.map(|secret| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let tag = ring::hmac::sign(&key, &body);
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256={hex}")
    });
    (body, signature)
}

/// Slack's incoming-webhook body (mrkdwn), and Mattermost's (Markdown).
fn chat_body(message: &Message, slack: bool) -> Vec<u8> {
    let mark = match message.state {
        "resolved" => "RESOLVED",
        "firing" => "ALERT",
        _ => "INFO",
    };
    let host = message
        .host
        .as_deref()
        .map(|h| format!(" (host {h})"))
        .unwrap_or_default();
    let body = match slack {
        true => serde_json::json!({
            "text": format!("[{mark}] {}", message.title),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn",
                "text": format!("*[{mark}] {}*\n{}{host}", message.title, message.text)}}],
        }),
        false => serde_json::json!({
            "username": "retentiond",
            "text": format!("#### [{mark}] {}\n{}{host}", message.title, message.text),
        }),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

fn https_or_loopback(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("the URL is not one ({e})"))?;
    let loopback = crate::policy::config::loopback(parsed.host().as_ref());
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        _ => Err("the URL must be https:// (plain http:// only to a loopback host)".into()),
    }
}

async fn post(url: &str, body: Vec<u8>, headers: &[(&str, String)]) -> Result<(), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = https_or_loopback(url)?;
    let client = reqwest::Client::builder()
        .user_agent(concat!("retentiond/", env!("CARGO_PKG_VERSION")))
        .timeout(TIMEOUT)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    // The URL is left out of errors: a Slack or Mattermost URL is the secret.
    let response = request.send().await.map_err(|e| {
        let kind = match (e.is_timeout(), e.is_connect()) {
            (true, _) => "timed out",
            (_, true) => "could not connect",
            _ => "request failed",
        };
        kind.to_string()
    })?;
    match response.status() {
        s if s.is_success() => Ok(()),
        s => Err(format!("the receiver answered {s}")),
    }
}

async fn email(sink: &Sink, message: &Message) -> Result<(), String> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let Sink::Email {
        host,
        port,
        tls,
        username,
        password,
        from,
        to,
    } = sink
    else {
        return Err("not an email sink".into());
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = lettre::Message::builder()
        .from(from.parse().map_err(|e| format!("from {from}: {e}"))?)
        .subject(format!("[retentiond] {}", message.title))
        .header(ContentType::TEXT_PLAIN);
    for address in to {
        builder = builder.to(address.parse().map_err(|e| format!("to {address}: {e}"))?);
    }
    let host_line = message
        .host
        .as_deref()
        .map(|h| format!("\nHost: {h}"))
        .unwrap_or_default();
    let body = format!(
        "{}\n\nPolicy: {}\nEvent: {} ({}){host_line}\nAt: {}\n",
        message.text, message.policy, message.event, message.state, message.at
    );
    let mail = builder
        .body(body)
        .map_err(|e| format!("cannot make the mail: {e}"))?;
    let parameters =
        || TlsParameters::new(host.clone()).map_err(|e| format!("TLS for {host}: {e}"));
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
        .port(*port)
        .timeout(Some(TIMEOUT));
    transport = match tls {
        SmtpTls::Starttls => transport.tls(Tls::Required(parameters()?)),
        SmtpTls::Implicit => transport.tls(Tls::Wrapper(parameters()?)),
        SmtpTls::None => transport.tls(Tls::None),
    };
    if let (Some(user), Some(pass)) = (username, password) {
        transport = transport.credentials(Credentials::new(resolve(user)?, resolve(pass)?));
    }
    if let Some(name) = crate::journal::host_name() {
        transport =
            transport.hello_name(lettre::transport::smtp::extension::ClientId::Domain(name));
    }
    // lettre's errors name the server's answer; they never carry the password.
    transport
        .build()
        .send(mail)
        .await
        .map(drop)
        .map_err(|e| format!("SMTP {host}:{port}: {e}"))
}

/// One attempt to deliver `message` to `sink`.
async fn deliver_once(sink: &Sink, message: &Message) -> Result<(), String> {
    match sink {
        Sink::Webhook { url, secret } => {
            let secret = secret.as_ref().map(resolve).transpose()?;
            let (body, signature) = signed_body(message, secret.as_deref());
            let mut headers = vec![("x-retentiond-event", message.event.to_string())];
            if let Some(signature) = signature {
                headers.push(("x-retentiond-signature", signature));
            }
            post(url, body, &headers).await
        }
        Sink::Slack { url } => post(&resolve(url)?, chat_body(message, true), &[]).await,
        Sink::Mattermost { url } => post(&resolve(url)?, chat_body(message, false), &[]).await,
        Sink::Email { .. } => email(sink, message).await,
    }
}

/// Delivers `message` to `sink`, retrying with backoff (0.5 s, 1 s, 2 s).
pub async fn deliver(sink: &Sink, message: &Message) -> Delivery {
    let mut wait = BACKOFF;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match deliver_once(sink, message).await {
            Ok(()) => return Delivery::Sent,
            Err(e) => last = e,
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    Delivery::Failed(format!("{last} (after {ATTEMPTS} attempts)"))
}

/// Sends `message` to every sink the routes give its policy and event; returns each sink's
/// name and delivery.
pub async fn send(
    notify: &Notify,
    message: &Message,
    event: Event,
) -> Vec<(String, &'static str, Delivery)> {
    let mut out = Vec::new();
    for (name, sink) in notify.sinks_for(&message.policy, event) {
        let delivery = deliver(sink, message).await;
        out.push((name.to_string(), sink.kind(), delivery));
    }
    out
}

/// What `after_run` sent: each sink's name, kind and delivery, for the log and the metrics.
pub type Sent = Vec<(String, &'static str, Delivery)>;

/// After a run of `policy` on this host: tells what changed since the journal's last word on
/// it (a new condition, a changed one, one that cleared), each lapsed hold once, and (when a
/// route asks) what the run deleted. A run without a plan (its listing failed) leaves the
/// plan's conditions as they were: it cannot tell whether they cleared.
pub async fn after_run(
    notify: &Notify,
    journal: &crate::journal::Journal,
    policy: &crate::policy::Policy,
    report: &PolicyReport<'_>,
) -> Result<Sent, crate::journal::JournalError> {
    let mut sent = Sent::new();
    if notify.routes.is_empty() {
        return Ok(sent);
    }
    let name = &policy.name;
    let told = journal.notices(name)?;
    let now = conditions(report, &policy.fingerprint);
    let tracked = [Event::Blocked, Event::Approval, Event::Failed, Event::Stale];
    for event in tracked {
        let before = told.iter().find(|n| n.event == event.as_str());
        let current = now.iter().find(|c| c.event == event);
        match (before, current) {
            (Some(b), Some(c)) if b.key == c.key => {}
            (_, Some(c)) => {
                let message = Message::new(name, event, "firing", c.title.clone(), c.text.clone());
                sent.extend(send(notify, &message, event).await);
                journal.noticed(name, event.as_str(), &c.key, &c.title, false)?;
            }
            (Some(b), None) => {
                // Without a plan only a failure can be seen to clear.
                if report.plan.is_none() && event != Event::Failed {
                    continue;
                }
                let message = Message::new(
                    name,
                    event,
                    "resolved",
                    format!("resolved: {}", b.title),
                    format!(
                        "No longer the case since the run of policy {name} at {}.",
                        report_time(report)
                    ),
                );
                sent.extend(send(notify, &message, event).await);
                journal.resolved(name, event.as_str())?;
            }
            (None, None) => {}
        }
    }
    let lapsed: Vec<crate::journal::holds::Hold> = journal
        .holds_on(name, &policy.account)?
        .into_iter()
        .filter(|h| h.lapsed(Timestamp::now()))
        .collect();
    for h in lapsed {
        let key = h.id.to_string();
        if told
            .iter()
            .any(|n| n.event == Event::HoldExpired.as_str() && n.key == key)
        {
            continue;
        }
        let title = format!(
            "policy {name}: hold #{} on backup {} expired",
            h.id, h.backup_id
        );
        let message = Message::new(
            name,
            Event::HoldExpired,
            "info",
            title.clone(),
            format!(
                "Hold #{} ({}, by {}) lapsed at {}: the policy's rules decide about backup {} again.",
                h.id,
                h.reason,
                h.by,
                h.until.map(|u| u.to_string()).unwrap_or_default(),
                h.backup_id
            ),
        );
        sent.extend(send(notify, &message, Event::HoldExpired).await);
        journal.noticed(name, Event::HoldExpired.as_str(), &key, &title, true)?;
    }
    if let Some(message) = deleted_summary(report) {
        sent.extend(send(notify, &message, Event::Deleted).await);
    }
    Ok(sent)
}

fn report_time(report: &PolicyReport) -> String {
    report
        .plan
        .as_ref()
        .map(|p| p.evaluated_at.to_string())
        .unwrap_or_else(|| Timestamp::now().to_string())
}

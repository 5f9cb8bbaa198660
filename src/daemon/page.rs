//! The status page on the daemon's listener: `/` (what `retentiond status` shows, each
//! policy's timeline of its last listed run, recent runs and deletions) and `/policies/NAME`
//! (one policy in detail). Server-rendered HTML that needs no script and no asset from
//! elsewhere, refreshes itself, and is read-only: no form, no button, nothing that deletes or
//! approves. It shows what `status` and `history` show — policy names, accounts, backup ids,
//! guard messages — and never a secret (the config's secrets are references the page never
//! reads).

use super::status::{self, PolicyStatus};
use crate::journal::{DecisionRecord, HistoryFilter, Journal, RunRecord};
use crate::policy::{Config, Policy};
use crate::review::svg;
use jiff::Timestamp;
use std::fmt::Write;

/// How often the page reloads itself.
pub const REFRESH_SECONDS: u32 = 30;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A policy name as a path segment of its page.
fn link(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    format!("/policies/{out}")
}

const STYLE: &str = "body{font-family:Helvetica,Arial,sans-serif;margin:1.5em;color:#111;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-top:1px solid #ccc;padding-top:.8em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #bbb;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#eee}code{background:#f3f3f3;padding:0 .2em}.bad{color:#a00000;font-weight:bold}
.ok{color:#005a00}.warn{color:#7a4a00;font-weight:bold}.muted{color:#444}
.timeline{max-width:100%;overflow-x:auto}a{color:#0645ad}";

fn page(title: &str, body: &str, now: Timestamp) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<link rel=\"icon\" href=\"data:,\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header><p><a href=\"/\">retentiond status</a> · <a href=\"/metrics\">metrics</a> · <a href=\"/healthz\">health</a></p></header>\n<main>\n<h1>{}</h1>\n<p class=\"muted\">As of {now}; the page reloads itself every {REFRESH_SECONDS} s (<a href=\"?refresh=off\">stop reloading</a>). Read-only: what <code>retentiond status</code> and <code>retentiond history</code> show.</p>\n{body}</main>\n</body>\n</html>\n",
        escape(title),
        escape(title)
    )
}

/// The state of a policy in a word, with its class.
fn state(p: &PolicyStatus) -> (&'static str, String) {
    match (&p.blocked, p.awaiting_approval, &p.last_run) {
        (Some(_), _, _) => ("bad", "BLOCKED".into()),
        (None, true, _) => ("warn", "awaiting approval".into()),
        (None, false, Some(r)) if matches!(r.outcome.as_str(), "ok" | "dry-run") => {
            ("ok", r.outcome.clone())
        }
        (None, false, Some(r)) => ("bad", r.outcome.clone()),
        (None, false, None) => ("muted", "not run yet".into()),
    }
}

fn summary_table(all: &[PolicyStatus]) -> String {
    let mut out = String::from(
        "<table>\n<caption>Policies</caption>\n<thead><tr><th scope=\"col\">Policy</th><th scope=\"col\">Mode</th><th scope=\"col\">State</th><th scope=\"col\">Last run</th><th scope=\"col\">Next run</th><th scope=\"col\">Holds</th></tr></thead>\n<tbody>\n",
    );
    for p in all {
        let (class, word) = state(p);
        let last = match &p.last_run {
            Some(r) => {
                let host = r
                    .host
                    .as_deref()
                    .map(|h| format!(" on {}", escape(h)))
                    .unwrap_or_default();
                let counts = match (r.kept, r.would_delete) {
                    (Some(k), Some(d)) => format!(": kept {k}, deleted {} of {d}", r.deleted),
                    _ => String::new(),
                };
                format!(
                    "#{} {} {}{host} at {}{counts}",
                    r.id,
                    escape(&r.command),
                    escape(&r.outcome),
                    escape(&r.started_local)
                )
            }
            None => "none yet".into(),
        };
        let next = p
            .next_run_local
            .as_deref()
            .map(escape)
            .unwrap_or_else(|| "no schedule".into());
        let _ = writeln!(
            out,
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td class=\"{class}\">{}</td><td>{last}</td><td>{next}</td><td>{}</td></tr>",
            link(&p.name),
            escape(&p.name),
            p.mode,
            escape(&word),
            p.holds.len()
        );
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// What blocks a policy, and the one command that lifts it.
fn attention(p: &PolicyStatus) -> String {
    let mut out = String::new();
    if let Some(blocked) = &p.blocked {
        let _ = writeln!(
            out,
            "<p class=\"bad\">BLOCKED, nothing is deleted: {}</p>",
            escape(blocked)
        );
    } else if p.awaiting_approval {
        let _ = writeln!(
            out,
            "<p class=\"warn\">This version is not approved: a run that deletes more than guard.unapproved_max_delete waits.</p>"
        );
    }
    if let Some(command) = &p.unblock {
        let _ = writeln!(out, "<p>To unblock: <code>{}</code></p>", escape(command));
    }
    if !p.holds.is_empty() {
        out.push_str("<ul>\n");
        for h in &p.holds {
            let _ = writeln!(
                out,
                "<li>hold #{} on backup <code>{}</code>: {}</li>",
                h.id,
                escape(&h.backup_id),
                escape(&h.describe(|at| at.to_string()))
            );
        }
        out.push_str("</ul>\n");
    }
    for (event, title) in &p.open_notices {
        let _ = writeln!(
            out,
            "<p class=\"muted\">Notified ({}): {}</p>",
            escape(event),
            escape(title)
        );
    }
    out
}

/// The timeline of a policy's last listed run, from the journal's decisions.
fn timeline(policy: &Policy, decisions: &[DecisionRecord], tz: &jiff::tz::TimeZone) -> String {
    let mut rows: Vec<svg::Row> = Vec::new();
    for d in decisions {
        let Ok(at) = d.created_at.parse::<Timestamp>() else {
            continue;
        };
        if rows.last().is_none_or(|r| r.label != d.group) {
            rows.push(svg::Row {
                label: d.group.clone(),
                marks: Vec::new(),
            });
        }
        let fate = match d.action.as_str() {
            "keep" => {
                let mut reasons = d.reasons.clone();
                reasons.sort_by_key(|r| {
                    !(r.starts_with("held:") || r.starts_with("locked") || r.starts_with("legal"))
                });
                svg::Fate::Kept(reasons)
            }
            "delete" => svg::Fate::Deleted,
            "wait" => svg::Fate::Waiting,
            _ => svg::Fate::Ignored,
        };
        let why = match (d.reasons.is_empty(), &d.note) {
            (false, _) => d.reasons.join(", "),
            (true, Some(note)) => note.clone(),
            (true, None) => String::new(),
        };
        rows.last_mut()
            .expect("pushed above")
            .marks
            .push(svg::Mark {
                at,
                label: format!("{}: {} {why}", d.id, d.action),
                fate,
            });
    }
    if rows.is_empty() {
        return "<p class=\"muted\">No listed run yet: no timeline.</p>\n".into();
    }
    let section = svg::Section {
        title: format!("policy {} — its last listed run", policy.name),
        note: None,
        rows,
        counts: Vec::new(),
    };
    let picture = svg::render(&format!("retentiond: {}", policy.name), &[section], tz);
    // Inline: without the XML declaration, labelled for screen readers.
    let body = picture
        .split_once("?>\n")
        .map_or(picture.as_str(), |(_, rest)| rest);
    format!(
        "<figure class=\"timeline\">{}<figcaption>What the last listed run kept, deleted and left waiting, by backup time.</figcaption></figure>\n",
        body.replacen(
            "<svg ",
            &format!(
                "<svg role=\"img\" aria-label=\"timeline of policy {}\" ",
                escape(&policy.name)
            ),
            1
        )
    )
}

fn runs_table(runs: &[RunRecord], tz: &jiff::tz::TimeZone) -> String {
    if runs.is_empty() {
        return "<p class=\"muted\">No runs yet.</p>\n".into();
    }
    let mut out = String::from(
        "<table>\n<caption>Recent runs</caption>\n<thead><tr><th scope=\"col\">Run</th><th scope=\"col\">Started</th><th scope=\"col\">Host</th><th scope=\"col\">Command</th><th scope=\"col\">Outcome</th><th scope=\"col\">Kept / planned deletions</th><th scope=\"col\">Deleted</th></tr></thead>\n<tbody>\n",
    );
    for r in runs {
        let deleted: Vec<String> = r
            .deletions
            .iter()
            .filter(|d| d.outcome.as_deref() == Some("deleted"))
            .map(|d| format!("<code>{}</code>", escape(&d.id)))
            .collect();
        let shown = match deleted.len() {
            0 => "none".to_string(),
            n if n > 10 => format!("{} and {} more", deleted[..10].join(", "), n - 10),
            _ => deleted.join(", "),
        };
        let _ = writeln!(
            out,
            "<tr><td>#{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{shown}</td></tr>",
            r.id,
            escape(&crate::render::local_time(tz, r.started_at)),
            escape(r.host.as_deref().unwrap_or("?")),
            escape(&r.command),
            escape(r.outcome.as_deref().unwrap_or("unfinished")),
            r.summary
                .map(|s| format!("{} / {}", s.keep, s.delete))
                .unwrap_or_default()
        );
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// One policy's section: its state, its timeline, its recent runs.
fn section(
    journal: Option<&Journal>,
    config: &Config,
    policy: &Policy,
    p: &PolicyStatus,
    runs: usize,
    heading: bool,
) -> Result<String, String> {
    let tz = crate::runner::zone(policy, Some(config));
    let history = match journal {
        Some(j) => j
            .history(&HistoryFilter {
                policies: vec![policy.name.clone()],
                limit: runs,
                ..HistoryFilter::default()
            })
            .map_err(|e| e.to_string())?,
        None => Vec::new(),
    };
    let listed = history.iter().find(|r| r.summary.is_some());
    let decisions = match (journal, listed) {
        (Some(j), Some(r)) => j.decisions(r.id).map_err(|e| e.to_string())?,
        _ => Vec::new(),
    };
    let mut out = String::new();
    if heading {
        let _ = writeln!(
            out,
            "<section aria-labelledby=\"p-{0}\">\n<h2 id=\"p-{0}\"><a href=\"{1}\">Policy {2}</a></h2>",
            escape(&link(&policy.name).replace('/', "-")),
            link(&policy.name),
            escape(&policy.name)
        );
    } else {
        out.push_str("<section>\n");
    }
    let _ = writeln!(
        out,
        "<p>Account <code>{}</code>, mode {}, zone {}, {}; file <code>{}</code>.</p>",
        escape(&p.account),
        p.mode,
        escape(&p.timezone),
        match (&p.schedule, &p.next_run_local) {
            (Some(s), Some(n)) => format!(
                "schedule <code>{}</code>, next run {}",
                escape(s),
                escape(n)
            ),
            (Some(s), None) => format!("schedule <code>{}</code>", escape(s)),
            (None, _) => "no schedule".to_string(),
        },
        escape(&p.file)
    );
    out.push_str(&attention(p));
    out.push_str(&timeline(policy, &decisions, &tz));
    out.push_str(&runs_table(&history, &tz));
    out.push_str("</section>\n");
    Ok(out)
}

/// The page at `path` (`/` or `/policies/NAME`); `None`: no such page.
pub fn render(
    config: &Config,
    policies: &[Policy],
    path: &str,
    now: Timestamp,
) -> Option<Result<String, String>> {
    let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
    let journal = match Journal::open_config_read_only(config) {
        Ok(j) => j,
        Err(e) => return Some(Err(e.to_string())),
    };
    let all = match status::status(config, policies, journal.as_ref(), now) {
        Ok(all) => all,
        Err(e) => return Some(Err(e.to_string())),
    };
    if path == "/" {
        let mut body = summary_table(&all);
        for (policy, p) in policies.iter().zip(&all) {
            match section(journal.as_ref(), config, policy, p, 5, true) {
                Ok(s) => body.push_str(&s),
                Err(e) => return Some(Err(e)),
            }
        }
        return Some(Ok(page("retentiond status", &body, now)));
    }
    let name = path.strip_prefix("/policies/")?;
    let name = percent_decode(name)?;
    let (policy, p) = policies.iter().zip(&all).find(|(p, _)| p.name == name)?;
    let (class, word) = state(p);
    let mut body = format!("<p class=\"{class}\">State: {}</p>\n", escape(&word));
    match section(journal.as_ref(), config, policy, p, 20, false) {
        Ok(s) => body.push_str(&s),
        Err(e) => return Some(Err(e)),
    }
    Some(Ok(page(&format!("Policy {}", policy.name), &body, now)))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

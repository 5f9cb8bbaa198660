//! A stateful fake of Huawei Cloud (PROVIDERS.md §3–5) on one server: IAM password login
//! (`POST /v3/auth/tokens`, token in `X-Subject-Token`), CSBS checkpoint items (marker paging,
//! count, item lookup, asynchronous deletion tasks) and TaurusDB backups (offset paging, batch
//! deletion); or, started with `start_cbr`, IAM and CBR backups (offset paging with a count,
//! both of CBR's time forms, replicas, vaults, asynchronous deletions, `BackupService.6201`). Every request is authenticated as the API gateway would: an AK/SK signature is
//! recomputed here from what arrived (this file's own canonicalisation, not retentiond's) and
//! compared, or the `X-Auth-Token` must be one IAM issued and not revoked.

use super::fake::{Reply, Request, Server};
use ring::{digest, hmac};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const PROJECT: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
pub const AK: &str = "HPUAQ7JQUFSXZQWLNE8K";
pub const SK: &str = "tWf3Zq1kVv9bX2mC8rN4pL6sY0aE5dH7jG1uK3oI";
pub const USER: &str = "ops-bot";
pub const PASSWORD: &str = "Pa55-w0rd-for-iam!";
pub const DOMAIN: &str = "acme";
pub const STATIC_TOKEN: &str = "MIIstatic-token-for-tests-0123456789";

#[derive(Clone, Debug)]
pub struct Item {
    pub id: String,
    pub checkpoint_id: String,
    pub resource_id: String,
    pub name: String,
    pub status: String,
    /// Zone-less, microseconds, as CSBS writes it.
    pub created_at: String,
    /// While deleting: when the task ends.
    pub done_at: Option<Instant>,
}

#[derive(Clone, Debug)]
pub struct TaurusBackup {
    pub id: String,
    pub instance_id: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub begin_time: String,
}

/// A CBR backup (`GET /v3/{project_id}/backups`).
#[derive(Clone, Debug)]
pub struct CbrBackup {
    pub id: String,
    pub resource_id: String,
    pub vault_id: String,
    pub name: String,
    pub status: String,
    /// As CBR writes it: zone-less microseconds, or milliseconds with `+00:00`.
    pub created_at: String,
    /// `backup` or `replication`.
    pub image_type: String,
    /// Made by a vault's policy.
    pub auto: bool,
    /// While deleting: when the deletion ends.
    pub done_at: Option<Instant>,
}

#[derive(Default)]
pub struct State {
    pub items: Vec<Item>,
    /// The fake is CBR (its `/v3/{project_id}/backups` are CBR's, not TaurusDB's).
    pub cbr_mode: bool,
    pub cbr: Vec<CbrBackup>,
    pub cbr_page: usize,
    /// Ids of CBR backups that refuse deletion (`BackupService.6201`).
    pub cbr_undeletable: Vec<String>,
    pub backups: Vec<TaurusBackup>,
    /// How long a CSBS deletion task runs.
    pub task_time: Duration,
    /// Most CSBS deletion tasks running at once.
    pub max_tasks: usize,
    /// CSBS DELETEs without `checkpoint_items` (each would delete a whole checkpoint).
    pub unsafe_deletes: usize,
    pub logins: usize,
    pub tokens: Vec<String>,
    /// Page size caps.
    pub csbs_page: usize,
    pub taurus_page: usize,
    /// Every TaurusDB id a DELETE named.
    pub taurus_deletes: Vec<String>,
    pub rejected: Vec<String>,
}

pub struct Fake {
    pub server: Server,
    pub state: Arc<Mutex<State>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn uri_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decoding; in a query, `+` is a space.
fn percent_decode(text: &str, query: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if query && bytes[i] == b'+' {
            b' '
        } else {
            bytes[i]
        });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The gateway's check of an `SDK-HMAC-SHA256` signature, from the request as received.
fn verify_signature(r: &Request, authorization: &str) -> Result<(), String> {
    let rest = authorization
        .strip_prefix("SDK-HMAC-SHA256 ")
        .ok_or("unknown algorithm")?;
    let mut access = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(", ") {
        let (k, v) = part.split_once('=').ok_or("bad Authorization")?;
        match k {
            "Access" => access = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return Err(format!("unknown part {k}")),
        }
    }
    let (access, signed, signature) = (
        access.ok_or("no Access")?,
        signed.ok_or("no SignedHeaders")?,
        signature.ok_or("no Signature")?,
    );
    if access != AK {
        return Err("unknown access key".into());
    }
    let date = r.header("x-sdk-date").ok_or("no X-Sdk-Date")?;
    let names: Vec<&str> = signed.split(';').collect();
    if !names.contains(&"x-sdk-date") {
        return Err("X-Sdk-Date is not signed".into());
    }
    let mut uri: String = r
        .path
        .split('/')
        .map(|s| uri_encode(&percent_decode(s, false)))
        .collect::<Vec<_>>()
        .join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    let mut query: Vec<(String, String)> = r
        .query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k, true)),
                uri_encode(&percent_decode(v, true)),
            )
        })
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers = String::new();
    for name in &names {
        let value = r
            .header(name)
            .ok_or(format!("signed header {name} missing"))?;
        headers.push_str(&format!("{name}:{}\n", value.trim()));
    }
    let body_hash = hex(digest::digest(&digest::SHA256, &r.body).as_ref());
    let canonical = format!(
        "{}\n{uri}\n{query}\n{headers}\n{signed}\n{body_hash}",
        r.method
    );
    let to_sign = format!(
        "SDK-HMAC-SHA256\n{date}\n{}",
        hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, SK.as_bytes());
    let expected = hex(hmac::sign(&key, to_sign.as_bytes()).as_ref());
    if expected != signature {
        return Err("verify aksk signature fail".into());
    }
    let sent = jiff::fmt::strtime::parse("%Y%m%dT%H%M%SZ", date)
        .and_then(|t| t.to_datetime())
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
        .map_err(|_| "bad X-Sdk-Date")?;
    let skew = jiff::Timestamp::now().as_second() - sent.timestamp().as_second();
    if skew.abs() > 15 * 60 {
        return Err("APIGW.0303".into());
    }
    Ok(())
}

fn gateway_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"error_code": code, "error_msg": message, "request_id": "req-1"}),
    )
}

impl Fake {
    pub fn start(items: Vec<Item>, backups: Vec<TaurusBackup>) -> Fake {
        let state = Arc::new(Mutex::new(State {
            items,
            backups,
            task_time: Duration::from_millis(300),
            csbs_page: 4,
            taurus_page: 3,
            ..State::default()
        }));
        let shared = state.clone();
        let server = Server::start(Arc::new(move |r: &Request| handle(&shared, r)));
        Fake { server, state }
    }

    /// A CBR fake: IAM and CBR backups, deletions taking `task_time`, pages of 4.
    pub fn start_cbr(mut backups: Vec<CbrBackup>) -> Fake {
        // Held in `sort=created_at:asc` order, so that a page is a slice of it.
        backups.sort_by(|a, b| cbr_instant(a).cmp(&cbr_instant(b)).then(a.id.cmp(&b.id)));
        let state = Arc::new(Mutex::new(State {
            cbr_mode: true,
            cbr: backups,
            task_time: Duration::from_millis(300),
            cbr_page: 4,
            ..State::default()
        }));
        let shared = state.clone();
        let server = Server::start(Arc::new(move |r: &Request| handle(&shared, r)));
        Fake { server, state }
    }

    /// Ids of the CBR backups still there (deleting or not).
    pub fn cbr_ids(&self) -> Vec<String> {
        let mut state = self.state.lock().unwrap();
        finish_tasks(&mut state);
        state.cbr.iter().map(|b| b.id.clone()).collect()
    }

    /// Ids of the CSBS items still there (deleting or not).
    pub fn item_ids(&self) -> Vec<String> {
        let mut state = self.state.lock().unwrap();
        finish_tasks(&mut state);
        state.items.iter().map(|i| i.id.clone()).collect()
    }

    pub fn backup_ids(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .backups
            .iter()
            .map(|b| b.id.clone())
            .collect()
    }

    /// Revokes every token IAM issued (as a password change would).
    pub fn revoke_tokens(&self) {
        self.state.lock().unwrap().tokens.clear();
    }
}

/// `n` daily CSBS backups of `server`, the newest on 2026-11-20 (ids `{server}-item-{i}`).
pub fn items(server: &str, n: usize) -> Vec<Item> {
    let newest: jiff::civil::DateTime = "2026-11-20T02:00:00.123456".parse().unwrap();
    (0..n)
        .map(|i| {
            let at = newest
                .checked_sub(jiff::Span::new().days(i as i64))
                .unwrap();
            Item {
                id: format!("{server}-item-{i:03}"),
                checkpoint_id: format!("{server}-cp-{i:03}"),
                resource_id: server.into(),
                name: format!("autobk_{i:04}"),
                status: "available".into(),
                created_at: at.strftime("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
                done_at: None,
            }
        })
        .collect()
}

/// `n` daily CBR backups of `server` in vault `vault-1`, the newest on 2026-11-20 at 02:00
/// UTC; times alternate between CBR's two forms. Ids `{server}-bk-{i}`.
pub fn cbr_backups(server: &str, n: usize) -> Vec<CbrBackup> {
    let newest: jiff::civil::DateTime = "2026-11-20T02:00:00.209782".parse().unwrap();
    (0..n)
        .map(|i| {
            let at = newest
                .checked_sub(jiff::Span::new().days(i as i64))
                .unwrap();
            let created_at = match i % 2 {
                0 => at.strftime("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
                _ => format!("{}+00:00", at.strftime("%Y-%m-%dT%H:%M:%S%.3f")),
            };
            CbrBackup {
                id: format!("{server}-bk-{i:03}"),
                resource_id: server.into(),
                vault_id: "vault-1".into(),
                name: format!("manualbk_{i:04}"),
                status: "available".into(),
                created_at,
                image_type: "backup".into(),
                auto: false,
                done_at: None,
            }
        })
        .collect()
}

/// `n` daily manual TaurusDB backups of `instance` at 10:41 +08:00, newest 2026-11-20.
pub fn backups(instance: &str, n: usize) -> Vec<TaurusBackup> {
    let newest: jiff::civil::DateTime = "2026-11-20T10:41:14".parse().unwrap();
    (0..n)
        .map(|i| {
            let at = newest
                .checked_sub(jiff::Span::new().days(i as i64))
                .unwrap();
            TaurusBackup {
                id: format!("{instance}-{i:03}br07"),
                instance_id: instance.into(),
                name: format!("TaurusDB-{instance}-{i:03}"),
                kind: "manual".into(),
                status: "COMPLETED".into(),
                begin_time: format!("{}+0800", at.strftime("%Y-%m-%dT%H:%M:%S")),
            }
        })
        .collect()
}

fn finish_tasks(state: &mut State) {
    let now = Instant::now();
    state
        .items
        .retain(|i| !(i.status == "deleting" && i.done_at.is_some_and(|t| t <= now)));
    state
        .cbr
        .retain(|b| !(b.status == "deleting" && b.done_at.is_some_and(|t| t <= now)));
}

fn authenticate(state: &mut State, r: &Request) -> Result<(), Reply> {
    if let Some(authorization) = r.header("authorization") {
        return verify_signature(r, authorization).map_err(|e| {
            state.rejected.push(e.clone());
            gateway_error(
                401,
                "APIGW.0301",
                &format!("Incorrect IAM authentication information: {e}"),
            )
        });
    }
    match r.header("x-auth-token") {
        Some(token) if token == STATIC_TOKEN || state.tokens.iter().any(|t| t == token) => Ok(()),
        Some(_) => Err(gateway_error(
            401,
            "APIGW.0301",
            "The token must be updated.",
        )),
        None => Err(gateway_error(
            401,
            "APIGW.0301",
            "Incorrect IAM authentication information: no credentials",
        )),
    }
}

fn handle(state: &Mutex<State>, r: &Request) -> Reply {
    let mut state = state.lock().unwrap();
    finish_tasks(&mut state);
    if r.method == "POST" && r.path == "/v3/auth/tokens" {
        return login(&mut state, r);
    }
    if let Err(reply) = authenticate(&mut state, r) {
        return reply;
    }
    let segments: Vec<String> = r
        .path
        .split('/')
        .skip(1)
        .map(|s| percent_decode(s, false))
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    if state.cbr_mode {
        return match (r.method.as_str(), segments.as_slice()) {
            ("GET", ["v3", PROJECT, "backups"]) => cbr_list(&state, r),
            ("GET", ["v3", PROJECT, "backups", id]) => match state.cbr.iter().find(|b| b.id == *id)
            {
                Some(b) => Reply::json(200, &json!({"backup": cbr_json(b)})),
                None => gateway_error(
                    404,
                    "CSBS.3001",
                    &format!("The backup ({id}) does not exist."),
                ),
            },
            ("DELETE", ["v3", PROJECT, "backups", id]) => cbr_delete(&mut state, id),
            _ => gateway_error(
                404,
                "APIGW.0101",
                "The API does not exist or has not been published",
            ),
        };
    }
    match (r.method.as_str(), segments.as_slice()) {
        ("GET", ["v1", PROJECT, "checkpoint_items"]) => csbs_list(&state, r),
        ("GET", ["v1", PROJECT, "checkpoint_items", "count"]) => {
            let n = csbs_matching(&state, r).len();
            Reply::json(200, &json!({"count": n}))
        }
        ("GET", ["v1", PROJECT, "checkpoint_items", id]) => {
            match state.items.iter().find(|i| i.id == *id) {
                Some(item) => Reply::json(200, &json!({"checkpoint_item": item_json(item)})),
                None => gateway_error(
                    404,
                    "CSBS.3001",
                    &format!("Checkpoint_item ({id}) is not found"),
                ),
            }
        }
        (
            "DELETE",
            [
                "v1",
                PROJECT,
                "providers",
                provider,
                "checkpoints",
                checkpoint,
            ],
        ) => {
            if *provider != "fc4d5750-22e7-4798-8a46-f48f62c4c1da" {
                return gateway_error(400, "CSBS.9001", "provider invalid");
            }
            csbs_delete(&mut state, r, checkpoint)
        }
        ("GET", ["v3", PROJECT, "backups"]) => taurus_list(&state, r),
        ("DELETE", ["v3", PROJECT, "backups"]) => taurus_delete(&mut state, r),
        _ => gateway_error(
            404,
            "APIGW.0101",
            "The API does not exist or has not been published",
        ),
    }
}

fn login(state: &mut State, r: &Request) -> Reply {
    let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    let user = &body["auth"]["identity"]["password"]["user"];
    if user["name"] != USER || user["password"] != PASSWORD || user["domain"]["name"] != DOMAIN {
        return Reply::json(
            401,
            &json!({"error": {"code": 401, "message": "The username or password is wrong.", "title": "Unauthorized"}}),
        );
    }
    if body["auth"]["scope"]["project"]["id"] != PROJECT {
        return Reply::json(
            400,
            &json!({"error": {"code": 400, "message": "project scope missing"}}),
        );
    }
    state.logins += 1;
    let token = format!("MIIfake-iam-token-{:04}-0123456789abcdef", state.logins);
    state.tokens.push(token.clone());
    let expires = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24))
        .unwrap();
    Reply::json(201, &json!({"token": {"expires_at": expires.to_string(), "issued_at": jiff::Timestamp::now().to_string()}}))
        .with_header("X-Subject-Token", &token)
}

fn item_json(i: &Item) -> Value {
    json!({
        "id": i.id, "checkpoint_id": i.checkpoint_id, "name": i.name,
        "resource_id": i.resource_id, "resource_type": "OS::Nova::Server",
        "status": i.status, "created_at": i.created_at, "updated_at": i.created_at,
        "extend_info": {"auto_trigger": true, "size": 40, "progress": 100},
    })
}

fn csbs_matching<'s>(state: &'s State, r: &Request) -> Vec<&'s Item> {
    let resource = r.param("resource_id");
    let mut items: Vec<&Item> = state
        .items
        .iter()
        .filter(|i| resource.as_ref().is_none_or(|id| &i.resource_id == id))
        .collect();
    items.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    items
}

fn csbs_list(state: &State, r: &Request) -> Reply {
    let items = csbs_matching(state, r);
    let limit: usize = r
        .param("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(1000);
    let start = match r.param("marker") {
        Some(marker) => match items.iter().position(|i| i.id == marker) {
            Some(p) => p + 1,
            None => return gateway_error(400, "CSBS.1001", "invalid marker"),
        },
        None => 0,
    };
    let page: Vec<Value> = items
        .iter()
        .skip(start)
        .take(limit.min(state.csbs_page))
        .map(|i| item_json(i))
        .collect();
    Reply::json(200, &json!({"checkpoint_items": page}))
}

fn csbs_delete(state: &mut State, r: &Request, checkpoint: &str) -> Reply {
    let Some(item_id) = r.param("checkpoint_items") else {
        // The real API deletes every backup of the checkpoint: recorded as a violation.
        state.unsafe_deletes += 1;
        state.items.retain(|i| i.checkpoint_id != checkpoint);
        return Reply::json(200, &json!({}));
    };
    let task_time = state.task_time;
    let Some(item) = state
        .items
        .iter_mut()
        .find(|i| i.id == item_id && i.checkpoint_id == checkpoint)
    else {
        return gateway_error(
            404,
            "CSBS.3001",
            &format!("Checkpoint_item ({item_id}) is not found"),
        );
    };
    if item.status != "available" && item.status != "error" {
        return gateway_error(400, "CSBS.2003", "The backup is in executing state.");
    }
    item.status = "deleting".into();
    item.done_at = Some(Instant::now() + task_time);
    let running = state
        .items
        .iter()
        .filter(|i| i.status == "deleting")
        .count();
    state.max_tasks = state.max_tasks.max(running);
    Reply::json(200, &json!({}))
}

fn cbr_json(b: &CbrBackup) -> Value {
    json!({
        "id": b.id, "checkpoint_id": format!("cp-{}", b.id), "name": b.name,
        "resource_id": b.resource_id, "resource_name": format!("ecs-{}", b.resource_id),
        "resource_type": "OS::Nova::Server", "resource_size": "40", "resource_az": "az1",
        "vault_id": b.vault_id, "image_type": b.image_type, "status": b.status,
        "created_at": b.created_at, "updated_at": b.created_at, "expired_at": null,
        "project_id": PROJECT, "protected_at": b.created_at, "description": "",
        "extend_info": {"auto_trigger": b.auto, "bootable": true, "encrypted": false},
    })
}

/// The instant of a CBR time (the two forms do not sort as text).
fn cbr_instant(b: &CbrBackup) -> jiff::Timestamp {
    b.created_at
        .parse::<jiff::Timestamp>()
        .ok()
        .or_else(|| {
            b.created_at
                .parse::<jiff::civil::DateTime>()
                .ok()
                .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
                .map(|z| z.timestamp())
        })
        .expect("a CBR time")
}

fn cbr_list(state: &State, r: &Request) -> Reply {
    let limit: usize = r
        .param("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(1000);
    if !(1..=1000).contains(&limit) {
        return gateway_error(400, "BackupService.0001", "limit must be 1-1000");
    }
    let offset: usize = r.param("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    let (vault, resource, image) = (
        r.param("vault_id"),
        r.param("resource_id"),
        r.param("image_type"),
    );
    if r.param("resource_type")
        .is_some_and(|t| t != "OS::Nova::Server")
    {
        return Reply::json(
            200,
            &json!({"backups": [], "count": 0, "offset": offset, "limit": limit}),
        );
    }
    // Held sorted by time (see `start_cbr`): `sort=created_at:asc` is their order.
    let matching: Vec<&CbrBackup> = state
        .cbr
        .iter()
        .filter(|b| vault.as_ref().is_none_or(|v| &b.vault_id == v))
        .filter(|b| resource.as_ref().is_none_or(|id| &b.resource_id == id))
        .filter(|b| image.as_ref().is_none_or(|t| &b.image_type == t))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit.min(state.cbr_page))
        .map(|b| cbr_json(b))
        .collect();
    Reply::json(
        200,
        &json!({"backups": page, "count": matching.len(), "offset": offset, "limit": limit}),
    )
}

fn cbr_delete(state: &mut State, id: &str) -> Reply {
    let task_time = state.task_time;
    let undeletable = state.cbr_undeletable.iter().any(|u| u == id);
    let Some(backup) = state.cbr.iter_mut().find(|b| b.id == id) else {
        return gateway_error(
            404,
            "CSBS.3001",
            &format!("The backup ({id}) does not exist."),
        );
    };
    if undeletable {
        return gateway_error(400, "BackupService.6201", "The backup cannot be deleted.");
    }
    if backup.status != "available" && backup.status != "error" {
        return gateway_error(400, "CSBS.2003", "The backup is in executing state.");
    }
    backup.status = "deleting".into();
    backup.done_at = Some(Instant::now() + task_time);
    let running = state.cbr.iter().filter(|b| b.status == "deleting").count();
    state.max_tasks = state.max_tasks.max(running);
    Reply::raw(204, "application/json", Vec::new())
}

fn taurus_list(state: &State, r: &Request) -> Reply {
    if r.header("x-language") != Some("en-us") {
        return gateway_error(400, "DBS.200001", "X-Language missing");
    }
    let kind = r.param("backup_type");
    let instance = r.param("instance_id");
    let matching: Vec<&TaurusBackup> = state
        .backups
        .iter()
        .filter(|b| kind.as_ref().is_none_or(|k| &b.kind == k))
        .filter(|b| instance.as_ref().is_none_or(|i| &b.instance_id == i))
        .collect();
    let offset: usize = r.param("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    let limit: usize = r.param("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    if limit > 100 {
        return gateway_error(400, "DBS.200001", "limit must be 1-100");
    }
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit.min(state.taurus_page))
        .map(|b| {
            json!({"id": b.id, "name": b.name, "begin_time": b.begin_time, "end_time": b.begin_time,
                   "status": b.status, "type": b.kind, "size": 5, "instance_id": b.instance_id,
                   "datastore": {"type": "gaussdb-mysql", "version": "8.0"}})
        })
        .collect();
    Reply::json(
        200,
        &json!({"backups": page, "total_count": matching.len()}),
    )
}

fn taurus_delete(state: &mut State, r: &Request) -> Reply {
    let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    let Some(ids) = body["backup_ids"].as_array() else {
        return gateway_error(400, "DBS.200001", "backup_ids missing");
    };
    if ids.len() > 50 {
        return gateway_error(400, "DBS.200001", "at most 50 backups at once");
    }
    let mut failed = Vec::new();
    for id in ids.iter().filter_map(Value::as_str) {
        state.taurus_deletes.push(id.to_string());
        match state.backups.iter().position(|b| b.id == id) {
            None => failed.push(json!({"backup_id": id, "error_code": "DBS.280214", "error_msg": "The backup does not exist."})),
            Some(p) if state.backups[p].kind != "manual" => failed.push(
                json!({"backup_id": id, "error_code": "DBS.201208", "error_msg": "Automated backups cannot be deleted."}),
            ),
            Some(p) => {
                state.backups.remove(p);
            }
        }
    }
    Reply::json(
        200,
        &json!({"success_count": ids.len() - failed.len(), "failed_count": failed.len(), "failed_results": failed}),
    )
}
